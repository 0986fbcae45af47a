use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;
use crate::jose::b64url_decode;

const ISSUER: &str = "https://coordinator-a.example.com";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn issuer_at(now: SystemTime) -> BrokerIssuer {
    let mut keys = SigningKeySet::new(RotationPolicy::default());
    keys.rotate(now).expect("bootstrap");
    BrokerIssuer::new(ISSUER, keys)
}

fn access_claims() -> AccessTokenClaims {
    AccessTokenClaims {
        adtech: "adtech-1".into(),
        client_id: "mapping-7".into(),
        audience: ISSUER.into(),
        scopes: vec!["keys:read".into(), "keys:release".into()],
        cloud: IssuerKind::Gcp,
        src_iss: "https://accounts.google.com".into(),
        src_sub: "113475438248934895348".into(),
        ttl: Duration::from_secs(3600),
    }
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("part");
    serde_json::from_slice(&b64url_decode(part).expect("b64")).expect("json")
}

#[test]
fn keys_round_trip_through_pkcs8_and_keep_their_kid() {
    let key = SigningKey::generate(t0(), t0()).expect("key");
    assert_eq!(key.kid().len(), 43, "base64url SHA-256 thumbprint");
    let der = key.to_pkcs8_der();
    let again = SigningKey::from_pkcs8(&der, t0(), t0() + DAY, None).expect("parses");
    assert_eq!(again.kid(), key.kid());
    assert_eq!(again.public_jwk(), key.public_jwk());
    assert_eq!(again.not_before(), t0() + DAY);
    assert_eq!(
        SigningKey::from_pkcs8(b"not a key", t0(), t0(), None).err(),
        Some(SigningError::InvalidPrivateKey)
    );
    let other = SigningKey::generate(t0(), t0()).expect("key");
    assert_ne!(other.kid(), key.kid());
}

#[test]
fn debug_output_never_contains_private_key_material() {
    let key = SigningKey::generate(t0(), t0()).expect("key");
    let der = key.to_pkcs8_der();
    let debug = format!("{key:?}");
    assert!(debug.contains(key.kid()));
    let private_b64 = crate::jose::b64url(&der);
    let hexed: String = der.iter().map(|b| format!("{b:02x}")).collect();
    for needle in [
        &private_b64[..],
        &hexed[..],
        &format!("{:?}", &der[..8])[..],
    ] {
        assert!(!debug.contains(needle));
    }
    let issuer = issuer_at(t0());
    let minted = issuer
        .mint_access_token(t0(), &access_claims())
        .expect("mint");
    assert!(!format!("{minted:?}").contains(minted.as_str()));
    assert!(format!("{minted:?}").contains("redacted"));
}

#[test]
fn the_jwk_is_a_p256_signature_key_with_a_valid_thumbprint() {
    let key = SigningKey::generate(t0(), t0()).expect("key");
    let jwk = key.public_jwk();
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["kid"], key.kid());
    for coordinate in ["x", "y"] {
        let bytes = b64url_decode(jwk[coordinate].as_str().expect("str")).expect("b64");
        assert_eq!(bytes.len(), 32);
    }
    // RFC 7638 thumbprint recomputed independently from the published JWK.
    let canonical = serde_json::to_string(&json!({
        "crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]
    }))
    .expect("json");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    assert_eq!(key.kid(), crate::jose::b64url(digest.as_ref()));
}

fn schedule(entries: &[(&str, SystemTime)]) -> Vec<KeySchedule> {
    entries
        .iter()
        .map(|(kid, not_before)| KeySchedule {
            kid: (*kid).into(),
            not_before: *not_before,
        })
        .collect()
}

#[test]
fn planning_an_empty_set_creates_an_immediately_usable_key() {
    let plan = plan_rotation(&[], t0(), &RotationPolicy::default());
    assert_eq!(plan.signing, None);
    assert_eq!(plan.generate, Some(t0()));
}

