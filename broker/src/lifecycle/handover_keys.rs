//! The Type-2's handover keys: the X25519 keys the Type-1 seals split B to,
//! rotated every `coordinator.handover_key_rotation`.
//!
//! Time is cut into periods of that length and period `p` has its own key,
//! stored as the wrapped secret `handover_key/<p>`. Naming keys by period,
//! not by a counter, lets every Type-2 replica make the same key: the first
//! to store it wins and the others read it. The key of period `p` is current
//! during `p` and still opens handovers for `coordinator.handover_key_overlap`
//! into `p + 1` (at least `keys.handover_timeout`, the longest a sealed split
//! waits at the Type-1). Nothing older opens anything, and is deleted.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::KeyWrapper;
use keys::RecipientKey;
use tokio::sync::Mutex;
use wire::AnnouncedHandoverKey;
use zeroize::Zeroizing;

use super::service::LifecycleError;
use crate::secrets::secret_or_create;
use crate::storage::Store;

/// The key of one period.
struct PeriodKey {
    period: i64,
    key: Arc<RecipientKey>,
}

/// The keys that open handovers during one period: its own and, during the
/// overlap, the previous period's.
#[derive(Clone)]
struct Ring {
    period: i64,
    current: Arc<RecipientKey>,
    previous: Option<Arc<RecipientKey>>,
}

/// The Type-2's handover keys (see the module docs).
pub(super) struct HandoverKeys {
    store: Store,
    storage_kek: Arc<dyn KeyWrapper>,
    rotation_ms: i64,
    overlap_ms: i64,
    /// The ring of the last period asked about; rebuilt when a request
    /// falls in another period or past the overlap.
    ring: Mutex<Option<Ring>>,
}

/// Every handover key's secret name starts with this.
const SECRET_PREFIX: &str = "handover_key";

fn secret_name(period: i64) -> String {
    format!("{SECRET_PREFIX}/{period}")
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

impl HandoverKeys {
    pub(super) fn new(
        store: Store,
        storage_kek: Arc<dyn KeyWrapper>,
        rotation: Duration,
        overlap: Duration,
    ) -> Self {
        HandoverKeys {
            store,
            storage_kek,
            rotation_ms: ms(rotation),
            overlap_ms: ms(overlap),
            ring: Mutex::new(None),
        }
    }

    fn period_of(&self, now_ms: i64) -> i64 {
        now_ms.div_euclid(self.rotation_ms)
    }

    fn in_overlap(&self, now_ms: i64) -> bool {
        now_ms.rem_euclid(self.rotation_ms) < self.overlap_ms
    }

    /// The key of `period`, made at `now_ms` if `create` and it does not
    /// exist.
    async fn key_of(
        &self,
        period: i64,
        create: bool,
        now_ms: i64,
    ) -> Result<Option<PeriodKey>, LifecycleError> {
        let name = secret_name(period);
        let private = if create {
            secret_or_create::<LifecycleError>(
                &self.store,
                &self.storage_kek,
                &name,
                now_ms,
                || {
                    Ok(Zeroizing::new(
                        RecipientKey::generate().private_bytes().to_vec(),
                    ))
                },
            )
            .await?
        } else {
            let Some(stored) = self.store.wrapped_secret(&name).await? else {
                return Ok(None);
            };
            self.storage_kek.unwrap(&stored.ciphertext).await?
        };
        Ok(Some(PeriodKey {
            period,
            key: Arc::new(RecipientKey::from_private_bytes(&private)?),
        }))
    }

    /// The ring at `now_ms`, making the period's key on first use.
    async fn ring(&self, now_ms: i64) -> Result<Ring, LifecycleError> {
        let period = self.period_of(now_ms);
        let overlap = self.in_overlap(now_ms);
        let mut cached = self.ring.lock().await;
        if let Some(ring) = cached.as_ref() {
            // Same period, and the previous key kept only while it may.
            if ring.period == period && (overlap || ring.previous.is_none()) {
                return Ok(ring.clone());
            }
        }
        let current = self
            .key_of(period, true, now_ms)
            .await?
            .ok_or_else(|| LifecycleError::Corrupt("the current handover key vanished".into()))?;
        let previous = if overlap {
            self.key_of(period - 1, false, now_ms).await?
        } else {
            None
        };
        let mut keep = vec![secret_name(period)];
        if overlap {
            keep.push(secret_name(period - 1));
        }
        // A key that opens nothing any more is deleted, so a copy of the
        // database taken later cannot open a split sealed to it (the
        // unversioned `handover_key` of earlier versions included).
        let deleted = self
            .store
            .delete_wrapped_secrets_with_prefix(SECRET_PREFIX, &keep)
            .await?;
        if deleted > 0 {
            tracing::info!(deleted, period, "retired handover keys deleted");
        }
        let ring = Ring {
            period: current.period,
            current: current.key,
            previous: previous.map(|p| p.key),
        };
        *cached = Some(ring.clone());
        Ok(ring)
    }

    /// The current key's public half, and every key that opens handovers
    /// now, as announced at `GET /v1/peer/keys`.
    pub(super) async fn announce(
        &self,
        now_ms: i64,
    ) -> Result<(String, Vec<AnnouncedHandoverKey>), LifecycleError> {
        let ring = self.ring(now_ms).await?;
        let current = B64.encode(ring.current.public_key());
        let mut announced = vec![AnnouncedHandoverKey {
            kid: ring.period.to_string(),
            key: current.clone(),
            not_after: None,
        }];
        if let Some(previous) = &ring.previous {
            announced.push(AnnouncedHandoverKey {
                kid: (ring.period - 1).to_string(),
                key: B64.encode(previous.public_key()),
                not_after: Some(ring.period * self.rotation_ms + self.overlap_ms),
            });
        }
        Ok((current, announced))
    }

    /// Opens split B of `key_id` with whichever key sealed it, if that key
    /// still opens handovers at `now_ms`.
    pub(super) async fn open(
        &self,
        now_ms: i64,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, LifecycleError> {
        let ring = self.ring(now_ms).await?;
        for key in std::iter::once(&ring.current).chain(ring.previous.as_ref()) {
            if let Ok(split) =
                keys::open(key.as_ref(), keys::HANDOVER_INFO, key_id.as_bytes(), sealed)
            {
                return Ok(Some(split));
            }
        }
        Ok(None)
    }
}
