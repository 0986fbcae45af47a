//! `POST /v1/attestation/challenge` (DESIGN §5.3 step 1): a fresh nonce the
//! workload binds into its SNP report. Stored so that any replica can
//! consume it, once.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore as _;
use wire::ChallengeResponse;

use super::{Distribution, KeyApiError};
use crate::federation::{Caller, KeysRelease};
use crate::storage::NonceOwner;

/// How long a nonce may wait for its release request.
pub(super) const NONCE_LIFETIME_SECS: i64 = 300;

/// Nonce length: 32 random bytes.
pub(super) const NONCE_LEN: usize = 32;

/// `POST /v1/attestation/challenge`
pub(super) async fn challenge(
    State(service): State<Arc<Distribution>>,
    caller: Caller<KeysRelease>,
) -> Result<Json<ChallengeResponse>, KeyApiError> {
    service
        .release
        .admit_challenge(&caller.credential, service.now_ms())
        .await?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let expires_at = service.now_ms() + NONCE_LIFETIME_SECS * 1000;
    let owner = NonceOwner {
        adtech: caller.credential.adtech(),
        subject: caller.credential.sub(),
    };
    service
        .store
        .insert_nonce(&nonce, owner, expires_at)
        .await?;
    Ok(Json(ChallengeResponse {
        nonce: B64.encode(nonce),
        expires_in: NONCE_LIFETIME_SECS,
    }))
}
