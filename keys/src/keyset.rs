//! Tink HPKE keysets: generation, parsing and Tink-compatible hybrid encryption.
//!
//! A Keyferry private key travels as a serialized Tink `Keyset` (DESIGN §4.1) so that a
//! workload using Google Tink can load the recombined splits as they are. The keyset shape is
//! fixed: one `HpkePrivateKey`, ENABLED, RAW output prefix, DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256 and the use case's AEAD. With RAW, Tink's HybridEncrypt output is exactly the
//! HPKE encapsulated key followed by the AEAD ciphertext, with Tink's context info as the HPKE
//! `info` and an empty AAD.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hpke::aead::{AesGcm256, ChaCha20Poly1305};
use prost::Message as _;
use rand::RngCore as _;
use zeroize::Zeroizing;

use crate::suite_hpke::{self, KEY_LEN, X25519PrivateKey};
use crate::tink::{
    self, HPKE_PRIVATE_KEY_TYPE_URL, HPKE_PUBLIC_KEY_TYPE_URL, HpkeKdf, HpkeKem, HpkeParams,
    HpkePrivateKey, HpkePublicKey, JsonKey, JsonKeyData, JsonKeyset, KeyData, KeyMaterialType,
    KeyStatusType, Keyset, OutputPrefixType,
};
use crate::{Aead, KeyError, rng::os_rng};

/// A freshly generated key pair in every form the coordinator publishes or splits.
pub struct GeneratedKey {
    public_key: [u8; KEY_LEN],
    private_keyset: Zeroizing<Vec<u8>>,
    public_keyset_json: String,
    aead: Aead,
    tink_key_id: u32,
}

impl GeneratedKey {
    /// The raw X25519 public key.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.public_key
    }

    /// The public key in standard base64: the `publicKeyMaterial` and public key set `key`.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.public_key)
    }

    /// The serialized Tink `Keyset` holding the private key: what gets split. Secret.
    pub fn private_keyset(&self) -> &Zeroizing<Vec<u8>> {
        &self.private_keyset
    }

    /// Tink's JSON public keyset (the coordinator's `publicKeysetHandle`).
    pub fn public_keyset_json(&self) -> &str {
        &self.public_keyset_json
    }

    /// The HPKE AEAD the key is for.
    pub fn aead(&self) -> Aead {
        self.aead
    }

    /// Tink's key id inside both keysets (not the Keyferry key id).
    pub fn tink_key_id(&self) -> u32 {
        self.tink_key_id
    }
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public_key", &self.public_key_base64())
            .field("private_keyset", &"<redacted>")
            .field("aead", &self.aead)
            .field("tink_key_id", &self.tink_key_id)
            .finish()
    }
}

/// Generates an HPKE key pair for `aead` from the OS CSPRNG.
///
/// The private key is 32 random bytes stored unclamped, as Tink stores its own (X25519
/// clamps at use). The Tink key id is random, non-zero and below 2³¹: readers that hold key
/// ids in a signed 32-bit integer (Tink Java's JSON reader did) then never see a negative id.
///
/// # Panics
/// When the OS has no randomness (see the crate's RNG notes).
pub fn generate(aead: Aead) -> Result<GeneratedKey, KeyError> {
    let mut rng = os_rng();
    let mut private_bytes = Zeroizing::new([0u8; KEY_LEN]);
    rng.fill_bytes(&mut *private_bytes);
    let public_key = suite_hpke::public_key_of(&suite_hpke::private_key(&*private_bytes)?);
    let tink_key_id = loop {
        let id = rng.next_u32() & 0x7FFF_FFFF;
        if id != 0 {
            break id;
        }
    };

    let hpke_public = hpke_public_key(&public_key, aead);
    let hpke_private = HpkePrivateKey {
        version: 0,
        public_key: Some(hpke_public.clone()),
        private_key: private_bytes.to_vec(),
    };
    let keyset = Keyset {
        primary_key_id: tink_key_id,
        key: vec![tink::keyset::Key {
            key_data: Some(KeyData {
                type_url: HPKE_PRIVATE_KEY_TYPE_URL.to_owned(),
                value: hpke_private.encode_to_vec(),
                key_material_type: KeyMaterialType::AsymmetricPrivate as i32,
            }),
            status: KeyStatusType::Enabled as i32,
            key_id: tink_key_id,
            output_prefix_type: OutputPrefixType::Raw as i32,
        }],
    };
    Ok(GeneratedKey {
        public_key,
        // encode_to_vec allocates the exact length, so no unwiped copy is left by growth.
        private_keyset: Zeroizing::new(keyset.encode_to_vec()),
        public_keyset_json: public_keyset_json(tink_key_id, &hpke_public),
        aead,
        tink_key_id,
    })
}

fn hpke_params(aead: Aead) -> HpkeParams {
    HpkeParams {
        kem: HpkeKem::DhkemX25519HkdfSha256 as i32,
        kdf: HpkeKdf::HkdfSha256 as i32,
        aead: aead.to_tink() as i32,
    }
}

