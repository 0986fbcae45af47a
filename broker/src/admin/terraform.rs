//! `GET /v1/admin/adtechs/{id}/terraform`: the tfvars of each workload
//! cloud's ad-tech Terraform module (`terraform/workload-cloud/<cloud>/adtech`)
//! for one ad tech, so granting its workloads Decrypt on this coordinator's
//! split keys is one `terraform apply` per cloud.
//!
//! The keys of each cloud's object are exactly that module's variables; a
//! test parses the modules and compares, so the two cannot drift.

use axum::Json;
use axum::extract::{Path, State};
use cloud_adapters::KekUri;
use serde_json::{Map, Value, json};

use super::{Operator, ReaderRole};
use crate::Error;
use crate::config::CloudsConfig;
use crate::state::AppState;
use crate::storage::{AdTech, MappingFilter, MappingRecord};

/// The Terraform variable naming a cloud's split key, and its value from
/// the KEK URI: an ARN, a Cloud KMS resource name, a Key Vault key URL.
fn key_variable(kek: &KekUri) -> Option<(&'static str, String)> {
    match kek {
        KekUri::AwsKms { arn, .. } => Some(("kms_key_arn", arn.clone())),
        KekUri::GcpKms { name } => Some(("kms_crypto_key_id", name.clone())),
        KekUri::AzureKeyVault {
            vault_host,
            key_name,
            version,
        } => Some((
            "key_vault_key_id",
            match version {
                Some(v) => format!("https://{vault_host}/keys/{key_name}/{v}"),
                None => format!("https://{vault_host}/keys/{key_name}"),
            },
        )),
        // A local KEK lives in no cloud: nothing to grant.
        KekUri::Local { .. } => None,
    }
}

/// The mapping's `eq` conditions as `{claim: value}`, what a cloud's IAM
/// condition can express directly. `prefix` and `in` conditions stay the
/// broker's to enforce at token exchange (they are not dropped from the
/// mapping, only from what Terraform grants on).
fn equality_conditions(conditions: &Value) -> Value {
    let mut out = Map::new();
    for condition in conditions.as_array().into_iter().flatten() {
        if condition["op"] == "eq"
            && let (Some(claim), Some(value)) =
                (condition["claim"].as_str(), condition["value"].as_str())
        {
            out.insert(claim.to_owned(), json!(value));
        }
    }
    Value::Object(out)
}

/// The export: one object per enabled cloud whose KEK is a cloud KMS key
/// and where the ad tech has enabled identities.
pub fn terraform_vars(
    coordinator: &str,
    adtech: &AdTech,
    mappings: &[MappingRecord],
    clouds: &CloudsConfig,
) -> Value {
    let mut out = Map::new();
    for (cloud, config) in clouds.enabled() {
        let Ok(kek) = config.kek.parse::<KekUri>() else {
            continue;
        };
        let Some((key_var, key_value)) = key_variable(&kek) else {
            continue;
        };
        let identities: Vec<Value> = mappings
            .iter()
            .filter(|m| m.enabled && m.cloud == cloud.as_str())
            .map(|m| {
                json!({
                    "issuer": m.issuer,
                    "subject": m.subject,
                    "conditions": equality_conditions(&m.conditions),
                })
            })
            .collect();
        if identities.is_empty() {
            continue;
        }
        let mut vars = Map::new();
        vars.insert("coordinator".into(), json!(coordinator));
        vars.insert("adtech_id".into(), json!(adtech.id));
        vars.insert("adtech_name".into(), json!(adtech.name));
        vars.insert("use_cases".into(), json!(adtech.use_cases));
        vars.insert(key_var.into(), json!(key_value));
        vars.insert("workload_identities".into(), Value::Array(identities));
        out.insert(cloud.as_str().into(), Value::Object(vars));
    }
    Value::Object(out)
}

/// `GET /v1/admin/adtechs/{id}/terraform`
pub(super) async fn export(
    State(state): State<AppState>,
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
