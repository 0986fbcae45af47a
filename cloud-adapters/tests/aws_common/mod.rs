//! Shared test fixtures: settings and clients for a moto server
//! (`test_support::Moto`), a counting identity token source, and helpers
//! that build wrappers against them.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cloud_adapters::aws::{AwsCredentials, AwsSettings};
use cloud_adapters::{IdentityTokenSource, KekUri, WrapError};
use zeroize::Zeroizing;

pub const REGION: &str = "eu-west-3";
/// The account moto puts resources in for unknown (dummy) access keys.
pub const MOTO_ACCOUNT: &str = "123456789012";

pub use test_support::Moto;

/// What the AWS SDK needs to reach a [`Moto`]: `test_support` has no SDK.
pub trait MotoAws {
    /// Static dummy credentials, which moto maps to [`MOTO_ACCOUNT`].
    fn static_settings(&self) -> AwsSettings;

    /// Federated credentials for `role_arn`, with STS and KMS both at moto.
    fn web_identity_settings(
        &self,
        role_arn: &str,
        identity: Arc<CountingTokenSource>,
    ) -> AwsSettings;

    /// A KMS client with the given credentials, for set-up only.
    fn kms_client(&self, creds: aws_credential_types::Credentials) -> aws_sdk_kms::Client;

    /// Creates a symmetric key in moto's default account; returns its URI.
    async fn create_key(&self) -> KekUri;

    /// Creates a symmetric key in the account `creds` belong to.
    async fn create_key_with(&self, creds: aws_credential_types::Credentials) -> KekUri;
}

impl MotoAws for Moto {
    fn static_settings(&self) -> AwsSettings {
        let mut s = AwsSettings::new(dummy_credentials());
        s.endpoint = Some(self.endpoint.clone());
        s
    }

    fn web_identity_settings(
        &self,
        role_arn: &str,
        identity: Arc<CountingTokenSource>,
    ) -> AwsSettings {
        let mut s = AwsSettings::new(AwsCredentials::WebIdentity {
            role_arn: role_arn.into(),
            session_name: "keyferry-test".into(),
            sts_endpoint: Some(self.endpoint.clone()),
            identity,
            audience: "sts.amazonaws.com".into(),
        });
        s.endpoint = Some(self.endpoint.clone());
        s
    }

    fn kms_client(&self, creds: aws_credential_types::Credentials) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    async fn create_key(&self) -> KekUri {
        self.create_key_with(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .await
    }

    async fn create_key_with(&self, creds: aws_credential_types::Credentials) -> KekUri {
        let out = self
            .kms_client(creds)
            .create_key()
            .description("keyferry test KEK")
            .send()
            .await
            .expect("moto CreateKey");
        let arn = out.key_metadata().expect("metadata").arn().expect("arn");
        format!("aws-kms://{arn}").parse().expect("moto ARN parses")
    }
}

pub fn dummy_credentials() -> AwsCredentials {
    AwsCredentials::Static {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
    }
}

/// Settings that fail fast, for fault tests: short backoff and timeout.
pub fn fast_settings(endpoint: &str) -> AwsSettings {
    let mut s = AwsSettings::new(dummy_credentials());
    s.endpoint = Some(endpoint.to_owned());
    s.initial_backoff = Duration::from_millis(20);
    s.timeout = Duration::from_secs(2);
    s
}

/// A stand-in for the broker's issuer: a fixed JWT-shaped token (moto does
/// not verify it), counting how many were minted.
#[derive(Debug, Default)]
pub struct CountingTokenSource {
    minted: AtomicU64,
}

/// What [`CountingTokenSource`] mints; tests check it never leaks.
pub const TEST_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.\
eyJpc3MiOiJodHRwczovL2Jyb2tlci5leGFtcGxlIiwic3ViIjoiY29vcmRpbmF0b3I6YSJ9.c2lnbmF0dXJl";

impl CountingTokenSource {
    pub fn minted(&self) -> u64 {
        self.minted.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl IdentityTokenSource for CountingTokenSource {
    async fn identity_token(&self, audience: &str) -> Result<Zeroizing<String>, WrapError> {
        assert_eq!(audience, "sts.amazonaws.com");
        self.minted.fetch_add(1, Ordering::SeqCst);
        Ok(Zeroizing::new(TEST_TOKEN.to_owned()))
    }
}
