//! Token sources: where the workload gets its cloud's OIDC identity token, the subject
//! token of the RFC 8693 exchange at each coordinator (DESIGN §3.1).
//!
//! One small async trait, [`TokenSource`], with one implementation per cloud mechanism and
//! one factory, [`token_source`], from the `[token]` config section. Tokens live in
//! [`SubjectToken`] (wiped on drop, never printed) and no error message quotes a response
//! body that could hold one.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use crate::WorkloadError;
use crate::config::TokenSourceConfig;

/// A cloud identity token (a JWT). Secret: wiped on drop, `Debug` prints nothing of it.
pub struct SubjectToken(Zeroizing<String>);

impl SubjectToken {
    /// Wraps a token, refusing an empty one (an empty file or answer is a misconfiguration
    /// better reported here than as `invalid_request` by the coordinator).
    pub fn new(token: Zeroizing<String>, source_kind: &'static str) -> Result<Self, WorkloadError> {
        let trimmed = token.trim();
        if trimmed.is_empty() {
            return Err(WorkloadError::Token {
                source_kind,
                message: "the token is empty".into(),
            });
        }
        if trimmed.len() == token.len() {
            Ok(SubjectToken(token))
        } else {
            Ok(SubjectToken(Zeroizing::new(trimmed.to_owned())))
        }
    }

    /// The token text, for the exchange request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SubjectToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectToken(<redacted>)")
    }
}

/// Produces the workload's cloud identity token for an audience (each coordinator's
/// trusted-issuer entry names the audience it expects).
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A fresh (or still valid) token whose `aud` is `audience`, where the mechanism lets
    /// the caller choose it (the file source cannot: its audience is fixed by whoever writes
    /// the file).
    async fn token(&self, audience: &str) -> Result<SubjectToken, WorkloadError>;
}

/// A token file re-read on every use, because its writer (the kubelet for an EKS projected
/// service account token) rotates it in place.
#[derive(Debug, Clone)]
pub struct FileTokenSource {
    path: PathBuf,
}

impl FileTokenSource {
    /// Reads `path` on each call.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

#[async_trait]
impl TokenSource for FileTokenSource {
    async fn token(&self, _audience: &str) -> Result<SubjectToken, WorkloadError> {
        let text =
            tokio::fs::read_to_string(&self.path)
                .await
                .map_err(|e| WorkloadError::Token {
                    source_kind: "file",
                    message: format!("cannot read {}: {e}", self.path.display()),
                })?;
        SubjectToken::new(Zeroizing::new(text), "file")
    }
}

/// The HTTP client for link-local metadata servers: no proxy (a proxy would see the token),
/// no redirects (a metadata answer never redirects; following one could send the request,
/// and its headers, elsewhere).
fn metadata_client(timeout: Duration) -> Result<reqwest::Client, WorkloadError> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| WorkloadError::Config(format!("HTTP client: {e}")))
}

fn endpoint(base: &Url, path: &str) -> Result<Url, String> {
    let base = base.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/{path}")).map_err(|e| format!("bad metadata URL: {e}"))
}

/// The GCP metadata server's identity endpoint (GCE, GKE workload identity, Cloud Run,
/// Confidential Space): `GET {base}/computeMetadata/v1/instance/service-accounts/default/identity?audience=AUD&format=full`
/// with `Metadata-Flavor: Google`. `format=full` adds the `google.compute_engine` claims
/// that mapping conditions can test (project, zone, instance).
#[derive(Debug, Clone)]
pub struct GcpMetadataTokenSource {
    base: Url,
    http: reqwest::Client,
}

impl GcpMetadataTokenSource {
    /// A source asking the metadata server at `base` (normally `http://metadata.google.internal`).
    pub fn new(base: Url, timeout: Duration) -> Result<Self, WorkloadError> {
        Ok(Self {
            base,
            http: metadata_client(timeout)?,
        })
    }
}

fn token_err(source_kind: &'static str) -> impl Fn(String) -> WorkloadError {
    move |message| WorkloadError::Token {
        source_kind,
        message,
    }
}

#[async_trait]
impl TokenSource for GcpMetadataTokenSource {
    async fn token(&self, audience: &str) -> Result<SubjectToken, WorkloadError> {
        const KIND: &str = "gcp-metadata";
        let err = token_err(KIND);
        let mut url = endpoint(
            &self.base,
            "computeMetadata/v1/instance/service-accounts/default/identity",
        )
        .map_err(&err)?;
        url.query_pairs_mut()
            .append_pair("audience", audience)
            .append_pair("format", "full");
        let response = self
            .http
            .get(url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await
            .map_err(|e| err(format!("metadata server unreachable: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(err(format!(
                "metadata server answered HTTP {}",
                status.as_u16()
            )));
        }
        let body = response
            .text()
            .await
            .map_err(|e| err(format!("reading the answer: {e}")))?;
        SubjectToken::new(Zeroizing::new(body), KIND)
    }
}

/// Azure IMDS managed identity token: `GET {base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=AUD`
/// with `Metadata: true`; the token is the answer's `access_token`. The coordinator's
/// audience is the `resource` (an Entra app id URI registered for the coordinator).
#[derive(Debug, Clone)]
pub struct AzureImdsTokenSource {
    base: Url,
    client_id: Option<String>,
    http: reqwest::Client,
}

