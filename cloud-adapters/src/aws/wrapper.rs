use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{KekUri, KeyWrapper, WrapError};
use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_kms::config::{BehaviorVersion, IdentityCache, Region};
use aws_sdk_kms::primitives::Blob;
use zeroize::Zeroizing;

use crate::aws::errors::kms_error;
use crate::aws::federation::WebIdentityProvider;
use crate::aws::retry::{TooManyRequests, retry_config, timeout_config};
use crate::aws::{AwsCredentials, AwsSettings};

/// Pinned rather than `latest()` so that an SDK upgrade cannot silently
/// change retry, timeout or endpoint defaults under us.
fn behavior_version() -> BehaviorVersion {
    BehaviorVersion::v2026_01_12()
}

/// The KMS client every constructor ends with; only the credentials and
/// their cache differ.
fn kms_client(
    region: Region,
    endpoint: Option<String>,
    retry: aws_sdk_kms::config::retry::RetryConfig,
    timeout: aws_sdk_kms::config::timeout::TimeoutConfig,
    credentials: SharedCredentialsProvider,
    cache: aws_sdk_kms::config::SharedIdentityCache,
) -> aws_sdk_kms::Client {
    let mut kms = aws_sdk_kms::Config::builder()
        .behavior_version(behavior_version())
        .region(region)
        .credentials_provider(credentials)
        .identity_cache(cache)
        .retry_config(retry)
        .timeout_config(timeout)
        .retry_classifier(TooManyRequests);
    if let Some(endpoint) = endpoint {
        kms = kms.endpoint_url(endpoint);
    }
    aws_sdk_kms::Client::from_conf(kms.build())
}

/// A [`KeyWrapper`] over one AWS KMS symmetric key.
///
/// Holds one KMS client (a connection pool; cloning is cheap) and, with
/// [`AwsCredentials::WebIdentity`], the STS credentials cache. Build one per
/// KEK URI at start and share it as `Arc<dyn KeyWrapper>`.
pub struct AwsKmsWrapper {
    uri: KekUri,
    /// The key ARN, passed as `KeyId` to both Encrypt and Decrypt so that
    /// KMS refuses a ciphertext made under another key instead of quietly
    /// decrypting it.
    key_arn: String,
    kms: aws_sdk_kms::Client,
    /// STS exchanges so far; `None` with static credentials.
    sts_exchanges: Option<Arc<AtomicU64>>,
}

impl AwsKmsWrapper {
    /// A wrapper for `uri`, which must be an `aws-kms://` URI.
    ///
    /// Makes no network call: a wrong key or missing permission shows at the
    /// first wrap, or at [`KeyWrapper::probe`], which `/readyz` calls.
    ///
    /// [`AwsCredentials::Ambient`] needs [`AwsKmsWrapper::open`], since the
    /// SDK's default credentials chain is built asynchronously.
    pub fn new(uri: &KekUri, settings: AwsSettings) -> Result<Self, WrapError> {
        let KekUri::AwsKms { arn, region, .. } = uri else {
            return Err(WrapError::Misconfigured(format!(
                "the AWS KMS backend cannot use a {} KEK",
                uri.scheme().as_str()
            )));
        };
        let retry = retry_config(&settings)?;
        let timeout = timeout_config(&settings)?;
        let region = Region::new(region.clone());

        let (credentials, sts_exchanges) = match settings.credentials {
            AwsCredentials::Static {
                access_key_id,
                secret_access_key,
            } => {
                let creds = Credentials::new(
                    access_key_id,
                    secret_access_key,
                    None,
                    None,
                    "keyferry-static",
                );
                (SharedCredentialsProvider::new(creds), None)
            }
            AwsCredentials::WebIdentity {
                role_arn,
                session_name,
                sts_endpoint,
                identity,
                audience,
            } => {
                let mut sts = aws_sdk_sts::Config::builder()
                    .behavior_version(behavior_version())
                    .region(region.clone())
                    .retry_config(retry.clone())
                    .timeout_config(timeout.clone())
                    .retry_classifier(TooManyRequests);
                if let Some(endpoint) = sts_endpoint {
                    sts = sts.endpoint_url(endpoint);
                }
                let provider = WebIdentityProvider::new(
                    aws_sdk_sts::Client::from_conf(sts.build()),
                    role_arn,
                    session_name,
                    identity,
                    audience,
                );
                let counter = provider.exchange_counter();
                (SharedCredentialsProvider::new(provider), Some(counter))
            }
            AwsCredentials::Ambient => {
                return Err(WrapError::Misconfigured(
                    "ambient AWS credentials need AwsKmsWrapper::open".into(),
                ));
            }
        };

        // Our providers cache (with a 5 min margin and a single flight); the
        // SDK's lazy cache in front of them would only add a second expiry
        // policy to reason about.
        let kms = kms_client(
            region,
            settings.endpoint,
            retry,
            timeout,
            credentials,
            IdentityCache::no_cache(),
        );
        Ok(Self {
            uri: uri.clone(),
            key_arn: arn.clone(),
            kms,
            sts_exchanges,
        })
    }

