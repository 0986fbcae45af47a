use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;
use crate::clock::ManualClock;
use crate::jose::b64url;
use crate::jwks::JwksPolicy;
use crate::testutil::{EcTestKey, RsaTestKey, hs256, signing_input};

const ISS: &str = "https://idp.example.com";
const AUD: &str = "https://broker.example.com";
const NOW: i64 = 1_800_000_000;

struct Fixture {
    clock: ManualClock,
    validator: TokenValidator,
    ec: EcTestKey,
}

fn fixture() -> Fixture {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW as u64));
    let registry = IssuerRegistry::new(true);
    let mut config = IssuerConfig::new("example", IssuerKind::Oidc, ISS, AUD);
    config.max_token_lifetime = Duration::from_secs(3600);
    registry.insert(config).expect("valid issuer");
    let policy = JwksPolicy {
        allow_http_loopback: true,
        ..JwksPolicy::default()
    };
    let jwks = JwksCache::new(Arc::new(clock.clone()), policy).expect("client");
    let ec = EcTestKey::generate("ec-1");
    jwks.preload(
        ISS,
        &json!({"keys": [RsaTestKey::shared().jwk(), ec.jwk()]}),
        Duration::from_secs(300),
    );
    let validator = TokenValidator::new(registry, jwks, Arc::new(clock.clone()));
    Fixture {
        clock,
        validator,
        ec,
    }
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "workload-1", "aud": AUD, "iat": NOW - 10, "exp": NOW + 600,
        "google": {"compute_engine": {"project_id": "p-1", "project_number": 42}},
    })
}

fn rs_header() -> Value {
    json!({"alg": "RS256", "kid": RsaTestKey::shared().kid, "typ": "JWT"})
}

fn rs256(claims: &Value) -> String {
    RsaTestKey::shared().sign(&rs_header(), claims)
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().expect("object").remove(name);
    claims
}

async fn rejection(f: &Fixture, token: &str) -> TokenRejection {
    let rejection = f
        .validator
        .validate(token)
        .await
        .expect_err("token must be refused");
    for part in token.split('.').filter(|p| p.len() >= 8) {
        assert!(
            !rejection.description().contains(part) && !format!("{rejection:?}").contains(part),
            "rejection echoes the token"
        );
    }
    rejection
}

#[tokio::test]
async fn a_valid_rs256_token_yields_a_verified_token() {
    let f = fixture();
    let token = f
        .validator
        .validate(&rs256(&claims()))
        .await
        .expect("valid");
    assert_eq!(token.iss(), ISS);
    assert_eq!(token.sub(), "workload-1");
    assert_eq!(token.aud(), [AUD.to_owned()]);
    assert_eq!(token.exp(), NOW + 600);
    assert_eq!(token.iat(), NOW - 10);
    assert_eq!(token.issuer_name(), "example");
    assert_eq!(token.issuer_kind(), IssuerKind::Oidc);
    assert_eq!(token.kid(), "rsa-1");
    assert_eq!(token.alg(), Algorithm::RS256);
    assert_eq!(token.claims()["sub"], "workload-1");
    assert_eq!(
        token.claim_at_path("google.compute_engine.project_id"),
        Some(&json!("p-1"))
    );
}

#[tokio::test]
async fn a_valid_es256_token_with_an_audience_array_is_accepted() {
    let f = fixture();
    let claims = with(claims(), "aud", json!(["other", AUD]));
    let token = f.ec.sign(&json!({"alg": "ES256", "kid": "ec-1"}), &claims);
    let verified = f.validator.validate(&token).await.expect("valid");
    assert_eq!(verified.aud().len(), 2);
    assert_eq!(verified.alg(), Algorithm::ES256);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let f = fixture();
    let token = format!("{}.", signing_input(&json!({"alg": "none"}), &claims()));
    assert_eq!(rejection(&f, &token).await, TokenRejection::AlgNotAllowed);
    let with_kid = format!(
        "{}.",
        signing_input(&json!({"alg": "none", "kid": "rsa-1"}), &claims())
    );
    assert_eq!(
        rejection(&f, &with_kid).await,
        TokenRejection::AlgNotAllowed
    );
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let f = fixture();
    let pem = RsaTestKey::shared().public_pem();
    let token = hs256(
        &json!({"alg": "HS256", "kid": "rsa-1"}),
        &claims(),
        pem.as_bytes(),
    );
    assert_eq!(rejection(&f, &token).await, TokenRejection::AlgNotAllowed);
}

