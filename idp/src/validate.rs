//! Subject-token validation (DESIGN §3.1 steps 1–6).
//!
//! [`TokenValidator::validate`] is the only way to obtain a [`VerifiedToken`], and
//! [`crate::select_mapping`] turns one into the [`crate::MatchedMapping`] that credential
//! claims are granted from: forgetting to validate or to map does not compile.
//! Checks run in the contract's order and each failure is its own [`TokenRejection`], so
//! the `invalid_grant` description and the metrics name the exact reason.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::Value;

use crate::clock::{Clock, unix_seconds, whole_seconds};
use crate::issuer::{IssuerConfig, IssuerConfigError, IssuerKind};
use crate::jose::{audiences, numeric_date, parse_compact};
use crate::jwks::{JwksCache, JwksError};

/// Largest accepted subject token: 16 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Tolerated clock difference between issuer and broker.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The trusted issuers, keyed by their exact `iss`.
///
/// Cloning is shallow: the broker's config loader and the onboarding API share one
/// registry, and an issuer added or removed at runtime is seen by the next validation.
#[derive(Clone)]
pub struct IssuerRegistry {
    issuers: Arc<RwLock<HashMap<String, Arc<IssuerConfig>>>>,
    allow_http_loopback: bool,
}

impl fmt::Debug for IssuerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerRegistry")
            .field("issuers", &self.list().len())
            .field("allow_http_loopback", &self.allow_http_loopback)
            .finish()
    }
}

impl IssuerRegistry {
    /// An empty registry; `allow_http_loopback` (dev profile) is passed to
    /// [`IssuerConfig::validate`] for every insert.
    pub fn new(allow_http_loopback: bool) -> Self {
        Self {
            issuers: Arc::default(),
            allow_http_loopback,
        }
    }

    /// Validates and adds (or replaces) an issuer; returns the entry it replaced.
    pub fn insert(
        &self,
        config: IssuerConfig,
    ) -> Result<Option<Arc<IssuerConfig>>, IssuerConfigError> {
        config.validate(self.allow_http_loopback)?;
        let mut issuers = self.issuers.write().unwrap_or_else(PoisonError::into_inner);
        Ok(issuers.insert(config.issuer.clone(), Arc::new(config)))
    }

    /// Removes the issuer whose `iss` is `issuer`.
    pub fn remove(&self, issuer: &str) -> Option<Arc<IssuerConfig>> {
        self.issuers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(issuer)
    }

    /// The issuer whose `iss` is exactly `issuer`.
    pub fn get(&self, issuer: &str) -> Option<Arc<IssuerConfig>> {
        self.issuers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(issuer)
            .cloned()
    }

