//! Tables of the audit transparency log. The log logic (canonical entries,
//! tree maintenance, proofs, signing) is in `crate::audit`; this is only
//! storage.

use std::collections::HashMap;

use sqlx::{Any, Transaction};

use super::{Store, StoreError};

/// A stored entry: position, canonical JSON, and its leaf hash if the tree
/// holds one for that position.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredEntry {
    /// Position in the log, from 0.
    #[sqlx(rename = "idx")]
    pub index: i64,
    /// The canonical JSON text.
    pub entry: String,
    /// `audit_nodes` level 0 at this position.
    #[sqlx(rename = "leaf")]
    pub leaf_hash: Option<Vec<u8>>,
}

/// A signed tree head as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredHead {
    /// Leaves covered.
    pub tree_size: i64,
    /// RFC 9162 root hash.
    pub root: Vec<u8>,
    /// Unix ms of signing.
    pub timestamp: i64,
    /// Ed25519 signature.
    pub signature: Vec<u8>,
}

/// Where a key's entry is; the first entry of a key and kind stays.
const INDEX_KEY_ENTRY: &str = "INSERT INTO audit_key_entries (key_id, kind, idx) \
     VALUES ($1, $2, $3) ON CONFLICT (key_id, kind) DO NOTHING";

/// Records where key `key_id`'s entry of `kind` is, in a transaction or not.
async fn index_key_entry<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    key_id: &str,
    kind: &str,
    idx: i64,
) -> Result<(), StoreError> {
    sqlx::query(INDEX_KEY_ENTRY)
        .bind(key_id)
        .bind(kind)
        .bind(idx)
        .execute(db)
        .await?;
    Ok(())
}

/// A transaction holding the `audit` lock: appends from every replica are
/// serialised, so the log has one total order.
pub struct AuditTx {
    tx: Transaction<'static, Any>,
}

