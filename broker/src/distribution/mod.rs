//! Key distribution to workloads (DESIGN §5.2, §5.3).
//!
//! # Layout
//! - `access`: [`KeyAccess`](access::KeyAccess), the one authorization check
//!   (servable key, onboarded ad tech, enabled cloud) both paths share.
//! - `encryption_key`: the Privacy Sandbox `EncryptionKey` document.
//! - `challenge`: `POST /v1/attestation/challenge`, single-use nonces.
//! - `release`: `POST /v1/encryptionKeys:release`, attested release: SNP
//!   evidence through the `attestation` crate, the release policy in force,
//!   HPKE sealing to the TEE key, every release and refusal audited.
//! - `fetch`: `GET /v1alpha/encryptionKeys/{keyId}` and `:recent`, for use
//!   cases that do not require attestation.
//! - `error`: [`KeyApiError`], answered in the Privacy Sandbox error body.
//!
//! The workload's cloud always comes from its credential, never from the
//! request: a workload cannot ask for another cloud's wrapped split.

mod access;
mod challenge;
mod encryption_key;
mod error;
mod fetch;
mod release;

use axum::Router;
use axum::routing::{get, post};

pub use encryption_key::{EncryptionKey, KEY_TYPE, KeyData};
pub use error::KeyApiError;
pub use release::{Release, ReleaseSetupError};

use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1alpha/encryptionKeys:recent", get(fetch::recent_keys))
        .route("/v1alpha/encryptionKeys/{key_id}", get(fetch::get_key))
        .route("/v1/attestation/challenge", post(challenge::challenge))
        .route("/v1/encryptionKeys:release", post(release::release))
}

/// Parses a release policy document (what governance accepts).
pub fn parse_release_policy(
    policy: &serde_json::Value,
) -> Result<attestation::ReleasePolicy, String> {
    attestation::ReleasePolicy::from_json(&policy.to_string()).map_err(|e| e.to_string())
}