#[tokio::test]
async fn algorithms_outside_the_issuer_allowlist_are_refused() {
    let f = fixture();
    for alg in ["RS384", "PS256", "EdDSA", "HS512", "RSA-OAEP", "rs256"] {
        let header = json!({"alg": alg, "kid": "rsa-1"});
        let token = RsaTestKey::shared().sign(&header, &claims());
        assert_eq!(
            rejection(&f, &token).await,
            TokenRejection::AlgNotAllowed,
            "{alg}"
        );
    }
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let f = fixture();
    let header = json!({"alg": "RS256", "kid": "not-published"});
    let token = RsaTestKey::shared().sign(&header, &claims());
    assert_eq!(rejection(&f, &token).await, TokenRejection::UnknownKid);
}

#[tokio::test]
async fn a_key_of_the_wrong_family_is_refused() {
    let f = fixture();
    let token =
        f.ec.sign(&json!({"alg": "ES256", "kid": "rsa-1"}), &claims());
    assert_eq!(rejection(&f, &token).await, TokenRejection::AlgKeyMismatch);
    let token = RsaTestKey::shared().sign(&json!({"alg": "RS256", "kid": "ec-1"}), &claims());
    assert_eq!(rejection(&f, &token).await, TokenRejection::AlgKeyMismatch);
}

#[tokio::test]
async fn a_flipped_signature_bit_is_refused() {
    let f = fixture();
    let token = rs256(&claims());
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    let mut bytes = crate::jose::b64url_decode(sig).expect("b64");
    bytes[10] ^= 0x01;
    let tampered = format!("{input}.{}", b64url(&bytes));
    assert_eq!(rejection(&f, &tampered).await, TokenRejection::BadSignature);

    // A signature by another key with the same kid, and a payload swapped after signing.
    let forged = RsaTestKey::other().sign(&rs_header(), &claims());
    assert_eq!(rejection(&f, &forged).await, TokenRejection::BadSignature);
    let other = rs256(&with(claims(), "sub", json!("admin")));
    let (_, other_sig) = other.rsplit_once('.').expect("three parts");
    assert_eq!(
        rejection(&f, &format!("{input}.{other_sig}")).await,
        TokenRejection::BadSignature
    );
    let empty_sig = format!("{input}.");
    assert_eq!(
        rejection(&f, &empty_sig).await,
        TokenRejection::BadSignature
    );
}

#[tokio::test]
async fn time_claims_are_checked_with_sixty_seconds_of_skew() {
    let f = fixture();
    let cases = [
        (without(claims(), "exp"), Some(TokenRejection::MissingExp)),
        (
            with(claims(), "exp", json!("soon")),
            Some(TokenRejection::MissingExp),
        ),
        (without(claims(), "iat"), Some(TokenRejection::MissingIat)),
        (
            with(claims(), "exp", json!(NOW - 60)),
            Some(TokenRejection::Expired),
        ),
        (with(claims(), "exp", json!(NOW - 59)), None),
        (
            with(claims(), "nbf", json!(NOW + 61)),
            Some(TokenRejection::NotYetValid),
        ),
        (with(claims(), "nbf", json!(NOW + 60)), None),
        (
            with(claims(), "nbf", json!("later")),
            Some(TokenRejection::Malformed {
                reason: "nbf claim is not a NumericDate",
            }),
        ),
        (
            with(claims(), "iat", json!(NOW + 61)),
            Some(TokenRejection::IssuedInFuture),
        ),
        (with(claims(), "iat", json!(NOW + 60)), None),
        (
            with(with(claims(), "iat", json!(NOW)), "exp", json!(NOW + 3601)),
            Some(TokenRejection::LifetimeTooLong),
        ),
        (
            with(with(claims(), "iat", json!(NOW)), "exp", json!(NOW + 3600)),
            None,
        ),
        (with(claims(), "exp", json!((NOW + 30) as f64 + 0.5)), None),
    ];
    for (claims, expected) in cases {
        let result = f.validator.validate(&rs256(&claims)).await;
        assert_eq!(result.err(), expected, "{claims}");
    }
}

#[tokio::test]
async fn a_token_expires_when_the_clock_moves() {
    let f = fixture();
    let token = rs256(&with(claims(), "exp", json!(NOW + 100)));
    f.validator.validate(&token).await.expect("valid now");
    f.clock.advance(Duration::from_secs(100 + 59));
    f.validator.validate(&token).await.expect("within the skew");
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(rejection(&f, &token).await, TokenRejection::Expired);
}

#[tokio::test]
async fn the_audience_must_contain_the_configured_one() {
    let f = fixture();
    for aud in [
        json!("https://other.example.com"),
        json!(["a", "b"]),
        json!(7),
        json!([AUD, 1]),
    ] {
        let token = rs256(&with(claims(), "aud", aud.clone()));
        assert_eq!(
            rejection(&f, &token).await,
            TokenRejection::WrongAudience,
            "{aud}"
        );
    }
    let token = rs256(&without(claims(), "aud"));
    assert_eq!(rejection(&f, &token).await, TokenRejection::WrongAudience);
}

