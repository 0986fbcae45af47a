//! Test double of the documented Azure Key Vault keys REST API and the Entra ID token endpoint — not Microsoft's service.
//!
//! Azure Key Vault has no installable emulator (DESIGN §9), so this double
//! speaks the wire protocol that `azure_security_keyvault_keys` and
//! `azure_identity` use, over TLS (the client refuses bearer tokens over
//! plain http):
//! - `GET /keys/{name}[/{version}]`: the key bundle (`kid`, RSA `n`/`e`).
//! - `POST /keys/{name}/{version}/wrapkey` and `/unwrapkey`:
//!   `{"alg":"RSA-OAEP-256","value":<base64url>}` → `{"kid","value"}`, with a
//!   real RSA-2048 key per key version, so ciphertexts look and fail like
//!   real ones (a flipped bit is a 400).
//! - Every vault request needs a bearer token the double knows; without one it
//!   answers 401 with Key Vault's challenge
//!   (`WWW-Authenticate: Bearer authorization="…", resource="https://vault.azure.net"`).
//! - `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant with a
//!   JWT client assertion, verified against a configured JWKS, issuer,
//!   subject and audience ([`EntraTrust`]), as Entra ID does for a federated
//!   identity credential. It mints an access token the vault then accepts.
//!
//! Knobs: [`AzureDouble::fail_next`] (the next N authenticated vault requests
//! answer 429/503/…), [`AzureDouble::fail_always`] (e.g. a permanent 403),
//! and [`AzureDouble::stats`] counts every kind of request.
//!
//! # Starting and trusting it
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use cloud_adapters::azure::test_double::AzureDouble;
//! let double = AzureDouble::start().await?;
//! let version = double.create_key("splits");
//! let token = double.issue_static_token();
//! // KEK URI: azure-kv://{double.vault_host()}/keys/splits/{version}
//! // AzureSettings { ca_certificate_pem: Some(double.ca_certificate_pem()), .. }
//! # Ok(()) }
//! ```
//! The server certificate (for `127.0.0.1` and `localhost`) is signed by a CA
//! generated per double; nothing outside the test trusts it.

mod entra;
mod tls;
mod vault;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
use axum::Router;
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use jsonwebtoken::jwk::JwkSet;

/// The resource Key Vault names in its challenge; tokens are for its `/.default` scope.
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";

/// What Entra ID trusts for the client-assertion grant: the app registration
/// and its federated identity credential (issuer, subject, audience), plus
/// the issuer's published keys.
#[derive(Clone, Debug)]
pub struct EntraTrust {
    /// The tenant in the token endpoint's path.
    pub tenant_id: String,
    /// The app registration's client id (`client_id` form field).
    pub client_id: String,
    /// The assertion's required `iss`.
    pub issuer: String,
    /// The assertion's required `sub`.
    pub subject: String,
    /// The assertion's required `aud` (Entra: `api://AzureADTokenExchange`).
    pub audience: String,
    /// The issuer's JWKS (`{"keys":[…]}`), as its `jwks_uri` would serve it.
    pub jwks: serde_json::Value,
}

/// Request counts since start, for tests that assert how often something
/// was (not) called.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DoubleStats {
    /// Calls to the token endpoint, successful or not.
    pub token_requests: u64,
    /// Access tokens the token endpoint issued.
    pub tokens_issued: u64,
    /// Vault requests without a bearer token (answered with the challenge).
    pub challenges: u64,
    /// Vault requests with a bearer token the double does not know.
    pub rejected_tokens: u64,
    /// Authenticated `GET /keys/…` requests, faults included.
    pub get_key_requests: u64,
    /// Authenticated wrapkey requests, faults included.
    pub wrap_requests: u64,
    /// Authenticated unwrapkey requests, faults included.
    pub unwrap_requests: u64,
}

