//! A broker on loopback for integration tests: the dev profile on SQLite or
//! PostgreSQL, a moved clock, the bootstrap admin token, and one `call`
//! helper. Tests pass a closure to adjust the configuration.

#![allow(dead_code, unreachable_pub)] // each test binary uses part of it

pub mod process;

use std::sync::Arc;

use cloud_adapters::KeyWrapper;
use idp::ManualClock;
use keyferry::AppState;
use keyferry::config::Config;
use keyferry::testing::TestDb;
use reqwest::Method;
use serde_json::Value;

/// Which database a test broker runs on; `keyferry::on_both_backends!(db:
/// …)` passes one to each test.
pub use keyferry::testing::Db;

/// A running broker.
pub struct Broker {
    pub state: AppState,
    pub base: String,
    pub admin_token: String,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    serving: tokio::task::JoinHandle<()>,
    _db: Option<TestDb>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl Broker {
    /// Starts a dev broker (no lifecycle task: tests drive it) on `db`, or
    /// `None` when PostgreSQL is unreachable outside CI.
    pub async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> Option<Broker> {
        test_support::install_crypto_provider();
        let db = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(TestDb::postgres().await?),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = Config::dev_default();
        config.data_dir = dir.path().to_owned();
        config.storage.url = db.as_ref().map(|db| db.url.clone());
        config.server.public_url = Some(base.parse().expect("url"));
        config.coordinator.peer_url = None;
        tweak(&mut config);
        let store = keyferry::storage::Store::connect(&config.storage_url(), 5)
            .await
            .expect("store");
        let kek: Arc<dyn KeyWrapper> = Arc::new(
            cloud_adapters::LocalKek::open_or_create(&config.local_kek_dir(), "storage")
                .await
                .expect("kek"),
        );
        let clock = ManualClock::starting_now();
        let state = keyferry::server::build_state_with(config, store, kek, Arc::new(clock.clone()))
            .await
            .expect("state");
        let app = keyferry::http::app(state.clone());
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let admin_token =
            std::fs::read_to_string(dir.path().join("admin-token")).expect("bootstrap token");
        Some(Broker {
            state,
            base,
            admin_token,
            clock,
            client: reqwest::Client::new(),
            dir,
            serving,
            _db: db,
        })
    }

    /// Sends a request; returns the status and the JSON body (`Null` when
    /// the body is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("call");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// [`Broker::call`] as the bootstrap admin.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(&self.admin_token.clone()), body)
            .await
    }

    /// Onboards ad tech `id` for `use_cases` straight into the store.
    pub async fn insert_adtech(&self, id: &str, use_cases: &[&str]) {
        let now = self.state.now_ms();
        self.state
            .store
            .insert_adtech(&keyferry::storage::AdTech {
                id: id.into(),
                name: id.into(),
                sites: vec![],
                use_cases: use_cases.iter().map(|u| (*u).to_owned()).collect(),
                enabled: true,
                created_at: now,
                updated_at: now,
            })
            .await
            .expect("adtech");
    }

    /// A federated credential of this broker for ad tech `adtech` in
    /// `cloud`, as `POST /v1/token` would issue it.
    pub fn credential(
        &self,
        adtech: &str,
        cloud: idp::IssuerKind,
        scopes: &[&str],
        ttl: std::time::Duration,
    ) -> String {
        let issuer = self.state.issuer.current();
        issuer
            .mint_access_token(
                std::time::SystemTime::now(),
                &idp::danger::UncheckedClaims {
                    adtech: adtech.into(),
                    client_id: "mapping-1".into(),
                    audience: issuer.issuer().to_owned(),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                    cloud,
                    src_iss: "https://idp.example".into(),
                    src_sub: "workload-1".into(),
                    ttl,
                }
                .into(),
            )
            .expect("mint")
            .as_str()
            .to_owned()
    }

    /// Every audit entry, parsed (through `AuditEntry`), oldest first.
    pub async fn audit_events(&self) -> Vec<Value> {
        let store = &self.state.store;
        let size = store.audit_size().await.expect("audit size");
        store
            .audit_entries(0, size)
            .await
            .expect("entries")
            .iter()
            .map(|e| {
                let entry = keyferry::audit::AuditEntry::parse(&e.entry).expect("an entry");
                serde_json::to_value(entry).expect("entry JSON")
            })
            .collect()
    }

    /// The audit entries of one kind.
    pub async fn audit_of_kind(&self, kind: &str) -> Vec<Value> {
        self.audit_events()
            .await
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .collect()
    }
}
