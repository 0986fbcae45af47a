//! The tfvars of each workload cloud's ad-tech Terraform module
//! (`terraform/workload-cloud/<cloud>/adtech`) for one ad tech, so granting
//! its workloads Decrypt on a coordinator's split keys is one
//! `terraform apply` per cloud (`GET /v1/admin/adtechs/{id}/terraform`).
//!
//! The keys of each cloud's object are exactly that module's variables; a
//! broker test parses the modules and compares, so the two cannot drift.
//!
//! Each cloud's split key comes in as its KEK URI; a local KEK lives in no
//! cloud and has nothing to grant.

use cloud_adapters::{Cloud, KekUri};
use serde_json::{Map, Value, json};

use crate::records::{AdTechRecord, IdentityMapping};

/// The Terraform variable naming a cloud's split key, and its value from the
/// KEK URI: an ARN, a Cloud KMS resource name, a Key Vault key URL; `None`
/// for a local KEK.
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

/// The export: one object per cloud in `clouds` (with its split key's KEK)
/// whose KEK is a cloud KMS key and where the ad tech has enabled identities.
pub fn terraform_vars(
    coordinator: &str,
    adtech: &AdTechRecord,
    mappings: &[IdentityMapping],
    clouds: &[(Cloud, KekUri)],
) -> Value {
    let mut out = Map::new();
    for (cloud, kek) in clouds {
        let Some((key_var, key_value)) = key_variable(kek) else {
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

    fn kek(uri: &str) -> KekUri {
        uri.parse().expect("a KEK URI")
    }

    fn clouds() -> Vec<(Cloud, KekUri)> {
        vec![
            (
                Cloud::Aws,
                kek("aws-kms://arn:aws:kms:us-east-1:111122223333:key/k"),
            ),
            (
                Cloud::Gcp,
                kek("gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/k"),
            ),
            (
                Cloud::Azure,
                kek("azure-kv://vault.example.vault.azure.net/keys/splits/v1"),
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
            let uri = match version {
                Some(v) => format!("azure-kv://vault.example/keys/splits/{v}"),
                None => "azure-kv://vault.example/keys/splits".to_owned(),
            };
            assert_eq!(
                key_variable(&kek(&uri)),
                Some(("key_vault_key_id", url.to_owned()))
            );
        }
        assert_eq!(key_variable(&kek("local-kek://splits")), None);
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
