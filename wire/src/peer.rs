//! The Type-1 → Type-2 handover (DESIGN §4.3) and what each coordinator publishes for the
//! other (and for workloads, which check both signatures).

use serde::{Deserialize, Serialize};

/// `GET /v1/peer/keys` (and `/v1/peer/handover-key`): keys a coordinator publishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerKeys {
    /// X25519 public key splits are sealed to (Type-2 only), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover_key: Option<String>,
    /// SubjectPublicKeyInfo (DER, base64) of its public-key signing key.
    pub signing_key: String,
    /// Type-2 only: every handover key that opens handovers now, newest
    /// first (the first is `handover_key`); older ones until `notAfter`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handover_keys: Vec<AnnouncedHandoverKey>,
}

/// A handover key as a Type-2 announces it (like a JWKS entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnnouncedHandoverKey {
    /// Its id: the rotation period it was made for.
    pub kid: String,
    /// X25519 public key, base64.
    pub key: String,
    /// Unix ms after which it opens nothing; absent for the current key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
}

/// `POST /v1alpha/encryptionKeys` body, Type-1 to Type-2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HandoverRequest {
    /// Key id.
    pub key_id: String,
    /// Use case.
    pub use_case: String,
    /// Raw X25519 public key, base64.
    pub public_key_material: String,
    /// Tink JSON public keyset.
    pub public_keyset_handle: String,
    /// Unix ms.
    pub creation_time: i64,
    /// Unix ms.
    pub activation_time: i64,
    /// Unix ms.
    pub expiration_time: i64,
    /// Unix ms.
    pub ttl_time: i64,
    /// The Type-1's signature, base64.
    pub public_key_signature: String,
    /// Split B sealed to the Type-2's handover key, base64.
    pub sealed_split: String,
    /// The key generator's attestation of this message (absent only where
    /// the Type-2 does not require it, dev only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_generation: Option<KeyGenerationEvidence>,
}

/// The key generator's evidence for one handover: an SNP report whose
/// `report_data` is SHA-512(`"keyferry/v1/handover"` ‖ challenge ‖ SHA-256 of the
/// canonical handover message without this member).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyGenerationEvidence {
    /// The Type-2's challenge, base64, as it was issued.
    pub challenge: String,
    /// The report and its certificates.
    pub evidence: attestation::EvidenceWire,
}

/// `POST /v1/peer/handover-challenges` answer: a fresh challenge the key
/// generator binds into its report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoverChallenge {
    /// 32 random bytes, base64, single use.
    pub challenge: String,
    /// Seconds it stays usable.
    pub expires_in: i64,
}

/// The Type-2's answer to a handover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoverAnswer {
    /// The key acknowledged.
    pub key_id: String,
    /// The Type-2's signature over the key, base64.
    pub public_key_signature: String,
}
