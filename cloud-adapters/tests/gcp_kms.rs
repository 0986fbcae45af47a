#![cfg(all(feature = "gcp", feature = "test-double"))]
//! The official Cloud KMS client, through `GcpKmsWrapper`, against the test
//! double: round trips, federation, error mapping and retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cloud_adapters::gcp::test_double::{Fault, FederationSetup, KmsDouble};
use cloud_adapters::gcp::{GcpCredentials, GcpKmsWrapper, GcpSettings};
use cloud_adapters::{IdentityTokenSource, KekUri, KeyWrapper, WrapError};
use zeroize::Zeroizing;

const KEY: &str = "projects/kf-test/locations/global/keyRings/splits/cryptoKeys/type1";
const TOKEN: &str = "ya29.static-dev-token";
const PRINCIPAL: &str = "user:dev@example.com";
const AUDIENCE: &str = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/keyferry/providers/coordinator-a";
const SERVICE_ACCOUNT: &str = "kms-wrap@kf-test.iam.gserviceaccount.com";
const BROKER_JWT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjb29yZGluYXRvcjphIn0.c2ln";

fn uri(name: &str) -> KekUri {
    format!("gcp-kms://{name}").parse().expect("valid URI")
}

/// A double with `KEY` usable by the static `TOKEN`.
async fn double_with_static_key() -> KmsDouble {
    let double = KmsDouble::start().await.expect("double starts");
    double.create_key(KEY);
    double.issue_token(TOKEN, PRINCIPAL);
    double.grant(KEY, PRINCIPAL);
    double
}

fn static_settings(double: &KmsDouble, token: &str) -> GcpSettings {
    GcpSettings {
        endpoint: Some(double.endpoint()),
        ..GcpSettings::new(GcpCredentials::Static {
            access_token: Zeroizing::new(token.to_owned()),
        })
    }
}

async fn static_wrapper(double: &KmsDouble) -> GcpKmsWrapper {
    GcpKmsWrapper::new(uri(KEY), static_settings(double, TOKEN))
        .await
        .expect("wrapper builds")
}

/// The broker's issuer, as the wrapper sees it: counts mints.
#[derive(Debug, Default)]
struct FixedIdentity {
    mints: AtomicU64,
}

#[async_trait]
impl IdentityTokenSource for FixedIdentity {
    async fn identity_token(&self, audience: &str) -> Result<Zeroizing<String>, WrapError> {
        assert_eq!(
            audience, AUDIENCE,
            "the JWT must be minted for the pool provider"
        );
        self.mints.fetch_add(1, Ordering::SeqCst);
        Ok(Zeroizing::new(BROKER_JWT.to_owned()))
    }
}

/// A double with federation set up and `KEY` granted to `SERVICE_ACCOUNT`.
async fn double_with_federation(token_lifetime: Duration) -> KmsDouble {
    let double = KmsDouble::start().await.expect("double starts");
    double.create_key(KEY);
    double.grant(KEY, &format!("serviceAccount:{SERVICE_ACCOUNT}"));
    double.trust_federation(FederationSetup {
        token_lifetime,
        ..FederationSetup::new(AUDIENCE, BROKER_JWT, SERVICE_ACCOUNT)
    });
    double
}

fn federated_settings(double: &KmsDouble, identity: Arc<FixedIdentity>) -> GcpSettings {
    GcpSettings {
        endpoint: Some(double.endpoint()),
        ..GcpSettings::new(GcpCredentials::Federated {
            identity,
            audience: AUDIENCE.to_owned(),
            sts_url: double.sts_url(),
            service_account: SERVICE_ACCOUNT.to_owned(),
            iam_credentials_url: double.iam_credentials_url(),
        })
    }
}

