//! The checks between a release answer and a usable key: the document's shape, agreement of
//! the two coordinators, both public key signatures, and after recombination that the private
//! key is the published one.
//!
//! Each step returns a value only the previous step can produce ([`ReleasedKey`] from a
//! parsed document, [`HeldKey`] only from [`recombine_checked`]), so a key cannot reach the
//! key set without every check having passed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keys::{PrivateKeyset, PublicKeyset};
use zeroize::Zeroizing;

use crate::WorkloadError;
use crate::error::{KeyProblem, Role};
use crate::keyset::HeldKey;
use wire::{EncryptionKey, KEY_TYPE, KeyData};

/// What a coordinator's sealed material holds once opened (DESIGN §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SealedContent {
    /// The workload-cloud KMS ciphertext of the split: unwrap with the entry's KEK.
    CloudKms,
    /// The plaintext split.
    Broker,
}

/// The serving coordinator's own entry.
#[derive(Debug)]
pub(crate) struct OwnSplit {
    pub(crate) kek_uri: String,
    /// HPKE encapsulated key ‖ ciphertext.
    pub(crate) sealed: Vec<u8>,
    pub(crate) content: SealedContent,
}

/// A key document from one coordinator whose shape has been checked.
#[derive(Debug)]
pub(crate) struct ReleasedKey {
    pub(crate) id: String,
    pub(crate) served_by: Role,
    pub(crate) doc: EncryptionKey,
    pub(crate) public_key: [u8; 32],
    pub(crate) public_keyset: PublicKeyset,
    /// Type-1's signature, then Type-2's (decoded).
    pub(crate) signatures: [Vec<u8>; 2],
    pub(crate) own: OwnSplit,
}

const NAME_PREFIX: &str = "encryptionKeys/";

/// A key id safe to use as a file name and in logs: UUIDs and sequence ids fit.
fn key_id_of(name: &str) -> Result<String, KeyProblem> {
    let id = name.strip_prefix(NAME_PREFIX).ok_or_else(|| {
        KeyProblem::Malformed(format!("name does not start with `{NAME_PREFIX}`"))
    })?;
    let safe = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if safe {
        Ok(id.to_owned())
    } else {
        Err(KeyProblem::Malformed(
            "key id is empty, too long, or has characters other than A-Z a-z 0-9 - _".into(),
        ))
    }
}