#[test]
fn planning_a_steady_state() {
    let policy = RotationPolicy::default();
    let keys = schedule(&[("cur", t0()), ("next", t0() + 30 * DAY)]);
    let plan = plan_rotation(&keys, t0() + 10 * DAY, &policy);
    assert_eq!(plan.signing.as_deref(), Some("cur"));
    assert_eq!(plan.generate, None);
    assert_eq!(plan.published, ["cur", "next"]);
    assert!(plan.removable.is_empty());

    // The next key takes over at its not_before; a new next key is due a period later.
    let at = t0() + 30 * DAY;
    let plan = plan_rotation(&keys, at, &policy);
    assert_eq!(plan.signing.as_deref(), Some("next"));
    assert_eq!(plan.generate, Some(t0() + 60 * DAY));
    assert_eq!(
        plan.published,
        ["cur", "next"],
        "retired key stays published"
    );

    // The retired key goes once every token it signed has expired (+ skew).
    let keep = policy.max_token_ttl + CLOCK_SKEW;
    let plan = plan_rotation(&keys, at + keep - Duration::from_secs(1), &policy);
    assert_eq!(plan.published, ["cur", "next"]);
    let plan = plan_rotation(&keys, at + keep, &policy);
    assert_eq!(plan.published, ["next"]);
    assert_eq!(plan.removable, ["cur"]);
}

#[test]
fn after_downtime_a_new_key_is_still_published_one_max_age_before_use() {
    let policy = RotationPolicy::default();
    let keys = schedule(&[("old", t0()), ("cur", t0() + 30 * DAY)]);
    let now = t0() + 75 * DAY;
    let plan = plan_rotation(&keys, now, &policy);
    assert_eq!(plan.signing.as_deref(), Some("cur"));
    assert_eq!(plan.generate, Some(now + policy.jwks_max_age));
    assert_eq!(plan.removable, ["old"]);
}

#[test]
fn rotation_over_a_hundred_days_keeps_every_invariant() {
    let policy = RotationPolicy::default();
    let mut keys = SigningKeySet::new(policy);
    let mut first_published: HashMap<String, SystemTime> = HashMap::new();
    let mut first_signed: HashMap<String, SystemTime> = HashMap::new();
    let mut last_signed: HashMap<String, SystemTime> = HashMap::new();
    let step = Duration::from_secs(120);
    let mut now = t0();
    let mut removed = Vec::new();
    while now < t0() + 100 * DAY {
        let outcome = keys.rotate(now).expect("rotate");
        removed.extend(outcome.removed);
        let published: Vec<String> = keys
            .published_keys(now)
            .iter()
            .map(|k| k.kid().to_owned())
            .collect();
        for kid in &published {
            first_published.entry(kid.clone()).or_insert(now);
        }
        let signer = keys
            .signing_key(now)
            .expect("always a signing key")
            .kid()
            .to_owned();
        assert!(published.contains(&signer));
        assert!(
            keys.keys().iter().any(|k| k.not_before() > now),
            "a next key is always pre-published"
        );
        first_signed.entry(signer.clone()).or_insert(now);
        last_signed.insert(signer, now);
        // Every key that signed within the max TTL is still published.
        for (kid, last) in &last_signed {
            if now.duration_since(*last).expect("monotonic") <= policy.max_token_ttl {
                assert!(published.contains(kid), "key retired too early");
            }
        }
        now += step;
    }
    assert!(first_signed.len() >= 4, "rotated several times");
    for (kid, signed) in &first_signed {
        let published = first_published[kid];
        if published != t0() {
            let lead = signed
                .duration_since(published)
                .expect("published before use");
            assert!(lead >= policy.jwks_max_age, "{kid} used too soon");
        }
    }
    assert!(removed.len() >= 2, "retired keys are eventually removed");
    assert!(keys.keys().len() <= 3, "previous, current, next at most");
}

#[test]
fn bootstrap_creates_current_and_next_and_retire_times_follow() {
    let issuer = issuer_at(t0());
    let keys = issuer.keys().keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].not_before(), t0());
    assert_eq!(keys[1].not_before(), t0() + DEFAULT_ROTATION_PERIOD);
    assert_eq!(keys[0].retire_after(), Some(keys[1].not_before()));
    assert_eq!(keys[1].retire_after(), None);
    assert_eq!(
        issuer.keys().signing_key(t0()).map(SigningKey::kid),
        Some(keys[0].kid())
    );

    let mut again = SigningKeySet::from_keys(
        keys.iter()
            .rev()
            .map(|k| {
                SigningKey::from_pkcs8(&k.to_pkcs8_der(), k.created_at(), k.not_before(), None)
                    .expect("reload")
            })
            .collect(),
        RotationPolicy::default(),
    );
    assert_eq!(
        again.keys()[0].kid(),
        keys[0].kid(),
        "reloaded in schedule order"
    );
    assert_eq!(again.keys()[0].retire_after(), Some(keys[1].not_before()));
    assert_eq!(
        again.rotate(t0()).expect("no-op"),
        RotationOutcome::default()
    );
}

