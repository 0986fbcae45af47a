//! Offline verification of an audit log (`keyferry audit verify`).
//!
//! Input: a signed tree head and every entry with its stored leaf hash
//! (fetched from a server or read from an export), and optionally a head
//! saved earlier. Checks, in order, each naming the first problem:
//! 1. the head's signature (with the pinned key when a saved head is given);
//! 2. every position holds the entry of that index (a deleted, inserted or
//!    reordered row shows here);
//! 3. every entry's canonical text hashes to its stored leaf (an edited row);
//! 4. the leaves' root equals the signed root (edited tree nodes);
//! 5. the saved head's tree is a prefix of this one (a restored older
//!    database or rewritten history).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::merkle;
use crate::sth::SignedTreeHead;

/// One exported entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedEntry {
    /// Position.
    pub index: u64,
    /// Canonical JSON text.
    pub entry: String,
    /// Stored leaf hash, base64 (absent if the tree has none).
    pub leaf_hash: Option<String>,
}

/// An export file: a head and every entry it covers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Export {
    /// The signed head.
    pub sth: SignedTreeHead,
    /// Entries 0..sth.treeSize.
    pub entries: Vec<ExportedEntry>,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyFailure {
    /// The head is not signed by the log key.
    #[error("the tree head's signature does not verify{0}")]
    BadSignature(&'static str),
    /// An entry is missing, extra or out of place.
    #[error("entry {index}: {problem}")]
    BadEntry {
        /// The first bad position.
        index: u64,
        /// What is wrong.
        problem: String,
    },
    /// The stored tree does not match the signed head.
    #[error("the entries' root does not match the signed tree head (tree nodes were altered)")]
    RootMismatch,
    /// The saved head is not a prefix of this log.
    #[error(
        "the log is not consistent with the saved head of size {0}: history was rewritten or an older copy restored"
    )]
    Inconsistent(u64),
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked.
    pub tree_size: u64,
    /// Whether a saved head was checked for consistency.
    pub consistent_with_saved: bool,
}

fn decode(b64: &str) -> Option<merkle::Hash> {
    B64.decode(b64).ok()?.try_into().ok()
}

/// Verifies `export`, and its consistency with `saved` if given.
pub fn verify(export: &Export, saved: Option<&SignedTreeHead>) -> Result<Verified, VerifyFailure> {
    let sth = &export.sth;
    if let Some(saved) = saved {
        if saved.public_key != sth.public_key {
            return Err(VerifyFailure::BadSignature(
                " with the log key pinned in the saved head",
            ));
        }
        if !saved.signature_valid() {
            return Err(VerifyFailure::BadSignature(" (the saved head itself)"));
        }
    }
    if !sth.signature_valid() {
        return Err(VerifyFailure::BadSignature(""));
    }

    let mut leaves = Vec::with_capacity(export.entries.len());
    for (position, e) in export.entries.iter().enumerate() {
        let position = position as u64;
        if e.index != position {
            let problem = if e.index > position {
                "is missing"
            } else {
                "appears twice or out of order"
            };
            return Err(VerifyFailure::BadEntry {
                index: position,
                problem: problem.into(),
            });
        }
        let claimed = crate::AuditEntry::claimed_index(&e.entry);
        if claimed != Some(position) {
            return Err(VerifyFailure::BadEntry {
                index: position,
                problem: format!(
                    "its content says index {claimed:?}: rows were reordered or inserted"
                ),
            });
        }
        let leaf = merkle::leaf_hash(e.entry.as_bytes());
        match e.leaf_hash.as_deref().and_then(decode) {
            Some(stored) if stored == leaf => leaves.push(leaf),
            Some(_) => {
                return Err(VerifyFailure::BadEntry {
                    index: position,
                    problem: "was altered (it does not hash to its leaf)".into(),
                });
            }
            None => {
                return Err(VerifyFailure::BadEntry {
                    index: position,
                    problem: "is not in the tree (no leaf hash)".into(),
                });
            }
        }
    }
    if leaves.len() as u64 != sth.tree_size {
        let index = (leaves.len() as u64).min(sth.tree_size);
        let problem = if (leaves.len() as u64) < sth.tree_size {
            "is missing"
        } else {
            "is beyond the signed tree"
        };
        return Err(VerifyFailure::BadEntry {
            index,
            problem: problem.into(),
        });
    }
    if decode(&sth.root_hash) != Some(merkle::root_from_leaves(&leaves)) {
        return Err(VerifyFailure::RootMismatch);
    }
    if let Some(saved) = saved {
        let prefix = usize::try_from(saved.tree_size).unwrap_or(usize::MAX);
        let consistent = prefix <= leaves.len()
            && decode(&saved.root_hash) == Some(merkle::root_from_leaves(&leaves[..prefix]));
        if !consistent {
            return Err(VerifyFailure::Inconsistent(saved.tree_size));
        }
    }
    Ok(Verified {
        tree_size: sth.tree_size,
        consistent_with_saved: saved.is_some(),
    })
}