impl ReleasedKey {
    /// Checks one coordinator's document. `served_by` is the coordinator that answered:
    /// its entry (`keyData[0]` for Type-1, `[1]` for Type-2) must carry the sealed split,
    /// and only its entry.
    pub(crate) fn parse(doc: EncryptionKey, served_by: Role) -> Result<Self, WorkloadError> {
        let id = key_id_of(&doc.name).map_err(|p| WorkloadError::key("?", p))?;
        let refuse = |p: KeyProblem| WorkloadError::key(&id, p);
        let malformed = |m: &str| refuse(KeyProblem::Malformed(m.to_owned()));

        if doc.encryption_key_type != KEY_TYPE {
            return Err(malformed(&format!(
                "encryptionKeyType `{}` is not {KEY_TYPE}",
                doc.encryption_key_type
            )));
        }
        let public_key = B64
            .decode(&doc.public_key_material)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or_else(|| malformed("publicKeyMaterial is not 32 bytes of base64"))?;
        let public_keyset = PublicKeyset::from_tink_json(&doc.public_keyset_handle)
            .map_err(|e| malformed(&format!("publicKeysetHandle: {e}")))?;
        if doc.ttl_time <= 0 || doc.expiration_time <= 0 {
            return Err(malformed("ttlTime and expirationTime must be positive"));
        }
        let [first, second] = doc.key_data.as_slice() else {
            return Err(malformed(&format!(
                "keyData has {} entries, expected 2",
                doc.key_data.len()
            )));
        };
        let signature = |entry: &KeyData, role: Role| {
            B64.decode(&entry.public_key_signature)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    malformed(&format!(
                        "the {role} publicKeySignature is missing or not base64"
                    ))
                })
        };
        let signatures = [
            signature(first, Role::Type1)?,
            signature(second, Role::Type2)?,
        ];

        let own_index = served_by.key_data_index();
        let own = &doc.key_data[own_index];
        let other = &doc.key_data[1 - own_index];
        if other.sealed_key_material.is_some() {
            // Which entry is "own" is told by where the sealed material is; both having it
            // would make that a guess.
            return Err(malformed(&format!(
                "the {served_by} coordinator answered sealed material in the other coordinator's entry"
            )));
        }
        let sealed = match own.sealed_key_material.as_deref() {
            None | Some("") => return Err(refuse(KeyProblem::MissingSealedMaterial(served_by))),
            Some(b64) => B64
                .decode(b64)
                .map_err(|_| malformed("sealedKeyMaterial is not base64"))?,
        };
        let content = match own.sealed_content.as_deref() {
            Some("cloud-kms") => SealedContent::CloudKms,
            Some("broker") => SealedContent::Broker,
            Some(other) => return Err(refuse(KeyProblem::UnknownSealedContent(other.to_owned()))),
            None => return Err(refuse(KeyProblem::UnknownSealedContent(String::new()))),
        };
        if content == SealedContent::CloudKms && own.key_encryption_key_uri.is_empty() {
            return Err(malformed(
                "sealedContent is cloud-kms but keyEncryptionKeyUri is empty",
            ));
        }
        let own = OwnSplit {
            kek_uri: own.key_encryption_key_uri.clone(),
            sealed,
            content,
        };
        Ok(ReleasedKey {
            id,
            served_by,
            doc,
            public_key,
            public_keyset,
            signatures,
            own,
        })
    }

    /// Checks that the other coordinator's document describes the same key.
    pub(crate) fn agrees_with(&self, other: &ReleasedKey) -> Result<(), WorkloadError> {
        let (a, b) = (&self.doc, &other.doc);
        let field = if self.public_key != other.public_key {
            Some("publicKeyMaterial")
        } else if self.public_keyset != other.public_keyset {
            Some("publicKeysetHandle")
        } else if a.creation_time != b.creation_time {
            Some("creationTime")
        } else if a.activation_time != b.activation_time {
            Some("activationTime")
        } else if a.expiration_time != b.expiration_time {
            Some("expirationTime")
        } else if a.ttl_time != b.ttl_time {
            Some("ttlTime")
        } else if self.signatures != other.signatures {
            Some("publicKeySignature")
        } else {
            None
        };
        match field {
            Some(f) => Err(WorkloadError::key(
                &self.id,
                KeyProblem::CoordinatorsDisagree(f),
            )),
            None => Ok(()),
        }
    }

    /// Verifies both coordinators' ES256 signatures over
    /// `keyId|creationTime|publicKeyMaterial`. `signing_keys` are SPKI DER, Type-1's first.
    pub(crate) fn verify_signatures(&self, signing_keys: [&[u8]; 2]) -> Result<(), WorkloadError> {
        let message = keys::public_key_signature_message(
            &self.id,
            self.doc.creation_time,
            &self.doc.public_key_material,
        );
        for (role, (key, signature)) in [Role::Type1, Role::Type2]
            .into_iter()
            .zip(signing_keys.into_iter().zip(&self.signatures))
        {
            keys::verify_signature(key, &message, signature)
                .map_err(|_| WorkloadError::key(&self.id, KeyProblem::BadSignature(role)))?;
        }
        Ok(())
    }
}

