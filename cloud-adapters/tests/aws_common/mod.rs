//! Shared test fixtures: a moto server per test, a counting identity token
//! source, and helpers that build wrappers against them.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cloud_adapters::aws::{AwsCredentials, AwsSettings};
use cloud_adapters::{IdentityTokenSource, KekUri, WrapError};
use zeroize::Zeroizing;

pub const REGION: &str = "eu-west-3";
/// The account moto puts resources in for unknown (dummy) access keys.
pub const MOTO_ACCOUNT: &str = "123456789012";

/// The venv holding `moto_server` and `boto3`: the first of
/// `<crate>/../.venv`, `$KEYFERRY_VENV`, `<crate>/.venv` that has one.
pub fn venv() -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        Some(manifest.join("../.venv")),
        std::env::var_os("KEYFERRY_VENV").map(PathBuf::from),
        Some(manifest.join(".venv")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|v| v.join("bin/moto_server").is_file())
}

/// A moto server on a free loopback port, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub venv: PathBuf,
}

impl Moto {
    /// Starts moto, or returns `None` after printing why the test is
    /// skipped. Under `CI=true` a missing moto fails the test instead.
    pub fn start() -> Option<Moto> {
        let Some(venv) = venv() else {
            let why = "moto_server not found in ../.venv, $KEYFERRY_VENV or ./.venv \
                       (python3 -m venv .venv && .venv/bin/pip install 'moto[server]' boto3)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and {why}");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        };
        let port = free_port();
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            venv,
        };
        wait_until_answers(port, Duration::from_secs(20));
        Some(moto)
    }

    /// Static dummy credentials, which moto maps to [`MOTO_ACCOUNT`].
    pub fn static_settings(&self) -> AwsSettings {
        let mut s = AwsSettings::new(dummy_credentials());
        s.endpoint = Some(self.endpoint.clone());
        s
    }

    /// Federated credentials for `role_arn`, with STS and KMS both at moto.
    pub fn web_identity_settings(
        &self,
        role_arn: &str,
        identity: Arc<CountingTokenSource>,
    ) -> AwsSettings {
        let mut s = AwsSettings::new(AwsCredentials::WebIdentity {
            role_arn: role_arn.into(),
            session_name: "keyferry-test".into(),
            sts_endpoint: Some(self.endpoint.clone()),
            identity,
            audience: "sts.amazonaws.com".into(),
        });
        s.endpoint = Some(self.endpoint.clone());
        s
    }

    /// A KMS client with the given credentials, for set-up only.
    pub fn kms_client(&self, creds: aws_credential_types::Credentials) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// Creates a symmetric key in moto's default account; returns its URI.
    pub async fn create_key(&self) -> KekUri {
        self.create_key_with(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .await
    }

    /// Creates a symmetric key in the account `creds` belong to.
    pub async fn create_key_with(&self, creds: aws_credential_types::Credentials) -> KekUri {
        let out = self
            .kms_client(creds)
            .create_key()
            .description("keyferry test KEK")
            .send()
            .await
            .expect("moto CreateKey");
        let arn = out.key_metadata().expect("metadata").arn().expect("arn");
        format!("aws-kms://{arn}").parse().expect("moto ARN parses")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn dummy_credentials() -> AwsCredentials {
    AwsCredentials::Static {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    }
}

/// Settings that fail fast, for fault tests: short backoff and timeout.
pub fn fast_settings(endpoint: &str) -> AwsSettings {
    let mut s = AwsSettings::new(dummy_credentials());
    s.endpoint = Some(endpoint.to_owned());
    s.initial_backoff = Duration::from_millis(20);
    s.timeout = Duration::from_secs(2);
    s
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Polls with a plain HTTP request until moto answers.
fn wait_until_answers(port: u16, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 12];
            if s.write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n").is_ok()
                && s.read_exact(&mut buf).is_ok()
                && buf.starts_with(b"HTTP/1.")
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moto_server did not answer on port {port} within {limit:?}");
}

/// A stand-in for the broker's issuer: a fixed JWT-shaped token (moto does
/// not verify it), counting how many were minted.
#[derive(Debug, Default)]
pub struct CountingTokenSource {
    minted: AtomicU64,
}

/// What [`CountingTokenSource`] mints; tests check it never leaks.
pub const TEST_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.\
eyJpc3MiOiJodHRwczovL2Jyb2tlci5leGFtcGxlIiwic3ViIjoiY29vcmRpbmF0b3I6YSJ9.c2lnbmF0dXJl";

impl CountingTokenSource {
    pub fn minted(&self) -> u64 {
        self.minted.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl IdentityTokenSource for CountingTokenSource {
    async fn identity_token(&self, audience: &str) -> Result<Zeroizing<String>, WrapError> {
        assert_eq!(audience, "sts.amazonaws.com");
        self.minted.fetch_add(1, Ordering::SeqCst);
        Ok(Zeroizing::new(TEST_TOKEN.to_owned()))
    }
}
