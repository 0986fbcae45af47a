//! Keysets and ciphertexts made by Google Tink (the shared vectors) against this crate.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{b64_field, str_field, tink_vectors};
use keys::tink::{self, HpkePrivateKey, HpkePublicKey, JsonKeyset, Keyset};
use keys::{Aead, KeyError, PrivateKeyset, PublicKeyset};
use prost::Message as _;

fn vector_aead(v: &serde_json::Value) -> Aead {
    match v["params"]["aead"].as_str() {
        Some("CHACHA20_POLY1305") => Aead::ChaCha20Poly1305,
        Some("AES_256_GCM") => Aead::Aes256Gcm,
        other => panic!("unexpected vector AEAD {other:?}"),
    }
}

fn each_vector(mut check: impl FnMut(&serde_json::Value)) {
    let Some(json) = tink_vectors() else { return };
    let vectors = json["vectors"].as_array().expect("vectors array");
    let aeads: Vec<Aead> = vectors.iter().map(vector_aead).collect();
    assert!(aeads.contains(&Aead::ChaCha20Poly1305) && aeads.contains(&Aead::Aes256Gcm));
    for v in vectors {
        check(v);
    }
}

/// Re-encodes the keyset after editing its `HpkePrivateKey`.
fn edit_private_key(keyset: &[u8], edit: impl FnOnce(&mut HpkePrivateKey)) -> Vec<u8> {
    let mut keyset = Keyset::decode(keyset).expect("keyset decodes");
    let key_data = keyset.key[0].key_data.as_mut().expect("key data");
    let mut private = HpkePrivateKey::decode(key_data.value.as_slice()).expect("private key");
    edit(&mut private);
    key_data.value = private.encode_to_vec();
    keyset.encode_to_vec()
}

#[test]
fn vector_keysets_decode_and_reencode_byte_identically() {
    each_vector(|v| {
        let bytes = b64_field(v, "keyset");
        let keyset = Keyset::decode(bytes.as_slice()).expect("keyset decodes");
        assert_eq!(keyset.encode_to_vec(), bytes, "{}", str_field(v, "name"));

        assert_eq!(
            keyset.primary_key_id,
            v["keyId"].as_u64().expect("keyId") as u32
        );
        let key = &keyset.key[0];
        assert_eq!(key.status, tink::KeyStatusType::Enabled as i32);
        assert_eq!(key.output_prefix_type, tink::OutputPrefixType::Raw as i32);
        let key_data = key.key_data.as_ref().expect("key data");
        assert_eq!(key_data.type_url, str_field(v, "typeUrl"));
        assert_eq!(
            key_data.key_material_type,
            tink::KeyMaterialType::AsymmetricPrivate as i32
        );

        let private = HpkePrivateKey::decode(key_data.value.as_slice()).expect("private key");
        assert_eq!(private.encode_to_vec(), key_data.value);
        assert_eq!(private.private_key, b64_field(v, "privateKey"));
        let public = private.public_key.as_ref().expect("public key");
        assert_eq!(public.public_key, b64_field(v, "publicKey"));
        let params = public.params.expect("params");
        assert_eq!(params.kem, tink::HpkeKem::DhkemX25519HkdfSha256 as i32);
        assert_eq!(params.kdf, tink::HpkeKdf::HkdfSha256 as i32);
        let aead = match vector_aead(v) {
            Aead::ChaCha20Poly1305 => tink::HpkeAead::Chacha20Poly1305,
            Aead::Aes256Gcm => tink::HpkeAead::Aes256Gcm,
        };
        assert_eq!(params.aead, aead as i32);
    });
}

#[test]
fn vector_private_keysets_give_the_public_key_and_decrypt_every_case() {
    each_vector(|v| {
        let keyset = PrivateKeyset::from_tink_bytes(&b64_field(v, "keyset")).expect("loads");
        assert_eq!(keyset.public_key().as_slice(), b64_field(v, "publicKey"));
        assert_eq!(keyset.aead(), vector_aead(v));
        assert_eq!(
            u64::from(keyset.tink_key_id()),
            v["keyId"].as_u64().expect("keyId")
        );
        let cases = v["cases"].as_array().expect("cases");
        assert!(!cases.is_empty());
        for case in cases {
            let plaintext = keyset
                .decrypt(
                    &b64_field(case, "ciphertext"),
                    &b64_field(case, "contextInfo"),
                )
                .expect("Tink ciphertext opens");
            assert_eq!(*plaintext, b64_field(case, "plaintext"));
        }
    });
}

#[test]
fn vector_public_keyset_json_parses_and_matches_the_keyset() {
    each_vector(|v| {
        let json = str_field(v, "publicKeysetJson");
        let public = PublicKeyset::from_tink_json(json).expect("public keyset parses");
        assert_eq!(public.public_key().as_slice(), b64_field(v, "publicKey"));
        assert_eq!(public.aead(), vector_aead(v));
        assert_eq!(
            u64::from(public.tink_key_id()),
            v["keyId"].as_u64().expect("keyId")
        );

        // The proto inside re-encodes byte-identically too.
        let parsed: JsonKeyset = serde_json::from_str(json).expect("JSON keyset");
        let value = STANDARD
            .decode(&parsed.key[0].key_data.value)
            .expect("base64");
        let proto = HpkePublicKey::decode(value.as_slice()).expect("HpkePublicKey");
        assert_eq!(proto.encode_to_vec(), value);
    });
}

