use sqlx::{Any, Transaction};

use super::{Store, StoreError, conflict_or};

/// A stored signing key of the broker's issuer; the private key is wrapped.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredSigningKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// First use, Unix milliseconds.
    pub not_before: i64,
    /// The KEK that wrapped it.
    pub kek_uri: String,
    /// PKCS#8 DER, wrapped by `kek_uri`.
    pub wrapped_key: Vec<u8>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("not_before", &self.not_before)
            .finish_non_exhaustive()
    }
}

/// A transaction holding the `signing_keys` lock: replicas that rotate at
/// the same moment take turns, so exactly one generates each new key.
pub struct SigningKeysTx {
    tx: Transaction<'static, Any>,
}

impl Store {
    /// Every stored signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM signing_keys ORDER BY not_before, kid")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Starts a transaction that holds the signing-key lock until commit.
    pub async fn lock_signing_keys(&self, now_ms: i64) -> Result<SigningKeysTx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE locks SET held_at = $1 WHERE name = 'signing_keys'")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        Ok(SigningKeysTx { tx })
    }
}

impl SigningKeysTx {
    /// The stored keys, as seen inside the lock.
    pub async fn keys(&mut self) -> Result<Vec<StoredSigningKey>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM signing_keys ORDER BY not_before, kid")
                .fetch_all(&mut *self.tx)
                .await?,
        )
    }

    /// Adds a key.
    pub async fn insert(&mut self, key: &StoredSigningKey) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, created_at, not_before, kek_uri, wrapped_key) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.kid)
        .bind(key.created_at)
        .bind(key.not_before)
        .bind(&key.kek_uri)
        .bind(&key.wrapped_key)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| conflict_or(e, || format!("signing key `{}`", key.kid)))?;
        Ok(())
    }

    /// Removes a key that is no longer published.
    pub async fn delete(&mut self, kid: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Makes the changes durable and releases the lock.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}
