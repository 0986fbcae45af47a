//! Co-signatures: a witness (the peer coordinator) vouches that it saw a
//! tree head and that the head extends every head it saw before from the
//! same log. A log that shows different histories to different readers, or
//! rolls back, cannot get its peer's co-signature on the new history.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::SignedTreeHead;

/// Domain separation for co-signatures: never a tree-head signature.
pub const COSIGNATURE_CONTEXT: &[u8] = b"keyferry/v1/cosignature\n";

/// A witness's signature over another log's head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cosignature {
    /// The witness's base URL: where its view of this log is served
    /// (`GET {witness}/v1/audit/witness`).
    pub witness: String,
    /// The witness's Ed25519 key (the key of its own log's heads), base64.
    pub public_key: String,
    /// Unix ms of co-signing.
    pub cosigned_at: i64,
    /// Ed25519 over [`COSIGNATURE_CONTEXT`] ‖ [`Cosignature::message`], base64.
    pub signature: String,
}

impl Cosignature {
    /// The co-signed message: canonical JSON of the head (with the log's
    /// key, so a co-signature cannot move to another log) and the time.
    pub fn message(head: &SignedTreeHead, cosigned_at: i64) -> Vec<u8> {
        let body = json!({
            "cosignedAt": cosigned_at,
            "logKey": head.public_key,
            "rootHash": head.root_hash,
            "timestamp": head.timestamp,
            "treeSize": head.tree_size,
        });
        let mut message = COSIGNATURE_CONTEXT.to_vec();
        message.extend_from_slice(serde_jcs::to_string(&body).unwrap_or_default().as_bytes());
        message
    }

    /// Whether this co-signature verifies over `head` with its own key.
    /// Whose key that is, the reader decides (pin it, or check it against
    /// the witness's published key).
    pub fn valid_for(&self, head: &SignedTreeHead) -> bool {
        let (Ok(key), Ok(signature)) = (B64.decode(&self.public_key), B64.decode(&self.signature))
        else {
            return false;
        };
        aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, key)
            .verify(&Self::message(head, self.cosigned_at), &signature)
            .is_ok()
    }
}

/// A tree head as `GET /v1/audit/sth` serves it: with the co-signatures
/// its witnesses gave it (none yet for a head newer than the last round).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CosignedTreeHead {
    /// The head.
    #[serde(flatten)]
    pub head: SignedTreeHead,
    /// Its co-signatures.
    #[serde(default)]
    pub cosignatures: Vec<Cosignature>,
}

/// What a witness last saw of its peer's log (`GET /v1/audit/witness`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WitnessView {
    /// The witnessed log's base URL.
    pub log: String,
    /// The last head that verified and extended every earlier one; `None`
    /// before the first round.
    pub head: Option<SignedTreeHead>,
    /// Why the latest head was refused, if it was (`rollback`,
    /// `split_view`, `inconsistent`, `bad_signature`, `log_key_changed`).
    pub failure: Option<WitnessFailure>,
    /// Unix ms of the last round.
    pub checked_at: Option<i64>,
}

/// A refused head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WitnessFailure {
    /// Stable reason.
    pub reason: String,
    /// What was seen.
    pub message: String,
    /// Unix ms when first seen.
    pub at: i64,
}

/// How `seen` compares with the `last` head a witness (or an auditor)
/// accepted from the same log, before any proof is fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Nothing new.
    Same,
    /// Larger: a consistency proof from `last` must verify.
    Extends,
    /// Smaller than a head already seen.
    Rollback,
    /// The same size with another root: two histories.
    SplitView,
}

/// Compares two heads of one log by size and root.
pub fn compare(last: &SignedTreeHead, seen: &SignedTreeHead) -> Comparison {
    use std::cmp::Ordering;
    match seen.tree_size.cmp(&last.tree_size) {
        Ordering::Less => Comparison::Rollback,
        Ordering::Greater => Comparison::Extends,
        Ordering::Equal if seen.root_hash == last.root_hash => Comparison::Same,
        Ordering::Equal => Comparison::SplitView,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};

    fn head(size: u64, root: &str) -> SignedTreeHead {
        SignedTreeHead {
            tree_size: size,
            root_hash: root.into(),
            timestamp: 5,
            signature: String::new(),
            public_key: "log-key".into(),
        }
    }

    #[test]
    fn a_cosignature_verifies_for_its_head_only() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
        let h = head(3, "root");
        let cosig = Cosignature {
            witness: "https://b.example".into(),
            public_key: B64.encode(pair.public_key().as_ref()),
            cosigned_at: 9,
            signature: B64.encode(pair.sign(&Cosignature::message(&h, 9)).as_ref()),
        };
        assert!(cosig.valid_for(&h));
        assert!(!cosig.valid_for(&head(4, "root")));
        assert!(!cosig.valid_for(&head(3, "other")));
        let mut other_log = h.clone();
        other_log.public_key = "another-log".into();
        assert!(!cosig.valid_for(&other_log));
        let moved = Cosignature {
            cosigned_at: 10,
            ..cosig
        };
        assert!(!moved.valid_for(&h));
    }

    #[test]
    fn heads_compare_by_size_then_root() {
        let last = head(5, "a");
        assert_eq!(compare(&last, &head(5, "a")), Comparison::Same);
        assert_eq!(compare(&last, &head(6, "b")), Comparison::Extends);
        assert_eq!(compare(&last, &head(4, "a")), Comparison::Rollback);
        assert_eq!(compare(&last, &head(5, "b")), Comparison::SplitView);
    }
}
