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
use cloud_adapters::{
    Cloud, Federation, IdentityTokenSource, KekOptions, KekUri, KeyWrapper, KmsCredentials,
    WrapError, open_kek,
};
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

/// How `[clouds.<name>]` authenticates: its static credentials (dev only;
/// `config check` refuses them in production), else federation with the
/// broker's identity.
fn credentials(
    name: &str,
    uri: &KekUri,
    cloud: &CloudConfig,
    identity: Arc<dyn IdentityTokenSource>,
) -> Result<KmsCredentials, WrapError> {
    let statics = cloud.static_credentials.clone().unwrap_or_default();
    let required =
        |value: &Option<String>, key: &str| value.clone().ok_or_else(|| missing(name, key));
    let federation = match uri.cloud() {
        None => return Ok(KmsCredentials::Ambient),
        Some(Cloud::Aws) => {
            if let (Some(access_key_id), Some(secret)) =
                (statics.access_key_id, statics.secret_access_key)
            {
                return Ok(KmsCredentials::AwsAccessKey {
                    access_key_id,
                    secret_access_key: Zeroizing::new(secret),
                });
            }
            Federation::Aws {
                role_arn: required(&cloud.role_arn, "role_arn")?,
                sts_endpoint: cloud.sts_endpoint.clone(),
            }
        }
        Some(Cloud::Gcp) | Some(Cloud::Azure) if statics.access_token.is_some() => {
            let token = statics.access_token.unwrap_or_default();
            return Ok(KmsCredentials::BearerToken(Zeroizing::new(token)));
        }
        Some(Cloud::Gcp) => Federation::Gcp {
            workload_identity_provider: required(
                &cloud.workload_identity_provider,
                "workload_identity_provider",
            )?,
            service_account: required(&cloud.service_account, "service_account")?,
            sts_url: cloud.sts_url.clone(),
            iam_credentials_url: cloud.iam_credentials_url.clone(),
        },
        Some(Cloud::Azure) => Federation::Azure {
            tenant_id: required(&cloud.tenant_id, "tenant_id")?,
            client_id: required(&cloud.client_id, "client_id")?,
            authority_host: cloud.authority_host.clone(),
        },
    };
    Ok(KmsCredentials::Federated {
        identity,
        federation,
    })
}

/// Opens the KEK of `[clouds.<name>]` through the one credential factory.
pub async fn open_cloud_kek(
    name: &str,
    cloud: &CloudConfig,
    ctx: &cloud_adapters::WrapperContext,
    identity: Arc<dyn IdentityTokenSource>,
) -> Result<Arc<dyn KeyWrapper>, WrapError> {
    let uri: KekUri = cloud.kek.parse()?;
    let credentials = credentials(name, &uri, cloud, identity)?;
    let ca_certificate_pem = match &cloud.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            WrapError::Misconfigured(format!("clouds.{name}.ca_file {}: {e}", path.display()))
        })?),
        None => None,
    };
    let options = KekOptions {
        endpoint: cloud
            .endpoint
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned()),
        ca_certificate_pem,
        local_kek_dir: ctx.local_kek_dir.clone(),
        allow_local: ctx.allow_local,
    };
    open_kek(&uri, credentials, &options).await
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
