//! The broker's own issuer (DESIGN §3.2): ES256 signing keys, their rotation, the JWKS
//! and discovery documents, minting of federated credentials and outbound tokens, and
//! verification of the credentials it minted.
//!
//! Rotation is a pure function of time ([`plan_rotation`]) so the broker's scheduler, its
//! tests and an operator's "what would happen" query all agree. Its invariants:
//!
//! - a key is published at least one JWKS `max-age` before it first signs, so no relying
//!   party holding a cached JWKS sees a signature from a key it does not know (the very
//!   first key is the exception: nobody can have cached a JWKS of ours yet);
//! - there is always a pre-published `next` key, scheduled one rotation period after the
//!   current key started;
//! - a retired key stays published until every token it signed has expired
//!   (retirement + max token TTL + clock skew), then may be deleted.
//!
//! Private keys leave this module only as PKCS#8 DER in a [`Zeroizing`] buffer, for the
//! broker to wrap with its storage KEK.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::clock::{unix_seconds, whole_seconds};
use crate::discovery::{DiscoveryDocument, discovery_document};
use crate::issuer::IssuerKind;
use crate::jose::{audiences, b64url, numeric_date, parse_compact};
use crate::validate::CLOCK_SKEW;

/// Default signing-key rotation period: 30 days.
pub const DEFAULT_ROTATION_PERIOD: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The `max-age` the broker serves its JWKS with: 300 s.
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// Longest lifetime of a token the broker mints: 1 h.
pub const DEFAULT_MAX_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

/// The OAuth grant type the token endpoint supports (RFC 8693).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Largest credential [`CredentialVerifier::verify`] looks at.
const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// Rotation timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a key signs before its successor takes over.
    pub rotation_period: Duration,
    /// The JWKS `max-age`; the minimum pre-publication time of a new key.
    pub jwks_max_age: Duration,
    /// Longest TTL of any token signed; mints refuse longer ones.
    pub max_token_ttl: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            rotation_period: DEFAULT_ROTATION_PERIOD,
            jwks_max_age: DEFAULT_JWKS_MAX_AGE,
            max_token_ttl: DEFAULT_MAX_TOKEN_TTL,
        }
    }
}

/// Errors of key handling and minting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The system RNG or key generation failed.
    #[error("key generation failed")]
    KeyGeneration,
    /// Bytes given as a PKCS#8 P-256 private key are not one.
    #[error("not a PKCS#8 P-256 private key")]
    InvalidPrivateKey,
    /// No key may sign yet (call [`SigningKeySet::rotate`] first).
    #[error("no signing key is active")]
    NoActiveKey,
    /// The requested TTL is zero or above the policy's maximum.
    #[error("token ttl must be between 1 s and the maximum token ttl")]
    InvalidTtl,
    /// Signing failed.
    #[error("signing failed")]
    Signing,
}

