#![cfg(all(feature = "azure", feature = "test-double"))]
//! The Azure Key Vault wrapper, through Microsoft's own client, against the
//! TLS test double: round trips, federation, and every failure a caller
//! must be able to tell apart.

mod azure_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_common::*;
use cloud_adapters::azure::test_double::AzureDouble;
use cloud_adapters::azure::{AzureKeyVaultWrapper, AzureSettings};
use cloud_adapters::{KeyWrapper, WrapError};

const SPLIT: &[u8] = b"split A of a Tink HPKE keyset: 160 bytes or so in real life";

// ---- round trips ----------------------------------------------------------

#[tokio::test]
async fn static_token_round_trip_goes_through_the_challenge_once() {
    let (double, wrapper, version) = static_setup().await;

    let wrapped = wrapper.wrap_with_kid(SPLIT).await.expect("wrap");
    assert_eq!(wrapped.ciphertext.len(), 256, "RSA-2048 ciphertext");
    assert!(
        !wrapped.ciphertext.windows(SPLIT.len()).any(|w| w == SPLIT),
        "plaintext visible in the ciphertext"
    );
    assert_eq!(
        wrapped.kid,
        format!("https://{}/keys/splits/{version}", double.vault_host())
    );
    assert_eq!(wrapper.version_of_kid(&wrapped.kid).expect("kid"), version);

    let plaintext = wrapper.unwrap(&wrapped.ciphertext).await.expect("unwrap");
    assert_eq!(plaintext.as_slice(), SPLIT);
    // RSA-OAEP is randomised: the same split never wraps the same way.
    assert_ne!(wrapper.wrap(SPLIT).await.expect("wrap"), wrapped.ciphertext);
    wrapper.probe().await.expect("probe");

    let stats = double.stats();
    assert_eq!(stats.challenges, 1, "the scope is learnt once, then reused");
    assert_eq!(stats.rejected_tokens, 0);
    assert_eq!(stats.get_key_requests, 0, "a pinned version needs no get");
    assert_eq!(stats.wrap_requests, 3);
    assert_eq!(stats.unwrap_requests, 2);
}

#[tokio::test]
async fn an_unpinned_uri_resolves_the_current_version_once_and_keeps_it() {
    let double = AzureDouble::start().await.expect("double");
    let v1 = double.create_key("splits");
    let token = double.issue_static_token();
    let wrapper = AzureKeyVaultWrapper::new(
        uri(&double, "splits", None),
        settings(&double, static_credentials(&token)),
    )
    .expect("wrapper");

    let first = wrapper.wrap_with_kid(SPLIT).await.expect("wrap");
    assert_eq!(wrapper.version_of_kid(&first.kid).expect("kid"), v1);

    // The vault key rotates under a running broker: this wrapper keeps v1,
    // so what it wrapped it still unwraps.
    let v2 = double.create_key("splits");
    assert_eq!(wrapper.key_version().await.expect("version"), v1);
    let second = wrapper.wrap(SPLIT).await.expect("wrap");
    for ct in [&first.ciphertext, &second] {
        assert_eq!(wrapper.unwrap(ct).await.expect("unwrap").as_slice(), SPLIT);
    }
    assert_eq!(double.stats().get_key_requests, 1);

    // A restarted broker sees v2; the recorded kid still opens old ciphertexts.
    let restarted = AzureKeyVaultWrapper::new(
        uri(&double, "splits", None),
        settings(&double, static_credentials(&token)),
    )
    .expect("wrapper");
    assert_eq!(restarted.key_version().await.expect("version"), v2);
    let old_version = restarted.version_of_kid(&first.kid).expect("kid");
    let opened = restarted
        .unwrap_with_version(&first.ciphertext, &old_version)
        .await
        .expect("unwrap with the recorded version");
    assert_eq!(opened.as_slice(), SPLIT);
    assert!(matches!(
        restarted.unwrap(&first.ciphertext).await,
        Err(WrapError::InvalidCiphertext)
    ));
}