#[test]
fn jwks_and_discovery_documents() {
    let issuer = issuer_at(t0());
    let jwks = issuer.jwks_document(t0());
    let published = jwks["keys"].as_array().expect("keys");
    assert_eq!(published.len(), 2);
    for jwk in published {
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["alg"], "ES256");
        assert!(jwk.get("d").is_none(), "no private part");
    }

    let doc = serde_json::to_value(
        issuer
            .discovery_document(&["keys:read".to_owned()])
            .expect("a URL"),
    )
    .expect("JSON");
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(doc["token_endpoint"], format!("{ISSUER}/v1/token"));
    assert_eq!(doc["grant_types_supported"], json!([TOKEN_EXCHANGE_GRANT]));
    assert_eq!(doc["response_types_supported"], json!(["id_token"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(doc["scopes_supported"], json!(["keys:read"]));
    assert!(
        doc["claims_supported"]
            .as_array()
            .expect("claims")
            .contains(&json!("src_sub"))
    );
    let slash = serde_json::to_value(discovery_document("https://b.example/", &[]).expect("a URL"))
        .expect("JSON");
    assert_eq!(slash["issuer"], "https://b.example/");
    assert_eq!(slash["jwks_uri"], "https://b.example/.well-known/jwks.json");
}

#[test]
fn access_tokens_follow_rfc_9068_and_verify() {
    let issuer = issuer_at(t0());
    let minted = issuer
        .mint_access_token(t0(), &access_claims())
        .expect("mint");
    let header = decode_part(minted.as_str(), 0);
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "at+jwt", "kid": minted.kid()})
    );
    let claims = decode_part(minted.as_str(), 1);
    let iat = crate::clock::unix_seconds(t0());
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "adtech:adtech-1");
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["iat"], iat);
    assert_eq!(claims["exp"], iat + 3600);
    assert_eq!(minted.expires_at(), iat + 3600);
    assert_eq!(claims["client_id"], "mapping-7");
    assert_eq!(claims["scope"], "keys:read keys:release");
    assert_eq!(claims["adtech"], "adtech-1");
    assert_eq!(claims["cloud"], "gcp");
    assert_eq!(claims["src_iss"], "https://accounts.google.com");
    assert_eq!(claims["src_sub"], "113475438248934895348");
    assert_eq!(claims["jti"], minted.jti());
    assert_eq!(b64url_decode(minted.jti()).expect("b64").len(), 16);

    let verified = issuer
        .credential_verifier(t0())
        .verify(
            minted.as_str(),
            ISSUER,
            "keys:release",
            t0() + Duration::from_secs(10),
        )
        .expect("verifies");
    assert_eq!(verified.sub(), "adtech:adtech-1");
    assert_eq!(verified.adtech(), "adtech-1");
    assert_eq!(verified.cloud(), IssuerKind::Gcp);
    assert_eq!(verified.client_id(), "mapping-7");
    assert_eq!(verified.scopes(), ["keys:read", "keys:release"]);
    assert!(verified.has_scope("keys:read"));
    assert_eq!(verified.jti(), minted.jti());
    assert_eq!(verified.exp(), iat + 3600);
    assert_eq!(verified.iat(), iat);
    assert_eq!(verified.src_iss(), "https://accounts.google.com");
    assert_eq!(verified.src_sub(), "113475438248934895348");

    let second = issuer
        .mint_access_token(t0(), &access_claims())
        .expect("mint");
    assert_ne!(second.jti(), minted.jti());
}