fn hpke_public_key(public_key: &[u8; KEY_LEN], aead: Aead) -> HpkePublicKey {
    HpkePublicKey {
        version: 0,
        params: Some(hpke_params(aead)),
        public_key: public_key.to_vec(),
    }
}

/// Tink's JSON public keyset, formatted as Tink's Python writer does (two-space indent).
fn public_keyset_json(tink_key_id: u32, public: &HpkePublicKey) -> String {
    let keyset = JsonKeyset {
        primary_key_id: tink_key_id,
        key: vec![JsonKey {
            key_data: JsonKeyData {
                type_url: HPKE_PUBLIC_KEY_TYPE_URL.to_owned(),
                value: STANDARD.encode(public.encode_to_vec()),
                key_material_type: "ASYMMETRIC_PUBLIC".to_owned(),
            },
            status: "ENABLED".to_owned(),
            key_id: tink_key_id,
            output_prefix_type: "RAW".to_owned(),
        }],
    };
    // Strings and integers only: serialization cannot fail.
    serde_json::to_string_pretty(&keyset).expect("JSON keyset serializes")
}

/// Checks the suite of a stored `HpkePublicKey` and returns its AEAD and raw key.
fn check_public(public: &HpkePublicKey) -> Result<(Aead, [u8; KEY_LEN]), KeyError> {
    if public.version != 0 {
        return Err(KeyError::UnsupportedKeyVersion(public.version));
    }
    let params = public
        .params
        .ok_or(KeyError::MalformedKeyset("HPKE params missing"))?;
    let aead = Aead::from_tink(params.aead)
        .filter(|_| {
            params.kem == HpkeKem::DhkemX25519HkdfSha256 as i32
                && params.kdf == HpkeKdf::HkdfSha256 as i32
        })
        .ok_or(KeyError::UnsupportedHpkeParams {
            kem: params.kem,
            kdf: params.kdf,
            aead: params.aead,
        })?;
    let key = <[u8; KEY_LEN]>::try_from(public.public_key.as_slice()).map_err(|_| {
        KeyError::InvalidKeyLength {
            what: "public key",
            len: public.public_key.len(),
        }
    })?;
    Ok((aead, key))
}

/// A Tink HPKE private keyset checked and ready to decrypt: what a workload holds after
/// recombining the splits.
pub struct PrivateKeyset {
    private_key: X25519PrivateKey,
    public_key: [u8; KEY_LEN],
    aead: Aead,
    tink_key_id: u32,
}

impl PrivateKeyset {
    /// Parses a serialized Tink `Keyset` of the Keyferry shape.
    ///
    /// Refuses anything Keyferry would not have generated: more or fewer than one key, a
    /// primary id that is not that key, a key not ENABLED, a prefix other than RAW, a suite
    /// other than DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/(ChaCha20-Poly1305 | AES-256-GCM),
    /// and a stored public key that is not the private key's (a corrupted or forged keyset
    /// would otherwise look fine until the first ciphertext fails).
    pub fn from_tink_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let keyset = Keyset::decode(bytes).map_err(|_| KeyError::MalformedKeyset("Keyset"))?;
        let [key] = keyset.key.as_slice() else {
            return Err(KeyError::KeyCount(keyset.key.len()));
        };
        if keyset.primary_key_id != key.key_id {
            return Err(KeyError::PrimaryKeyMismatch {
                primary: keyset.primary_key_id,
                key: key.key_id,
            });
        }
        if key.status != KeyStatusType::Enabled as i32 {
            return Err(KeyError::KeyNotEnabled(key.status));
        }
        if key.output_prefix_type != OutputPrefixType::Raw as i32 {
            return Err(KeyError::UnsupportedOutputPrefix(key.output_prefix_type));
        }
        let key_data = key
            .key_data
            .as_ref()
            .ok_or(KeyError::MalformedKeyset("key data missing"))?;
        if key_data.type_url != HPKE_PRIVATE_KEY_TYPE_URL {
            return Err(KeyError::UnsupportedKeyType(key_data.type_url.clone()));
        }
        if key_data.key_material_type != KeyMaterialType::AsymmetricPrivate as i32 {
            return Err(KeyError::UnsupportedKeyMaterialType(
                key_data.key_material_type,
            ));
        }
        let private = HpkePrivateKey::decode(key_data.value.as_slice())
            .map_err(|_| KeyError::MalformedKeyset("HpkePrivateKey"))?;
        if private.version != 0 {
            return Err(KeyError::UnsupportedKeyVersion(private.version));
        }
        let public = private
            .public_key
            .as_ref()
            .ok_or(KeyError::MalformedKeyset("HPKE public key missing"))?;
        let (aead, public_key) = check_public(public)?;
        let private_key = suite_hpke::private_key(&private.private_key)?;
        if suite_hpke::public_key_of(&private_key) != public_key {
            return Err(KeyError::PublicKeyMismatch);
        }
        Ok(Self {
            private_key,
            public_key,
            aead,
            tink_key_id: key.key_id,
        })
    }

    /// The raw X25519 public key (checked to match the private key).
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.public_key
    }

    /// The HPKE AEAD of the key.
    pub fn aead(&self) -> Aead {
        self.aead
    }

    /// Tink's key id of the key.
    pub fn tink_key_id(&self) -> u32 {
        self.tink_key_id
    }

    /// Tink HybridDecrypt for a RAW-prefix HPKE key: `ciphertext` is the 32-byte encapsulated
    /// key followed by the AEAD ciphertext, `context_info` is the HPKE info, the AAD is empty.
    pub fn decrypt(
        &self,
        ciphertext: &[u8],
        context_info: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match self.aead {
            Aead::ChaCha20Poly1305 => suite_hpke::open::<ChaCha20Poly1305>(
                &self.private_key,
                context_info,
                b"",
                ciphertext,
            ),
            Aead::Aes256Gcm => {
                suite_hpke::open::<AesGcm256>(&self.private_key, context_info, b"", ciphertext)
            }
        }
    }
}

