use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, from_json, to_json};

/// One stored audit event. This ordered table is the interim record; the
/// transparency log (DESIGN §7.2) replaces it behind the same interface.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Position in the total order, from 1.
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// What happened, e.g. `adtech.created`.
    pub kind: String,
    /// Details; never a secret.
    pub body: serde_json::Value,
}

impl Store {
    /// Appends an event durably; returns its sequence number.
    pub async fn append_audit(
        &self,
        at_ms: i64,
        kind: &str,
        body: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO audit_events (at, kind, body) VALUES ($1, $2, $3) RETURNING seq",
        )
        .bind(at_ms)
        .bind(kind)
        .bind(to_json(body))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("seq")?)
    }

    /// Up to `limit` events with `seq > after`, in order.
    pub async fn audit_events(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        sqlx::query(
            "SELECT seq, at, kind, body FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(AuditEvent {
                seq: row.try_get("seq")?,
                at: row.try_get("at")?,
                kind: row.try_get("kind")?,
                body: from_json("audit_events.body", &row.try_get::<String, _>("body")?)?,
            })
        })
        .collect()
    }
}
