//! Generation, splitting, transport sealing and signatures, end to end through the public API.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keys::tink::{self, HpkePrivateKey, Keyset};
use keys::{
    Aead, HANDOVER_INFO, KeyError, KeySigner, PrivateKeyset, PublicKeyset, RELEASE_INFO,
    RecipientKey, generate, hybrid_encrypt, open, public_key_signature_message, recombine, seal,
    split, verify_signature,
};
use prost::Message as _;

const BOTH_AEADS: [Aead; 2] = [Aead::ChaCha20Poly1305, Aead::Aes256Gcm];

#[test]
fn generated_keysets_have_the_tink_shape() {
    for aead in BOTH_AEADS {
        let key = generate(aead).expect("generate");
        let keyset = Keyset::decode(key.private_keyset().as_slice()).expect("Keyset");
        assert_eq!(keyset.encode_to_vec(), **key.private_keyset());
        assert_eq!(keyset.key.len(), 1);
        let entry = &keyset.key[0];
        assert_eq!(keyset.primary_key_id, entry.key_id);
        assert_eq!(entry.key_id, key.tink_key_id());
        assert!(entry.key_id != 0 && entry.key_id < 1 << 31);
        assert_eq!(entry.status, tink::KeyStatusType::Enabled as i32);
        assert_eq!(entry.output_prefix_type, tink::OutputPrefixType::Raw as i32);
        let data = entry.key_data.as_ref().expect("key data");
        assert_eq!(data.type_url, tink::HPKE_PRIVATE_KEY_TYPE_URL);
        assert_eq!(
            data.key_material_type,
            tink::KeyMaterialType::AsymmetricPrivate as i32
        );
        let private = HpkePrivateKey::decode(data.value.as_slice()).expect("HpkePrivateKey");
        assert_eq!(private.version, 0);
        assert_eq!(private.private_key.len(), 32);
        let public = private.public_key.as_ref().expect("public key");
        assert_eq!(public.public_key, key.public_key());
        let params = public.params.expect("params");
        assert_eq!((params.kem, params.kdf), (1, 1));
        assert_eq!(params.aead, if aead == Aead::Aes256Gcm { 2 } else { 3 });
    }
}

#[test]
fn generated_keys_parse_back_and_round_trip_a_ciphertext() {
    for aead in BOTH_AEADS {
        let key = generate(aead).expect("generate");
        assert_eq!(key.aead(), aead);
        let keyset = PrivateKeyset::from_tink_bytes(key.private_keyset()).expect("parses");
        assert_eq!(keyset.public_key(), key.public_key());
        assert_eq!(keyset.aead(), aead);
        assert_eq!(keyset.tink_key_id(), key.tink_key_id());

        let ciphertext =
            hybrid_encrypt(&key.public_key(), aead, b"report", b"ctx").expect("encrypt");
        assert_eq!(ciphertext.len(), 32 + 6 + 16);
        assert_eq!(
            *keyset.decrypt(&ciphertext, b"ctx").expect("decrypt"),
            b"report"
        );
        assert_eq!(
            keyset.decrypt(&ciphertext, b"ctX"),
            Err(KeyError::DecryptionFailed)
        );

        // A ciphertext for the other AEAD does not open.
        let other = if aead == Aead::Aes256Gcm {
            Aead::ChaCha20Poly1305
        } else {
            Aead::Aes256Gcm
        };
        let ciphertext = hybrid_encrypt(&key.public_key(), other, b"report", b"").expect("encrypt");
        assert_eq!(
            keyset.decrypt(&ciphertext, b""),
            Err(KeyError::DecryptionFailed)
        );
    }
}

#[test]
fn generated_public_keyset_json_holds_the_same_public_key() {
    for aead in BOTH_AEADS {
        let key = generate(aead).expect("generate");
        assert_eq!(
            STANDARD.decode(key.public_key_base64()).ok(),
            Some(key.public_key().to_vec())
        );

        let json: serde_json::Value = serde_json::from_str(key.public_keyset_json()).expect("JSON");
        assert_eq!(json["primaryKeyId"], key.tink_key_id());
        let entry = &json["key"][0];
        assert_eq!(json["key"].as_array().map(Vec::len), Some(1));
        assert_eq!(entry["keyId"], key.tink_key_id());
        assert_eq!(entry["status"], "ENABLED");
        assert_eq!(entry["outputPrefixType"], "RAW");
        assert_eq!(entry["keyData"]["typeUrl"], tink::HPKE_PUBLIC_KEY_TYPE_URL);
        assert_eq!(entry["keyData"]["keyMaterialType"], "ASYMMETRIC_PUBLIC");

        let public = PublicKeyset::from_tink_json(key.public_keyset_json()).expect("parses");
        assert_eq!(public.public_key(), key.public_key());
        assert_eq!(public.aead(), aead);
        let ciphertext = public.encrypt(b"hello", b"info").expect("encrypt");
        let keyset = PrivateKeyset::from_tink_bytes(key.private_keyset()).expect("parses");
        assert_eq!(
            *keyset.decrypt(&ciphertext, b"info").expect("decrypt"),
            b"hello"
        );
    }
}

