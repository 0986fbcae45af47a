use super::audit_log::insert_outbox_in;
use super::columns::{IntBool, JsonText};
use super::{OutboxEntry, Store, StoreError, conflict_or, to_json};
use serde::{Deserialize, Serialize};

/// An onboarded ad tech.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AdTech {
    /// Stable identifier chosen at onboarding.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its sites, as https origins.
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    pub sites: Vec<String>,
    /// Use cases it may fetch keys for.
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    pub use_cases: Vec<String>,
    /// Disabled ad techs get no credentials and no keys.
    #[sqlx(try_from = "IntBool")]
    pub enabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl Store {
    /// Adds an ad tech, and `audit` in the same transaction; `Conflict` if
    /// the id is taken.
    pub async fn insert_adtech(
        &self,
        adtech: &AdTech,
        audit: &OutboxEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO adtechs (id, name, sites, use_cases, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&adtech.id)
        .bind(&adtech.name)
        .bind(to_json(&adtech.sites))
        .bind(to_json(&adtech.use_cases))
        .bind(i64::from(adtech.enabled))
        .bind(adtech.created_at)
        .bind(adtech.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("ad tech `{}`", adtech.id)))?;
        insert_outbox_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One ad tech by id.
    pub async fn adtech(&self, id: &str) -> Result<AdTech, StoreError> {
        sqlx::query_as("SELECT * FROM adtechs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("ad tech `{id}`")))
    }

    /// Every ad tech, by id.
    pub async fn adtechs(&self) -> Result<Vec<AdTech>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM adtechs ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Enables or disables an ad tech, and `audit` in the same
    /// transaction; returns the updated record.
    pub async fn set_adtech_enabled(
        &self,
        id: &str,
        enabled: bool,
        now_ms: i64,
        audit: &OutboxEntry,
    ) -> Result<AdTech, StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query_as(
            "UPDATE adtechs SET enabled = $1, updated_at = $2 WHERE id = $3 RETURNING *",
        )
        .bind(i64::from(enabled))
        .bind(now_ms)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ad tech `{id}`")))?;
        insert_outbox_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(updated)
    }
}
