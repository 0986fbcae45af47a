//! Key records and their wrapped splits (DESIGN §4.2), plus the small
//! coordinator state the lifecycle needs: wrapped secrets, settings and
//! sequence counters.

use sqlx::{Any, Transaction};

use super::audit_log::insert_outbox_in;
use super::{OutboxEntry, Store, StoreError, conflict_or};

/// A key's status column. `retired` (past expiration) and `deleted` (past
/// TTL) follow from time and are not stored.
pub mod status {
    /// Generated, waiting for the Type-2's acknowledgement; never published.
    pub const PENDING: &str = "pending";
    /// Both splits safe; published while activation <= now < expiration.
    pub const ACTIVE: &str = "active";
    /// Withdrawn from publication and from split serving.
    pub const REVOKED: &str = "revoked";
}

/// One key: public parts, times (Unix ms) and signatures. Splits are in
/// [`StoredSplit`]s.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRecord {
    /// UUID or sequence id.
    pub id: String,
    /// The use case whose key set it belongs to.
    pub use_case: String,
    /// See [`status`].
    pub status: String,
    /// Raw X25519 public key.
    pub public_key: Vec<u8>,
    /// Tink JSON public keyset.
    pub public_keyset: String,
    /// Unix ms.
    pub creation_time: i64,
    /// Unix ms.
    pub activation_time: i64,
    /// Unix ms.
    pub expiration_time: i64,
    /// Unix ms: splits are served until then.
    pub ttl_time: i64,
    /// The Type-1's public key signature, base64.
    pub signature: String,
    /// The Type-2's, base64 (empty until acknowledged).
    pub peer_signature: String,
    /// Failed handover attempts so far.
    pub handover_attempts: i64,
    /// Unix ms of the next handover attempt.
    pub next_attempt_at: i64,
    /// Unix ms of revocation.
    pub revoked_at: Option<i64>,
}

/// A split wrapped by one KEK.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredSplit {
    /// The KEK.
    pub kek_uri: String,
    /// The wrapped split.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for StoredSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSplit")
            .field("kek_uri", &self.kek_uri)
            .finish_non_exhaustive()
    }
}

/// A pending key with its sealed handover payload.
#[derive(sqlx::FromRow)]
struct PendingHandover {
    #[sqlx(flatten)]
    key: KeyRecord,
    handover: Vec<u8>,
}

/// A split with the key it belongs to.
#[derive(sqlx::FromRow)]
struct KeySplit {
    key_id: String,
    #[sqlx(flatten)]
    split: StoredSplit,
}

const KEY_COLUMNS: &str = "id, use_case, status, public_key, public_keyset, creation_time, activation_time, \
     expiration_time, ttl_time, signature, peer_signature, handover_attempts, next_attempt_at, revoked_at";

