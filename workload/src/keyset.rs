//! The keys a workload holds: [`KeySet`] (key id → checked private keyset and its times),
//! and the injectable [`Clock`] that decides when a key is past its `ttlTime`.
//!
//! A key is usable while `now < ttlTime` (the private TTL, DESIGN §4.2), regardless of its
//! public `expirationTime`: ciphertexts made with a published key keep arriving for a while
//! after it stops being published.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keys::PrivateKeyset;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::WorkloadError;

/// Where "now" comes from. Tests move a [`ManualClock`] instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self(AtomicI64::new(now_ms))
    }

    /// Sets the time.
    pub fn set_ms(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One recombined and fully checked key. Only the checks in `check` make one.
pub struct HeldKey {
    pub(crate) id: String,
    pub(crate) keyset: PrivateKeyset,
    pub(crate) public_keyset_json: String,
    /// The serialized Tink private keyset, kept only in the dev profile for
    /// `--export-keyset`; production keeps nothing but the parsed key.
    pub(crate) tink_bytes: Option<Zeroizing<Vec<u8>>>,
    pub(crate) creation_ms: i64,
    pub(crate) activation_ms: i64,
    pub(crate) expiration_ms: i64,
    pub(crate) ttl_s: i64,
}

impl HeldKey {
    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The checked private keyset.
    pub fn keyset(&self) -> &PrivateKeyset {
        &self.keyset
    }

    /// Tink's JSON public keyset (`publicKeysetHandle`).
    pub fn public_keyset_json(&self) -> &str {
        &self.public_keyset_json
    }

    /// `creationTime`, Unix ms.
    pub fn creation_ms(&self) -> i64 {
        self.creation_ms
    }

    /// `activationTime`, Unix ms.
    pub fn activation_ms(&self) -> i64 {
        self.activation_ms
    }

    /// `expirationTime` (end of publication), Unix ms.
    pub fn expiration_ms(&self) -> i64 {
        self.expiration_ms
    }

    /// `ttlTime` (end of use), Unix **seconds**.
    pub fn ttl_s(&self) -> i64 {
        self.ttl_s
    }

    /// True while `now_ms` is before `ttlTime`.
    pub fn is_live_at(&self, now_ms: i64) -> bool {
        now_ms < self.ttl_s.saturating_mul(1000)
    }
}

impl fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldKey")
            .field("id", &self.id)
            .field("keyset", &self.keyset)
            .field("expiration_ms", &self.expiration_ms)
            .field("ttl_s", &self.ttl_s)
            .finish_non_exhaustive()
    }
}

/// The workload's keys, by id. Every key in it passed every check; keys past `ttlTime` are
/// refused by [`KeySet::decrypt`] even before a refresh drops them.
pub struct KeySet {
    keys: BTreeMap<String, HeldKey>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.keys.values().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// A set of checked keys, judged live by `clock`.
    pub fn new(keys: Vec<HeldKey>, clock: Arc<dyn Clock>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.id.clone(), k)).collect(),
            clock,
        }
    }

    /// An empty set.
    pub fn empty(clock: Arc<dyn Clock>) -> Self {
        Self::new(Vec::new(), clock)
    }

    /// Decrypts a Tink HybridEncrypt ciphertext (RAW prefix: encapsulated key ‖ AEAD
    /// ciphertext) made with key `key_id`'s public key and `context_info`.
    pub fn decrypt(
        &self,
        key_id: &str,
        ciphertext: &[u8],
        context_info: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, WorkloadError> {
        let key = self
            .get(key_id)
            .ok_or_else(|| WorkloadError::UnknownKey(key_id.to_owned()))?;
        key.keyset
            .decrypt(ciphertext, context_info)
            .map_err(|source| WorkloadError::Decrypt {
                key_id: key_id.to_owned(),
                source,
            })
    }

    /// The key `key_id`, if held and not past its `ttlTime`.
    pub fn get(&self, key_id: &str) -> Option<&HeldKey> {
        let now = self.clock.now_ms();
        self.keys.get(key_id).filter(|k| k.is_live_at(now))
    }

    /// The live keys, by id.
    pub fn keys(&self) -> impl Iterator<Item = &HeldKey> {
        let now = self.clock.now_ms();
        self.keys.values().filter(move |k| k.is_live_at(now))
    }

    /// The ids of the live keys, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys().map(|k| k.id.clone()).collect()
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.keys().count()
    }

    /// True when no key is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the keys of `other` (a fetch by id), each replacing a held key of its id.
    pub fn absorb(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
    }

    /// Drops (and wipes) the keys past their `ttlTime`; returns how many.
    pub fn drop_expired(&mut self) -> usize {
        let now = self.clock.now_ms();
        let before = self.keys.len();
        self.keys.retain(|_, k| k.is_live_at(now));
        before - self.keys.len()
    }

    /// A short JSON summary: ids and times, never key material.
    pub fn summary(&self) -> Value {
        let keys: Vec<Value> = self
            .keys()
            .map(|k| {
                json!({
                    "id": k.id,
                    "aead": format!("{:?}", k.keyset.aead()),
                    "activationTime": k.activation_ms,
                    "expirationTime": k.expiration_ms,
                    "ttlTime": k.ttl_s,
                })
            })
            .collect();
        json!({ "count": keys.len(), "keys": keys })
    }
}
