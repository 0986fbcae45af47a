//! The transparency log behind [`Audit`](super::Audit) (DESIGN §7.2).
//!
//! Appends go through one writer task per broker. It takes whatever is
//! queued (up to a batch limit), writes it in one transaction under the
//! `audit` lock row, and answers every waiting request once the batch is
//! durable: each request that must be audited waits for its own entry, and
//! concurrent requests share one commit. The lock row serialises batches of
//! all replicas on one database, so the log has one total order.
//!
//! Each entry is canonical JSON (RFC 8785) carrying its own index; its leaf
//! hash and every perfect subtree it completes are stored as it is appended.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::KeyWrapper;
use idp::Clock;
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use super::{Audit, AuditEntry, AuditEvent, EntryKind, EventKind};
use crate::secrets::{SecretError, secret_or_create};
use crate::storage::{Store, StoreError, StoredHead};
use crate::time::unix_ms;
use transparency::merkle::{self, Hash};
use transparency::{Cosignature, EntryInclusion};
pub use transparency::{STH_CONTEXT, SignedTreeHead};

const SIGNING_SECRET: &str = "audit_signing_key";
const MAX_BATCH: usize = 512;
/// One entry, read back through [`AuditEntry`] ([`TransparencyLog::events`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoggedEvent {
    /// Position in the total order, from 1 (log index + 1).
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    /// What happened, e.g. `adtech.created`.
    pub kind: String,
    /// `{"actor", "details"}`; never a secret.
    pub body: serde_json::Value,
}

struct Pending {
    at_ms: i64,
    /// `None`: only move the outbox into the log.
    event: Option<AuditEvent>,
    done: oneshot::Sender<Result<i64, String>>,
}

/// The audit log of one broker.
pub struct TransparencyLog {
    queue: mpsc::Sender<Pending>,
    store: Store,
    signer: Ed25519KeyPair,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TransparencyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransparencyLog").finish_non_exhaustive()
    }
}

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing key could not be loaded.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A proof was asked for sizes or indexes the log does not have.
    #[error("{0}")]
    OutOfRange(String),
}

/// The key whose publication `event` records, if it is one a key manifest
/// proves: the Type-1's activation or the Type-2's receipt.
fn proves_key(event: &AuditEvent) -> Option<&str> {
    let kind = match &event.kind {
        EntryKind::Known(kind) => *kind,
        EntryKind::Other(_) => return None,
    };
    KEY_ENTRY_KINDS
        .contains(&kind)
        .then(|| event.details["keyId"].as_str())
        .flatten()
}

/// The entries a key manifest's inclusion proofs point at.
pub const KEY_ENTRY_KINDS: [EventKind; 2] = [EventKind::KeyActivated, EventKind::KeyReceived];

/// The canonical JSON of the entry at `index`.
pub fn canonical_entry(index: i64, at_ms: i64, event: &AuditEvent) -> String {
    event.entry(index, at_ms).canonical()
}

async fn write_batch(
    store: &Store,
    now_ms: i64,
    batch: &[Pending],
) -> Result<Vec<i64>, StoreError> {
    let mut tx = store.lock_audit(now_ms).await?;
    let size = tx.size().await?;
    // The outbox first: its entries were committed with their changes,
    // before anything in this batch was asked for.
    let outbox: Vec<(i64, AuditEvent)> = tx
        .take_outbox()
        .await?
        .into_iter()
        .map(|entry| {
            let body: serde_json::Value = serde_json::from_str(&entry.body).unwrap_or_default();
            let event = AuditEvent::imported(
                &entry.kind,
                body["actor"].as_str().unwrap_or("unknown"),
                body["details"].clone(),
            );
            (entry.at_ms, event)
        })
        .collect();
    let asked = batch
        .iter()
        .filter_map(|p| p.event.as_ref().map(|e| (p.at_ms, e)));
    let events: Vec<(i64, &AuditEvent)> =
        outbox.iter().map(|(at, e)| (*at, e)).chain(asked).collect();
    let mut fresh: HashMap<(u32, u64), Hash> = HashMap::new();
    let mut appended = Vec::with_capacity(events.len());
    for (k, (at_ms, event)) in events.iter().enumerate() {
        let index = size + i64::try_from(k).unwrap_or(i64::MAX);
        let entry = canonical_entry(index, *at_ms, event);
        tx.insert_entry(index, &entry).await?;
        if let Some(key_id) = proves_key(event) {
            tx.index_key_entry(key_id, event.kind.as_str(), index)
                .await?;
        }
        let position = u64::try_from(index).unwrap_or(0);
        let mut hash = merkle::leaf_hash(entry.as_bytes());
        let (mut level, mut i) = (0u32, position);
        tx.insert_node(level, i, &hash).await?;
        fresh.insert((level, i), hash);
        // A right child completes its parent.
        while i & 1 == 1 {
            let sibling = match fresh.get(&(level, i - 1)) {
                Some(h) => *h,
                None => {
                    let stored = tx.node(level, i - 1).await?.ok_or_else(|| {
                        StoreError::Corrupt(format!("audit node ({level}, {}) is missing", i - 1))
                    })?;
                    stored
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("audit node is not 32 bytes".into()))?
                }
            };
            hash = merkle::node_hash(&sibling, &hash);
            level += 1;
            i >>= 1;
            tx.insert_node(level, i, &hash).await?;
            fresh.insert((level, i), hash);
        }
        appended.push(index);
    }
    tx.commit().await?;
    // Each asked-for event's index, in batch order; -1 for a flush.
    let mut asked_indexes = appended[outbox.len()..].iter();
    Ok(batch
        .iter()
        .map(|p| match p.event {
            Some(_) => asked_indexes.next().copied().unwrap_or(-1),
            None => -1,
        })
        .collect())
}

