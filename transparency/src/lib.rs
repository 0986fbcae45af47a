//! Keyferry's audit log as its readers see it (DESIGN §7.2): what an entry
//! is, how entries hash into an RFC 9162 tree, what a signed tree head
//! commits to, and the offline check of a whole log. The broker writes
//! through these types; auditors (`keyferry audit verify`) read untrusted
//! exports and server answers through the same ones.
//!
//! # Layout
//!
//! - `entry`: [`EventKind`], every kind of entry the broker writes, and
//!   [`AuditEntry`], one entry as canonical JSON (RFC 8785).
//! - [`merkle`]: RFC 9162 leaf and node hashing, roots and proofs over
//!   stored perfect subtrees, and their verification.
//! - `sth`: [`SignedTreeHead`], Ed25519 over [`STH_CONTEXT`] and the head.
//! - `cosign`: [`Cosignature`], a witness's signature over another log's
//!   head, the [`CosignedTreeHead`] a log serves, the [`WitnessView`] a
//!   witness serves, and [`compare`], which tells a rollback or a split view
//!   from an extension.
//! - `inclusion`: [`EntryInclusion`], one entry with its proof in a signed
//!   head, as a key manifest carries it.
//! - [`verify`]: the whole-log check, naming the first problem found.

mod cosign;
mod entry;
mod inclusion;
pub mod merkle;
mod sth;
pub mod verify;

pub use cosign::{
    COSIGNATURE_CONTEXT, Comparison, Cosignature, CosignedTreeHead, WitnessFailure, WitnessView,
    compare,
};
pub use entry::{AuditEntry, EntryError, EntryKind, EventKind};
pub use inclusion::{EntryInclusion, InclusionFailure};
pub use sth::{STH_CONTEXT, SignedTreeHead};
