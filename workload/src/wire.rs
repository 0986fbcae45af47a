//! The JSON documents of the coordinator API, as the workload reads and writes them.
//!
//! Response types ignore unknown fields (a newer broker may add some, as proto3 JSON allows);
//! the request type is exactly what the broker expects. [`EncryptionKey`] is the Privacy
//! Sandbox document (DESIGN §5.2): 64-bit times as JSON strings, `ttlTime` a number.

use std::fmt;

use attestation::EvidenceWire;
use serde::{Deserialize, Deserializer, Serialize};

/// `encryptionKeyType` of a two-party key.
pub const KEY_TYPE: &str = "MULTI_PARTY_HYBRID_EVEN_KEYSPLIT";

/// One key in a release answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionKey {
    /// `encryptionKeys/<id>`.
    pub name: String,
    /// Always [`KEY_TYPE`].
    pub encryption_key_type: String,
    /// Tink JSON public keyset, as a string.
    pub public_keyset_handle: String,
    /// Raw X25519 public key, standard base64.
    pub public_key_material: String,
    /// Unix ms (a JSON string in proto3 JSON; a number is accepted too).
    #[serde(deserialize_with = "int64", serialize_with = "int64_string")]
    pub creation_time: i64,
    /// Unix ms.
    #[serde(deserialize_with = "int64", serialize_with = "int64_string")]
    pub activation_time: i64,
    /// Unix ms.
    #[serde(deserialize_with = "int64", serialize_with = "int64_string")]
    pub expiration_time: i64,
    /// Unix **seconds**, a JSON number.
    pub ttl_time: i64,
    /// Type-1's entry, then Type-2's.
    pub key_data: Vec<KeyData>,
}

/// One coordinator's entry of an [`EncryptionKey`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyData {
    /// ES256 signature over the public key, base64 (64 bytes r ‖ s).
    #[serde(default)]
    pub public_key_signature: String,
    /// The KEK wrapping this entry's split (own entry only).
    #[serde(default)]
    pub key_encryption_key_uri: String,
    /// The wrapped split (empty in a release answer).
    #[serde(default)]
    pub key_material: String,
    /// Release only, own entry: HPKE-sealed split material, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_key_material: Option<String>,
    /// Release only, own entry: `cloud-kms` or `broker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_content: Option<String>,
}

// The material fields are ciphertexts, but there is no reason to print them either.
impl fmt::Debug for KeyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyData")
            .field("public_key_signature", &self.public_key_signature)
            .field("key_encryption_key_uri", &self.key_encryption_key_uri)
            .field("key_material_len", &self.key_material.len())
            .field(
                "sealed_key_material_len",
                &self.sealed_key_material.as_ref().map(String::len),
            )
            .field("sealed_content", &self.sealed_content)
            .finish()
    }
}

/// proto3 JSON int64: a decimal string, or (leniently, as proto3 parsers do) a number.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Text(String),
        Number(i64),
    }
    match Int64::deserialize(d)? {
        Int64::Number(n) => Ok(n),
        Int64::Text(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an int64"))),
    }
}

fn int64_string<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// `{"keys": [...]}` of a release answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ReleaseResponse {
    pub(crate) keys: Vec<EncryptionKey>,
}

/// `POST /v1/encryptionKeys:release` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReleaseRequest<'a> {
    pub(crate) nonce: String,
    pub(crate) tee_public_key: String,
    pub(crate) evidence: &'a EvidenceWire,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) use_case: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_ids: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_age_seconds: Option<i64>,
}

/// `POST /v1/attestation/challenge` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChallengeResponse {
    pub(crate) nonce: String,
}

/// `POST /v1/token` answer. No `Debug`: it holds the credential.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) token_type: String,
}

/// RFC 6749 §5.2 error body.
#[derive(Debug, Deserialize)]
pub(crate) struct OAuthErrorBody {
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) error_description: Option<String>,
}

/// The key endpoints' error body: `{"code","message","details":[{"reason","attestationReason"?}]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ApiErrorBody {
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) details: Vec<ApiErrorDetail>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiErrorDetail {
    #[serde(default)]
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) attestation_reason: Option<String>,
}

/// `GET /v1/peer/keys` answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PeerKeys {
    pub(crate) signing_key: String,
}
