//! Identity federation against a real third-party OIDC server (npm `oauth2-mock-server`,
//! wrapped by `tests/idp-server/server.mjs`): discovery, JWKS caching, key rotation,
//! outages and refresh storms, with tokens shaped like each cloud's.
//!
//! Needs `node` and `npm ci` in `tests/idp-server`; skipped with a printed reason when
//! they are missing, failed when `CI=true`.

use std::sync::Arc;
use std::time::Duration;

use idp::{
    Condition, ConditionOp, IssuerConfig, IssuerKind, IssuerRegistry, JwksCache, JwksPolicy,
    ManualClock, Mapping, TokenRejection, TokenValidator, select_mapping, validate_subject,
};
use serde_json::{Value, json};
use test_support::NodeIdp;

const AUD: &str = "https://coordinator-a.example.com";

fn validator(issuer: &str, kind: IssuerKind, clock: &ManualClock) -> TokenValidator {
    let registry = IssuerRegistry::new(true);
    registry
        .insert(IssuerConfig::new("local-idp", kind, issuer, AUD))
        .expect("loopback issuer is valid in dev");
    let policy = JwksPolicy {
        allow_http_loopback: true,
        ..JwksPolicy::default()
    };
    let jwks = JwksCache::new(Arc::new(clock.clone()), policy).expect("http client");
    TokenValidator::new(registry, jwks, Arc::new(clock.clone()))
}

struct CloudCase {
    kind: IssuerKind,
    claims: Value,
    condition: Condition,
}

fn cond(claim: &str, op: ConditionOp, value: Value) -> Condition {
    Condition {
        claim: claim.into(),
        op,
        value,
    }
}

fn cloud_cases() -> Vec<CloudCase> {
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let oid = "4f1a3b6e-2c8d-4e5f-9a0b-1c2d3e4f5a6b";
    vec![
        CloudCase {
            kind: IssuerKind::Gcp,
            claims: json!({
                "sub": "113475438248934895348", "aud": AUD, "azp": "113475438248934895348",
                "email": "bidder@adtech-prod-1.iam.gserviceaccount.com", "email_verified": true,
                "google": {"compute_engine": {
                    "project_id": "adtech-prod-1", "project_number": 123456789012u64,
                    "zone": "us-central1-a", "instance_id": "4567890123456789012",
                    "instance_name": "bidder-1"
                }}
            }),
            condition: cond(
                "google.compute_engine.project_id",
                ConditionOp::Eq,
                json!("adtech-prod-1"),
            ),
        },
        CloudCase {
            kind: IssuerKind::Azure,
            claims: json!({
                "sub": oid, "oid": oid, "tid": tenant, "aud": [AUD, "api://other"],
                "appid": "0e5a4b1c-7d8e-4f90-a1b2-c3d4e5f60718",
                "xms_mirid": format!("/subscriptions/{tenant}/resourcegroups/rg/providers/Microsoft.Compute/virtualMachines/bidder"),
                "ver": "2.0"
            }),
            condition: cond("tid", ConditionOp::In, json!([tenant])),
        },
        CloudCase {
            kind: IssuerKind::Aws,
            claims: json!({
                "sub": "arn:aws:iam::111122223333:role/bidder-workload", "aud": AUD,
                "https://sts.amazonaws.com/": {
                    "aws_account": "111122223333", "source_region": "us-east-1",
                    "org_id": "o-abc123"
                }
            }),
            condition: cond(
                "https://sts.amazonaws.com/.aws_account",
                ConditionOp::Eq,
                json!("111122223333"),
            ),
        },
        CloudCase {
            kind: IssuerKind::Aws,
            claims: json!({
                "sub": "system:serviceaccount:bidding:bidder", "aud": [AUD],
                "kubernetes.io": {
                    "namespace": "bidding",
                    "serviceaccount": {"name": "bidder", "uid": "7b3c1a2e-1111-2222-3333-444455556666"}
                }
            }),
            condition: cond("kubernetes.io.namespace", ConditionOp::Prefix, json!("bid")),
        },
    ]
}