/// One ES256 signing key and its schedule.
///
/// `Debug` shows only the kid and times; the private key is zeroized when dropped (the
/// PKCS#8 copy here, and aws-lc frees its own copy with cleansing).
pub struct SigningKey {
    kid: String,
    created_at: SystemTime,
    not_before: SystemTime,
    retire_after: Option<SystemTime>,
    pkcs8: Zeroizing<Vec<u8>>,
    /// Parsed once: re-parsing PKCS#8 per signature costs a third of the signing time.
    pair: EcdsaKeyPair,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("not_before", &self.not_before)
            .field("retire_after", &self.retire_after)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh P-256 key, first usable at `not_before`.
    pub fn generate(created_at: SystemTime, not_before: SystemTime) -> Result<Self, SigningError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| SigningError::KeyGeneration)?;
        let document = pair.to_pkcs8v1().map_err(|_| SigningError::KeyGeneration)?;
        let pkcs8 = Zeroizing::new(document.as_ref().to_vec());
        Self::assemble(pair, pkcs8, created_at, not_before, None)
    }

    /// Rebuilds a stored key from its (unwrapped) PKCS#8 DER and schedule. The kid is
    /// derived from the public key, so it need not be stored separately.
    pub fn from_pkcs8(
        pkcs8_der: &[u8],
        created_at: SystemTime,
        not_before: SystemTime,
        retire_after: Option<SystemTime>,
    ) -> Result<Self, SigningError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8_der)
            .map_err(|_| SigningError::InvalidPrivateKey)?;
        let pkcs8 = Zeroizing::new(pkcs8_der.to_vec());
        Self::assemble(pair, pkcs8, created_at, not_before, retire_after)
    }

    fn assemble(
        pair: EcdsaKeyPair,
        pkcs8: Zeroizing<Vec<u8>>,
        created_at: SystemTime,
        not_before: SystemTime,
        retire_after: Option<SystemTime>,
    ) -> Result<Self, SigningError> {
        let mut key = Self {
            kid: String::new(),
            created_at,
            not_before,
            retire_after,
            pkcs8,
            pair,
        };
        key.kid = key
            .jwk(None)
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| SigningError::KeyGeneration)?;
        Ok(key)
    }

    /// The private key as PKCS#8 v1 DER, for wrapping with the storage KEK.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// The key id: the RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// When the key was generated.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// When the key may first sign.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// When the key stops signing (its successor's `not_before`), once a successor exists.
    pub fn retire_after(&self) -> Option<SystemTime> {
        self.retire_after
    }

    fn coordinates(&self) -> (String, String) {
        // Uncompressed SEC1 point: 0x04 ‖ x (32) ‖ y (32).
        let point = self.pair.public_key().as_ref();
        let (x, y) = point
            .get(1..)
            .unwrap_or_default()
            .split_at(point.len().saturating_sub(1) / 2);
        (b64url(x), b64url(y))
    }

    /// The public key as a JWK (jsonwebtoken's type, which also computes the RFC 7638
    /// thumbprint that is the kid), with `kid` when given.
    fn jwk(&self, kid: Option<&str>) -> Jwk {
        let (x, y) = self.coordinates();
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::ES256),
                key_id: kid.map(str::to_owned),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x,
                y,
            }),
        }
    }

    /// The public JWK as published.
    pub fn public_jwk(&self) -> Value {
        serde_json::to_value(self.jwk(Some(&self.kid))).unwrap_or(Value::Null)
    }

    fn verification_key(&self) -> DecodingKey {
        DecodingKey::from_ec_der(self.pair.public_key().as_ref())
    }

    /// Compact JWS, ES256. Written here rather than with `jsonwebtoken::encode`, whose
    /// `EncodingKey` re-parses the PKCS#8 key on every signature (a third of the cost of
    /// a token exchange's signing); the parsed pair above is reused instead.
    fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, SigningError> {
        let header = json!({"alg": "ES256", "typ": typ, "kid": self.kid});
        let payload = serde_json::to_vec(claims).map_err(|_| SigningError::Signing)?;
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(&payload)
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| SigningError::Signing)?;
        Ok(format!("{input}.{}", b64url(signature.as_ref())))
    }
}

/// A key's place in the schedule, the input of [`plan_rotation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchedule {
    /// The key id.
    pub kid: String,
    /// When it may first sign.
    pub not_before: SystemTime,
}

/// What [`plan_rotation`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPlan {
    /// The key that signs now: the newest whose `not_before` has passed.
    pub signing: Option<String>,
    /// `Some(not_before)` when a key must be generated now, to start at that time.
    pub generate: Option<SystemTime>,
    /// Keys to serve in the JWKS, oldest first.
    pub published: Vec<String>,
    /// Keys no longer needed by anyone; may be deleted.
    pub removable: Vec<String>,
}

