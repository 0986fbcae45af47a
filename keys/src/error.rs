//! The crate's one error type.

/// Everything that can go wrong with Keyferry key material.
///
/// Variants name the problem and carry only non-secret facts (lengths, type URLs, enum
/// numbers): never key bytes, plaintexts or splits, so an error can be logged as it is.
/// Cryptographic failures (a wrong key, tampered ciphertext, wrong context) are deliberately
/// one variant each, because telling them apart would help an attacker and not an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not a protobuf `Keyset` (or its `HpkePrivateKey` is not a protobuf):
    /// usually a corrupted split, or two splits of different keys recombined.
    #[error("private keyset is not a valid Tink protobuf ({0})")]
    MalformedKeyset(&'static str),

    /// The JSON is not a Tink public keyset of the Keyferry shape (the reason says which part).
    #[error("public keyset JSON is invalid: {0}")]
    MalformedPublicKeyset(&'static str),

    /// Keyferry keysets hold exactly one key; several would make "which key decrypts" a guess.
    #[error("keyset holds {0} keys, expected exactly one")]
    KeyCount(usize),

    /// The keyset's `primary_key_id` does not name its only key.
    #[error("keyset primary key id {primary} does not match its key id {key}")]
    PrimaryKeyMismatch {
        /// `Keyset.primary_key_id`.
        primary: u32,
        /// `Keyset.Key.key_id`.
        key: u32,
    },

    /// The key is disabled or destroyed (Tink would refuse to use it too).
    #[error("keyset key status is {0}, expected ENABLED")]
    KeyNotEnabled(i32),

    /// The key is not an HPKE private key.
    #[error("unsupported key type {0}")]
    UnsupportedKeyType(String),

    /// The key material type is not `ASYMMETRIC_PRIVATE`.
    #[error("key material type is {0}, expected ASYMMETRIC_PRIVATE")]
    UnsupportedKeyMaterialType(i32),

    /// Only the RAW output prefix is used by the Privacy Sandbox coordinator: any other
    /// prefix changes the ciphertext format.
    #[error("output prefix type is {0}, expected RAW")]
    UnsupportedOutputPrefix(i32),

    /// An `HpkePrivateKey`/`HpkePublicKey` version other than 0.
    #[error("unsupported HPKE key version {0}")]
    UnsupportedKeyVersion(u32),

    /// HPKE parameters other than DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
    /// ChaCha20-Poly1305 or AES-256-GCM (Tink enum numbers).
    #[error("unsupported HPKE parameters kem={kem} kdf={kdf} aead={aead}")]
    UnsupportedHpkeParams {
        /// `HpkeParams.kem`.
        kem: i32,
        /// `HpkeParams.kdf`.
        kdf: i32,
        /// `HpkeParams.aead`.
        aead: i32,
    },

    /// A key field does not hold a 32-byte X25519 value.
    #[error("{what} is {len} bytes, expected 32")]
    InvalidKeyLength {
        /// Which key: "public key" or "private key".
        what: &'static str,
        /// The length found.
        len: usize,
    },

    /// The public key stored in the keyset is not the one derived from its private key: the
    /// keyset was tampered with or assembled wrongly, and ciphertexts made with the published
    /// key would not open.
    #[error("stored public key does not match the private key")]
    PublicKeyMismatch,

    /// A ciphertext shorter than the 32-byte encapsulated key plus the AEAD tag.
    #[error("ciphertext is {0} bytes, too short to hold an encapsulated key and tag")]
    CiphertextTooShort(usize),

    /// The ciphertext did not open: wrong key, wrong context info or AAD, or tampering.
    #[error("decryption failed")]
    DecryptionFailed,

    /// HPKE encryption failed (in practice: an all-zero Diffie-Hellman result from a
    /// low-order public key).
    #[error("encryption failed")]
    EncryptionFailed,

    /// The two splits have different lengths, so they are not halves of the same keyset.
    #[error("split lengths differ ({a} and {b} bytes)")]
    SplitLengthMismatch {
        /// Length of split A.
        a: usize,
        /// Length of split B.
        b: usize,
    },

    /// The PKCS#8 document is not a P-256 ECDSA private key.
    #[error("signing key is not a valid P-256 PKCS#8 private key")]
    InvalidSigningKey,

    /// Generating a P-256 signing key failed.
    #[error("signing key generation failed")]
    SigningKeyGeneration,

    /// The ES256 signature does not verify for this message and public key (or the public
    /// key is not a P-256 SubjectPublicKeyInfo).
    #[error("signature verification failed")]
    BadSignature,
}
