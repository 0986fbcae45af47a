#![cfg(all(feature = "azure", feature = "test-double"))]
//! Nothing secret reaches the logs, even at TRACE (DESIGN §8: tests grep the
//! logs for the material they used). Its own test binary, because it
//! installs the process-wide subscriber.

mod azure_common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use azure_common::*;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cloud_adapters::azure::AzureKeyVaultWrapper;
use cloud_adapters::azure::test_double::AzureDouble;
use cloud_adapters::{KeyWrapper, WrapError};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_assertions_and_key_material_never_reach_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let double = AzureDouble::start().await.expect("double");
    let version = double.create_key("splits");
    let issuer = Arc::new(TestIssuer::new(KID));
    double.trust_federation(trust(&issuer)).expect("trust");
    let static_token = double.issue_static_token();
    let split = b"a split that must never be logged".to_vec();

    let mut ciphertexts = Vec::new();
    for credentials in [
        federated_credentials(&double, issuer.clone()),
        static_credentials(&static_token),
    ] {
        let wrapper =
            AzureKeyVaultWrapper::new(uri(&double, "splits", None), settings(&double, credentials))
                .expect("wrapper");
        let ct = wrapper.wrap(&split).await.expect("wrap");
        assert_eq!(wrapper.unwrap(&ct).await.expect("unwrap").as_slice(), split);
        let mut flipped = ct.clone();
        flipped[7] ^= 1;
        assert!(matches!(
            wrapper.unwrap(&flipped).await,
            Err(WrapError::InvalidCiphertext)
        ));
        ciphertexts.push(ct);
    }
    // A refused assertion goes through the error paths too.
    let forger = Arc::new(TestIssuer::new(KID));
    let refused = AzureKeyVaultWrapper::new(
        uri(&double, "splits", Some(&version)),
        settings(&double, federated_credentials(&double, forger.clone())),
    )
    .expect("wrapper");
    let err = refused.wrap(&split).await.expect_err("forged assertion");

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        logs.contains("wrapkey"),
        "the test captured the client's logs"
    );

    let mut secrets = vec![
        static_token.clone(),
        String::from_utf8(split.clone()).expect("utf-8"),
    ];
    secrets.push(URL_SAFE_NO_PAD.encode(&split));
    secrets.push(STANDARD.encode(&split));
    secrets.extend(double.issued_tokens());
    secrets.extend(issuer.tokens.lock().expect("lock").iter().cloned());
    secrets.extend(forger.tokens.lock().expect("lock").iter().cloned());
    for ct in &ciphertexts {
        secrets.push(URL_SAFE_NO_PAD.encode(ct));
    }
    assert!(secrets.len() >= 8, "tokens were issued and minted");
    let err_text = format!("{err} {err:?}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
        assert!(
            !err_text.contains(secret.as_str()),
            "a secret reached an error"
        );
    }
}
