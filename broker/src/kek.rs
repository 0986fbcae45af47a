//! Opening the workload clouds' KEKs from `[clouds.*]` (DESIGN §5.1).
//!
//! Each cloud's KEK is reached with credentials the broker obtains by
//! trading a token from its own issuer (`sub = coordinator:<name>`) at that
//! cloud's STS; static credentials are accepted in the dev profile only
//! (`config check` refuses them in production). This is the one place a
//! cloud section becomes an adapter.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cloud_adapters::{IdentityTokenSource, KekUri, KeyWrapper, WrapError};
use idp::Clock;
use zeroize::Zeroizing;

use crate::config::CloudConfig;
use crate::http::KmsMetrics;
use crate::issuer::Issuer;

/// The broker's own identity for outbound federation: short-lived tokens
/// from its issuer.
pub struct IssuerIdentity {
    issuer: Arc<Issuer>,
    clock: Arc<dyn Clock>,
    name: String,
}

impl std::fmt::Debug for IssuerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerIdentity")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl IssuerIdentity {
    /// Tokens with `sub = coordinator:<name>`.
    pub fn new(issuer: Arc<Issuer>, clock: Arc<dyn Clock>, name: &str) -> Arc<Self> {
        Arc::new(IssuerIdentity {
            issuer,
            clock,
            name: name.to_owned(),
        })
    }
}

#[async_trait]
impl IdentityTokenSource for IssuerIdentity {
    async fn identity_token(&self, audience: &str) -> Result<Zeroizing<String>, WrapError> {
        let token = self
            .issuer
            .current()
            .mint_outbound_token(
                self.clock.now(),
                &self.name,
                audience,
                Duration::from_secs(300),
            )
            .map_err(|e| {
                WrapError::Unavailable(format!("cannot mint the broker's identity token: {e}"))
            })?;
        Ok(Zeroizing::new(token.as_str().to_owned()))
    }
}

fn missing(cloud: &str, key: &str) -> WrapError {
    WrapError::Misconfigured(format!("clouds.{cloud}.{key} is required for federation"))
}

