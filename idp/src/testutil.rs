//! Test helpers: key pairs that mint tokens with arbitrary headers, and a tiny HTTP server
//! that plays an issuer's discovery and JWKS endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::jose::b64url;

/// An RSA-2048 issuer key (generated once per test binary: keygen is slow in debug builds).
pub(crate) struct RsaTestKey {
    pair: RsaKeyPair,
    pub(crate) kid: String,
}

impl RsaTestKey {
    pub(crate) fn shared() -> &'static RsaTestKey {
        static KEY: OnceLock<RsaTestKey> = OnceLock::new();
        KEY.get_or_init(|| RsaTestKey::generate("rsa-1"))
    }

    pub(crate) fn other() -> &'static RsaTestKey {
        static KEY: OnceLock<RsaTestKey> = OnceLock::new();
        KEY.get_or_init(|| RsaTestKey::generate("rsa-2"))
    }

    fn generate(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa keygen");
        Self {
            pair,
            kid: kid.to_owned(),
        }
    }

    pub(crate) fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": b64url(public.modulus().big_endian_without_leading_zero()),
            "e": b64url(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The public key as PEM text: what an attacker would use as an HMAC secret.
    pub(crate) fn public_pem(&self) -> String {
        let der = self.pair.public_key().as_ref();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN RSA PUBLIC KEY-----\n{b64}\n-----END RSA PUBLIC KEY-----\n")
    }

    /// RS256 over `header.claims` (the header is used as given).
    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("rsa sign");
        format!("{input}.{}", b64url(&sig))
    }
}

/// A P-256 issuer key.
pub(crate) struct EcTestKey {
    pair: EcdsaKeyPair,
    pub(crate) kid: String,
}

impl EcTestKey {
    pub(crate) fn generate(kid: &str) -> Self {
        Self {
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec keygen"),
            kid: kid.to_owned(),
        }
    }

    pub(crate) fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256", "kid": self.kid,
            "x": b64url(&point[1..33]), "y": b64url(&point[33..65]),
        })
    }

    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("ec sign");
        format!("{input}.{}", b64url(sig.as_ref()))
    }
}

pub(crate) fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

/// HS256 with `secret`.
pub(crate) fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = signing_input(header, claims);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(tag.as_ref()))
}

/// A canned HTTP response.
#[derive(Clone)]
pub(crate) struct MockResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) delay: Duration,
}

impl MockResponse {
    pub(crate) fn json(body: &Value) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(crate) fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A loopback HTTP/1.1 server with fixed routes that counts requests per path.
#[derive(Clone)]
pub(crate) struct MockHttp {
    pub(crate) base: String,
    routes: Arc<Mutex<HashMap<String, MockResponse>>>,
    hits: Arc<Mutex<HashMap<String, u64>>>,
}

impl MockHttp {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let server = Self {
            base,
            routes: Arc::default(),
            hits: Arc::default(),
        };
        let handle = server.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let handle = handle.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buf);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    *handle
                        .hits
                        .lock()
                        .expect("hits")
                        .entry(path.clone())
                        .or_default() += 1;
                    let response = handle
                        .routes
                        .lock()
                        .expect("routes")
                        .get(&path)
                        .cloned()
                        .unwrap_or_else(|| MockResponse::status(404));
                    tokio::time::sleep(response.delay).await;
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        response.status,
                        response.body.len()
                    );
                    for (name, value) in &response.headers {
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&response.body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        server
    }

    pub(crate) fn set(&self, path: &str, response: MockResponse) {
        self.routes
            .lock()
            .expect("routes")
            .insert(path.to_owned(), response);
    }

    pub(crate) fn hits(&self, path: &str) -> u64 {
        self.hits
            .lock()
            .expect("hits")
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Serves discovery for `self.base` as issuer and `jwks` at `/jwks`.
    pub(crate) fn serve_issuer(&self, jwks: &Value) {
        self.set(
            "/.well-known/openid-configuration",
            MockResponse::json(&json!({
                "issuer": self.base, "jwks_uri": format!("{}/jwks", self.base)
            })),
        );
        self.set("/jwks", MockResponse::json(jwks));
    }
}
