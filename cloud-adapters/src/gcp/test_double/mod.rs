//! Test double of the documented Cloud KMS REST API (and GCP STS / IAM Credentials) — not Google's service.
//!
//! Google ships no Cloud KMS emulator (DESIGN §9), so this axum server speaks
//! the documented REST wire format closely enough for the official
//! `google-cloud-kms-v1` client, and for our federation code, to be
//! exercised end to end on loopback:
//! - `POST /v1/projects/*/locations/*/keyRings/*/cryptoKeys/*:encrypt` and
//!   `:decrypt` (`kms`): AES-256-GCM under a random per-key key held in
//!   memory; the ciphertext is this double's own opaque format.
//! - `POST /v1/token` (`sts`): GCP STS token exchange, RFC 8693 form.
//! - `POST /v1/projects/-/serviceAccounts/*:generateAccessToken` (`sts`):
//!   IAM Credentials impersonation.
//!
//! It serves plain http on 127.0.0.1: the SDK accepts an `http://` endpoint
//! and sends the bearer token over it, and the wrapper allows http only for
//! loopback. (Were TLS ever needed: the SDK takes no custom reqwest client,
//! so one would serve TLS with an rcgen CA and point `SSL_CERT_FILE` at the
//! CA's PEM before the first client is built.)
//!
//! What it checks: bearer tokens (401 without a known one), per-key grants
//! (403), unknown keys (404), the AAD given to decrypt (400), STS form fields
//! and audience, and that impersonation presents an STS-issued token. What
//! it does not: IAM conditions, key versions and rotation, CRC32C fields,
//! quotas. Comparisons are not constant-time; this is a test double.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use cloud_adapters::gcp::test_double::{Fault, KmsDouble};
//! let double = KmsDouble::start().await?;
//! double.create_key("projects/p/locations/global/keyRings/r/cryptoKeys/k");
//! double.issue_token("dev-token", "user:dev@example.com");
//! double.grant("projects/p/locations/global/keyRings/r/cryptoKeys/k", "user:dev@example.com");
//! double.fail_next(2, Fault::TooManyRequests);
//! // GcpSettings { endpoint: Some(double.endpoint()), .. }
//! # Ok(()) }
//! ```

mod kms;
mod sts;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aes_gcm::{Aes256Gcm, KeyInit};
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum_server::Handle;
use tokio::task::JoinHandle;

/// A fault the double injects ([`KmsDouble::fail_next`] for Cloud KMS,
/// [`KmsDouble::fail_next_sts`] for STS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `RESOURCE_EXHAUSTED`, Cloud KMS's quota answer.
    TooManyRequests,
    /// 503 `UNAVAILABLE`.
    Unavailable,
    /// 500 `INTERNAL`.
    Internal,
}

/// What the STS and IAM Credentials doubles accept.
#[derive(Clone, Debug)]
pub struct FederationSetup {
    /// The only `audience` STS accepts (the pool provider name).
    pub audience: String,
    /// The subject token STS accepts (the broker's JWT in a test); `None`
    /// accepts any compact JWS-shaped token.
    pub subject_token: Option<String>,
    /// The only service account `generateAccessToken` impersonates; its
    /// tokens act as principal `serviceAccount:<email>`.
    pub service_account: String,
    /// Lifetime of the service-account tokens it issues (default 1 h).
    pub token_lifetime: Duration,
}

impl FederationSetup {
    /// Accepts `subject_token` for `audience`, impersonates `service_account`.
    pub fn new(
        audience: impl Into<String>,
        subject_token: impl Into<String>,
        service_account: impl Into<String>,
    ) -> Self {
        Self {
            audience: audience.into(),
            subject_token: Some(subject_token.into()),
            service_account: service_account.into(),
            token_lifetime: Duration::from_secs(3600),
        }
    }
}

