//! Discovery and JWKS caching for trusted issuers.
//!
//! Verifying a token needs the issuer's public key, and fetching it per token would make
//! every exchange depend on the issuer's availability and latency. [`JwksCache`] keeps the
//! key set of each issuer in memory under these rules (DESIGN §3.1, §3.3):
//!
//! - a key set lives for the JWKS response's `Cache-Control: max-age`, clamped to
//!   [5 min, 24 h] (5 min when absent);
//! - a token whose `kid` is unknown, or a lookup after the set expired, triggers a refresh,
//!   but at most one refresh attempt per issuer per minute, so a flood of tokens with
//!   made-up `kid`s cannot turn the broker into a traffic amplifier against an issuer;
//! - concurrent callers that need a refresh share one in-flight fetch (single flight);
//! - a failed refresh keeps the previous keys until their own expiry; after that, lookups
//!   fail with [`JwksError::IssuerUnreachable`].
//!
//! The cache never refreshes ahead of expiry on its own: the contract is "cached keys keep
//! working until their cache expires", and a background task would be the broker's choice.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use url::Url;

use crate::clock::Clock;
use crate::discovery::DiscoveryDocument;
use crate::issuer::{UrlProblem, check_url};
use crate::jose::b64url_decode;

/// Tunables of the cache; [`JwksPolicy::default`] is the DESIGN contract.
#[derive(Debug, Clone)]
pub struct JwksPolicy {
    /// Lower bound on a key set's lifetime (and the lifetime when the issuer sends no
    /// `max-age`): 300 s.
    pub min_max_age: Duration,
    /// Upper bound on a key set's lifetime: 86 400 s.
    pub max_max_age: Duration,
    /// Minimum time between two refresh attempts for one issuer: 60 s.
    pub min_refresh_interval: Duration,
    /// Whole-request timeout of each HTTP fetch: 5 s.
    pub http_timeout: Duration,
    /// Largest accepted discovery or JWKS body: 256 KiB.
    pub max_response_bytes: usize,
    /// Dev profile only: accept `http://` discovery and JWKS URLs on loopback hosts.
    pub allow_http_loopback: bool,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            min_max_age: Duration::from_secs(300),
            max_max_age: Duration::from_secs(86_400),
            min_refresh_interval: Duration::from_secs(60),
            http_timeout: Duration::from_secs(5),
            max_response_bytes: 256 * 1024,
            allow_http_loopback: false,
        }
    }
}

/// The curve of an EC verification key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcCurve {
    /// NIST P-256, used with ES256.
    P256,
    /// NIST P-384, used with ES384.
    P384,
}

/// The type of a verification key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA (RS256/384/512, PS256/384/512).
    Rsa,
    /// Elliptic curve.
    Ec(EcCurve),
}

/// One public key from an issuer's JWKS.
pub struct VerificationKey {
    kid: String,
    kind: KeyKind,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// RSA or EC (with its curve).
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The `alg` the JWK pins, if any.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// Whether a signature made with `alg` can come from this key: the family (and for EC
    /// the curve) must match, and so must the JWK's own `alg` when it names one. This is
    /// what stops an RSA key being used to check an ES256 signature, or the reverse.
    pub fn supports(&self, alg: Algorithm) -> bool {
        let family_ok = match self.kind {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::Ec(EcCurve::P256) => alg == Algorithm::ES256,
            KeyKind::Ec(EcCurve::P384) => alg == Algorithm::ES384,
        };
        family_ok && self.alg.is_none_or(|pinned| pinned == alg)
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// Parses one JWK; `None` for keys this crate does not use (wrong `use`, no `kid`,
    /// symmetric, OKP, unknown `alg`, RSA below 2048 bits, malformed coordinates).
    pub(crate) fn from_jwk(jwk: &Value) -> Option<Self> {
        let str_field = |name: &str| jwk.get(name).and_then(Value::as_str);
        if jwk.get("use").is_some() && str_field("use") != Some("sig") {
            return None;
        }
        let kid = str_field("kid").filter(|k| !k.is_empty())?.to_owned();
        let alg = match jwk.get("alg") {
            None => None,
            Some(v) => Some(v.as_str()?.parse::<Algorithm>().ok()?),
        };
        let (kind, key) = match str_field("kty")? {
            "RSA" => {
                let (n, e) = (str_field("n")?, str_field("e")?);
                let modulus = b64url_decode(n)?;
                let significant = modulus.iter().skip_while(|b| **b == 0).count();
                if significant < 256 || b64url_decode(e)?.is_empty() {
                    return None;
                }
                (KeyKind::Rsa, DecodingKey::from_rsa_components(n, e).ok()?)
            }
            "EC" => {
                let (curve, len) = match str_field("crv")? {
                    "P-256" => (EcCurve::P256, 32),
                    "P-384" => (EcCurve::P384, 48),
                    _ => return None,
                };
                let (x, y) = (str_field("x")?, str_field("y")?);
                if b64url_decode(x)?.len() != len || b64url_decode(y)?.len() != len {
                    return None;
                }
                (
                    KeyKind::Ec(curve),
                    DecodingKey::from_ec_components(x, y).ok()?,
                )
            }
            _ => return None,
        };
        let parsed = Self {
            kid,
            kind,
            alg,
            key,
        };
        // A JWK that pins an algorithm of another family is inconsistent: skip it.
        if let Some(pinned) = alg
            && !parsed.supports(pinned)
        {
            return None;
        }
        Some(parsed)
    }
}

/// Why a key could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The issuer's current key set has no key with this `kid` (after the allowed refresh).
    #[error("the issuer publishes no key with this kid")]
    UnknownKid,
    /// No fresh key set is cached and the issuer could not be reached or answered badly.
    #[error("the issuer's keys could not be fetched: {0}")]
    IssuerUnreachable(FetchFailure),
}

