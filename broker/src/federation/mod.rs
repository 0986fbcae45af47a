//! Identity federation (DESIGN §3): the trusted-issuer registry, the RFC 8693
//! token exchange, and the extractor that checks the credentials it issues.
//!
//! - `token`: `POST /v1/token`.
//! - `credential`: [`Caller`], the extractor every protected workload
//!   endpoint takes; a handler without it cannot see a caller.
//! - `direct`: a workload ID token as that Bearer, exchanged on the spot,
//!   for the issuers that opt in (`accept_as_bearer`).
//! - `refusals`: which refused exchanges are audited one by one, and the
//!   counts of the rest.
//!
//! The trusted issuers are the configured `[[issuers]]` plus those added
//! through the admin API (stored, loaded at start); both live in one
//! [`idp::IssuerRegistry`] that the validator reads on every request.

mod credential;
mod direct;
mod refusals;
mod token;

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::post;
use idp::{Clock, IssuerConfig, IssuerRegistry, JwksCache, JwksPolicy, TokenValidator};

pub use credential::{
    Caller, CredentialCheck, CredentialError, KeysRead, KeysRelease, RequiredScope,
};

use crate::audit::{Audit, AuditEvent};
use crate::config::Config;
use crate::http::Metrics;
use crate::issuer::Issuer;
use crate::rate_limit::{IdentityLimiter, TOKEN_EXCHANGES};
use crate::storage::Store;
use refusals::Refusals;

/// Why the federation service could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// A configured or stored issuer is invalid.
    #[error("issuer `{name}`: {problem}")]
    Issuer {
        /// Its name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    /// The HTTP client for JWKS fetching could not be built.
    #[error("JWKS client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The token exchange's shared parts.
pub struct Federation {
    validator: TokenValidator,
    configured: HashSet<String>,
    audiences: Vec<String>,
    token_ttl: Duration,
    limiter: IdentityLimiter,
    refusals: Refusals,
    /// Issuers (`iss`) whose tokens the key endpoints take as the Bearer.
    bearer_issuers: HashSet<String>,
    direct: direct::DirectBearers,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("issuers", &self.validator.issuers())
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl Federation {
    /// Builds the registry from configuration and storage.
    pub async fn open(
        config: &Config,
        store: &Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Federation>, FederationError> {
        let dev = config.is_dev();
        let registry = IssuerRegistry::new(dev);
        let mut configured = HashSet::new();
        let mut bearer_issuers = HashSet::new();
        for entry in &config.issuers {
            let issuer = entry.to_idp().map_err(|problem| FederationError::Issuer {
                name: entry.name.clone(),
                problem,
            })?;
            configured.insert(issuer.issuer.clone());
            if entry.accept_as_bearer {
                bearer_issuers.insert(issuer.issuer.clone());
            }
            insert(&registry, issuer)?;
        }
        for stored in store.issuers().await? {
            let issuer: IssuerConfig =
                serde_json::from_value(stored.document.clone()).map_err(|e| {
                    FederationError::Issuer {
                        name: stored.name.clone(),
                        problem: e.to_string(),
                    }
                })?;
            insert(&registry, issuer)?;
        }
        let policy = JwksPolicy {
            allow_http_loopback: dev,
            ..JwksPolicy::default()
        };
        let jwks = JwksCache::new(clock.clone(), policy)?;
        let mut audiences = vec![config.public_url()];
        audiences.extend(config.federation.audiences.iter().cloned());
        let per_minute =
            NonZeroU32::new(config.federation.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
        Ok(Arc::new(Federation {
            validator: TokenValidator::new(registry, jwks, clock),
            configured,
            audiences,
            token_ttl: config.federation.token_ttl,
            limiter: IdentityLimiter::new(store, TOKEN_EXCHANGES, per_minute),
            refusals: Refusals::new(config.federation.audited_refusals_per_minute),
            bearer_issuers,
            direct: direct::DirectBearers::default(),
        }))
    }

    /// The issuer registry (shared with onboarding, which adds and removes).
    pub fn registry(&self) -> &IssuerRegistry {
        self.validator.issuers()
    }

    /// Whether an issuer comes from `keyferry.toml` (and so cannot be
    /// removed through the API).
    pub fn is_configured(&self, issuer_url: &str) -> bool {
        self.configured.contains(issuer_url)
    }

    /// Forgets a removed issuer: its registry entry and cached keys.
    pub fn remove_issuer(&self, issuer_url: &str) {
        self.validator.remove_issuer(issuer_url);
    }

    /// Once a minute: drops rate-limit state of identities not seen for a
    /// while, so the limiter's memory follows the active population, and
    /// writes the counts of refusals of a minute that ended.
    pub async fn housekeeping(&self, audit: &dyn Audit, now_ms: i64) {
        self.limiter.prune(now_ms).await;
        record_counts(audit, now_ms, self.refusals.ended(now_ms)).await;
    }

    /// Runs [`Federation::housekeeping`] every minute.
    pub fn spawn_housekeeping(
        self: &Arc<Self>,
        audit: Arc<dyn Audit>,
        clock: Arc<dyn Clock>,
    ) -> tokio::task::JoinHandle<()> {
        let federation = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                federation
                    .housekeeping(audit.as_ref(), crate::time::unix_ms(clock.now()))
                    .await;
            }
        })
    }
}

/// Writes refusal counts; one that cannot be written is logged instead
/// (its request was answered long ago).
async fn record_counts(audit: &dyn Audit, now_ms: i64, counts: Vec<AuditEvent>) {
    for event in counts {
        let details = event.details.clone();
        if let Err(e) = audit.record(now_ms, event).await {
            tracing::error!(error = %e, %details, "cannot record refusal counts");
        }
    }
}

fn insert(registry: &IssuerRegistry, issuer: IssuerConfig) -> Result<(), FederationError> {
    let name = issuer.name.clone();
    registry
        .insert(issuer)
        .map(|_| ())
        .map_err(|e| FederationError::Issuer {
            name,
            problem: e.to_string(),
        })
}

/// What the token exchange uses; the application takes it from its state
/// (`FromRef`), so this feature never sees the rest.
#[derive(Clone)]
pub struct ExchangeState {
    /// Trusted issuers, validation, rate limits.
    pub federation: Arc<Federation>,
    /// The broker's own issuer, which mints the credential.
    pub issuer: Arc<Issuer>,
    /// Mappings.
    pub store: Store,
    /// Where every decision is recorded.
    pub audit: Arc<dyn Audit>,
    /// Token decision counters.
    pub metrics: Arc<Metrics>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ExchangeState: FromRef<S>,
{
    Router::new().route("/v1/token", post(token::exchange))
}

/// A stored mapping as the rule `idp` evaluates.
pub(crate) fn mapping_rule(record: &crate::storage::MappingRecord) -> Result<idp::Mapping, String> {
    Ok(idp::Mapping {
        id: record.id.clone(),
        adtech: record.adtech.clone(),
        issuer: record.issuer.clone(),
        subject: record.subject.clone(),
        conditions: serde_json::from_value(record.conditions.clone()).map_err(|e| e.to_string())?,
        scopes: record.scopes.clone(),
        cloud: serde_json::from_value(serde_json::Value::String(record.cloud.clone()))
            .map_err(|e| e.to_string())?,
        enabled: record.enabled,
    })
}