/// Why a log's witness does not vouch for it (`keyferry audit verify
/// --require-cosigned`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessCheckFailure {
    /// No head of the log carries a valid co-signature of the witness.
    #[error("no head of this log carries a valid co-signature of its witness (key {0})")]
    NotCosigned(String),
    /// The co-signed head is not a head of the verified entries.
    #[error("the co-signed head of size {0} is not a head of this log's entries")]
    CosignedHeadNotInLog(u64),
    /// The witness refused a later head of this log.
    #[error("the witness refused this log's head: {reason}: {message}")]
    WitnessRefused {
        /// Its stable reason (`rollback`, `split_view`, …).
        reason: String,
        /// What it saw.
        message: String,
    },
    /// The witness saw a larger log than the one served now.
    #[error("rollback: the witness saw {seen} entries, the log serves {served}")]
    Rollback {
        /// The witness's size.
        seen: u64,
        /// The served size.
        served: u64,
    },
    /// The witness saw another history: a head whose root the served
    /// entries do not have at its size.
    #[error("split view: the witness saw another root at size {0}")]
    SplitView(u64),
}

/// Whether `export` (already verified with [`verify`]) is the history its
/// witness vouches for: `cosigned`, the log's newest co-signed head, must
/// be a head of these entries with a valid co-signature by `witness_key`
/// (the witness's published log key); and what the witness last accepted
/// of this log (`view`) must be a head of these entries too, with no
/// refusal since. This detects a rollback or a split view without any head
/// saved by the auditor.
pub fn check_witnessed(
    export: &Export,
    cosigned: &crate::CosignedTreeHead,
    witness_key: &str,
    view: &crate::WitnessView,
) -> Result<(), WitnessCheckFailure> {
    let leaves: Vec<merkle::Hash> = export
        .entries
        .iter()
        .map(|e| merkle::leaf_hash(e.entry.as_bytes()))
        .collect();
    let is_head_of_entries = |head: &SignedTreeHead| {
        let size = usize::try_from(head.tree_size).unwrap_or(usize::MAX);
        size <= leaves.len()
            && decode(&head.root_hash) == Some(merkle::root_from_leaves(&leaves[..size]))
    };
    let head = &cosigned.head;
    if head.public_key != export.sth.public_key || !head.signature_valid() {
        return Err(WitnessCheckFailure::CosignedHeadNotInLog(head.tree_size));
    }
    let witnessed = cosigned
        .cosignatures
        .iter()
        .any(|c| c.public_key == witness_key && c.valid_for(head));
    if !witnessed {
        return Err(WitnessCheckFailure::NotCosigned(witness_key.to_owned()));
    }
    if !is_head_of_entries(head) {
        return Err(WitnessCheckFailure::CosignedHeadNotInLog(head.tree_size));
    }
    if let Some(failure) = &view.failure {
        return Err(WitnessCheckFailure::WitnessRefused {
            reason: failure.reason.clone(),
            message: failure.message.clone(),
        });
    }
    if let Some(seen) = &view.head {
        if seen.tree_size > export.sth.tree_size {
            return Err(WitnessCheckFailure::Rollback {
                seen: seen.tree_size,
                served: export.sth.tree_size,
            });
        }
        if seen.public_key != export.sth.public_key || !is_head_of_entries(seen) {
            return Err(WitnessCheckFailure::SplitView(seen.tree_size));
        }
    }
    Ok(())
}