#[tokio::test]
async fn tokens_shaped_like_each_clouds_validate_and_map() {
    let Some(mut node) = NodeIdp::start().await else {
        return;
    };
    let clock = ManualClock::starting_now();
    let validator = validator(&node.issuer, IssuerKind::Oidc, &clock);

    for case in cloud_cases() {
        // The local IdP stands in for each cloud: re-register it under that kind.
        validator
            .issuers()
            .insert(IssuerConfig::new("local-idp", case.kind, &node.issuer, AUD))
            .expect("valid");
        let sub = case.claims["sub"].as_str().expect("sub").to_owned();
        assert_eq!(validate_subject(case.kind, &sub), Ok(()), "{sub}");

        let token = node.token(case.claims.clone()).await;
        let verified = validator
            .validate(&token)
            .await
            .expect("cloud token validates");
        assert_eq!(verified.issuer_kind(), case.kind);
        assert_eq!(verified.iss(), node.issuer);
        assert_eq!(verified.sub(), sub);
        assert!(verified.aud().iter().any(|a| a == AUD));
        assert_eq!(verified.exp() - verified.iat(), 3600);

        let mapping = Mapping {
            id: format!("m-{}", case.kind),
            adtech: "adtech-1".into(),
            issuer: node.issuer.clone(),
            subject: sub.clone(),
            conditions: vec![case.condition.clone()],
            scopes: vec!["keys:read".into()],
            cloud: case.kind,
            enabled: true,
        };
        mapping.validate().expect("mapping is valid");
        let decoy = Mapping {
            id: "decoy".into(),
            subject: format!("{sub}-other"),
            ..mapping.clone()
        };
        let chosen = select_mapping(&verified, [&decoy, &mapping]).expect("one mapping matches");
        assert_eq!(chosen.mapping().id, mapping.id);
        // Credential claims come from the proof: the mapping's scopes, or a subset of them.
        let ttl = std::time::Duration::from_secs(600);
        let all = chosen
            .grant("https://broker.example", None, ttl)
            .expect("grant");
        assert_eq!(all.scopes(), mapping.scopes.as_slice());
        assert_eq!(all.client_id(), mapping.id);
        assert_eq!(all.adtech(), mapping.adtech);
        let extra = chosen.grant(
            "https://broker.example",
            Some(vec!["keys:admin".into()]),
            ttl,
        );
        assert_eq!(
            extra.map(|c| c.scopes().to_vec()),
            Err(idp::UngrantedScope("keys:admin".into()))
        );

        // The same identity with the conditioned claim changed is refused by mapping.
        let failing = Mapping {
            conditions: vec![cond(&case.condition.claim, ConditionOp::Eq, json!("zzz"))],
            ..mapping.clone()
        };
        assert_eq!(
            select_mapping(&verified, [&failing]).map_err(|r| r.code()),
            Err("condition_failed")
        );
    }
    // One discovery + one JWKS fetch served every token above.
    assert_eq!(node.stats().await, (1, 1));
    assert_eq!(validator.jwks().fetch_count(&node.issuer), 1);
}

#[tokio::test]
async fn real_tokens_failing_checks_are_rejected_with_their_reason() {
    let Some(mut node) = NodeIdp::start().await else {
        return;
    };
    let clock = ManualClock::starting_now();
    let validator = validator(&node.issuer, IssuerKind::Oidc, &clock);
    let base = json!({"sub": "workload", "aud": AUD});

    let wrong_aud = node
        .token(json!({"sub": "workload", "aud": "https://elsewhere"}))
        .await;
    let no_exp = node.token_with(base.clone(), json!({}), &["exp"]).await;
    let long = node
        .token(json!({"sub": "workload", "aud": AUD, "exp": unix_now() + 25 * 3600}))
        .await;
    let forged_kid = node
        .token_with(base.clone(), json!({"kid": "forged"}), &[])
        .await;
    let other_iss = node
        .token(json!({"sub": "workload", "aud": AUD, "iss": "https://accounts.google.com"}))
        .await;
    let good = node.token(base).await;

    let code = |r: Result<idp::VerifiedToken, TokenRejection>| {
        r.map(|_| "ok").unwrap_or_else(|e| e.code())
    };
    assert_eq!(code(validator.validate(&good).await), "ok");
    assert_eq!(code(validator.validate(&wrong_aud).await), "wrong_audience");
    assert_eq!(code(validator.validate(&no_exp).await), "missing_exp");
    assert_eq!(code(validator.validate(&long).await), "lifetime_too_long");
    assert_eq!(code(validator.validate(&forged_kid).await), "unknown_kid");
    assert_eq!(
        code(validator.validate(&other_iss).await),
        "untrusted_issuer"
    );
    clock.advance(Duration::from_secs(3600 + 60));
    assert_eq!(code(validator.validate(&good).await), "expired");
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_secs() as i64
}

