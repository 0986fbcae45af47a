//! Outbound federation: KMS credentials from the broker's own identity.
//!
//! The broker mints a token with its OIDC issuer and trades it at STS
//! `AssumeRoleWithWebIdentity` for role credentials (DESIGN §5.1). That
//! exchange costs a token signature and an STS round trip, and STS throttles
//! per role, so the credentials are cached until [`REFRESH_MARGIN`] before
//! they expire, and concurrent callers that find the cache stale share one
//! exchange instead of each starting their own.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::{IdentityTokenSource, WrapError};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
use tokio::sync::Mutex;

/// Credentials this close to expiry are replaced before use, so that a
/// request signed now cannot reach KMS after its session has ended.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Name the SDK records as the source of these credentials.
const PROVIDER_NAME: &str = "keyferry-web-identity";

/// A failed exchange, carrying the verdict to report once it has travelled
/// through the SDK's error chain (see `errors::kms_error`).
#[derive(Debug)]
pub(crate) struct FederationError {
    verdict: Verdict,
    detail: String,
}

#[derive(Debug, Clone, Copy)]
enum Verdict {
    /// STS (or the token source) said no: fix the trust policy or issuer.
    Refused,
    /// STS (or the token source) could not be reached or was overloaded.
    Unreachable,
    /// The exchange cannot work as configured.
    Misconfigured,
}

impl FederationError {
    pub(crate) fn to_wrap_error(&self) -> WrapError {
        let detail = self.detail.clone();
        match self.verdict {
            Verdict::Refused => WrapError::PermissionDenied(detail),
            Verdict::Unreachable => WrapError::Unavailable(detail),
            Verdict::Misconfigured => WrapError::Misconfigured(detail),
        }
    }
}

impl fmt::Display for FederationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for FederationError {}

/// Credentials from `AssumeRoleWithWebIdentity`, cached and refreshed once
/// at a time.
pub(crate) struct WebIdentityProvider {
    /// Unsigned: `AssumeRoleWithWebIdentity` is a no-auth operation, the
    /// token is the proof.
    sts: aws_sdk_sts::Client,
    role_arn: String,
    session_name: String,
    identity: Arc<dyn IdentityTokenSource>,
    audience: String,
    /// Held across the exchange: a caller that finds the cache stale keeps
    /// the lock while it refreshes, and the callers queued behind it find
    /// fresh credentials when they get it.
    cached: Mutex<Option<Credentials>>,
    /// Exchanges attempted, for metrics (and for tests of the single flight).
    exchanges: Arc<AtomicU64>,
}

impl WebIdentityProvider {
    pub(crate) fn new(
        sts: aws_sdk_sts::Client,
        role_arn: String,
        session_name: String,
        identity: Arc<dyn IdentityTokenSource>,
        audience: String,
    ) -> Self {
        Self {
            sts,
            role_arn,
            session_name,
            identity,
            audience,
            cached: Mutex::new(None),
            exchanges: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A handle on the exchange counter that outlives moving `self` into
    /// the SDK.
    pub(crate) fn exchange_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.exchanges)
    }

    async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some(creds) = cached.as_ref().filter(|c| is_fresh(c, SystemTime::now())) {
            return Ok(creds.clone());
        }
        let creds = self
            .exchange()
            .await
            .map_err(CredentialsError::provider_error)?;
        *cached = Some(creds.clone());
        Ok(creds)
    }

    async fn exchange(&self) -> Result<Credentials, FederationError> {
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        let token = self
            .identity
            .identity_token(&self.audience)
            .await
            .map_err(token_source_error)?;
        let out = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .web_identity_token(token.as_str())
            .send()
            .await
            .map_err(|e| sts_error(&self.role_arn, e))?;
        let malformed = |what: &str| FederationError {
            verdict: Verdict::Unreachable,
            detail: format!(
                "STS AssumeRoleWithWebIdentity answer for {} {what}",
                self.role_arn
            ),
        };
        let c = out
            .credentials()
            .ok_or_else(|| malformed("has no credentials"))?;
        let expiry = SystemTime::try_from(*c.expiration())
            .map_err(|_| malformed("has an unrepresentable expiration"))?;
        tracing::info!(
            role_arn = %self.role_arn,
            expires_in_s = expiry
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs(),
            "assumed AWS role with the broker's identity"
        );
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            Some(expiry),
            PROVIDER_NAME,
        ))
    }
}

/// Fresh means usable for at least [`REFRESH_MARGIN`] more; credentials
/// without an expiry never come from STS, so they count as stale.
fn is_fresh(creds: &Credentials, now: SystemTime) -> bool {
    creds.expiry().is_some_and(|expiry| {
        expiry
            .duration_since(now)
            .is_ok_and(|left| left > REFRESH_MARGIN)
    })
}

fn token_source_error(e: WrapError) -> FederationError {
    let verdict = match e {
        WrapError::PermissionDenied(_) => Verdict::Refused,
        WrapError::Unavailable(_) => Verdict::Unreachable,
        _ => Verdict::Misconfigured,
    };
    FederationError {
        verdict,
        detail: format!("minting the broker's identity token for STS failed: {e}"),
    }
}

/// STS's own message is left out: it may quote the token or its claims, and
/// the code (`InvalidIdentityToken`, `AccessDenied`, `IDPRejectedClaim`, …)
/// says enough to know where to look.
fn sts_error(role_arn: &str, e: SdkError<AssumeRoleWithWebIdentityError>) -> FederationError {
    let what = format!("STS AssumeRoleWithWebIdentity for {role_arn}");
    match &e {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("unknown error");
            let status = ctx.raw().status().as_u16();
            // IDPCommunicationError: STS could not reach the issuer's JWKS.
            let transient = status == 429
                || status >= 500
                || matches!(
                    code,
                    "IDPCommunicationError" | "Throttling" | "ThrottlingException"
                );
            FederationError {
                verdict: if transient {
                    Verdict::Unreachable
                } else {
                    Verdict::Refused
                },
                detail: format!("{what}: {code} (HTTP {status})"),
            }
        }
        SdkError::TimeoutError(_) => FederationError {
            verdict: Verdict::Unreachable,
            detail: format!("{what}: timed out"),
        },
        SdkError::DispatchFailure(_) => FederationError {
            verdict: Verdict::Unreachable,
            detail: format!("{what}: could not reach STS: {}", DisplayErrorContext(&e)),
        },
        SdkError::ConstructionFailure(_) => FederationError {
            verdict: Verdict::Misconfigured,
            detail: format!("{what}: request could not be built"),
        },
        _ => FederationError {
            verdict: Verdict::Unreachable,
            detail: format!("{what}: unreadable answer"),
        },
    }
}

impl ProvideCredentials for WebIdentityProvider {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(self.credentials())
    }
}

// Hand-written: the cached credentials stay out of logs.
impl fmt::Debug for WebIdentityProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebIdentityProvider")
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiring_in(now: SystemTime, secs: u64) -> Credentials {
        Credentials::new(
            "a",
            "s",
            Some("t".into()),
            Some(now + Duration::from_secs(secs)),
            "t",
        )
    }

    #[test]
    fn credentials_are_stale_five_minutes_before_expiry() {
        let now = SystemTime::now();
        assert!(is_fresh(&expiring_in(now, 301), now));
        assert!(!is_fresh(&expiring_in(now, 300), now));
        assert!(!is_fresh(&expiring_in(now, 10), now));
        assert!(!is_fresh(&Credentials::new("a", "s", None, None, "t"), now));
    }
}
