//! Fetching one key by id when a report names a key the set does not hold: a report
//! encrypted to a key created after the last refresh should decrypt now, not after the next
//! refresh.
//!
//! Key ids come from reports, which come from anyone, so a lookup must not let them drive
//! the coordinators:
//! - **single flight**: concurrent misses of one id share one fetch;
//! - **negative cache**: an id that could not be fetched is not asked for again for
//!   [`MISSING_FOR`] (at most [`MAX_MISSING`] ids remembered);
//! - **budget**: at most [`LOOKUPS_PER_MINUTE`] fetches by id in any minute, whatever the
//!   ids; past it a miss is answered as unknown at once;
//! - ids that are not plausible key ids (empty, over [`MAX_KEY_ID`] bytes, or with
//!   characters outside `[A-Za-z0-9._-]`) are never fetched.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// How long an id that could not be fetched is answered as unknown without asking.
pub const MISSING_FOR: Duration = Duration::from_secs(30);

/// Most ids remembered as missing; past it the oldest go first.
pub const MAX_MISSING: usize = 1024;

/// Most fetches by id in any 60 seconds.
pub const LOOKUPS_PER_MINUTE: usize = 10;

/// Longest key id looked up (the coordinators' ids are UUIDs, 36 bytes).
pub const MAX_KEY_ID: usize = 128;

/// One fetch in flight: every waiter gets its outcome (whether the key is now held).
type Flight = Arc<OnceCell<bool>>;

#[derive(Default)]
pub(crate) struct Lookups {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    in_flight: HashMap<String, Flight>,
    missing: HashMap<String, Instant>,
    recent: VecDeque<Instant>,
}

impl Lookups {
    /// Whether `key_id` may be fetched now: plausible, not recently missing.
    pub(crate) fn may_look_up(&self, key_id: &str, now: Instant) -> bool {
        plausible(key_id)
            && self
                .lock()
                .missing
                .get(key_id)
                .is_none_or(|until| *until <= now)
    }

    /// The flight for `key_id`: the one in progress, or a new one.
    pub(crate) fn flight(&self, key_id: &str) -> Flight {
        self.lock()
            .in_flight
            .entry(key_id.to_owned())
            .or_default()
            .clone()
    }

    /// Takes one fetch from the budget; false when the minute's budget is spent.
    pub(crate) fn take_budget(&self, now: Instant) -> bool {
        let mut state = self.lock();
        while state
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            state.recent.pop_front();
        }
        if state.recent.len() >= LOOKUPS_PER_MINUTE {
            return false;
        }
        state.recent.push_back(now);
        true
    }

    /// Ends `flight` for `key_id` with its outcome: the next miss starts a new flight, and
    /// an id not found is remembered as missing.
    pub(crate) fn land(&self, key_id: &str, flight: &Flight, found: bool, now: Instant) {
        let mut state = self.lock();
        if state
            .in_flight
            .get(key_id)
            .is_some_and(|f| Arc::ptr_eq(f, flight))
        {
            state.in_flight.remove(key_id);
        }
        if found {
            state.missing.remove(key_id);
            return;
        }
        if state.missing.len() >= MAX_MISSING {
            state.missing.retain(|_, until| *until > now);
        }
        if state.missing.len() >= MAX_MISSING
            && let Some(oldest) = state
                .missing
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(id, _)| id.clone())
        {
            state.missing.remove(&oldest);
        }
        state.missing.insert(key_id.to_owned(), now + MISSING_FOR);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a cache: after a panic elsewhere it is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn plausible(key_id: &str) -> bool {
    !key_id.is_empty()
        && key_id.len() <= MAX_KEY_ID
        && key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_ids_are_never_looked_up() {
        let lookups = Lookups::default();
        let now = Instant::now();
        assert!(lookups.may_look_up("3c1d2f9e-0000-4000-8000-000000000001", now));
        for bad in ["", "a/b", "a b", "é", &"x".repeat(MAX_KEY_ID + 1)] {
            assert!(!lookups.may_look_up(bad, now), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_id_is_not_asked_for_again_until_it_is_forgotten() {
        let lookups = Lookups::default();
        let now = Instant::now();
        let flight = lookups.flight("k");
        lookups.land("k", &flight, false, now);
        assert!(!lookups.may_look_up("k", now + MISSING_FOR / 2));
        assert!(lookups.may_look_up("k", now + MISSING_FOR));
        // The flight ended: the next miss gets a new one.
        assert!(!Arc::ptr_eq(&flight, &lookups.flight("k")));
    }

    #[test]
    fn concurrent_misses_share_one_flight() {
        let lookups = Lookups::default();
        assert!(Arc::ptr_eq(&lookups.flight("k"), &lookups.flight("k")));
        assert!(!Arc::ptr_eq(&lookups.flight("k"), &lookups.flight("j")));
    }

    #[test]
    fn the_budget_allows_so_many_fetches_a_minute() {
        let lookups = Lookups::default();
        let now = Instant::now();
        for _ in 0..LOOKUPS_PER_MINUTE {
            assert!(lookups.take_budget(now));
        }
        assert!(!lookups.take_budget(now + Duration::from_secs(59)));
        assert!(lookups.take_budget(now + Duration::from_secs(60)));
    }

    #[test]
    fn the_missing_ids_are_bounded() {
        let lookups = Lookups::default();
        let now = Instant::now();
        for i in 0..MAX_MISSING + 5 {
            let id = format!("k-{i}");
            let flight = lookups.flight(&id);
            lookups.land(&id, &flight, false, now + Duration::from_millis(i as u64));
        }
        let state = lookups.lock();
        assert_eq!(state.missing.len(), MAX_MISSING);
        assert!(!state.missing.contains_key("k-0"), "the oldest went first");
        assert!(state.in_flight.is_empty());
    }
}
