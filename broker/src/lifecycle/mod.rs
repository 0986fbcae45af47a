//! The key lifecycle (DESIGN §4): generation, the Type-1 → Type-2 handover,
//! publication and removal.
//!
//! - `service`: [`KeyService`]: generates keys under the database lock,
//!   splits them, wraps split A, seals split B to the Type-2, retries the
//!   handover with backoff, and purges expired and abandoned keys.
//! - `handover`: the wire format and both ends of `POST /v1alpha/encryptionKeys`.
//! - `handover_keys`: the Type-2's rotating handover keys, one per period.
//! - `key_generation`: attested key generation: the Type-1's key generator
//!   attests each handover; the Type-2 admits it against its governed
//!   key-generation policy before it stores split B.
//! - `public`: `GET /.well-known/{use_case}/v1/public-keys`, `/v1alpha/publicKeys`.
//! - `manifest`: their `:signed` twins: each key with both coordinators'
//!   signatures and its entry in each coordinator's log, proven.
//! - `admin`: `/v1/admin/keys` (list, rotate, revoke, re-wrap).
//!
//! Invariants: no coordinator stores a whole private key (split B exists in
//! the Type-1's database only sealed to the Type-2); no key is published
//! before the Type-2 has acknowledged its split; no split B is stored
//! unless its key generator was attested (where required); plaintext splits and
//! keysets live only in zeroizing buffers.

mod admin;
mod handover;
mod handover_keys;
mod key_generation;
mod manifest;
mod public;
mod service;

use axum::Router;
use axum::routing::{get, post};

pub use handover::handover_request;
pub use key_generation::{
    DEV_KEY_GENERATOR_MEASUREMENT, ensure_simulated_key_generator, message_digest,
};
pub use manifest::signing_key_id;
pub use service::{KeyService, LifecycleError, RewrapOutcome, RewrappedSplit};

use std::sync::Arc;

use axum::extract::FromRef;

use crate::audit::{Audit, TransparencyLog};
use crate::operator::AdminAuth;
use crate::storage::Store;

/// What the key lifecycle's endpoints use; taken from the application's state.
#[derive(Clone)]
pub struct LifecycleState {
    /// The key lifecycle.
    pub keys: Arc<KeyService>,
    /// Keys and splits.
    pub store: Store,
    /// Where administration and handovers are recorded.
    pub audit: Arc<dyn Audit>,
    /// The same log, read: the signed manifest proves entries in it.
    pub log: Arc<TransparencyLog>,
}

pub(crate) fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    LifecycleState: FromRef<S>,
    Arc<KeyService>: FromRef<S>,
    Arc<AdminAuth>: FromRef<S>,
{
    Router::new()
        .route(
            "/.well-known/{use_case}/v1/public-keys",
            get(public::public_keys),
        )
        .route("/v1alpha/publicKeys", get(public::default_public_keys))
        .route(
            "/.well-known/{use_case}/v1/public-keys:signed",
            get(manifest::signed_public_keys),
        )
        .route(
            "/v1alpha/publicKeys:signed",
            get(manifest::default_signed_public_keys),
        )
        .route("/v1/peer/keys", get(handover::peer_keys))
        // DESIGN §4.3's name for the same document.
        .route("/v1/peer/handover-key", get(handover::peer_keys))
        .route(
            "/v1/peer/handover-challenges",
            post(handover::handover_challenge),
        )
        .route("/v1alpha/encryptionKeys", post(handover::receive))
        .route("/v1/admin/keys", get(admin::list))
        .route("/v1/admin/keys/rotate", post(admin::rotate))
        .route("/v1/admin/keys/rewrap", post(admin::rewrap))
        .route("/v1/admin/keys/{id}/revoke", post(admin::revoke))
}
