#![cfg(feature = "aws")]
//! The AWS KMS wrapper against moto (KMS and STS emulator, DESIGN §9).
//! Skipped with a printed reason when moto is not installed, unless CI=true.

mod aws_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_common::{CountingTokenSource, MOTO_ACCOUNT, Moto, MotoAws as _, REGION, TEST_TOKEN};
use cloud_adapters::aws::AwsKmsWrapper;
use cloud_adapters::{KekUri, KeyWrapper, WrapError};

const SPLIT: &[u8] = b"\x01\x02 a 32-byte key split, say \xfe\xff";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn arn(uri: &KekUri) -> &str {
    match uri {
        KekUri::AwsKms { arn, .. } => arn,
        other => panic!("not an AWS URI: {other}"),
    }
}

/// Encrypts or decrypts `data` with boto3 against moto.
fn boto3(moto: &Moto, uri: &KekUri, mode: &str, data: &[u8]) -> Vec<u8> {
    unhex(&moto.boto3(REGION, &[arn(uri), mode, &hex(data)]))
}

#[tokio::test]
async fn static_credentials_wrap_and_unwrap_a_split() {
    let Some(moto) = Moto::start() else { return };
    let uri = moto.create_key().await;
    let kek = AwsKmsWrapper::new(&uri, moto.static_settings()).expect("wrapper");

    let ciphertext = kek.wrap(SPLIT).await.expect("wrap");
    assert!(
        !ciphertext
            .windows(8)
            .any(|w| SPLIT.windows(8).any(|s| s == w)),
        "ciphertext holds plaintext"
    );
    let plaintext = kek.unwrap(&ciphertext).await.expect("unwrap");

    assert_eq!(plaintext.as_slice(), SPLIT);
    assert_eq!(kek.kek_uri(), &uri);
    assert_eq!(kek.sts_exchanges(), 0);
    kek.probe().await.expect("probe");
}

#[tokio::test]
async fn web_identity_credentials_come_from_sts_and_are_the_ones_kms_sees() {
    let Some(moto) = Moto::start() else { return };
    // moto files resources under the account of the credentials used, so
    // a key in another account is reachable only with that account's
    // assumed-role credentials: proof that the STS answer was used.
    let other_account = "210987654321";
    let role = format!("arn:aws:iam::{other_account}:role/keyferry-kek");
    let setup_creds = assume_role(&moto, &role).await;
    let uri = moto.create_key_with(setup_creds).await;
    assert!(arn(&uri).contains(other_account));

    let tokens = Arc::new(CountingTokenSource::default());
    let kek = AwsKmsWrapper::new(&uri, moto.web_identity_settings(&role, tokens.clone()))
        .expect("wrapper");
    let ciphertext = kek.wrap(SPLIT).await.expect("wrap");
    let plaintext = kek.unwrap(&ciphertext).await.expect("unwrap");
    assert_eq!(plaintext.as_slice(), SPLIT);
    assert_eq!(tokens.minted(), 1, "one token for both calls");
    assert_eq!(kek.sts_exchanges(), 1);

    // The same key with moto's default-account dummy credentials: not found.
    let static_kek = AwsKmsWrapper::new(&uri, moto.static_settings()).expect("wrapper");
    match static_kek.wrap(SPLIT).await {
        Err(WrapError::KeyNotFound(_)) => {}
        other => panic!("default account must not see the key: {other:?}"),
    }
}

