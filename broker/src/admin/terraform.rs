//! `GET /v1/admin/adtechs/{id}/terraform`: the tfvars of each workload
//! cloud's ad-tech Terraform module (`terraform/workload-cloud/<cloud>/adtech`)
//! for one ad tech. The variables are built by `onboarding::terraform_vars`;
//! this module reads the ad tech, its mappings and the `[clouds.*]` KEKs.

use axum::Json;
use axum::extract::{Path, State};
use cloud_adapters::{Cloud, KekUri};
use onboarding::{AdTechRecord, IdentityMapping};
use serde_json::Value;

use super::AdminState;
use super::{Operator, ReaderRole};
use crate::Error;
use crate::config::CloudsConfig;
use crate::storage::{AdTech, MappingFilter, MappingRecord};

/// The export: one object per enabled cloud whose KEK is a cloud KMS key
/// and where the ad tech has enabled identities.
pub fn terraform_vars(
    coordinator: &str,
    adtech: &AdTech,
    mappings: &[MappingRecord],
    clouds: &CloudsConfig,
) -> Value {
    let keys: Vec<(Cloud, KekUri)> = clouds
        .enabled()
        .into_iter()
        .filter_map(|(cloud, config)| Some((cloud, config.kek.parse().ok()?)))
        .collect();
    let mappings: Vec<IdentityMapping> = mappings.iter().cloned().map(Into::into).collect();
    onboarding::terraform_vars(
        coordinator,
        &AdTechRecord::from(adtech.clone()),
        &mappings,
        &keys,
    )
}

/// `GET /v1/admin/adtechs/{id}/terraform`
pub(super) async fn export(
    State(state): State<AdminState>,
    _operator: Operator<ReaderRole>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let adtech = state.store.adtech(&id).await?;
    let mappings = state
        .store
        .mappings(&MappingFilter {
            adtech: Some(id),
            ..MappingFilter::default()
        })
        .await?;
    Ok(Json(terraform_vars(
        &state.config.coordinator.name,
        &adtech,
        &mappings,
        &state.config.clouds,
    )))
}
