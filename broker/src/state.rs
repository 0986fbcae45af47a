//! What every handler can reach. Cloning is shallow: every field is an `Arc`
//! or a pool handle.

use std::sync::Arc;

use axum::extract::FromRef;
use cloud_adapters::{Cloud, KeyWrapper};
use idp::Clock;

use crate::admin::AdminState;
use crate::audit::witness::Witness;
use crate::audit::{Audit, TransparencyLog};
use crate::config::Config;
use crate::distribution::Distribution;
use crate::federation::{CredentialCheck, ExchangeState, Federation};
use crate::governance::{Governance, GovernanceState};
use crate::http::{KekProbes, Metrics};
use crate::issuer::Issuer;
use crate::lifecycle::{KeyService, LifecycleState};
use crate::operator::AdminAuth;
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
    /// This coordinator as the witness of its peer's log (none without a
    /// peer).
    pub witness: Option<Arc<Witness>>,
    /// The key lifecycle.
    pub keys: Arc<KeyService>,
    /// Each enabled workload cloud's KEK, by cloud name.
    pub cloud_keks: Vec<(Cloud, Arc<dyn KeyWrapper>)>,
    /// Governance of release policies.
    pub governance: Arc<Governance>,
    /// The key endpoints and attested release.
    pub distribution: Arc<Distribution>,
    /// `/readyz`'s KEK probes, kept between calls.
    pub kek_probes: Arc<KekProbes>,
}

impl AppState {
    /// Now, in Unix ms, by this instance's clock.
    pub fn now_ms(&self) -> i64 {
        crate::time::unix_ms(self.clock.now())
    }
}

/// The parts extractors and services take from the state (`FromRef`), so that none of
/// them needs the whole [`AppState`].
macro_rules! parts_from_state {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    )*};
}

impl FromRef<AppState> for ExchangeState {
    fn from_ref(state: &AppState) -> Self {
        ExchangeState {
            federation: state.federation.clone(),
            issuer: state.issuer.clone(),
            store: state.store.clone(),
            audit: state.audit.clone(),
            metrics: state.metrics.clone(),
            clock: state.clock.clone(),
        }
    }
}

impl FromRef<AppState> for CredentialCheck {
    fn from_ref(state: &AppState) -> Self {
        ExchangeState::from_ref(state).into()
    }
}

impl FromRef<AppState> for AdminState {
    fn from_ref(state: &AppState) -> Self {
        AdminState {
            federation: state.federation.clone(),
            store: state.store.clone(),
            audit: state.audit.clone(),
            clock: state.clock.clone(),
            config: state.config.clone(),
        }
    }
}

impl FromRef<AppState> for GovernanceState {
    fn from_ref(state: &AppState) -> Self {
        GovernanceState {
            governance: state.governance.clone(),
            store: state.store.clone(),
            audit: state.audit.clone(),
            clock: state.clock.clone(),
        }
    }
}

impl FromRef<AppState> for LifecycleState {
    fn from_ref(state: &AppState) -> Self {
        LifecycleState {
            keys: state.keys.clone(),
            store: state.store.clone(),
            audit: state.audit.clone(),
            log: state.audit_log.clone(),
        }
    }
}

parts_from_state! {
    metrics: Arc<Metrics>,
    issuer: Arc<Issuer>,
    admin_auth: Arc<AdminAuth>,
    keys: Arc<KeyService>,
    distribution: Arc<Distribution>,
    audit_log: Arc<TransparencyLog>,
    witness: Option<Arc<Witness>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}
