//! The subset of Google Tink's protobuf and JSON keyset formats that HPKE keys need.
//!
//! Written by hand from Tink's `tink.proto` and `hpke.proto` (no `protoc`, no build script).
//! Field numbers and enum values are checked by the tests against keysets that Tink itself
//! produced: decoding one and encoding it again gives the identical bytes.
//!
//! The messages that can carry private key bytes ([`KeyData`], [`HpkePrivateKey`]) wipe their
//! byte fields on drop and redact them in `Debug`, because prost can only store `bytes` fields
//! in a plain `Vec<u8>`.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// Type URL of an HPKE private key inside a keyset.
pub const HPKE_PRIVATE_KEY_TYPE_URL: &str = "type.googleapis.com/google.crypto.tink.HpkePrivateKey";
/// Type URL of an HPKE public key inside a public keyset.
pub const HPKE_PUBLIC_KEY_TYPE_URL: &str = "type.googleapis.com/google.crypto.tink.HpkePublicKey";

/// `google.crypto.tink.Keyset`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Keyset {
    /// Id of the key used by default (Keyferry keysets have only one key).
    #[prost(uint32, tag = "1")]
    pub primary_key_id: u32,
    /// The keys.
    #[prost(message, repeated, tag = "2")]
    pub key: Vec<keyset::Key>,
}

/// Nested messages of [`Keyset`].
pub mod keyset {
    /// `google.crypto.tink.Keyset.Key`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Key {
        /// The key itself.
        #[prost(message, optional, tag = "1")]
        pub key_data: Option<super::KeyData>,
        /// A [`super::KeyStatusType`].
        #[prost(enumeration = "super::KeyStatusType", tag = "2")]
        pub status: i32,
        /// Tink's key id (also the 5-byte prefix for non-RAW keys).
        #[prost(uint32, tag = "3")]
        pub key_id: u32,
        /// An [`super::OutputPrefixType`].
        #[prost(enumeration = "super::OutputPrefixType", tag = "4")]
        pub output_prefix_type: i32,
    }
}

/// `google.crypto.tink.KeyData`.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct KeyData {
    /// Names the key's protobuf type, e.g. [`HPKE_PRIVATE_KEY_TYPE_URL`].
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The serialized key message (secret for private keys).
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// A [`KeyMaterialType`].
    #[prost(enumeration = "KeyMaterialType", tag = "3")]
    pub key_material_type: i32,
}

impl Drop for KeyData {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl fmt::Debug for KeyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyData")
            .field("type_url", &self.type_url)
            .field(
                "value",
                &format_args!("<{} bytes redacted>", self.value.len()),
            )
            .field("key_material_type", &self.key_material_type)
            .finish()
    }
}

/// `google.crypto.tink.KeyStatusType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum KeyStatusType {
    /// Unset.
    UnknownStatus = 0,
    /// Usable.
    Enabled = 1,
    /// Kept but not usable.
    Disabled = 2,
    /// Key material deleted.
    Destroyed = 3,
}

/// `google.crypto.tink.OutputPrefixType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum OutputPrefixType {
    /// Unset.
    UnknownPrefix = 0,
    /// 5-byte prefix: 0x01 ‖ key id.
    Tink = 1,
    /// 5-byte prefix: 0x00 ‖ key id.
    Legacy = 2,
    /// No prefix: what the Privacy Sandbox coordinator uses.
    Raw = 3,
    /// Like LEGACY.
    Crunchy = 4,
}

/// `google.crypto.tink.KeyData.KeyMaterialType`.
///
/// Note the numbering: `ASYMMETRIC_PRIVATE` is 2 and `ASYMMETRIC_PUBLIC` is 3 (checked
/// against Tink-made keysets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum KeyMaterialType {
    /// Unset.
    UnknownKeymaterial = 0,
    /// Symmetric key.
    Symmetric = 1,
    /// Private half of an asymmetric key.
    AsymmetricPrivate = 2,
    /// Public half of an asymmetric key.
    AsymmetricPublic = 3,
    /// Key held by a remote KMS.
    Remote = 4,
}

