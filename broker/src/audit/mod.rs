//! The one door every audited event goes through (DESIGN §7.2).
//!
//! Callers describe what happened as an [`AuditEvent`]; [`Audit::record`]
//! returns only once the event is durable, so a request whose decision must
//! be audited answers after its record exists. The implementation is the
//! transparency log:
//!
//! - `log`: [`TransparencyLog`]: group-committed appends, signed tree heads.
//! - `merkle`: RFC 9162 hashing, proofs and their verification.
//! - `verify`: the offline verifier behind `keyferry audit verify`.
//! - `api`: `/v1/audit/*`.
//!
//! Events never carry secrets: not the subject token, not the issued
//! credential (only its `jti`), not key material.

mod api;
pub mod log;
pub mod merkle;
pub mod verify;

use std::borrow::Cow;

use async_trait::async_trait;
use serde_json::Value;

use crate::storage::StoreError;

/// Something that happened, in the vocabulary auditors read.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// Dotted kind, e.g. `token.exchange`, `adtech.created`.
    pub kind: Cow<'static, str>,
    /// Who caused it: `admin-token:<label>` or `operator:<sub>` for
    /// operators, `adtech:<id>` for an allowed exchange, `workload` for a
    /// refused one (the claimed identity is in the details).
    pub actor: String,
    /// The details.
    pub details: Value,
}

impl AuditEvent {
    /// An event with details.
    pub fn new(
        kind: impl Into<Cow<'static, str>>,
        actor: impl Into<String>,
        details: Value,
    ) -> Self {
        AuditEvent {
            kind: kind.into(),
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

pub use api::MAX_ENTRIES_PER_CALL;
pub(crate) use api::router;
pub use log::{SignedTreeHead, TransparencyLog};
