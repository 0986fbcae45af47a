//! The admin API (DESIGN §7.1, §7.4): operator authentication and
//! onboarding of issuers, ad techs and their workload identities, and the
//! Terraform variables that grant those identities Decrypt in each cloud.

mod onboarding;
mod records;
pub mod terraform;

use axum::Router;
use axum::routing::{delete, get, post};

pub use crate::operator::{AdminRole, Operator, ReaderRole};

use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
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
