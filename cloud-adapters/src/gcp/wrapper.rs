use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::{KekUri, KeyWrapper, WrapError};
use async_trait::async_trait;
use bytes::Bytes;
use google_cloud_auth::credentials::{Credentials, anonymous};
use google_cloud_gax::options::RequestOptionsBuilder;
use google_cloud_kms_v1::client::KeyManagementService;
use zeroize::{Zeroize, Zeroizing};

use crate::gcp::errors::{Op, to_wrap_error};
use crate::gcp::federation::FederatedToken;
use crate::gcp::retry;
use crate::gcp::settings::{GcpCredentials, GcpSettings, checked_url, misconfigured};
use crate::gcp::static_token::StaticToken;

/// Cloud KMS's limit on `plaintext` for `Encrypt`; checked here so the
/// caller gets a clear error instead of an `INVALID_ARGUMENT`.
const MAX_PLAINTEXT: usize = 64 * 1024;

/// A [`KeyWrapper`] for one `gcp-kms://` KEK.
///
/// Wrap is Cloud KMS `Encrypt` on the crypto key (its primary version) and
/// unwrap is `Decrypt`, both with empty additional authenticated data, so the
/// ciphertext is exactly what Tink's `GcpKmsAead` makes and opens: a workload
/// can unwrap with stock Tink and its own service account.
///
/// Cloning is not offered; share it as `Arc<dyn KeyWrapper>`. The underlying
/// SDK client pools connections and the federated credentials cache their
/// token, so one wrapper per KEK for the process lifetime is the intended use.
pub struct GcpKmsWrapper {
    uri: KekUri,
    name: String,
    client: KeyManagementService,
    timeout: Duration,
    credentials_kind: &'static str,
}

impl GcpKmsWrapper {
    /// Builds the SDK client for `uri` with `settings`.
    ///
    /// Everything that can be checked without a network call is checked
    /// here (URI scheme, endpoint and STS/IAM URLs, audience and service
    /// account shape, limits), so a bad configuration stops the broker at
    /// start. Credentials are first used by the first wrap or [`probe`].
    ///
    /// [`probe`]: KeyWrapper::probe
    pub async fn new(uri: KekUri, settings: GcpSettings) -> Result<Self, WrapError> {
        let KekUri::GcpKms { name } = &uri else {
            return Err(misconfigured(format!(
                "GcpKmsWrapper needs a gcp-kms:// KEK, not {}://",
                uri.scheme().as_str()
            )));
        };
        let name = name.clone();
        if settings.timeout.is_zero() {
            return Err(misconfigured("GCP KMS timeout must be positive"));
        }
        if settings.max_attempts == 0 {
            return Err(misconfigured("GCP KMS max_attempts must be at least 1"));
        }
        let credentials_kind = settings.credentials.kind();
        let credentials: Credentials =
            match settings.credentials {
                GcpCredentials::Static { access_token } => StaticToken::new(&access_token)?.into(),
                GcpCredentials::Anonymous => anonymous::Builder::new().build(),
                GcpCredentials::Ambient => google_cloud_auth::credentials::Builder::default()
                    .build()
                    .map_err(|e| misconfigured(format!("application default credentials: {e}")))?,
                GcpCredentials::Federated {
                    identity,
                    audience,
                    sts_url,
                    service_account,
                    iam_credentials_url,
                } => FederatedToken::new(
                    identity,
                    &audience,
                    &sts_url,
                    &service_account,
                    &iam_credentials_url,
                    settings.timeout,
                )?
                .into(),
            };

        let mut builder = KeyManagementService::builder()
            .with_credentials(credentials)
            .with_retry_policy(retry::retry_policy(settings.max_attempts, settings.timeout))
            .with_backoff_policy(retry::backoff_policy())
            .with_retry_throttler(retry::no_throttling());
        if let Some(endpoint) = &settings.endpoint {
            let url = checked_url("GCP KMS endpoint", endpoint)?;
            builder = builder.with_endpoint(url.as_str().trim_end_matches('/'));
        }
        let client = builder
            .build()
            .await
            .map_err(|e| misconfigured(format!("Cloud KMS client: {e}")))?;
        Ok(Self {
            uri,
            name,
            client,
            timeout: settings.timeout,
            credentials_kind,
        })
    }

    /// Runs one SDK call under the overall timeout. The SDK's retry policy
    /// has the same time limit, but token minting happens inside an attempt
    /// and an identity source may hang; this bound covers everything.
    async fn bounded<T>(
        &self,
        op: Op,
        call: impl Future<Output = google_cloud_kms_v1::Result<T>>,
    ) -> Result<T, WrapError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let err = to_wrap_error(&e, op, &self.name);
                tracing::warn!(kek = %self.uri, error = %err, "Cloud KMS call failed");
                Err(err)
            }
            Err(_) => Err(WrapError::Unavailable(format!(
                "Cloud KMS call on {} did not finish within {:?}",
                self.name, self.timeout
            ))),
        }
    }
}

#[async_trait]
impl KeyWrapper for GcpKmsWrapper {
    fn kek_uri(&self) -> &KekUri {
        &self.uri
    }

    async fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(misconfigured(format!(
                "plaintext of {} bytes exceeds Cloud KMS's 64 KiB limit",
                plaintext.len()
            )));
        }
        let call = self
            .client
            .encrypt()
            .set_name(&self.name)
            .set_plaintext(Bytes::copy_from_slice(plaintext))
            // Encrypt has no side effect, so repeating it after a 503 is safe.
            .with_idempotency(true)
            .send();
        let response = self.bounded(Op::Encrypt, call).await?;
        // Cloud KMS names the key version it used. Anything else means the
        // endpoint is not the KMS we think it is.
        let version_of_our_key = response
            .name
            .strip_prefix(self.name.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("/cryptoKeyVersions/"));
        if !version_of_our_key {
            return Err(WrapError::Unavailable(format!(
                "Cloud KMS encrypt with {} answered for another key",
                self.name
            )));
        }
        if response.ciphertext.is_empty() {
            return Err(WrapError::Unavailable(format!(
                "Cloud KMS encrypt with {} returned no ciphertext",
                self.name
            )));
        }
        Ok(response.ciphertext.to_vec())
    }

    async fn unwrap(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        if ciphertext.is_empty() {
            return Err(WrapError::InvalidCiphertext);
        }
        let call = self
            .client
            .decrypt()
            .set_name(&self.name)
            .set_ciphertext(Bytes::copy_from_slice(ciphertext))
            .with_idempotency(true)
            .send();
        let response = self.bounded(Op::Decrypt, call).await?;
        let plaintext = Zeroizing::new(response.plaintext.to_vec());
        // Best effort: wipe the SDK's copy too when we hold the only
        // reference (the HTTP body it was decoded from is out of reach).
        if let Ok(mut sdk_copy) = response.plaintext.try_into_mut() {
            sdk_copy.as_mut().zeroize();
        }
        Ok(plaintext)
    }
}

impl fmt::Debug for GcpKmsWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcpKmsWrapper")
            .field("kek", &self.uri.to_string())
            .field("credentials", &self.credentials_kind)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
