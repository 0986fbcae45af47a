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
    /// Issued to another credential; left in place for its owner.
    OtherOwner,
}

/// Whom a nonce was issued to: the credential's `sub` and ad tech.
#[derive(Clone, Copy, Debug)]
pub struct NonceOwner<'a> {
    /// The ad tech of the credential.
    pub adtech: &'a str,
    /// The credential's `sub`.
    pub subject: &'a str,
}

impl Store {
    /// Records a freshly issued nonce and whom it was issued to.
    pub async fn insert_nonce(
        &self,
        nonce: &[u8],
        owner: NonceOwner<'_>,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nonces (nonce, expires_at, adtech, subject) VALUES ($1, $2, $3, $4)",
        )
        .bind(nonce)
        .bind(expires_at_ms)
        .bind(owner.adtech)
        .bind(owner.subject)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, || "nonce".to_owned()))?;
        Ok(())
    }

    /// Uses a nonce up, if `owner` is whom it was issued to. One statement,
    /// so of two replicas consuming the same nonce at once exactly one sees
    /// `Consumed`. A nonce presented by another credential stays for its
    /// owner: whoever saw it cannot burn it.
    pub async fn consume_nonce(
        &self,
        nonce: &[u8],
        owner: NonceOwner<'_>,
        now_ms: i64,
    ) -> Result<NonceOutcome, StoreError> {
        let expires_at: Option<i64> = sqlx::query_scalar(
            "DELETE FROM nonces WHERE nonce = $1 AND adtech = $2 AND subject = $3 RETURNING expires_at",
        )
        .bind(nonce)
        .bind(owner.adtech)
        .bind(owner.subject)
        .fetch_optional(&self.pool)
        .await?;
        if expires_at.is_none() {
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT expires_at FROM nonces WHERE nonce = $1")
                    .bind(nonce)
                    .fetch_optional(&self.pool)
                    .await?;
            if exists.is_some() {
                return Ok(NonceOutcome::OtherOwner);
            }
        }
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
