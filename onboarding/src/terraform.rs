//! The tfvars of each workload cloud's ad-tech Terraform module
//! (`terraform/workload-cloud/<cloud>/adtech`) for one ad tech, so granting
//! its workloads Decrypt on a coordinator's split keys is one
//! `terraform apply` per cloud (`GET /v1/admin/adtechs/{id}/terraform`).
//!
//! The keys of each cloud's object are exactly that module's variables; a
//! broker test parses the modules and compares, so the two cannot drift.
//!
//! The split keys come in as plain [`SplitKey`] values rather than
//! cloud-adapters' KEK URIs: that crate pulls in every cloud SDK by default,
//! and this one is also the CLI's.

use serde_json::{Map, Value, json};

use crate::records::{AdTechRecord, IdentityMapping};

/// Where a cloud's split key lives: the part of its KEK that its Terraform
/// module needs to grant Decrypt on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitKey {
    /// An AWS KMS key.
    AwsKms {
        /// The key ARN.
        arn: String,
    },
    /// A GCP Cloud KMS crypto key.
    GcpKms {
        /// Its resource name (`projects/…/cryptoKeys/…`).
        name: String,
    },
    /// An Azure Key Vault key.
    AzureKeyVault {
        /// The vault's host name.
        vault_host: String,
        /// The key's name in the vault.
        key_name: String,
        /// A pinned version; `None` means the vault's current one.
        version: Option<String>,
    },
}

impl SplitKey {
    /// The Terraform variable naming the key, and its value: an ARN, a Cloud
    /// KMS resource name, a Key Vault key URL.
    fn variable(&self) -> (&'static str, String) {
        match self {
            SplitKey::AwsKms { arn } => ("kms_key_arn", arn.clone()),
            SplitKey::GcpKms { name } => ("kms_crypto_key_id", name.clone()),
            SplitKey::AzureKeyVault {
                vault_host,
                key_name,
                version,
            } => (
                "key_vault_key_id",
                match version {
                    Some(v) => format!("https://{vault_host}/keys/{key_name}/{v}"),
                    None => format!("https://{vault_host}/keys/{key_name}"),
                },
            ),
        }
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

/// The export: one object per cloud in `clouds` (its name and split key)
/// where the ad tech has enabled identities. Clouds whose KEK is in no cloud
/// (a local KEK) have nothing to grant; the caller leaves them out.
pub fn terraform_vars(
    coordinator: &str,
    adtech: &AdTechRecord,
    mappings: &[IdentityMapping],
    clouds: &[(&str, SplitKey)],
) -> Value {
    let mut out = Map::new();
    for (cloud, key) in clouds {
        let identities: Vec<Value> = mappings
            .iter()
            .filter(|m| m.enabled && m.cloud == *cloud)
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
        let (key_var, key_value) = key.variable();
        let mut vars = Map::new();
        vars.insert("coordinator".into(), json!(coordinator));
        vars.insert("adtech_id".into(), json!(adtech.id));
        vars.insert("adtech_name".into(), json!(adtech.name));
        vars.insert("use_cases".into(), json!(adtech.use_cases));
        vars.insert(key_var.into(), json!(key_value));
        vars.insert("workload_identities".into(), Value::Array(identities));
        out.insert((*cloud).into(), Value::Object(vars));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adtech() -> AdTechRecord {
        AdTechRecord {
            id: "adtech-1".into(),
            name: "Ad Tech One".into(),
            sites: vec![],
            use_cases: vec!["aggregation-service".into()],
            enabled: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn mapping(cloud: &str, subject: &str, enabled: bool) -> IdentityMapping {
        IdentityMapping {
            id: format!("m-{subject}"),
            adtech: "adtech-1".into(),
            cloud: cloud.into(),
            issuer: format!("https://{cloud}.issuer.example"),
            subject: subject.into(),
            conditions: json!([
                {"claim": "submods.container.image_digest", "op": "eq", "value": "sha256:abc"},
                {"claim": "aud", "op": "prefix", "value": "https://"},
                {"claim": "tid", "op": "in", "value": ["a"]}
            ]),
            scopes: vec!["keys:read".into()],
            enabled,
            created_at: 0,
        }
    }

    fn clouds() -> Vec<(&'static str, SplitKey)> {
        vec![
            (
                "aws",
                SplitKey::AwsKms {
                    arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
                },
            ),
            (
                "gcp",
                SplitKey::GcpKms {
                    name: "projects/p/locations/global/keyRings/r/cryptoKeys/k".into(),
                },
            ),
            (
                "azure",
                SplitKey::AzureKeyVault {
                    vault_host: "vault.example.vault.azure.net".into(),
                    key_name: "splits".into(),
                    version: Some("v1".into()),
                },
            ),
        ]
    }

    #[test]
    fn each_cloud_with_enabled_identities_gets_its_module_variables() {
        let mappings = [
            mapping("aws", "arn:aws:iam::444455556666:role/w", true),
            mapping("gcp", "w@p.iam.gserviceaccount.com", true),
            mapping("gcp", "off@p.iam.gserviceaccount.com", false),
        ];
        let export = terraform_vars("a", &adtech(), &mappings, &clouds());
        let identity = |cloud: &str, subject: &str| {
            json!({
                "issuer": format!("https://{cloud}.issuer.example"),
                "subject": subject,
                "conditions": {"submods.container.image_digest": "sha256:abc"},
            })
        };
        assert_eq!(
            export,
            json!({
                "aws": {
                    "coordinator": "a",
                    "adtech_id": "adtech-1",
                    "adtech_name": "Ad Tech One",
                    "use_cases": ["aggregation-service"],
                    "kms_key_arn": "arn:aws:kms:us-east-1:111122223333:key/k",
                    "workload_identities": [identity("aws", "arn:aws:iam::444455556666:role/w")],
                },
                "gcp": {
                    "coordinator": "a",
                    "adtech_id": "adtech-1",
                    "adtech_name": "Ad Tech One",
                    "use_cases": ["aggregation-service"],
                    "kms_crypto_key_id": "projects/p/locations/global/keyRings/r/cryptoKeys/k",
                    "workload_identities": [identity("gcp", "w@p.iam.gserviceaccount.com")],
                },
            })
        );
    }

    #[test]
    fn key_vault_keys_are_named_by_their_url_with_or_without_a_version() {
        let cases = [
            (Some("v1"), "https://vault.example/keys/splits/v1"),
            (None, "https://vault.example/keys/splits"),
        ];
        for (version, url) in cases {
            let key = SplitKey::AzureKeyVault {
                vault_host: "vault.example".into(),
                key_name: "splits".into(),
                version: version.map(Into::into),
            };
            assert_eq!(key.variable(), ("key_vault_key_id", url.to_owned()));
        }
    }

    #[test]
    fn an_ad_tech_without_identities_in_a_cloud_gets_nothing_for_it() {
        assert_eq!(terraform_vars("a", &adtech(), &[], &clouds()), json!({}));
        let only_aws = [mapping("aws", "arn:aws:iam::444455556666:role/w", true)];
        let export = terraform_vars("a", &adtech(), &only_aws, &clouds());
        let keys: Vec<&String> = export.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["aws"]);
    }
}