impl TransparencyLog {
    /// Opens the log and starts its writer, which first moves the outbox
    /// (`audit_events`) into the tree.
    pub async fn open(
        store: Store,
        storage_kek: Arc<dyn KeyWrapper>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<TransparencyLog>, LogError> {
        let now = unix_ms(clock.now());
        let pkcs8 =
            secret_or_create::<SecretError>(&store, &storage_kek, SIGNING_SECRET, now, || {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                Ed25519KeyPair::generate_pkcs8(&rng)
                    .map(|doc| Zeroizing::new(doc.as_ref().to_vec()))
                    .map_err(|_| SecretError::Generate(SIGNING_SECRET.into()))
            })
            .await?;
        let signer = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| StoreError::Corrupt("the audit signing key does not decode".into()))?;

        let (queue, mut rx) = mpsc::channel::<Pending>(4096);
        let writer_store = store.clone();
        let writer_clock = clock.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let result = write_batch(&writer_store, unix_ms(writer_clock.now()), &batch).await;
                match result {
                    Ok(indexes) => {
                        for (pending, index) in batch.into_iter().zip(indexes) {
                            let _ = pending.done.send(Ok(index));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "audit batch failed");
                        for pending in batch {
                            let _ = pending.done.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        let log = Arc::new(TransparencyLog {
            queue,
            store,
            signer,
            clock,
        });
        // Entries of changes committed before a crash (or by the interim
        // table of older versions) reach the log now.
        log.flush().await?;
        log.index_earlier_key_entries().await?;
        Ok(log)
    }

    /// Indexes the key entries appended before `audit_key_entries` existed
    /// (migration 0011), once per database: without it, keys published
    /// before an upgrade could not be proven until they were replaced.
    async fn index_earlier_key_entries(&self) -> Result<(), LogError> {
        const DONE: &str = "audit_key_entries_backfilled";
        if self.store.setting(DONE).await?.is_some() {
            return Ok(());
        }
        let kinds = KEY_ENTRY_KINDS.map(EventKind::as_str);
        for (index, text) in self.store.audit_entries_of_kinds(&kinds).await? {
            let Ok(entry) = AuditEntry::parse(&text) else {
                continue;
            };
            let kind = entry.kind.as_str();
            if let (true, Some(key_id)) = (kinds.contains(&kind), entry.details["keyId"].as_str()) {
                self.store.index_key_entry(key_id, kind, index).await?;
            }
        }
        self.store.set_setting(DONE, "1").await?;
        Ok(())
    }

    /// Sends one request to the writer and waits for its answer.
    async fn ask(&self, at_ms: i64, event: Option<AuditEvent>) -> Result<i64, StoreError> {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Pending { at_ms, event, done })
            .await
            .map_err(|_| StoreError::Corrupt("the audit writer stopped".into()))?;
        match answer.await {
            Ok(Ok(index)) => Ok(index),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("audit append failed: {e}"))),
            Err(_) => Err(StoreError::Corrupt("the audit writer stopped".into())),
        }
    }

