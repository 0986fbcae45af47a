//! Per-identity rate limits: token exchanges
//! (`federation.rate_limit_per_minute`) and attestation challenges
//! (`attestation.challenges_per_minute`), each per workload identity
//! (issuer and subject).
//!
//! One SQLite broker is one instance: it counts in memory (GCRA through
//! `governor`, smooth). Replicas on one PostgreSQL must share the count, or
//! N replicas allow N times the rate: they count in fixed one-minute
//! windows in `rate_limits`, one upsert per event, each limit in buckets of
//! its own. A fixed window lets a client spend two windows' worth across a
//! boundary; that bound is what the shared limit promises.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::storage::{Backend, Store, StoreError};

const WINDOW_MS: i64 = 60_000;

/// The limit on token exchanges.
pub(crate) const TOKEN_EXCHANGES: &str = "token";
/// The limit on attestation challenges.
pub(crate) const CHALLENGES: &str = "challenge";

/// Counts one kind of event per identity, in memory or in the database.
pub(crate) enum IdentityLimiter {
    Local(DefaultKeyedRateLimiter<(String, String)>),
    Shared {
        store: Store,
        per_minute: i64,
        /// Which limit: part of every bucket, so limits never share counts.
        limit: &'static str,
    },
}

impl std::fmt::Debug for IdentityLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IdentityLimiter::Local(_) => "IdentityLimiter::Local",
            IdentityLimiter::Shared { .. } => "IdentityLimiter::Shared",
        })
    }
}

impl IdentityLimiter {
    /// `per_minute` events of the kind `limit` names per identity: shared
    /// on PostgreSQL, local on SQLite.
    pub(crate) fn new(store: &Store, limit: &'static str, per_minute: NonZeroU32) -> Self {
        match store.backend() {
            Backend::Postgres => IdentityLimiter::Shared {
                store: store.clone(),
                per_minute: i64::from(per_minute.get()),
                limit,
            },
            Backend::Sqlite => {
                IdentityLimiter::Local(RateLimiter::keyed(Quota::per_minute(per_minute)))
            }
        }
    }

    /// Counts one event of (`issuer`, `subject`) at `now_ms`: `Ok(None)`
    /// when allowed, `Ok(Some(wait))` when over the limit.
    pub(crate) async fn check(
        &self,
        issuer: &str,
        subject: &str,
        now_ms: i64,
    ) -> Result<Option<Duration>, StoreError> {
        match self {
            IdentityLimiter::Local(limiter) => {
                let key = (issuer.to_owned(), subject.to_owned());
                Ok(limiter
                    .check_key(&key)
                    .err()
                    .map(|not_until| not_until.wait_time_from(DefaultClock::default().now())))
            }
            IdentityLimiter::Shared {
                store,
                per_minute,
                limit,
            } => {
                let window = now_ms - now_ms.rem_euclid(WINDOW_MS);
                let count = store
                    .count_in_window(&bucket(limit, issuer, subject), window)
                    .await?;
                Ok((count > *per_minute).then(|| {
                    Duration::from_millis(u64::try_from(window + WINDOW_MS - now_ms).unwrap_or(0))
                }))
            }
        }
    }

    /// Forgets identities not seen for a while (local), or windows that
    /// ended (shared).
    pub(crate) async fn prune(&self, now_ms: i64) {
        match self {
            IdentityLimiter::Local(limiter) => {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            IdentityLimiter::Shared { store, .. } => {
                if let Err(e) = store.purge_rate_windows(now_ms - WINDOW_MS).await {
                    tracing::warn!(error = %e, "cannot purge rate-limit windows");
                }
            }
        }
    }
}

/// A fixed-size key for a limit and an identity whose parts the issuer
/// chose. Token exchanges keep the key they had before challenges were
/// counted here too.
fn bucket(limit: &str, issuer: &str, subject: &str) -> String {
    let mut hash = Sha256::new();
    if limit != TOKEN_EXCHANGES {
        hash.update(limit.as_bytes());
        hash.update([0]);
    }
    hash.update(issuer.as_bytes());
    hash.update([0]);
    hash.update(subject.as_bytes());
    hex::encode(hash.finalize())
}
