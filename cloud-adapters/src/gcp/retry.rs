//! The SDK's own retry loop, configured for key wrapping.
//!
//! We do not write a retry loop: `google-cloud-gax` already has one with the
//! right classification, and configuring it keeps the wire behaviour that
//! Google tests. What we pick:
//! - [`Aip194Strict`]: retries `UNAVAILABLE`/503, I/O and connection
//!   errors, and transient credential failures (our STS or IAM exchange
//!   answering 429/5xx) that happened before the request was sent. It never
//!   retries other 4xx.
//! - `continue_on_too_many_requests`: also retries 429/`RESOURCE_EXHAUSTED`,
//!   the KMS quota answer, which AIP-194 leaves to the caller.
//! - [`ServerErrors`] (ours, a few lines): also retries 500, 502 and 504.
//!   AIP-194 does not, because a generic mutation may have happened; encrypt
//!   and decrypt change nothing, and a 502/504 from a front end says nothing
//!   about the key. This is the only part that uses the SDK's
//!   `RetryPolicy::on_error`, which the SDK documents as hidden (outside its
//!   semver promise): a test pins the behaviour.
//! - an attempt limit (`max_attempts`) and a time limit (`timeout`), the
//!   first reached wins; the time limit also caps each attempt's timeout.
//! - exponential backoff with full jitter (the SDK draws each delay
//!   uniformly in `0..=delay`), 100 ms doubling to at most 2 s, so that a
//!   `/readyz` probe against a dead endpoint ends in well under a second.
//!
//! - no client-side retry throttling. The SDK's default (an adaptive
//!   throttler shared by all calls on the client) skips retries while the
//!   service keeps failing, but a skipped retry does not count as an
//!   attempt: the loop sleeps again, so during an outage every call runs to
//!   the full `timeout` instead of failing after `max_attempts` (a `/readyz`
//!   that hangs for 10 s). The attempt limit and the backoff already bound
//!   the load we add to a struggling KMS.
//!
//! Encrypt and decrypt are POSTs, which the SDK treats as non-idempotent and
//! never retries after sending; both are safe to repeat (no state changes),
//! so the wrapper marks each request idempotent.

use std::time::Duration;

use google_cloud_gax::error::Error;
use google_cloud_gax::exponential_backoff::{ExponentialBackoff, ExponentialBackoffBuilder};
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicy, RetryPolicyExt};
use google_cloud_gax::retry_result::RetryResult;
use google_cloud_gax::retry_state::RetryState;
use google_cloud_gax::retry_throttler::CircuitBreaker;
use google_cloud_gax::throttle_result::ThrottleResult;

/// First backoff delay (before jitter).
const INITIAL_DELAY: Duration = Duration::from_millis(100);
/// Backoff ceiling (before jitter).
const MAXIMUM_DELAY: Duration = Duration::from_secs(2);

pub(crate) fn retry_policy(max_attempts: u32, timeout: Duration) -> impl RetryPolicy + 'static {
    ServerErrors(Aip194Strict)
        .continue_on_too_many_requests()
        .with_attempt_limit(max_attempts)
        .with_time_limit(timeout)
}

pub(crate) fn backoff_policy() -> ExponentialBackoff {
    ExponentialBackoffBuilder::new()
        .with_initial_delay(INITIAL_DELAY)
        .with_maximum_delay(MAXIMUM_DELAY)
        .with_scaling(2.0)
        .clamp()
}

/// A throttler that never throttles, from the SDK's public constructors: a
/// circuit breaker whose failures cost nothing never opens.
pub(crate) fn no_throttling() -> CircuitBreaker {
    CircuitBreaker::clamp(1, 0, 0)
}

/// Retries 500, 502, 503 and 504 on idempotent calls, then asks `P`.
#[derive(Debug)]
struct ServerErrors<P>(P);

impl<P: RetryPolicy> RetryPolicy for ServerErrors<P> {
    fn on_error(&self, state: &RetryState, error: Error) -> RetryResult {
        let transient_status = error
            .http_status_code()
            .is_some_and(|code| matches!(code, 500 | 502 | 503 | 504));
        if state.idempotent && transient_status {
            return RetryResult::Continue(error);
        }
        self.0.on_error(state, error)
    }

    fn on_throttle(&self, state: &RetryState, error: Error) -> ThrottleResult {
        self.0.on_throttle(state, error)
    }

    fn remaining_time(&self, state: &RetryState) -> Option<Duration> {
        self.0.remaining_time(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_gax::retry_throttler::RetryThrottler;

    #[test]
    fn the_throttler_never_skips_a_retry_however_many_fail() {
        let mut throttler = no_throttling();
        for _ in 0..1000 {
            throttler.on_retry_failure(&RetryResult::Continue(Error::io("down")));
            assert!(!throttler.throttle_retry_attempt());
        }
    }

    #[test]
    fn server_errors_are_retried_only_when_idempotent() {
        let policy = ServerErrors(Aip194Strict);
        let err = || Error::http(502, http::HeaderMap::new(), bytes::Bytes::new());
        assert!(matches!(
            policy.on_error(&RetryState::new(true), err()),
            RetryResult::Continue(_)
        ));
        assert!(matches!(
            policy.on_error(&RetryState::new(false), err()),
            RetryResult::Permanent(_)
        ));
    }
}