#[test]
fn minting_enforces_ttl_and_needs_a_key() {
    let issuer = issuer_at(t0());
    for ttl in [
        Duration::ZERO,
        DEFAULT_MAX_TOKEN_TTL + Duration::from_secs(1),
    ] {
        let claims = AccessTokenClaims {
            ttl,
            ..access_claims()
        };
        assert_eq!(
            issuer.mint_access_token(t0(), &claims).err(),
            Some(SigningError::InvalidTtl)
        );
    }
    let empty = BrokerIssuer::new(ISSUER, SigningKeySet::new(RotationPolicy::default()));
    assert_eq!(
        empty.mint_access_token(t0(), &access_claims()).err(),
        Some(SigningError::NoActiveKey)
    );
    assert_eq!(
        empty
            .mint_outbound_token(t0(), "a", "sts.amazonaws.com", DEFAULT_MAX_TOKEN_TTL)
            .err(),
        Some(SigningError::NoActiveKey)
    );
}

#[test]
fn outbound_tokens_name_the_coordinator_and_are_not_credentials() {
    let issuer = issuer_at(t0());
    let minted = issuer
        .mint_outbound_token(t0(), "a", "sts.amazonaws.com", Duration::from_secs(600))
        .expect("mint");
    let header = decode_part(minted.as_str(), 0);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "ES256");
    let claims = decode_part(minted.as_str(), 1);
    assert_eq!(claims["sub"], "coordinator:a");
    assert_eq!(claims["aud"], "sts.amazonaws.com");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["exp"], crate::clock::unix_seconds(t0()) + 600);
    assert_eq!(
        issuer
            .credential_verifier(t0())
            .verify(minted.as_str(), "sts.amazonaws.com", "keys:read", t0())
            .err(),
        Some(CredentialRejection::InvalidToken {
            reason: "typ is not at+jwt"
        })
    );
}

#[test]
fn credential_rejections() {
    let issuer = issuer_at(t0());
    let verifier = issuer.credential_verifier(t0());
    let token = issuer
        .mint_access_token(t0(), &access_claims())
        .expect("mint");
    let token = token.as_str();
    let verify =
        |t: &str, aud: &str, scope: &str, at: SystemTime| verifier.verify(t, aud, scope, at);

    let expiry = t0() + Duration::from_secs(3600) + CLOCK_SKEW;
    assert!(verify(token, ISSUER, "keys:read", expiry - Duration::from_secs(1)).is_ok());
    assert_eq!(
        verify(token, ISSUER, "keys:read", expiry).err(),
        Some(CredentialRejection::Expired)
    );
    assert_eq!(
        verify(token, "https://other", "keys:read", t0()).err(),
        Some(CredentialRejection::WrongAudience)
    );
    assert_eq!(
        verify(token, ISSUER, "admin", t0()).err(),
        Some(CredentialRejection::InsufficientScope)
    );
    assert_eq!(
        verify(token, ISSUER, "keys", t0()).err(),
        Some(CredentialRejection::InsufficientScope),
        "no prefix matching of scopes"
    );
    assert_eq!(
        verify(token, ISSUER, "keys:read", t0() - Duration::from_secs(61))
            .err()
            .map(|r| r.code()),
        Some("invalid_token"),
        "issued in the future"
    );

    let (input, sig) = token.rsplit_once('.').expect("parts");
    let mut sig = b64url_decode(sig).expect("b64");
    sig[0] ^= 0x80;
    let tampered = format!("{input}.{}", crate::jose::b64url(&sig));
    assert_eq!(
        verify(&tampered, ISSUER, "keys:read", t0()).err(),
        Some(CredentialRejection::InvalidToken {
            reason: "signature is invalid"
        })
    );

    // Same URL, different keys: the kid is not published by this broker.
    let impostor = issuer_at(t0());
    let forged = impostor
        .mint_access_token(t0(), &access_claims())
        .expect("mint");
    assert_eq!(
        verify(forged.as_str(), ISSUER, "keys:read", t0()).err(),
        Some(CredentialRejection::InvalidToken {
            reason: "kid is not a published key"
        })
    );
    // Right keys, other issuer URL.
    let mut keys = SigningKeySet::new(RotationPolicy::default());
    std::mem::swap(&mut keys, &mut issuer_at(t0()).keys);
    let other_url = BrokerIssuer::new("https://other.example.com", keys);
    let other_verifier = CredentialVerifier {
        issuer: ISSUER.into(),
        keys: other_url.credential_verifier(t0()).keys,
    };
    let other = other_url
        .mint_access_token(t0(), &access_claims())
        .expect("mint");
    assert_eq!(
        other_verifier
            .verify(other.as_str(), ISSUER, "keys:read", t0())
            .err(),
        Some(CredentialRejection::InvalidToken {
            reason: "iss is not this broker"
        })
    );

    for garbage in ["", "a.b.c", "x".repeat(17 * 1024).as_str()] {
        assert_eq!(
            verify(garbage, ISSUER, "keys:read", t0())
                .err()
                .map(|r| r.code()),
            Some("invalid_token")
        );
    }
}