/// What went wrong fetching discovery or the JWKS. Carries no response bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchFailure {
    /// No refresh has completed yet (another caller's attempt is rate-limited).
    #[error("no key set fetched yet")]
    NotFetched,
    /// The request timed out.
    #[error("request timed out")]
    Timeout,
    /// Could not connect (refused, DNS, TLS).
    #[error("could not connect")]
    Connect,
    /// Another transport error.
    #[error("transport error")]
    Transport,
    /// The server answered with a non-2xx status (redirects are not followed).
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The body exceeded the size limit.
    #[error("response larger than the limit")]
    TooLarge,
    /// The discovery document is unusable.
    #[error("invalid discovery document: {0}")]
    InvalidDiscovery(&'static str),
    /// The discovery document names a different issuer than the one configured.
    #[error("discovery document names a different issuer")]
    IssuerMismatch,
    /// The discovered or configured JWKS URI is not acceptable.
    #[error("jwks_uri: {0}")]
    BadJwksUri(UrlProblem),
    /// The JWKS document is unusable.
    #[error("invalid JWKS: {0}")]
    InvalidJwks(&'static str),
}

/// Counters for metrics (`/metrics`: JWKS refreshes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JwksStats {
    /// Refresh attempts (discovery + JWKS) made for the issuer.
    pub fetches: u64,
    /// Refresh attempts that failed.
    pub failures: u64,
    /// Keys in the cached set.
    pub keys: usize,
    /// When the cached set expires, if one is cached.
    pub expires_at: Option<SystemTime>,
}

/// In-memory, per-issuer JWKS cache. Cloning is shallow (an `Arc`).
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksCache")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    policy: JwksPolicy,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

/// Cache state of one issuer.
struct Entry {
    /// Explicitly configured JWKS location (otherwise discovery).
    jwks_uri: Option<Url>,
    state: Mutex<EntryState>,
    /// Held while fetching: the single-flight gate.
    refresh: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    failures: AtomicU64,
}

#[derive(Default)]
struct EntryState {
    keys: Option<KeySet>,
    last_attempt: Option<SystemTime>,
    /// Bumped by every completed attempt; a waiter that sees it changed knows someone else
    /// just refreshed and does not fetch again.
    generation: u64,
    last_failure: Option<FetchFailure>,
}

struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    expires_at: SystemTime,
}

enum Lookup {
    Found(Arc<VerificationKey>),
    Refresh,
    Fail(JwksError),
}