    /// All issuers, in no particular order.
    pub fn list(&self) -> Vec<Arc<IssuerConfig>> {
        self.issuers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// Why a subject token was refused. Each variant has a stable [`code`](Self::code) for
/// metrics and audit, and a [`description`](Self::description) for `error_description`;
/// neither ever contains token material or unverified claim values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Over [`MAX_TOKEN_BYTES`].
    #[error("{}", self.description())]
    TokenTooLarge,
    /// Not a compact JWS with JSON header and payload, or an unusable claim encoding.
    #[error("{}", self.description())]
    Malformed {
        /// Which part is wrong (a fixed phrase).
        reason: &'static str,
    },
    /// The header has no `kid`, so the key cannot be chosen.
    #[error("{}", self.description())]
    MissingKid,
    /// `none`, HMAC, or an algorithm outside the issuer's allowlist.
    #[error("{}", self.description())]
    AlgNotAllowed,
    /// `iss` is absent or not a registered issuer.
    #[error("{}", self.description())]
    UntrustedIssuer,
    /// The issuer publishes no key with this `kid` (after the allowed refresh).
    #[error("{}", self.description())]
    UnknownKid,
    /// No fresh keys are cached and the issuer cannot be reached.
    #[error("{}", self.description())]
    IssuerUnreachable,
    /// The key named by `kid` is of another type or curve than `alg` needs.
    #[error("{}", self.description())]
    AlgKeyMismatch,
    /// The signature does not verify.
    #[error("{}", self.description())]
    BadSignature,
    /// No numeric `exp`.
    #[error("{}", self.description())]
    MissingExp,
    /// No numeric `iat`.
    #[error("{}", self.description())]
    MissingIat,
    /// `exp` is in the past (beyond the skew).
    #[error("{}", self.description())]
    Expired,
    /// `nbf` is in the future (beyond the skew).
    #[error("{}", self.description())]
    NotYetValid,
    /// `iat` is in the future (beyond the skew).
    #[error("{}", self.description())]
    IssuedInFuture,
    /// `exp − iat` exceeds the issuer's `max_token_lifetime`.
    #[error("{}", self.description())]
    LifetimeTooLong,
    /// `aud` does not contain the issuer's configured audience.
    #[error("{}", self.description())]
    WrongAudience,
    /// No non-empty string `sub` (checked last: a proof of identity needs a subject).
    #[error("{}", self.description())]
    MissingSubject,
}

impl TokenRejection {
    /// Stable snake_case identifier (metrics label, audit reason).
    pub fn code(&self) -> &'static str {
        match self {
            Self::TokenTooLarge => "token_too_large",
            Self::Malformed { .. } => "malformed",
            Self::MissingKid => "missing_kid",
            Self::AlgNotAllowed => "alg_not_allowed",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::UnknownKid => "unknown_kid",
            Self::IssuerUnreachable => "issuer_unreachable",
            Self::AlgKeyMismatch => "alg_key_mismatch",
            Self::BadSignature => "bad_signature",
            Self::MissingExp => "missing_exp",
            Self::MissingIat => "missing_iat",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::WrongAudience => "wrong_audience",
            Self::MissingSubject => "missing_subject",
        }
    }

    /// A sentence for the client; names the failed check, never echoes the token.
    pub fn description(&self) -> &'static str {
        match self {
            Self::TokenTooLarge => "subject token is larger than 16 KiB",
            Self::Malformed { reason } => reason,
            Self::MissingKid => "subject token header has no kid",
            Self::AlgNotAllowed => "subject token signature algorithm is not allowed",
            Self::UntrustedIssuer => "subject token issuer is not trusted",
            Self::UnknownKid => "subject token kid is not a current key of its issuer",
            Self::IssuerUnreachable => "the issuer's signing keys are currently unavailable",
            Self::AlgKeyMismatch => "subject token algorithm does not match its key",
            Self::BadSignature => "subject token signature is invalid",
            Self::MissingExp => "subject token has no valid exp claim",
            Self::MissingIat => "subject token has no valid iat claim",
            Self::Expired => "subject token has expired",
            Self::NotYetValid => "subject token is not valid yet (nbf)",
            Self::IssuedInFuture => "subject token was issued in the future (iat)",
            Self::LifetimeTooLong => "subject token lifetime exceeds the issuer's maximum",
            Self::WrongAudience => "subject token is not addressed to this broker",
            Self::MissingSubject => "subject token has no sub claim",
        }
    }
}

/// A subject token that passed every check of [`TokenValidator::validate`].
///
/// Fields are private and there is no public constructor: holding one is proof of
/// validation. It keeps claims, not the token itself.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    issuer_name: String,
    issuer_kind: IssuerKind,
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    kid: String,
    alg: Algorithm,
    claims: Value,
}

impl VerifiedToken {
    /// The configured name of the issuer.
    pub fn issuer_name(&self) -> &str {
        &self.issuer_name
    }

    /// The configured kind of the issuer.
    pub fn issuer_kind(&self) -> IssuerKind {
        self.issuer_kind
    }

    /// `iss`, equal to the registered issuer URL.
    pub fn iss(&self) -> &str {
        &self.iss
    }

    /// `sub`.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// `aud` as a list (a single-string `aud` becomes one element).
    pub fn aud(&self) -> &[String] {
        &self.aud
    }

    /// `exp`, seconds since the Unix epoch.
    pub fn exp(&self) -> i64 {
        self.exp
    }

    /// `iat`, seconds since the Unix epoch.
    pub fn iat(&self) -> i64 {
        self.iat
    }

    /// The `kid` that verified it.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signature algorithm.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The whole payload.
    pub fn claims(&self) -> &Value {
        &self.claims
    }

