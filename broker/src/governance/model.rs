//! What a proposal is, the digest members sign, and member keys.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain separation: a ballot signature can never be mistaken for (or
/// replayed as) a signature over anything else a member's key signs.
pub const BALLOT_CONTEXT: &[u8] = b"keyferry/v1/governance-ballot\n";

/// How long a proposal collects ballots.
pub const PROPOSAL_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// A change governance can make.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// Put a release policy in force for a use case.
    ReleasePolicy {
        /// The use case.
        #[serde(rename = "useCase")]
        use_case: String,
        /// The policy document (DESIGN §6 step 5).
        policy: serde_json::Value,
    },
    /// Put the key-generation policy in force (a Type-2 admits handovers
    /// only from key generators it allows, DESIGN §4.3).
    KeyGenerationPolicy {
        /// The policy document (the release policy format).
        policy: serde_json::Value,
    },
    /// Add a member.
    AddMember {
        /// Unique name.
        name: String,
        /// Ed25519 public key, base64 of the 32 raw bytes.
        #[serde(rename = "publicKey")]
        public_key: String,
    },
    /// Remove a member.
    RemoveMember {
        /// The member.
        name: String,
    },
    /// Change M.
    SetThreshold {
        /// The new threshold.
        threshold: u32,
    },
}

impl Change {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::ReleasePolicy { .. } => "release_policy",
            Change::KeyGenerationPolicy { .. } => "key_generation_policy",
            Change::AddMember { .. } => "add_member",
            Change::RemoveMember { .. } => "remove_member",
            Change::SetThreshold { .. } => "set_threshold",
        }
    }
}

/// The document whose digest members sign: the change and the proposal's
/// identity and lifetime, so a ballot cannot be moved to another proposal
/// with the same change.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposalDocument<'a> {
    /// `keyferry/v1/governance-proposal`.
    pub r#type: &'static str,
    /// The proposal id.
    pub id: &'a str,
    /// The coordinator whose governance this is (`coordinator:<name>`).
    pub coordinator: &'a str,
    /// What changes.
    pub change: &'a Change,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
}

impl ProposalDocument<'_> {
    /// RFC 8785 canonical JSON of the document.
    pub fn canonical(&self) -> Result<String, serde_json::Error> {
        serde_jcs::to_string(self)
    }

    /// Hex SHA-256 of the canonical document: what members sign.
    pub fn digest(&self) -> Result<String, serde_json::Error> {
        Ok(hex::encode(Sha256::digest(self.canonical()?.as_bytes())))
    }
}

/// The bytes a member signs to approve the proposal with `digest`.
pub fn ballot_message(digest: &str) -> Vec<u8> {
    let mut message = BALLOT_CONTEXT.to_vec();
    message.extend_from_slice(digest.as_bytes());
    message
}

#[cfg(test)]
use crate::config::ED25519_SPKI_PREFIX;
pub use crate::config::parse_member_key;

/// Whether `signature_b64` is `member_key_b64`'s signature of the ballot
/// message for `digest`.
pub fn ballot_signature_valid(member_key_b64: &str, digest: &str, signature_b64: &str) -> bool {
    let (Ok(key), Ok(signature)) = (B64.decode(member_key_b64), B64.decode(signature_b64)) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&ballot_message(digest), &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};

    fn member() -> (Ed25519KeyPair, String) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
        let public = B64.encode(pair.public_key().as_ref());
        (pair, public)
    }

    #[test]
    fn the_digest_binds_the_change_the_id_and_the_lifetime() {
        let change = Change::SetThreshold { threshold: 2 };
        let doc = |id, expires_at| ProposalDocument {
            r#type: "keyferry/v1/governance-proposal",
            id,
            coordinator: "coordinator:a",
            change: &change,
            created_at: 1,
            expires_at,
        };
        let base = doc("p1", 10).digest().expect("digest");
        assert_eq!(base.len(), 64);
        assert_ne!(base, doc("p2", 10).digest().expect("digest"));
        assert_ne!(base, doc("p1", 11).digest().expect("digest"));
        assert_eq!(base, doc("p1", 10).digest().expect("digest"));
    }

    #[test]
    fn a_ballot_verifies_only_for_its_digest_and_its_member() {
        let (pair, public) = member();
        let (_, other) = member();
        let digest = "ab".repeat(32);
        let signature = B64.encode(pair.sign(&ballot_message(&digest)).as_ref());
        assert!(ballot_signature_valid(&public, &digest, &signature));
        assert!(!ballot_signature_valid(&other, &digest, &signature));
        assert!(!ballot_signature_valid(
            &public,
            &"cd".repeat(32),
            &signature
        ));
        // The bare digest, without the context, is not a ballot.
        let bare = B64.encode(pair.sign(digest.as_bytes()).as_ref());
        assert!(!ballot_signature_valid(&public, &digest, &bare));
        assert!(!ballot_signature_valid(&public, &digest, "not base64!"));
    }

    #[test]
    fn member_keys_are_raw_base64_or_pem_and_32_bytes() {
        let (_, public) = member();
        assert_eq!(parse_member_key(&public).expect("raw"), public);
        let raw = B64.decode(&public).expect("b64");
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&raw);
        let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", der));
        assert_eq!(parse_member_key(&pem).expect("pem"), public);
        assert!(parse_member_key(&B64.encode([1u8; 31])).is_err());
        assert!(parse_member_key("%%%").is_err());
        let wrong_tag = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![0u8; 44]));
        assert!(parse_member_key(&wrong_tag).is_err());
    }
}