#[test]
fn generated_public_keyset_json_is_formatted_exactly_as_tink_writes_it() {
    each_vector(|v| {
        let generated = keys::generate(vector_aead(v)).expect("generate");
        let ours: JsonKeyset = serde_json::from_str(generated.public_keyset_json()).expect("JSON");
        let theirs: JsonKeyset =
            serde_json::from_str(str_field(v, "publicKeysetJson")).expect("JSON");
        // Swap in the vector's key: the text must then be Tink's, byte for byte.
        let text = generated
            .public_keyset_json()
            .replace(&ours.key[0].key_data.value, &theirs.key[0].key_data.value)
            .replace(
                &ours.key[0].key_id.to_string(),
                &theirs.key[0].key_id.to_string(),
            );
        assert_eq!(text, str_field(v, "publicKeysetJson"));
    });
}

#[test]
fn a_flipped_bit_anywhere_in_a_vector_ciphertext_fails_cleanly() {
    each_vector(|v| {
        let keyset = PrivateKeyset::from_tink_bytes(&b64_field(v, "keyset")).expect("loads");
        for case in v["cases"].as_array().expect("cases") {
            let ciphertext = b64_field(case, "ciphertext");
            let info = b64_field(case, "contextInfo");
            // In the encapsulated key, the first ciphertext byte and the tag.
            for at in [0, 31, 32, ciphertext.len() - 1] {
                let mut bad = ciphertext.clone();
                bad[at] ^= 0x01;
                assert_eq!(
                    keyset.decrypt(&bad, &info),
                    Err(KeyError::DecryptionFailed),
                    "{at}"
                );
            }
            let mut other_info = info.clone();
            other_info.push(b'x');
            assert_eq!(
                keyset.decrypt(&ciphertext, &other_info),
                Err(KeyError::DecryptionFailed)
            );
            assert_eq!(
                keyset.decrypt(&ciphertext[..47], &info),
                Err(KeyError::CiphertextTooShort(47))
            );
        }
    });
}

#[test]
fn a_keyset_whose_public_key_was_altered_is_refused() {
    each_vector(|v| {
        let altered = edit_private_key(&b64_field(v, "keyset"), |private| {
            private.public_key.as_mut().expect("public key").public_key[0] ^= 0x80;
        });
        assert_eq!(
            PrivateKeyset::from_tink_bytes(&altered).err(),
            Some(KeyError::PublicKeyMismatch)
        );
        let altered = edit_private_key(&b64_field(v, "keyset"), |private| {
            private.private_key[5] ^= 0x01;
        });
        assert_eq!(
            PrivateKeyset::from_tink_bytes(&altered).err(),
            Some(KeyError::PublicKeyMismatch)
        );
    });
}

#[test]
fn keysets_of_another_shape_are_refused_with_the_reason() {
    each_vector(|v| {
        let bytes = b64_field(v, "keyset");
        let load = |keyset: &Keyset| PrivateKeyset::from_tink_bytes(&keyset.encode_to_vec()).err();
        let original = Keyset::decode(bytes.as_slice()).expect("decodes");

        let mut two = original.clone();
        two.key.push(two.key[0].clone());
        assert_eq!(load(&two), Some(KeyError::KeyCount(2)));

        let mut none = original.clone();
        none.key.clear();
        assert_eq!(load(&none), Some(KeyError::KeyCount(0)));

        let mut tink_prefix = original.clone();
        tink_prefix.key[0].output_prefix_type = tink::OutputPrefixType::Tink as i32;
        assert_eq!(
            load(&tink_prefix),
            Some(KeyError::UnsupportedOutputPrefix(1))
        );

        let mut disabled = original.clone();
        disabled.key[0].status = tink::KeyStatusType::Disabled as i32;
        assert_eq!(load(&disabled), Some(KeyError::KeyNotEnabled(2)));

        let mut other_primary = original.clone();
        other_primary.primary_key_id ^= 1;
        assert!(matches!(
            load(&other_primary),
            Some(KeyError::PrimaryKeyMismatch { .. })
        ));

        let mut other_type = original.clone();
        other_type.key[0]
            .key_data
            .as_mut()
            .expect("key data")
            .type_url = tink::HPKE_PUBLIC_KEY_TYPE_URL.to_owned();
        assert!(matches!(
            load(&other_type),
            Some(KeyError::UnsupportedKeyType(_))
        ));

        let aes128 = edit_private_key(&bytes, |private| {
            let params = private.public_key.as_mut().expect("public").params.as_mut();
            params.expect("params").aead = tink::HpkeAead::Aes128Gcm as i32;
        });
        assert!(matches!(
            PrivateKeyset::from_tink_bytes(&aes128),
            Err(KeyError::UnsupportedHpkeParams { aead: 1, .. })
        ));

        let short = edit_private_key(&bytes, |private| private.private_key.truncate(31));
        assert_eq!(
            PrivateKeyset::from_tink_bytes(&short).err(),
            Some(KeyError::InvalidKeyLength {
                what: "private key",
                len: 31
            })
        );

        assert!(matches!(
            PrivateKeyset::from_tink_bytes(&bytes[..bytes.len() - 3]),
            Err(KeyError::MalformedKeyset(_))
        ));
    });
}
