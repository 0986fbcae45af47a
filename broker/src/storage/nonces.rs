use super::{Store, StoreError, conflict_or};

/// What consuming a challenge nonce found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceOutcome {
    /// The nonce was live and is now used up.
    Consumed,
    /// The nonce existed but had expired (it is removed all the same).
    Expired,
    /// Never issued, or already consumed: a replay.
    Unknown,
}

impl Store {
    /// Records a freshly issued nonce.
    pub async fn insert_nonce(&self, nonce: &[u8], expires_at_ms: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO nonces (nonce, expires_at) VALUES ($1, $2)")
            .bind(nonce)
            .bind(expires_at_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, || "nonce".to_owned()))?;
        Ok(())
    }

    /// Uses a nonce up. One statement, so of two replicas consuming the same
    /// nonce at once exactly one sees `Consumed`.
    pub async fn consume_nonce(
        &self,
        nonce: &[u8],
        now_ms: i64,
    ) -> Result<NonceOutcome, StoreError> {
        let expires_at: Option<i64> =
            sqlx::query_scalar("DELETE FROM nonces WHERE nonce = $1 RETURNING expires_at")
                .bind(nonce)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match expires_at {
            None => NonceOutcome::Unknown,
            Some(at) if at <= now_ms => NonceOutcome::Expired,
            Some(_) => NonceOutcome::Consumed,
        })
    }

    /// Deletes expired nonces; returns how many.
    pub async fn purge_expired_nonces(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM nonces WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
