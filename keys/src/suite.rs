//! The HPKE suite choices a use case can make.

use serde::{Deserialize, Serialize};

use crate::tink::HpkeAead;

/// The HPKE AEAD of a use case's keys (DESIGN §4.1). KEM and KDF are fixed:
/// DHKEM(X25519, HKDF-SHA256) and HKDF-SHA256.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Aead {
    /// ChaCha20-Poly1305 (HPKE 0x0003): what the Google coordinator uses, hence the default.
    #[default]
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
    /// AES-256-GCM (HPKE 0x0002): what Bidding & Auction uses on Azure.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl Aead {
    /// The Tink `HpkeAead` enum value stored in keysets.
    pub(crate) fn to_tink(self) -> HpkeAead {
        match self {
            Self::ChaCha20Poly1305 => HpkeAead::Chacha20Poly1305,
            Self::Aes256Gcm => HpkeAead::Aes256Gcm,
        }
    }

    /// The AEAD for a Tink `HpkeAead` value, if Keyferry supports it (AES-128-GCM is not).
    pub(crate) fn from_tink(value: i32) -> Option<Self> {
        match HpkeAead::try_from(value).ok()? {
            HpkeAead::Chacha20Poly1305 => Some(Self::ChaCha20Poly1305),
            HpkeAead::Aes256Gcm => Some(Self::Aes256Gcm),
            HpkeAead::AeadUnknown | HpkeAead::Aes128Gcm => None,
        }
    }
}
