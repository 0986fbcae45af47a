use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{IdentityTokenSource, WrapError};
use url::Url;
use zeroize::Zeroizing;

/// Google's STS token endpoint (RFC 8693 token exchange).
pub const DEFAULT_STS_URL: &str = "https://sts.googleapis.com/v1/token";
/// The IAM Credentials API base, for `generateAccessToken`.
pub const DEFAULT_IAM_CREDENTIALS_URL: &str = "https://iamcredentials.googleapis.com";
/// The one OAuth scope Cloud KMS needs; IAM on the key does the narrowing.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// How a [`GcpKmsWrapper`](crate::gcp::GcpKmsWrapper) reaches Cloud KMS.
///
/// One value per KEK. [`GcpSettings::new`] gives the production defaults;
/// change `endpoint` only for a test double or a private service connect
/// endpoint.
#[derive(Clone, Debug)]
pub struct GcpSettings {
    /// Cloud KMS base URL; `None` means `https://cloudkms.googleapis.com`.
    /// Plain `http://` is accepted only for loopback hosts (test doubles).
    pub endpoint: Option<String>,
    /// Where the bearer token for Cloud KMS comes from.
    pub credentials: GcpCredentials,
    /// Upper bound for one wrap or unwrap, retries and token refresh
    /// included: a caller (key generation, `/readyz`) never waits longer.
    pub timeout: Duration,
    /// Attempts per call, the first included; retries happen only for
    /// throttling (429) and transient failures (503, connection errors).
    pub max_attempts: u32,
}

impl GcpSettings {
    /// Production defaults: Google's endpoint, 10 s per call, 4 attempts.
    pub fn new(credentials: GcpCredentials) -> Self {
        Self {
            endpoint: None,
            credentials,
            timeout: Duration::from_secs(10),
            max_attempts: 4,
        }
    }
}

/// The credentials the wrapper presents to Cloud KMS.
///
/// Production uses [`GcpCredentials::Federated`]: the broker holds no Google
/// secret, it trades its own issuer's token (DESIGN §3.2, §5.1). The other
/// two variants exist for development and tests and say so.
#[derive(Clone)]
pub enum GcpCredentials {
    /// A fixed OAuth access token (e.g. from `gcloud auth print-access-token`).
    /// Development only: it expires within the hour and is never refreshed.
    Static {
        /// The bearer token; never printed by `Debug`.
        access_token: Zeroizing<String>,
    },
    /// No `Authorization` header at all. Only for an emulator or test double
    /// that does not check callers; real Cloud KMS answers 401.
    Anonymous,
    /// Application Default Credentials of the environment the broker runs
    /// in (`GOOGLE_APPLICATION_CREDENTIALS`, or the metadata server of
    /// Cloud Run and GCE). Used for the storage KEK, which is opened before
    /// the broker's own issuer exists and so cannot be reached by federation.
    Ambient,
    /// Workload identity federation with service-account impersonation:
    /// the broker's JWT for `audience` → STS federated token →
    /// `generateAccessToken` for `service_account`.
    Federated {
        /// The broker's own token source (its OIDC issuer).
        identity: Arc<dyn IdentityTokenSource>,
        /// The workload identity pool provider that trusts the broker's
        /// issuer: `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`.
        /// It is both the JWT's `aud` and the STS `audience`.
        audience: String,
        /// STS token endpoint, normally [`DEFAULT_STS_URL`].
        sts_url: String,
        /// The service account (email) to impersonate; it holds
        /// `roles/cloudkms.cryptoKeyEncrypter` on a workload cloud's key (the
        /// broker only encrypts with those).
        service_account: String,
        /// IAM Credentials base URL, normally [`DEFAULT_IAM_CREDENTIALS_URL`].
        iam_credentials_url: String,
    },
}

impl GcpCredentials {
    /// Federation against Google's own STS and IAM Credentials endpoints.
    pub fn federated(
        identity: Arc<dyn IdentityTokenSource>,
        audience: impl Into<String>,
        service_account: impl Into<String>,
    ) -> Self {
        GcpCredentials::Federated {
            identity,
            audience: audience.into(),
            sts_url: DEFAULT_STS_URL.to_owned(),
            service_account: service_account.into(),
            iam_credentials_url: DEFAULT_IAM_CREDENTIALS_URL.to_owned(),
        }
    }

