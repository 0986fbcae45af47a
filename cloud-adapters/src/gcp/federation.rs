//! Outbound federation to GCP (DESIGN §5.1): the broker holds no Google key.
//!
//! 1. The broker's issuer mints a JWT whose `aud` is the workload identity
//!    pool provider ([`IdentityTokenSource`]).
//! 2. GCP STS trades it (RFC 8693) for a federated access token.
//! 3. IAM Credentials `generateAccessToken` trades that for an access token
//!    of the service account that holds the KMS role on the key.
//!
//! Step 3 exists because a federated principal cannot be granted roles on
//! every resource type, while a service account can; it also keeps the
//! grant in one place the ad tech's terraform controls.
//!
//! The result is cached until 5 minutes before it expires. The cache lock is
//! held across a refresh, so concurrent callers share one exchange instead
//! of stampeding STS (single flight). A failed refresh caches nothing: the
//! next caller (or the SDK's retry loop) tries again.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{IdentityTokenSource, WrapError};
use google_cloud_auth::credentials::{CacheableResource, CredentialsProvider};
use google_cloud_auth::errors::CredentialsError;
use http::{Extensions, HeaderMap, StatusCode, header::AUTHORIZATION};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;
use zeroize::Zeroizing;

use crate::gcp::settings::{
    CLOUD_PLATFORM_SCOPE, check_audience, check_service_account, checked_url,
};
use crate::gcp::static_token::{UNIVERSE_DOMAIN, auth_headers, bearer};

const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// What we ask `generateAccessToken` for: the API maximum without an org
/// policy exception, so a refresh happens about once an hour.
const SERVICE_ACCOUNT_TOKEN_LIFETIME: &str = "3600s";
/// Refresh this long before expiry, so that a token never expires between
/// being handed to the SDK and reaching Cloud KMS, even with clock skew.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Upper bound on the remote error text we keep in a message.
const MAX_DETAIL: usize = 200;

/// The `google-cloud-auth` credentials provider for [`GcpCredentials::Federated`](crate::gcp::GcpCredentials).
pub(crate) struct FederatedToken {
    identity: Arc<dyn IdentityTokenSource>,
    audience: String,
    service_account: String,
    sts_url: Url,
    generate_url: Url,
    http: reqwest::Client,
    cache: Mutex<Option<Cached>>,
}

struct Cached {
    token: Zeroizing<String>,
    refresh_at: Instant,
}