/// Opens the KEK of `[clouds.<name>]`.
pub async fn open_cloud_kek(
    name: &str,
    cloud: &CloudConfig,
    ctx: &cloud_adapters::WrapperContext,
    identity: Arc<dyn IdentityTokenSource>,
) -> Result<Arc<dyn KeyWrapper>, WrapError> {
    let uri: KekUri = cloud.kek.parse()?;
    let statics = cloud.static_credentials.clone().unwrap_or_default();
    match &uri {
        KekUri::Local { .. } => cloud_adapters::open_wrapper(&uri, ctx).await,
        KekUri::AwsKms { .. } => {
            use cloud_adapters::aws::{AwsCredentials, AwsKmsWrapper, AwsSettings};
            let credentials = match (statics.access_key_id, statics.secret_access_key) {
                (Some(access_key_id), Some(secret_access_key)) => AwsCredentials::Static {
                    access_key_id,
                    secret_access_key,
                },
                _ => AwsCredentials::WebIdentity {
                    role_arn: cloud
                        .role_arn
                        .clone()
                        .ok_or_else(|| missing(name, "role_arn"))?,
                    session_name: "keyferry".into(),
                    sts_endpoint: cloud.sts_endpoint.clone(),
                    identity,
                    audience: "sts.amazonaws.com".into(),
                },
            };
            let mut settings = AwsSettings::new(credentials);
            settings.endpoint = cloud
                .endpoint
                .as_ref()
                .map(|u| u.as_str().trim_end_matches('/').to_owned());
            Ok(Arc::new(AwsKmsWrapper::new(&uri, settings)?))
        }
        KekUri::GcpKms { .. } => {
            use cloud_adapters::gcp::{GcpCredentials, GcpKmsWrapper, GcpSettings};
            let credentials = match statics.access_token {
                Some(token) => GcpCredentials::Static {
                    access_token: Zeroizing::new(token),
                },
                None => {
                    let mut federated = GcpCredentials::federated(
                        identity,
                        cloud
                            .workload_identity_provider
                            .clone()
                            .ok_or_else(|| missing(name, "workload_identity_provider"))?,
                        cloud
                            .service_account
                            .clone()
                            .ok_or_else(|| missing(name, "service_account"))?,
                    );
                    if let GcpCredentials::Federated {
                        sts_url,
                        iam_credentials_url,
                        ..
                    } = &mut federated
                    {
                        if let Some(url) = &cloud.sts_url {
                            *sts_url = url.clone();
                        }
                        if let Some(url) = &cloud.iam_credentials_url {
                            *iam_credentials_url = url.clone();
                        }
                    }
                    federated
                }
            };
            let mut settings = GcpSettings::new(credentials);
            settings.endpoint = cloud
                .endpoint
                .as_ref()
                .map(|u| u.as_str().trim_end_matches('/').to_owned());
            Ok(Arc::new(GcpKmsWrapper::new(uri.clone(), settings).await?))
        }
        KekUri::AzureKeyVault { .. } => {
            use cloud_adapters::azure::{AzureCredentials, AzureKeyVaultWrapper, AzureSettings};
            let credentials = match statics.access_token {
                Some(token) => AzureCredentials::Static {
                    access_token: Zeroizing::new(token),
                },
                None => {
                    let mut federated = AzureCredentials::federated(
                        identity,
                        cloud
                            .tenant_id
                            .clone()
                            .ok_or_else(|| missing(name, "tenant_id"))?,
                        cloud
                            .client_id
                            .clone()
                            .ok_or_else(|| missing(name, "client_id"))?,
                    );
                    if let (AzureCredentials::Federated { authority_host, .. }, Some(host)) =
                        (&mut federated, &cloud.authority_host)
                    {
                        *authority_host = host.clone();
                    }
                    federated
                }
            };
            let mut settings = AzureSettings::new(credentials);
            if let Some(path) = &cloud.ca_file {
                settings.ca_certificate_pem = Some(std::fs::read(path).map_err(|e| {
                    WrapError::Misconfigured(format!(
                        "clouds.{name}.ca_file {}: {e}",
                        path.display()
                    ))
                })?);
            }
            Ok(Arc::new(AzureKeyVaultWrapper::new(uri.clone(), settings)?))
        }
    }
}

/// A KEK that records each call's latency and failures in the broker's
/// metrics (`keyferry_kms_call_duration_seconds`, `keyferry_kms_errors`).
/// Every KEK the broker opens is wrapped in one, so no call site can forget.
#[derive(Debug)]
pub struct MeteredKek {
    label: &'static str,
    inner: Arc<dyn KeyWrapper>,
    metrics: KmsMetrics,
}

impl MeteredKek {
    /// Wraps `inner`; `label` is `storage` or the cloud's name.
    pub fn wrap(
        label: &'static str,
        inner: Arc<dyn KeyWrapper>,
        metrics: KmsMetrics,
    ) -> Arc<dyn KeyWrapper> {
        Arc::new(MeteredKek {
            label,
            inner,
            metrics,
        })
    }

    fn observe<T>(&self, op: &'static str, started: Instant, result: &Result<T, WrapError>) {
        let kind = result.as_ref().err().map(|e| match e {
            WrapError::KeyNotFound(_) => "key_not_found",
            WrapError::PermissionDenied(_) => "permission_denied",
            WrapError::Unavailable(_) => "unavailable",
            WrapError::InvalidCiphertext => "invalid_ciphertext",
            _ => "misconfigured",
        });
        self.metrics
            .observe(self.label, op, started.elapsed(), kind);
    }
}

#[async_trait]
impl KeyWrapper for MeteredKek {
    fn kek_uri(&self) -> &KekUri {
        self.inner.kek_uri()
    }

    async fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError> {
        let started = Instant::now();
        let result = self.inner.wrap(plaintext).await;
        self.observe("wrap", started, &result);
        result
    }

    async fn unwrap(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        let started = Instant::now();
        let result = self.inner.unwrap(ciphertext).await;
        self.observe("unwrap", started, &result);
        result
    }
}