/// XORs the two splits and checks that the result is the published key: a valid Keyferry
/// keyset, whose public key is `publicKeyMaterial` and matches `publicKeysetHandle`.
/// `keep_tink_bytes` keeps the serialized keyset for `--export-keyset` (dev only).
pub(crate) fn recombine_checked(
    key: &ReleasedKey,
    split_type1: &[u8],
    split_type2: &[u8],
    keep_tink_bytes: bool,
) -> Result<HeldKey, WorkloadError> {
    let refuse = |p: KeyProblem| WorkloadError::key(&key.id, p);
    let bytes: Zeroizing<Vec<u8>> =
        keys::recombine(split_type1, split_type2).map_err(|e| refuse(KeyProblem::BadKeyset(e)))?;
    let keyset =
        PrivateKeyset::from_tink_bytes(&bytes).map_err(|e| refuse(KeyProblem::BadKeyset(e)))?;
    if keyset.public_key() != key.public_key {
        return Err(refuse(KeyProblem::PublicKeyMismatch));
    }
    if key.public_keyset.public_key() != key.public_key {
        return Err(refuse(KeyProblem::PublicKeysetMismatch(
            "its key is not publicKeyMaterial".into(),
        )));
    }
    if key.public_keyset.aead() != keyset.aead() {
        return Err(refuse(KeyProblem::PublicKeysetMismatch(format!(
            "AEAD {:?} but the private key is for {:?}",
            key.public_keyset.aead(),
            keyset.aead()
        ))));
    }
    if key.public_keyset.tink_key_id() != keyset.tink_key_id() {
        return Err(refuse(KeyProblem::PublicKeysetMismatch(
            "its Tink key id differs from the private keyset's".into(),
        )));
    }
    Ok(HeldKey {
        id: key.id.clone(),
        keyset,
        public_keyset_json: key.doc.public_keyset_handle.clone(),
        tink_bytes: keep_tink_bytes.then_some(bytes),
        creation_ms: key.doc.creation_time,
        activation_ms: key.doc.activation_time,
        expiration_ms: key.doc.expiration_time,
        ttl_s: key.doc.ttl_time,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use keys::{Aead, KeySigner};
    use serde_json::json;

    use super::*;

    /// A key generated with the keys crate, its splits, and both coordinators' signatures.
    pub(crate) struct TestKey {
        pub(crate) id: String,
        pub(crate) generated: keys::GeneratedKey,
        pub(crate) splits: keys::Splits,
        pub(crate) signatures: [String; 2],
        pub(crate) creation_ms: i64,
    }

    pub(crate) fn test_key(id: &str, signers: [&KeySigner; 2]) -> TestKey {
        let generated = keys::generate(Aead::ChaCha20Poly1305).expect("generate");
        let splits = keys::split(generated.private_keyset());
        let creation_ms = 1_700_000_000_000;
        let message =
            keys::public_key_signature_message(id, creation_ms, &generated.public_key_base64());
        let signatures = signers.map(|s| B64.encode(s.sign(&message)));
        TestKey {
            id: id.to_owned(),
            generated,
            splits,
            signatures,
            creation_ms,
        }
    }

    /// The document `served_by` answers, with `sealed` as its sealed material (broker mode).
    pub(crate) fn document(key: &TestKey, served_by: Role, sealed: &[u8]) -> serde_json::Value {
        let own = |i: usize| {
            json!({
                "publicKeySignature": key.signatures[i],
                "keyEncryptionKeyUri": "",
                "keyMaterial": "",
                "sealedKeyMaterial": B64.encode(sealed),
                "sealedContent": "broker",
            })
        };
        let other = |i: usize| {
            json!({
                "publicKeySignature": key.signatures[i],
                "keyEncryptionKeyUri": "",
                "keyMaterial": "",
            })
        };
        let key_data = match served_by {
            Role::Type1 => vec![own(0), other(1)],
            Role::Type2 => vec![other(0), own(1)],
        };
        json!({
            "name": format!("encryptionKeys/{}", key.id),
            "encryptionKeyType": KEY_TYPE,
            "publicKeysetHandle": key.generated.public_keyset_json(),
            "publicKeyMaterial": key.generated.public_key_base64(),
            "creationTime": key.creation_ms.to_string(),
            "activationTime": key.creation_ms.to_string(),
            "expirationTime": (key.creation_ms + 7 * 86_400_000).to_string(),
            "ttlTime": key.creation_ms / 1000 + 365 * 86_400,
            "keyData": key_data,
        })
    }

    fn parse(doc: serde_json::Value, role: Role) -> Result<ReleasedKey, WorkloadError> {
        let doc: EncryptionKey = serde_json::from_value(doc).expect("EncryptionKey JSON");
        ReleasedKey::parse(doc, role)
    }

    fn signers() -> (KeySigner, KeySigner) {
        (
            KeySigner::generate().expect("signer"),
            KeySigner::generate().expect("signer"),
        )
    }

    #[test]
    fn encryption_key_parses_times_as_strings_and_ttl_as_a_number() {
        let (s1, s2) = signers();
        let key = test_key("k1", [&s1, &s2]);
        let released = parse(document(&key, Role::Type2, b"sealed"), Role::Type2).expect("parse");
        assert_eq!(released.id, "k1");
        assert_eq!(released.doc.creation_time, 1_700_000_000_000);
        assert_eq!(
            released.doc.expiration_time,
            1_700_000_000_000 + 7 * 86_400_000
        );
        assert_eq!(released.doc.ttl_time, 1_700_000_000 + 365 * 86_400);
        assert_eq!(released.own.content, SealedContent::Broker);
        assert_eq!(released.own.sealed, b"sealed");
    }

    #[test]
    fn a_non_numeric_time_string_is_refused() {
        let (s1, s2) = signers();
        let mut doc = document(&test_key("k1", [&s1, &s2]), Role::Type1, b"x");
        doc["creationTime"] = json!("yesterday");
        assert!(serde_json::from_value::<EncryptionKey>(doc).is_err());
    }

    #[test]
    fn missing_sealed_material_is_refused() {
        let (s1, s2) = signers();
        let key = test_key("k1", [&s1, &s2]);
        let mut doc = document(&key, Role::Type1, b"x");
        doc["keyData"][0]
            .as_object_mut()
            .expect("object")
            .remove("sealedKeyMaterial");
        let err = parse(doc, Role::Type1).expect_err("refused");
        assert!(
            matches!(
                err,
                WorkloadError::KeyRefused {
                    problem: KeyProblem::MissingSealedMaterial(Role::Type1),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn sealed_material_in_the_wrong_entry_is_refused() {
        let (s1, s2) = signers();
        let key = test_key("k1", [&s1, &s2]);
        // A Type-2 document presented as Type-1's answer: the sealed split sits in [1].
        let err = parse(document(&key, Role::Type2, b"x"), Role::Type1).expect_err("refused");
        assert!(
            err.to_string().contains("other coordinator's entry"),
            "{err}"
        );
    }

    #[test]
    fn a_key_name_that_is_not_a_safe_id_is_refused() {
        let (s1, s2) = signers();
        let mut doc = document(&test_key("k1", [&s1, &s2]), Role::Type1, b"x");
        doc["name"] = json!("encryptionKeys/../../etc/passwd");
        assert!(parse(doc, Role::Type1).is_err());
    }

    #[test]
    fn the_right_splits_recombine_into_the_published_key() {
        let (s1, s2) = signers();
        let key = test_key("k1", [&s1, &s2]);
        let released = parse(document(&key, Role::Type1, b"x"), Role::Type1).expect("parse");
        released
            .verify_signatures([&s1.public_key_spki_der(), &s2.public_key_spki_der()])
            .expect("signatures");
        let held = recombine_checked(&released, &key.splits.a, &key.splits.b, false).expect("held");
        assert_eq!(held.keyset.public_key(), key.generated.public_key());
        assert!(
            held.tink_bytes.is_none(),
            "production keeps no serialized keyset"
        );
        let ciphertext = keys::hybrid_encrypt(
            &key.generated.public_key(),
            Aead::ChaCha20Poly1305,
            b"hello",
            b"ctx",
        )
        .expect("encrypt");
        assert_eq!(
            held.keyset
                .decrypt(&ciphertext, b"ctx")
                .expect("decrypt")
                .as_slice(),
            b"hello"
        );
    }

    #[test]
    fn a_split_of_another_key_gives_a_public_key_mismatch() {
        let (s1, s2) = signers();
        let key = test_key("k1", [&s1, &s2]);
        let other = test_key("k2", [&s1, &s2]);
        let released = parse(document(&key, Role::Type1, b"x"), Role::Type1).expect("parse");
        // Both splits of another (same-shaped) key: a valid keyset, but not the published one.
        let err = recombine_checked(&released, &other.splits.a, &other.splits.b, false)
            .expect_err("refused");
        assert!(
            matches!(
                err,
                WorkloadError::KeyRefused {
                    problem: KeyProblem::PublicKeyMismatch,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_split_is_refused() {
        let (s1, s2) = signers();
        let key = test_key("k1", [&s1, &s2]);
        let other = test_key("k2", [&s1, &s2]);
        let released = parse(document(&key, Role::Type1, b"x"), Role::Type1).expect("parse");
        // Type-2's split of another key: XOR gives garbage (or, by chance, another key).
        let err = recombine_checked(&released, &key.splits.a, &other.splits.b, false)
            .expect_err("refused");
        assert!(
            matches!(
                err,
                WorkloadError::KeyRefused {
                    problem: KeyProblem::BadKeyset(_) | KeyProblem::PublicKeyMismatch,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_signature_by_the_wrong_key_is_refused() {
        let (s1, s2) = signers();
        let impostor = KeySigner::generate().expect("signer");
        let key = test_key("k1", [&s1, &impostor]);
        let released = parse(document(&key, Role::Type1, b"x"), Role::Type1).expect("parse");
        let err = released
            .verify_signatures([&s1.public_key_spki_der(), &s2.public_key_spki_der()])
            .expect_err("refused");
        assert!(
            matches!(
                err,
                WorkloadError::KeyRefused {
                    problem: KeyProblem::BadSignature(Role::Type2),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn coordinators_disagreeing_on_the_public_key_is_refused() {
        let (s1, s2) = signers();
        let key = test_key("k1", [&s1, &s2]);
        let a = parse(document(&key, Role::Type1, b"x"), Role::Type1).expect("parse");
        let mut doc_b = document(&key, Role::Type2, b"x");
        doc_b["ttlTime"] = json!(1);
        let b = parse(doc_b, Role::Type2).expect("parse");
        let err = a.agrees_with(&b).expect_err("refused");
        assert!(err.to_string().contains("ttlTime"), "{err}");
    }
}
