//! One entry of a log with the proof that a signed head of that log
//! includes it: what a key manifest carries for each coordinator, so a
//! reader can check that a key's publication is on record without reading
//! the log.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::merkle::{self, Hash};
use crate::{AuditEntry, SignedTreeHead};

/// An entry, its position, and its RFC 9162 inclusion proof in `head`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryInclusion {
    /// The entry's canonical JSON text (the bytes its leaf hash covers).
    pub entry: String,
    /// Its position in the log.
    pub leaf_index: u64,
    /// The sibling hashes from the leaf up, base64.
    pub audit_path: Vec<String>,
    /// The signed head the proof leads to.
    pub head: SignedTreeHead,
}

/// Why an [`EntryInclusion`] proves nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InclusionFailure {
    /// The head's signature does not verify with its key.
    #[error("the tree head's signature is invalid")]
    BadHead,
    /// The entry is not a canonical audit entry, or claims another position.
    #[error("the entry is not the canonical entry at its position")]
    BadEntry,
    /// A path hash or the head's root is not a base64 SHA-256 hash.
    #[error("the proof holds a malformed hash")]
    Malformed,
    /// The path does not lead from the entry to the head's root.
    #[error("the proof does not lead to the tree head's root")]
    NotIncluded,
}

fn hash(b64: &str) -> Result<Hash, InclusionFailure> {
    B64.decode(b64)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(InclusionFailure::Malformed)
}

impl EntryInclusion {
    /// Checks the head's signature, the entry's form and position, and the
    /// path; returns the entry it proves. Which log's key signed the head
    /// (`head.public_key`) is the caller's to check against the key it pins.
    pub fn verify(&self) -> Result<AuditEntry, InclusionFailure> {
        if !self.head.signature_valid() {
            return Err(InclusionFailure::BadHead);
        }
        let entry = AuditEntry::parse(&self.entry).map_err(|_| InclusionFailure::BadEntry)?;
        if u64::try_from(entry.index).ok() != Some(self.leaf_index) {
            return Err(InclusionFailure::BadEntry);
        }
        let root = hash(&self.head.root_hash)?;
        let path = self
            .audit_path
            .iter()
            .map(|h| hash(h))
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = merkle::leaf_hash(self.entry.as_bytes());
        if !merkle::verify_inclusion(self.leaf_index, self.head.tree_size, &leaf, &path, &root) {
            return Err(InclusionFailure::NotIncluded);
        }
        Ok(entry)
    }
}