#[tokio::test]
async fn a_rotated_idp_key_is_picked_up_without_restart() {
    let Some(mut node) = NodeIdp::start().await else {
        return;
    };
    let clock = ManualClock::starting_now();
    let validator = validator(&node.issuer, IssuerKind::Oidc, &clock);
    let claims = json!({"sub": "workload", "aud": AUD});

    let before = node.token(claims.clone()).await;
    let first = validator.validate(&before).await.expect("valid");
    let new_kid = node.rotate().await;
    assert_ne!(first.kid(), new_kid);
    let after = node.token(claims).await;

    // Within a minute of the last fetch the unknown kid is refused without a request.
    assert_eq!(
        validator.validate(&after).await.map(|_| ()),
        Err(TokenRejection::UnknownKid)
    );
    assert_eq!(node.stats().await.0, 1);

    clock.advance(Duration::from_secs(61));
    let verified = validator.validate(&after).await.expect("new key picked up");
    assert_eq!(verified.kid(), new_kid);
    validator
        .validate(&before)
        .await
        .expect("old key still published");
    assert_eq!(node.stats().await, (2, 2));
    assert_eq!(validator.jwks().fetch_count(&node.issuer), 2);
}

#[tokio::test]
async fn cached_keys_survive_an_idp_outage_until_their_cache_expires() {
    let Some(mut node) = NodeIdp::start().await else {
        return;
    };
    let clock = ManualClock::starting_now();
    let validator = validator(&node.issuer, IssuerKind::Oidc, &clock);
    let token = node.token(json!({"sub": "workload", "aud": AUD})).await;
    validator.validate(&token).await.expect("valid");

    node.stop().await;
    // oauth2-mock-server sends no Cache-Control: the 300 s minimum applies.
    clock.advance(Duration::from_secs(299));
    validator
        .validate(&token)
        .await
        .expect("cached keys keep working");
    assert_eq!(validator.jwks().fetch_count(&node.issuer), 1);

    clock.advance(Duration::from_secs(1));
    assert_eq!(
        validator.validate(&token).await.map(|_| ()),
        Err(TokenRejection::IssuerUnreachable)
    );
    let stats = validator.jwks().stats(&node.issuer).expect("stats");
    assert_eq!((stats.fetches, stats.failures), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_unknown_kid_tokens_costs_at_most_one_fetch_per_minute() {
    let Some(mut node) = NodeIdp::start().await else {
        return;
    };
    let clock = ManualClock::starting_now();
    let validator = validator(&node.issuer, IssuerKind::Oidc, &clock);
    let warm = node.token(json!({"sub": "workload", "aud": AUD})).await;
    validator.validate(&warm).await.expect("valid");
    assert_eq!(node.stats().await, (1, 1));

    let mut forged = Vec::new();
    for i in 0..50 {
        let header = json!({"kid": format!("forged-{i}")});
        forged.push(
            node.token_with(json!({"sub": "workload", "aud": AUD}), header, &[])
                .await,
        );
    }

    let burst = |tokens: Vec<String>| {
        let validator = validator.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for token in tokens {
                let validator = validator.clone();
                tasks.spawn(async move { validator.validate(&token).await.map(|_| ()) });
            }
            let mut results = Vec::new();
            while let Some(result) = tasks.join_next().await {
                results.push(result.expect("task"));
            }
            results
        }
    };

    for (advance, expected_fetches) in [(61, 2), (0, 2), (30, 2), (31, 3)] {
        clock.advance(Duration::from_secs(advance));
        let results = burst(forged.clone()).await;
        assert_eq!(results.len(), 50);
        assert!(
            results
                .iter()
                .all(|r| *r == Err(TokenRejection::UnknownKid))
        );
        assert_eq!(node.stats().await.0, expected_fetches, "after +{advance} s");
        assert_eq!(validator.jwks().fetch_count(&node.issuer), expected_fetches);
    }
    validator
        .validate(&warm)
        .await
        .expect("genuine tokens unaffected");
}