impl AuditTx {
    /// The number of entries, read under the lock: the leaves of the tree
    /// (an entries row without its leaf is not part of the log).
    pub async fn size(&mut self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM audit_nodes WHERE level = 0",
        )
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// A stored subtree hash.
    pub async fn node(&mut self, level: u32, idx: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT hash FROM audit_nodes WHERE level = $1 AND idx = $2")
                .bind(i64::from(level))
                .bind(i64::try_from(idx).unwrap_or(i64::MAX))
                .fetch_optional(&mut *self.tx)
                .await?,
        )
    }

    /// Appends an entry at `idx`.
    pub async fn insert_entry(&mut self, idx: i64, entry: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (idx, entry) VALUES ($1, $2)")
            .bind(idx)
            .bind(entry)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records that entry `idx` is key `key_id`'s entry of `kind`; a later
    /// entry of the same key and kind leaves the first in place.
    pub async fn index_key_entry(
        &mut self,
        key_id: &str,
        kind: &str,
        idx: i64,
    ) -> Result<(), StoreError> {
        index_key_entry(&mut *self.tx, key_id, kind, idx).await
    }

    /// Stores a completed subtree hash.
    pub async fn insert_node(
        &mut self,
        level: u32,
        idx: u64,
        hash: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_nodes (level, idx, hash) VALUES ($1, $2, $3)")
            .bind(i64::from(level))
            .bind(i64::try_from(idx).unwrap_or(i64::MAX))
            .bind(hash)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Takes every outbox entry, oldest first: they are deleted with this
    /// transaction, so each reaches the log exactly once.
    pub async fn take_outbox(&mut self) -> Result<Vec<OutboxEntry>, StoreError> {
        // One statement, so it deletes exactly the rows it returns. A
        // `SELECT` then `DELETE WHERE seq <= last` loses entries on
        // PostgreSQL: a writer that took a lower `seq` but committed after
        // the `SELECT` is deleted by the `DELETE` without being read.
        let mut rows: Vec<(i64, i64, String, String)> =
            sqlx::query_as("DELETE FROM audit_events RETURNING seq, at, kind, body")
                .fetch_all(&mut *self.tx)
                .await?;
        rows.sort_unstable_by_key(|(seq, ..)| *seq);
        Ok(rows
            .into_iter()
            .map(|(_, at_ms, kind, body)| OutboxEntry { at_ms, kind, body })
            .collect())
    }

    /// Makes the batch durable and releases the lock.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Starts a transaction holding the audit lock.
    pub async fn lock_audit(&self, now_ms: i64) -> Result<AuditTx, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE locks SET held_at = $1 WHERE name = 'audit'")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        Ok(AuditTx { tx })
    }

    /// The number of log entries (leaves of the tree).
    pub async fn audit_size(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM audit_nodes WHERE level = 0",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Entries with `start <= idx < end`, with their leaf hashes.
    pub async fn audit_entries(
        &self,
        start: i64,
        end: i64,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT l.idx AS idx, l.entry AS entry, n.hash AS leaf FROM audit_log l \
             LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = l.idx \
             WHERE l.idx >= $1 AND l.idx < $2 ORDER BY l.idx",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Entries whose kind is one of `kinds` (each at most once per key, so
    /// few), with their positions, by a text match on the canonical form.
    pub async fn audit_entries_of_kinds(
        &self,
        kinds: &[&str],
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let mut out = Vec::new();
        for kind in kinds {
            let pattern = format!("%\"kind\":\"{kind}\"%");
            let rows: Vec<(i64, String)> =
                sqlx::query_as("SELECT idx, entry FROM audit_log WHERE entry LIKE $1")
                    .bind(pattern)
                    .fetch_all(&self.pool)
                    .await?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// [`AuditTx::index_key_entry`] outside an append, for entries already
    /// in the log.
    pub async fn index_key_entry(
        &self,
        key_id: &str,
        kind: &str,
        idx: i64,
    ) -> Result<(), StoreError> {
        index_key_entry(&self.pool, key_id, kind, idx).await
    }

    /// The position of key `key_id`'s entry of `kind`, with its text.
    pub async fn key_entry(
        &self,
        key_id: &str,
        kind: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT l.idx, l.entry FROM audit_key_entries k \
             JOIN audit_log l ON l.idx = k.idx WHERE k.key_id = $1 AND k.kind = $2",
        )
        .bind(key_id)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The stored subtree hashes among `ids` (one query).
    pub async fn audit_nodes(
        &self,
        ids: &[(u32, u64)],
    ) -> Result<HashMap<(u32, u64), [u8; 32]>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        // Batches keep the statement's parameter count small.
        for chunk in ids.chunks(64) {
            let clauses: Vec<String> = (0..chunk.len())
                .map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "SELECT level, idx, hash FROM audit_nodes WHERE {}",
                clauses.join(" OR ")
            );
            let mut query = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(&sql);
            for (level, idx) in chunk {
                query = query
                    .bind(i64::from(*level))
                    .bind(i64::try_from(*idx).unwrap_or(i64::MAX));
            }
            for (level, idx, hash) in query.fetch_all(&self.pool).await? {
                let hash: [u8; 32] = hash.try_into().map_err(|_| {
                    StoreError::Corrupt(format!("audit node ({level}, {idx}) is not 32 bytes"))
                })?;
                out.insert(
                    (
                        u32::try_from(level).unwrap_or(0),
                        u64::try_from(idx).unwrap_or(0),
                    ),
                    hash,
                );
            }
        }
        Ok(out)
    }

    /// The newest signed tree head.
    pub async fn latest_head(&self) -> Result<Option<StoredHead>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT tree_size, root, timestamp, signature FROM audit_heads ORDER BY tree_size DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Stores a signed head (a concurrent replica may have stored one for
    /// the same size: the first stays).
    pub async fn insert_head(&self, head: &StoredHead) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_heads (tree_size, root, timestamp, signature) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tree_size) DO NOTHING",
        )
        .bind(head.tree_size)
        .bind(&head.root)
        .bind(head.timestamp)
        .bind(&head.signature)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Entries in the outbox, not yet in the log (for tests and tools).
    pub async fn outbox_len(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// An audit entry written in the same transaction as the change it
/// records, into the outbox (`audit_events`); the log's writer moves it into
/// the tree in its own transaction (`AuditTx::take_outbox`). So a change is
/// never committed without its entry, whatever fails after the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Unix ms of the change.
    pub at_ms: i64,
    /// The event kind's name.
    pub kind: String,
    /// `{"actor", "details"}` as JSON text.
    pub body: String,
}

/// Writes `entry` into the outbox within the change's transaction.
pub(super) async fn insert_outbox_in(
    tx: &mut Transaction<'static, Any>,
    entry: &OutboxEntry,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_events (at, kind, body) VALUES ($1, $2, $3)")
        .bind(entry.at_ms)
        .bind(&entry.kind)
        .bind(&entry.body)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