    /// A short name for logs and `Debug`: `static`, `anonymous`, `federated`.
    pub fn kind(&self) -> &'static str {
        match self {
            GcpCredentials::Static { .. } => "static",
            GcpCredentials::Anonymous => "anonymous",
            GcpCredentials::Ambient => "ambient",
            GcpCredentials::Federated { .. } => "federated",
        }
    }
}

// Hand-written so that a static token can never reach a log line.
impl fmt::Debug for GcpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GcpCredentials::Static { .. } => f
                .debug_struct("Static")
                .field("access_token", &"<redacted>")
                .finish(),
            GcpCredentials::Anonymous => f.write_str("Anonymous"),
            GcpCredentials::Ambient => f.write_str("Ambient"),
            GcpCredentials::Federated {
                identity,
                audience,
                sts_url,
                service_account,
                iam_credentials_url,
            } => f
                .debug_struct("Federated")
                .field("identity", identity)
                .field("audience", audience)
                .field("sts_url", sts_url)
                .field("service_account", service_account)
                .field("iam_credentials_url", iam_credentials_url)
                .finish(),
        }
    }
}

pub(crate) fn misconfigured(msg: impl Into<String>) -> WrapError {
    WrapError::Misconfigured(msg.into())
}

/// An endpoint we may send a bearer token to: https anywhere, or plain http
/// to a loopback address (a test double on this machine). Anything else would
/// put an access token on the network in clear text.
pub(crate) fn checked_url(what: &str, raw: &str) -> Result<Url, WrapError> {
    let url = Url::parse(raw).map_err(|e| misconfigured(format!("{what} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        "http" => {
            return Err(misconfigured(format!(
                "{what} must use https (plain http is allowed only for loopback test doubles)"
            )));
        }
        _ => return Err(misconfigured(format!("{what} must be an https URL"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(misconfigured(format!(
            "{what} must not carry credentials in the URL"
        )));
    }
    Ok(url)
}

/// The workload identity pool provider, as GCP spells it; checked here so a
/// pasted project id or a missing `//` fails at start, not at the first wrap.
pub(crate) fn check_audience(audience: &str) -> Result<(), WrapError> {
    let parts: Vec<&str> = audience
        .strip_prefix("//iam.googleapis.com/")
        .unwrap_or_default()
        .split('/')
        .collect();
    let ok = matches!(
        parts[..],
        ["projects", n, "locations", "global", "workloadIdentityPools", p, "providers", q]
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() && !q.is_empty()
    );
    if ok {
        Ok(())
    } else {
        Err(misconfigured(
            "federated audience must be //iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>",
        ))
    }
}

/// A service-account email; it goes into a URL path, so only the characters
/// an email of a service account can have are allowed.
pub(crate) fn check_service_account(email: &str) -> Result<(), WrapError> {
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && domain.contains('.') && !domain.contains('@')
        })
        && email
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@.-_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(misconfigured(
            "service_account must be a service-account email (name@project.iam.gserviceaccount.com)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_unless_loopback() {
        for ok in [
            "https://cloudkms.googleapis.com",
            "http://127.0.0.1:8080",
            "http://[::1]:9",
            "http://localhost:1",
        ] {
            assert!(checked_url("endpoint", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://kms.internal:80",
            "ftp://127.0.0.1",
            "https://user:pw@kms.example",
            "not a url",
        ] {
            assert!(
                matches!(
                    checked_url("endpoint", bad),
                    Err(WrapError::Misconfigured(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn audience_must_name_a_pool_provider() {
        assert!(
            check_audience(
                "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/kf/providers/broker"
            )
            .is_ok()
        );
        for bad in [
            "https://iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/kf/providers/broker",
            "//iam.googleapis.com/projects/my-project/locations/global/workloadIdentityPools/kf/providers/broker",
            "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/kf",
            "",
        ] {
            assert!(check_audience(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn service_account_cannot_smuggle_a_path() {
        assert!(check_service_account("kms@proj.iam.gserviceaccount.com").is_ok());
        for bad in [
            "kms",
            "a@b/c.d",
            "x@y.z:getIamPolicy",
            "@proj.iam",
            "a@b@c.d",
        ] {
            assert!(check_service_account(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_prints_a_static_token() {
        let creds = GcpCredentials::Static {
            access_token: Zeroizing::new("ya29.secret-token".into()),
        };
        let printed = format!("{creds:?}");
        assert!(!printed.contains("ya29"), "{printed}");
        assert!(printed.contains("redacted"));
    }
}
