//! RFC 9180 base-mode seal and open with DHKEM(X25519, HKDF-SHA256) and HKDF-SHA256, shared by
//! Tink hybrid encryption and the transport sealing of splits.
//!
//! Wire form everywhere: the 32-byte encapsulated key followed by the AEAD ciphertext. That is
//! Tink's RAW-prefix HPKE ciphertext, so one format serves both uses.

use hpke::aead::Aead as HpkeAead;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::KeyError;
use crate::rng::os_rng;

/// The KEM of every Keyferry key.
pub(crate) type X25519Kem = X25519HkdfSha256;
/// An X25519 private key; wiped on drop (x25519-dalek's `zeroize` feature).
pub(crate) type X25519PrivateKey = <X25519Kem as Kem>::PrivateKey;

/// Length of an X25519 key and of the encapsulated key.
pub(crate) const KEY_LEN: usize = 32;
/// Both AEADs used here have 16-byte tags.
const TAG_LEN: usize = 16;

/// Parses 32 raw bytes as an X25519 private key.
pub(crate) fn private_key(bytes: &[u8]) -> Result<X25519PrivateKey, KeyError> {
    X25519PrivateKey::from_bytes(bytes).map_err(|_| KeyError::InvalidKeyLength {
        what: "private key",
        len: bytes.len(),
    })
}

/// The public key of `private`, as raw bytes.
pub(crate) fn public_key_of(private: &X25519PrivateKey) -> [u8; KEY_LEN] {
    X25519Kem::sk_to_pk(private).to_bytes().into()
}

/// Seals `plaintext` to `recipient` (raw X25519 public key): returns enc ‖ ciphertext.
pub(crate) fn seal<A: HpkeAead>(
    recipient: &[u8],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let recipient = <X25519Kem as Kem>::PublicKey::from_bytes(recipient).map_err(|_| {
        KeyError::InvalidKeyLength {
            what: "public key",
            len: recipient.len(),
        }
    })?;
    let (enc, ciphertext) = hpke::single_shot_seal::<A, HkdfSha256, X25519Kem, _>(
        &OpModeS::Base,
        &recipient,
        info,
        plaintext,
        aad,
        &mut os_rng(),
    )
    .map_err(|_| KeyError::EncryptionFailed)?;
    let mut sealed = Vec::with_capacity(KEY_LEN + ciphertext.len());
    sealed.extend_from_slice(&enc.to_bytes());
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Opens enc ‖ ciphertext made by [`seal`] (or by Tink) for `recipient`.
pub(crate) fn open<A: HpkeAead>(
    recipient: &X25519PrivateKey,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.len() < KEY_LEN + TAG_LEN {
        return Err(KeyError::CiphertextTooShort(sealed.len()));
    }
    let (enc, ciphertext) = sealed.split_at(KEY_LEN);
    let enc =
        <X25519Kem as Kem>::EncappedKey::from_bytes(enc).map_err(|_| KeyError::DecryptionFailed)?;
    hpke::single_shot_open::<A, HkdfSha256, X25519Kem>(
        &OpModeR::Base,
        recipient,
        &enc,
        info,
        ciphertext,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| KeyError::DecryptionFailed)
}
