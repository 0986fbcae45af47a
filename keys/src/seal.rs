//! HPKE sealing of splits in transit: the Type-1 → Type-2 handover (DESIGN §4.3) and the
//! attested release to a workload's TEE key (DESIGN §5.3).
//!
//! Fixed suite, no negotiation: base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20-Poly1305. The `info` strings bind a ciphertext to its purpose, so a sealed
//! handover can never be replayed as a release or the other way round; the AAD binds it to
//! the key id.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hpke::Serializable as _;
use hpke::aead::ChaCha20Poly1305;
use rand::RngCore as _;
use zeroize::Zeroizing;

use crate::KeyError;
use crate::rng::os_rng;
use crate::suite_hpke::{self, KEY_LEN, X25519PrivateKey};

/// HPKE `info` for split B sealed to the Type-2 coordinator's handover key.
pub const HANDOVER_INFO: &[u8] = b"keyferry/v1/handover-split";
/// HPKE `info` for a split sealed to an attested workload's `teePublicKey`.
pub const RELEASE_INFO: &[u8] = b"keyferry/v1/sealed-split";

/// An X25519 key pair that receives sealed splits (Type-2's handover key, a TEE's key).
pub struct RecipientKey {
    private_key: X25519PrivateKey,
    public_key: [u8; KEY_LEN],
}

impl RecipientKey {
    /// A fresh key pair from the OS CSPRNG.
    ///
    /// # Panics
    /// When the OS has no randomness (see the crate's RNG notes).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        os_rng().fill_bytes(&mut *bytes);
        // 32 bytes: parsing cannot fail.
        Self::from_private_bytes(&*bytes).expect("32-byte X25519 private key")
    }

    /// Loads a stored 32-byte X25519 private key.
    pub fn from_private_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let private_key = suite_hpke::private_key(bytes)?;
        let public_key = suite_hpke::public_key_of(&private_key);
        Ok(Self {
            private_key,
            public_key,
        })
    }

    /// The raw X25519 public key to publish.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.public_key
    }

    /// The private key, for storing it (KMS-wrapped). X25519 clamps at use, so these are the
    /// bytes that were generated or loaded.
    pub fn private_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        self.private_key.write_exact(&mut *bytes);
        bytes
    }
}

impl fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientKey")
            .field("public_key", &STANDARD.encode(self.public_key))
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Seals `plaintext` to `recipient_public` (raw 32-byte X25519 key): returns the 32-byte
/// encapsulated key followed by the ciphertext. Refuses a key of any other length.
pub fn seal(
    recipient_public: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    suite_hpke::seal::<ChaCha20Poly1305>(recipient_public, info, aad, plaintext)
}

/// Opens what [`seal`] produced; fails with the same error for a wrong recipient, `info`,
/// `aad` or tampered bytes.
pub fn open(
    recipient: &RecipientKey,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    suite_hpke::open::<ChaCha20Poly1305>(&recipient.private_key, info, aad, sealed)
}
