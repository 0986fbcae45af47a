//! Key distribution to workloads (DESIGN §5.2, §5.3).
//!
//! # Layout
//! - [`Distribution`] (here): what the key endpoints use, and nothing else.
//! - `access`: [`KeyAccess`](access::KeyAccess), the one authorization check
//!   (servable key, onboarded ad tech, enabled cloud) both paths share.
//! - `material`: the only way this coordinator's split material leaves it:
//!   an `OwnMaterial` is made only from a `&VerifiedEvidence` (attested
//!   release) or an [`Unattested`] proof that only the "this use case does
//!   not require attestation" check returns.
//! - `encryption_key`: the Privacy Sandbox `EncryptionKey` document.
//! - `challenge`: `POST /v1/attestation/challenge`, single-use nonces.
//! - `release`: `POST /v1/encryptionKeys:release`, attested release: SNP
//!   evidence through the `attestation` crate, the release policy in force,
//!   HPKE sealing to the TEE key, every release and refusal audited.
//! - `fetch`: `GET /v1alpha/encryptionKeys/{keyId}` and `:recent`, for use
//!   cases that do not require attestation.
//! - `error`: [`KeyApiError`], answered in the Privacy Sandbox error body.
//!
//! The workload's cloud always comes from its credential, never from the
//! request: a workload cannot ask for another cloud's wrapped split.

mod access;
mod challenge;
mod encryption_key;
mod error;
mod fetch;
mod material;
mod release;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use cloud_adapters::{Cloud, KeyWrapper};
use idp::Clock;

pub use access::KeyAccess;
pub use error::KeyApiError;
pub use material::{OwnMaterial, SplitMaterial, Unattested};
pub use release::{Release, ReleaseSetupError};

use crate::audit::Audit;
use crate::config::{Config, Role, UnwrapMode, UseCaseConfig};
use crate::federation::CredentialCheck;
use crate::http::Metrics;
use crate::storage::Store;

/// The key endpoints' service: the store, the clock, the audit log, this
/// coordinator's role and use cases, each enabled workload cloud's KEK, the
/// split reader and attested release. Handlers take `State<Arc<Distribution>>`
/// (and the `Caller` extractor the issuer); nothing here names the
/// application's state.
pub struct Distribution {
    store: Store,
    clock: Arc<dyn Clock>,
    audit: Arc<dyn Audit>,
    metrics: Arc<Metrics>,
    role: Role,
    use_cases: Vec<UseCaseConfig>,
    clouds: Vec<WorkloadCloud>,
    material: SplitMaterial,
    release: Release,
}

/// An enabled workload cloud: its KEK and how its workloads unwrap.
struct WorkloadCloud {
    cloud: Cloud,
    kek: Arc<dyn KeyWrapper>,
    unwrap: UnwrapMode,
}

/// What [`Distribution::new`] is built from (the server passes what it opened).
pub struct DistributionParts {
    /// The database.
    pub store: Store,
    /// The instance's clock.
    pub clock: Arc<dyn Clock>,
    /// Where releases and refusals are audited.
    pub audit: Arc<dyn Audit>,
    /// Attestation failure counters.
    pub metrics: Arc<Metrics>,
    /// The storage KEK (for `unwrap = "broker"` clouds).
    pub storage_kek: Arc<dyn KeyWrapper>,
    /// Each enabled workload cloud's KEK, by cloud name.
    pub cloud_keks: Vec<(Cloud, Arc<dyn KeyWrapper>)>,
}

impl Distribution {
    /// The service for `config`'s role, use cases and clouds.
    pub fn new(config: &Config, parts: DistributionParts) -> Result<Self, ReleaseSetupError> {
        let enabled = config.clouds.enabled();
        let clouds = parts
            .cloud_keks
            .into_iter()
            .map(|(cloud, kek)| WorkloadCloud {
                cloud,
                kek,
                unwrap: enabled
                    .iter()
                    .find(|(c, _)| *c == cloud)
                    .map(|(_, c)| c.unwrap)
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Distribution {
            material: SplitMaterial::new(parts.store.clone(), parts.storage_kek),
            release: Release::open(config, &parts.store)?,
            store: parts.store,
            clock: parts.clock,
            audit: parts.audit,
            metrics: parts.metrics,
            role: config.coordinator.role,
            use_cases: config.use_cases.clone(),
            clouds,
        })
    }

    /// Now, in Unix ms, by this instance's clock.
    fn now_ms(&self) -> i64 {
        crate::time::unix_ms(self.clock.now())
    }

    /// Every minute, forgets the challenge limits of identities not seen
    /// for a while, so their memory follows the active population.
    pub fn spawn_housekeeping(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                service
                    .release
                    .prune_challenge_limits(service.now_ms())
                    .await;
            }
        })
    }
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distribution")
            .field("role", &self.role)
            .field("release", &self.release)
            .finish_non_exhaustive()
    }
}

pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Distribution>: FromRef<S>,
    CredentialCheck: FromRef<S>,
{
    Router::new()
        .route("/v1alpha/encryptionKeys:recent", get(fetch::recent_keys))
        .route("/v1alpha/encryptionKeys/{key_id}", get(fetch::get_key))
        .route("/v1/attestation/challenge", post(challenge::challenge))
        .route("/v1/encryptionKeys:release", post(release::release))
}

/// Parses a release policy document (what governance accepts).
pub fn parse_release_policy(
    policy: &serde_json::Value,
) -> Result<attestation::ReleasePolicy, String> {
    attestation::ReleasePolicy::from_json(&policy.to_string()).map_err(|e| e.to_string())
}
