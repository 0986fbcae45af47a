//! Operator authentication and onboarding validation through the real API.
//! The operator OIDC issuer is the npm `oauth2-mock-server`.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Broker, Db, GOOGLE, Serve};
use keyferry::server::Server;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

const OPERATORS: &str = "keyferry-operators";

/// A broker on the production start path whose operator issuer is the test
/// IdP.
async fn env(db: Db) -> Option<Broker> {
    Broker::builder()
        .db(db)
        .operator_idp(OPERATORS)
        .serve(Serve::Server)
        .tweak(|config| config.issuers.push(common::google_issuer()))
        .start()
        .await
}

impl Broker {
    async fn operator(&mut self, roles: Value, audience: &str) -> String {
        self.idp()
            .token(json!({"sub": "ops-1", "aud": audience, "keyferry_roles": roles}))
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_token_is_private_and_stored_only_as_a_hash() {
    let Some(env) = env(Db::Sqlite).await else {
        return;
    };
    let path = env.token_file();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let token = env.admin_token().trim();
    assert!(token.starts_with("kf_") && token.len() >= 40, "{token}");
    let stored = env.state.store.admin_token_hashes().await.expect("hashes");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, sha2::Sha256::digest(token.as_bytes()).to_vec());
    assert!(
        !stored[0]
            .0
            .windows(token.len())
            .any(|w| w == token.as_bytes())
    );

    // A restart on the same data keeps the token.
    let server = Server::bind(env.config.clone()).await.expect("restart");
    drop(server);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        env.admin_token()
    );
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

async fn admin_endpoints_refuse_missing_wrong_and_underprivileged_tokens(db: Db) {
    let Some(mut env) = env(db).await else { return };
    let writes: Vec<(Method, &str, Value)> = vec![
        (
            Method::POST,
            "/v1/admin/adtechs",
            json!({"id": "acme", "name": "Acme"}),
        ),
        (
            Method::PATCH,
            "/v1/admin/adtechs/acme",
            json!({"enabled": false}),
        ),
        (
            Method::POST,
            "/v1/admin/adtechs/acme/identities",
            json!({"cloud": "gcp", "issuer": GOOGLE, "subject": "112233445566778899001"}),
        ),
        (
            Method::DELETE,
            "/v1/admin/adtechs/acme/identities/m-x",
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/admin/issuers",
            json!({"name": "eks", "kind": "aws", "issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC", "audience": "sts.amazonaws.com"}),
        ),
        (Method::DELETE, "/v1/admin/issuers/eks", Value::Null),
    ];
    let reads = [
        "/v1/admin/adtechs",
        "/v1/admin/adtechs/acme",
        "/v1/admin/adtechs/acme/identities",
        "/v1/admin/mappings",
        "/v1/admin/issuers",
    ];
    let body = |v: &Value| (!v.is_null()).then(|| v.clone());

    let auditor = env.operator(json!(["auditor"]), OPERATORS).await;
    let no_role = env.operator(json!([]), OPERATORS).await;
    let member = env.operator(json!("member"), OPERATORS).await;
    let wrong_audience = env.operator(json!(["admin"]), "someone-else").await;
    let t = now();
    let expired = env
        .idp()
        .token(json!({"sub": "ops-1", "aud": OPERATORS, "keyferry_roles": ["admin"], "iat": t - 7200, "nbf": t - 7200, "exp": t - 3600}))
        .await;

    for (method, path, payload) in &writes {
        for (token, expected) in [
            (None, 401),
            (Some("kf_not-the-token"), 401),
            (Some(wrong_audience.as_str()), 401),
            (Some(expired.as_str()), 401),
            (Some(auditor.as_str()), 403),
            (Some(no_role.as_str()), 403),
            (Some(member.as_str()), 403),
        ] {
            let (status, headers, problem) = env
                .call_with_headers(method.clone(), path, token, body(payload))
                .await;
            assert_eq!(
                status, expected,
                "{method} {path} with {token:?}: {problem}"
            );
            let code = if expected == 401 {
                "unauthenticated"
            } else {
                "forbidden"
            };
            assert_eq!(problem["code"], code);
            if expected == 401 {
                assert_eq!(headers["www-authenticate"], "Bearer");
            }
        }
    }
    for path in reads {
        assert_eq!(
            env.call_with_headers(Method::GET, path, None, None).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            env.call_with_headers(Method::GET, path, Some(&no_role), None)
                .await
                .0,
            403,
            "{path}"
        );
        let (status, _, _) = env
            .call_with_headers(Method::GET, path, Some(&auditor), None)
            .await;
        assert!(
            status == 200 || status == 404,
            "{path}: auditors may read ({status})"
        );
    }

    // An admin from the operator issuer, and the bootstrap token, may write.
    let admin = env.operator(json!(["admin"]), OPERATORS).await;
    let (status, _, created) = env
        .call_with_headers(
            Method::POST,
            "/v1/admin/adtechs",
            Some(&admin),
            body(&writes[0].2),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, _, _) = env
        .call_with_headers(
            Method::PATCH,
            "/v1/admin/adtechs/acme",
            Some(env.admin_token().trim()),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    let events = env.state.audit_log.events(0, 100).await.expect("audit");
    let actors: Vec<&str> = events
        .iter()
        .filter_map(|e| e.body["actor"].as_str())
        .filter(|actor| !actor.starts_with("coordinator:") && !actor.starts_with("witness"))
        .collect();
    assert_eq!(actors, ["operator:ops-1", "admin-token:bootstrap"]);
}

async fn onboarding_validation_errors_name_the_field(db: Db) {
    let Some(env) = env(db).await else { return };
    let token = env.admin_token().trim().to_owned();
    let post = |path: &'static str, body: Value| {
        let env = &env;
        let token = token.clone();
        async move {
            env.call_with_headers(Method::POST, path, Some(&token), Some(body))
                .await
        }
    };
    let adtech_cases = [
        (json!({"id": "A", "name": "x"}), "id"),
        (json!({"id": "acme", "name": ""}), "name"),
        (
            json!({"id": "acme", "name": "Acme", "sites": ["http://acme.example"]}),
            "sites[0]",
        ),
        (
            json!({"id": "acme", "name": "Acme", "sites": ["https://acme.example/path"]}),
            "sites[0]",
        ),
        (
            json!({"id": "acme", "name": "Acme", "useCases": ["Aggregation Service"]}),
            "useCases[0]",
        ),
        (
            json!({"id": "acme", "name": "Acme", "sites": ["https://a.example", "https://a.example"]}),
            "sites",
        ),
    ];
    for (body, field) in adtech_cases {
        let (status, _, problem) = post("/v1/admin/adtechs", body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["code"], "invalid_field");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (status, _, problem) = post(
        "/v1/admin/adtechs",
        json!({"id": "acme", "name": "Acme", "color": "red"}),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("bad_json")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("color")
    );

    assert_eq!(
        post("/v1/admin/adtechs", json!({"id": "acme", "name": "Acme"}))
            .await
            .0,
        201
    );
    let (status, _, problem) =
        post("/v1/admin/adtechs", json!({"id": "acme", "name": "Again"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("conflict")));

    let identity = |patch: Value| {
        let mut body =
            json!({"cloud": "gcp", "issuer": GOOGLE, "subject": "112233445566778899001"});
        body.as_object_mut()
            .expect("object")
            .extend(patch.as_object().expect("object").clone());
        body
    };
    let identity_cases = [
        (
            identity(json!({"issuer": "https://untrusted.example"})),
            "issuer",
        ),
        (identity(json!({"cloud": "azure"})), "cloud"),
        (identity(json!({"subject": "not-a-number"})), "subject"),
        (
            identity(json!({"conditions": [{"claim": "", "op": "eq", "value": "x"}]})),
            "conditions[0]",
        ),
        (
            identity(json!({"conditions": [{"claim": "a.b", "op": "in", "value": []}]})),
            "conditions[0]",
        ),
        (identity(json!({"scopes": ["keys:delete"]})), "scopes"),
        (identity(json!({"scopes": []})), "scopes"),
    ];
    for (body, field) in identity_cases {
        let (status, _, problem) = post("/v1/admin/adtechs/acme/identities", body.clone()).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (status, _, _) = post("/v1/admin/adtechs/nobody/identities", identity(json!({}))).await;
    assert_eq!(status, 404);

    // Overlap: the same identity twice, or for another ad tech, is refused;
    // provably disjoint conditions are not.
    let project = |p: &str| json!({"conditions": [{"claim": "google.compute_engine.project_id", "op": "eq", "value": p}]});
    assert_eq!(
        post("/v1/admin/adtechs/acme/identities", identity(project("p1")))
            .await
            .0,
        201
    );
    assert_eq!(
        post("/v1/admin/adtechs", json!({"id": "zeta", "name": "Zeta"}))
            .await
            .0,
        201
    );
    let (status, _, problem) = post("/v1/admin/adtechs/zeta/identities", identity(json!({}))).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(
        post("/v1/admin/adtechs/acme/identities", identity(project("p1")))
            .await
            .0,
        409
    );
    assert_eq!(
        post("/v1/admin/adtechs/zeta/identities", identity(project("p2")))
            .await
            .0,
        201
    );

    // Issuers: shape checked per kind; duplicates refused; configured ones stay.
    let (status, _, problem) = post(
        "/v1/admin/issuers",
        json!({"name": "bad", "kind": "azure", "issuer": "https://login.microsoftonline.com/not-a-guid/v2.0", "audience": "a"}),
    )
    .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("issuer")),
        "{problem}"
    );
    let (status, _, problem) = post(
        "/v1/admin/issuers",
        json!({"name": "plain", "kind": "oidc", "issuer": "http://idp.example", "audience": "a"}),
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    let eks = json!({"name": "eks", "kind": "aws", "issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC", "audience": "sts.amazonaws.com"});
    assert_eq!(post("/v1/admin/issuers", eks.clone()).await.0, 201);
    assert_eq!(post("/v1/admin/issuers", eks).await.0, 409);
    let (status, _, _) = env
        .call_with_headers(
            Method::DELETE,
            "/v1/admin/issuers/google",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        status, 409,
        "configured issuers are removed in keyferry.toml"
    );
    let eks_identity = json!({"cloud": "aws", "issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC",
                              "subject": "system:serviceaccount:default:bidding-server"});
    let (status, _, added) = post("/v1/admin/adtechs/acme/identities", eks_identity).await;
    assert_eq!(status, 201, "{added}");
    let (status, _, _) = env
        .call_with_headers(Method::DELETE, "/v1/admin/issuers/eks", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    // Its mappings went with it (audited), so trusting the URL again
    // would revive none of them.
    let removed = env.audit_of_kind("mapping.removed").await;
    let by_issuer: Vec<&Value> = removed
        .iter()
        .filter(|e| e["details"]["because"] == "issuer removed")
        .collect();
    assert_eq!(by_issuer.len(), 1, "{removed:?}");
    assert_eq!(by_issuer[0]["details"]["id"], added["id"]);
    let (status, _, body) = env
        .call_with_headers(
            Method::GET,
            "/v1/admin/mappings?cloud=gcp&adtech=acme",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["mappings"].as_array().expect("mappings").len(), 1);
    let (status, _, problem) = env
        .call_with_headers(
            Method::GET,
            "/v1/admin/mappings?colour=blue",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_query"))
    );
}

keyferry::on_both_backends!(
    db:
    admin_endpoints_refuse_missing_wrong_and_underprivileged_tokens,
    onboarding_validation_errors_name_the_field,
);