/// Decides the signing key, whether to generate one, and what to publish, at `now`.
///
/// A key retires when its successor's `not_before` arrives.
pub fn plan_rotation(
    keys: &[KeySchedule],
    now: SystemTime,
    policy: &RotationPolicy,
) -> RotationPlan {
    let mut sorted: Vec<&KeySchedule> = keys.iter().collect();
    sorted.sort_by(|a, b| (a.not_before, &a.kid).cmp(&(b.not_before, &b.kid)));
    let signing = sorted.iter().rev().find(|k| k.not_before <= now);
    let has_next = sorted.iter().any(|k| k.not_before > now);
    let generate = match (sorted.last(), has_next) {
        (None, _) => Some(now),
        (Some(_), true) => None,
        (Some(newest), false) => {
            Some((now + policy.jwks_max_age).max(newest.not_before + policy.rotation_period))
        }
    };
    let keep_after_retirement = policy.max_token_ttl + CLOCK_SKEW;
    let mut published = Vec::new();
    let mut removable = Vec::new();
    for (i, key) in sorted.iter().enumerate() {
        let retired_at = sorted.get(i + 1).map(|next| next.not_before);
        let needed = match retired_at {
            None => true,
            Some(retired_at) => retired_at > now || retired_at + keep_after_retirement > now,
        };
        if needed {
            published.push(key.kid.clone());
        } else {
            removable.push(key.kid.clone());
        }
    }
    RotationPlan {
        signing: signing.map(|k| k.kid.clone()),
        generate,
        published,
        removable,
    }
}

/// What [`SigningKeySet::rotate`] changed, for the broker to persist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RotationOutcome {
    /// Kids of generated keys (store them, wrapped).
    pub generated: Vec<String>,
    /// Kids of removed keys (delete them from storage).
    pub removed: Vec<String>,
}

/// The broker's signing keys: previous (still published), current, next (pre-published).
#[derive(Debug)]
pub struct SigningKeySet {
    keys: Vec<SigningKey>,
    policy: RotationPolicy,
}

impl SigningKeySet {
    /// An empty set; the first [`rotate`](Self::rotate) creates the current and next keys.
    pub fn new(policy: RotationPolicy) -> Self {
        Self {
            keys: Vec::new(),
            policy,
        }
    }

    /// A set of stored keys.
    pub fn from_keys(keys: Vec<SigningKey>, policy: RotationPolicy) -> Self {
        let mut set = Self { keys, policy };
        set.reorder();
        set
    }

    /// The policy in force.
    pub fn policy(&self) -> &RotationPolicy {
        &self.policy
    }

    /// All keys held, oldest first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The key with `kid`.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The plan at `now` (pure; changes nothing).
    pub fn plan(&self, now: SystemTime) -> RotationPlan {
        let schedule: Vec<KeySchedule> = self
            .keys
            .iter()
            .map(|k| KeySchedule {
                kid: k.kid.clone(),
                not_before: k.not_before,
            })
            .collect();
        plan_rotation(&schedule, now, &self.policy)
    }

    /// Applies the plan: generates what is due (the current key on first start, and the
    /// next key) and drops keys that are no longer published.
    pub fn rotate(&mut self, now: SystemTime) -> Result<RotationOutcome, SigningError> {
        let mut outcome = RotationOutcome::default();
        // At most two rounds: bootstrap creates the current key, then the next one.
        for _ in 0..2 {
            let Some(not_before) = self.plan(now).generate else {
                break;
            };
            let key = SigningKey::generate(now, not_before)?;
            tracing::info!(kid = %key.kid, "generated broker signing key");
            outcome.generated.push(key.kid.clone());
            self.keys.push(key);
            self.reorder();
        }
        let removable = self.plan(now).removable;
        self.keys.retain(|k| !removable.contains(&k.kid));
        outcome.removed = removable;
        Ok(outcome)
    }