impl fmt::Debug for PrivateKeyset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeyset")
            .field("public_key", &STANDARD.encode(self.public_key))
            .field("private_key", &"<redacted>")
            .field("aead", &self.aead)
            .field("tink_key_id", &self.tink_key_id)
            .finish()
    }
}

/// What Tink HybridEncrypt produces with a RAW-prefix HPKE public keyset holding
/// `public_key` for `aead`: encapsulated key ‖ AEAD ciphertext, `context_info` as HPKE info,
/// empty AAD.
pub fn hybrid_encrypt(
    public_key: &[u8; KEY_LEN],
    aead: Aead,
    plaintext: &[u8],
    context_info: &[u8],
) -> Result<Vec<u8>, KeyError> {
    match aead {
        Aead::ChaCha20Poly1305 => {
            suite_hpke::seal::<ChaCha20Poly1305>(public_key, context_info, b"", plaintext)
        }
        Aead::Aes256Gcm => suite_hpke::seal::<AesGcm256>(public_key, context_info, b"", plaintext),
    }
}

/// A Tink JSON public keyset of the Keyferry shape, checked: what a client reads from
/// `publicKeysetHandle` before encrypting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeyset {
    public_key: [u8; KEY_LEN],
    aead: Aead,
    tink_key_id: u32,
}

impl PublicKeyset {
    /// Parses Tink's JSON public keyset: one ENABLED RAW `HpkePublicKey` with a supported
    /// suite, whose id is the primary id.
    pub fn from_tink_json(json: &str) -> Result<Self, KeyError> {
        let keyset: JsonKeyset = serde_json::from_str(json)
            .map_err(|_| KeyError::MalformedPublicKeyset("not a Tink JSON keyset"))?;
        let [key] = keyset.key.as_slice() else {
            return Err(KeyError::KeyCount(keyset.key.len()));
        };
        if keyset.primary_key_id != key.key_id {
            return Err(KeyError::PrimaryKeyMismatch {
                primary: keyset.primary_key_id,
                key: key.key_id,
            });
        }
        if key.status != "ENABLED" {
            return Err(KeyError::MalformedPublicKeyset("status is not ENABLED"));
        }
        if key.output_prefix_type != "RAW" {
            return Err(KeyError::MalformedPublicKeyset("output prefix is not RAW"));
        }
        if key.key_data.type_url != HPKE_PUBLIC_KEY_TYPE_URL {
            return Err(KeyError::UnsupportedKeyType(key.key_data.type_url.clone()));
        }
        if key.key_data.key_material_type != "ASYMMETRIC_PUBLIC" {
            return Err(KeyError::MalformedPublicKeyset(
                "key material type is not ASYMMETRIC_PUBLIC",
            ));
        }
        let value = STANDARD
            .decode(&key.key_data.value)
            .map_err(|_| KeyError::MalformedPublicKeyset("key value is not base64"))?;
        let public = HpkePublicKey::decode(value.as_slice())
            .map_err(|_| KeyError::MalformedPublicKeyset("key value is not an HpkePublicKey"))?;
        let (aead, public_key) = check_public(&public)?;
        Ok(Self {
            public_key,
            aead,
            tink_key_id: key.key_id,
        })
    }

    /// The raw X25519 public key.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.public_key
    }

    /// The HPKE AEAD of the key.
    pub fn aead(&self) -> Aead {
        self.aead
    }

    /// Tink's key id of the key.
    pub fn tink_key_id(&self) -> u32 {
        self.tink_key_id
    }

    /// [`hybrid_encrypt`] to this keyset's key.
    pub fn encrypt(&self, plaintext: &[u8], context_info: &[u8]) -> Result<Vec<u8>, KeyError> {
        hybrid_encrypt(&self.public_key, self.aead, plaintext, context_info)
    }
}