/// Calls the double's REST API directly, as another Cloud KMS client would.
async fn raw_call(
    double: &KmsDouble,
    verb: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/{KEY}:{verb}", double.endpoint()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("double reachable");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

#[tokio::test]
async fn static_token_round_trips_through_the_official_client_over_http() {
    let double = double_with_static_key().await;
    let wrapper = static_wrapper(&double).await;
    let secret = b"split A of an HPKE keyset";

    let ciphertext = wrapper.wrap(secret).await.expect("wrap");
    assert!(
        !ciphertext.windows(secret.len()).any(|w| w == secret),
        "ciphertext must not contain the plaintext"
    );
    let plaintext = wrapper.unwrap(&ciphertext).await.expect("unwrap");
    assert_eq!(plaintext.as_slice(), secret);
    wrapper.probe().await.expect("probe");
    assert_eq!(wrapper.kek_uri(), &uri(KEY));
}

#[tokio::test]
async fn wrap_uses_empty_aad_so_tink_style_clients_can_decrypt() {
    let double = double_with_static_key().await;
    let ciphertext = static_wrapper(&double)
        .await
        .wrap(b"split")
        .await
        .expect("wrap");
    let encoded = STANDARD.encode(&ciphertext);

    // A plain Decrypt without AAD (what Tink's GcpKmsAead sends) opens it.
    let (status, body) = raw_call(
        &double,
        "decrypt",
        serde_json::json!({"ciphertext": encoded}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plaintext"], STANDARD.encode(b"split"));

    // Any other AAD is refused, as Cloud KMS does.
    let (status, body) = raw_call(
        &double,
        "decrypt",
        serde_json::json!({"ciphertext": encoded, "additionalAuthenticatedData": STANDARD.encode(b"ctx")}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn double_binds_aad_when_a_client_sends_one() {
    let double = double_with_static_key().await;
    let aad = STANDARD.encode(b"context");
    let (status, body) = raw_call(
        &double,
        "encrypt",
        serde_json::json!({"plaintext": STANDARD.encode(b"x"), "additionalAuthenticatedData": aad}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["name"].as_str().is_some_and(|n| n.starts_with(KEY)));
    let ciphertext = body["ciphertext"].clone();
    let (status, _) = raw_call(
        &double,
        "decrypt",
        serde_json::json!({"ciphertext": ciphertext, "additionalAuthenticatedData": aad}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = raw_call(
        &double,
        "decrypt",
        serde_json::json!({"ciphertext": ciphertext}),
    )
    .await;
    assert_eq!(status, 400, "missing AAD must fail");
}

#[tokio::test]
async fn federated_credentials_round_trip_via_sts_and_impersonation() {
    let double = double_with_federation(Duration::from_secs(3600)).await;
    let identity = Arc::new(FixedIdentity::default());
    let wrapper = GcpKmsWrapper::new(uri(KEY), federated_settings(&double, identity.clone()))
        .await
        .expect("wrapper builds");

    let ciphertext = wrapper.wrap(b"split B").await.expect("wrap");
    let plaintext = wrapper.unwrap(&ciphertext).await.expect("unwrap");
    assert_eq!(plaintext.as_slice(), b"split B");
    // One exchange serves both calls: the token is cached.
    assert_eq!((double.sts_calls(), double.iam_calls()), (1, 1));
    assert_eq!(identity.mints.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn twenty_concurrent_wraps_share_one_sts_and_one_iam_call() {
    let double = double_with_federation(Duration::from_secs(3600)).await;
    let identity = Arc::new(FixedIdentity::default());
    let wrapper: Arc<dyn KeyWrapper> = Arc::new(
        GcpKmsWrapper::new(uri(KEY), federated_settings(&double, identity.clone()))
            .await
            .expect("wrapper builds"),
    );

    let tasks: Vec<_> = (0..20u8)
        .map(|i| {
            let wrapper = wrapper.clone();
            tokio::spawn(async move { wrapper.wrap(&[i; 32]).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("wrap");
    }
    assert_eq!(double.sts_calls(), 1, "STS exchanges");
    assert_eq!(double.iam_calls(), 1, "generateAccessToken calls");
    assert_eq!(double.kms_requests(), 20);
}

#[tokio::test]
async fn a_token_within_five_minutes_of_expiry_is_refreshed() {
    // The double hands out 4-minute tokens: already inside the refresh margin.
    let double = double_with_federation(Duration::from_secs(240)).await;
    let wrapper = GcpKmsWrapper::new(uri(KEY), federated_settings(&double, Arc::default()))
        .await
        .expect("wrapper builds");
    wrapper.wrap(b"one").await.expect("first wrap");
    wrapper.wrap(b"two").await.expect("second wrap");
    assert_eq!((double.sts_calls(), double.iam_calls()), (2, 2));
}

#[tokio::test]
async fn a_briefly_unavailable_sts_is_retried_before_kms_is_called() {
    let double = double_with_federation(Duration::from_secs(3600)).await;
    double.fail_next_sts(2, Fault::Unavailable);
    let wrapper = GcpKmsWrapper::new(uri(KEY), federated_settings(&double, Arc::default()))
        .await
        .expect("wrapper builds");
    wrapper.wrap(b"x").await.expect("third exchange succeeds");
    assert_eq!(double.sts_calls(), 3);
    assert_eq!((double.iam_calls(), double.kms_requests()), (1, 1));
}

#[tokio::test]
async fn sts_refusing_the_audience_is_permission_denied_without_impersonation() {
    let double = double_with_federation(Duration::from_secs(3600)).await;
    double.trust_federation(FederationSetup::new(
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/other/providers/p",
        BROKER_JWT,
        SERVICE_ACCOUNT,
    ));
    let wrapper = GcpKmsWrapper::new(uri(KEY), federated_settings(&double, Arc::default()))
        .await
        .expect("wrapper builds");
    let err = wrapper.wrap(b"x").await.expect_err("STS refuses");
    assert!(
        matches!(&err, WrapError::PermissionDenied(m) if m.contains("invalid_target")),
        "{err:?}"
    );
    assert_eq!(double.sts_calls(), 1, "a refusal is not retried");
    assert_eq!((double.iam_calls(), double.kms_requests()), (0, 0));
    assert!(!err.to_string().contains(BROKER_JWT));
}

#[tokio::test]
async fn an_unknown_bearer_token_is_permission_denied() {
    let double = double_with_static_key().await;
    let wrapper = GcpKmsWrapper::new(uri(KEY), static_settings(&double, "ya29.not-issued"))
        .await
        .expect("wrapper builds");
    let err = wrapper.wrap(b"x").await.expect_err("401");
    assert!(
        matches!(&err, WrapError::PermissionDenied(m) if m.contains("UNAUTHENTICATED")),
        "{err:?}"
    );
    assert_eq!(double.kms_requests(), 1, "401 is not retried");
}

#[tokio::test]
async fn anonymous_credentials_send_no_token_and_are_refused() {
    let double = double_with_static_key().await;
    let settings = GcpSettings {
        endpoint: Some(double.endpoint()),
        ..GcpSettings::new(GcpCredentials::Anonymous)
    };
    let wrapper = GcpKmsWrapper::new(uri(KEY), settings)
        .await
        .expect("builds");
    let err = wrapper.wrap(b"x").await.expect_err("401");
    assert!(matches!(err, WrapError::PermissionDenied(_)), "{err:?}");
}

#[tokio::test]
async fn a_key_the_token_may_not_use_is_permission_denied() {
    let double = double_with_static_key().await;
    let other = "projects/kf-test/locations/global/keyRings/splits/cryptoKeys/not-granted";
    double.create_key(other);
    let wrapper = GcpKmsWrapper::new(uri(other), static_settings(&double, TOKEN))
        .await
        .expect("wrapper builds");
    let err = wrapper.wrap(b"x").await.expect_err("403");
    assert!(
        matches!(&err, WrapError::PermissionDenied(m) if m.contains("PERMISSION_DENIED")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_flipped_bit_in_the_ciphertext_is_invalid_ciphertext() {
    let double = double_with_static_key().await;
    let wrapper = static_wrapper(&double).await;
    let mut ciphertext = wrapper.wrap(b"split").await.expect("wrap");
    let last = ciphertext.len() - 1;
    ciphertext[last] ^= 0x01;
    let err = wrapper.unwrap(&ciphertext).await.expect_err("tampered");
    assert!(matches!(err, WrapError::InvalidCiphertext), "{err:?}");
    assert_eq!(double.kms_requests(), 2, "INVALID_ARGUMENT is not retried");
}

#[tokio::test]
async fn a_ciphertext_of_another_key_is_invalid_ciphertext() {
    let double = double_with_static_key().await;
    let other = "projects/kf-test/locations/global/keyRings/splits/cryptoKeys/type2";
    double.create_key(other);
    double.grant(other, PRINCIPAL);
    let ciphertext = static_wrapper(&double)
        .await
        .wrap(b"split")
        .await
        .expect("wrap");
    let wrapper = GcpKmsWrapper::new(uri(other), static_settings(&double, TOKEN))
        .await
        .expect("wrapper builds");
    let err = wrapper.unwrap(&ciphertext).await.expect_err("other key");
    assert!(matches!(err, WrapError::InvalidCiphertext), "{err:?}");
}

#[tokio::test]
async fn an_unknown_key_is_key_not_found() {
    let double = double_with_static_key().await;
    let missing = "projects/kf-test/locations/global/keyRings/splits/cryptoKeys/missing";
    let wrapper = GcpKmsWrapper::new(uri(missing), static_settings(&double, TOKEN))
        .await
        .expect("wrapper builds");
    let err = wrapper.wrap(b"x").await.expect_err("404");
    assert!(
        matches!(&err, WrapError::KeyNotFound(m) if m.contains("missing")),
        "{err:?}"
    );
    assert_eq!(double.kms_requests(), 1, "404 is not retried");
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_success() {
    for fault in [Fault::TooManyRequests, Fault::Unavailable, Fault::Internal] {
        let double = double_with_static_key().await;
        let wrapper = static_wrapper(&double).await;
        double.fail_next(2, fault);
        let ciphertext = wrapper
            .wrap(b"split")
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(
            double.kms_requests(),
            3,
            "{fault:?}: two failures, then success"
        );

        double.fail_next(2, fault);
        wrapper
            .unwrap(&ciphertext)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(
            double.kms_requests(),
            6,
            "{fault:?}: decrypt is retried too"
        );
    }
}

#[tokio::test]
async fn throttling_beyond_max_attempts_is_unavailable_after_exactly_max_attempts() {
    let double = double_with_static_key().await;
    let wrapper = static_wrapper(&double).await;
    double.fail_next(100, Fault::TooManyRequests);
    let err = wrapper.wrap(b"x").await.expect_err("throttled");
    assert!(
        matches!(&err, WrapError::Unavailable(m) if m.contains("RESOURCE_EXHAUSTED")),
        "{err:?}"
    );
    assert_eq!(double.kms_requests(), 4, "max_attempts defaults to 4");
}

#[tokio::test]
async fn a_permanent_403_fails_after_exactly_one_attempt() {
    let double = double_with_static_key().await;
    let wrapper = static_wrapper(&double).await;
    double.set_always_forbidden(true);
    let err = wrapper.wrap(b"x").await.expect_err("403");
    assert!(matches!(err, WrapError::PermissionDenied(_)), "{err:?}");
    assert_eq!(double.kms_requests(), 1);
}

#[tokio::test]
async fn a_stopped_double_is_unavailable_within_a_second_or_two() {
    let double = double_with_static_key().await;
    let settings = static_settings(&double, TOKEN);
    double.shutdown().await;
    let wrapper = GcpKmsWrapper::new(uri(KEY), settings)
        .await
        .expect("builds");

    let started = Instant::now();
    let err = wrapper.wrap(b"x").await.expect_err("nobody listens");
    let elapsed = started.elapsed();
    assert!(matches!(err, WrapError::Unavailable(_)), "{err:?}");
    // 4 attempts with jittered 100/200/400 ms backoff: under 1 s, far from the 10 s timeout.
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[tokio::test]
async fn a_hanging_kms_is_cut_off_by_the_timeout() {
    // A listener that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let settings = GcpSettings {
        endpoint: Some(endpoint),
        timeout: Duration::from_millis(500),
        ..GcpSettings::new(GcpCredentials::Anonymous)
    };
    let wrapper = GcpKmsWrapper::new(uri(KEY), settings)
        .await
        .expect("builds");
    let started = Instant::now();
    let err = wrapper.wrap(b"x").await.expect_err("hangs");
    assert!(matches!(err, WrapError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn no_token_appears_in_debug_or_errors() {
    let double = double_with_static_key().await;
    let wrapper = static_wrapper(&double).await;
    double.set_always_forbidden(true);
    let err = wrapper.wrap(b"plaintext-canary").await.expect_err("403");
    for printed in [format!("{wrapper:?}"), format!("{err:?}"), err.to_string()] {
        assert!(!printed.contains(TOKEN), "{printed}");
        assert!(!printed.contains("plaintext-canary"), "{printed}");
    }

    let federated = double_with_federation(Duration::from_secs(3600)).await;
    let settings = federated_settings(&federated, Arc::default());
    let printed = format!("{settings:?}");
    assert!(!printed.contains(BROKER_JWT), "{printed}");
}

#[tokio::test]
async fn configuration_mistakes_are_refused_at_construction() {
    let static_creds = || GcpCredentials::Static {
        access_token: Zeroizing::new(TOKEN.to_owned()),
    };
    let cases: Vec<(KekUri, GcpSettings)> = vec![
        (
            "local-kek://storage".parse().expect("uri"),
            GcpSettings::new(static_creds()),
        ),
        (
            uri(KEY),
            GcpSettings {
                endpoint: Some("http://kms.example.com".into()),
                ..GcpSettings::new(static_creds())
            },
        ),
        (
            uri(KEY),
            GcpSettings {
                max_attempts: 0,
                ..GcpSettings::new(static_creds())
            },
        ),
        (
            uri(KEY),
            GcpSettings::new(GcpCredentials::federated(
                Arc::new(FixedIdentity::default()),
                "projects/123/pools/x",
                SERVICE_ACCOUNT,
            )),
        ),
        (
            uri(KEY),
            GcpSettings::new(GcpCredentials::federated(
                Arc::new(FixedIdentity::default()),
                AUDIENCE,
                "kms@x.iam/../../evil",
            )),
        ),
    ];
    for (uri, settings) in cases {
        let described = format!("{uri} {settings:?}");
        match GcpKmsWrapper::new(uri, settings).await {
            Err(WrapError::Misconfigured(_)) => {}
            other => panic!("{described}: expected Misconfigured, got {other:?}"),
        }
    }
}