    fn reorder(&mut self) {
        self.keys
            .sort_by(|a, b| (a.not_before, &a.kid).cmp(&(b.not_before, &b.kid)));
        let successors: Vec<Option<SystemTime>> = (0..self.keys.len())
            .map(|i| self.keys.get(i + 1).map(|k| k.not_before))
            .collect();
        for (key, retire) in self.keys.iter_mut().zip(successors) {
            key.retire_after = retire;
        }
    }

    /// The key that signs at `now`.
    pub fn signing_key(&self, now: SystemTime) -> Option<&SigningKey> {
        let kid = self.plan(now).signing?;
        self.get(&kid)
    }

    /// Keys to publish at `now`, oldest first.
    pub fn published_keys(&self, now: SystemTime) -> Vec<&SigningKey> {
        let published = self.plan(now).published;
        self.keys
            .iter()
            .filter(|k| published.contains(&k.kid))
            .collect()
    }

    /// `GET /.well-known/jwks.json` body: every published key.
    pub fn jwks_document(&self, now: SystemTime) -> Value {
        let keys: Vec<Value> = self
            .published_keys(now)
            .into_iter()
            .map(SigningKey::public_jwk)
            .collect();
        json!({ "keys": keys })
    }
}

/// What the token endpoint decided to grant; the issuer adds `iss`, `sub`, times and `jti`.
///
/// The fields are private: claims come only from [`crate::MatchedMapping::grant`], so a
/// credential is only ever minted for a token that verified and matched one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenClaims {
    adtech: String,
    client_id: String,
    audience: String,
    scopes: Vec<String>,
    cloud: IssuerKind,
    src_iss: String,
    src_sub: String,
    ttl: Duration,
}

/// The fields of [`AccessTokenClaims`], for the constructors that may make them.
pub(crate) struct GrantedClaims {
    pub(crate) adtech: String,
    pub(crate) client_id: String,
    pub(crate) audience: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) cloud: IssuerKind,
    pub(crate) src_iss: String,
    pub(crate) src_sub: String,
    pub(crate) ttl: Duration,
}

impl AccessTokenClaims {
    pub(crate) fn granted(g: GrantedClaims) -> Self {
        AccessTokenClaims {
            adtech: g.adtech,
            client_id: g.client_id,
            audience: g.audience,
            scopes: g.scopes,
            cloud: g.cloud,
            src_iss: g.src_iss,
            src_sub: g.src_sub,
            ttl: g.ttl,
        }
    }

    /// The ad tech id; `sub` becomes `adtech:<id>`.
    pub fn adtech(&self) -> &str {
        &self.adtech
    }

    /// The mapping id (`client_id`).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `aud`.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The workload's cloud.
    pub fn cloud(&self) -> IssuerKind {
        self.cloud
    }

    /// Lifetime; at most the policy's `max_token_ttl`.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// **Tests only**: built with the `test-support` feature, which only dev-dependencies turn
/// on (Cargo does not unify dev-dependency features into normal builds, and
/// `scripts/test.sh` checks that the `keyferry` binary's dependency tree lacks it).
#[cfg(feature = "test-support")]
pub mod danger {
    use std::time::Duration;

    use super::{AccessTokenClaims, GrantedClaims};
    use crate::IssuerKind;

    /// Claims for a credential that no subject token backs: what integration tests mint to
    /// exercise the endpoints behind a credential without running an IdP.
    #[derive(Debug, Clone)]
    pub struct UncheckedClaims {
        /// The ad tech id.
        pub adtech: String,
        /// The mapping id.
        pub client_id: String,
        /// `aud`.
        pub audience: String,
        /// Scopes.
        pub scopes: Vec<String>,
        /// The workload's cloud.
        pub cloud: IssuerKind,
        /// The source `iss`.
        pub src_iss: String,
        /// The source `sub`.
        pub src_sub: String,
        /// Lifetime.
        pub ttl: Duration,
    }

