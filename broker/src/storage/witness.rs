//! Mutual log witnessing: this coordinator's view of its peer's log, and
//! the peer's co-signatures of this log's heads.

use super::{Store, StoreError, StoredHead};

/// Co-signed heads kept: a witness co-signs about one head a minute, and
/// readers want the newest.
const COSIGNED_HEADS_KEPT: i64 = 100;

/// What this coordinator last accepted of its peer's log.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredWitnessState {
    /// The peer's base URL.
    pub log: String,
    /// The last accepted head (JSON), if any.
    pub head: Option<String>,
    /// Why the latest head was refused (JSON), if it was.
    pub failure: Option<String>,
    /// Unix ms of the last round.
    pub checked_at: Option<i64>,
}

impl Store {
    /// The witness state, if a round ever ran.
    pub async fn witness_state(&self) -> Result<Option<StoredWitnessState>, StoreError> {
        Ok(
            sqlx::query_as("SELECT log, head, failure, checked_at FROM witness_state WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Replaces the witness state.
    pub async fn put_witness_state(&self, state: &StoredWitnessState) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO witness_state (id, log, head, failure, checked_at) \
             VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
             log = $1, head = $2, failure = $3, checked_at = $4",
        )
        .bind(&state.log)
        .bind(&state.head)
        .bind(&state.failure)
        .bind(state.checked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The signed head of this log of exactly `tree_size` entries.
    pub async fn head_of_size(&self, tree_size: i64) -> Result<Option<StoredHead>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT tree_size, root, timestamp, signature FROM audit_heads WHERE tree_size = $1",
        )
        .bind(tree_size)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Keeps `witness_key`'s co-signature (JSON) of the head of `tree_size`,
    /// replacing an earlier one of the same head, and forgets co-signatures
    /// of all but the newest heads.
    pub async fn put_cosignature(
        &self,
        tree_size: i64,
        witness_key: &str,
        cosignature: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO audit_cosignatures (tree_size, witness_key, cosignature) \
             VALUES ($1, $2, $3) ON CONFLICT (tree_size, witness_key) DO UPDATE SET \
             cosignature = $3",
        )
        .bind(tree_size)
        .bind(witness_key)
        .bind(cosignature)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM audit_cosignatures WHERE tree_size NOT IN \
             (SELECT DISTINCT tree_size FROM audit_cosignatures ORDER BY tree_size DESC LIMIT $1)",
        )
        .bind(COSIGNED_HEADS_KEPT)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The co-signatures (JSON) of the head of `tree_size`.
    pub async fn cosignatures(&self, tree_size: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT cosignature FROM audit_cosignatures WHERE tree_size = $1 ORDER BY witness_key",
        )
        .bind(tree_size)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The size of the newest co-signed head.
    pub async fn latest_cosigned_size(&self) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MAX(tree_size) FROM audit_cosignatures")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
