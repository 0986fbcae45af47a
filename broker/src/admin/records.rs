//! Stored rows → the admin API's records (`onboarding`'s types).
//!
//! The two are kept apart so a storage change cannot silently change what
//! the API answers or what the audit log records; these conversions are the
//! one place they meet, and the tests below pin that the JSON is the row's.

use onboarding::{AdTechRecord, IdentityMapping};

use crate::storage::{AdTech, MappingRecord};

impl From<AdTech> for AdTechRecord {
    fn from(row: AdTech) -> Self {
        AdTechRecord {
            id: row.id,
            name: row.name,
            sites: row.sites,
            use_cases: row.use_cases,
            enabled: row.enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl From<MappingRecord> for IdentityMapping {
    fn from(row: MappingRecord) -> Self {
        IdentityMapping {
            id: row.id,
            adtech: row.adtech,
            cloud: row.cloud,
            issuer: row.issuer,
            subject: row.subject,
            conditions: row.conditions,
            scopes: row.scopes,
            enabled: row.enabled,
            created_at: row.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn records_serialize_exactly_as_the_stored_rows_did() {
        let adtech = AdTech {
            id: "acme".into(),
            name: "Acme Ads".into(),
            sites: vec!["https://acme.example".into()],
            use_cases: vec!["aggregation-service".into()],
            enabled: false,
            created_at: 1,
            updated_at: 2,
        };
        let mapping = MappingRecord {
            id: "m-1".into(),
            adtech: "acme".into(),
            cloud: "gcp".into(),
            issuer: "https://accounts.google.com".into(),
            subject: "112233445566778899001".into(),
            conditions: json!([{"claim": "a", "op": "eq", "value": "x"}]),
            scopes: vec!["keys:read".into()],
            enabled: true,
            created_at: 3,
        };
        assert_eq!(
            rendered(&AdTechRecord::from(adtech.clone())),
            rendered(&adtech),
            "ad tech"
        );
        assert_eq!(
            rendered(&IdentityMapping::from(mapping.clone())),
            rendered(&mapping),
            "mapping"
        );
    }

    /// The bytes a handler answers for `value`: through `serde_json::Value`,
    /// as the handlers render every body.
    fn rendered<T: serde::Serialize>(value: &T) -> Vec<u8> {
        let value = serde_json::to_value(value).expect("value");
        serde_json::to_vec(&value).expect("bytes")
    }
}
