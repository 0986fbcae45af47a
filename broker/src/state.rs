//! What every handler can reach. Cloning is shallow: every field is an `Arc`
//! or a pool handle.

use std::sync::Arc;

use axum::extract::FromRef;
use cloud_adapters::KeyWrapper;
use idp::Clock;

use crate::admin::AdminAuth;
use crate::audit::{Audit, TransparencyLog};
use crate::config::Config;
use crate::distribution::Release;
use crate::federation::Federation;
use crate::governance::Governance;
use crate::http::Metrics;
use crate::issuer::Issuer;
use crate::lifecycle::KeyService;
use crate::storage::Store;

/// Shared state of one broker instance.
#[derive(Clone)]
pub struct AppState {
    /// The loaded, checked configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// The KEK that wraps everything this coordinator stores.
    pub storage_kek: Arc<dyn KeyWrapper>,
    /// This instance's metric registry.
    pub metrics: Arc<Metrics>,
    /// Time, moved by tests instead of sleeping.
    pub clock: Arc<dyn Clock>,
    /// The broker's own OIDC issuer.
    pub issuer: Arc<Issuer>,
    /// Trusted issuers, subject-token validation, rate limits.
    pub federation: Arc<Federation>,
    /// Operator authentication.
    pub admin_auth: Arc<AdminAuth>,
    /// Where audited events go (the transparency log, as the interface).
    pub audit: Arc<dyn Audit>,
    /// The transparency log itself: tree heads and proofs.
    pub audit_log: Arc<TransparencyLog>,
    /// The key lifecycle.
    pub keys: Arc<KeyService>,
    /// Each enabled workload cloud's KEK, by cloud name.
    pub cloud_keks: Vec<(&'static str, Arc<dyn KeyWrapper>)>,
    /// Governance of release policies.
    pub governance: Arc<Governance>,
    /// Attested release: the evidence verifier and the policy files.
    pub release: Arc<Release>,
}

impl AppState {
    /// Now, in Unix ms, by this instance's clock.
    pub fn now_ms(&self) -> i64 {
        crate::issuer::unix_ms(self.clock.now())
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}
