//! Identity federation end to end: a real third-party OIDC server (npm
//! `oauth2-mock-server`), a broker on loopback, onboarding through the admin
//! API with the bootstrap token, and RFC 8693 exchanges. Issued credentials
//! are checked with PyJWT, an independent JOSE implementation.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Broker, Db, Serve};
use keyferry::config::{Config, IssuerKind};
use serde_json::{Value, json};

const AUDIENCE: &str = "keyferry-test";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

/// A broker on the production start path that trusts the test IdP as a
/// workload issuer of `kind`. Its URL is also the audience of the
/// credentials it issues.
async fn env(db: Db, kind: IssuerKind, tweak: impl FnOnce(&mut Config)) -> Option<Broker> {
    Broker::builder()
        .db(db)
        .trusted_idp(kind, AUDIENCE)
        .serve(Serve::Server)
        .tweak(tweak)
        .start()
        .await
}

impl Broker {
    async fn onboard(&self, adtech: &str, cloud: &str, subject: &str, conditions: Value) -> String {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                "/v1/admin/adtechs",
                Some(json!({
                    "id": adtech, "name": adtech, "sites": [format!("https://{adtech}.example")],
                    "useCases": ["aggregation-service"],
                })),
            )
            .await;
        assert!(status == 201 || status == 409, "{status} {body}");
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                &format!("/v1/admin/adtechs/{adtech}/identities"),
                Some(json!({
                    "cloud": cloud, "issuer": self.idp_issuer(), "subject": subject, "conditions": conditions,
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("mapping id").to_owned()
    }

    async fn exchange_with(
        &self,
        form: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .client
            .post(format!("{}/v1/token", self.base))
            .form(form)
            .send()
            .await
            .expect("token call");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.expect("JSON body"))
    }

    async fn exchange(&self, token: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        self.exchange_with(&[
            ("grant_type", EXCHANGE),
            ("subject_token", token),
            ("subject_token_type", JWT),
        ])
        .await
    }
}

/// Verifies a credential with PyJWT; returns its header and claims.
fn verify_independently(token: &str, issuer: &str) -> Option<Value> {
    let out = common::python::run("verify_jwt.py", &[token, issuer, issuer], b"")?;
    Some(serde_json::from_str(&out).expect("JSON"))
}

fn cloud_claims(cloud: &str) -> (&'static str, &'static str, Value) {
    match cloud {
        "gcp" => (
            "gcp",
            "112233445566778899001",
            json!({
                "email": "workload@acme-prod.iam.gserviceaccount.com",
                "google": {"compute_engine": {
                    "project_id": "acme-prod", "project_number": 424242,
                    "zone": "us-central1-a", "instance_id": "7777"}},
            }),
        ),
        "azure" => (
            "azure",
            "8f14e45f-ceea-467f-9a3b-1c4a5d6e7f80",
            json!({
                "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "oid": "8f14e45f-ceea-467f-9a3b-1c4a5d6e7f80",
                "appid": "0b2f3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                "xms_mirid": "/subscriptions/s/resourcegroups/rg/providers/Microsoft.Compute/virtualMachines/cvm",
            }),
        ),
        "aws" => (
            "aws",
            "arn:aws:iam::111122223333:role/acme-workload",
            json!({"https://sts.amazonaws.com/": {"aws_account": "111122223333"}}),
        ),
        _ => (
            "aws",
            "system:serviceaccount:bidding:acme-workload",
            json!({"kubernetes.io": {"namespace": "bidding", "serviceaccount": {"name": "acme-workload"}}}),
        ),
    }
}

async fn each_clouds_token_is_exchanged_for_a_credential_that_verifies_independently(db: Db) {
    for shape in ["gcp", "azure", "aws", "eks"] {
        let (cloud, subject, extra) = cloud_claims(shape);
        let kind = match cloud {
            "gcp" => IssuerKind::Gcp,
            "azure" => IssuerKind::Azure,
            _ => IssuerKind::Aws,
        };
        let Some(mut env) = env(db, kind, |_| {}).await else {
            return;
        };
        let mapping = env.onboard("acme", cloud, subject, json!([])).await;
        let mut claims = json!({"sub": subject, "aud": AUDIENCE});
        claims
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        let token = env.idp().token(claims).await;

        let (status, headers, body) = env.exchange(&token).await;
        assert_eq!(status, 200, "{shape}: {body}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(body["issued_token_type"], JWT);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "keys:read keys:release");
        let expires_in = body["expires_in"].as_i64().expect("expires_in");
        assert!((3590..=3600).contains(&expires_in), "{expires_in}");

        let credential = body["access_token"].as_str().expect("access_token");
        let Some(verified) = verify_independently(credential, &env.base) else {
            continue;
        };
        assert_eq!(verified["header"]["typ"], "at+jwt");
        assert_eq!(verified["header"]["alg"], "ES256");
        let c = &verified["claims"];
        assert_eq!(c["iss"], env.base.as_str());
        assert_eq!(c["aud"], env.base.as_str());
        assert_eq!(c["sub"], "adtech:acme");
        assert_eq!(c["adtech"], "acme");
        assert_eq!(c["cloud"], cloud);
        assert_eq!(c["client_id"], mapping.as_str());
        assert_eq!(c["src_iss"], env.idp_issuer());
        assert_eq!(c["src_sub"], subject);
        assert_eq!(c["scope"], "keys:read keys:release");
        assert_eq!(c["jti"].as_str().map(str::len), Some(22), "128-bit jti");
        assert_eq!(
            c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
            3600
        );

        // The allow decision is audited without the token.
        let events = env.state.audit_log.events(0, 100).await.expect("audit");
        let allow = events
            .iter()
            .find(|e| e.kind == "token.exchange" && e.body["details"]["decision"] == "allow")
            .expect("allow audited");
        assert_eq!(allow.body["details"]["subject"], subject);
        let all = serde_json::to_string(&events).expect("json");
        assert!(
            !all.contains(&token) && !all.contains(credential),
            "a token reached the audit log"
        );
        env.shutdown();
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

async fn every_failed_check_is_refused_with_its_own_reason(db: Db) {
    let Some(mut env) = env(db, IssuerKind::Gcp, |_| {}).await else {
        return;
    };
    let subject = "112233445566778899001";
    env.onboard(
        "acme",
        "gcp",
        subject,
        json!([{"claim": "google.compute_engine.project_id", "op": "eq", "value": "acme-prod"}]),
    )
    .await;
    env.onboard("zeta", "gcp", "998877665544332211009", json!([]))
        .await;
    let good = json!({"sub": subject, "aud": AUDIENCE, "google": {"compute_engine": {"project_id": "acme-prod"}}});
    let with = |patch: Value| {
        let mut claims = good.clone();
        claims
            .as_object_mut()
            .expect("object")
            .extend(patch.as_object().expect("object").clone());
        claims
    };
    let t = now();

    let valid = env.idp().token(good.clone()).await;
    let [header, payload, signature] = valid.split('.').collect::<Vec<_>>()[..] else {
        panic!("JWS")
    };
    let kid =
        serde_json::from_slice::<Value>(&base64_decode(header)).expect("header")["kid"].clone();

    let alg_none = format!(
        "{}.{payload}.",
        b64(json!({"alg": "none", "kid": kid}).to_string().as_bytes())
    );
    // The classic confusion attack: HS256 keyed with the issuer's public key.
    let jwks = reqwest::get(format!("{}/jwks", env.idp_issuer()))
        .await
        .expect("jwks")
        .bytes()
        .await
        .expect("b");
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: kid.as_str().map(str::to_owned),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &good,
        &jsonwebtoken::EncodingKey::from_secret(&jwks),
    )
    .expect("hs256");
    let mut flipped = signature.to_owned().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let bad_signature = format!(
        "{header}.{payload}.{}",
        String::from_utf8(flipped).expect("utf8")
    );

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", alg_none, "alg_not_allowed"),
        ("HS256 with the public key", hs256, "alg_not_allowed"),
        (
            "unknown kid",
            env.idp()
                .token_with(good.clone(), json!({"kid": "forged"}), &[])
                .await,
            "unknown_kid",
        ),
        ("bad signature", bad_signature, "bad_signature"),
        (
            "expired",
            env.idp()
                .token(with(
                    json!({"iat": t - 7200, "exp": t - 3600, "nbf": t - 7200}),
                ))
                .await,
            "expired",
        ),
        (
            "nbf in the future",
            env.idp().token(with(json!({"nbf": t + 3600}))).await,
            "not_yet_valid",
        ),
        (
            "iat in the future",
            env.idp()
                .token(with(json!({"iat": t + 3600, "nbf": t, "exp": t + 7200})))
                .await,
            "issued_in_future",
        ),
        (
            "lifetime over the maximum",
            env.idp()
                .token(with(json!({"iat": t, "exp": t + 25 * 3600})))
                .await,
            "lifetime_too_long",
        ),
        (
            "wrong audience",
            env.idp().token(with(json!({"aud": "someone-else"}))).await,
            "wrong_audience",
        ),
        (
            "untrusted issuer",
            env.idp()
                .token(with(json!({"iss": "https://evil.example"})))
                .await,
            "untrusted_issuer",
        ),
        (
            "no mapping",
            env.idp()
                .token(with(json!({"sub": "100000000000000000001"})))
                .await,
            "no_mapping",
        ),
        (
            "condition does not hold",
            env.idp()
                .token(with(
                    json!({"google": {"compute_engine": {"project_id": "other"}}}),
                ))
                .await,
            "condition_failed",
        ),
        (
            "oversized",
            format!("{header}.{}.{signature}", "A".repeat(17 * 1024)),
            "token_too_large",
        ),
        ("garbage", "not a token at all".to_owned(), "malformed"),
        (
            "truncated",
            valid[..valid.len() / 2].to_owned(),
            "malformed",
        ),
        (
            "missing exp",
            env.idp()
                .token_with(good.clone(), json!({}), &["exp"])
                .await,
            "missing_exp",
        ),
    ];
    let denied = |metrics: &str, reason: &str| -> u64 {
        let line =
            format!("keyferry_token_decisions_total{{decision=\"deny\",reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .map_or(0, |v| v.trim().parse().expect("counter"))
    };
    for (name, token, reason) in &cases {
        let before = denied(&env.state.metrics.render(), reason);
        let (status, headers, body) = env.exchange(token).await;
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(body["error"], "invalid_grant", "{name}: {body}");
        assert_eq!(headers["cache-control"], "no-store", "{name}");
        let description = body["error_description"].as_str().expect("description");
        assert!(
            !description.contains(token.as_str()),
            "{name}: the token was echoed"
        );
        assert_eq!(
            denied(&env.state.metrics.render(), reason),
            before + 1,
            "{name}: expected reason {reason}; got {description}"
        );
    }

    // Disabling the ad tech stops exchanges at once.
    assert_eq!(env.exchange(&valid).await.0, 200);
    let (status, _) = env
        .admin(
            reqwest::Method::PATCH,
            "/v1/admin/adtechs/acme",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = env.exchange(&valid).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .expect("d")
            .contains("disabled"),
        "{body}"
    );

    // Every deny is audited with its reason and never the token.
    let events = env.state.audit_log.events(0, 1000).await.expect("audit");
    let denies = events
        .iter()
        .filter(|e| e.body["details"]["decision"] == "deny")
        .count();
    assert!(denies > cases.len(), "{denies} denies audited");
    let all = serde_json::to_string(&events).expect("json");
    for (_, token, _) in &cases {
        assert!(
            !all.contains(token.as_str()),
            "a token reached the audit log"
        );
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_the_right_oauth_error() {
    let Some(mut env) = env(Db::Sqlite, IssuerKind::Gcp, |_| {}).await else {
        return;
    };
    let subject = "112233445566778899001";
    env.onboard("acme", "gcp", subject, json!([])).await;
    let token = env
        .idp()
        .token(json!({"sub": subject, "aud": AUDIENCE}))
        .await;
    let t = token.as_str();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("subject_token", t), ("subject_token_type", JWT)],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("subject_token", t),
                ("subject_token_type", JWT),
            ],
            "unsupported_grant_type",
        ),
        (
            vec![("grant_type", EXCHANGE), ("subject_token_type", JWT)],
            "invalid_request",
        ),
        (
            vec![("grant_type", EXCHANGE), ("subject_token", t)],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", t),
                ("subject_token_type", "urn:x:saml"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", t),
                ("subject_token_type", JWT),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:saml2",
                ),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("grant_type", EXCHANGE),
                ("subject_token", t),
                ("subject_token_type", JWT),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", t),
                ("subject_token_type", JWT),
                ("audience", "https://elsewhere.example"),
            ],
            "invalid_target",
        ),
        (
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", t),
                ("subject_token_type", JWT),
                ("scope", "keys:read admin"),
            ],
            "invalid_scope",
        ),
    ];
    for (form, error) in cases {
        let (status, _, body) = env.exchange_with(&form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{form:?}: {body}"
        );
    }
    // A narrower scope than granted is fine.
    let (status, _, body) = env
        .exchange_with(&[
            ("grant_type", EXCHANGE),
            ("subject_token", t),
            ("subject_token_type", JWT),
            ("scope", "keys:read"),
        ])
        .await;
    assert_eq!(
        (status, body["scope"].as_str()),
        (200, Some("keys:read")),
        "{body}"
    );
    // Not a form at all.
    let response = env
        .client
        .post(format!("{}/v1/token", env.base))
        .json(&json!({"grant_type": EXCHANGE}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
    // Malformed requests are refusals too: counted and audited.
    assert!(env.state.metrics.render().contains(
        "keyferry_token_decisions_total{decision=\"deny\",reason=\"malformed_request\"} 2"
    ));
    let events = env.state.audit_log.events(0, 100).await.expect("audit");
    let malformed = events
        .iter()
        .filter(|e| e.body["details"]["reason"] == "malformed_request")
        .count();
    assert_eq!(malformed, 2, "the repeated parameter and the JSON body");
}

/// On PostgreSQL the count is in the database, shared by replicas.
async fn an_identity_past_its_rate_limit_gets_429_with_retry_after(db: Db) {
    let Some(mut env) = env(db, IssuerKind::Gcp, |config| {
        config.federation.rate_limit_per_minute = 3
    })
    .await
    else {
        return;
    };
    let subject = "112233445566778899001";
    env.onboard("acme", "gcp", subject, json!([])).await;
    let token = env
        .idp()
        .token(json!({"sub": subject, "aud": AUDIENCE}))
        .await;
    for _ in 0..3 {
        assert_eq!(env.exchange(&token).await.0, 200);
    }
    let (status, headers, body) = env.exchange(&token).await;
    assert_eq!(status, 429, "{body}");
    let retry: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Another identity is not affected.
    env.onboard("zeta", "gcp", "998877665544332211009", json!([]))
        .await;
    let other = env
        .idp()
        .token(json!({"sub": "998877665544332211009", "aud": AUDIENCE}))
        .await;
    assert_eq!(env.exchange(&other).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_is_audited_within_a_budget_and_counted() {
    let broker = Broker::builder()
        .tweak(|config| config.federation.audited_refusals_per_minute = 20)
        .start_sqlite()
        .await;
    let client = reqwest::Client::new();
    for _ in 0..120 {
        let response = client
            .post(format!("{}/v1/token", broker.base))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 400);
    }
    // 120 anonymous refusals used to be 120 permanent entries.
    let one_by_one = broker.audit_of_kind("token.exchange").await;
    assert_eq!(one_by_one.len(), 20);
    assert!(broker.audit_of_kind("token.refusals").await.is_empty());

    // When the minute ends the rest are one counted entry.
    broker.clock().advance(Duration::from_secs(61));
    let now_ms = broker.state.now_ms();
    broker
        .state
        .federation
        .housekeeping(broker.state.audit.as_ref(), now_ms)
        .await;
    let counted = broker.audit_of_kind("token.refusals").await;
    assert_eq!(counted.len(), 1, "{counted:?}");
    let details = &counted[0]["details"];
    assert_eq!(details["reason"], "unsupported_grant_type");
    assert_eq!(details["count"], 100);
    assert_eq!(counted[0]["actor"], "workload");

    // Every refusal is in the metrics.
    let metrics = broker.state.metrics.render();
    assert!(
        metrics.contains(
            "keyferry_token_decisions_total{decision=\"deny\",reason=\"unsupported_grant_type\"} 120"
        ),
        "{metrics}"
    );
}

/// A stock Privacy Sandbox GCP key fetcher sends its own ID token as the
/// Bearer, with no exchange step: accepted only where the issuer opts in
/// (`accept_as_bearer`), exchanged there as `POST /v1/token` would and
/// audited as an exchange, once per token.
async fn a_workload_id_token_is_a_bearer_only_where_its_issuer_opts_in(db: Db) {
    const SUBJECT: &str = "112233445566778899001";
    for opt_in in [true, false] {
        let Some(mut env) = env(db, IssuerKind::Gcp, |c| {
            c.use_cases[0].require_attestation = false;
            c.clouds.gcp = Some(keyferry::config::CloudConfig::with_kek(
                "local-kek://gcp-splits",
            ));
            for issuer in &mut c.issuers {
                issuer.accept_as_bearer = opt_in;
            }
        })
        .await
        else {
            return;
        };
        env.onboard("acme", "gcp", SUBJECT, json!([])).await;
        env.insert_key(
            "k-1",
            "aggregation-service",
            "active",
            Duration::from_secs(60),
            b"split",
            &["gcp"],
        )
        .await;
        // What the fetcher holds: a GCP-shaped ID token for the configured
        // audience, straight from the workload's IdP.
        let id_token = env
            .idp()
            .token(common::gcp_workload_claims(SUBJECT, AUDIENCE))
            .await;
        let stranger = env
            .idp()
            .token(common::gcp_workload_claims("999", AUDIENCE))
            .await;
        let elsewhere = env
            .idp()
            .token(common::gcp_workload_claims(SUBJECT, "someone-else"))
            .await;
        let fetch = |token: String| {
            let env = &env;
            async move {
                env.call(
                    reqwest::Method::GET,
                    "/v1alpha/encryptionKeys/k-1",
                    Some(&token),
                    None,
                )
                .await
            }
        };
        let (status, body) = fetch(id_token.clone()).await;
        if !opt_in {
            assert_eq!(status, 401, "{body}");
            assert_eq!(body["code"], 16, "UNAUTHENTICATED: {body}");
            assert_eq!(body["details"][0]["reason"], "UNAUTHENTICATED");
            assert!(env.audit_of_kind("token.exchange").await.is_empty());
            continue;
        }
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], "encryptionKeys/k-1");
        assert_eq!(
            body["keyData"][0]["keyEncryptionKeyUri"],
            "local-kek://gcp-splits"
        );
        // The same token again: served from its exchange, not exchanged anew.
        let (status, body) = fetch(id_token.clone()).await;
        assert_eq!(status, 200, "{body}");
        let exchanges = env.audit_of_kind("token.exchange").await;
        assert_eq!(exchanges.len(), 1, "{exchanges:?}");
        let allowed = &exchanges[0]["details"];
        assert_eq!(allowed["decision"], "allow");
        assert_eq!(allowed["via"], "bearer");
        assert_eq!(allowed["subject"], SUBJECT);
        assert_eq!(allowed["scope"], "keys:read", "only the endpoint's scope");
        let fetched = env.audit_of_kind("keys.fetched").await;
        assert_eq!(fetched.len(), 2);
        assert_eq!(fetched[0]["actor"], "adtech:acme");

        // An identity no mapping names: refused as the key API refuses, and
        // audited as a refused exchange.
        let (status, body) = fetch(stranger).await;
        assert_eq!((status, body["code"].as_i64()), (403, Some(7)), "{body}");
        assert_eq!(body["details"][0]["reason"], "PERMISSION_DENIED");
        // A token for another audience is a bad token.
        let (status, body) = fetch(elsewhere).await;
        assert_eq!((status, body["code"].as_i64()), (401, Some(16)), "{body}");
        let exchanges = env.audit_of_kind("token.exchange").await;
        let denied: Vec<(&str, &str)> = exchanges
            .iter()
            .filter(|e| e["details"]["decision"] == "deny")
            .map(|e| {
                (
                    e["details"]["reason"].as_str().unwrap_or(""),
                    e["details"]["via"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            denied,
            [("no_mapping", "bearer"), ("wrong_audience", "bearer")]
        );
    }
}

keyferry::on_both_backends!(
    db:
    each_clouds_token_is_exchanged_for_a_credential_that_verifies_independently,
    every_failed_check_is_refused_with_its_own_reason,
    an_identity_past_its_rate_limit_gets_429_with_retry_after,
    a_workload_id_token_is_a_bearer_only_where_its_issuer_opts_in,
);
