//! Shared fixtures: a test OIDC issuer (ES256, P-256) standing in for the
//! broker's own issuer, and settings that trust a double.

#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloud_adapters::azure::test_double::{AzureDouble, EntraTrust};
use cloud_adapters::azure::{AzureCredentials, AzureKeyVaultWrapper, AzureSettings};
use cloud_adapters::{IdentityTokenSource, KekUri, WrapError};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use zeroize::Zeroizing;

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "6a1c2d3e-0000-4000-8000-000000000001";
pub const ISSUER: &str = "https://keyferry.test";
pub const SUBJECT: &str = "coordinator:type1";
pub const KID: &str = "broker-key-1";

/// Signs identity tokens with its own P-256 key, like the broker's issuer.
pub struct TestIssuer {
    key: EncodingKey,
    jwk: serde_json::Value,
    subject: String,
    pub minted: AtomicU64,
    /// Every token minted, so tests can look for them where they must not be.
    pub tokens: Mutex<Vec<String>>,
}

impl fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestIssuer").finish_non_exhaustive()
    }
}

impl TestIssuer {
    /// A fresh key published under `kid`.
    pub fn new(kid: &str) -> Self {
        Self::with_subject(kid, SUBJECT)
    }

    pub fn with_subject(kid: &str, subject: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256");
        let raw = pair.public_key_raw(); // 0x04 ‖ x ‖ y
        assert_eq!(raw.len(), 65);
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
        });
        TestIssuer {
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk,
            subject: subject.to_owned(),
            minted: AtomicU64::new(0),
            tokens: Mutex::new(Vec::new()),
        }
    }

    pub fn jwks(&self) -> serde_json::Value {
        json!({ "keys": [self.jwk] })
    }

    fn kid(&self) -> String {
        self.jwk["kid"].as_str().unwrap_or_default().to_owned()
    }
}

#[async_trait]
impl IdentityTokenSource for TestIssuer {
    async fn identity_token(&self, audience: &str) -> Result<Zeroizing<String>, WrapError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid());
        let claims = json!({
            "iss": ISSUER, "sub": self.subject, "aud": audience,
            "iat": now, "exp": now + 300, "jti": format!("{now}-{}", self.minted.load(Ordering::SeqCst)),
        });
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| WrapError::Misconfigured(format!("test issuer: {e}")))?;
        self.minted.fetch_add(1, Ordering::SeqCst);
        self.tokens.lock().expect("lock").push(token.clone());
        Ok(Zeroizing::new(token))
    }
}

/// What Entra trusts in these tests: `issuer`'s JWKS for ISSUER/SUBJECT.
pub fn trust(issuer: &TestIssuer) -> EntraTrust {
    EntraTrust {
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        issuer: ISSUER.into(),
        subject: SUBJECT.into(),
        audience: cloud_adapters::azure::DEFAULT_ASSERTION_AUDIENCE.into(),
        jwks: issuer.jwks(),
    }
}

/// Settings that trust the double's CA, with short backoff so tests are quick.
pub fn settings(double: &AzureDouble, credentials: AzureCredentials) -> AzureSettings {
    AzureSettings {
        timeout: Duration::from_secs(5),
        max_attempts: 3,
        backoff_base: Duration::from_millis(10),
        ca_certificate_pem: Some(double.ca_certificate_pem()),
        ..AzureSettings::new(credentials)
    }
}

pub fn static_credentials(token: &str) -> AzureCredentials {
    AzureCredentials::Static {
        access_token: Zeroizing::new(token.to_owned()),
    }
}

pub fn federated_credentials(
    double: &AzureDouble,
    identity: std::sync::Arc<dyn IdentityTokenSource>,
) -> AzureCredentials {
    AzureCredentials::Federated {
        identity,
        tenant_id: TENANT.into(),
        client_id: CLIENT_ID.into(),
        authority_host: double.authority_host().to_owned(),
        audience: cloud_adapters::azure::DEFAULT_ASSERTION_AUDIENCE.into(),
    }
}

pub fn uri(double: &AzureDouble, key: &str, version: Option<&str>) -> KekUri {
    let text = match version {
        Some(v) => format!("azure-kv://{}/keys/{key}/{v}", double.vault_host()),
        None => format!("azure-kv://{}/keys/{key}", double.vault_host()),
    };
    text.parse().expect("KEK URI")
}

/// A double with key `splits`, and a wrapper on its pinned version using a
/// static token.
pub async fn static_setup() -> (AzureDouble, AzureKeyVaultWrapper, String) {
    let double = AzureDouble::start().await.expect("start double");
    let version = double.create_key("splits");
    let token = double.issue_static_token();
    let wrapper = AzureKeyVaultWrapper::new(
        uri(&double, "splits", Some(&version)),
        settings(&double, static_credentials(&token)),
    )
    .expect("wrapper");
    (double, wrapper, version)
}
