//! Time as a dependency.
//!
//! Every freshness decision in this crate (token expiry, JWKS cache lifetime, the refresh
//! rate limit, key rotation) reads time through [`Clock`], so tests move a [`ManualClock`]
//! forward instead of sleeping, and a test that checks "expired after 5 minutes" runs in
//! microseconds.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock; what production uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to.
///
/// Cloning is shallow: every clone shares one instant, so a test keeps a clone and advances
/// the time seen by the validator or cache it handed the other clone to.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock stopped at the current system time (convenient when tokens come from a real
    /// server that stamps them with its own clock).
    pub fn starting_now() -> Self {
        Self::new(SystemTime::now())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock to `to` (which may be in the past).
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Seconds since the Unix epoch, negative before it; JWT `NumericDate` arithmetic is done
/// in these units.
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// A duration as whole seconds, saturating (durations here are hours or days, never close).
pub(crate) fn whole_seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_one_instant() {
        let clock = ManualClock::new(UNIX_EPOCH);
        let seen_by_other = clock.clone();
        clock.advance(Duration::from_secs(90));
        assert_eq!(seen_by_other.now(), UNIX_EPOCH + Duration::from_secs(90));
        seen_by_other.set(UNIX_EPOCH + Duration::from_secs(5));
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(5));
    }

    #[test]
    fn system_clock_is_close_to_now() {
        let delta = SystemClock
            .now()
            .duration_since(UNIX_EPOCH)
            .expect("after epoch");
        assert!(delta.as_secs() > 1_600_000_000);
    }

    #[test]
    fn unix_seconds_round_trip_and_handle_pre_epoch() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(unix_seconds(t), 1_700_000_000);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(10)), -10);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 1);
    }
}