#[test]
fn headers_other_than_es256_at_jwt_are_refused() {
    let issuer = issuer_at(t0());
    let verifier = issuer.credential_verifier(t0());
    let key = issuer.keys().signing_key(t0()).expect("key");
    let claims = decode_part(
        issuer
            .mint_access_token(t0(), &access_claims())
            .expect("mint")
            .as_str(),
        1,
    );
    let resign = |header: Value| {
        let input = format!(
            "{}.{}",
            crate::jose::b64url(header.to_string().as_bytes()),
            crate::jose::b64url(claims.to_string().as_bytes())
        );
        let sig = key
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("sign");
        format!("{input}.{}", crate::jose::b64url(sig.as_ref()))
    };
    let ok = resign(json!({"alg": "ES256", "typ": "application/at+jwt", "kid": key.kid()}));
    assert!(verifier.verify(&ok, ISSUER, "keys:read", t0()).is_ok());
    for (header, reason) in [
        (
            json!({"alg": "ES256", "kid": key.kid()}),
            "typ is not at+jwt",
        ),
        (
            json!({"alg": "ES384", "typ": "at+jwt", "kid": key.kid()}),
            "alg is not ES256",
        ),
        (
            json!({"alg": "none", "typ": "at+jwt", "kid": key.kid()}),
            "alg is not ES256",
        ),
        (
            json!({"alg": "ES256", "typ": "at+jwt"}),
            "kid is not a published key",
        ),
    ] {
        assert_eq!(
            verifier
                .verify(&resign(header), ISSUER, "keys:read", t0())
                .err(),
            Some(CredentialRejection::InvalidToken { reason })
        );
    }
}

#[test]
fn a_peer_verifies_credentials_from_the_published_jwks() {
    let issuer = issuer_at(t0());
    let peer = CredentialVerifier::from_jwks(ISSUER, &issuer.jwks_document(t0()));
    let minted = issuer
        .mint_access_token(t0(), &access_claims())
        .expect("mint");
    assert!(
        peer.verify(minted.as_str(), ISSUER, "keys:read", t0())
            .is_ok()
    );
    assert!(format!("{peer:?}").contains(minted.kid()));
    let empty = CredentialVerifier::from_jwks(ISSUER, &json!({"keys": "nope"}));
    assert!(
        empty
            .verify(minted.as_str(), ISSUER, "keys:read", t0())
            .is_err()
    );
}

#[test]
fn credentials_signed_by_a_retired_key_verify_until_it_is_unpublished() {
    let mut issuer = issuer_at(t0());
    let old = issuer.mint_access_token(t0() + 30 * DAY - Duration::from_secs(1), &access_claims());
    let old = old.expect("mint");
    let rotate_at = t0() + 30 * DAY;
    issuer.keys_mut().rotate(rotate_at).expect("rotate");
    let new = issuer
        .mint_access_token(rotate_at, &access_claims())
        .expect("mint");
    assert_ne!(new.kid(), old.kid(), "the next key signs now");
    let verifier = issuer.credential_verifier(rotate_at);
    assert!(
        verifier
            .verify(old.as_str(), ISSUER, "keys:read", rotate_at)
            .is_ok()
    );
    assert!(
        verifier
            .verify(new.as_str(), ISSUER, "keys:read", rotate_at)
            .is_ok()
    );
    let later = rotate_at + DEFAULT_MAX_TOKEN_TTL + CLOCK_SKEW;
    let outcome = issuer.keys_mut().rotate(later).expect("rotate");
    assert_eq!(outcome.removed, [old.kid().to_owned()]);
    assert!(issuer.keys().get(old.kid()).is_none());
}
