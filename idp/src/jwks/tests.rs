use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::*;
use crate::clock::ManualClock;
use crate::testutil::{EcTestKey, MockHttp, MockResponse, RsaTestKey};

const DISCOVERY: &str = "/.well-known/openid-configuration";

fn dev_policy() -> JwksPolicy {
    JwksPolicy {
        allow_http_loopback: true,
        ..JwksPolicy::default()
    }
}

fn cache(clock: &ManualClock) -> JwksCache {
    JwksCache::new(Arc::new(clock.clone()), dev_policy()).expect("client")
}

fn start_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn jwks_of(keys: &[serde_json::Value]) -> serde_json::Value {
    json!({ "keys": keys })
}

#[tokio::test]
async fn discovers_the_jwks_and_serves_later_lookups_from_memory() {
    let idp = MockHttp::start().await;
    let rsa = RsaTestKey::shared();
    idp.serve_issuer(&jwks_of(&[rsa.jwk()]));
    let clock = ManualClock::new(start_time());
    let cache = cache(&clock);

    let key = cache.get_key(&idp.base, None, &rsa.kid).await.expect("key");
    assert_eq!(key.kid(), rsa.kid);
    assert_eq!(key.kind(), KeyKind::Rsa);
    clock.advance(Duration::from_secs(299));
    cache
        .get_key(&idp.base, None, &rsa.kid)
        .await
        .expect("cached");

    assert_eq!(idp.hits(DISCOVERY), 1);
    assert_eq!(idp.hits("/jwks"), 1);
    let stats = cache.stats(&idp.base).expect("stats");
    assert_eq!(stats.fetches, 1);
    assert_eq!(stats.failures, 0);
    assert_eq!(stats.keys, 1);
    assert_eq!(
        stats.expires_at,
        Some(start_time() + Duration::from_secs(300))
    );
}

#[tokio::test]
async fn an_explicit_jwks_uri_skips_discovery() {
    let idp = MockHttp::start().await;
    let ec = EcTestKey::generate("ec-1");
    idp.set("/keys", MockResponse::json(&jwks_of(&[ec.jwk()])));
    let cache = cache(&ManualClock::new(start_time()));
    let uri = Url::parse(&format!("{}/keys", idp.base)).expect("url");
    let key = cache
        .get_key("https://issuer.example", Some(&uri), "ec-1")
        .await
        .expect("key");
    assert_eq!(key.kind(), KeyKind::Ec(EcCurve::P256));
    assert_eq!(idp.hits(DISCOVERY), 0);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let idp = MockHttp::start().await;
    idp.set(
        DISCOVERY,
        MockResponse::json(&json!({
            "issuer": "https://accounts.google.com", "jwks_uri": format!("{}/jwks", idp.base)
        })),
    );
    idp.set(
        "/jwks",
        MockResponse::json(&jwks_of(&[RsaTestKey::shared().jwk()])),
    );
    let cache = cache(&ManualClock::new(start_time()));
    assert_eq!(
        cache.get_key(&idp.base, None, "rsa-1").await.err(),
        Some(JwksError::IssuerUnreachable(FetchFailure::IssuerMismatch))
    );
    assert_eq!(idp.hits("/jwks"), 0);
}

#[tokio::test]
async fn discovery_must_name_an_acceptable_jwks_uri() {
    let idp = MockHttp::start().await;
    idp.set(
        DISCOVERY,
        MockResponse::json(&json!({
            "issuer": idp.base, "jwks_uri": "http://keys.example.com/jwks"
        })),
    );
    let cache = cache(&ManualClock::new(start_time()));
    assert_eq!(
        cache.get_key(&idp.base, None, "k").await.err(),
        Some(JwksError::IssuerUnreachable(FetchFailure::BadJwksUri(
            UrlProblem::NotHttps
        )))
    );
}

#[tokio::test]
async fn plain_http_is_refused_outside_the_dev_profile() {
    let idp = MockHttp::start().await;
    idp.serve_issuer(&jwks_of(&[RsaTestKey::shared().jwk()]));
    let clock = ManualClock::new(start_time());
    let cache = JwksCache::new(Arc::new(clock), JwksPolicy::default()).expect("client");
    assert!(matches!(
        cache.get_key(&idp.base, None, "rsa-1").await,
        Err(JwksError::IssuerUnreachable(
            FetchFailure::InvalidDiscovery(_)
        ))
    ));
    assert_eq!(idp.hits(DISCOVERY), 0);
}

