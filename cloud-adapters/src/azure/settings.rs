use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::IdentityTokenSource;
use zeroize::Zeroizing;

/// Entra ID's public-cloud authority, where client assertions are traded.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// The audience Entra ID requires in a federated client assertion
/// (the value a federated identity credential is created with).
pub const DEFAULT_ASSERTION_AUDIENCE: &str = "api://AzureADTokenExchange";

/// How the wrapper obtains the bearer token Key Vault asks for.
#[derive(Clone)]
pub enum AzureCredentials {
    /// A fixed access token for `https://vault.azure.net`: development only,
    /// since such a token expires within hours and cannot be refreshed here.
    Static {
        /// The bearer token sent to the vault.
        access_token: Zeroizing<String>,
    },
    /// Outbound federation: the broker's own identity token is the client
    /// assertion of an Entra ID app registration (a federated identity
    /// credential trusts the broker's issuer and subject), traded at
    /// `{authority_host}/{tenant_id}/oauth2/v2.0/token` for a vault token.
    Federated {
        /// Mints the broker's JWT for `audience`.
        identity: Arc<dyn IdentityTokenSource>,
        /// The Entra tenant (directory) that holds the app registration.
        tenant_id: String,
        /// The app registration's client (application) id.
        client_id: String,
        /// The Entra authority, `https://…` (see [`DEFAULT_AUTHORITY_HOST`]).
        authority_host: String,
        /// The `aud` of the assertion (see [`DEFAULT_ASSERTION_AUDIENCE`]).
        audience: String,
    },
    /// The managed identity of the environment the broker runs in (system
    /// assigned, or the user-assigned identity with this client id). Used
    /// for the storage KEK, which is opened before the broker's own issuer
    /// exists and so cannot be reached by federation.
    ManagedIdentity {
        /// A user-assigned identity's client id; `None` for system assigned.
        client_id: Option<String>,
    },
}

impl AzureCredentials {
    /// Federation with the public cloud's authority and audience.
    pub fn federated(
        identity: Arc<dyn IdentityTokenSource>,
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        AzureCredentials::Federated {
            identity,
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            authority_host: DEFAULT_AUTHORITY_HOST.to_owned(),
            audience: DEFAULT_ASSERTION_AUDIENCE.to_owned(),
        }
    }
}

// Hand-written so that a static token never reaches a log line or a panic
// message through `{:?}` of the settings.
impl fmt::Debug for AzureCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AzureCredentials::Static { .. } => f
                .debug_struct("Static")
                .field("access_token", &"<redacted>")
                .finish(),
            AzureCredentials::Federated {
                identity,
                tenant_id,
                client_id,
                authority_host,
                audience,
            } => f
                .debug_struct("Federated")
                .field("identity", identity)
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("authority_host", authority_host)
                .field("audience", audience)
                .finish(),
            AzureCredentials::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .finish(),
        }
    }
}

/// Everything an [`AzureKeyVaultWrapper`](crate::azure::AzureKeyVaultWrapper) needs
/// besides its KEK URI.
#[derive(Clone)]
pub struct AzureSettings {
    /// How to authenticate to the vault.
    pub credentials: AzureCredentials,
    /// Bound on each HTTP attempt (connect and response), to the vault and
    /// to the token endpoint alike.
    pub timeout: Duration,
    /// Attempts per operation, the first included (at least 1). Throttling
    /// (429), 408, 500/502/503/504 and connection failures are retried;
    /// other answers are final.
    pub max_attempts: u32,
    /// Backoff base: retry `n` waits `backoff_base × 2ⁿ` plus up to 256 ms of
    /// random jitter (azure_core's exponential policy), or longer when the
    /// vault sends `Retry-After`.
    pub backoff_base: Duration,
    /// Test doubles only: trust exactly this CA (PEM) instead of the
    /// platform's roots.
    pub ca_certificate_pem: Option<Vec<u8>>,
}

impl AzureSettings {
    /// Defaults: 10 s per attempt, 4 attempts, 100 ms backoff base, the
    /// platform's trust roots.
    pub fn new(credentials: AzureCredentials) -> Self {
        AzureSettings {
            credentials,
            timeout: Duration::from_secs(10),
            max_attempts: 4,
            backoff_base: Duration::from_millis(100),
            ca_certificate_pem: None,
        }
    }
}

impl fmt::Debug for AzureSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureSettings")
            .field("credentials", &self.credentials)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field(
                "ca_certificate_pem",
                &self.ca_certificate_pem.as_ref().map(|_| "<test CA>"),
            )
            .finish()
    }
}
