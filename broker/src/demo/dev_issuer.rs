//! A minimal OIDC issuer on loopback for `keyferry demo`: discovery, a JWKS
//! with one ES256 key, and tokens for a workload identity. It stands in for
//! a cloud's identity service (the demo has no cloud); the coordinators
//! trust it as an `aws`-kind issuer, which the dev profile allows on
//! loopback.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The demo's workload identity issuer.
pub(crate) struct DevIssuer {
    pub(crate) url: String,
    key: jsonwebtoken::EncodingKey,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const KID: &str = "demo-1";

impl DevIssuer {
    /// Starts the issuer on a free loopback port.
    pub(crate) async fn start() -> std::io::Result<DevIssuer> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| std::io::Error::other("cannot generate the demo issuer key"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .map_err(|_| std::io::Error::other("cannot load the demo issuer key"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        // A path keeps the URL free of a trailing-slash ambiguity.
        let url = format!("http://{}/demo", listener.local_addr()?);
        // Uncompressed point: 0x04 ‖ x ‖ y.
        let point = pair.public_key().as_ref().to_vec();
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KID,
            "x": B64URL.encode(&point[1..33]), "y": B64URL.encode(&point[33..65]),
        }]});
        let discovery = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks.json"),
            "id_token_signing_alg_values_supported": ["ES256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
        });
        let app = Router::new()
            .route(
                "/demo/.well-known/openid-configuration",
                get(move || async move { Json(discovery) }),
            )
            .route("/demo/jwks.json", get(move || async move { Json(jwks) }));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let key = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
        Ok(DevIssuer { url, key, task })
    }

    /// A 10-minute ES256 token for `subject` with audience `audience`.
    pub(crate) fn token(
        &self,
        subject: &str,
        audience: &str,
    ) -> std::io::Result<Zeroizing<String>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let claims: Value = json!({
            "iss": self.url, "sub": subject, "aud": audience,
            "iat": now, "nbf": now, "exp": now + 600,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(KID.into());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Zeroizing::new)
            .map_err(|e| std::io::Error::other(format!("cannot sign the demo token: {e}")))
    }
}