impl AzureImdsTokenSource {
    /// A source asking IMDS at `base` (normally `http://169.254.169.254`), for the
    /// user-assigned identity `client_id` or the system-assigned one.
    pub fn new(
        base: Url,
        client_id: Option<String>,
        timeout: Duration,
    ) -> Result<Self, WorkloadError> {
        Ok(Self {
            base,
            client_id,
            http: metadata_client(timeout)?,
        })
    }
}

#[derive(Deserialize)]
struct ImdsToken {
    access_token: String,
}

#[async_trait]
impl TokenSource for AzureImdsTokenSource {
    async fn token(&self, audience: &str) -> Result<SubjectToken, WorkloadError> {
        const KIND: &str = "azure-imds";
        let err = token_err(KIND);
        let mut url = endpoint(&self.base, "metadata/identity/oauth2/token").map_err(&err)?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("api-version", "2018-02-01")
                .append_pair("resource", audience);
            if let Some(id) = &self.client_id {
                query.append_pair("client_id", id);
            }
        }
        let response = self
            .http
            .get(url)
            .header("Metadata", "true")
            .send()
            .await
            .map_err(|e| err(format!("IMDS unreachable: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(err(format!("IMDS answered HTTP {}", status.as_u16())));
        }
        let body = Zeroizing::new(
            response
                .bytes()
                .await
                .map_err(|e| err(format!("reading the answer: {e}")))?
                .to_vec(),
        );
        // The error text of serde_json never quotes string values, only positions.
        let parsed: ImdsToken = serde_json::from_slice(&body)
            .map_err(|e| err(format!("answer is not an IMDS token document: {e}")))?;
        SubjectToken::new(Zeroizing::new(parsed.access_token), KIND)
    }
}

/// AWS IAM outbound identity federation: STS `GetWebIdentityToken` signed with the
/// workload's ambient AWS credentials (instance profile, task role, …), through the official
/// SDK. The account's issuer (`https://<id>.tokens.sts.global.api.aws`) must be enabled and
/// the role allowed `sts:GetWebIdentityToken`.
pub struct AwsStsTokenSource {
    client: aws_sdk_sts::Client,
    signing_algorithm: String,
    duration_seconds: Option<i32>,
}

impl fmt::Debug for AwsStsTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsStsTokenSource")
            .field("signing_algorithm", &self.signing_algorithm)
            .field("duration_seconds", &self.duration_seconds)
            .finish_non_exhaustive()
    }
}

impl AwsStsTokenSource {
    /// A source calling STS in `region` (or at `endpoint`) with the default credentials chain.
    pub async fn new(
        region: &str,
        endpoint: Option<&str>,
        signing_algorithm: &str,
        duration_seconds: Option<i32>,
        timeout: Duration,
    ) -> Result<Self, WorkloadError> {
        use aws_credential_types::provider::SharedCredentialsProvider;
        use aws_sdk_sts::config::{BehaviorVersion, Region};

        let region = Region::new(region.to_owned());
        let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .region(region.clone())
            .build()
            .await;
        let timeouts = aws_sdk_sts::config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(timeout)
            .build();
        // Pinned, as cloud-adapters pins it, so an SDK upgrade cannot change defaults.
        let mut sts = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::v2026_01_12())
            .region(region)
            .credentials_provider(SharedCredentialsProvider::new(chain))
            .timeout_config(timeouts);
        if let Some(endpoint) = endpoint {
            sts = sts.endpoint_url(endpoint);
        }
        Ok(Self {
            client: aws_sdk_sts::Client::from_conf(sts.build()),
            signing_algorithm: signing_algorithm.to_owned(),
            duration_seconds,
        })
    }
}

#[async_trait]
impl TokenSource for AwsStsTokenSource {
    async fn token(&self, audience: &str) -> Result<SubjectToken, WorkloadError> {
        const KIND: &str = "aws-sts";
        let err = token_err(KIND);
        let mut call = self
            .client
            .get_web_identity_token()
            .audience(audience)
            .signing_algorithm(&self.signing_algorithm);
        if let Some(d) = self.duration_seconds {
            call = call.duration_seconds(d);
        }
        let output = call.send().await.map_err(|e| {
            // The SDK's error display names the service error code and message, not secrets.
            err(format!(
                "GetWebIdentityToken failed: {}",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            ))
        })?;
        let token = output
            .web_identity_token
            .ok_or_else(|| err("GetWebIdentityToken answered no token".into()))?;
        SubjectToken::new(Zeroizing::new(token), KIND)
    }
}

/// Builds the configured token source.
pub async fn token_source(
    config: &TokenSourceConfig,
    timeout: Duration,
) -> Result<Arc<dyn TokenSource>, WorkloadError> {
    Ok(match config {
        TokenSourceConfig::File { path } => Arc::new(FileTokenSource::new(path.clone())),
        TokenSourceConfig::GcpMetadata { base_url } => {
            Arc::new(GcpMetadataTokenSource::new(base_url.clone(), timeout)?)
        }
        TokenSourceConfig::AzureImds {
            base_url,
            client_id,
        } => Arc::new(AzureImdsTokenSource::new(
            base_url.clone(),
            client_id.clone(),
            timeout,
        )?),
        TokenSourceConfig::AwsSts {
            region,
            endpoint,
            signing_algorithm,
            duration_seconds,
        } => Arc::new(
            AwsStsTokenSource::new(
                region,
                endpoint.as_deref(),
                signing_algorithm,
                *duration_seconds,
                timeout,
            )
            .await?,
        ),
    })
}
