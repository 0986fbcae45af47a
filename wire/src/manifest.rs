//! The signed public key manifest (`…/public-keys:signed`, DESIGN §4.4):
//! each published key with both coordinators' signatures over it and the
//! proof that each coordinator's log records its publication.
//!
//! A signature's message is the Privacy Sandbox public key signature
//! message, `keyId|creationTime|publicKeyMaterial` (creation time as
//! RFC 3339 with milliseconds); the Type-2's signature is its
//! acknowledgement of the handover, made only once it stored split B.

use serde::{Deserialize, Serialize};
use transparency::EntryInclusion;

/// `role` of the Type-1's signature and inclusion.
pub const TYPE1: &str = "type1";
/// `role` of the Type-2's.
pub const TYPE2: &str = "type2";
/// The only signature algorithm: ECDSA P-256 with SHA-256, r ‖ s.
pub const ES256: &str = "ES256";

/// `{"keys": [...]}`, newest expiry first, like the unsigned list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedKeyList {
    /// The keys.
    pub keys: Vec<SignedKey>,
}

/// One published key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedKey {
    /// The key id.
    pub id: String,
    /// The raw X25519 public key, standard base64 (as in the unsigned list).
    pub key: String,
    /// Unix ms: the creation time the signatures cover.
    pub creation_time: i64,
    /// The Type-1's signature, then the Type-2's.
    pub signatures: Vec<KeySignature>,
    /// The Type-1's log entry, then the Type-2's (one is missing only while
    /// a coordinator cannot be reached; readers refuse such a key).
    pub inclusion: Vec<KeyInclusion>,
}

/// One coordinator's signature over a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeySignature {
    /// [`TYPE1`] or [`TYPE2`].
    pub role: String,
    /// The signer's base URL.
    pub coordinator: String,
    /// The signing key's id: base64url (no padding) of SHA-256 over its
    /// SubjectPublicKeyInfo DER.
    pub kid: String,
    /// Always [`ES256`].
    pub alg: String,
    /// The signature, standard base64 (r ‖ s).
    pub signature: String,
    /// Where the signer publishes its signing key (`signingKey` of its
    /// `/v1/peer/keys` document).
    pub keys_url: String,
}

/// One coordinator's log entry recording the key's publication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInclusion {
    /// [`TYPE1`] (a `key.activated` entry) or [`TYPE2`] (`key.received`).
    pub role: String,
    /// The log's coordinator, base URL; its tree heads are at
    /// `/v1/audit/sth`.
    pub coordinator: String,
    /// The entry and its proof.
    #[serde(flatten)]
    pub proof: EntryInclusion,
}