#[tokio::test]
async fn federated_round_trip_trades_a_verified_assertion_for_a_vault_token() {
    let double = AzureDouble::start().await.expect("double");
    let version = double.create_key("splits");
    let issuer = Arc::new(TestIssuer::new(KID));
    double.trust_federation(trust(&issuer)).expect("trust");
    let wrapper = AzureKeyVaultWrapper::new(
        uri(&double, "splits", Some(&version)),
        settings(&double, federated_credentials(&double, issuer.clone())),
    )
    .expect("wrapper");

    let ciphertext = wrapper.wrap(SPLIT).await.expect("wrap");
    let plaintext = wrapper.unwrap(&ciphertext).await.expect("unwrap");
    assert_eq!(plaintext.as_slice(), SPLIT);

    let stats = double.stats();
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.tokens_issued, 1, "the double verified the assertion");
    assert_eq!(
        stats.rejected_tokens, 0,
        "the vault accepted the Entra token"
    );
    assert_eq!(issuer.minted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn twenty_concurrent_wraps_share_one_token_request() {
    let double = AzureDouble::start().await.expect("double");
    let version = double.create_key("splits");
    let issuer = Arc::new(TestIssuer::new(KID));
    double.trust_federation(trust(&issuer)).expect("trust");
    let wrapper = Arc::new(
        AzureKeyVaultWrapper::new(
            uri(&double, "splits", Some(&version)),
            settings(&double, federated_credentials(&double, issuer.clone())),
        )
        .expect("wrapper"),
    );

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20u8 {
        let wrapper = wrapper.clone();
        tasks.spawn(async move {
            let split = [i; 32];
            let ct = wrapper.wrap(&split).await.expect("wrap");
            (split, ct)
        });
    }
    let results = tasks.join_all().await;
    assert_eq!(results.len(), 20);
    for (split, ct) in &results {
        assert_eq!(wrapper.unwrap(ct).await.expect("unwrap").as_slice(), split);
    }

    let stats = double.stats();
    assert_eq!(
        stats.token_requests, 1,
        "one token for all callers: {stats:?}"
    );
    assert_eq!(issuer.minted.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(stats.rejected_tokens, 0);
}

// ---- federation refusals ---------------------------------------------------

#[tokio::test]
async fn assertions_entra_would_refuse_give_permission_denied() {
    let double = AzureDouble::start().await.expect("double");
    let version = double.create_key("splits");
    let trusted = TestIssuer::new(KID);
    double.trust_federation(trust(&trusted)).expect("trust");

    let cases: [(&str, Arc<TestIssuer>, &str); 2] = [
        // Same kid as the trusted key, but signed by another key.
        (
            "forged signature",
            Arc::new(TestIssuer::new(KID)),
            cloud_adapters::azure::DEFAULT_ASSERTION_AUDIENCE,
        ),
        (
            "another subject",
            Arc::new(TestIssuer::with_subject(KID, "coordinator:impostor")),
            cloud_adapters::azure::DEFAULT_ASSERTION_AUDIENCE,
        ),
    ];
    for (case, identity, audience) in cases {
        let mut credentials = federated_credentials(&double, identity);
        if let cloud_adapters::azure::AzureCredentials::Federated { audience: a, .. } =
            &mut credentials
        {
            *a = audience.to_owned();
        }
        let wrapper = AzureKeyVaultWrapper::new(
            uri(&double, "splits", Some(&version)),
            settings(&double, credentials),
        )
        .expect("wrapper");
        let before = double.stats();
        match wrapper.wrap(SPLIT).await {
            Err(WrapError::PermissionDenied(msg)) => {
                assert!(msg.contains("HTTP 401"), "{case}: {msg}")
            }
            other => panic!("{case}: expected PermissionDenied, got {other:?}"),
        }
        let after = double.stats();
        assert_eq!(after.tokens_issued, before.tokens_issued, "{case}");
        assert_eq!(
            after.wrap_requests, before.wrap_requests,
            "{case}: no token, no wrap"
        );
        assert_eq!(
            after.token_requests - before.token_requests,
            1,
            "{case}: a refused assertion is not retried"
        );
    }
}

#[tokio::test]
async fn an_assertion_for_the_wrong_audience_is_refused() {
    let double = AzureDouble::start().await.expect("double");
    let version = double.create_key("splits");
    let issuer = Arc::new(TestIssuer::new(KID));
    double.trust_federation(trust(&issuer)).expect("trust");
    let mut credentials = federated_credentials(&double, issuer);
    if let cloud_adapters::azure::AzureCredentials::Federated { audience, .. } = &mut credentials {
        *audience = "api://SomethingElse".into();
    }
    let wrapper = AzureKeyVaultWrapper::new(
        uri(&double, "splits", Some(&version)),
        settings(&double, credentials),
    )
    .expect("wrapper");
    assert!(matches!(
        wrapper.wrap(SPLIT).await,
        Err(WrapError::PermissionDenied(_))
    ));
    assert_eq!(double.stats().tokens_issued, 0);
}

// ---- typed failures ----------------------------------------------------------

#[tokio::test]
async fn altered_ciphertexts_are_invalid_ciphertext() {
    let (double, wrapper, _) = static_setup().await;
    let ciphertext = wrapper.wrap(SPLIT).await.expect("wrap");
    for (what, altered) in [
        ("first bit flipped", {
            let mut c = ciphertext.clone();
            c[0] ^= 0x01;
            c
        }),
        ("last bit flipped", {
            let mut c = ciphertext.clone();
            c[255] ^= 0x80;
            c
        }),
        ("truncated", ciphertext[..128].to_vec()),
        ("empty", Vec::new()),
    ] {
        assert!(
            matches!(
                wrapper.unwrap(&altered).await,
                Err(WrapError::InvalidCiphertext)
            ),
            "{what}"
        );
    }
    // The 400s were answers, not outages: none was retried.
    assert_eq!(double.stats().unwrap_requests, 3);
}

#[tokio::test]
async fn unknown_keys_and_versions_are_key_not_found() {
    let double = AzureDouble::start().await.expect("double");
    let version = double.create_key("splits");
    let token = double.issue_static_token();
    for (what, uri) in [
        ("unknown key", uri(&double, "nope", Some(&version))),
        ("unknown version", uri(&double, "splits", Some("0123abcd"))),
        ("unknown key, current version", uri(&double, "nope", None)),
    ] {
        let wrapper = AzureKeyVaultWrapper::new(uri, settings(&double, static_credentials(&token)))
            .expect("wrapper");
        match wrapper.wrap(SPLIT).await {
            Err(WrapError::KeyNotFound(msg)) => assert!(
                msg.contains("nope") || msg.contains("splits"),
                "{what}: {msg}"
            ),
            other => panic!("{what}: expected KeyNotFound, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unknown_static_token_is_permission_denied() {
    let double = AzureDouble::start().await.expect("double");
    let version = double.create_key("splits");
    let wrapper = AzureKeyVaultWrapper::new(
        uri(&double, "splits", Some(&version)),
        settings(&double, static_credentials("not-a-token-the-vault-knows")),
    )
    .expect("wrapper");
    assert!(matches!(
        wrapper.wrap(SPLIT).await,
        Err(WrapError::PermissionDenied(_))
    ));
    assert_eq!(double.stats().wrap_requests, 0);
}

// ---- retries ------------------------------------------------------------------

#[tokio::test]
async fn throttling_and_5xx_are_retried_with_backoff_until_success() {
    for status in [429, 503] {
        let (double, wrapper, _) = static_setup().await;
        double.fail_next(2, status);
        let ciphertext = wrapper.wrap(SPLIT).await.expect("wrap after two faults");
        assert_eq!(
            double.stats().wrap_requests,
            3,
            "status {status}: 2 faults + 1 success"
        );
        assert_eq!(
            wrapper
                .unwrap(&ciphertext)
                .await
                .expect("unwrap")
                .as_slice(),
            SPLIT
        );
    }
}

#[tokio::test]
async fn retries_stop_at_max_attempts_with_unavailable() {
    let (double, wrapper, _) = static_setup().await;
    double.fail_next(10, 503);
    match wrapper.wrap(SPLIT).await {
        Err(WrapError::Unavailable(msg)) => assert!(msg.contains("503"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(double.stats().wrap_requests, 3, "max_attempts is 3");
}

#[tokio::test]
async fn a_permanent_403_is_permission_denied_after_one_attempt() {
    let (double, wrapper, _) = static_setup().await;
    double.fail_always(Some(403));
    assert!(matches!(
        wrapper.wrap(SPLIT).await,
        Err(WrapError::PermissionDenied(_))
    ));
    assert_eq!(double.stats().wrap_requests, 1);
}

#[tokio::test]
async fn a_double_that_is_down_is_unavailable_quickly() {
    let (double, wrapper, _) = static_setup().await;
    wrapper.wrap(SPLIT).await.expect("warm up while up");
    double.stop();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    match wrapper.wrap(SPLIT).await {
        Err(WrapError::Unavailable(msg)) => assert!(msg.contains("cannot reach"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn connection_failures_are_retried_up_to_max_attempts() {
    // A listener that accepts and hangs up at once: each attempt is one
    // connection, so the count is the number of attempts.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let double = AzureDouble::start().await.expect("double (for its CA)");
    let uri = format!("azure-kv://{addr}/keys/splits/0123abcd")
        .parse()
        .expect("uri");
    let wrapper = AzureKeyVaultWrapper::new(uri, settings(&double, static_credentials("t")))
        .expect("wrapper");
    assert!(matches!(
        wrapper.wrap(SPLIT).await,
        Err(WrapError::Unavailable(_))
    ));
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
}

// ---- configuration --------------------------------------------------------------

#[tokio::test]
async fn settings_that_cannot_work_are_refused_at_construction() {
    let double = AzureDouble::start().await.expect("double");
    let good = || settings(&double, static_credentials("t"));
    let azure = uri(&double, "splits", None);
    let cases: Vec<(&str, cloud_adapters::KekUri, AzureSettings)> = vec![
        ("not azure", "local-kek://k".parse().expect("uri"), good()),
        (
            "zero attempts",
            azure.clone(),
            AzureSettings {
                max_attempts: 0,
                ..good()
            },
        ),
        (
            "empty token",
            azure.clone(),
            settings(&double, static_credentials("")),
        ),
        (
            "bad CA",
            azure.clone(),
            AzureSettings {
                ca_certificate_pem: Some(b"nope".to_vec()),
                ..good()
            },
        ),
        ("http authority", azure.clone(), {
            let issuer: Arc<dyn cloud_adapters::IdentityTokenSource> =
                Arc::new(TestIssuer::new(KID));
            let mut c = federated_credentials(&double, issuer);
            if let cloud_adapters::azure::AzureCredentials::Federated { authority_host, .. } =
                &mut c
            {
                *authority_host = "http://login.example".into();
            }
            settings(&double, c)
        }),
    ];
    for (what, uri, settings) in cases {
        assert!(
            matches!(
                AzureKeyVaultWrapper::new(uri, settings),
                Err(WrapError::InvalidUri(_) | WrapError::Misconfigured(_))
            ),
            "{what}"
        );
    }
}

#[tokio::test]
async fn debug_output_never_shows_the_static_token() {
    let (_double, wrapper, _) = static_setup().await;
    let token = "super-secret-static-token";
    let settings = AzureSettings::new(static_credentials(token));
    let printed = format!("{settings:?} {wrapper:?}");
    assert!(!printed.contains(token), "{printed}");
    assert!(printed.contains("redacted"));
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_and_a_fresh_one_is_reused() {
    let double = AzureDouble::start().await.expect("double");
    let version = double.create_key("splits");
    let issuer = Arc::new(TestIssuer::new(KID));
    double.trust_federation(trust(&issuer)).expect("trust");
    let wrapper = AzureKeyVaultWrapper::new(
        uri(&double, "splits", Some(&version)),
        settings(&double, federated_credentials(&double, issuer.clone())),
    )
    .expect("wrapper");

    // Two minutes left is inside the five-minute refresh margin: every call
    // trades a new assertion rather than sending a token about to expire.
    double.set_token_lifetime(120);
    wrapper.wrap(SPLIT).await.expect("wrap");
    wrapper.wrap(SPLIT).await.expect("wrap");
    assert_eq!(double.stats().token_requests, 2);

    // An hour left: the next token is kept and reused.
    double.set_token_lifetime(3600);
    for _ in 0..3 {
        wrapper.wrap(SPLIT).await.expect("wrap");
    }
    assert_eq!(double.stats().token_requests, 3);
    assert_eq!(issuer.minted.load(std::sync::atomic::Ordering::SeqCst), 3);
}