impl FederatedToken {
    pub(crate) fn new(
        identity: Arc<dyn IdentityTokenSource>,
        audience: &str,
        sts_url: &str,
        service_account: &str,
        iam_credentials_url: &str,
        timeout: Duration,
    ) -> Result<Self, WrapError> {
        check_audience(audience)?;
        check_service_account(service_account)?;
        let sts_url = checked_url("sts_url", sts_url)?;
        let iam = checked_url("iam_credentials_url", iam_credentials_url)?;
        // The email was checked to hold only [A-Za-z0-9@._-], so it cannot
        // change the path; `@` is legal in a path segment.
        let generate_url = Url::parse(&format!(
            "{}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken",
            iam.as_str().trim_end_matches('/')
        ))
        .map_err(|e| WrapError::Misconfigured(format!("iam_credentials_url: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect would re-send the subject or federated token to
            // wherever it points; Google's endpoints never redirect.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WrapError::Misconfigured(format!("HTTP client for STS: {e}")))?;
        Ok(Self {
            identity,
            audience: audience.to_owned(),
            service_account: service_account.to_owned(),
            sts_url,
            generate_url,
            http,
            cache: Mutex::new(None),
        })
    }

    /// The service-account access token, from the cache or freshly minted.
    async fn access_token(&self) -> Result<Zeroizing<String>, FederationError> {
        // Held across the refresh on purpose: this is the single flight.
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let fresh = self.mint().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn mint(&self) -> Result<Cached, FederationError> {
        let subject = self
            .identity
            .identity_token(&self.audience)
            .await
            .map_err(FederationError::from_identity)?;
        let federated = self.exchange(&subject).await?;
        let cached = self.impersonate(&federated).await?;
        tracing::debug!(
            service_account = %self.service_account,
            valid_for_s = cached.refresh_at.saturating_duration_since(Instant::now()).as_secs() + REFRESH_MARGIN.as_secs(),
            "GCP service-account token refreshed"
        );
        Ok(cached)
    }

    /// Step 2: RFC 8693 token exchange at GCP STS.
    async fn exchange(&self, subject: &str) -> Result<Zeroizing<String>, FederationError> {
        let form = [
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("audience", self.audience.as_str()),
            ("scope", CLOUD_PLATFORM_SCOPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("subject_token", subject),
            ("subject_token_type", JWT_TOKEN_TYPE),
        ];
        let response = self
            .http
            .post(self.sts_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| FederationError::unreachable("GCP STS", &e))?;
        let status = response.status();
        if !status.is_success() {
            let detail = match response.json::<OAuthError>().await {
                Ok(e) => format!("{}: {}", e.error, e.error_description),
                Err(_) => String::new(),
            };
            return Err(FederationError::refused(
                "GCP STS token exchange",
                status,
                &detail,
            ));
        }
        let body: StsResponse = response
            .json()
            .await
            .map_err(|_| FederationError::unreadable("GCP STS"))?;
        Ok(Zeroizing::new(body.access_token))
    }

    /// Step 3: impersonate the service account with the federated token.
    async fn impersonate(&self, federated: &str) -> Result<Cached, FederationError> {
        let authorization = bearer(federated)
            .map_err(|_| FederationError::unreadable("GCP STS (token is not header-safe)"))?;
        let response = self
            .http
            .post(self.generate_url.clone())
            .header(AUTHORIZATION, authorization)
            .json(&serde_json::json!({
                "scope": [CLOUD_PLATFORM_SCOPE],
                "lifetime": SERVICE_ACCOUNT_TOKEN_LIFETIME,
            }))
            .send()
            .await
            .map_err(|e| FederationError::unreachable("IAM Credentials", &e))?;
        let status = response.status();
        if !status.is_success() {
            let detail = match response.json::<GoogleError>().await {
                Ok(e) => format!("{}: {}", e.error.status, e.error.message),
                Err(_) => String::new(),
            };
            return Err(FederationError::refused(
                "IAM Credentials generateAccessToken",
                status,
                &detail,
            ));
        }
        let body: GenerateAccessTokenResponse = response
            .json()
            .await
            .map_err(|_| FederationError::unreadable("IAM Credentials"))?;
        let token = Zeroizing::new(body.access_token);
        let expires: jiff::Timestamp = body
            .expire_time
            .parse()
            .map_err(|_| FederationError::unreadable("IAM Credentials (expireTime)"))?;
        // Wall clock to monotonic clock once, here: the cache then ignores
        // later jumps of the system clock.
        let valid_for = Duration::try_from(expires.duration_since(jiff::Timestamp::now()))
            .unwrap_or(Duration::ZERO);
        Ok(Cached {
            token,
            refresh_at: Instant::now() + valid_for.saturating_sub(REFRESH_MARGIN),
        })
    }
}

impl fmt::Debug for FederatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederatedToken")
            .field("audience", &self.audience)
            .field("service_account", &self.service_account)
            .field("sts_url", &self.sts_url.as_str())
            .finish_non_exhaustive()
    }
}

impl CredentialsProvider for FederatedToken {
    async fn headers(
        &self,
        _extensions: Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        let token = self
            .access_token()
            .await
            .map_err(FederationError::into_sdk)?;
        let value = bearer(&token).map_err(|_| {
            FederationError::unreadable("IAM Credentials (token is not header-safe)").into_sdk()
        })?;
        Ok(auth_headers(value))
    }

    async fn universe_domain(&self) -> Option<String> {
        Some(UNIVERSE_DOMAIN.to_owned())
    }
}

#[derive(Deserialize)]
struct StsResponse {
    access_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAccessTokenResponse {
    access_token: String,
    expire_time: String,
}

/// RFC 6749 §5.2 error body, as GCP STS sends it.
#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Google's JSON error body (`{"error": {"code", "message", "status"}}`).
#[derive(Deserialize)]
struct GoogleError {
    error: GoogleErrorBody,
}

#[derive(Deserialize)]
struct GoogleErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

/// Which [`WrapError`] a federation failure becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Worth retrying: STS/IAM unreachable, 429 or 5xx, our issuer down.
    Unavailable,
    /// GCP refused the broker's identity or the impersonation grant.
    PermissionDenied,
    /// Our own side is wrong (e.g. the issuer cannot mint for this audience).
    Misconfigured,
}

/// A federation failure: the step that failed and GCP's short reason, never
/// a token. Travels inside the SDK's `CredentialsError` so that the wrapper
/// can recover the exact kind (see `errors.rs`).
#[derive(Debug)]
pub(crate) struct FederationError {
    kind: FailureKind,
    message: String,
}

impl FederationError {
    fn from_identity(e: WrapError) -> Self {
        let kind = match e {
            WrapError::Unavailable(_) => FailureKind::Unavailable,
            WrapError::PermissionDenied(_) => FailureKind::PermissionDenied,
            _ => FailureKind::Misconfigured,
        };
        Self {
            kind,
            message: format!("broker identity token: {e}"),
        }
    }

    fn unreachable(what: &str, e: &reqwest::Error) -> Self {
        // Without the URL: it is configuration, and keeps messages short.
        let reason = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        Self {
            kind: FailureKind::Unavailable,
            message: format!("{what} unreachable: {reason}"),
        }
    }

    fn unreadable(what: &str) -> Self {
        Self {
            kind: FailureKind::Unavailable,
            message: format!("{what} answered with an unexpected body"),
        }
    }

    fn refused(what: &str, status: StatusCode, detail: &str) -> Self {
        let kind = if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            FailureKind::Unavailable
        } else {
            FailureKind::PermissionDenied
        };
        let mut message = format!("{what} refused with HTTP {}", status.as_u16());
        if !detail.is_empty() {
            message.push_str(": ");
            message.extend(detail.chars().take(MAX_DETAIL));
        }
        Self { kind, message }
    }

    /// The SDK retries a transient credentials error (before sending the
    /// KMS request) and gives up on a permanent one.
    fn into_sdk(self) -> CredentialsError {
        let transient = self.kind == FailureKind::Unavailable;
        CredentialsError::from_source(transient, self)
    }

    pub(crate) fn to_wrap_error(&self) -> WrapError {
        let message = format!("GCP federation failed: {}", self.message);
        match self.kind {
            FailureKind::Unavailable => WrapError::Unavailable(message),
            FailureKind::PermissionDenied => WrapError::PermissionDenied(message),
            FailureKind::Misconfigured => WrapError::Misconfigured(message),
        }
    }
}

impl fmt::Display for FederationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FederationError {}
