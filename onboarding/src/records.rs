//! The response shapes of the admin API.
//!
//! These are the API's records, not the database's rows: the broker's
//! storage has its own types and converts into these, so a column change
//! cannot silently change what operators and scripts read. The audit log
//! records the same shapes.
//!
//! Field order is not part of the shape: the broker renders JSON objects
//! with sorted keys. Text fields are plain strings because records come
//! from the store, where they were validated when written; re-checking them
//! on the way out could only turn an old record into a failed listing.

use idp::IssuerConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An onboarded ad tech, as `POST`, `PATCH` and `GET /v1/admin/adtechs…`
/// answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdTechRecord {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its sites, as https origins.
    pub sites: Vec<String>,
    /// Use cases it may fetch keys for.
    pub use_cases: Vec<String>,
    /// Disabled ad techs get no credentials and no keys.
    pub enabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// `GET /v1/admin/adtechs/{id}`: the ad tech and, beside its fields, its
/// `identities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdTechDetail {
    /// The ad tech's fields, at the top level of the object.
    #[serde(flatten)]
    pub adtech: AdTechRecord,
    /// Its mappings, oldest first.
    pub identities: Vec<IdentityMapping>,
}

/// `GET /v1/admin/adtechs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdTechList {
    /// By id.
    pub adtechs: Vec<AdTechRecord>,
}

/// One workload identity of an ad tech: a mapping rule (DESIGN §3.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityMapping {
    /// Unique id (`m-…`); the credential's `client_id`.
    pub id: String,
    /// The ad tech the identity acts for.
    pub adtech: String,
    /// `aws`, `gcp`, `azure` or `oidc`.
    pub cloud: String,
    /// The exact issuer URL.
    pub issuer: String,
    /// The exact `sub`.
    pub subject: String,
    /// Claim conditions, as a JSON array of `{claim, op, value}`.
    pub conditions: Value,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Disabled mappings never match.
    pub enabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// `GET /v1/admin/mappings` and `GET /v1/admin/adtechs/{id}/identities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingList {
    /// Oldest first.
    pub mappings: Vec<IdentityMapping>,
}

/// Where a trusted issuer comes from, which decides where it is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerSource {
    /// `keyferry.toml`; removed there, never through the API.
    Config,
    /// `POST /v1/admin/issuers`; stored in the database.
    Api,
}

/// One trusted issuer with its source, as `POST` and `GET
/// /v1/admin/issuers` answer it. The entry keeps idp's own field names
/// (`max_token_lifetime`, `jwks_uri`): it is the issuer document as stored
/// and as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerEntry {
    /// Config or API.
    pub source: IssuerSource,
    /// The entry.
    pub issuer: IssuerConfig,
}

/// `GET /v1/admin/issuers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerList {
    /// By name.
    pub issuers: Vec<IssuerEntry>,
}

/// The answer of a `DELETE`: what was removed, as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed<T> {
    /// The removed record.
    pub removed: T,
}

#[cfg(test)]
mod tests {
    use idp::IssuerKind;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    use super::*;

    fn adtech() -> AdTechRecord {
        AdTechRecord {
            id: "acme".into(),
            name: "Acme Ads".into(),
            sites: vec!["https://acme.example".into()],
            use_cases: vec!["aggregation-service".into()],
            enabled: true,
            created_at: 1,
            updated_at: 2,
        }
    }

    fn mapping() -> IdentityMapping {
        IdentityMapping {
            id: "m-1".into(),
            adtech: "acme".into(),
            cloud: "gcp".into(),
            issuer: "https://accounts.google.com".into(),
            subject: "112233445566778899001".into(),
            conditions: json!([{"claim": "a", "op": "eq", "value": "x"}]),
            scopes: vec!["keys:read".into()],
            enabled: true,
            created_at: 3,
        }
    }

    fn round_trip<T: Serialize + DeserializeOwned>(record: &T) -> T {
        serde_json::from_value(serde_json::to_value(record).expect("json")).expect("read back")
    }

    #[test]
    fn records_have_the_api_shapes() {
        let cases = [
            (
                serde_json::to_value(adtech()),
                json!({"id": "acme", "name": "Acme Ads", "sites": ["https://acme.example"],
                       "useCases": ["aggregation-service"], "enabled": true,
                       "createdAt": 1, "updatedAt": 2}),
            ),
            (
                serde_json::to_value(mapping()),
                json!({"id": "m-1", "adtech": "acme", "cloud": "gcp",
                       "issuer": "https://accounts.google.com",
                       "subject": "112233445566778899001",
                       "conditions": [{"claim": "a", "op": "eq", "value": "x"}],
                       "scopes": ["keys:read"], "enabled": true, "createdAt": 3}),
            ),
            (
                serde_json::to_value(AdTechDetail {
                    adtech: adtech(),
                    identities: vec![],
                }),
                json!({"id": "acme", "name": "Acme Ads", "sites": ["https://acme.example"],
                       "useCases": ["aggregation-service"], "enabled": true,
                       "createdAt": 1, "updatedAt": 2, "identities": []}),
            ),
            (
                serde_json::to_value(IssuerEntry {
                    source: IssuerSource::Config,
                    issuer: IssuerConfig::new(
                        "google",
                        IssuerKind::Gcp,
                        "https://accounts.google.com",
                        "keyferry",
                    ),
                }),
                json!({"source": "config", "issuer": {
                    "name": "google", "kind": "gcp", "issuer": "https://accounts.google.com",
                    "audience": "keyferry", "algorithms": ["RS256", "ES256"],
                    "max_token_lifetime": 86400, "jwks_uri": null}}),
            ),
            (
                serde_json::to_value(Removed { removed: mapping() }),
                json!({"removed": serde_json::to_value(mapping()).expect("json")}),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got.expect("serialise"), want);
        }
    }

    #[test]
    fn records_read_back_as_they_were_written() {
        assert_eq!(round_trip(&adtech()), adtech());
        assert_eq!(round_trip(&mapping()), mapping());
        let detail = AdTechDetail {
            adtech: adtech(),
            identities: vec![mapping()],
        };
        assert_eq!(round_trip(&detail), detail);
        let list = IssuerList {
            issuers: vec![IssuerEntry {
                source: IssuerSource::Api,
                issuer: IssuerConfig::new("eks", IssuerKind::Aws, "https://x.example", "sts"),
            }],
        };
        assert_eq!(round_trip(&list), list);
    }
}