#[tokio::test]
async fn cache_control_max_age_sets_the_lifetime_within_bounds() {
    for (header, lifetime) in [
        (Some("public, max-age=600"), 600),
        (Some("max-age=10"), 300),
        (Some("max-age=9999999"), 86_400),
        (Some("no-store"), 300),
        (None, 300),
    ] {
        let idp = MockHttp::start().await;
        idp.serve_issuer(&jwks_of(&[RsaTestKey::shared().jwk()]));
        let mut jwks = MockResponse::json(&jwks_of(&[RsaTestKey::shared().jwk()]));
        if let Some(value) = header {
            jwks = jwks.header("Cache-Control", value);
        }
        idp.set("/jwks", jwks);
        let clock = ManualClock::new(start_time());
        let cache = cache(&clock);
        cache.get_key(&idp.base, None, "rsa-1").await.expect("key");

        clock.advance(Duration::from_secs(lifetime - 1));
        cache
            .get_key(&idp.base, None, "rsa-1")
            .await
            .expect("cached");
        assert_eq!(cache.fetch_count(&idp.base), 1, "{header:?} still fresh");
        clock.advance(Duration::from_secs(1));
        cache
            .get_key(&idp.base, None, "rsa-1")
            .await
            .expect("refetched");
        assert_eq!(cache.fetch_count(&idp.base), 2, "{header:?} expired");
    }
}

#[test]
fn cache_control_parsing() {
    let parse = |v: &[&str]| cache_control_max_age(v.iter().copied());
    assert_eq!(parse(&["max-age=42"]), Some(Duration::from_secs(42)));
    assert_eq!(
        parse(&["public", "MAX-AGE = 7"]),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        parse(&["max-age=\"9\", must-revalidate"]),
        Some(Duration::from_secs(9))
    );
    assert_eq!(parse(&["max-age=x"]), None);
    assert_eq!(parse(&["no-cache"]), Some(Duration::ZERO));
    assert_eq!(parse(&[]), None);
}

#[tokio::test]
async fn an_unknown_kid_refreshes_at_most_once_per_minute() {
    let idp = MockHttp::start().await;
    let rsa = RsaTestKey::shared();
    idp.serve_issuer(&jwks_of(&[rsa.jwk()]));
    let clock = ManualClock::new(start_time());
    let cache = cache(&clock);
    cache.get_key(&idp.base, None, &rsa.kid).await.expect("key");

    // Within the minute after the last fetch: refused from memory, no request.
    assert_eq!(
        cache.get_key(&idp.base, None, "rotated").await.err(),
        Some(JwksError::UnknownKid)
    );
    assert_eq!(cache.fetch_count(&idp.base), 1);

    // The issuer rotates; after a minute the unknown kid triggers one refresh that finds it.
    let ec = EcTestKey::generate("rotated");
    idp.set(
        "/jwks",
        MockResponse::json(&jwks_of(&[rsa.jwk(), ec.jwk()])),
    );
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        cache.get_key(&idp.base, None, "rotated").await.err(),
        Some(JwksError::UnknownKid)
    );
    clock.advance(Duration::from_secs(1));
    cache
        .get_key(&idp.base, None, "rotated")
        .await
        .expect("found after refresh");
    assert_eq!(cache.fetch_count(&idp.base), 2);

    // Still unknown after a refresh: fails, and the next refresh waits another minute.
    assert_eq!(
        cache.get_key(&idp.base, None, "never").await.err(),
        Some(JwksError::UnknownKid)
    );
    assert_eq!(cache.fetch_count(&idp.base), 2);
    assert_eq!(idp.hits("/jwks"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kid_lookups_share_one_fetch() {
    let idp = MockHttp::start().await;
    let rsa = RsaTestKey::shared();
    idp.serve_issuer(&jwks_of(&[rsa.jwk()]));
    let clock = ManualClock::new(start_time());
    let cache = cache(&clock);
    cache.get_key(&idp.base, None, &rsa.kid).await.expect("key");
    idp.set(
        "/jwks",
        MockResponse::json(&jwks_of(&[rsa.jwk()])).delayed(Duration::from_millis(200)),
    );
    clock.advance(Duration::from_secs(61));

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let cache = cache.clone();
        let issuer = idp.base.clone();
        tasks.spawn(async move { cache.get_key(&issuer, None, &format!("forged-{i}")).await });
    }
    let mut unknown = 0;
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.expect("task").err(), Some(JwksError::UnknownKid));
        unknown += 1;
    }
    assert_eq!(unknown, 50);
    assert_eq!(
        cache.fetch_count(&idp.base),
        2,
        "one initial fetch + one refresh"
    );
    assert_eq!(idp.hits("/jwks"), 2);
}

