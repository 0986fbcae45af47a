//! A broker for integration tests, built one way. [`Broker::builder`] picks
//! the database, a configuration tweak, an optional test IdP (the npm
//! `oauth2-mock-server` of `test_support`) and how the broker is served;
//! [`Broker`] holds its state, the bootstrap admin token, a moved clock and
//! one `call` helper. Test files add their own helpers in `impl Broker`
//! blocks.
//!
//! ```ignore
//! let broker = Broker::builder()
//!     .db(Db::Postgres)
//!     .trusted_idp(IssuerKind::Gcp, "keyferry-test")
//!     .serve(Serve::Server)
//!     .tweak(|c| c.federation.rate_limit_per_minute = 3)
//!     .start()
//!     .await?; // None: PostgreSQL or the IdP is missing outside CI
//! ```

#![allow(dead_code, unreachable_pub)] // each test binary uses part of it

pub mod governance;
pub mod process;
pub mod python;
pub mod tee;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cloud_adapters::KeyWrapper;
use idp::ManualClock;
use keyferry::AppState;
use keyferry::config::{Config, IssuerEntry, IssuerKind};
use keyferry::server::Server;
use keyferry::testing::TestDb;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use test_support::NodeIdp;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Which database a test broker runs on; `keyferry::on_both_backends!(db:
/// …)` passes one to each test.
pub use keyferry::testing::Db;

/// How a test broker is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serve {
    /// `keyferry::http::app(state)` served by axum on a loopback listener,
    /// on a [`ManualClock`], with no lifecycle or audit-head tasks (tests
    /// drive them) and no embedded Type-2. The default.
    InProcess,
    /// `Server::bind` and `Server::run`: the production start path, with
    /// the dev profile's embedded Type-2, the background tasks, TLS when
    /// configured, and the system clock.
    Server,
    /// Not served: the test uses the state, or drives
    /// `keyferry::http::app(broker.state.clone())` with `oneshot`.
    NotServed,
}

/// Where the builder registers its test IdP.
enum IdpRole {
    /// A trusted workload issuer, `workload-idp`.
    Trusted {
        kind: IssuerKind,
        audience: &'static str,
    },
    /// The operator OIDC issuer (`admin.oidc_issuer`).
    Operator { audience: &'static str },
}

/// The database a builder starts the broker on.
enum Database {
    /// SQLite in the data directory, or a fresh PostgreSQL database.
    Fresh(Db),
    /// One the test opened (`None`: SQLite in the data directory).
    Opened(Option<TestDb>),
}

/// Google's issuer URL, the issuer of [`google_issuer`].
pub const GOOGLE: &str = "https://accounts.google.com";

/// The claims of a GCP Compute Engine workload's ID token (what the test
/// IdP mints for one), for `subject` and `audience`.
pub fn gcp_workload_claims(subject: &str, audience: &str) -> Value {
    serde_json::json!({
        "sub": subject, "aud": audience,
        "email": "workload@acme-prod.iam.gserviceaccount.com",
        "google": {"compute_engine": {"project_id": "acme-prod", "project_number": 424242,
                                      "zone": "us-central1-a", "instance_id": "7777"}},
    })
}

/// A configured GCP issuer, `google`, for onboarding identities: nothing
/// calls it until a token from it arrives.
pub fn google_issuer() -> IssuerEntry {
    issuer("google", IssuerKind::Gcp, GOOGLE, "keyferry")
}

/// A trusted issuer entry with no optional settings.
pub fn issuer(name: &str, kind: IssuerKind, url: &str, audience: &str) -> IssuerEntry {
    IssuerEntry {
        name: name.into(),
        kind,
        issuer: url.parse().expect("issuer URL"),
        audience: audience.into(),
        algorithms: None,
        max_token_lifetime: None,
        jwks_uri: None,
        accept_as_bearer: false,
    }
}

/// The workload identity (issuer, subject) of [`Broker::credential`]'s
/// credentials, mapped by [`Broker::insert_adtech`].
pub const CREDENTIAL_SOURCE: (&str, &str) = ("https://idp.example", "workload-1");

/// What [`Broker::builder`] returns. The configuration is built in this
/// order: the dev default (or [`BrokerBuilder::config`]); the data
/// directory and database; for [`Serve::InProcess`] the public URL of the
/// listener and no peer, for [`Serve::Server`] `listen = 127.0.0.1:0`; the
/// IdP; then the tweak, which may change any of it.
pub struct BrokerBuilder<'a> {
    database: Database,
    serve: Serve,
    config: Option<Config>,
    tweak: Box<dyn FnOnce(&mut Config) + 'a>,
    idp: Option<IdpRole>,
    data_dir: Option<PathBuf>,
    listener: Option<TcpListener>,
    clock: Option<ManualClock>,
    storage_kek: Option<Arc<dyn KeyWrapper>>,
}

