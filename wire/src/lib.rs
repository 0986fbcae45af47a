//! The JSON documents that cross between Keyferry's parts, written once: the broker
//! serializes them, the workload (and tests) read them back through the same types.
//!
//! # Layout
//!
//! - `key`: [`EncryptionKey`] and [`KeyData`], the Privacy Sandbox key document (DESIGN
//!   §5.2), and [`EncryptionKeyList`], `{"keys": [...]}`.
//! - `release`: attested release (DESIGN §5.3): [`ChallengeResponse`], [`ReleaseRequest`].
//! - `peer`: the Type-1 → Type-2 handover (DESIGN §4.3): [`PeerKeys`], [`HandoverChallenge`],
//!   [`HandoverRequest`] with its [`KeyGenerationEvidence`], [`HandoverAnswer`].
//! - `manifest`: the signed public key manifest: [`SignedKeyList`] of [`SignedKey`], each with
//!   its [`KeySignature`]s and [`KeyInclusion`]s.
//! - `error`: [`KeyApiErrorBody`], the key endpoints' error body.
//! - `token`: [`TokenResponse`] and [`OAuthErrorBody`] of `POST /v1/token` (RFC 8693).
//!
//! Shapes are fixed by the Privacy Sandbox clients and by DESIGN: proto3 JSON, so 64-bit
//! times are JSON strings (numbers are accepted on input, as proto3 parsers do). Response
//! types tolerate unknown members (a newer broker may add some); request types refuse them.
//! Types whose fields `serde_json::json!` used to build keep their members in sorted order,
//! so the bytes on the wire did not change when they became types.

mod error;
mod key;
mod manifest;
mod peer;
mod release;
mod token;

pub use error::{
    ATTESTATION_REASON, CODE_TABLE, ERROR_DOMAIN, KeyApiErrorBody, KeyApiErrorDetail, grpc_code,
};
pub use key::{EncryptionKey, EncryptionKeyList, KEY_TYPE, KeyData};
pub use manifest::{ES256, KeyInclusion, KeySignature, SignedKey, SignedKeyList, TYPE1, TYPE2};
pub use peer::{
    AnnouncedHandoverKey, HandoverAnswer, HandoverChallenge, HandoverRequest,
    KeyGenerationEvidence, PeerKeys,
};
pub use release::{ChallengeResponse, ReleaseRequest};
pub use token::{OAuthErrorBody, TokenResponse};