/// Builds a client for issuer fetches: rustls, whole-request timeout, no redirects
/// (a redirect would let a compromised discovery host point us anywhere).
pub fn default_http_client(policy: &JwksPolicy) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(policy.http_timeout)
        .connect_timeout(policy.http_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("keyferry-idp/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl JwksCache {
    /// A cache with its own HTTP client (see [`default_http_client`]).
    pub fn new(clock: Arc<dyn Clock>, policy: JwksPolicy) -> Result<Self, reqwest::Error> {
        let http = default_http_client(&policy)?;
        Ok(Self::with_client(http, clock, policy))
    }

    /// A cache using `http`, e.g. a client that trusts a test CA. The client's own
    /// timeout and redirect settings apply.
    pub fn with_client(http: reqwest::Client, clock: Arc<dyn Clock>, policy: JwksPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                clock,
                policy,
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &JwksPolicy {
        &self.inner.policy
    }

    /// The key `kid` of `issuer`, fetching or refreshing under the module's rules.
    ///
    /// `jwks_uri` is the issuer's explicit JWKS location, or `None` for discovery. If it
    /// differs from the one the cached entry was built with, the entry starts over.
    pub async fn get_key(
        &self,
        issuer: &str,
        jwks_uri: Option<&Url>,
        kid: &str,
    ) -> Result<Arc<VerificationKey>, JwksError> {
        let entry = self.entry(issuer, jwks_uri);
        let seen_generation = {
            let state = lock(&entry.state);
            match self.lookup(&state, kid, true) {
                Lookup::Found(key) => return Ok(key),
                Lookup::Fail(err) => return Err(err),
                Lookup::Refresh => state.generation,
            }
        };

        let _flight = entry.refresh.lock().await;
        {
            let state = lock(&entry.state);
            if state.generation != seen_generation {
                // Someone refreshed while we waited: use their result.
                return match self.lookup(&state, kid, false) {
                    Lookup::Found(key) => Ok(key),
                    Lookup::Fail(err) => Err(err),
                    Lookup::Refresh => Err(JwksError::UnknownKid),
                };
            }
        }

        let attempt_started = self.inner.clock.now();
        let result = self.fetch(issuer, entry.jwks_uri.as_ref()).await;
        entry.fetches.fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&entry.state);
        state.generation += 1;
        state.last_attempt = Some(attempt_started);
        match result {
            Ok(key_set) => {
                tracing::info!(
                    issuer,
                    keys = key_set.keys.len(),
                    "refreshed issuer signing keys"
                );
                state.keys = Some(key_set);
                state.last_failure = None;
            }
            Err(failure) => {
                entry.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(issuer, %failure, "issuer key refresh failed");
                state.last_failure = Some(failure);
            }
        }
        match self.lookup(&state, kid, false) {
            Lookup::Found(key) => Ok(key),
            Lookup::Fail(err) => Err(err),
            Lookup::Refresh => Err(JwksError::UnknownKid),
        }
    }

    /// Metrics for `issuer`, if it has been looked up.
    pub fn stats(&self, issuer: &str) -> Option<JwksStats> {
        let entry = lock(&self.inner.entries).get(issuer).cloned()?;
        let state = lock(&entry.state);
        Some(JwksStats {
            fetches: entry.fetches.load(Ordering::Relaxed),
            failures: entry.failures.load(Ordering::Relaxed),
            keys: state.keys.as_ref().map_or(0, |k| k.keys.len()),
            expires_at: state.keys.as_ref().map(|k| k.expires_at),
        })
    }

    /// Number of refresh attempts made for `issuer` (0 if never looked up).
    pub fn fetch_count(&self, issuer: &str) -> u64 {
        self.stats(issuer).map_or(0, |s| s.fetches)
    }

    /// Drops everything cached for `issuer` (call when an issuer is removed).
    pub fn forget(&self, issuer: &str) {
        lock(&self.inner.entries).remove(issuer);
    }

    fn entry(&self, issuer: &str, jwks_uri: Option<&Url>) -> Arc<Entry> {
        let mut entries = lock(&self.inner.entries);
        if let Some(entry) = entries.get(issuer)
            && entry.jwks_uri.as_ref() == jwks_uri
        {
            return Arc::clone(entry);
        }
        let entry = Arc::new(Entry {
            jwks_uri: jwks_uri.cloned(),
            state: Mutex::new(EntryState::default()),
            refresh: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        entries.insert(issuer.to_owned(), Arc::clone(&entry));
        entry
    }

    fn lookup(&self, state: &EntryState, kid: &str, may_refresh: bool) -> Lookup {
        let now = self.inner.clock.now();
        let fresh = state.keys.as_ref().filter(|set| now < set.expires_at);
        if let Some(key) = fresh.and_then(|set| set.keys.get(kid)) {
            return Lookup::Found(Arc::clone(key));
        }
        let interval_passed = state.last_attempt.is_none_or(|last| {
            now.duration_since(last).map_or(true, |elapsed| {
                elapsed >= self.inner.policy.min_refresh_interval
            })
        });
        if may_refresh && interval_passed {
            return Lookup::Refresh;
        }
        if fresh.is_some() {
            Lookup::Fail(JwksError::UnknownKid)
        } else {
            Lookup::Fail(JwksError::IssuerUnreachable(
                state
                    .last_failure
                    .clone()
                    .unwrap_or(FetchFailure::NotFetched),
            ))
        }
    }

    async fn fetch(&self, issuer: &str, explicit: Option<&Url>) -> Result<KeySet, FetchFailure> {
        let policy = &self.inner.policy;
        let jwks_uri = match explicit {
            Some(uri) => check_url(uri.as_str(), policy.allow_http_loopback)
                .map_err(FetchFailure::BadJwksUri)?,
            None => self.discover(issuer).await?,
        };
        let (body, max_age) = self.get_json(&jwks_uri).await?;
        let keys = parse_jwks(&body)?;
        Ok(KeySet {
            keys,
            expires_at: self.inner.clock.now() + max_age,
        })
    }

    async fn discover(&self, issuer: &str) -> Result<Url, FetchFailure> {
        let policy = &self.inner.policy;
        let base = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let url = check_url(&base, policy.allow_http_loopback)
            .map_err(|_| FetchFailure::InvalidDiscovery("issuer URL is not fetchable"))?;
        let (doc, _) = self.get_json(&url).await?;
        let doc: DiscoveryDocument = serde_json::from_value(doc).map_err(|_| {
            FetchFailure::InvalidDiscovery("issuer and jwks_uri must be present and URLs")
        })?;
        if doc.issuer.as_str() != issuer {
            return Err(FetchFailure::IssuerMismatch);
        }
        check_url(doc.jwks_uri.as_str(), policy.allow_http_loopback)
            .map_err(FetchFailure::BadJwksUri)
    }

    /// GETs `url`, enforcing status, size limit and JSON; returns the body and the
    /// clamped `max-age`.
    async fn get_json(&self, url: &Url) -> Result<(Value, Duration), FetchFailure> {
        let limit = self.inner.policy.max_response_bytes;
        let mut response = self
            .inner
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchFailure::HttpStatus(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(FetchFailure::TooLarge);
        }
        let max_age = self.max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(FetchFailure::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let value = serde_json::from_slice(&body)
            .map_err(|_| FetchFailure::InvalidJwks("body is not JSON"))?;
        Ok((value, max_age))
    }

    fn max_age(&self, headers: &reqwest::header::HeaderMap) -> Duration {
        let policy = &self.inner.policy;
        let declared = cache_control_max_age(
            headers
                .get_all(reqwest::header::CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        declared
            .unwrap_or(policy.min_max_age)
            .clamp(policy.min_max_age, policy.max_max_age)
    }

    /// Test hook: installs a key set as if fetched now, valid for `max_age`.
    #[cfg(test)]
    pub(crate) fn preload(&self, issuer: &str, jwks: &Value, max_age: Duration) {
        let entry = self.entry(issuer, None);
        let mut state = lock(&entry.state);
        let keys = parse_jwks(jwks).unwrap_or_default();
        state.keys = Some(KeySet {
            keys,
            expires_at: self.inner.clock.now() + max_age,
        });
        state.last_attempt = Some(self.inner.clock.now());
        state.generation += 1;
    }
}

/// `max-age` from `Cache-Control` header values; `no-store`/`no-cache` mean "as short as
/// allowed" (the caller clamps zero up to the minimum).
fn cache_control_max_age<'a>(values: impl Iterator<Item = &'a str>) -> Option<Duration> {
    let mut max_age = None;
    for directive in values.flat_map(|v| v.split(',')) {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        if let Some((name, value)) = directive.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
            && let Ok(secs) = value.trim().trim_matches('"').parse::<u64>()
        {
            max_age = Some(Duration::from_secs(secs));
        }
    }
    max_age
}

fn parse_jwks(doc: &Value) -> Result<HashMap<String, Arc<VerificationKey>>, FetchFailure> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(FetchFailure::InvalidJwks("no keys array"))?;
    let mut parsed = HashMap::new();
    for jwk in keys {
        if let Some(key) = VerificationKey::from_jwk(jwk) {
            // First key wins on duplicate kids; a JWKS with duplicates is already broken.
            parsed
                .entry(key.kid.clone())
                .or_insert_with(|| Arc::new(key));
        }
    }
    if parsed.is_empty() {
        return Err(FetchFailure::InvalidJwks("no usable signing keys"));
    }
    Ok(parsed)
}

fn classify(err: reqwest::Error) -> FetchFailure {
    if err.is_timeout() {
        FetchFailure::Timeout
    } else if err.is_connect() {
        FetchFailure::Connect
    } else {
        FetchFailure::Transport
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