impl<'a> BrokerBuilder<'a> {
    /// The database engine (default SQLite in the data directory).
    pub fn db(mut self, db: Db) -> Self {
        self.database = Database::Fresh(db);
        self
    }

    /// A database the test opened; `None` is SQLite in the data directory.
    pub fn test_db(mut self, db: Option<TestDb>) -> Self {
        self.database = Database::Opened(db);
        self
    }

    /// How the broker is served (default [`Serve::InProcess`]).
    pub fn serve(mut self, serve: Serve) -> Self {
        self.serve = serve;
        self
    }

    /// Starts from `config` instead of the dev default.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// The last word on the configuration.
    pub fn tweak(mut self, tweak: impl FnOnce(&mut Config) + 'a) -> Self {
        self.tweak = Box::new(tweak);
        self
    }

    /// Starts a test IdP and trusts it as the workload issuer
    /// `workload-idp` of `kind` for `audience`.
    pub fn trusted_idp(mut self, kind: IssuerKind, audience: &'static str) -> Self {
        self.idp = Some(IdpRole::Trusted { kind, audience });
        self
    }

    /// Starts a test IdP and makes it the operator OIDC issuer for
    /// `audience`.
    pub fn operator_idp(mut self, audience: &'static str) -> Self {
        self.idp = Some(IdpRole::Operator { audience });
        self
    }

    /// Uses `dir` as the data directory (kept by the test, for example to
    /// start again on the same data) instead of a fresh temporary one.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Serves in process on `listener`, bound by the test (two brokers
    /// that must know each other's URL before either starts).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.serve = Serve::InProcess;
        self.listener = Some(listener);
        self
    }

    /// Runs on `clock` (shared with another broker) instead of a new
    /// [`ManualClock`]; not with [`Serve::Server`].
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Wraps with `kek` (shared with another broker) instead of the local
    /// KEK of its data directory; not with [`Serve::Server`].
    pub fn storage_kek(mut self, kek: Arc<dyn KeyWrapper>) -> Self {
        self.storage_kek = Some(kek);
        self
    }

    /// Starts a broker on SQLite without a test IdP: nothing it needs can
    /// be missing, so it always starts.
    pub async fn start_sqlite(self) -> Broker {
        assert!(
            matches!(self.database, Database::Fresh(Db::Sqlite)) && self.idp.is_none(),
            "start() a broker on PostgreSQL or with an IdP: it may be skipped"
        );
        self.start().await.expect("a SQLite broker starts")
    }

    /// Starts the broker, or returns `None` when PostgreSQL or the test IdP
    /// is unavailable outside CI (the test then skips).
    pub async fn start(self) -> Option<Broker> {
        test_support::install_crypto_provider();
        let idp = match self.idp {
            Some(role) => Some((NodeIdp::start().await?, role)),
            None => None,
        };
        let db = match self.database {
            Database::Fresh(Db::Sqlite) => None,
            Database::Fresh(Db::Postgres) => Some(TestDb::postgres().await?),
            Database::Opened(db) => db,
        };
        let (tempdir, data_dir) = match self.data_dir {
            Some(dir) => (None, dir),
            None => {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().to_owned();
                (Some(dir), path)
            }
        };
        let mut config = self.config.unwrap_or_else(Config::dev_default);
        config.data_dir = data_dir.clone();
        if let Some(db) = &db {
            config.storage.url = Some(db.url.clone());
        }
        let listener = match (self.serve, self.listener) {
            (Serve::InProcess, Some(listener)) => Some(listener),
            (Serve::InProcess, None) => Some(TcpListener::bind("127.0.0.1:0").await.expect("bind")),
            _ => None,
        };
        let listening = listener.map(|listener| {
            let addr = listener.local_addr().expect("addr");
            (listener, addr.port(), format!("http://{addr}"))
        });
        match &listening {
            Some((_, _, base)) => {
                config.server.public_url = Some(base.parse().expect("url"));
                // Only `Server::bind` starts an embedded Type-2.
                config.coordinator.peer_url = None;
            }
            None if self.serve == Serve::Server => {
                config.server.listen = "127.0.0.1:0".parse().expect("addr");
            }
            None => {}
        }
        if let Some((idp, role)) = &idp {
            match role {
                IdpRole::Trusted { kind, audience } => {
                    config
                        .issuers
                        .push(issuer("workload-idp", *kind, &idp.issuer, audience))
                }
                IdpRole::Operator { audience } => {
                    config.admin.oidc_issuer = Some(idp.issuer.parse().expect("url"));
                    config.admin.oidc_audience = Some((*audience).into());
                }
            }
        }
        (self.tweak)(&mut config);
        if config.is_dev() {
            tee::attest_key_generation(&mut config);
        }

        let (state, base, clock, serving) = if self.serve == Serve::Server {
            assert!(
                self.clock.is_none() && self.storage_kek.is_none(),
                "Server::bind opens its own clock and storage KEK"
            );
            let (state, base, serving) = bind_server(config.clone()).await;
            (state, base, None, serving)
        } else {
            let clock = self.clock.unwrap_or_else(ManualClock::starting_now);
            let state = build_state(config.clone(), self.storage_kek, &clock).await;
            let (base, serving) = match listening {
                Some((listener, port, base)) => {
                    let task = Some(serve_app(&state, listener));
                    (base, Serving::InProcess { port, task })
                }
                None => (config.public_url(), Serving::NotServed),
            };
            (state, base, Some(clock), serving)
        };
        let admin_token = (config.is_dev() && config.bootstrap_token_enabled()).then(|| {
            std::fs::read_to_string(data_dir.join("admin-token")).expect("bootstrap token")
        });
        Some(Broker {
            state,
            base,
            client: reqwest::Client::new(),
            config,
            admin_token,
            clock,
            idp: idp.map(|(idp, _)| idp),
            data_dir,
            serving,
            _tempdir: tempdir,
            _db: db,
        })
    }
}

