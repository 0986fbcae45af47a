//! The one door every audited event goes through (DESIGN §7.2).
//!
//! Callers describe what happened as an [`AuditEvent`]; [`Audit::record`]
//! returns only once the event is durable, so a request whose decision must
//! be audited answers after its record exists. Today the record is a row in
//! an ordered table; the transparency log replaces the implementation behind
//! this trait without touching callers.
//!
//! Events never carry secrets: not the subject token, not the issued
//! credential (only its `jti`), not key material.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::storage::{Store, StoreError};

/// Something that happened, in the vocabulary auditors read.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// Dotted kind, e.g. `token.exchange`, `adtech.created`.
    pub kind: &'static str,
    /// Who caused it: `admin-token:<label>` or `operator:<sub>` for
    /// operators, `adtech:<id>` for an allowed exchange, `workload` for a
    /// refused one (the claimed identity is in the details).
    pub actor: String,
    /// The details.
    pub details: Value,
}

impl AuditEvent {
    /// An event with details.
    pub fn new(kind: &'static str, actor: impl Into<String>, details: Value) -> Self {
        AuditEvent {
            kind,
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
}

/// The interim implementation: one row per event in `audit_events`.
#[derive(Clone, Debug)]
pub struct TableAudit {
    store: Store,
}

impl TableAudit {
    /// Records into `store`.
    pub fn shared(store: Store) -> Arc<dyn Audit> {
        Arc::new(TableAudit { store })
    }
}

#[async_trait]
impl Audit for TableAudit {
    async fn record(&self, at_ms: i64, event: AuditEvent) -> Result<i64, StoreError> {
        let body = json!({ "actor": event.actor, "details": event.details });
        self.store.append_audit(at_ms, event.kind, &body).await
    }
}
