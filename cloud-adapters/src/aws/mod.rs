//! AWS KMS backend for Keyferry's [`KeyWrapper`](crate::KeyWrapper)
//! (DESIGN §5.1): splits are wrapped with KMS `Encrypt`/`Decrypt` under a key
//! ARN, and the broker reaches the workload's KMS with credentials it obtains
//! by trading its own identity token at STS (`AssumeRoleWithWebIdentity`).
//!
//! # Layout
//! - `settings`: [`AwsSettings`] and [`AwsCredentials`], what a deployment
//!   chooses (endpoint, credentials, timeout, attempts).
//! - `wrapper`: [`AwsKmsWrapper`], the `KeyWrapper` implementation.
//! - `federation`: the credentials provider that mints a token from the
//!   broker's [`IdentityTokenSource`](crate::IdentityTokenSource),
//!   exchanges it at STS and caches the result (one refresh at a time).
//! - `retry`: the SDK retry and timeout configuration shared by the KMS and
//!   STS clients, plus the one classifier the SDK lacks (bare HTTP 429).
//! - `errors`: SDK errors mapped onto [`WrapError`](crate::WrapError)
//!   in one place, without plaintext or tokens.
//!
//! Ciphertexts are plain KMS ciphertext blobs made with an empty encryption
//! context, which is what Tink's `AwsKmsAead` produces and consumes, so a
//! workload can unwrap a split with stock tooling.

mod errors;
mod federation;
mod retry;
mod settings;
mod wrapper;

pub use settings::{AwsCredentials, AwsSettings};
pub use wrapper::AwsKmsWrapper;
