//! Retry and timeout policy for both SDK clients (KMS and STS).
//!
//! The SDK's `standard` retry mode already does what DESIGN §5.1 asks, and
//! the tests in `tests/faults.rs` pin it down: it retries throttling error
//! codes (`ThrottlingException` and kin, whatever the status), HTTP
//! 500/502/503/504, timeouts and I/O errors, with exponential backoff and
//! full jitter; it does not retry other 4xx answers. The one gap is a bare
//! HTTP 429 whose body carries no known error code (a proxy or load balancer
//! in front of KMS), which [`TooManyRequests`] adds.

use crate::WrapError;
use aws_sdk_kms::config::interceptors::InterceptorContext;
use aws_sdk_kms::config::retry::{ClassifyRetry, RetryAction, RetryConfig};
use aws_sdk_kms::config::timeout::TimeoutConfig;

use crate::aws::AwsSettings;

/// The SDK's standard retry mode with our attempt count and backoff base.
pub(crate) fn retry_config(settings: &AwsSettings) -> Result<RetryConfig, WrapError> {
    if settings.max_attempts == 0 {
        return Err(WrapError::Misconfigured(
            "aws max_attempts must be at least 1".into(),
        ));
    }
    Ok(RetryConfig::standard()
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(settings.initial_backoff))
}

/// `timeout` bounds each attempt, connection set-up included, so that a
/// black-holed endpoint costs `max_attempts × timeout` at most, not forever.
pub(crate) fn timeout_config(settings: &AwsSettings) -> Result<TimeoutConfig, WrapError> {
    if settings.timeout.is_zero() {
        return Err(WrapError::Misconfigured(
            "aws timeout must not be zero".into(),
        ));
    }
    Ok(TimeoutConfig::builder()
        .connect_timeout(settings.timeout)
        .operation_attempt_timeout(settings.timeout)
        .build())
}

/// Treats any HTTP 429 as throttling, even when the body has no AWS error
/// code the SDK's own classifiers recognise.
#[derive(Debug, Default)]
pub(crate) struct TooManyRequests;

impl ClassifyRetry for TooManyRequests {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response() {
            Some(response) if response.status().as_u16() == 429 => RetryAction::throttling_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "keyferry: HTTP 429 is throttling"
    }
}
