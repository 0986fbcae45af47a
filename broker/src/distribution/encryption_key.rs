//! The `EncryptionKey` document of DESIGN §5.2 (the `wire` crate's type) as
//! this coordinator builds it for one of its keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use wire::{EncryptionKey, KEY_TYPE, KeyData};

use super::OwnMaterial;
use crate::config::Role;
use crate::storage::KeyRecord;

/// Builds the document for `key` as coordinator `role` serves it, with this
/// coordinator's `own` material in its entry.
pub(super) fn encryption_key(key: &KeyRecord, role: Role, own: OwnMaterial) -> EncryptionKey {
    // `signature` is always the Type-1's and `peer_signature` the Type-2's,
    // on both coordinators.
    let other_entry = |signature: &str| KeyData {
        public_key_signature: signature.to_owned(),
        ..KeyData::default()
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
        encryption_key_type: KEY_TYPE.to_owned(),
        public_keyset_handle: key.public_keyset.clone(),
        public_key_material: B64.encode(&key.public_key),
        creation_time: key.creation_time,
        activation_time: key.activation_time,
        expiration_time: key.expiration_time,
        ttl_time: key.ttl_time.div_euclid(1000),
        key_data,
    }
}
