//! The one door every audited event goes through (DESIGN §7.2).
//!
//! Callers describe what happened as an [`AuditEvent`]; [`Audit::record`]
//! returns only once the event is durable, so a request whose decision must
//! be audited answers after its record exists. The implementation is the
//! transparency log:
//!
//! - `log`: [`TransparencyLog`]: group-committed appends, signed tree heads.
//! - `api`: `/v1/audit/*`.
//! - `witness`: [`witness::Witness`], this coordinator as the witness of
//!   its peer's log, and the keeper of the peer's co-signatures of its own.
//!
//! What a reader of the log needs is the `transparency` crate, re-exported
//! here: [`EventKind`], [`AuditEntry`] as written and read back, `merkle`
//! (RFC 9162 hashing and proofs), [`SignedTreeHead`] and `verify`, the
//! offline verifier behind `keyferry audit verify`.
//!
//! Events never carry secrets: not the subject token, not the issued
//! credential (only its `jti`), not key material.

mod api;
pub mod log;
pub mod witness;

use async_trait::async_trait;
use serde_json::Value;

use crate::storage::StoreError;

/// Something that happened, in the vocabulary auditors read.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// What kind of thing: one of [`EventKind`] (or, for entries imported
    /// from the interim table, the name they had).
    pub kind: EntryKind,
    /// Who caused it: `admin-token:<label>` or `operator:<sub>` for
    /// operators, `adtech:<id>` for an allowed exchange, `workload` for a
    /// refused one (the claimed identity is in the details).
    pub actor: String,
    /// The details.
    pub details: Value,
}

impl AuditEvent {
    /// An event with details.
    pub fn new(kind: EventKind, actor: impl Into<String>, details: Value) -> Self {
        AuditEvent {
            kind: EntryKind::Known(kind),
            actor: actor.into(),
            details,
        }
    }

    /// This event as an outbox entry at `at_ms`, to write in the same
    /// transaction as the change it records.
    pub fn outbox(&self, at_ms: i64) -> crate::storage::OutboxEntry {
        crate::storage::OutboxEntry {
            at_ms,
            kind: self.kind.as_str().to_owned(),
            body: serde_json::json!({ "actor": self.actor, "details": self.details }).to_string(),
        }
    }

    /// The entry this event becomes at `index`, recorded at `at_ms`.
    pub fn entry(&self, index: i64, at_ms: i64) -> AuditEntry {
        AuditEntry {
            index,
            time: at_ms,
            kind: self.kind.clone(),
            actor: self.actor.clone(),
            details: self.details.clone(),
        }
    }

    /// An event of the outbox (`audit_events`), moved into the log with the
    /// kind it was stored under.
    fn imported(kind: &str, actor: impl Into<String>, details: Value) -> Self {
        AuditEvent {
            kind: EntryKind::from_name(kind),
            actor: actor.into(),
            details,
        }
    }
}

/// Where audited events go.
#[async_trait]
pub trait Audit: Send + Sync + std::fmt::Debug {
    /// Durably records `event` at `at_ms`; returns its position in the log.
    async fn record(&self, at_ms: i64, event: AuditEvent) -> Result<i64, StoreError>;

    /// Moves the outbox's entries into the log now.
    async fn flush(&self) -> Result<(), StoreError>;

    /// What a change that wrote its entry in its own transaction calls
    /// after committing, before it answers: the entry is durable in the
    /// outbox already, so a failed move only delays it (to the next write
    /// or start) and is logged, not returned.
    async fn publish_outbox(&self) {
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "audit entries wait in the outbox");
        }
    }
}

pub use api::MAX_ENTRIES_PER_CALL;
pub(crate) use api::router;
pub use log::{LoggedEvent, TransparencyLog};
pub use transparency::{
    AuditEntry, Cosignature, CosignedTreeHead, EntryKind, EventKind, SignedTreeHead, WitnessView,
    merkle, verify,
};