#[derive(Default)]
struct Counters {
    token_requests: AtomicU64,
    tokens_issued: AtomicU64,
    challenges: AtomicU64,
    rejected_tokens: AtomicU64,
    get_key_requests: AtomicU64,
    wrap_requests: AtomicU64,
    unwrap_requests: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One version of a vault key: the private key and its public numbers.
struct KeyVersion {
    private: PrivateDecryptingKey,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// One vault key: every version ever created, and which one is current.
struct VaultKey {
    versions: HashMap<String, Arc<KeyVersion>>,
    current: String,
}

#[derive(Default)]
struct Faults {
    next_count: u32,
    next_status: u16,
    always: Option<u16>,
}

struct Federation {
    trust: EntraTrust,
    jwks: JwkSet,
}

/// Shared by the handlers; the std mutexes are never held across an await.
struct State {
    vault_host: String,
    authority_host: String,
    keys: Mutex<HashMap<String, VaultKey>>,
    tokens: Mutex<HashSet<String>>,
    federation: Mutex<Option<Federation>>,
    faults: Mutex<Faults>,
    /// `expires_in` of issued access tokens, seconds.
    token_lifetime: AtomicU64,
    /// Tokens the token endpoint issued, for tests that look for leaks.
    issued: Mutex<Vec<String>>,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not take the whole double down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("system RNG");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl State {
    fn is_known_token(&self, token: &str) -> bool {
        lock(&self.tokens).contains(token)
    }

    /// The fault the next authenticated vault request gets, if any.
    fn take_fault(&self) -> Option<u16> {
        let mut f = lock(&self.faults);
        if let Some(status) = f.always {
            return Some(status);
        }
        if f.next_count > 0 {
            f.next_count -= 1;
            return Some(f.next_status);
        }
        None
    }
}

/// A running double on `127.0.0.1:<random port>`; stopped when dropped.
pub struct AzureDouble {
    state: Arc<State>,
    addr: SocketAddr,
    ca_pem: String,
    handle: Handle,
}

impl fmt::Debug for AzureDouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureDouble")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl AzureDouble {
    /// Generates a CA and a server certificate, binds `127.0.0.1:0` and
    /// serves until [`AzureDouble::stop`] or drop. Needs a tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let (ca_pem, server_config) = tls::generate()?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            vault_host: addr.to_string(),
            authority_host: format!("https://{addr}"),
            keys: Mutex::default(),
            tokens: Mutex::default(),
            federation: Mutex::default(),
            faults: Mutex::default(),
            token_lifetime: AtomicU64::new(3599),
            issued: Mutex::default(),
            counters: Counters::default(),
        });
        let app = router(state.clone());
        let handle = Handle::new();
        let server =
            axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(server_config))
                .handle(handle.clone());
        tokio::spawn(async move {
            if let Err(e) = server.serve(app.into_make_service()).await {
                tracing::warn!(error = %e, "azure test double stopped");
            }
        });
        Ok(AzureDouble {
            state,
            addr,
            ca_pem,
            handle,
        })
    }

    /// `127.0.0.1:<port>`: the host part of an `azure-kv://` URI.
    pub fn vault_host(&self) -> &str {
        &self.state.vault_host
    }

    /// `https://127.0.0.1:<port>`: the Entra authority host to configure.
    pub fn authority_host(&self) -> &str {
        &self.state.authority_host
    }

    /// The CA that signed the server certificate, PEM; trust only this.
    pub fn ca_certificate_pem(&self) -> Vec<u8> {
        self.ca_pem.as_bytes().to_vec()
    }

    /// Creates key `name` (or a new version of it, which becomes current)
    /// with a fresh RSA-2048 key pair; returns the version.
    pub fn create_key(&self, name: &str) -> String {
        let private =
            PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("RSA-2048 key generation");
        // The public numbers for `GET /keys/…`: aws-lc-rs exposes them on the
        // signing key type, so the PKCS#8 encoding is reparsed once.
        let pkcs8 = private.as_der().expect("PKCS#8 encoding");
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8.as_ref()).expect("PKCS#8 parse");
        let public = aws_lc_rs::signature::KeyPair::public_key(&pair);
        let key = KeyVersion {
            n: public.modulus().big_endian_without_leading_zero().to_vec(),
            e: public.exponent().big_endian_without_leading_zero().to_vec(),
            private,
        };
        let version = random_hex(16);
        let mut keys = lock(&self.state.keys);
        let entry = keys.entry(name.to_owned()).or_insert_with(|| VaultKey {
            versions: HashMap::new(),
            current: version.clone(),
        });
        entry.versions.insert(version.clone(), Arc::new(key));
        entry.current = version.clone();
        version
    }

    /// Makes the vault accept `token` as a bearer token (the static,
    /// dev-only credential).
    pub fn accept_token(&self, token: &str) {
        lock(&self.state.tokens).insert(token.to_owned());
    }

    /// A fresh random token the vault accepts.
    pub fn issue_static_token(&self) -> String {
        let token = random_hex(32);
        self.accept_token(&token);
        token
    }

    /// Configures the token endpoint's trust (replacing any earlier one).
    /// Fails when `trust.jwks` is not a JWKS.
    pub fn trust_federation(&self, trust: EntraTrust) -> Result<(), serde_json::Error> {
        let jwks: JwkSet = serde_json::from_value(trust.jwks.clone())?;
        *lock(&self.state.federation) = Some(Federation { trust, jwks });
        Ok(())
    }

    /// The `expires_in` of access tokens issued from now on (default 3599 s).
    /// Under five minutes, clients treat each token as due for refresh.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.state.token_lifetime.store(seconds, Ordering::Relaxed);
    }

    /// Every access token the token endpoint issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// The next `count` authenticated vault requests answer `status`
    /// (429 and 503 carry no `Retry-After`, so clients use their own backoff).
    pub fn fail_next(&self, count: u32, status: u16) {
        let mut f = lock(&self.state.faults);
        f.next_count = count;
        f.next_status = status;
    }

    /// Every authenticated vault request answers `status` until cleared with `None`.
    pub fn fail_always(&self, status: Option<u16>) {
        lock(&self.state.faults).always = status;
    }

    /// Request counts so far.
    pub fn stats(&self) -> DoubleStats {
        let c = &self.state.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DoubleStats {
            token_requests: get(&c.token_requests),
            tokens_issued: get(&c.tokens_issued),
            challenges: get(&c.challenges),
            rejected_tokens: get(&c.rejected_tokens),
            get_key_requests: get(&c.get_key_requests),
            wrap_requests: get(&c.wrap_requests),
            unwrap_requests: get(&c.unwrap_requests),
        }
    }

    /// Stops serving and drops open connections: clients see the double down.
    pub fn stop(&self) {
        self.handle.shutdown();
    }
}

impl Drop for AzureDouble {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/keys/{name}", get(vault::get_current_key))
        .route("/keys/{name}/", get(vault::get_current_key))
        .route("/keys/{name}/{version}", get(vault::get_key_version))
        .route("/keys/{name}/{version}/wrapkey", post(vault::wrap_key))
        .route("/keys/{name}/{version}/unwrapkey", post(vault::unwrap_key))
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token))
        .with_state(state)
}