/// `google.crypto.tink.HpkeKem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum HpkeKem {
    /// Unset.
    KemUnknown = 0,
    /// DHKEM(X25519, HKDF-SHA256), the only KEM Keyferry uses.
    DhkemX25519HkdfSha256 = 1,
    /// DHKEM(P-256, HKDF-SHA256).
    DhkemP256HkdfSha256 = 2,
    /// DHKEM(P-384, HKDF-SHA384).
    DhkemP384HkdfSha384 = 3,
    /// DHKEM(P-521, HKDF-SHA512).
    DhkemP521HkdfSha512 = 4,
}

/// `google.crypto.tink.HpkeKdf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum HpkeKdf {
    /// Unset.
    KdfUnknown = 0,
    /// HKDF-SHA256, the only KDF Keyferry uses.
    HkdfSha256 = 1,
    /// HKDF-SHA384.
    HkdfSha384 = 2,
    /// HKDF-SHA512.
    HkdfSha512 = 3,
}

/// `google.crypto.tink.HpkeAead`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, prost::Enumeration)]
#[repr(i32)]
pub enum HpkeAead {
    /// Unset.
    AeadUnknown = 0,
    /// AES-128-GCM (not used by Keyferry).
    Aes128Gcm = 1,
    /// AES-256-GCM.
    Aes256Gcm = 2,
    /// ChaCha20-Poly1305.
    Chacha20Poly1305 = 3,
}

/// `google.crypto.tink.HpkeParams`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct HpkeParams {
    /// An [`HpkeKem`].
    #[prost(enumeration = "HpkeKem", tag = "1")]
    pub kem: i32,
    /// An [`HpkeKdf`].
    #[prost(enumeration = "HpkeKdf", tag = "2")]
    pub kdf: i32,
    /// An [`HpkeAead`].
    #[prost(enumeration = "HpkeAead", tag = "3")]
    pub aead: i32,
}

/// `google.crypto.tink.HpkePublicKey`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HpkePublicKey {
    /// Key format version, 0.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The HPKE suite.
    #[prost(message, optional, tag = "2")]
    pub params: Option<HpkeParams>,
    /// The raw KEM public key (32 bytes for X25519).
    #[prost(bytes = "vec", tag = "3")]
    pub public_key: Vec<u8>,
}

/// `google.crypto.tink.HpkePrivateKey`.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct HpkePrivateKey {
    /// Key format version, 0.
    #[prost(uint32, tag = "1")]
    pub version: u32,
    /// The matching public key and suite.
    #[prost(message, optional, tag = "2")]
    pub public_key: Option<HpkePublicKey>,
    /// The raw KEM private key (32 bytes for X25519): secret.
    #[prost(bytes = "vec", tag = "3")]
    pub private_key: Vec<u8>,
}

impl Drop for HpkePrivateKey {
    fn drop(&mut self) {
        self.private_key.zeroize();
    }
}

impl fmt::Debug for HpkePrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HpkePrivateKey")
            .field("version", &self.version)
            .field("public_key", &self.public_key)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Tink's JSON keyset format (`JsonKeysetWriter`), as used for a public keyset in the
/// coordinator's `publicKeysetHandle`. Enum values are their proto names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonKeyset {
    /// Id of the primary key.
    pub primary_key_id: u32,
    /// The keys.
    pub key: Vec<JsonKey>,
}

/// One key of a [`JsonKeyset`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonKey {
    /// The key itself.
    pub key_data: JsonKeyData,
    /// Proto name of a [`KeyStatusType`], e.g. `"ENABLED"`.
    pub status: String,
    /// Tink's key id.
    pub key_id: u32,
    /// Proto name of an [`OutputPrefixType`], e.g. `"RAW"`.
    pub output_prefix_type: String,
}

/// [`KeyData`] in JSON: `value` is the standard base64 of the serialized key message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonKeyData {
    /// Names the key's protobuf type, e.g. [`HPKE_PUBLIC_KEY_TYPE_URL`].
    pub type_url: String,
    /// Standard base64 of the serialized key message.
    pub value: String,
    /// Proto name of a [`KeyMaterialType`], e.g. `"ASYMMETRIC_PUBLIC"`.
    pub key_material_type: String,
}
