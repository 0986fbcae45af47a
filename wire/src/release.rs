//! Attested release (DESIGN §5.3): the challenge and the release request.

use attestation::EvidenceWire;
use serde::{Deserialize, Serialize};

/// `POST /v1/attestation/challenge` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResponse {
    /// 32 random bytes, standard base64, single use.
    pub nonce: String,
    /// Seconds the nonce stays usable.
    #[serde(default)]
    pub expires_in: i64,
}

/// `POST /v1/encryptionKeys:release` body. Unknown members are refused, so a misspelt
/// selector cannot silently widen a release to every recent key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The challenge nonce, base64.
    pub nonce: String,
    /// The TEE's X25519 public key, base64; released material is sealed to it.
    pub tee_public_key: String,
    /// The evidence, with `report_data` = SHA-512(nonce ‖ teePublicKey).
    pub evidence: EvidenceWire,
    /// The use case (default: the one of the named keys, or the first configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_case: Option<String>,
    /// The keys wanted, all of one use case; or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ids: Option<Vec<String>>,
    /// the keys created within this many seconds (neither: every servable key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i64>,
}
