use super::audit_log::insert_outbox_in;
use super::columns::{IntBool, JsonText};
use super::{OutboxEntry, Store, StoreError, conflict_or, to_json};
use serde::{Deserialize, Serialize};

/// A rule that maps one workload identity to an ad tech (DESIGN §3.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct MappingRecord {
    /// Unique id (`m-…`).
    pub id: String,
    /// The ad tech the identity belongs to.
    pub adtech: String,
    /// `aws`, `gcp`, `azure` or `oidc`.
    pub cloud: String,
    /// The exact issuer URL.
    pub issuer: String,
    /// The exact `sub`.
    pub subject: String,
    /// Extra claim conditions, as a JSON array.
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub conditions: serde_json::Value,
    /// Scopes granted.
    #[sqlx(try_from = "JsonText<Vec<String>>")]
    pub scopes: Vec<String>,
    /// Disabled mappings never match.
    #[sqlx(try_from = "IntBool")]
    pub enabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Filters for listing mappings; `None` means any.
#[derive(Clone, Debug, Default)]
pub struct MappingFilter {
    /// Only this ad tech's mappings.
    pub adtech: Option<String>,
    /// Only this cloud's.
    pub cloud: Option<String>,
    /// Only this issuer's.
    pub issuer: Option<String>,
}

/// A mapping with whether its ad tech is enabled.
#[derive(sqlx::FromRow)]
struct MappingWithAdtech {
    #[sqlx(flatten)]
    mapping: MappingRecord,
    #[sqlx(try_from = "IntBool")]
    adtech_enabled: bool,
}

impl Store {
    /// Adds a mapping unless `check` refuses it given the mappings that
    /// already exist for the same issuer and subject. The check and the
    /// insert run in one transaction under the `mappings` lock, so two
    /// concurrent onboardings cannot both add overlapping rules; `audit` is
    /// written in that transaction too.
    /// `NotFound` if the ad tech does not exist; `Conflict` from the check or
    /// a taken id.
    pub async fn insert_mapping(
        &self,
        m: &MappingRecord,
        now_ms: i64,
        check: impl FnOnce(&[MappingRecord]) -> Result<(), String>,
        audit: &OutboxEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE locks SET held_at = $1 WHERE name = 'mappings'")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        let adtech_exists = sqlx::query("SELECT 1 FROM adtechs WHERE id = $1")
            .bind(&m.adtech)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !adtech_exists {
            return Err(StoreError::NotFound(format!("ad tech `{}`", m.adtech)));
        }
        let existing: Vec<MappingRecord> =
            sqlx::query_as("SELECT * FROM mappings WHERE issuer = $1 AND subject = $2 ORDER BY id")
                .bind(&m.issuer)
                .bind(&m.subject)
                .fetch_all(&mut *tx)
                .await?;
        check(&existing).map_err(StoreError::Conflict)?;
        sqlx::query(
            "INSERT INTO mappings (id, adtech, cloud, issuer, subject, conditions, scopes, enabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&m.id)
        .bind(&m.adtech)
        .bind(&m.cloud)
        .bind(&m.issuer)
        .bind(&m.subject)
        .bind(to_json(&m.conditions))
        .bind(to_json(&m.scopes))
        .bind(i64::from(m.enabled))
        .bind(m.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("mapping `{}`", m.id)))?;
        insert_outbox_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every mapping of an issuer and subject, each with whether its ad
    /// tech is enabled: the token endpoint tells "no mapping" from
    /// "ad tech disabled".
    pub async fn mappings_for_subject(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<(MappingRecord, bool)>, StoreError> {
        let rows: Vec<MappingWithAdtech> = sqlx::query_as(
            "SELECT m.*, a.enabled AS adtech_enabled FROM mappings m JOIN adtechs a ON a.id = m.adtech \
             WHERE m.issuer = $1 AND m.subject = $2 ORDER BY m.id",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.mapping, row.adtech_enabled))
            .collect())
    }

    /// Mappings matching the filter, oldest first.
    pub async fn mappings(&self, filter: &MappingFilter) -> Result<Vec<MappingRecord>, StoreError> {
        // `$n IS NULL OR col = $n` keeps one statement for every filter mix.
        Ok(sqlx::query_as(
            "SELECT * FROM mappings \
             WHERE ($1 IS NULL OR adtech = $1) AND ($2 IS NULL OR cloud = $2) AND ($3 IS NULL OR issuer = $3) \
             ORDER BY created_at, id",
        )
        .bind(filter.adtech.as_deref())
        .bind(filter.cloud.as_deref())
        .bind(filter.issuer.as_deref())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The candidates for a token: enabled mappings of enabled ad techs
    /// with this exact issuer and subject.
    pub async fn active_mappings_for(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<MappingRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT m.* FROM mappings m JOIN adtechs a ON a.id = m.adtech \
             WHERE m.issuer = $1 AND m.subject = $2 AND m.enabled = 1 AND a.enabled = 1 \
             ORDER BY m.id",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes a mapping, and the entry `audit` makes of it in the same
    /// transaction; returns what was removed.
    pub async fn delete_mapping(
        &self,
        id: &str,
        audit: impl FnOnce(&MappingRecord) -> OutboxEntry,
    ) -> Result<MappingRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let removed: MappingRecord =
            sqlx::query_as("DELETE FROM mappings WHERE id = $1 RETURNING *")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("mapping `{id}`")))?;
        insert_outbox_in(&mut tx, &audit(&removed)).await?;
        tx.commit().await?;
        Ok(removed)
    }
}
