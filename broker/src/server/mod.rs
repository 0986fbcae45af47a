//! Starting and stopping a broker: open storage and the storage KEK, bind,
//! serve (plain or TLS) until SIGTERM/SIGINT, then drain in-flight requests.
//! `connections`: the connection limit and the header-read timeout.

use std::net::SocketAddr;
use std::sync::Arc;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use cloud_adapters::{KekUri, WrapperContext, open_wrapper};

use crate::audit::TransparencyLog;
use crate::config::Config;
use crate::federation::Federation;
use crate::http::{Metrics, app};
use crate::issuer::Issuer;
use crate::lifecycle::KeyService;
use crate::operator::AdminAuth;
use crate::state::AppState;
use crate::storage::Store;
use connections::ConnectionLimit;
use idp::RotationPolicy;

mod connections;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Attestation trust anchors or release policies are unusable.
    #[error("attestation: {0}")]
    Release(#[from] crate::distribution::ReleaseSetupError),
    /// The storage KEK cannot be opened.
    #[error("storage KEK: {0}")]
    StorageKek(#[from] cloud_adapters::WrapError),
    /// The database cannot be opened or migrated.
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StoreError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be loaded.
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    /// The issuer's signing keys cannot be loaded.
    #[error("{0}")]
    Issuer(#[from] crate::issuer::IssuerError),
    /// The trusted issuers cannot be loaded.
    #[error("federation: {0}")]
    Federation(#[from] crate::federation::FederationError),
    /// The audit log cannot be opened.
    #[error("audit log: {0}")]
    AuditLog(#[from] crate::audit::log::LogError),
    /// Operator authentication cannot be set up.
    #[error("admin: {0}")]
    AdminAuth(#[from] crate::operator::AdminAuthError),
    /// A workload cloud's KEK cannot be opened.
    #[error("clouds.{0}.kek: {1}")]
    CloudKek(&'static str, cloud_adapters::WrapError),
    /// The key lifecycle cannot start.
    #[error("keys: {0}")]
    Lifecycle(#[from] crate::lifecycle::LifecycleError),
    /// The witness of the peer's log cannot start.
    #[error("witness: {0}")]
    Witness(crate::audit::witness::WitnessError),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// Installs the process's one rustls crypto provider (aws-lc-rs). Both ring
/// and aws-lc-rs end up compiled in through dependencies, and rustls refuses
/// to guess; call this before any TLS configuration is built.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Builds the shared state: storage KEK, database, metrics.
pub async fn build_state(config: Config) -> Result<AppState, StartError> {
    let kek_uri: KekUri = config.coordinator.storage_kek.parse()?;
    let ctx = WrapperContext {
        local_kek_dir: config.local_kek_dir(),
        allow_local: config.is_dev(),
        endpoint: config
            .coordinator
            .storage_kek_endpoint
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned()),
    };
    let storage_kek = open_wrapper(&kek_uri, &ctx).await?;
    let store = Store::connect(
        &config.storage_url(),
        config.storage.max_connections.unwrap_or(10),
    )
    .await?;
    build_state_with(config, store, storage_kek, Arc::new(idp::SystemClock)).await
}

/// Builds the shared state around an opened store and KEK and a clock
/// (tests pass a `ManualClock`).
pub async fn build_state_with(
    config: Config,
    store: Store,
    storage_kek: Arc<dyn cloud_adapters::KeyWrapper>,
    clock: Arc<dyn idp::Clock>,
) -> Result<AppState, StartError> {
    let metrics = Arc::new(Metrics::new());
    let storage_kek = crate::kek::MeteredKek::wrap("storage", storage_kek, metrics.kms());
    let issuer = Issuer::open(
        config.public_url(),
        store.clone(),
        storage_kek.clone(),
        clock.clone(),
        RotationPolicy::default(),
    )
    .await?;
    let federation = Federation::open(&config, &store, clock.clone()).await?;
    let admin_auth = AdminAuth::open(&config, &store, clock.clone()).await?;
    let audit_log =
        TransparencyLog::open(store.clone(), storage_kek.clone(), clock.clone()).await?;
    let audit: Arc<dyn crate::audit::Audit> = audit_log.clone();
    let identity =
        crate::kek::IssuerIdentity::new(issuer.clone(), clock.clone(), &config.coordinator.name);
    let ctx = WrapperContext {
        local_kek_dir: config.local_kek_dir(),
        allow_local: config.is_dev(),
        endpoint: None,
    };
    let mut cloud_keks = Vec::new();
    for (name, cloud) in config.clouds.enabled() {
        let label = name.as_str();
        let kek = crate::kek::open_cloud_kek(label, cloud, &ctx, identity.clone())
            .await
            .map_err(|e| StartError::CloudKek(label, e))?;
        cloud_keks.push((
            name,
            crate::kek::MeteredKek::wrap(label, kek, metrics.kms()),
        ));
    }
    let keys = KeyService::open(
        &config,
        store.clone(),
        storage_kek.clone(),
        cloud_keks.clone(),
        clock.clone(),
        audit.clone(),
        issuer.clone(),
    )
    .await?;
    let governance = Arc::new(
        crate::governance::Governance::open(
            &config.coordinator.name,
            &config.governance,
            &store,
            crate::time::unix_ms(clock.now()),
        )
        .await?,
    );
    let distribution = Arc::new(crate::distribution::Distribution::new(
        &config,
        crate::distribution::DistributionParts {
            store: store.clone(),
            clock: clock.clone(),
            audit: audit.clone(),
            metrics: metrics.clone(),
            storage_kek: storage_kek.clone(),
            cloud_keks: cloud_keks.clone(),
        },
    )?);
    // The peer's log: the Type-2's base URL for a Type-1, the Type-1's
    // issuer (its base URL) for a Type-2.
    let peer = match config.coordinator.role {
        crate::config::Role::Type1 => config
            .coordinator
            .peer_url
            .clone()
            .filter(|u| u != "embedded"),
        crate::config::Role::Type2 => config
            .coordinator
            .peer_issuer
            .as_ref()
            .map(|u| u.to_string()),
    };
    let witness = match peer {
        Some(peer) => Some(Arc::new(
            crate::audit::witness::Witness::new(
                audit_log.clone(),
                store.clone(),
                clock.clone(),
                &peer,
                &config.public_url(),
                config.audit.witness_interval,
                config.coordinator.peer_timeout,
            )
            .map_err(StartError::Witness)?,
        )),
        None => None,
    };
    let kek_probes = Arc::new(crate::http::KekProbes::new(
        storage_kek.clone(),
        cloud_keks.clone(),
        config.server.readiness_kek_interval,
    ));
    Ok(AppState {
        distribution,
        kek_probes,
        governance,
        config: Arc::new(config),
        audit,
        audit_log,
        witness,
        keys,
        store,
        storage_kek,
        metrics,
        clock,
        issuer,
        federation,
        admin_auth,
        cloud_keks,
    })
}

/// A broker bound to its address and ready to serve.
pub struct Server {
    listener: std::net::TcpListener,
    /// `server.metrics_listen`, bound at start like the main listener.
    metrics_listener: Option<std::net::TcpListener>,
    state: AppState,
    handle: Handle,
    /// The dev profile's in-process Type-2 (`peer_url = "embedded"`).
    embedded_peer: Option<Box<Server>>,
}

/// The configuration of the embedded Type-2: its own data directory, SQLite
/// file and KEKs under `<data-dir>/peer`, trusting the Type-1's issuer.
fn embedded_peer_config(type1: &Config) -> Config {
    let mut peer = Config::dev_default();
    peer.data_dir = type1.data_dir.join("peer");
    peer.server.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    peer.coordinator.name = format!("{}-peer", type1.coordinator.name);
    peer.coordinator.role = crate::config::Role::Type2;
    peer.coordinator.peer_url = None;
    peer.coordinator.peer_issuer = type1.public_url().parse().ok();
    peer.admin.bootstrap_token = Some(false);
    peer.use_cases = type1.use_cases.clone();
    peer.keys = type1.keys.clone();
    peer.clouds = type1.clouds.clone();
    peer
}

impl Server {
    /// Opens everything and binds `config.server.listen` (port 0 picks one).
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let addr = config.server.listen;
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| StartError::Bind { addr, source })?;
        Self::on_listener(config, listener).await
    }

    /// Opens everything and serves on an already bound `listener`: for two
    /// coordinators that must know each other's URL before either starts.
    pub async fn on_listener(
        mut config: Config,
        listener: std::net::TcpListener,
    ) -> Result<Server, StartError> {
        install_crypto_provider();
        let addr = config.server.listen;
        listener
            .set_nonblocking(true)
            .map_err(|source| StartError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        if config.server.public_url.is_none() {
            // With port 0 the issuer URL must name the port actually bound.
            let scheme = if config.server.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            config.server.public_url = format!("{scheme}://{bound}").parse().ok();
        }
        let mut embedded_peer = None;
        if config.is_dev()
            && config.coordinator.role == crate::config::Role::Type1
            && config.coordinator.peer_url.as_deref() == Some("embedded")
        {
            let mut peer_config = embedded_peer_config(&config);
            // The embedded Type-2 trusts the simulated key generator's root.
            let root = crate::lifecycle::ensure_simulated_key_generator(&config)
                .await
                .map_err(StartError::Lifecycle)?;
            peer_config.attestation.extra_roots.extend(root);
            let peer = Box::pin(Server::bind(peer_config)).await?;
            config.coordinator.peer_url = Some(peer.state.config.public_url());
            embedded_peer = Some(Box::new(peer));
        }
        let metrics_listener = match config.server.metrics_listen {
            Some(addr) if config.server.metrics == crate::config::MetricsAccess::Listener => {
                let bind = |source| StartError::Bind { addr, source };
                let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
                listener.set_nonblocking(true).map_err(bind)?;
                Some(listener)
            }
            _ => None,
        };
        let state = build_state(config).await?;
        Ok(Server {
            listener,
            metrics_listener,
            state,
            handle: Handle::new(),
            embedded_peer,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has an address.
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.server.listen)
    }

    /// The metrics listener's address, with `server.metrics = "listener"`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The shared state, for tests that inspect the store.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that shuts the server down gracefully when told to.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The embedded Type-2, if any.
    pub fn embedded_peer(&self) -> Option<&Server> {
        self.embedded_peer.as_deref()
    }

    /// Serves, and runs the key lifecycle, until the handle is told to shut
    /// down; an embedded peer runs and stops with it.
    // Boxed because a server may run another (its embedded peer).
    pub fn run(
        mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StartError>> + Send>> {
        Box::pin(async move {
            let peer = self.embedded_peer.take().map(|peer| {
                let handle = peer.handle();
                (handle, tokio::spawn(peer.run()))
            });
            let lifecycle = self.state.keys.spawn();
            let heads = self.state.audit_log.spawn_head_signer();
            let witnessing = self.state.witness.as_ref().map(|w| w.spawn());
            let metrics = self.metrics_listener.take().map(|listener| {
                let app = crate::http::metrics_app(self.state.metrics.clone());
                tokio::spawn(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            if let Err(e) = axum::serve(listener, app).await {
                                tracing::error!(error = %e, "the metrics listener stopped");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "cannot serve metrics"),
                    }
                })
            });
            let housekeeping = self
                .state
                .federation
                .spawn_housekeeping(self.state.audit.clone(), self.state.clock.clone());
            let challenge_limits = self.state.distribution.spawn_housekeeping();
            let result = self.serve_http().await;
            // Wait for the aborted tasks to be gone, not only told: until
            // then one may still hold a database connection mid-statement,
            // and whoever runs after `run` (a restart, a backup of the data
            // directory) would race it.
            let mut background = vec![lifecycle, heads, housekeeping, challenge_limits];
            background.extend(witnessing);
            background.extend(metrics);
            for task in &background {
                task.abort();
            }
            for task in background {
                let _ = task.await;
            }
            if let Some((handle, task)) = peer {
                handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
                let _ = task.await;
            }
            result
        })
    }

    async fn serve_http(self) -> Result<(), StartError> {
        let server = &self.state.config.server;
        let tls = match (&server.tls_cert, &server.tls_key) {
            (Some(cert), Some(key)) => Some(
                RustlsConfig::from_pem_file(cert, key)
                    .await
                    .map_err(StartError::Tls)?,
            ),
            _ => None,
        };
        let service = app(self.state.clone()).into_make_service();
        let (max, header_read_timeout) = (server.max_connections, server.header_read_timeout);
        let metrics = self.state.metrics.connections();
        match tls {
            Some(tls) => {
                // The limit runs before the TLS handshake: a refused
                // connection costs no handshake.
                let tls = axum_server::tls_rustls::RustlsAcceptor::new(tls);
                let limit = ConnectionLimit::new(tls, max, header_read_timeout, metrics);
                let mut server = axum_server::from_tcp(self.listener).acceptor(limit);
                connections::configure(server.http_builder(), header_read_timeout);
                server
                    .handle(self.handle)
                    .serve(service)
                    .await
                    .map_err(StartError::Serve)
            }
            None => {
                let plain = axum_server::accept::DefaultAcceptor;
                let limit = ConnectionLimit::new(plain, max, header_read_timeout, metrics);
                let mut server = axum_server::from_tcp(self.listener).acceptor(limit);
                connections::configure(server.http_builder(), header_read_timeout);
                server
                    .handle(self.handle)
                    .serve(service)
                    .await
                    .map_err(StartError::Serve)
            }
        }
    }
}

/// `keyferry serve`: runs until SIGTERM or SIGINT, then stops accepting and
/// gives in-flight requests `server.shutdown_grace` to finish.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let grace = config.server.shutdown_grace;
    let server = Server::bind(config).await?;
    let addr = server.local_addr();
    let scheme = if server.state.config.server.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let profile = if server.state.config.is_dev() {
        "dev"
    } else {
        "production"
    };
    println!(
        "keyferry listening on {scheme}://{addr} (profile {profile}, storage {:?})",
        server.state.store.backend()
    );
    tracing::info!(%addr, profile, "listening");
    let handle = server.handle();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; draining requests");
        handle.graceful_shutdown(Some(grace));
    });
    let store = server.state.store.clone();
    let rotation = server
        .state
        .issuer
        .spawn_rotation(std::time::Duration::from_secs(60));
    let result = server.run().await;
    rotation.abort();
    store.close().await;
    tracing::info!("stopped");
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