#[tokio::test]
async fn an_untrusted_or_missing_issuer_is_refused() {
    let f = fixture();
    for iss in [
        json!("https://evil.example.com"),
        json!("https://idp.example.com/"),
        json!(1),
    ] {
        let token = rs256(&with(claims(), "iss", iss.clone()));
        assert_eq!(
            rejection(&f, &token).await,
            TokenRejection::UntrustedIssuer,
            "{iss}"
        );
    }
    let token = rs256(&without(claims(), "iss"));
    assert_eq!(rejection(&f, &token).await, TokenRejection::UntrustedIssuer);
}

#[tokio::test]
async fn issuers_can_be_removed_at_runtime() {
    let f = fixture();
    let token = rs256(&claims());
    f.validator.validate(&token).await.expect("valid");
    assert!(f.validator.remove_issuer(ISS).is_some());
    assert_eq!(rejection(&f, &token).await, TokenRejection::UntrustedIssuer);
    assert!(f.validator.issuers().list().is_empty());
}

#[tokio::test]
async fn oversized_garbage_and_truncated_tokens_are_refused() {
    let f = fixture();
    let oversized = format!("{}.{}.{}", "a".repeat(17 * 1024), "b", "c");
    assert_eq!(
        rejection(&f, &oversized).await,
        TokenRejection::TokenTooLarge
    );
    let exactly_max = format!("{}..", "a".repeat(MAX_TOKEN_BYTES - 2));
    assert!(matches!(
        rejection(&f, &exactly_max).await,
        TokenRejection::Malformed { .. }
    ));

    let valid = rs256(&claims());
    let (two_parts, sig) = valid.rsplit_once('.').expect("three parts");
    let sig_bytes = crate::jose::b64url_decode(sig).expect("b64");
    let truncated_sig = format!("{two_parts}.{}", b64url(&sig_bytes[..200]));
    let cases = [
        "garbage".to_owned(),
        String::new(),
        "...".to_owned(),
        "a.b.c".to_owned(),
        "\u{0}\u{1}.x.y".to_owned(),
        two_parts.to_owned(),
        valid[..40].to_owned(),
        format!("{valid}.extra"),
    ];
    for token in cases {
        assert!(
            matches!(
                rejection(&f, &token).await,
                TokenRejection::Malformed { .. }
            ),
            "{token:?}"
        );
    }
    assert_eq!(
        rejection(&f, &truncated_sig).await,
        TokenRejection::BadSignature
    );
}

#[tokio::test]
async fn header_problems_are_named() {
    let f = fixture();
    let no_kid = RsaTestKey::shared().sign(&json!({"alg": "RS256"}), &claims());
    assert_eq!(rejection(&f, &no_kid).await, TokenRejection::MissingKid);
    let empty_kid = RsaTestKey::shared().sign(&json!({"alg": "RS256", "kid": ""}), &claims());
    assert_eq!(rejection(&f, &empty_kid).await, TokenRejection::MissingKid);
    let numeric_kid = RsaTestKey::shared().sign(&json!({"alg": "RS256", "kid": 1}), &claims());
    assert_eq!(
        rejection(&f, &numeric_kid).await,
        TokenRejection::MissingKid
    );
    let no_alg = RsaTestKey::shared().sign(&json!({"kid": "rsa-1"}), &claims());
    assert_eq!(
        rejection(&f, &no_alg).await,
        TokenRejection::Malformed {
            reason: "header has no alg"
        }
    );
    let crit = RsaTestKey::shared().sign(
        &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["b64"], "b64": false}),
        &claims(),
    );
    assert!(matches!(
        rejection(&f, &crit).await,
        TokenRejection::Malformed { .. }
    ));
}

#[tokio::test]
async fn a_subject_is_required() {
    let f = fixture();
    for claims in [without(claims(), "sub"), with(claims(), "sub", json!(""))] {
        assert_eq!(
            rejection(&f, &rs256(&claims)).await,
            TokenRejection::MissingSubject
        );
    }
}

