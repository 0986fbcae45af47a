//! Governance members for tests: Ed25519 keys that sign ballots, and the
//! admin calls that propose and vote.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keyferry::config::GovMemberConfig;
use keyferry::governance::ballot_message;
use reqwest::Method;
use serde_json::{Value, json};

use super::Broker;

/// A governance member: a name and an Ed25519 key pair.
pub struct Member {
    pub name: &'static str,
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl Member {
    /// A member with a fresh key.
    pub fn new(name: &'static str) -> Member {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        Member {
            name,
            pair: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair"),
            pkcs8: pkcs8.as_ref().to_vec(),
        }
    }

    /// The private key as the PEM file a member keeps.
    pub fn pem_file(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join(format!("{}.pem", self.name));
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()));
        std::fs::write(&path, pem).expect("write key");
        path
    }

    /// The public key, base64 of its 32 bytes (as `[governance]` takes it).
    pub fn public(&self) -> String {
        B64.encode(self.pair.public_key().as_ref())
    }

    /// A ballot signature over a proposal's `digest`, base64.
    pub fn sign(&self, digest: &str) -> String {
        B64.encode(self.pair.sign(&ballot_message(digest)).as_ref())
    }
}

/// The `[governance] members` entries of `members`.
pub fn member_configs(members: &[Member]) -> Vec<GovMemberConfig> {
    members
        .iter()
        .map(|m| GovMemberConfig {
            name: m.name.into(),
            public_key: m.public(),
        })
        .collect()
}

/// `POST /v1/gov/proposals` of `change` by the bootstrap operator; the
/// proposal, which must be created.
pub async fn propose(broker: &Broker, change: Value) -> Value {
    let (status, body) = broker
        .admin(
            Method::POST,
            "/v1/gov/proposals",
            Some(json!({ "change": change })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// `POST /v1/gov/proposals/{id}/ballots`: the status and body.
pub async fn ballot(broker: &Broker, id: &str, member: &str, signature: &str) -> (u16, Value) {
    broker
        .admin(
            Method::POST,
            &format!("/v1/gov/proposals/{id}/ballots"),
            Some(json!({"member": member, "signature": signature})),
        )
        .await
}