    impl From<UncheckedClaims> for AccessTokenClaims {
        fn from(c: UncheckedClaims) -> Self {
            AccessTokenClaims::granted(GrantedClaims {
                adtech: c.adtech,
                client_id: c.client_id,
                audience: c.audience,
                scopes: c.scopes,
                cloud: c.cloud,
                src_iss: c.src_iss,
                src_sub: c.src_sub,
                ttl: c.ttl,
            })
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AccessTokenWire {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    jti: String,
    client_id: String,
    scope: String,
    adtech: String,
    cloud: IssuerKind,
    src_iss: String,
    src_sub: String,
}

#[derive(Debug, Serialize)]
struct OutboundWire<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: String,
}

/// A freshly minted token. The value is a bearer secret: `Debug` redacts it and it is
/// zeroized on drop.
pub struct MintedToken {
    value: Zeroizing<String>,
    jti: String,
    kid: String,
    expires_at: i64,
}

impl fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedToken")
            .field("value", &"[redacted]")
            .field("jti", &self.jti)
            .field("kid", &self.kid)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl MintedToken {
    /// The compact JWT.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The token id (for audit).
    pub fn jti(&self) -> &str {
        &self.jti
    }

    /// The signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `exp`, seconds since the Unix epoch.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

/// The broker as an issuer: its URL plus its keys.
#[derive(Debug)]
pub struct BrokerIssuer {
    issuer: String,
    keys: SigningKeySet,
}

impl BrokerIssuer {
    /// The issuer at `issuer_url` (the exact `iss` it writes) signing with `keys`.
    pub fn new(issuer_url: impl Into<String>, keys: SigningKeySet) -> Self {
        Self {
            issuer: issuer_url.into(),
            keys,
        }
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The keys.
    pub fn keys(&self) -> &SigningKeySet {
        &self.keys
    }

    /// The keys, for rotation.
    pub fn keys_mut(&mut self) -> &mut SigningKeySet {
        &mut self.keys
    }

    /// The discovery document for this issuer; an error if its URL is not one.
    pub fn discovery_document(
        &self,
        scopes_supported: &[String],
    ) -> Result<DiscoveryDocument, url::ParseError> {
        discovery_document(&self.issuer, scopes_supported)
    }

    /// The JWKS document at `now`.
    pub fn jwks_document(&self, now: SystemTime) -> Value {
        self.keys.jwks_document(now)
    }

    /// Mints an RFC 9068 access token (`typ: at+jwt`) for a granted exchange.
    pub fn mint_access_token(
        &self,
        now: SystemTime,
        claims: &AccessTokenClaims,
    ) -> Result<MintedToken, SigningError> {
        let (key, iat, exp) = self.prepare(now, claims.ttl)?;
        let jti = new_jti()?;
        let wire = AccessTokenWire {
            iss: self.issuer.clone(),
            sub: format!("adtech:{}", claims.adtech),
            aud: claims.audience.clone(),
            exp,
            iat,
            jti: jti.clone(),
            client_id: claims.client_id.clone(),
            scope: claims.scopes.join(" "),
            adtech: claims.adtech.clone(),
            cloud: claims.cloud,
            src_iss: claims.src_iss.clone(),
            src_sub: claims.src_sub.clone(),
        };
        Ok(MintedToken {
            value: Zeroizing::new(key.sign_jwt("at+jwt", &wire)?),
            jti,
            kid: key.kid.clone(),
            expires_at: exp,
        })
    }

    /// Mints the broker's own identity token (`sub = coordinator:<name>`, `typ: JWT`),
    /// traded at workload clouds' STS for KMS access and used for peer handover.
    pub fn mint_outbound_token(
        &self,
        now: SystemTime,
        coordinator_name: &str,
        audience: &str,
        ttl: Duration,
    ) -> Result<MintedToken, SigningError> {
        let (key, iat, exp) = self.prepare(now, ttl)?;
        let jti = new_jti()?;
        let wire = OutboundWire {
            iss: &self.issuer,
            sub: format!("coordinator:{coordinator_name}"),
            aud: audience,
            exp,
            iat,
            jti: jti.clone(),
        };
        Ok(MintedToken {
            value: Zeroizing::new(key.sign_jwt("JWT", &wire)?),
            jti,
            kid: key.kid.clone(),
            expires_at: exp,
        })
    }

    fn prepare(
        &self,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<(&SigningKey, i64, i64), SigningError> {
        if ttl.as_secs() == 0 || ttl > self.keys.policy.max_token_ttl {
            return Err(SigningError::InvalidTtl);
        }
        let key = self
            .keys
            .signing_key(now)
            .ok_or(SigningError::NoActiveKey)?;
        let iat = unix_seconds(now);
        Ok((key, iat, iat.saturating_add(whole_seconds(ttl))))
    }

    /// A verifier for this issuer's credentials, holding the keys published at `now`.
    pub fn credential_verifier(&self, now: SystemTime) -> CredentialVerifier {
        CredentialVerifier {
            issuer: self.issuer.clone(),
            keys: self
                .keys
                .published_keys(now)
                .into_iter()
                .map(|k| (k.kid.clone(), k.verification_key()))
                .collect(),
        }
    }
}

fn new_jti() -> Result<String, SigningError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SigningError::KeyGeneration)?;
    Ok(b64url(&bytes))
}

/// Why a federated credential was refused. Codes follow RFC 6750 where one fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialRejection {
    /// Not a credential of this broker: shape, `typ`, `alg`, key, signature, `iss` or a
    /// required claim is wrong. `reason` is a fixed phrase.
    #[error("invalid credential: {reason}")]
    InvalidToken {
        /// Which check failed.
        reason: &'static str,
    },
    /// `exp` has passed (beyond the skew).
    #[error("credential has expired")]
    Expired,
    /// Not addressed to this service.
    #[error("credential is not addressed to this service")]
    WrongAudience,
    /// The credential lacks the scope the operation needs.
    #[error("credential lacks the required scope")]
    InsufficientScope,
}

impl CredentialRejection {
    /// Stable snake_case identifier.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidToken { .. } => "invalid_token",
            Self::Expired => "expired",
            Self::WrongAudience => "wrong_audience",
            Self::InsufficientScope => "insufficient_scope",
        }
    }
}

/// A credential that passed [`CredentialVerifier::verify`]; only that function builds one.
#[derive(Debug, Clone)]
pub struct VerifiedCredential {
    sub: String,
    adtech: String,
    cloud: IssuerKind,
    client_id: String,
    scopes: Vec<String>,
    jti: String,
    exp: i64,
    iat: i64,
    src_iss: String,
    src_sub: String,
}

impl VerifiedCredential {
    /// `sub` (`adtech:<id>`).
    pub fn sub(&self) -> &str {
        &self.sub
    }
    /// The ad tech id.
    pub fn adtech(&self) -> &str {
        &self.adtech
    }
    /// The workload's cloud (never taken from the request: DESIGN §5.2).
    pub fn cloud(&self) -> IssuerKind {
        self.cloud
    }
    /// The mapping id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// Granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
    /// Token id.
    pub fn jti(&self) -> &str {
        &self.jti
    }
    /// `exp`, seconds since the Unix epoch.
    pub fn exp(&self) -> i64 {
        self.exp
    }
    /// `iat`, seconds since the Unix epoch.
    pub fn iat(&self) -> i64 {
        self.iat
    }
    /// The subject token's issuer.
    pub fn src_iss(&self) -> &str {
        &self.src_iss
    }
    /// The subject token's subject.
    pub fn src_sub(&self) -> &str {
        &self.src_sub
    }
}

/// Verifies credentials minted by a broker issuer.
pub struct CredentialVerifier {
    issuer: String,
    keys: HashMap<String, DecodingKey>,
}

impl fmt::Debug for CredentialVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("CredentialVerifier")
            .field("issuer", &self.issuer)
            .field("kids", &kids)
            .finish()
    }
}

