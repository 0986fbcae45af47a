#![cfg(feature = "aws")]
//! Retries, timeouts and error mapping against scripted local servers that
//! speak the KMS (JSON 1.1) and STS (query/XML) wire protocols. These are
//! doubles, not emulators: each answers what its test scripts, and counts
//! the attempts it sees.

mod aws_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use aws_common::{CountingTokenSource, TEST_TOKEN, fast_settings};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use cloud_adapters::aws::{AwsCredentials, AwsKmsWrapper, AwsSettings};
use cloud_adapters::{KekUri, KeyWrapper, WrapError};

const ARN: &str = "arn:aws:kms:eu-west-3:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn uri() -> KekUri {
    format!("aws-kms://{ARN}").parse().expect("uri")
}

/// Whether an error is the variant a case expects.
type Expect = fn(&WrapError) -> bool;

type Script = dyn Fn(usize, &HeaderMap, &Bytes) -> Response + Send + Sync;

/// A scripted HTTP server: `script(attempt, headers, body)`, attempts from 1.
struct Double {
    endpoint: String,
    attempts: Arc<AtomicUsize>,
}

impl Double {
    async fn start(
        script: impl Fn(usize, &HeaderMap, &Bytes) -> Response + Send + Sync + 'static,
    ) -> Self {
        let script: Arc<Script> = Arc::new(script);
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let (script, counter) = (script.clone(), counter.clone());
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                script(n, &headers, &body)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Double {
            endpoint: format!("http://{addr}"),
            attempts,
        }
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

fn kms_error(status: u16, code: &str) -> Response {
    let body = serde_json::json!({ "__type": code, "message": format!("scripted {code}") });
    (
        StatusCode::from_u16(status).expect("status"),
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

const FAKE_CIPHERTEXT: &[u8] = b"opaque kms ciphertext";

fn encrypt_ok() -> Response {
    let body = serde_json::json!({
        "CiphertextBlob": base64::engine::general_purpose::STANDARD.encode(FAKE_CIPHERTEXT),
        "KeyId": ARN,
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

async fn wrapper(settings: AwsSettings) -> AwsKmsWrapper {
    AwsKmsWrapper::new(&uri(), settings).expect("wrapper")
}

#[tokio::test]
async fn throttling_is_retried_until_kms_answers() {
    let kms = Double::start(|n, headers, body| {
        assert_eq!(headers["x-amz-target"], "TrentService.Encrypt");
        let req: serde_json::Value = serde_json::from_slice(body).expect("json");
        assert_eq!(req["KeyId"], ARN, "Encrypt names the key by ARN");
        assert!(
            req.get("EncryptionContext").is_none(),
            "no encryption context"
        );
        if n <= 2 {
            kms_error(400, "ThrottlingException")
        } else {
            encrypt_ok()
        }
    })
    .await;
    let kek = wrapper(fast_settings(&kms.endpoint)).await;

    let ciphertext = kek.wrap(b"split").await.expect("wrap after two throttles");

    assert_eq!(ciphertext, FAKE_CIPHERTEXT);
    assert_eq!(kms.attempts(), 3);
}

#[tokio::test]
async fn a_bare_429_is_throttling_too() {
    // No AWS error code in the body: only our classifier retries this.
    let kms = Double::start(|n, _, _| {
        if n <= 2 {
            (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response()
        } else {
            encrypt_ok()
        }
    })
    .await;
    let kek = wrapper(fast_settings(&kms.endpoint)).await;

    kek.wrap(b"split").await.expect("wrap after two 429s");
    assert_eq!(kms.attempts(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_max_attempts_times_then_unavailable() {
    for (status, code) in [
        (500, "KMSInternalException"),
        (503, "DependencyTimeoutException"),
        (502, ""),
    ] {
        let kms = Double::start(move |_, _, _| kms_error(status, code)).await;
        let kek = wrapper(fast_settings(&kms.endpoint)).await;

        match kek.wrap(b"split").await {
            Err(WrapError::Unavailable(_)) => {}
            other => panic!("{status} {code}: expected Unavailable, got {other:?}"),
        }
        assert_eq!(kms.attempts(), 4, "{status} {code}");
    }
}

#[tokio::test]
async fn client_errors_are_not_retried_and_map_to_their_variant() {
    use WrapError as W;
    let cases: [(u16, &str, Expect); 6] = [
        (403, "AccessDeniedException", |e| {
            matches!(e, W::PermissionDenied(_))
        }),
        (400, "AccessDeniedException", |e| {
            matches!(e, W::PermissionDenied(_))
        }),
        (403, "", |e| matches!(e, W::PermissionDenied(_))),
        (400, "NotFoundException", |e| matches!(e, W::KeyNotFound(_))),
        (400, "DisabledException", |e| matches!(e, W::KeyNotFound(_))),
        (400, "ValidationException", |e| {
            matches!(e, W::Misconfigured(_))
        }),
    ];
    for (status, code, expected) in cases {
        let kms = Double::start(move |_, _, _| kms_error(status, code)).await;
        let kek = wrapper(fast_settings(&kms.endpoint)).await;

        let result = kek.wrap(b"split").await;

        assert!(
            matches!(&result, Err(e) if expected(e)),
            "{status} {code}: {result:?}"
        );
        assert_eq!(kms.attempts(), 1, "{status} {code} must not be retried");
    }
}

#[tokio::test]
async fn decrypt_errors_for_a_bad_ciphertext_are_invalid_ciphertext() {
    for code in ["InvalidCiphertextException", "IncorrectKeyException"] {
        let kms = Double::start(move |_, headers, body| {
            assert_eq!(headers["x-amz-target"], "TrentService.Decrypt");
            let req: serde_json::Value = serde_json::from_slice(body).expect("json");
            assert_eq!(req["KeyId"], ARN, "Decrypt names the key");
            assert!(
                req.get("EncryptionContext").is_none(),
                "no encryption context"
            );
            kms_error(400, code)
        })
        .await;
        let kek = wrapper(fast_settings(&kms.endpoint)).await;

        let result = kek.unwrap(b"garbage").await;
        assert!(
            matches!(result, Err(WrapError::InvalidCiphertext)),
            "{code}: {result:?}"
        );
        assert_eq!(kms.attempts(), 1);
    }
}

#[tokio::test]
async fn dropped_connections_are_retried_then_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    let kek = wrapper(fast_settings(&format!("http://{addr}"))).await;

    let result = kek.wrap(b"split").await;

    assert!(
        matches!(result, Err(WrapError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_silent_server_costs_one_timeout_per_attempt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket); // never answers, never closes
        }
    });
    let mut settings = fast_settings(&format!("http://{addr}"));
    settings.timeout = Duration::from_millis(300);
    settings.max_attempts = 2;
    let kek = wrapper(settings).await;

    let start = Instant::now();
    let result = kek.wrap(b"split").await;
    let elapsed = start.elapsed();

    assert!(
        matches!(result, Err(WrapError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

// ---- STS ----

fn sts_ok(access_key: &str, expires_in: Duration) -> Response {
    let expiration = aws_sdk_kms::primitives::DateTime::from(SystemTime::now() + expires_in)
        .fmt(aws_sdk_kms::primitives::DateTimeFormat::DateTime)
        .expect("date");
    let body = format!(
        r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>{access_key}</AccessKeyId>
      <SecretAccessKey>scripted-secret</SecretAccessKey>
      <SessionToken>scripted-session-token</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <SubjectFromWebIdentityToken>coordinator:a</SubjectFromWebIdentityToken>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

fn sts_error(status: u16, code: &str, message: &str) -> Response {
    let body = format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>r</RequestId>
</ErrorResponse>"#
    );
    (
        StatusCode::from_u16(status).expect("status"),
        [(header::CONTENT_TYPE, "text/xml")],
        body,
    )
        .into_response()
}

fn federated(kms: &Double, sts: &Double, tokens: Arc<CountingTokenSource>) -> AwsSettings {
    let mut s = fast_settings(&kms.endpoint);
    s.credentials = AwsCredentials::WebIdentity {
        role_arn: "arn:aws:iam::111122223333:role/keyferry-kek".into(),
        session_name: "keyferry-test".into(),
        sts_endpoint: Some(sts.endpoint.clone()),
        identity: tokens,
        audience: "sts.amazonaws.com".into(),
    };
    s
}

#[tokio::test]
async fn kms_calls_are_signed_with_the_sts_credentials() {
    let sts = Double::start(|_, headers, body| {
        let form = String::from_utf8_lossy(body);
        assert!(form.contains("Action=AssumeRoleWithWebIdentity"), "{form}");
        assert!(form.contains("WebIdentityToken="), "{form}");
        assert!(
            !headers.contains_key(header::AUTHORIZATION),
            "STS call must be unsigned"
        );
        sts_ok("ASIASCRIPTEDKEY", Duration::from_secs(3600))
    })
    .await;
    let kms = Double::start(|_, headers, _| {
        let auth = headers[header::AUTHORIZATION].to_str().expect("ascii");
        assert!(auth.contains("Credential=ASIASCRIPTEDKEY/"), "{auth}");
        assert_eq!(headers["x-amz-security-token"], "scripted-session-token");
        encrypt_ok()
    })
    .await;
    let tokens = Arc::new(CountingTokenSource::default());
    let kek = wrapper(federated(&kms, &sts, tokens.clone())).await;

    for _ in 0..3 {
        kek.wrap(b"split").await.expect("wrap");
    }

    assert_eq!(kms.attempts(), 3);
    assert_eq!(
        sts.attempts(),
        1,
        "credentials valid for an hour are cached"
    );
    assert_eq!(tokens.minted(), 1);
}

#[tokio::test]
async fn credentials_within_five_minutes_of_expiry_are_refreshed() {
    let sts = Double::start(|_, _, _| sts_ok("ASIASHORTLIVED", Duration::from_secs(4 * 60))).await;
    let kms = Double::start(|_, _, _| encrypt_ok()).await;
    let tokens = Arc::new(CountingTokenSource::default());
    let kek = wrapper(federated(&kms, &sts, tokens.clone())).await;

    for _ in 0..3 {
        kek.wrap(b"split").await.expect("wrap");
    }

    assert_eq!(
        sts.attempts(),
        3,
        "each use found the credentials too close to expiry"
    );
    assert_eq!(kek.sts_exchanges(), 3);
    assert_eq!(tokens.minted(), 3);
}

#[tokio::test]
async fn sts_refusal_is_permission_denied_without_the_token_in_the_message() {
    for (status, code) in [(403, "AccessDenied"), (400, "InvalidIdentityToken")] {
        // A message that echoes the token, as a careless STS might.
        let sts = Double::start(move |_, _, _| {
            sts_error(status, code, &format!("cannot use token {TEST_TOKEN}"))
        })
        .await;
        let kms = Double::start(|_, _, _| encrypt_ok()).await;
        let kek = wrapper(federated(&kms, &sts, Arc::default())).await;

        let err = kek.wrap(b"split").await.expect_err("refused");

        assert!(
            matches!(err, WrapError::PermissionDenied(_)),
            "{code}: {err:?}"
        );
        let shown = format!("{err} {err:?}");
        assert!(shown.contains(code), "{shown}");
        assert!(!shown.contains(&TEST_TOKEN[..20]), "token leaked: {shown}");
        assert_eq!(sts.attempts(), 1, "{code} must not be retried");
        assert_eq!(kms.attempts(), 0, "no KMS call without credentials");
    }
}

#[tokio::test]
async fn sts_unreachable_is_unavailable_after_retries() {
    let sts = Double::start(|_, _, _| sts_error(503, "ServiceUnavailable", "try later")).await;
    let kms = Double::start(|_, _, _| encrypt_ok()).await;
    let kek = wrapper(federated(&kms, &sts, Arc::default())).await;

    let err = kek.wrap(b"split").await.expect_err("STS down");

    assert!(matches!(err, WrapError::Unavailable(_)), "{err:?}");
    assert_eq!(sts.attempts(), 4);
    assert_eq!(kms.attempts(), 0);
}

#[tokio::test]
async fn a_non_aws_uri_or_zero_attempts_is_misconfigured() {
    let local: KekUri = "local-kek://storage".parse().expect("uri");
    let settings = fast_settings("http://127.0.0.1:1");
    assert!(matches!(
        AwsKmsWrapper::new(&local, settings.clone()),
        Err(WrapError::Misconfigured(_))
    ));
    let mut zero = settings;
    zero.max_attempts = 0;
    assert!(matches!(
        AwsKmsWrapper::new(&uri(), zero),
        Err(WrapError::Misconfigured(_))
    ));
}

#[tokio::test]
async fn debug_output_holds_no_secret_key_token_or_session_credentials() {
    let sts = Double::start(|_, _, _| sts_ok("ASIASCRIPTEDKEY", Duration::from_secs(3600))).await;
    let kms = Double::start(|_, _, _| encrypt_ok()).await;
    let federated_kek = wrapper(federated(&kms, &sts, Arc::default())).await;
    federated_kek.wrap(b"split").await.expect("wrap"); // fills the cache

    let mut settings = fast_settings(&kms.endpoint);
    settings.credentials = AwsCredentials::Static {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "static-secret-key-value".into(),
    };
    let static_kek = wrapper(settings).await;

    let shown = format!("{federated_kek:?} {static_kek:?}");
    for secret in [
        "static-secret-key-value",
        "scripted-secret",
        "scripted-session-token",
        &TEST_TOKEN[..20],
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains(ARN), "Debug still names the key: {shown}");
}