async fn insert_key_in(
    tx: &mut Transaction<'static, Any>,
    key: &KeyRecord,
    splits: &[StoredSplit],
    handover: Option<&[u8]>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO keys (id, use_case, status, public_key, public_keyset, creation_time, activation_time, \
         expiration_time, ttl_time, signature, peer_signature, handover, handover_attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&key.id)
    .bind(&key.use_case)
    .bind(&key.status)
    .bind(&key.public_key)
    .bind(&key.public_keyset)
    .bind(key.creation_time)
    .bind(key.activation_time)
    .bind(key.expiration_time)
    .bind(key.ttl_time)
    .bind(&key.signature)
    .bind(&key.peer_signature)
    .bind(handover)
    .bind(key.handover_attempts)
    .bind(key.next_attempt_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| conflict_or(e, || format!("key `{}`", key.id)))?;
    for split in splits {
        sqlx::query("INSERT INTO key_splits (key_id, kek_uri, ciphertext, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.id)
            .bind(&split.kek_uri)
            .bind(&split.ciphertext)
            .bind(key.creation_time)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A transaction holding the key-generation lock: of several replicas, one
/// at a time counts the live keys and generates the missing ones.
pub struct KeyGenerationTx {
    tx: Transaction<'static, Any>,
}

impl KeyGenerationTx {
    /// Keys of `use_case` that are pending or active and expire after `horizon_ms`.
    pub async fn live_keys(&mut self, use_case: &str, horizon_ms: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) AS n FROM keys WHERE use_case = $1 AND status IN ('pending', 'active') \
             AND expiration_time > $2",
        )
        .bind(use_case)
        .bind(horizon_ms)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// The next value of the use case's sequence counter (from 1).
    pub async fn next_sequence(&mut self, use_case: &str) -> Result<u64, StoreError> {
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO key_sequences (use_case, next_value) VALUES ($1, 1) \
             ON CONFLICT (use_case) DO UPDATE SET next_value = key_sequences.next_value + 1 \
             RETURNING next_value",
        )
        .bind(use_case)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(u64::try_from(next).unwrap_or(0))
    }

    /// Stores a new key with its splits (and, on a Type-1, the sealed
    /// handover payload).
    pub async fn insert(
        &mut self,
        key: &KeyRecord,
        splits: &[StoredSplit],
        handover: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        insert_key_in(&mut self.tx, key, splits, handover).await
    }

    /// Writes the audit entry of a generated key into the outbox, to commit
    /// with it.
    pub async fn outbox(&mut self, entry: &OutboxEntry) -> Result<(), StoreError> {
        insert_outbox_in(&mut self.tx, entry).await
    }

    /// Makes the new keys durable and releases the lock.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Starts a transaction holding the key-generation lock.
    pub async fn lock_key_generation(&self, now_ms: i64) -> Result<KeyGenerationTx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE locks SET held_at = $1 WHERE name = 'key_generation'")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        Ok(KeyGenerationTx { tx })
    }

    /// Stores a key received from the Type-1 (with its wrapped split B),
    /// and `audit` in the same transaction.
    pub async fn insert_received_key(
        &self,
        key: &KeyRecord,
        splits: &[StoredSplit],
        audit: &OutboxEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_key_in(&mut tx, key, splits, None).await?;
        insert_outbox_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One key.
    pub async fn key(&self, id: &str) -> Result<KeyRecord, StoreError> {
        sqlx::query_as(&format!("SELECT {KEY_COLUMNS} FROM keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("key `{id}`")))
    }

    /// Every key of a use case (or all), newest first.
    pub async fn keys(&self, use_case: Option<&str>) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE ($1 IS NULL OR use_case = $1) ORDER BY creation_time DESC, id"
        ))
        .bind(use_case)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The published keys: active, activation <= now < expiration, newest
    /// expiration first, at most `limit`.
    pub async fn published_keys(
        &self,
        use_case: &str,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE use_case = $1 AND status = 'active' \
             AND activation_time <= $2 AND expiration_time > $2 ORDER BY expiration_time DESC, id LIMIT $3"
        ))
        .bind(use_case)
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Pending keys whose next handover attempt is due, with their sealed
    /// payloads.
    pub async fn due_handovers(
        &self,
        now_ms: i64,
    ) -> Result<Vec<(KeyRecord, Vec<u8>)>, StoreError> {
        let rows: Vec<PendingHandover> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS}, handover FROM keys WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND handover IS NOT NULL ORDER BY creation_time, id"
        ))
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.key, row.handover))
            .collect())
    }

    /// Marks a pending key active with the peer's signature; false if it was
    /// not pending (dropped or already active). `audit` commits with it.
    pub async fn activate_key(
        &self,
        id: &str,
        peer_signature: &str,
        audit: &OutboxEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE keys SET status = 'active', peer_signature = $1, handover = NULL \
             WHERE id = $2 AND status = 'pending'",
        )
        .bind(peer_signature)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let activated = done.rows_affected() == 1;
        if activated {
            insert_outbox_in(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(activated)
    }

    /// Records a failed handover attempt and when to try again.
    pub async fn reschedule_handover(
        &self,
        id: &str,
        attempts: i64,
        next_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE keys SET handover_attempts = $1, next_attempt_at = $2 WHERE id = $3 AND status = 'pending'")
            .bind(attempts)
            .bind(next_at_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revokes a key: out of publication and split serving at once; the
    /// entry `audit` makes of it commits in the same transaction.
    pub async fn revoke_key(
        &self,
        id: &str,
        now_ms: i64,
        audit: impl FnOnce(&KeyRecord) -> OutboxEntry,
    ) -> Result<KeyRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        let key: KeyRecord = sqlx::query_as(&format!(
            "UPDATE keys SET status = 'revoked', revoked_at = $1, handover = NULL WHERE id = $2 \
             RETURNING {KEY_COLUMNS}"
        ))
        .bind(now_ms)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("key `{id}`")))?;
        insert_outbox_in(&mut tx, &audit(&key)).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Deletes keys (and their splits) matching: past TTL, or pending since
    /// before `pending_cutoff_ms`. Returns (id, was_pending) of each.
    pub async fn purge_keys(
        &self,
        now_ms: i64,
        pending_cutoff_ms: i64,
        audit: impl Fn(&str, bool) -> OutboxEntry,
    ) -> Result<Vec<(String, bool)>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, status FROM keys WHERE ttl_time <= $1 OR (status = 'pending' AND creation_time <= $2)",
        )
        .bind(now_ms)
        .bind(pending_cutoff_ms)
        .fetch_all(&mut *tx)
        .await?;
        let mut purged = Vec::with_capacity(rows.len());
        for (id, status) in rows {
            sqlx::query("DELETE FROM key_splits WHERE key_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM keys WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            let was_pending = status == status::PENDING;
            insert_outbox_in(&mut tx, &audit(&id, was_pending)).await?;
            purged.push((id, was_pending));
        }
        tx.commit().await?;
        Ok(purged)
    }

    /// Live keys (not revoked, before their TTL) that have a split wrapped
    /// by `source_kek` but none by `target_kek`: what a re-wrap must do.
    /// Returns each key's id and its `source_kek` split.
    pub async fn splits_missing_kek(
        &self,
        source_kek: &str,
        target_kek: &str,
        now_ms: i64,
    ) -> Result<Vec<(String, StoredSplit)>, StoreError> {
        let rows: Vec<KeySplit> = sqlx::query_as(
            "SELECT s.key_id, s.kek_uri, s.ciphertext FROM key_splits s JOIN keys k ON k.id = s.key_id \
             WHERE s.kek_uri = $1 AND k.status <> 'revoked' AND k.ttl_time > $2 \
             AND NOT EXISTS (SELECT 1 FROM key_splits t WHERE t.key_id = s.key_id AND t.kek_uri = $3) \
             ORDER BY s.key_id",
        )
        .bind(source_kek)
        .bind(now_ms)
        .bind(target_kek)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.key_id, row.split))
            .collect())
    }

    /// Adds a split wrapped by one more KEK. Returns false when the key
    /// already has one under that KEK (another replica re-wrapped first) or
    /// is gone (purged meanwhile). `audit` commits with it.
    pub async fn add_split(
        &self,
        key_id: &str,
        split: &StoredSplit,
        now_ms: i64,
        audit: &OutboxEntry,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO key_splits (key_id, kek_uri, ciphertext, created_at) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM keys WHERE id = $1) \
             ON CONFLICT (key_id, kek_uri) DO NOTHING",
        )
        .bind(key_id)
        .bind(&split.kek_uri)
        .bind(&split.ciphertext)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let added = done.rows_affected() == 1;
        if added {
            insert_outbox_in(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// A key's wrapped splits.
    pub async fn splits(&self, key_id: &str) -> Result<Vec<StoredSplit>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kek_uri, ciphertext FROM key_splits WHERE key_id = $1 ORDER BY kek_uri",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A wrapped secret by name.
    pub async fn wrapped_secret(&self, name: &str) -> Result<Option<StoredSplit>, StoreError> {
        Ok(
            sqlx::query_as("SELECT kek_uri, ciphertext FROM wrapped_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores a wrapped secret unless one of that name exists (another
    /// replica won the race); the caller then reads the winner's.
    pub async fn insert_wrapped_secret_if_absent(
        &self,
        name: &str,
        secret: &StoredSplit,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO wrapped_secrets (name, kek_uri, ciphertext, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(&secret.kek_uri)
        .bind(&secret.ciphertext)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes every wrapped secret whose name starts with `prefix`,
    /// except those named in `keep`; returns how many.
    pub async fn delete_wrapped_secrets_with_prefix(
        &self,
        prefix: &str,
        keep: &[String],
    ) -> Result<u64, StoreError> {
        // LIKE with the prefix's own wildcards escaped: the same in SQLite
        // and PostgreSQL.
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mut sql = "DELETE FROM wrapped_secrets WHERE name LIKE $1 ESCAPE '\\'".to_owned();
        for n in 0..keep.len() {
            sql.push_str(&format!(" AND name <> ${}", n + 2));
        }
        let mut query = sqlx::query(&sql).bind(format!("{escaped}%"));
        for name in keep {
            query = query.bind(name);
        }
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    /// A setting.
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Sets a setting.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets `name` to `value` unless it is set; whether this call set it
    /// (replicas racing agree on the first value).
    pub async fn insert_setting_if_absent(
        &self,
        name: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