    /// The claim at a dotted path such as `google.compute_engine.project_id`, walking
    /// nested objects.
    ///
    /// Claim names may themselves contain dots (AWS puts its claims under
    /// `https://sts.amazonaws.com/`, EKS under `kubernetes.io`), so at each level the
    /// shortest run of segments that names an existing key is tried first, then longer
    /// runs: `kubernetes.io.namespace` finds `{"kubernetes.io": {"namespace": …}}`.
    pub fn claim_at_path(&self, path: &str) -> Option<&Value> {
        claim_at_path(&self.claims, path)
    }

    /// Test-only constructor for modules that consume verified tokens.
    #[cfg(test)]
    pub(crate) fn for_tests(kind: IssuerKind, claims: Value) -> Self {
        let str_claim = |name: &str| claims[name].as_str().unwrap_or_default().to_owned();
        Self {
            issuer_name: "test".into(),
            issuer_kind: kind,
            iss: str_claim("iss"),
            sub: str_claim("sub"),
            aud: audiences(claims.get("aud")).unwrap_or_default(),
            exp: claims["exp"].as_i64().unwrap_or_default(),
            iat: claims["iat"].as_i64().unwrap_or_default(),
            kid: "test".into(),
            alg: Algorithm::RS256,
            claims,
        }
    }
}

/// Most segments a claim path may have; bounds the search below.
const MAX_PATH_SEGMENTS: usize = 32;

pub(crate) fn claim_at_path<'v>(claims: &'v Value, path: &str) -> Option<&'v Value> {
    let segments: Vec<&str> = path.split('.').collect();
    if path.is_empty()
        || segments.len() > MAX_PATH_SEGMENTS
        || segments.iter().any(|s| s.is_empty())
    {
        return None;
    }
    resolve(claims, &segments)
}

fn resolve<'v>(value: &'v Value, segments: &[&str]) -> Option<&'v Value> {
    if segments.is_empty() {
        return Some(value);
    }
    let object = value.as_object()?;
    (1..=segments.len()).find_map(|take| {
        let child = object.get(&segments[..take].join("."))?;
        resolve(child, &segments[take..])
    })
}

/// The `iss` and `sub` a token *claims*, read without any verification.
///
/// Only for auditing refusals (DESIGN §3.4: every deny records issuer and subject). Never
/// use it to decide anything. Values over 255 bytes or holding control characters are
/// dropped so a hostile token cannot stuff the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedIdentity {
    /// The claimed `iss`, if present and printable.
    pub iss: Option<String>,
    /// The claimed `sub`, if present and printable.
    pub sub: Option<String>,
}

impl UnverifiedIdentity {
    /// Reads `iss` and `sub` from a token of at most [`MAX_TOKEN_BYTES`]; `None` if the
    /// token is not a parseable compact JWS.
    pub fn peek(token: &str) -> Option<Self> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let jws = parse_compact(token).ok()?;
        let printable = |name: &str| {
            jws.payload
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| v.len() <= 255 && !v.chars().any(char::is_control))
                .map(str::to_owned)
        };
        Some(Self {
            iss: printable("iss"),
            sub: printable("sub"),
        })
    }
}

