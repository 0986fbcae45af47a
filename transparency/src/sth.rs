//! Signed tree heads: what a log commits to, and what an auditor saves and
//! pins.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Domain separation for tree-head signatures.
pub const STH_CONTEXT: &[u8] = b"keyferry/v1/sth\n";

/// A signed tree head, as served and as saved by auditors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedTreeHead {
    /// Entries covered.
    pub tree_size: u64,
    /// RFC 9162 root, base64.
    pub root_hash: String,
    /// Unix ms of signing.
    pub timestamp: i64,
    /// Ed25519 signature over [`STH_CONTEXT`] ‖ canonical JSON of
    /// `{rootHash, timestamp, treeSize}`, base64.
    pub signature: String,
    /// The log's Ed25519 public key, base64 (pin it when saving a head).
    pub public_key: String,
}

impl SignedTreeHead {
    /// The signed message.
    pub fn message(tree_size: u64, root_hash_b64: &str, timestamp: i64) -> Vec<u8> {
        let body =
            json!({"rootHash": root_hash_b64, "timestamp": timestamp, "treeSize": tree_size});
        let mut message = STH_CONTEXT.to_vec();
        message.extend_from_slice(serde_jcs::to_string(&body).unwrap_or_default().as_bytes());
        message
    }

    /// Whether the signature verifies with the embedded public key.
    pub fn signature_valid(&self) -> bool {
        let (Ok(key), Ok(signature)) = (B64.decode(&self.public_key), B64.decode(&self.signature))
        else {
            return false;
        };
        let message = Self::message(self.tree_size, &self.root_hash, self.timestamp);
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, key)
            .verify(&message, &signature)
            .is_ok()
    }
}
