use super::audit_log::insert_outbox_in;
use super::columns::JsonText;
use super::{MappingRecord, OutboxEntry, Store, StoreError, conflict_or, to_json};
use serde::{Deserialize, Serialize};

/// A trusted issuer added through the admin API (configured issuers live in
/// `keyferry.toml` and are not stored).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StoredIssuer {
    /// Unique short name.
    pub name: String,
    /// `aws`, `gcp`, `azure` or `oidc`.
    pub kind: String,
    /// The exact `iss` URL; unique.
    pub issuer: String,
    /// The whole issuer entry as JSON (audience, algorithms, lifetimes…).
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub document: serde_json::Value,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl Store {
    /// Adds an issuer, and `audit` in the same transaction; `Conflict` if
    /// its name or URL is taken.
    pub async fn insert_issuer(
        &self,
        issuer: &StoredIssuer,
        audit: &OutboxEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO issuers (name, kind, issuer, document, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&issuer.name)
        .bind(&issuer.kind)
        .bind(&issuer.issuer)
        .bind(to_json(&issuer.document))
        .bind(issuer.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("issuer `{}` ({})", issuer.name, issuer.issuer)))?;
        insert_outbox_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every stored issuer, by name.
    pub async fn issuers(&self) -> Result<Vec<StoredIssuer>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM issuers ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Removes an issuer by name and, in the same transaction, every
    /// mapping of its identities: a removed issuer's mappings must not come
    /// back if an issuer of the same URL is trusted again. Returns what was
    /// removed; `audit` gives the entries, written in that transaction.
    pub async fn delete_issuer(
        &self,
        name: &str,
        audit: impl FnOnce(&StoredIssuer, &[MappingRecord]) -> Vec<OutboxEntry>,
    ) -> Result<(StoredIssuer, Vec<MappingRecord>), StoreError> {
        let mut tx = self.pool.begin().await?;
        let issuer: StoredIssuer =
            sqlx::query_as("DELETE FROM issuers WHERE name = $1 RETURNING *")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("issuer `{name}`")))?;
        let mappings: Vec<MappingRecord> =
            sqlx::query_as("DELETE FROM mappings WHERE issuer = $1 RETURNING *")
                .bind(&issuer.issuer)
                .fetch_all(&mut *tx)
                .await?;
        for entry in audit(&issuer, &mappings) {
            insert_outbox_in(&mut tx, &entry).await?;
        }
        tx.commit().await?;
        Ok((issuer, mappings))
    }
}
