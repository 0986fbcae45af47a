//! The admin API (DESIGN §7.1, §7.4): operator authentication and
//! onboarding of issuers, ad techs and their workload identities, and the
//! Terraform variables that grant those identities Decrypt in each cloud.

mod onboarding;
mod records;
pub mod terraform;

use axum::Router;
use axum::routing::{delete, get, post};

pub use crate::operator::{AdminRole, Operator, ReaderRole};

use std::sync::Arc;

use axum::extract::FromRef;
use idp::Clock;

use crate::audit::Audit;
use crate::config::Config;
use crate::federation::Federation;
use crate::operator::AdminAuth;
use crate::storage::Store;

/// What the admin API uses; taken from the application's state.
#[derive(Clone)]
pub struct AdminState {
    /// The trusted-issuer registry that onboarding adds to and removes from.
    pub federation: Arc<Federation>,
    /// Ad techs, issuers, mappings.
    pub store: Store,
    /// Where every change is recorded.
    pub audit: Arc<dyn Audit>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The profile (loopback issuers only in dev), `coordinator.name` and
    /// the enabled clouds (the tfvars export).
    pub config: Arc<Config>,
}

pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    Arc<AdminAuth>: FromRef<S>,
{
    Router::new()
        .route(
            "/v1/admin/issuers",
            post(onboarding::add_issuer).get(onboarding::list_issuers),
        )
        .route(
            "/v1/admin/issuers/{name}",
            delete(onboarding::remove_issuer),
        )
        .route(
            "/v1/admin/adtechs",
            post(onboarding::create_adtech).get(onboarding::list_adtechs),
        )
        .route(
            "/v1/admin/adtechs/{id}",
            get(onboarding::show_adtech).patch(onboarding::update_adtech),
        )
        .route(
            "/v1/admin/adtechs/{id}/identities",
            post(onboarding::add_identity).get(onboarding::list_identities),
        )
        .route(
            "/v1/admin/adtechs/{id}/identities/{mapping}",
            delete(onboarding::remove_identity),
        )
        .route("/v1/admin/adtechs/{id}/terraform", get(terraform::export))
        .route("/v1/admin/mappings", get(onboarding::list_mappings))
}