    /// Like [`AwsKmsWrapper::new`], and also accepts
    /// [`AwsCredentials::Ambient`]: the SDK's default credentials chain for
    /// the key's region, behind the SDK's own credentials cache.
    pub async fn open(uri: &KekUri, settings: AwsSettings) -> Result<Self, WrapError> {
        if !matches!(settings.credentials, AwsCredentials::Ambient) {
            return Self::new(uri, settings);
        }
        let KekUri::AwsKms { arn, region, .. } = uri else {
            return Err(WrapError::Misconfigured(format!(
                "the AWS KMS backend cannot use a {} KEK",
                uri.scheme().as_str()
            )));
        };
        let region = Region::new(region.clone());
        let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .region(region.clone())
            .build()
            .await;
        // The default chain does not cache itself: the SDK's lazy cache does.
        let kms = kms_client(
            region,
            settings.endpoint.clone(),
            retry_config(&settings)?,
            timeout_config(&settings)?,
            SharedCredentialsProvider::new(chain),
            IdentityCache::lazy().build(),
        );
        Ok(Self {
            uri: uri.clone(),
            key_arn: arn.clone(),
            kms,
            sts_exchanges: None,
        })
    }

    /// How many times this wrapper has traded its identity token at STS
    /// (0 with static credentials). Exported as a metric; a steady climb
    /// means credentials are not being cached.
    pub fn sts_exchanges(&self) -> u64 {
        self.sts_exchanges
            .as_ref()
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

// Hand-written: the SDK client's own Debug dumps its whole configuration;
// the KEK and the kind of credentials are what a log reader needs.
impl fmt::Debug for AwsKmsWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsWrapper")
            .field("kek", &self.uri.to_string())
            .field("federated", &self.sts_exchanges.is_some())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyWrapper for AwsKmsWrapper {
    fn kek_uri(&self) -> &KekUri {
        &self.uri
    }

    async fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError> {
        // No encryption context: Tink's KMS AEAD sends none, and a workload
        // unwrapping with Tink must be able to decrypt what we wrote.
        let out = self
            .kms
            .encrypt()
            .key_id(&self.key_arn)
            .plaintext(Blob::new(plaintext))
            .send()
            .await
            .map_err(|e| kms_error("Encrypt", e))?;
        out.ciphertext_blob.map(Blob::into_inner).ok_or_else(|| {
            WrapError::Unavailable("KMS Encrypt answered without a ciphertext".into())
        })
    }

    async fn unwrap(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        let out = self
            .kms
            .decrypt()
            .key_id(&self.key_arn)
            .ciphertext_blob(Blob::new(ciphertext))
            .send()
            .await
            .map_err(|e| kms_error("Decrypt", e))?;
        out.plaintext
            .map(|p| Zeroizing::new(p.into_inner()))
            .ok_or_else(|| {
                WrapError::Unavailable("KMS Decrypt answered without a plaintext".into())
            })
    }
}
