//! [`WorkloadKeys`]: the key set a long-running workload decrypts with, refreshed in the
//! background.
//!
//! Semantics (chosen so that a coordinator outage never stops decryption early, and a key
//! never outlives its `ttlTime`):
//! - a successful refresh replaces the set (a key the coordinators stopped releasing, e.g.
//!   revoked, goes at once);
//! - a failed refresh keeps the previous keys, minus those past their `ttlTime`, and is
//!   retried sooner than the normal interval;
//! - every `decrypt` also checks `ttlTime`, so an expired key is refused even between
//!   refreshes.
//!
//! The interval is jittered by ±10 % so that a fleet started together does not refresh in
//! lockstep against the coordinators.

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng as _;
use zeroize::Zeroizing;

use crate::WorkloadError;
use crate::fetch::Fetcher;
use crate::keyset::KeySet;
use crate::lookup::Lookups;

/// After a failed refresh, try again after this long (at most the normal interval).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5 * 60);

/// Something that produces a fresh, fully checked key set.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// One fetch of the configured set.
    async fn fetch(&self) -> Result<KeySet, WorkloadError>;

    /// One fetch of the key `key_id` alone, checked as [`KeySource::fetch`] checks.
    async fn fetch_key(&self, key_id: &str) -> Result<KeySet, WorkloadError>;
}

#[async_trait]
impl KeySource for Fetcher {
    async fn fetch(&self) -> Result<KeySet, WorkloadError> {
        Fetcher::fetch(self).await
    }

    async fn fetch_key(&self, key_id: &str) -> Result<KeySet, WorkloadError> {
        Fetcher::fetch_key(self, key_id).await
    }
}

/// The refreshed key set. Share it as `Arc<WorkloadKeys>`; `decrypt` takes a read lock only
/// for the duration of one HPKE open.
pub struct WorkloadKeys {
    current: RwLock<KeySet>,
    source: Arc<dyn KeySource>,
    interval: Duration,
    lookups: Lookups,
}