#[test]
fn generated_keys_are_fresh_and_debug_output_hides_the_private_keyset() {
    let one = generate(Aead::default()).expect("generate");
    let two = generate(Aead::default()).expect("generate");
    assert_ne!(one.public_key(), two.public_key());
    assert_ne!(one.private_keyset(), two.private_keyset());

    let debug = format!("{one:?}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(!debug.contains(&STANDARD.encode(one.private_keyset().as_slice())));
    let keyset = PrivateKeyset::from_tink_bytes(one.private_keyset()).expect("parses");
    assert!(format!("{keyset:?}").contains("<redacted>"));
    let parsed = Keyset::decode(one.private_keyset().as_slice()).expect("Keyset");
    let debug = format!("{parsed:?}");
    assert!(debug.contains("bytes redacted"), "{debug}");
}

#[test]
fn aead_uses_its_config_names_and_defaults_to_chacha() {
    assert_eq!(Aead::default(), Aead::ChaCha20Poly1305);
    assert_eq!(
        serde_json::to_string(&Aead::ChaCha20Poly1305)
            .ok()
            .as_deref(),
        Some("\"chacha20-poly1305\"")
    );
    assert_eq!(
        serde_json::from_str::<Aead>("\"aes-256-gcm\"").ok(),
        Some(Aead::Aes256Gcm)
    );
    assert!(serde_json::from_str::<Aead>("\"aes-128-gcm\"").is_err());
}

#[test]
fn splits_recombine_to_the_keyset_and_each_alone_differs_from_it() {
    let key = generate(Aead::default()).expect("generate");
    let keyset = key.private_keyset().as_slice();
    let splits = split(keyset);
    assert_eq!(splits.a.len(), keyset.len());
    assert_eq!(splits.b.len(), keyset.len());
    assert_ne!(splits.a.as_slice(), keyset);
    assert_ne!(splits.b.as_slice(), keyset);
    assert_ne!(splits.a, splits.b);
    assert_eq!(
        recombine(&splits.a, &splits.b)
            .expect("recombine")
            .as_slice(),
        keyset
    );
    // Order does not matter for XOR.
    assert_eq!(
        recombine(&splits.b, &splits.a)
            .expect("recombine")
            .as_slice(),
        keyset
    );

    let again = split(keyset);
    assert_ne!(again.b, splits.b, "each split draws a fresh pad");

    let recombined = recombine(&splits.a, &splits.b).expect("recombine");
    let loaded = PrivateKeyset::from_tink_bytes(&recombined).expect("recombined keyset loads");
    assert_eq!(loaded.public_key(), key.public_key());

    // Mixing halves of two splits gives garbage that the keyset parser refuses.
    let mixed = recombine(&splits.a, &again.b).expect("same length");
    assert!(PrivateKeyset::from_tink_bytes(&mixed).is_err());

    let debug = format!("{splits:?}");
    assert!(debug.contains("redacted") && !debug.contains(&format!("{:?}", splits.a.as_slice())));
}

#[test]
fn recombining_splits_of_different_lengths_is_an_error() {
    assert_eq!(
        recombine(&[1, 2, 3], &[1, 2]).err(),
        Some(KeyError::SplitLengthMismatch { a: 3, b: 2 })
    );
    let empty = split(&[]);
    assert!(empty.a.is_empty() && empty.b.is_empty());
    assert_eq!(recombine(&[], &[]).map(|k| k.len()), Ok(0));
}

#[test]
fn sealed_splits_open_only_with_the_same_recipient_info_and_aad() {
    let recipient = RecipientKey::generate();
    let sealed = seal(&recipient.public_key(), HANDOVER_INFO, b"key-1", b"split B").expect("seal");
    assert_eq!(sealed.len(), 32 + 7 + 16);
    assert_eq!(
        *open(&recipient, HANDOVER_INFO, b"key-1", &sealed).expect("open"),
        b"split B"
    );

    assert_eq!(
        open(&recipient, RELEASE_INFO, b"key-1", &sealed).err(),
        Some(KeyError::DecryptionFailed)
    );
    assert_eq!(
        open(&recipient, HANDOVER_INFO, b"key-2", &sealed).err(),
        Some(KeyError::DecryptionFailed)
    );
    let stranger = RecipientKey::generate();
    assert_eq!(
        open(&stranger, HANDOVER_INFO, b"key-1", &sealed).err(),
        Some(KeyError::DecryptionFailed)
    );
    let mut flipped = sealed.clone();
    flipped[40] ^= 1;
    assert_eq!(
        open(&recipient, HANDOVER_INFO, b"key-1", &flipped).err(),
        Some(KeyError::DecryptionFailed)
    );
}

#[test]
fn truncated_sealed_splits_fail() {
    let recipient = RecipientKey::generate();
    let sealed = seal(&recipient.public_key(), RELEASE_INFO, b"id", b"split").expect("seal");
    assert_eq!(
        open(&recipient, RELEASE_INFO, b"id", &sealed[..sealed.len() - 1]).err(),
        Some(KeyError::DecryptionFailed)
    );
    assert_eq!(
        open(&recipient, RELEASE_INFO, b"id", &sealed[..40]).err(),
        Some(KeyError::CiphertextTooShort(40))
    );
    assert_eq!(
        open(&recipient, RELEASE_INFO, b"id", &[]).err(),
        Some(KeyError::CiphertextTooShort(0))
    );
}

#[test]
fn sealing_refuses_a_public_key_that_is_not_32_bytes() {
    for len in [0, 31, 33, 65] {
        assert_eq!(
            seal(&vec![9; len], RELEASE_INFO, b"", b"x").err(),
            Some(KeyError::InvalidKeyLength {
                what: "public key",
                len
            })
        );
    }
    assert!(RecipientKey::from_private_bytes(&[1; 31]).is_err());
}

#[test]
fn recipient_keys_reload_from_their_private_bytes() {
    let recipient = RecipientKey::generate();
    let reloaded =
        RecipientKey::from_private_bytes(recipient.private_bytes().as_slice()).expect("loads");
    assert_eq!(reloaded.public_key(), recipient.public_key());
    let sealed = seal(&recipient.public_key(), RELEASE_INFO, b"", b"x").expect("seal");
    assert_eq!(
        *open(&reloaded, RELEASE_INFO, b"", &sealed).expect("open"),
        b"x"
    );
    assert_ne!(
        RecipientKey::generate().public_key(),
        recipient.public_key()
    );

    let debug = format!("{recipient:?}");
    assert!(debug.contains("<redacted>"));
    assert!(!debug.contains(&STANDARD.encode(recipient.private_bytes().as_slice())));
}

#[test]
fn signature_message_joins_id_time_and_material_with_bars() {
    assert_eq!(
        public_key_signature_message("8000000000000000", 1_669_252_790_485, "AAAA+/=="),
        b"8000000000000000|2022-11-24T01:19:50.485Z|AAAA+/==".to_vec()
    );
    assert_eq!(
        public_key_signature_message("k", 0, "pk"),
        b"k|1970-01-01T00:00:00.000Z|pk".to_vec()
    );
    assert_eq!(
        public_key_signature_message("k", 1_700_000_000_000, "pk"),
        b"k|2023-11-14T22:13:20.000Z|pk".to_vec()
    );
    assert_eq!(
        public_key_signature_message("k", -1, "pk"),
        b"k|1969-12-31T23:59:59.999Z|pk".to_vec()
    );
}

#[test]
fn signatures_verify_only_for_the_signed_message_and_key() {
    let signer = KeySigner::generate().expect("generate");
    let message = public_key_signature_message("id", 1_669_252_790_485, "pk");
    let signature = signer.sign(&message);
    assert_eq!(signature.len(), 64);
    let spki = signer.public_key_spki_der();
    assert_eq!(spki.len(), 91, "P-256 SubjectPublicKeyInfo");
    assert_eq!(verify_signature(&spki, &message, &signature), Ok(()));

    let other = public_key_signature_message("id", 1_669_252_790_486, "pk");
    assert_eq!(
        verify_signature(&spki, &other, &signature),
        Err(KeyError::BadSignature)
    );
    let mut tampered = signature.clone();
    tampered[10] ^= 1;
    assert_eq!(
        verify_signature(&spki, &message, &tampered),
        Err(KeyError::BadSignature)
    );
    let stranger = KeySigner::generate()
        .expect("generate")
        .public_key_spki_der();
    assert_eq!(
        verify_signature(&stranger, &message, &signature),
        Err(KeyError::BadSignature)
    );
    assert_eq!(
        verify_signature(b"not a key", &message, &signature),
        Err(KeyError::BadSignature)
    );
}

#[test]
fn signing_keys_round_trip_through_pkcs8() {
    let signer = KeySigner::generate().expect("generate");
    let reloaded = KeySigner::from_pkcs8(&signer.to_pkcs8()).expect("reloads");
    assert_eq!(reloaded.public_key_spki_der(), signer.public_key_spki_der());
    assert_eq!(reloaded.to_pkcs8(), signer.to_pkcs8());
    let signature = reloaded.sign(b"m");
    assert_eq!(
        verify_signature(&signer.public_key_spki_der(), b"m", &signature),
        Ok(())
    );
    assert_eq!(
        KeySigner::from_pkcs8(b"junk").err(),
        Some(KeyError::InvalidSigningKey)
    );
    assert!(format!("{signer:?}").contains("<redacted>"));
}