impl CredentialVerifier {
    /// A verifier for `issuer` from its JWKS document (e.g. a peer coordinator's), keeping
    /// only P-256 keys usable for ES256 signatures.
    pub fn from_jwks(issuer: impl Into<String>, jwks: &Value) -> Self {
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|jwk| {
                let key = crate::jwks::VerificationKey::from_jwk(jwk)?;
                key.supports(Algorithm::ES256)
                    .then(|| (key.kid().to_owned(), key.decoding_key().clone()))
            })
            .collect();
        Self {
            issuer: issuer.into(),
            keys,
        }
    }

    /// Checks, in order: size and shape, `typ: at+jwt`, `alg: ES256`, a published `kid`,
    /// the signature, `iss`, `exp`/`iat` (60 s skew), `aud` contains `expected_audience`,
    /// `scope` contains `required_scope`, and the presence of every claim the broker writes.
    pub fn verify(
        &self,
        token: &str,
        expected_audience: &str,
        required_scope: &str,
        now: SystemTime,
    ) -> Result<VerifiedCredential, CredentialRejection> {
        let invalid = |reason| CredentialRejection::InvalidToken { reason };
        if token.len() > MAX_CREDENTIAL_BYTES {
            return Err(invalid("credential is too large"));
        }
        let jws = parse_compact(token).map_err(invalid)?;
        let header_str = |name: &str| jws.header.get(name).and_then(Value::as_str);
        let typ_ok = header_str("typ").is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(invalid("typ is not at+jwt"));
        }
        if header_str("alg") != Some("ES256") {
            return Err(invalid("alg is not ES256"));
        }
        let key = header_str("kid")
            .and_then(|kid| self.keys.get(kid))
            .ok_or(invalid("kid is not a published key"))?;
        let verified = jsonwebtoken::crypto::verify(
            jws.signature_b64,
            jws.signing_input.as_bytes(),
            key,
            Algorithm::ES256,
        );
        if !matches!(verified, Ok(true)) {
            return Err(invalid("signature is invalid"));
        }
        let claims = &jws.payload;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(self.issuer.as_str()) {
            return Err(invalid("iss is not this broker"));
        }
        let exp = claims
            .get("exp")
            .and_then(numeric_date)
            .ok_or(invalid("no exp"))?;
        let iat = claims
            .get("iat")
            .and_then(numeric_date)
            .ok_or(invalid("no iat"))?;
        let now = unix_seconds(now);
        let skew = whole_seconds(CLOCK_SKEW);
        if now.saturating_sub(skew) >= exp {
            return Err(CredentialRejection::Expired);
        }
        if iat > now.saturating_add(skew) {
            return Err(invalid("issued in the future"));
        }
        let aud_ok = audiences(claims.get("aud"))
            .is_some_and(|aud| aud.iter().any(|a| a == expected_audience));
        if !aud_ok {
            return Err(CredentialRejection::WrongAudience);
        }
        let scopes: Vec<String> = text("scope")
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|s| s == required_scope) {
            return Err(CredentialRejection::InsufficientScope);
        }
        let required = |name: &'static str| {
            text(name)
                .map(str::to_owned)
                .ok_or(CredentialRejection::InvalidToken {
                    reason: "a required claim is missing",
                })
        };
        let cloud = claims
            .get("cloud")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or(invalid("cloud claim is missing or unknown"))?;
        Ok(VerifiedCredential {
            sub: required("sub")?,
            adtech: required("adtech")?,
            cloud,
            client_id: required("client_id")?,
            scopes,
            jti: required("jti")?,
            exp,
            iat,
            src_iss: required("src_iss")?,
            src_sub: required("src_sub")?,
        })
    }
}

#[cfg(test)]
mod tests;
