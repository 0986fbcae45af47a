use serde::Serialize;

use super::{Store, StoreError};

/// One audit event, read back from the transparency log (a convenience view
/// for tests and tools; the log's own API serves the canonical entries).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Position in the total order, from 1 (log index + 1).
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// What happened, e.g. `adtech.created`.
    pub kind: String,
    /// `{"actor", "details"}`; never a secret.
    pub body: serde_json::Value,
}

impl Store {
    /// Up to `limit` events with `seq > after`, in order.
    pub async fn audit_events(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let entries = self
            .audit_entries(after.max(0), after.max(0).saturating_add(limit))
            .await?;
        entries
            .into_iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.entry).map_err(|err| {
                    StoreError::Corrupt(format!("audit entry {}: {err}", e.index))
                })?;
                Ok(AuditEvent {
                    seq: e.index + 1,
                    at: v["time"].as_i64().unwrap_or(0),
                    kind: v["kind"].as_str().unwrap_or_default().to_owned(),
                    body: serde_json::json!({ "actor": v["actor"], "details": v["details"] }),
                })
            })
            .collect()
    }
}