#[tokio::test]
async fn cached_keys_outlive_an_outage_until_their_expiry() {
    let idp = MockHttp::start().await;
    let rsa = RsaTestKey::shared();
    idp.serve_issuer(&jwks_of(&[rsa.jwk()]));
    let clock = ManualClock::new(start_time());
    let cache = cache(&clock);
    cache.get_key(&idp.base, None, &rsa.kid).await.expect("key");

    idp.set("/jwks", MockResponse::status(503));
    idp.set(DISCOVERY, MockResponse::status(503));
    clock.advance(Duration::from_secs(120));
    // An unknown kid triggers a refresh that fails; the cached key still works.
    assert_eq!(
        cache.get_key(&idp.base, None, "new").await.err(),
        Some(JwksError::UnknownKid)
    );
    cache
        .get_key(&idp.base, None, &rsa.kid)
        .await
        .expect("still cached");
    assert_eq!(cache.stats(&idp.base).expect("stats").failures, 1);

    clock.advance(Duration::from_secs(180));
    assert_eq!(
        cache.get_key(&idp.base, None, &rsa.kid).await.err(),
        Some(JwksError::IssuerUnreachable(FetchFailure::HttpStatus(503)))
    );
    // The next attempt is rate-limited too: no request until a minute has passed.
    assert_eq!(
        cache.get_key(&idp.base, None, &rsa.kid).await.err(),
        Some(JwksError::IssuerUnreachable(FetchFailure::HttpStatus(503)))
    );
    assert_eq!(cache.fetch_count(&idp.base), 3);

    // The issuer comes back: the next allowed refresh restores service.
    idp.serve_issuer(&jwks_of(&[rsa.jwk()]));
    clock.advance(Duration::from_secs(60));
    cache
        .get_key(&idp.base, None, &rsa.kid)
        .await
        .expect("recovered");
}

#[tokio::test]
async fn oversized_redirecting_slow_and_empty_responses_fail() {
    let idp = MockHttp::start().await;
    idp.serve_issuer(&json!({}));
    let big = json!({ "keys": [], "pad": "x".repeat(300 * 1024) });
    idp.set("/big", MockResponse::json(&big));
    idp.set(
        "/moved",
        MockResponse::status(302).header("Location", "/keys-elsewhere"),
    );
    idp.set(
        "/slow",
        MockResponse::json(&jwks_of(&[RsaTestKey::shared().jwk()])).delayed(Duration::from_secs(3)),
    );
    idp.set(
        "/unusable",
        MockResponse::json(&json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]})),
    );
    idp.set("/notjson", MockResponse::status(200));
    let clock = ManualClock::new(start_time());
    let policy = JwksPolicy {
        http_timeout: Duration::from_millis(300),
        ..dev_policy()
    };
    let cache = JwksCache::new(Arc::new(clock), policy).expect("client");
    for (path, failure) in [
        ("/big", FetchFailure::TooLarge),
        ("/moved", FetchFailure::HttpStatus(302)),
        ("/slow", FetchFailure::Timeout),
        (
            "/unusable",
            FetchFailure::InvalidJwks("no usable signing keys"),
        ),
        ("/notjson", FetchFailure::InvalidJwks("body is not JSON")),
        ("/missing", FetchFailure::HttpStatus(404)),
    ] {
        let uri = Url::parse(&format!("{}{path}", idp.base)).expect("url");
        assert_eq!(
            cache.get_key(path, Some(&uri), "k").await.err(),
            Some(JwksError::IssuerUnreachable(failure)),
            "{path}"
        );
    }
    assert_eq!(
        cache.get_key(&idp.base, None, "k").await.err(),
        Some(JwksError::IssuerUnreachable(FetchFailure::InvalidJwks(
            "no keys array"
        )))
    );
}