/// A running double on `127.0.0.1:<random port>`; stops when dropped.
pub struct KmsDouble {
    addr: SocketAddr,
    state: Arc<DoubleState>,
    /// Shuts the server down with its open connections: a keep-alive
    /// connection a client holds must not outlive [`KmsDouble::shutdown`].
    handle: Handle,
    task: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct DoubleState {
    keys: Mutex<HashMap<String, Key>>,
    /// Access token → principal, for Cloud KMS.
    tokens: Mutex<HashMap<String, String>>,
    federation: Mutex<Option<FederationSetup>>,
    /// Federated tokens STS issued, accepted by IAM Credentials only.
    sts_tokens: Mutex<HashSet<String>>,
    faults: Mutex<Faults>,
    kms_requests: AtomicU64,
    sts_calls: AtomicU64,
    iam_calls: AtomicU64,
}

struct Key {
    aead: Aes256Gcm,
    principals: HashSet<String>,
}

#[derive(Default)]
struct Faults {
    fail_next: u32,
    fault: Option<Fault>,
    fail_next_sts: u32,
    sts_fault: Option<Fault>,
    always_forbidden: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another handler must not cascade into every later request.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl KmsDouble {
    /// Binds 127.0.0.1:0 and serves until dropped or [`KmsDouble::shutdown`].
    pub async fn start() -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(DoubleState::default());
        let app = router(state.clone());
        let handle = Handle::new();
        let server = axum_server::from_tcp(listener).handle(handle.clone());
        let task = tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });
        Ok(Self {
            addr,
            state,
            handle,
            task: Some(task),
        })
    }

    /// Base URL for `GcpSettings::endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The STS token endpoint, for `GcpCredentials::Federated::sts_url`.
    pub fn sts_url(&self) -> String {
        format!("http://{}/v1/token", self.addr)
    }

    /// The IAM Credentials base URL, for `iam_credentials_url`.
    pub fn iam_credentials_url(&self) -> String {
        self.endpoint()
    }

    /// Creates a crypto key (`projects/*/locations/*/keyRings/*/cryptoKeys/*`)
    /// with a fresh random AES-256 key; nobody may use it until [`grant`](Self::grant).
    pub fn create_key(&self, name: &str) {
        let aead = Aes256Gcm::new(&Aes256Gcm::generate_key(aes_gcm::aead::OsRng));
        lock(&self.state.keys).insert(
            name.to_owned(),
            Key {
                aead,
                principals: HashSet::new(),
            },
        );
    }

    /// Lets `principal` encrypt and decrypt with key `name`.
    pub fn grant(&self, name: &str, principal: &str) {
        if let Some(key) = lock(&self.state.keys).get_mut(name) {
            key.principals.insert(principal.to_owned());
        }
    }

    /// Makes `token` a valid Cloud KMS bearer token acting as `principal`.
    pub fn issue_token(&self, token: &str, principal: &str) {
        lock(&self.state.tokens).insert(token.to_owned(), principal.to_owned());
    }

    /// Turns on the STS and IAM Credentials doubles.
    pub fn trust_federation(&self, setup: FederationSetup) {
        *lock(&self.state.federation) = Some(setup);
    }

    /// Fails the next `n` Cloud KMS requests with `fault`, before any check.
    pub fn fail_next(&self, n: u32, fault: Fault) {
        let mut faults = lock(&self.state.faults);
        faults.fail_next = n;
        faults.fault = Some(fault);
    }

    /// Fails the next `n` STS token exchanges with `fault`.
    pub fn fail_next_sts(&self, n: u32, fault: Fault) {
        let mut faults = lock(&self.state.faults);
        faults.fail_next_sts = n;
        faults.sts_fault = Some(fault);
    }

    /// While on, every Cloud KMS request with a valid token gets 403.
    pub fn set_always_forbidden(&self, on: bool) {
        lock(&self.state.faults).always_forbidden = on;
    }

    /// Cloud KMS requests received, failed ones included.
    pub fn kms_requests(&self) -> u64 {
        self.state.kms_requests.load(Ordering::SeqCst)
    }

    /// STS token exchanges received.
    pub fn sts_calls(&self) -> u64 {
        self.state.sts_calls.load(Ordering::SeqCst)
    }

    /// IAM Credentials `generateAccessToken` calls received.
    pub fn iam_calls(&self) -> u64 {
        self.state.iam_calls.load(Ordering::SeqCst)
    }

    /// Stops serving, closes open connections and waits for the server
    /// task to end.
    pub async fn shutdown(mut self) {
        // Not graceful: open connections close too, so a client's pooled
        // keep-alive connection sees the double gone (the server task used
        // to end while connection tasks it had spawned went on serving).
        self.handle.shutdown();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for KmsDouble {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn router(state: Arc<DoubleState>) -> Router {
    Router::new()
        .route(
            "/v1/projects/{project}/locations/{location}/keyRings/{ring}/cryptoKeys/{key_and_verb}",
            post(kms::crypto_key_call),
        )
        .route("/v1/token", post(sts::token_exchange))
        .route(
            "/v1/projects/-/serviceAccounts/{account_and_verb}",
            post(sts::generate_access_token),
        )
        .with_state(state)
}

/// The answer for an injected fault, in Google's error format.
fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::TooManyRequests => google_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'Cryptographic requests'.",
        ),
        Fault::Unavailable => google_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The service is currently unavailable.",
        ),
        Fault::Internal => google_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Internal error encountered.",
        ),
    }
}

/// Google's JSON error body, which the SDK parses into a `Status`.
fn google_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "error": {"code": status.as_u16(), "message": message, "status": code}
    });
    (status, axum::Json(body)).into_response()
}

/// 16 random bytes as hex, for issued tokens.
fn random_token(prefix: &str) -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// The bearer token of a request, if any.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}