/// `Server::bind` and `Server::run` in a task: the production start path.
async fn bind_server(config: Config) -> (AppState, String, Serving) {
    let server = Server::bind(config).await.expect("bind");
    let scheme = if server.state().config.server.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let base = format!("{scheme}://{}", server.local_addr());
    let handle = server.handle();
    let state = server.state().clone();
    let task = Some(tokio::spawn(
        async move { server.run().await.expect("serve") },
    ));
    (state, base, Serving::Server { handle, task })
}

/// The state `Server::bind` would build, on `clock`, with `kek` or the
/// local storage KEK of the data directory.
async fn build_state(
    config: Config,
    kek: Option<Arc<dyn KeyWrapper>>,
    clock: &ManualClock,
) -> AppState {
    let store = keyferry::storage::Store::connect(&config.storage_url(), 5)
        .await
        .expect("store");
    let kek = match kek {
        Some(kek) => kek,
        None => Arc::new(
            cloud_adapters::LocalKek::open_or_create(&config.local_kek_dir(), "storage")
                .await
                .expect("kek"),
        ),
    };
    keyferry::server::build_state_with(config, store, kek, Arc::new(clock.clone()))
        .await
        .expect("state")
}

fn serve_app(state: &AppState, listener: TcpListener) -> JoinHandle<()> {
    let app = keyferry::http::app(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

/// How a running [`Broker`] is served.
enum Serving {
    InProcess {
        port: u16,
        task: Option<JoinHandle<()>>,
    },
    Server {
        handle: axum_server::Handle,
        task: Option<JoinHandle<()>>,
    },
    NotServed,
}

/// A broker started by [`BrokerBuilder::start`]; stopped when dropped.
pub struct Broker {
    pub state: AppState,
    /// Where it answers (with [`Serve::NotServed`], its public URL, where
    /// nothing listens).
    pub base: String,
    pub client: reqwest::Client,
    /// The configuration it was started with, before `Server::bind` filled
    /// in its URLs: starting a `Server` on it again starts on the same data.
    pub config: Config,
    admin_token: Option<String>,
    clock: Option<ManualClock>,
    idp: Option<NodeIdp>,
    data_dir: PathBuf,
    serving: Serving,
    _tempdir: Option<tempfile::TempDir>,
    _db: Option<TestDb>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Broker {
    /// A broker on SQLite in a temporary data directory, served in
    /// process; see [`BrokerBuilder`] for the rest.
    pub fn builder<'a>() -> BrokerBuilder<'a> {
        BrokerBuilder {
            database: Database::Fresh(Db::Sqlite),
            serve: Serve::InProcess,
            config: None,
            tweak: Box::new(|_| {}),
            idp: None,
            data_dir: None,
            listener: None,
            clock: None,
            storage_kek: None,
        }
    }

    /// Starts a dev broker in process (no lifecycle task: tests drive it)
    /// on `db`, or `None` when PostgreSQL is unreachable outside CI.
    pub async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> Option<Broker> {
        Broker::builder().db(db).tweak(tweak).start().await
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The bootstrap admin token, as its file holds it.
    pub fn admin_token(&self) -> &str {
        self.admin_token
            .as_deref()
            .expect("this broker has no bootstrap token")
    }

    /// The file of the bootstrap admin token, for the `keyferry` CLI.
    pub fn token_file(&self) -> PathBuf {
        self.data_dir.join("admin-token")
    }

    /// The clock the broker runs on, which tests move.
    pub fn clock(&self) -> &ManualClock {
        self.clock
            .as_ref()
            .expect("Serve::Server runs on the system clock")
    }

    /// The test IdP.
    pub fn idp(&mut self) -> &mut NodeIdp {
        self.idp
            .as_mut()
            .expect("this broker was built without an IdP")
    }

    /// The test IdP's issuer URL.
    pub fn idp_issuer(&self) -> &str {
        &self
            .idp
            .as_ref()
            .expect("this broker was built without an IdP")
            .issuer
    }

    /// Stops serving at once (the broker's state stays usable).
    pub fn shutdown(&self) {
        match &self.serving {
            Serving::InProcess { task, .. } => {
                if let Some(task) = task {
                    task.abort();
                }
            }
            Serving::Server { handle, .. } => handle.shutdown(),
            Serving::NotServed => {}
        }
    }

    /// Stops serving, waits for it to end and closes the store.
    pub async fn stop(mut self) {
        self.shutdown();
        if let Serving::InProcess { task, .. } | Serving::Server { task, .. } = &mut self.serving
            && let Some(task) = task.take()
        {
            let _ = task.await;
        }
        self.state.store.close().await;
    }

    /// Tells a [`Serve::Server`] to shut down gracefully within `grace`;
    /// returns its serving task, which ends when it has.
    pub fn graceful_shutdown(&mut self, grace: Option<Duration>) -> JoinHandle<()> {
        let Serving::Server { handle, task } = &mut self.serving else {
            panic!("only Serve::Server shuts down gracefully");
        };
        handle.graceful_shutdown(grace);
        task.take().expect("still serving")
    }

    /// Stops serving in process, as if the broker were down.
    pub fn stop_serving(&mut self) {
        if let Some(task) = self.in_process().1.take() {
            task.abort();
        }
    }

    /// Serves in process again on the same port.
    pub async fn serve_again(&mut self) {
        let port = self.in_process().0;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("rebind");
        *self.in_process().1 = Some(serve_app(&self.state, listener));
    }

    /// The port and serving task of a [`Serve::InProcess`] broker.
    fn in_process(&mut self) -> (u16, &mut Option<JoinHandle<()>>) {
        let Serving::InProcess { port, task } = &mut self.serving else {
            panic!("only Serve::InProcess stops and serves again");
        };
        (*port, task)
    }

    /// Sends a request; returns the status, the headers and the JSON body
    /// (`Null` when the body is not JSON).
    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, HeaderMap, Value) {
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
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
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
        let (status, _, body) = self.call_with_headers(method, path, token, body).await;
        (status, body)
    }

    /// [`Broker::call`] as the bootstrap admin.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(self.admin_token()), body)
            .await
    }

    /// Stores a key of `use_case` created `age` ago, as if received from the
    /// peer: public key `[7; 32]`, signatures `sig-a`/`sig-b`, and `split`
    /// wrapped by the storage KEK and by the KEKs of `clouds`.
    pub async fn insert_key(
        &self,
        id: &str,
        use_case: &str,
        status: &str,
        age: Duration,
        split: &[u8],
        clouds: &[&str],
    ) {
        use keyferry::storage::{KeyRecord, StoredSplit};
        let state = &self.state;
        let created = state.now_ms() - i64::try_from(age.as_millis()).expect("age");
        let mut splits = vec![StoredSplit {
            kek_uri: state.storage_kek.kek_uri().to_string(),
            ciphertext: state.storage_kek.wrap(split).await.expect("wrap"),
        }];
        for (name, kek) in &state.cloud_keks {
            if clouds.contains(&name.as_str()) {
                splits.push(StoredSplit {
                    kek_uri: kek.kek_uri().to_string(),
                    ciphertext: kek.wrap(split).await.expect("wrap"),
                });
            }
        }
        let record = KeyRecord {
            id: id.into(),
            use_case: use_case.into(),
            status: status.into(),
            public_key: vec![7; 32],
            public_keyset: r#"{"primaryKeyId":1,"key":[]}"#.into(),
            creation_time: created,
            activation_time: created,
            expiration_time: created + 7 * 86_400_000,
            ttl_time: created + 14 * 86_400_000,
            signature: "c2lnLWE=".into(),
            peer_signature: "c2lnLWI=".into(),
            handover_attempts: 0,
            next_attempt_at: 0,
            revoked_at: None,
        };
        let entry = keyferry::audit::AuditEvent::new(
            keyferry::audit::EventKind::KeyReceived,
            "test",
            serde_json::json!({}),
        )
        .outbox(0);
        state
            .store
            .insert_received_key(&record, &splits, &entry)
            .await
            .expect("insert key");
    }

    /// Onboards ad tech `id` for `use_cases` straight into the store, with
    /// the identity mapping (`m-<id>`) of the workload that
    /// [`Broker::credential`] names, so its credentials stay live.
    pub async fn insert_adtech(&self, id: &str, use_cases: &[&str]) {
        self.insert_adtech_only(id, use_cases).await;
        self.state
            .store
            .insert_mapping(
                &keyferry::storage::MappingRecord {
                    id: format!("m-{id}"),
                    adtech: id.into(),
                    cloud: "oidc".into(),
                    issuer: CREDENTIAL_SOURCE.0.into(),
                    subject: CREDENTIAL_SOURCE.1.into(),
                    conditions: serde_json::json!([]),
                    scopes: vec!["keys:read".into(), "keys:release".into()],
                    enabled: true,
                    created_at: self.state.now_ms(),
                },
                self.state.now_ms(),
                |_| Ok(()),
                &self.setup_entry(keyferry::audit::EventKind::MappingAdded, id),
            )
            .await
            .expect("mapping");
    }

    /// The audit entry of a change the harness makes straight in the store,
    /// as the admin API would audit it (actor `test-harness`).
    fn setup_entry(
        &self,
        kind: keyferry::audit::EventKind,
        id: &str,
    ) -> keyferry::storage::OutboxEntry {
        keyferry::audit::AuditEvent::new(kind, "test-harness", serde_json::json!({ "id": id }))
            .outbox(self.state.now_ms())
    }

    /// Onboards ad tech `id` without any identity mapping.
    pub async fn insert_adtech_only(&self, id: &str, use_cases: &[&str]) {
        let now = self.state.now_ms();
        self.state
            .store
            .insert_adtech(
                &keyferry::storage::AdTech {
                    id: id.into(),
                    name: id.into(),
                    sites: vec![],
                    use_cases: use_cases.iter().map(|u| (*u).to_owned()).collect(),
                    enabled: true,
                    created_at: now,
                    updated_at: now,
                },
                &self.setup_entry(keyferry::audit::EventKind::AdtechCreated, id),
            )
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
                    src_iss: CREDENTIAL_SOURCE.0.into(),
                    src_sub: CREDENTIAL_SOURCE.1.into(),
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

    /// Moves every committed audit entry into the log, then checks the
    /// whole log as an auditor would (every leaf, the tree head and its
    /// signature) and that its indexes run 0.. without a gap. Returns its
    /// size.
    pub async fn assert_log_verifies(&self) -> u64 {
        self.state
            .audit
            .flush()
            .await
            .expect("flush the audit outbox");
        assert_eq!(self.state.store.outbox_len().await.expect("outbox"), 0);
        let sth = self.state.audit_log.sth().await.expect("sth");
        let size = sth.tree_size;
        assert_log_verifies(&self.state.store, sth).await;
        size
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

/// Checks the log in `store` up to `sth` as an auditor would (every leaf,
/// the tree head and its signature) and that its indexes run 0.. without a
/// gap; returns its entries.
pub async fn assert_log_verifies(
    store: &keyferry::storage::Store,
    sth: keyferry::audit::SignedTreeHead,
) -> Vec<keyferry::storage::StoredEntry> {
    let size = i64::try_from(sth.tree_size).expect("size");
    let entries = store.audit_entries(0, size).await.expect("entries");
    let indexes: Vec<i64> = entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, (0..size).collect::<Vec<_>>(), "one order, no gap");
    let export = keyferry::audit::verify::Export {
        sth,
        entries: entries
            .iter()
            .map(|e| keyferry::audit::verify::ExportedEntry {
                index: e.index as u64,
                entry: e.entry.clone(),
                leaf_hash: e
                    .leaf_hash
                    .as_ref()
                    .map(|h| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, h)),
            })
            .collect(),
    };
    if let Err(e) = keyferry::audit::verify::verify(&export, None) {
        panic!("the log does not verify: {e}");
    }
    entries
}
