//! Refusing mappings that would make a token ambiguous (DESIGN §3.4).
//!
//! A token is authorized only when exactly one mapping matches it, so a new
//! mapping that some token could match together with an existing one would
//! turn that token from allowed into refused (or, for another ad tech, hand
//! one identity two ad techs' permissions). Onboarding refuses it instead.

use idp::Mapping;

/// The first of `existing` that one token could match together with `new`
/// ([`idp::overlaps`]: same issuer and subject, conditions not provably
/// disjoint), if any. Disabled mappings count: they can be re-enabled.
///
/// The broker calls this inside the transaction that inserts `new`, under
/// the `mappings` lock, so two concurrent onboardings cannot both pass.
pub fn first_overlap<'a>(
    new: &Mapping,
    existing: impl IntoIterator<Item = &'a Mapping>,
) -> Option<&'a Mapping> {
    existing.into_iter().find(|other| idp::overlaps(new, other))
}

#[cfg(test)]
mod tests {
    use idp::{Condition, ConditionOp, IssuerKind};
    use serde_json::json;

    use super::*;

    fn mapping(id: &str, subject: &str, project: Option<&str>) -> Mapping {
        Mapping {
            id: id.into(),
            adtech: "acme".into(),
            issuer: "https://accounts.google.com".into(),
            subject: subject.into(),
            conditions: project
                .map(|p| Condition {
                    claim: "google.compute_engine.project_id".into(),
                    op: ConditionOp::Eq,
                    value: json!(p),
                })
                .into_iter()
                .collect(),
            scopes: vec!["keys:read".into()],
            cloud: IssuerKind::Gcp,
            enabled: true,
        }
    }

    #[test]
    fn the_first_mapping_a_token_could_share_with_the_new_one_is_named() {
        let existing = [
            mapping("m-other-subject", "112233445566778899002", None),
            mapping("m-p1", "112233445566778899001", Some("p1")),
            mapping("m-any", "112233445566778899001", None),
        ];
        let cases = [
            (mapping("new", "112233445566778899001", None), Some("m-p1")),
            (
                mapping("new", "112233445566778899001", Some("p1")),
                Some("m-p1"),
            ),
            (
                mapping("new", "112233445566778899001", Some("p2")),
                Some("m-any"),
            ),
            (mapping("new", "112233445566778899003", None), None),
        ];
        for (new, expected) in cases {
            let found = first_overlap(&new, &existing).map(|m| m.id.as_str());
            assert_eq!(found, expected, "{new:?}");
        }
    }

    #[test]
    fn provably_disjoint_conditions_do_not_overlap() {
        let existing = [mapping("m-p1", "112233445566778899001", Some("p1"))];
        let new = mapping("new", "112233445566778899001", Some("p2"));
        assert!(first_overlap(&new, &existing).is_none());
    }

    #[test]
    fn a_disabled_mapping_still_overlaps() {
        let mut disabled = mapping("m-off", "112233445566778899001", None);
        disabled.enabled = false;
        let new = mapping("new", "112233445566778899001", None);
        assert_eq!(
            first_overlap(&new, [&disabled]).map(|m| m.id.as_str()),
            Some("m-off")
        );
    }

    #[test]
    fn nothing_overlaps_when_nothing_exists() {
        let new = mapping("new", "112233445566778899001", None);
        assert!(first_overlap(&new, &[]).is_none());
    }
}
