//! Operator authentication and onboarding validation through the real API.
//! The operator OIDC issuer is the npm `oauth2-mock-server`.

use std::time::{SystemTime, UNIX_EPOCH};

use keyferry::config::{Config, IssuerEntry, IssuerKind};
use keyferry::server::Server;
use keyferry::testing::Db;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use test_support::NodeIdp;

const OPERATORS: &str = "keyferry-operators";
const GOOGLE_LIKE: &str = "https://accounts.google.com";

struct Env {
    idp: NodeIdp,
    db: Option<keyferry::testing::TestDb>,
    base: String,
    bootstrap: String,
    client: reqwest::Client,
    state: keyferry::AppState,
    handle: axum_server::Handle,
    dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn config_for(dir: &std::path::Path, idp: &str, db: Option<&keyferry::testing::TestDb>) -> Config {
    let mut config = Config::dev_default();
    config.storage.url = db.map(|db| db.url.clone());
    config.data_dir = dir.to_owned();
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    config.admin.oidc_issuer = Some(idp.parse().expect("url"));
    config.admin.oidc_audience = Some(OPERATORS.into());
    // A configured GCP issuer, for identities.
    config.issuers.push(IssuerEntry {
        name: "google".into(),
        kind: IssuerKind::Gcp,
        issuer: GOOGLE_LIKE.parse().expect("url"),
        audience: "keyferry".into(),
        algorithms: None,
        max_token_lifetime: None,
        jwks_uri: None,
    });
    config
}

async fn env(db: Db) -> Option<Env> {
    let idp = NodeIdp::start().await?;
    let db = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(keyferry::testing::TestDb::postgres().await?),
    };
    test_support::install_crypto_provider();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::bind(config_for(dir.path(), &idp.issuer, db.as_ref()))
        .await
        .expect("bind");
    let base = format!("http://{}", server.local_addr());
    let handle = server.handle();
    let state = server.state().clone();
    tokio::spawn(server.run());
    let bootstrap =
        std::fs::read_to_string(dir.path().join("admin-token")).expect("bootstrap token");
    Some(Env {
        idp,
        db,
        base,
        bootstrap,
        client: reqwest::Client::new(),
        state,
        handle,
        dir,
    })
}

impl Env {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("call");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn operator(&mut self, roles: Value, audience: &str) -> String {
        self.idp
            .token(json!({"sub": "ops-1", "aud": audience, "keyferry_roles": roles}))
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_token_is_private_and_stored_only_as_a_hash() {
    let Some(env) = env(Db::Sqlite).await else {
        return;
    };
    let path = env.dir.path().join("admin-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let token = env.bootstrap.trim();
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
    let server = Server::bind(config_for(env.dir.path(), &env.idp.issuer, env.db.as_ref()))
        .await
        .expect("restart");
    drop(server);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), env.bootstrap);
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
            json!({"cloud": "gcp", "issuer": GOOGLE_LIKE, "subject": "112233445566778899001"}),
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
        .idp
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
            let (status, headers, problem) =
                env.call(method.clone(), path, token, body(payload)).await;
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
            env.call(Method::GET, path, None, None).await.0,
            401,
            "{path}"
        );
        assert_eq!(
            env.call(Method::GET, path, Some(&no_role), None).await.0,
            403,
            "{path}"
        );
        let (status, _, _) = env.call(Method::GET, path, Some(&auditor), None).await;
        assert!(
            status == 200 || status == 404,
            "{path}: auditors may read ({status})"
        );
    }

    // An admin from the operator issuer, and the bootstrap token, may write.
    let admin = env.operator(json!(["admin"]), OPERATORS).await;
    let (status, _, created) = env
        .call(
            Method::POST,
            "/v1/admin/adtechs",
            Some(&admin),
            body(&writes[0].2),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, _, _) = env
        .call(
            Method::PATCH,
            "/v1/admin/adtechs/acme",
            Some(env.bootstrap.trim()),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    let events = env.state.audit_log.events(0, 100).await.expect("audit");
    let actors: Vec<&str> = events
        .iter()
        .filter_map(|e| e.body["actor"].as_str())
        .filter(|actor| !actor.starts_with("coordinator:"))
        .collect();
    assert_eq!(actors, ["operator:ops-1", "admin-token:bootstrap"]);
}

async fn onboarding_validation_errors_name_the_field(db: Db) {
    let Some(env) = env(db).await else { return };
    let token = env.bootstrap.trim().to_owned();
    let post = |path: &'static str, body: Value| {
        let env = &env;
        let token = token.clone();
        async move { env.call(Method::POST, path, Some(&token), Some(body)).await }
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
            json!({"cloud": "gcp", "issuer": GOOGLE_LIKE, "subject": "112233445566778899001"});
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
        .call(
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
    let (status, _, _) = env
        .call(Method::DELETE, "/v1/admin/issuers/eks", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    let (status, _, body) = env
        .call(
            Method::GET,
            "/v1/admin/mappings?cloud=gcp&adtech=acme",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["mappings"].as_array().expect("mappings").len(), 1);
    let (status, _, problem) = env
        .call(
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