    /// The log's Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.signer.public_key().as_ref());
        key
    }

    async fn root(&self, size: u64) -> Result<Hash, LogError> {
        let nodes = self.store.audit_nodes(&merkle::decompose(0, size)).await?;
        merkle::range_hash(0, size, &nodes)
            .ok_or_else(|| StoreError::Corrupt("audit tree nodes are missing".into()).into())
    }

    /// Entries with `start <= index < end`, as stored, with their leaf hashes.
    pub async fn entries(
        &self,
        start: i64,
        end: i64,
    ) -> Result<Vec<crate::storage::StoredEntry>, LogError> {
        Ok(self.store.audit_entries(start, end).await?)
    }

    /// Up to `limit` entries after the first `after`, parsed, in order: a
    /// convenience view for tests and tools (the API serves the canonical
    /// text).
    pub async fn events(&self, after: i64, limit: i64) -> Result<Vec<LoggedEvent>, LogError> {
        let start = after.max(0);
        self.entries(start, start.saturating_add(limit))
            .await?
            .into_iter()
            .map(|stored| {
                let entry = AuditEntry::parse(&stored.entry).map_err(|e| {
                    StoreError::Corrupt(format!("audit entry {}: {e}", stored.index))
                })?;
                Ok(LoggedEvent {
                    seq: entry.index + 1,
                    at: entry.time,
                    kind: entry.kind.as_str().to_owned(),
                    body: json!({ "actor": entry.actor, "details": entry.details }),
                })
            })
            .collect()
    }

    /// The current signed tree head; signs a new one when entries arrived
    /// since the last.
    pub async fn sth(&self) -> Result<SignedTreeHead, LogError> {
        let size = self.store.audit_size().await?;
        let latest = self.store.latest_head().await?;
        let head = match latest {
            Some(head) if head.tree_size == size => head,
            _ => {
                let root = self.root(u64::try_from(size).unwrap_or(0)).await?;
                let timestamp = unix_ms(self.clock.now());
                let message = SignedTreeHead::message(
                    u64::try_from(size).unwrap_or(0),
                    &B64.encode(root),
                    timestamp,
                );
                let head = StoredHead {
                    tree_size: size,
                    root: root.to_vec(),
                    timestamp,
                    signature: self.signer.sign(&message).as_ref().to_vec(),
                };
                self.store.insert_head(&head).await?;
                // A concurrent caller (or replica) may have stored another
                // head of this size first: serve the one that is kept, or a
                // witness co-signs a head this log does not have.
                self.store.head_of_size(size).await?.unwrap_or(head)
            }
        };
        Ok(self.signed(&head))
    }

    /// A stored head of this log as readers see it.
    fn signed(&self, head: &StoredHead) -> SignedTreeHead {
        SignedTreeHead {
            tree_size: u64::try_from(head.tree_size).unwrap_or(0),
            root_hash: B64.encode(&head.root),
            timestamp: head.timestamp,
            signature: B64.encode(&head.signature),
            public_key: B64.encode(self.public_key()),
        }
    }

    /// The newest head of this log its witness co-signed, if any.
    pub async fn latest_cosigned(&self) -> Result<Option<SignedTreeHead>, LogError> {
        let Some(size) = self.store.latest_cosigned_size().await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .head_of_size(size)
            .await?
            .map(|head| self.signed(&head)))
    }

    /// This log's key's co-signature of another log's `head`, as the
    /// witness at `witness_url`, at `now_ms`.
    pub fn cosign(&self, head: &SignedTreeHead, witness_url: &str, now_ms: i64) -> Cosignature {
        let signature = self.signer.sign(&Cosignature::message(head, now_ms));
        Cosignature {
            witness: witness_url.to_owned(),
            public_key: B64.encode(self.public_key()),
            cosigned_at: now_ms,
            signature: B64.encode(signature.as_ref()),
        }
    }

    /// Hashes of the given ranges, from stored subtrees.
    async fn hashes(&self, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, LogError> {
        let nodes = self.store.audit_nodes(&merkle::nodes_for(ranges)).await?;
        ranges
            .iter()
            .map(|(a, b)| {
                merkle::range_hash(*a, *b, &nodes).ok_or_else(|| {
                    LogError::Store(StoreError::Corrupt("audit tree nodes are missing".into()))
                })
            })
            .collect()
    }

    async fn checked_size(&self, tree_size: u64) -> Result<(), LogError> {
        let size = u64::try_from(self.store.audit_size().await?).unwrap_or(0);
        if tree_size > size {
            return Err(LogError::OutOfRange(format!("the log has {size} entries")));
        }
        Ok(())
    }

    /// The inclusion proof of entry `index` in the tree of `tree_size`.
    pub async fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, LogError> {
        if index >= tree_size {
            return Err(LogError::OutOfRange("index must be below treeSize".into()));
        }
        self.checked_size(tree_size).await?;
        self.hashes(&merkle::inclusion_ranges(index, tree_size))
            .await
    }

    /// Key `key_id`'s entry in this log (its activation on a Type-1, its
    /// receipt on a Type-2) with its proof in the current signed head.
    pub async fn key_inclusion(&self, key_id: &str) -> Result<Option<EntryInclusion>, LogError> {
        let mut found = None;
        for kind in KEY_ENTRY_KINDS {
            found = self.store.key_entry(key_id, kind.as_str()).await?;
            if found.is_some() {
                break;
            }
        }
        let Some((index, entry)) = found else {
            return Ok(None);
        };
        let head = self.sth().await?;
        let leaf_index = u64::try_from(index).unwrap_or(0);
        let path = self.inclusion_proof(leaf_index, head.tree_size).await?;
        Ok(Some(EntryInclusion {
            entry,
            leaf_index,
            audit_path: path.iter().map(|h| B64.encode(h)).collect(),
            head,
        }))
    }

    /// The consistency proof from `first` to `second` entries.
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, LogError> {
        if first > second {
            return Err(LogError::OutOfRange("first must not exceed second".into()));
        }
        self.checked_size(second).await?;
        self.hashes(&merkle::consistency_ranges(first, second))
            .await
    }

    /// Signs a head at least once a minute while entries arrive.
    pub fn spawn_head_signer(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let log = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = log.sth().await {
                    tracing::warn!(error = %e, "cannot sign an audit tree head");
                }
            }
        })
    }
}

#[async_trait]
impl Audit for TransparencyLog {
    async fn record(&self, at_ms: i64, event: AuditEvent) -> Result<i64, StoreError> {
        self.ask(at_ms, Some(event)).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.ask(unix_ms(self.clock.now()), None).await.map(|_| ())
    }
}