#[tokio::test]
async fn an_unreachable_issuer_fails_without_cached_keys() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let cache = cache(&ManualClock::new(start_time()));
    assert_eq!(
        cache.get_key(&closed, None, "k").await.err(),
        Some(JwksError::IssuerUnreachable(FetchFailure::Connect))
    );
}

#[tokio::test]
async fn changing_the_jwks_uri_or_forgetting_starts_over() {
    let idp = MockHttp::start().await;
    let rsa = RsaTestKey::shared();
    idp.serve_issuer(&jwks_of(&[rsa.jwk()]));
    idp.set("/other", MockResponse::json(&jwks_of(&[rsa.jwk()])));
    let cache = cache(&ManualClock::new(start_time()));
    cache.get_key(&idp.base, None, &rsa.kid).await.expect("key");
    let other = Url::parse(&format!("{}/other", idp.base)).expect("url");
    cache
        .get_key(&idp.base, Some(&other), &rsa.kid)
        .await
        .expect("key");
    assert_eq!(idp.hits("/other"), 1);
    cache.forget(&idp.base);
    assert_eq!(cache.stats(&idp.base), None);
    assert_eq!(cache.fetch_count(&idp.base), 0);
}

#[test]
fn only_signature_keys_of_supported_types_are_kept() {
    let rsa = RsaTestKey::shared().jwk();
    let ec = EcTestKey::generate("e").jwk();
    let with = |base: &serde_json::Value, field: &str, value: serde_json::Value| {
        let mut jwk = base.clone();
        jwk[field] = value;
        jwk
    };
    let without = |base: &serde_json::Value, field: &str| {
        let mut jwk = base.clone();
        jwk.as_object_mut().expect("object").remove(field);
        jwk
    };
    assert!(VerificationKey::from_jwk(&rsa).is_some());
    assert!(VerificationKey::from_jwk(&without(&rsa, "use")).is_some());
    assert!(VerificationKey::from_jwk(&ec).is_some());
    let rejected = [
        with(&rsa, "use", json!("enc")),
        without(&rsa, "kid"),
        with(&rsa, "kid", json!("")),
        with(&rsa, "alg", json!("RSA-OAEP")),
        with(&rsa, "alg", json!("ES256")),
        with(&rsa, "n", json!("AQAB")),
        with(&rsa, "n", json!("not base64!")),
        with(&ec, "crv", json!("P-521")),
        with(&ec, "crv", json!("P-384")),
        with(&ec, "x", json!("AQAB")),
        json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}),
        json!({"kty": "OKP", "crv": "Ed25519", "kid": "o", "x": "AQAB"}),
    ];
    for jwk in rejected {
        assert!(VerificationKey::from_jwk(&jwk).is_none(), "{jwk}");
    }
}

#[test]
fn keys_only_support_algorithms_of_their_family() {
    use jsonwebtoken::Algorithm::*;
    let pinned = VerificationKey::from_jwk(&RsaTestKey::shared().jwk()).expect("rsa");
    assert!(pinned.supports(RS256));
    assert!(!pinned.supports(PS256), "pinned to RS256");
    let mut unpinned_jwk = RsaTestKey::shared().jwk();
    unpinned_jwk.as_object_mut().expect("object").remove("alg");
    let unpinned = VerificationKey::from_jwk(&unpinned_jwk).expect("rsa");
    for alg in [RS256, RS384, RS512, PS256, PS384, PS512] {
        assert!(unpinned.supports(alg));
    }
    for alg in [ES256, ES384, HS256, EdDSA] {
        assert!(!unpinned.supports(alg));
    }
    let ec = VerificationKey::from_jwk(&EcTestKey::generate("e").jwk()).expect("ec");
    assert!(ec.supports(ES256));
    assert!(!ec.supports(ES384));
    assert!(!ec.supports(RS256));
    assert!(
        !format!("{ec:?}").contains("x\""),
        "Debug shows no key material"
    );
}
