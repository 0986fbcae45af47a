use serde_json::json;

use super::*;

const ISS: &str = "https://accounts.google.com";
const SUB: &str = "113475438248934895348";

fn token() -> VerifiedToken {
    VerifiedToken::for_tests(
        IssuerKind::Gcp,
        json!({
            "iss": ISS, "sub": SUB, "aud": "https://broker",
            "google": {"compute_engine": {
                "project_id": "adtech-prod-1", "project_number": 123456789, "zone": "us-central1-a"
            }},
            "email": "bidder@adtech-prod-1.iam.gserviceaccount.com",
        }),
    )
}

fn mapping(id: &str, conditions: Vec<Condition>) -> Mapping {
    Mapping {
        id: id.into(),
        adtech: "adtech-1".into(),
        issuer: ISS.into(),
        subject: SUB.into(),
        conditions,
        scopes: vec!["keys:read".into()],
        cloud: IssuerKind::Gcp,
        enabled: true,
    }
}

fn cond(claim: &str, op: ConditionOp, value: serde_json::Value) -> Condition {
    Condition {
        claim: claim.into(),
        op,
        value,
    }
}

const PROJECT: &str = "google.compute_engine.project_id";

#[test]
fn exactly_one_matching_mapping_authorizes() {
    let m = mapping(
        "m1",
        vec![cond(PROJECT, ConditionOp::Eq, json!("adtech-prod-1"))],
    );
    let other_subject = Mapping {
        subject: "999999999999999999999".into(),
        ..mapping("m2", vec![])
    };
    let other_issuer = Mapping {
        issuer: "https://accounts.google.com/".into(),
        ..mapping("m3", vec![])
    };
    let candidates = [other_subject, m.clone(), other_issuer];
    assert_eq!(
        select_mapping(&token(), &candidates).map(|m| &m.mapping().id),
        Ok(&m.id)
    );
}

#[test]
fn two_matching_mappings_are_ambiguous() {
    let candidates = [mapping("a", vec![]), mapping("b", vec![])];
    assert_eq!(
        select_mapping(&token(), &candidates),
        Err(MappingRejection::Ambiguous { count: 2 })
    );
}

#[test]
fn no_mapping_for_an_unknown_identity_or_a_disabled_one() {
    assert_eq!(
        select_mapping(&token(), &[] as &[Mapping]),
        Err(MappingRejection::NoMapping)
    );
    let disabled = Mapping {
        enabled: false,
        ..mapping("a", vec![])
    };
    assert_eq!(
        select_mapping(&token(), [&disabled]),
        Err(MappingRejection::NoMapping)
    );
}

#[test]
fn a_failed_condition_names_the_claim_not_the_value() {
    let m = mapping(
        "m1",
        vec![
            cond(
                "google.compute_engine.zone",
                ConditionOp::Prefix,
                json!("us-"),
            ),
            cond(PROJECT, ConditionOp::Eq, json!("other-project")),
        ],
    );
    let rejection = select_mapping(&token(), [&m]).expect_err("condition fails");
    assert_eq!(
        rejection,
        MappingRejection::ConditionFailed {
            claim: PROJECT.into()
        }
    );
    assert_eq!(rejection.code(), "condition_failed");
    assert!(!rejection.to_string().contains("adtech-prod-1"));
    // A full match elsewhere wins over a condition failure.
    let ok = mapping("m2", vec![]);
    assert_eq!(
        select_mapping(&token(), [&m, &ok]).map(|m| m.mapping().id.as_str()),
        Ok("m2")
    );
}

#[test]
fn condition_operators() {
    let claims = token().claims().clone();
    let holds = |claim: &str, op, value| cond(claim, op, value).holds(&claims);
    assert!(holds(PROJECT, ConditionOp::Eq, json!("adtech-prod-1")));
    assert!(!holds(PROJECT, ConditionOp::Eq, json!("adtech-prod")));
    assert!(holds(PROJECT, ConditionOp::Prefix, json!("adtech-")));
    assert!(!holds(PROJECT, ConditionOp::Prefix, json!("prod")));
    assert!(!holds(PROJECT, ConditionOp::Prefix, json!("")));
    assert!(holds(
        PROJECT,
        ConditionOp::In,
        json!(["x", "adtech-prod-1"])
    ));
    assert!(!holds(PROJECT, ConditionOp::In, json!(["x", "y"])));
    assert!(holds(
        "google.compute_engine.project_number",
        ConditionOp::Eq,
        json!("123456789")
    ));
    assert!(!holds(
        "google.compute_engine",
        ConditionOp::Eq,
        json!("{}")
    ));
    assert!(!holds("missing.claim", ConditionOp::Eq, json!("x")));
    assert!(
        !holds(PROJECT, ConditionOp::Eq, json!(["adtech-prod-1"])),
        "invalid value"
    );
    assert!(
        !holds(PROJECT, ConditionOp::In, json!("adtech-prod-1")),
        "invalid value"
    );
}