/// Validates subject tokens against the registered issuers.
#[derive(Clone)]
pub struct TokenValidator {
    issuers: IssuerRegistry,
    jwks: JwksCache,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenValidator")
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl TokenValidator {
    /// A validator over `issuers`, fetching keys through `jwks`, judging time by `clock`.
    ///
    /// The registry's and the cache policy's `allow_http_loopback` should agree (both on
    /// only in the dev profile); a loopback issuer the cache may not fetch from fails with
    /// `issuer_unreachable`.
    pub fn new(issuers: IssuerRegistry, jwks: JwksCache, clock: Arc<dyn Clock>) -> Self {
        Self {
            issuers,
            jwks,
            clock,
        }
    }

    /// The issuer registry (shared; changes apply to the next validation).
    pub fn issuers(&self) -> &IssuerRegistry {
        &self.issuers
    }

    /// The JWKS cache (for metrics).
    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    /// Removes an issuer and drops its cached keys.
    pub fn remove_issuer(&self, issuer: &str) -> Option<Arc<IssuerConfig>> {
        self.jwks.forget(issuer);
        self.issuers.remove(issuer)
    }

    /// Runs DESIGN §3.1 checks 1–6, in order, and returns the first failure.
    ///
    /// `iss` is read from the unverified payload only to choose the issuer whose
    /// allowlist and keys apply; it is trusted once the signature verifies with that
    /// issuer's key.
    pub async fn validate(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
        // 1. Size, shape, header.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenRejection::TokenTooLarge);
        }
        let jws = parse_compact(token).map_err(|reason| TokenRejection::Malformed { reason })?;
        let alg_name =
            jws.header
                .get("alg")
                .and_then(Value::as_str)
                .ok_or(TokenRejection::Malformed {
                    reason: "header has no alg",
                })?;
        // 2a. `none` and HMAC are refused before anything else looks at the token.
        let alg = match Algorithm::from_str(alg_name) {
            Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 | Algorithm::EdDSA)
            | Err(_) => return Err(TokenRejection::AlgNotAllowed),
            Ok(alg) => alg,
        };
        if jws.header.contains_key("crit") {
            return Err(TokenRejection::Malformed {
                reason: "header has critical extensions this broker does not understand",
            });
        }
        let kid = jws
            .header
            .get("kid")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 1024)
            .ok_or(TokenRejection::MissingKid)?;

        // 2b + 3. Route by the (still unverified) `iss`, then apply its allowlist.
        let issuer = jws
            .payload
            .get("iss")
            .and_then(Value::as_str)
            .and_then(|iss| self.issuers.get(iss))
            .ok_or(TokenRejection::UntrustedIssuer)?;
        if !issuer.algorithms.contains(&alg) {
            return Err(TokenRejection::AlgNotAllowed);
        }

        // 4. Key.
        let key = self
            .jwks
            .get_key(&issuer.issuer, issuer.jwks_uri.as_ref(), kid)
            .await
            .map_err(|e| match e {
                JwksError::UnknownKid => TokenRejection::UnknownKid,
                JwksError::IssuerUnreachable(_) => TokenRejection::IssuerUnreachable,
            })?;
        if !key.supports(alg) {
            return Err(TokenRejection::AlgKeyMismatch);
        }

        // 5. Signature, then time.
        let verified = jsonwebtoken::crypto::verify(
            jws.signature_b64,
            jws.signing_input.as_bytes(),
            key.decoding_key(),
            alg,
        );
        if !matches!(verified, Ok(true)) {
            return Err(TokenRejection::BadSignature);
        }
        let payload = jws.payload;
        let exp = payload
            .get("exp")
            .and_then(numeric_date)
            .ok_or(TokenRejection::MissingExp)?;
        let iat = payload
            .get("iat")
            .and_then(numeric_date)
            .ok_or(TokenRejection::MissingIat)?;
        let nbf = match payload.get("nbf") {
            None => None,
            Some(v) => Some(numeric_date(v).ok_or(TokenRejection::Malformed {
                reason: "nbf claim is not a NumericDate",
            })?),
        };
        let now = unix_seconds(self.clock.now());
        let skew = whole_seconds(CLOCK_SKEW);
        if now.saturating_sub(skew) >= exp {
            return Err(TokenRejection::Expired);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
            return Err(TokenRejection::NotYetValid);
        }
        if iat > now.saturating_add(skew) {
            return Err(TokenRejection::IssuedInFuture);
        }
        if exp.saturating_sub(iat) > whole_seconds(issuer.max_token_lifetime) {
            return Err(TokenRejection::LifetimeTooLong);
        }

        // 6. Audience.
        let aud = audiences(payload.get("aud"))
            .filter(|aud| aud.iter().any(|a| *a == issuer.audience))
            .ok_or(TokenRejection::WrongAudience)?;

        let sub = payload
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(TokenRejection::MissingSubject)?
            .to_owned();
        Ok(VerifiedToken {
            issuer_name: issuer.name.clone(),
            issuer_kind: issuer.kind,
            iss: issuer.issuer.clone(),
            sub,
            aud,
            exp,
            iat,
            kid: kid.to_owned(),
            alg,
            claims: Value::Object(payload),
        })
    }
}

#[cfg(test)]
mod tests;