#[tokio::test]
async fn checks_run_in_the_contract_order() {
    let f = fixture();
    // HMAC before kid and issuer.
    let token = hs256(
        &json!({"alg": "HS256"}),
        &with(claims(), "iss", json!("x")),
        b"k",
    );
    assert_eq!(rejection(&f, &token).await, TokenRejection::AlgNotAllowed);
    // Missing kid before untrusted issuer.
    let token =
        RsaTestKey::shared().sign(&json!({"alg": "RS256"}), &with(claims(), "iss", json!("x")));
    assert_eq!(rejection(&f, &token).await, TokenRejection::MissingKid);
    // Issuer before key.
    let token = RsaTestKey::shared().sign(
        &json!({"alg": "RS256", "kid": "nope"}),
        &with(claims(), "iss", json!("x")),
    );
    assert_eq!(rejection(&f, &token).await, TokenRejection::UntrustedIssuer);
    // Signature before time and audience.
    let bad = with(with(claims(), "exp", json!(NOW - 1000)), "aud", json!("x"));
    let forged = RsaTestKey::other().sign(&rs_header(), &bad);
    assert_eq!(rejection(&f, &forged).await, TokenRejection::BadSignature);
    // Expiry before audience.
    assert_eq!(rejection(&f, &rs256(&bad)).await, TokenRejection::Expired);
    // exp before iat.
    let token = rs256(&without(without(claims(), "iat"), "exp"));
    assert_eq!(rejection(&f, &token).await, TokenRejection::MissingExp);
}

#[tokio::test]
async fn an_issuer_without_reachable_keys_is_reported_unreachable() {
    let f = fixture();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    f.validator
        .issuers()
        .insert(IssuerConfig::new(
            "dead",
            IssuerKind::Oidc,
            dead.clone(),
            AUD,
        ))
        .expect("loopback allowed in dev");
    let token = rs256(&with(claims(), "iss", json!(dead)));
    assert_eq!(
        rejection(&f, &token).await,
        TokenRejection::IssuerUnreachable
    );
}

#[test]
fn codes_are_stable_and_descriptions_distinct() {
    let all = [
        TokenRejection::TokenTooLarge,
        TokenRejection::Malformed { reason: "x" },
        TokenRejection::MissingKid,
        TokenRejection::AlgNotAllowed,
        TokenRejection::UntrustedIssuer,
        TokenRejection::UnknownKid,
        TokenRejection::IssuerUnreachable,
        TokenRejection::AlgKeyMismatch,
        TokenRejection::BadSignature,
        TokenRejection::MissingExp,
        TokenRejection::MissingIat,
        TokenRejection::Expired,
        TokenRejection::NotYetValid,
        TokenRejection::IssuedInFuture,
        TokenRejection::LifetimeTooLong,
        TokenRejection::WrongAudience,
        TokenRejection::MissingSubject,
    ];
    let codes: std::collections::HashSet<_> = all.iter().map(TokenRejection::code).collect();
    assert_eq!(codes.len(), all.len());
    for r in &all {
        assert!(r.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        assert_eq!(r.to_string(), r.description());
    }
    assert_eq!(TokenRejection::Expired.code(), "expired");
    assert_eq!(TokenRejection::WrongAudience.code(), "wrong_audience");
}

#[test]
fn dotted_paths_walk_nested_objects_and_dotted_names() {
    let claims = json!({
        "a": {"b": {"c": "deep"}}, "x.y": "flat", "n": [1],
        "https://sts.amazonaws.com/": {"aws_account": "111122223333"},
        "k": {"v": "nested"}, "k.v": "dotted",
    });
    assert_eq!(claim_at_path(&claims, "a.b.c"), Some(&json!("deep")));
    assert_eq!(claim_at_path(&claims, "a.b"), Some(&json!({"c": "deep"})));
    assert_eq!(claim_at_path(&claims, "x.y"), Some(&json!("flat")));
    assert_eq!(
        claim_at_path(&claims, "https://sts.amazonaws.com/.aws_account"),
        Some(&json!("111122223333"))
    );
    assert_eq!(
        claim_at_path(&claims, "k.v"),
        Some(&json!("nested")),
        "nesting first"
    );
    assert_eq!(claim_at_path(&claims, "a.b.c.d"), None);
    assert_eq!(claim_at_path(&claims, &["a"; 40].join(".")), None);
    assert_eq!(claim_at_path(&claims, "n.0"), None);
    assert_eq!(claim_at_path(&claims, ""), None);
    assert_eq!(claim_at_path(&claims, "a..c"), None);
}

#[test]
fn unverified_identity_is_for_audit_only_and_bounded() {
    let token = rs256(&claims());
    let peeked = UnverifiedIdentity::peek(&token).expect("parses");
    assert_eq!(peeked.iss.as_deref(), Some(ISS));
    assert_eq!(peeked.sub.as_deref(), Some("workload-1"));
    let hostile = rs256(&with(
        with(claims(), "sub", json!("a\nb")),
        "iss",
        json!("x".repeat(300)),
    ));
    assert_eq!(
        UnverifiedIdentity::peek(&hostile),
        Some(UnverifiedIdentity {
            iss: None,
            sub: None
        })
    );
    assert_eq!(UnverifiedIdentity::peek("garbage"), None);
}
