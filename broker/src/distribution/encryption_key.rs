//! The `EncryptionKey` document of DESIGN §5.2, exactly as the Privacy
//! Sandbox clients parse it: proto3 JSON, so 64-bit times are strings and
//! `ttlTime` (seconds) a number.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;

use super::OwnMaterial;
use crate::config::Role;
use crate::storage::KeyRecord;

/// `MULTI_PARTY_HYBRID_EVEN_KEYSPLIT`: two XOR splits, one per coordinator.
pub const KEY_TYPE: &str = "MULTI_PARTY_HYBRID_EVEN_KEYSPLIT";

/// One key as served to a workload.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionKey {
    /// `encryptionKeys/<id>`.
    pub name: String,
    /// Always [`KEY_TYPE`].
    pub encryption_key_type: &'static str,
    /// The Tink JSON public keyset, as a string.
    pub public_keyset_handle: String,
    /// The raw X25519 public key, base64.
    pub public_key_material: String,
    /// Unix ms, as a string.
    pub creation_time: String,
    /// Unix ms, as a string.
    pub activation_time: String,
    /// Unix ms, as a string.
    pub expiration_time: String,
    /// Unix seconds, a number.
    pub ttl_time: i64,
    /// The Type-1's entry first, then the Type-2's.
    pub key_data: Vec<KeyData>,
}

/// One coordinator's part of a key.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyData {
    /// The coordinator's ES256 signature over the public key, base64.
    pub public_key_signature: String,
    /// The KEK that wraps this coordinator's split for the workload's cloud
    /// (empty in the other coordinator's entry: only it knows its KEKs).
    pub key_encryption_key_uri: String,
    /// The split wrapped by that KEK, base64; filled only in the serving
    /// coordinator's own entry, and empty in an attested release, which
    /// carries `sealedKeyMaterial` instead.
    pub key_material: String,
    /// Attested release only: the HPKE-sealed split material (DESIGN §5.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_key_material: Option<String>,
    /// Attested release only: what `sealedKeyMaterial` holds once opened,
    /// `cloud-kms` (the KMS ciphertext) or `broker` (the plaintext split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_content: Option<&'static str>,
}

/// Builds the document for `key` as coordinator `role` serves it, with this
/// coordinator's `own` material in its entry.
pub(super) fn encryption_key(key: &KeyRecord, role: Role, own: OwnMaterial) -> EncryptionKey {
    // `signature` is always the Type-1's and `peer_signature` the Type-2's,
    // on both coordinators.
    let other_entry = |signature: &str| KeyData {
        public_key_signature: signature.to_owned(),
        key_encryption_key_uri: String::new(),
        key_material: String::new(),
        sealed_key_material: None,
        sealed_content: None,
    };
    let key_data = match role {
        Role::Type1 => vec![
            own.into_key_data(key.signature.clone()),
            other_entry(&key.peer_signature),
        ],
        Role::Type2 => vec![
            other_entry(&key.signature),
            own.into_key_data(key.peer_signature.clone()),
        ],
    };
    EncryptionKey {
        name: format!("encryptionKeys/{}", key.id),
        encryption_key_type: KEY_TYPE,
        public_keyset_handle: key.public_keyset.clone(),
        public_key_material: B64.encode(&key.public_key),
        creation_time: key.creation_time.to_string(),
        activation_time: key.activation_time.to_string(),
        expiration_time: key.expiration_time.to_string(),
        ttl_time: key.ttl_time.div_euclid(1000),
        key_data,
    }
}