impl std::fmt::Debug for WorkloadKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadKeys")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl WorkloadKeys {
    /// Fetches once (which must succeed: a workload without keys should not start serving)
    /// and returns the shared set. Call [`WorkloadKeys::spawn_refresh`] to keep it fresh.
    pub async fn start(
        source: Arc<dyn KeySource>,
        interval: Duration,
    ) -> Result<Arc<Self>, WorkloadError> {
        let first = source.fetch().await?;
        Ok(Arc::new(Self::with_initial(first, source, interval)))
    }

    /// A set starting from `initial` (tests, or a caller that fetched already).
    pub fn with_initial(initial: KeySet, source: Arc<dyn KeySource>, interval: Duration) -> Self {
        Self {
            current: RwLock::new(initial),
            source,
            interval,
            lookups: Lookups::default(),
        }
    }

    /// From a config: a [`Fetcher`] with its refresh interval, first fetch included.
    pub async fn from_config(config: &crate::Config) -> Result<Arc<Self>, WorkloadError> {
        let fetcher = Fetcher::from_config(config).await?;
        Self::start(Arc::new(fetcher), config.refresh_interval).await
    }

    /// Refreshes now. On success the new set replaces the old one; on failure the old keys
    /// stay, except those past `ttlTime`, and the error is returned.
    pub async fn refresh(&self) -> Result<(), WorkloadError> {
        match self.source.fetch().await {
            Ok(fresh) => {
                let count = fresh.len();
                *self.write() = fresh;
                tracing::info!(keys = count, "workload keys refreshed");
                Ok(())
            }
            Err(e) => {
                let (dropped, left) = {
                    let mut current = self.write();
                    let dropped = current.drop_expired();
                    (dropped, current.len())
                };
                tracing::warn!(error = %e, dropped, left, "workload key refresh failed; serving the previous keys");
                Err(e)
            }
        }
    }

    /// Decrypts with key `key_id` (see [`KeySet::decrypt`]).
    pub fn decrypt(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        context_info: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, WorkloadError> {
        self.read().decrypt(key_id, ciphertext, context_info)
    }

    /// Decrypts with key `key_id`, first fetching that key alone from both coordinators if
    /// the set does not hold it (a report encrypted to a key created since the last
    /// refresh). The fetch is shared by concurrent callers, remembered when it finds
    /// nothing, and limited per minute (`lookup`), so ids taken from reports cannot drive
    /// the coordinators; an id it cannot get is [`WorkloadError::UnknownKey`].
    pub async fn decrypt_or_fetch(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        context_info: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, WorkloadError> {
        match self.decrypt(key_id, ciphertext, context_info) {
            Err(WorkloadError::UnknownKey(_)) => {}
            answered => return answered,
        }
        if !self.look_up(key_id).await {
            return Err(WorkloadError::UnknownKey(key_id.to_owned()));
        }
        self.decrypt(key_id, ciphertext, context_info)
    }

    /// Whether `key_id` is held once a lookup (this caller's or one in flight) ends.
    async fn look_up(&self, key_id: &str) -> bool {
        if !self.lookups.may_look_up(key_id, Instant::now()) {
            return false;
        }
        let flight = self.lookups.flight(key_id);
        let found = *flight
            .get_or_init(|| async {
                // A refresh or another flight may have brought it meanwhile.
                if self.read().get(key_id).is_some() {
                    return true;
                }
                if !self.lookups.take_budget(Instant::now()) {
                    tracing::warn!(key_id, "key lookups over their budget; not fetched");
                    return false;
                }
                match self.source.fetch_key(key_id).await {
                    Ok(fetched) => {
                        let found = fetched.get(key_id).is_some();
                        self.write().absorb(fetched);
                        tracing::info!(key_id, found, "key fetched by id");
                        found
                    }
                    Err(e) => {
                        tracing::warn!(key_id, error = %e, "key fetch by id failed");
                        false
                    }
                }
            })
            .await;
        self.lookups.land(key_id, &flight, found, Instant::now());
        found
    }

    /// The ids of the live keys.
    pub fn key_ids(&self) -> Vec<String> {
        self.read().key_ids()
    }

    /// A JSON summary of the live keys (ids and times).
    pub fn summary(&self) -> serde_json::Value {
        self.read().summary()
    }

    /// Runs `f` on the current set (e.g. to export it in dev).
    pub fn with_current<T>(&self, f: impl FnOnce(&KeySet) -> T) -> T {
        f(&self.read())
    }

    /// Refreshes every `interval` ±10 % (after a failure, sooner) until the last
    /// `Arc<WorkloadKeys>` is dropped or the task is aborted.
    pub fn spawn_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        let interval = self.interval;
        tokio::spawn(async move {
            let mut delay = jittered(interval);
            loop {
                tokio::time::sleep(delay).await;
                let Some(keys) = weak.upgrade() else { break };
                delay = match keys.refresh().await {
                    Ok(()) => jittered(interval),
                    Err(_) => jittered(RETRY_AFTER_FAILURE.min(interval)),
                };
            }
        })
    }

    // A poisoned lock means a panic while holding it; the set itself is still consistent
    // (replacement is one assignment), so keep serving rather than panic every caller.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KeySet> {
        self.current.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// `interval` times a uniform factor in [0.9, 1.1].
pub fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::thread_rng().gen_range(0.9..=1.1))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use keys::Aead;

    use super::*;
    use crate::keyset::{HeldKey, ManualClock};

    const HOUR_MS: i64 = 3_600_000;
    const T0: i64 = 1_800_000_000_000;

    fn held(id: &str, ttl_ms: i64) -> (HeldKey, keys::GeneratedKey) {
        let generated = keys::generate(Aead::ChaCha20Poly1305).expect("generate");
        let keyset =
            keys::PrivateKeyset::from_tink_bytes(generated.private_keyset()).expect("parse");
        let key = HeldKey {
            id: id.to_owned(),
            keyset,
            public_keyset_json: generated.public_keyset_json().to_owned(),
            tink_bytes: None,
            creation_ms: T0,
            activation_ms: T0,
            expiration_ms: T0 + HOUR_MS,
            ttl_s: ttl_ms / 1000,
        };
        (key, generated)
    }

    /// Answers queued results in order; fails when the queue is empty.
    struct Scripted(Mutex<VecDeque<Result<KeySet, WorkloadError>>>);

    #[async_trait]
    impl KeySource for Scripted {
        async fn fetch(&self) -> Result<KeySet, WorkloadError> {
            self.0
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or_else(|| Err(WorkloadError::Evidence("coordinators down".into())))
        }

        async fn fetch_key(&self, _key_id: &str) -> Result<KeySet, WorkloadError> {
            self.fetch().await
        }
    }

    fn encrypt(generated: &keys::GeneratedKey) -> Vec<u8> {
        keys::hybrid_encrypt(
            &generated.public_key(),
            generated.aead(),
            b"payload",
            b"ctx",
        )
        .expect("encrypt")
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_keys_until_their_ttl_then_drops_them() {
        let clock = Arc::new(ManualClock::new(T0));
        let (short, short_gen) = held("short", T0 + 10 * HOUR_MS);
        let (long, long_gen) = held("long", T0 + 30 * HOUR_MS);
        let first = KeySet::new(vec![short, long], clock.clone());
        let source = Arc::new(Scripted(Mutex::new(VecDeque::new())));
        let keys = WorkloadKeys::with_initial(first, source, Duration::from_secs(8 * 3600));

        // 8 h later the refresh fails: both keys are still served.
        clock.advance(Duration::from_secs(8 * 3600));
        assert!(keys.refresh().await.is_err());
        assert_eq!(keys.key_ids(), ["long", "short"]);
        assert_eq!(
            keys.decrypt("short", &encrypt(&short_gen), b"ctx")
                .expect("decrypt")
                .as_slice(),
            b"payload"
        );

        // Past the short key's ttl (even before a refresh) it is refused...
        clock.advance(Duration::from_secs(3 * 3600));
        assert!(matches!(
            keys.decrypt("short", &encrypt(&short_gen), b"ctx"),
            Err(WorkloadError::UnknownKey(_))
        ));
        // ...and the next failed refresh drops it; the long one is still served.
        assert!(keys.refresh().await.is_err());
        keys.with_current(|set| assert_eq!(set.keys().count(), 1));
        assert_eq!(
            keys.decrypt("long", &encrypt(&long_gen), b"ctx")
                .expect("decrypt")
                .as_slice(),
            b"payload"
        );

        // Past every ttl nothing is left.
        clock.advance(Duration::from_secs(20 * 3600));
        assert!(keys.refresh().await.is_err());
        assert!(keys.key_ids().is_empty());
    }

    #[tokio::test]
    async fn a_successful_refresh_replaces_the_set() {
        let clock = Arc::new(ManualClock::new(T0));
        let (old, _) = held("old", T0 + 30 * HOUR_MS);
        let (new, new_gen) = held("new", T0 + 30 * HOUR_MS);
        let source = Arc::new(Scripted(Mutex::new(VecDeque::from([Ok(KeySet::new(
            vec![new],
            clock.clone(),
        ))]))));
        let keys = WorkloadKeys::with_initial(
            KeySet::new(vec![old], clock.clone()),
            source,
            Duration::from_secs(60),
        );
        keys.refresh().await.expect("refresh");
        assert_eq!(keys.key_ids(), ["new"]);
        assert!(keys.decrypt("new", &encrypt(&new_gen), b"ctx").is_ok());
        assert!(matches!(
            keys.decrypt("old", b"x", b"ctx"),
            Err(WorkloadError::UnknownKey(_))
        ));
    }

    #[tokio::test]
    async fn a_first_fetch_failure_fails_start() {
        let source = Arc::new(Scripted(Mutex::new(VecDeque::new())));
        assert!(
            WorkloadKeys::start(source, Duration::from_secs(60))
                .await
                .is_err()
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(8 * 3600);
        for _ in 0..1000 {
            let d = jittered(base);
            assert!(d >= base.mul_f64(0.9) && d <= base.mul_f64(1.1), "{d:?}");
        }
    }

    #[test]
    fn the_summary_names_keys_and_times_but_no_material() {
        let clock = Arc::new(ManualClock::new(T0));
        let (key, generated) = held("k1", T0 + HOUR_MS);
        let set = KeySet::new(vec![key], clock);
        let summary = set.summary().to_string();
        assert!(summary.contains("\"k1\""), "{summary}");
        assert!(!summary.contains(&generated.public_key_base64()));
        assert!(!format!("{set:?}").contains("private_key: ["));
    }
}
