//! Cloud KMS key wrapping for Keyferry (DESIGN §5.1): a [`KeyWrapper`] for
//! `gcp-kms://` KEKs built on Google's official `google-cloud-kms-v1` client,
//! with the broker's own outbound federation (STS token exchange, then
//! service-account impersonation) as its credentials.
//!
//! # Layout
//! - `settings`: [`GcpSettings`] and [`GcpCredentials`], what the broker
//!   configures per KEK, checked once in [`GcpKmsWrapper::new`].
//! - `wrapper`: [`GcpKmsWrapper`], encrypt/decrypt on the crypto key with
//!   empty AAD, bounded by a timeout and the SDK's retry loop.
//! - `retry`: the SDK retry and backoff policies we configure, and why.
//! - `errors`: the one place an SDK error becomes a [`WrapError`].
//! - `federation`: `FederatedToken`, the `google-cloud-auth`
//!   credentials provider that trades the broker's JWT for a service-account
//!   access token, cached and refreshed single-flight.
//! - `static_token`: the dev-only fixed bearer token provider.
//! - `test_double` (feature `test-double`): an axum double of the Cloud KMS,
//!   STS and IAM Credentials REST APIs, for tests here and in the broker.
//!
//! [`KeyWrapper`]: crate::KeyWrapper
//! [`WrapError`]: crate::WrapError

mod errors;
mod federation;
mod retry;
mod settings;
mod static_token;
mod wrapper;

#[cfg(feature = "test-double")]
pub mod test_double;

pub use settings::{
    CLOUD_PLATFORM_SCOPE, DEFAULT_IAM_CREDENTIALS_URL, DEFAULT_STS_URL, GcpCredentials, GcpSettings,
};
pub use wrapper::GcpKmsWrapper;