#[test]
fn condition_validation() {
    let ok = [
        cond(PROJECT, ConditionOp::Eq, json!("p")),
        cond("email", ConditionOp::Prefix, json!("bidder@")),
        cond("tid", ConditionOp::In, json!(["a", "b"])),
    ];
    for c in ok {
        assert_eq!(c.validate(), Ok(()));
    }
    let bad = [
        (
            cond("", ConditionOp::Eq, json!("p")),
            ConditionError::BadPath,
        ),
        (
            cond("a..b", ConditionOp::Eq, json!("p")),
            ConditionError::BadPath,
        ),
        (
            cond("a.", ConditionOp::Eq, json!("p")),
            ConditionError::BadPath,
        ),
        (
            cond("a", ConditionOp::Eq, json!(1)),
            ConditionError::NotAString,
        ),
        (
            cond("a", ConditionOp::Prefix, json!(["p"])),
            ConditionError::NotAString,
        ),
        (
            cond("a", ConditionOp::Prefix, json!("")),
            ConditionError::EmptyPrefix,
        ),
        (
            cond("a", ConditionOp::In, json!([])),
            ConditionError::NotAStringArray,
        ),
        (
            cond("a", ConditionOp::In, json!(["a", 1])),
            ConditionError::NotAStringArray,
        ),
        (
            cond("a", ConditionOp::In, json!("a")),
            ConditionError::NotAStringArray,
        ),
    ];
    for (c, error) in bad {
        assert_eq!(c.validate(), Err(error), "{c:?}");
    }
}

#[test]
fn mapping_validation() {
    assert_eq!(mapping("m", vec![]).validate(), Ok(()));
    let bad_subject = Mapping {
        subject: "not-a-gcp-id".into(),
        ..mapping("m", vec![])
    };
    assert_eq!(
        bad_subject.validate(),
        Err(MappingError::Subject(SubjectError::NotGcpServiceAccount))
    );
    let no_id = mapping(" ", vec![]);
    assert_eq!(
        no_id.validate(),
        Err(MappingError::EmptyField { field: "id" })
    );
    for scopes in [
        vec![],
        vec!["keys read".to_owned()],
        vec!["a\"b".to_owned()],
    ] {
        let m = Mapping {
            scopes,
            ..mapping("m", vec![])
        };
        assert_eq!(m.validate(), Err(MappingError::Scopes));
    }
    let bad_condition = mapping(
        "m",
        vec![
            cond("a", ConditionOp::Eq, json!("x")),
            cond("b", ConditionOp::In, json!([])),
        ],
    );
    assert_eq!(
        bad_condition.validate(),
        Err(MappingError::Condition {
            index: 1,
            error: ConditionError::NotAStringArray
        })
    );
}

#[test]
fn mappings_deserialize_from_camel_case_json() {
    let m: Mapping = serde_json::from_value(json!({
        "id": "m1", "adtech": "a", "issuer": ISS, "subject": SUB,
        "conditions": [{"claim": PROJECT, "op": "in", "value": ["p1", "p2"]}],
        "scopes": ["keys:read", "keys:release"], "cloud": "gcp"
    }))
    .expect("parses");
    assert!(m.enabled, "enabled by default");
    assert_eq!(m.conditions[0].op, ConditionOp::In);
    assert!(
        serde_json::from_value::<Mapping>(json!({
            "id": "m1", "adtech": "a", "issuer": ISS, "subject": SUB, "scopes": [],
            "cloud": "gcp", "unknown": 1
        }))
        .is_err()
    );
    assert!(serde_json::from_value::<ConditionOp>(json!("EQ")).is_err());
}

#[test]
fn overlap_detection_is_conservative() {
    let eq = |v: &str| cond(PROJECT, ConditionOp::Eq, json!(v));
    let within = |v: serde_json::Value| cond(PROJECT, ConditionOp::In, v);
    let prefix = |v: &str| cond(PROJECT, ConditionOp::Prefix, json!(v));
    let zone = cond("google.compute_engine.zone", ConditionOp::Eq, json!("z"));
    let cases = [
        (vec![], vec![], true),
        (vec![eq("a")], vec![], true),
        (vec![eq("a")], vec![eq("a")], true),
        (vec![eq("a")], vec![eq("b")], false),
        (vec![eq("a")], vec![within(json!(["b", "c"]))], false),
        (vec![eq("b")], vec![within(json!(["b", "c"]))], true),
        (
            vec![within(json!(["a", "b"]))],
            vec![within(json!(["c"]))],
            false,
        ),
        (vec![prefix("prod-")], vec![prefix("prod-eu-")], true),
        (vec![prefix("prod-")], vec![prefix("test-")], false),
        (vec![prefix("prod-")], vec![eq("test-1")], false),
        (
            vec![prefix("prod-")],
            vec![within(json!(["x", "prod-1"]))],
            true,
        ),
        // Conditions on different claims can both hold.
        (vec![eq("a")], vec![zone.clone()], true),
        (vec![eq("a"), zone.clone()], vec![eq("b"), zone], false),
    ];
    for (a, b, expected) in cases {
        let (ma, mb) = (mapping("a", a.clone()), mapping("b", b.clone()));
        assert_eq!(overlaps(&ma, &mb), expected, "{a:?} vs {b:?}");
        assert_eq!(overlaps(&mb, &ma), expected, "symmetric");
    }
    let other_subject = Mapping {
        subject: "999999999999999999999".into(),
        ..mapping("b", vec![])
    };
    assert!(!overlaps(&mapping("a", vec![]), &other_subject));
}

#[test]
fn overlapping_mappings_really_are_ambiguous_for_some_token() {
    // The check above claims overlap; prove it with a token satisfying both.
    let a = mapping(
        "a",
        vec![cond(PROJECT, ConditionOp::Prefix, json!("adtech-"))],
    );
    let b = mapping(
        "b",
        vec![cond(PROJECT, ConditionOp::In, json!(["adtech-prod-1"]))],
    );
    assert!(overlaps(&a, &b));
    assert_eq!(
        select_mapping(&token(), [&a, &b]),
        Err(MappingRejection::Ambiguous { count: 2 })
    );
}