/// Set-up only: role credentials from moto's STS, the way a second account
/// would get them.
async fn assume_role(moto: &Moto, role: &str) -> aws_credential_types::Credentials {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(REGION))
        .endpoint_url(&moto.endpoint)
        .build();
    let out = aws_sdk_sts::Client::from_conf(conf)
        .assume_role_with_web_identity()
        .role_arn(role)
        .role_session_name("setup")
        .web_identity_token(TEST_TOKEN)
        .send()
        .await
        .expect("moto AssumeRoleWithWebIdentity");
    let c = out.credentials().expect("credentials");
    aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "setup",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_wraps_share_one_sts_exchange() {
    let Some(moto) = Moto::start() else { return };
    let uri = moto.create_key().await;
    let role = format!("arn:aws:iam::{MOTO_ACCOUNT}:role/keyferry-kek");
    let tokens = Arc::new(CountingTokenSource::default());
    let kek = Arc::new(
        AwsKmsWrapper::new(&uri, moto.web_identity_settings(&role, tokens.clone()))
            .expect("wrapper"),
    );

    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20u8 {
        let (kek, barrier) = (kek.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            let ct = kek.wrap(&[i; 32]).await.expect("wrap");
            (i, ct)
        });
    }
    let mut wrapped = Vec::new();
    while let Some(done) = tasks.join_next().await {
        wrapped.push(done.expect("task"));
    }

    assert_eq!(wrapped.len(), 20);
    assert_eq!(tokens.minted(), 1, "tokens minted");
    assert_eq!(kek.sts_exchanges(), 1, "STS exchanges");
    for (i, ct) in wrapped {
        assert_eq!(kek.unwrap(&ct).await.expect("unwrap").as_slice(), &[i; 32]);
    }
    assert_eq!(kek.sts_exchanges(), 1, "cached credentials reused");
}

#[tokio::test]
async fn boto3_decrypts_our_ciphertext_and_we_decrypt_boto3s() {
    let Some(moto) = Moto::start() else { return };
    let uri = moto.create_key().await;
    let kek = AwsKmsWrapper::new(&uri, moto.static_settings()).expect("wrapper");

    let ours = kek.wrap(SPLIT).await.expect("wrap");
    assert_eq!(boto3(&moto, &uri, "decrypt", &ours), SPLIT);

    let theirs = boto3(&moto, &uri, "encrypt", b"split made by boto3");
    let plaintext = kek.unwrap(&theirs).await.expect("unwrap boto3 ciphertext");
    assert_eq!(plaintext.as_slice(), b"split made by boto3");
}

#[tokio::test]
async fn a_flipped_bit_makes_the_ciphertext_invalid() {
    let Some(moto) = Moto::start() else { return };
    let uri = moto.create_key().await;
    let kek = AwsKmsWrapper::new(&uri, moto.static_settings()).expect("wrapper");
    let mut ciphertext = kek.wrap(SPLIT).await.expect("wrap");

    // The last byte is inside the sealed body (moto's blob starts with the
    // key id, which it would answer with AccessDenied instead).
    *ciphertext.last_mut().expect("non-empty") ^= 0x01;

    match kek.unwrap(&ciphertext).await {
        Err(WrapError::InvalidCiphertext) => {}
        other => panic!("expected InvalidCiphertext, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_key_arn_is_key_not_found() {
    let Some(moto) = Moto::start() else { return };
    let uri: KekUri = format!(
        "aws-kms://arn:aws:kms:{REGION}:{MOTO_ACCOUNT}:key/00000000-0000-4000-8000-000000000000"
    )
    .parse()
    .expect("uri");
    let kek = AwsKmsWrapper::new(&uri, moto.static_settings()).expect("wrapper");

    match kek.wrap(SPLIT).await {
        Err(WrapError::KeyNotFound(msg)) => {
            assert!(msg.contains("NotFoundException"), "{msg}")
        }
        other => panic!("expected KeyNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn moto_down_is_unavailable_after_bounded_retries() {
    let Some(moto) = Moto::start() else { return };
    let uri = moto.create_key().await;
    let mut settings = moto.static_settings();
    settings.initial_backoff = Duration::from_millis(50);
    let kek = AwsKmsWrapper::new(&uri, settings).expect("wrapper");
    kek.wrap(SPLIT).await.expect("wrap while moto is up");
    drop(moto);

    let start = Instant::now();
    let result = kek.wrap(SPLIT).await;
    let elapsed = start.elapsed();

    match result {
        Err(WrapError::Unavailable(msg)) => assert!(!msg.contains("testing"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // 4 attempts, backoff ≤ 50+100+200 ms: well under the 10 s timeout.
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}
