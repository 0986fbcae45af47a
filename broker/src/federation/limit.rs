//! The per-identity limit on token exchanges (`federation.rate_limit_per_minute`).
//!
//! One SQLite broker is one instance: it counts in memory (GCRA through
//! `governor`, smooth). Replicas on one PostgreSQL must share the count, or
//! N replicas allow N times the rate: they count in fixed one-minute
//! windows in `rate_limits`, one upsert per exchange. A fixed window lets a
//! client spend two windows' worth across a boundary; that bound is what
//! the shared limit promises.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::storage::{Backend, Store, StoreError};

const WINDOW_MS: i64 = 60_000;

/// Counts exchanges per identity, in memory or in the database.
pub(super) enum ExchangeLimiter {
    Local(DefaultKeyedRateLimiter<(String, String)>),
    Shared { store: Store, per_minute: i64 },
}

impl std::fmt::Debug for ExchangeLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExchangeLimiter::Local(_) => "ExchangeLimiter::Local",
            ExchangeLimiter::Shared { .. } => "ExchangeLimiter::Shared",
        })
    }
}

impl ExchangeLimiter {
    /// Shared on PostgreSQL, local on SQLite.
    pub(super) fn new(store: &Store, per_minute: NonZeroU32) -> Self {
        match store.backend() {
            Backend::Postgres => ExchangeLimiter::Shared {
                store: store.clone(),
                per_minute: i64::from(per_minute.get()),
            },
            Backend::Sqlite => {
                ExchangeLimiter::Local(RateLimiter::keyed(Quota::per_minute(per_minute)))
            }
        }
    }

    /// Counts one exchange of (`issuer`, `subject`) at `now_ms`: `Ok(None)`
    /// when allowed, `Ok(Some(wait))` when over the limit.
    pub(super) async fn check(
        &self,
        issuer: &str,
        subject: &str,
        now_ms: i64,
    ) -> Result<Option<Duration>, StoreError> {
        match self {
            ExchangeLimiter::Local(limiter) => {
                let key = (issuer.to_owned(), subject.to_owned());
                Ok(limiter
                    .check_key(&key)
                    .err()
                    .map(|not_until| not_until.wait_time_from(DefaultClock::default().now())))
            }
            ExchangeLimiter::Shared { store, per_minute } => {
                let window = now_ms - now_ms.rem_euclid(WINDOW_MS);
                let count = store
                    .count_in_window(&bucket(issuer, subject), window)
                    .await?;
                Ok((count > *per_minute).then(|| {
                    Duration::from_millis(u64::try_from(window + WINDOW_MS - now_ms).unwrap_or(0))
                }))
            }
        }
    }

    /// Forgets identities not seen for a while (local), or windows that
    /// ended (shared).
    pub(super) async fn prune(&self, now_ms: i64) {
        match self {
            ExchangeLimiter::Local(limiter) => {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            ExchangeLimiter::Shared { store, .. } => {
                if let Err(e) = store.purge_rate_windows(now_ms - WINDOW_MS).await {
                    tracing::warn!(error = %e, "cannot purge rate-limit windows");
                }
            }
        }
    }
}

/// A fixed-size key for an identity whose parts the issuer chose.
fn bucket(issuer: &str, subject: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(issuer.as_bytes());
    hash.update([0]);
    hash.update(subject.as_bytes());
    hex::encode(hash.finalize())
}
