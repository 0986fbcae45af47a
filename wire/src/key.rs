//! The `EncryptionKey` document, exactly as the Privacy Sandbox clients parse it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// `encryptionKeyType` of a two-party key: two XOR splits, one per coordinator.
pub const KEY_TYPE: &str = "MULTI_PARTY_HYBRID_EVEN_KEYSPLIT";

/// One key as a coordinator serves it to a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionKey {
    /// `encryptionKeys/<id>`.
    pub name: String,
    /// Always [`KEY_TYPE`].
    pub encryption_key_type: String,
    /// The Tink JSON public keyset, as a string.
    pub public_keyset_handle: String,
    /// The raw X25519 public key, standard base64.
    pub public_key_material: String,
    /// Unix ms (a JSON string in proto3 JSON).
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
    /// The Type-1's entry first, then the Type-2's.
    pub key_data: Vec<KeyData>,
}

impl EncryptionKey {
    /// The key id: `name` without its `encryptionKeys/` prefix.
    pub fn key_id(&self) -> &str {
        self.name
            .strip_prefix("encryptionKeys/")
            .unwrap_or(&self.name)
    }
}

/// One coordinator's entry of an [`EncryptionKey`].
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyData {
    /// The coordinator's ES256 signature over the public key, base64 (r ‖ s).
    #[serde(default)]
    pub public_key_signature: String,
    /// The KEK that wraps this coordinator's split for the workload's cloud (empty in the
    /// other coordinator's entry: only it knows its KEKs).
    #[serde(default)]
    pub key_encryption_key_uri: String,
    /// The split wrapped by that KEK, base64; filled only in the serving coordinator's own
    /// entry, and empty in an attested release, which carries `sealedKeyMaterial` instead.
    #[serde(default)]
    pub key_material: String,
    /// Attested release only, own entry: the HPKE-sealed split material, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_key_material: Option<String>,
    /// Attested release only, own entry: what `sealedKeyMaterial` holds once opened,
    /// `cloud-kms` (the KMS ciphertext) or `broker` (the plaintext split).
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

/// `{"keys": [...]}`: the answer of `:recent` and of attested release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionKeyList {
    /// The keys, newest first.
    pub keys: Vec<EncryptionKey>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EncryptionKey {
        EncryptionKey {
            name: "encryptionKeys/2a4f".into(),
            encryption_key_type: KEY_TYPE.into(),
            public_keyset_handle: "{\"primaryKeyId\":1}".into(),
            public_key_material: "AAAA".into(),
            creation_time: 1_669_252_790_485,
            activation_time: 1_669_252_790_485,
            expiration_time: 1_669_943_990_485,
            ttl_time: 1_700_788_790,
            key_data: vec![
                KeyData {
                    public_key_signature: "c2ln".into(),
                    key_encryption_key_uri: "aws-kms://arn:aws:kms:us-east-1:1:key/k".into(),
                    key_material: "Y3Q=".into(),
                    ..KeyData::default()
                },
                KeyData::default(),
            ],
        }
    }

    #[test]
    fn times_are_proto3_strings_and_ttl_a_number() {
        let text = serde_json::to_string(&key()).unwrap_or_default();
        assert!(text.contains(r#""creationTime":"1669252790485""#), "{text}");
        assert!(text.contains(r#""ttlTime":1700788790"#), "{text}");
        assert!(!text.contains("sealedKeyMaterial"), "{text}");
        // Every keyData entry carries the three string members the C++ fetcher requires.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        for entry in value["keyData"].as_array().into_iter().flatten() {
            for member in ["publicKeySignature", "keyEncryptionKeyUri", "keyMaterial"] {
                assert!(entry[member].is_string(), "{member} in {entry}");
            }
        }
    }

    #[test]
    fn a_document_round_trips_and_numbers_are_accepted_for_times() {
        let k = key();
        let text = serde_json::to_string(&k).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<EncryptionKey>(&text).ok(),
            Some(k.clone())
        );
        let numeric = text.replace(
            r#""creationTime":"1669252790485""#,
            r#""creationTime":1669252790485"#,
        );
        assert_eq!(
            serde_json::from_str::<EncryptionKey>(&numeric).ok(),
            Some(k.clone())
        );
        let bad = text.replace("\"1669252790485\"", "\"soon\"");
        assert!(serde_json::from_str::<EncryptionKey>(&bad).is_err());
        assert_eq!(k.key_id(), "2a4f");
    }

    #[test]
    fn debug_never_prints_material() {
        let printed = format!("{:?}", key().key_data[0]);
        assert!(!printed.contains("Y3Q="), "{printed}");
    }
}
