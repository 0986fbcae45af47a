use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::IdentityTokenSource;

/// How an [`AwsKmsWrapper`](crate::aws::AwsKmsWrapper) reaches KMS.
///
/// The region is not here: it comes from the key ARN, because a KMS key can
/// only be used through its own region's endpoint.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// Overrides the KMS endpoint, for emulators (`http://127.0.0.1:PORT`).
    /// `None` uses the regional AWS endpoint.
    pub endpoint: Option<String>,
    /// Where KMS credentials come from.
    pub credentials: AwsCredentials,
    /// Bound on each attempt (connect, send, and read the answer). The whole
    /// call can take up to `max_attempts` times this, plus backoff.
    pub timeout: Duration,
    /// Attempts per call, the first included (1 disables retries). Only
    /// throttling, 5xx, timeouts and connection errors are retried.
    pub max_attempts: u32,
    /// Base of the exponential backoff between attempts; each wait is drawn
    /// at random from `[0, initial_backoff * 2^n]` (full jitter), capped at
    /// 20 s. The SDK's default of 1 s suits KMS throttling; tests shorten it.
    pub initial_backoff: Duration,
}

impl AwsSettings {
    /// Settings with the defaults: AWS endpoint, 10 s per attempt, 4
    /// attempts, 1 s backoff base.
    pub fn new(credentials: AwsCredentials) -> Self {
        Self {
            endpoint: None,
            credentials,
            timeout: Duration::from_secs(10),
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
        }
    }
}

/// The credentials used to call KMS.
#[derive(Clone)]
pub enum AwsCredentials {
    /// A fixed access key. Development only: the broker refuses it outside
    /// the dev profile (this crate cannot know the profile, so it does not
    /// check).
    Static {
        /// The access key id (`AKIA…`); not secret, shown in `Debug`.
        access_key_id: String,
        /// The secret access key; never shown in `Debug`.
        secret_access_key: String,
    },
    /// Outbound federation: a token from the broker's own issuer, traded at
    /// STS `AssumeRoleWithWebIdentity` for short-lived role credentials.
    WebIdentity {
        /// The role to assume; its trust policy names the broker's issuer.
        role_arn: String,
        /// `RoleSessionName`, which CloudTrail records (2-64 characters).
        session_name: String,
        /// Overrides the STS endpoint, for emulators. `None` uses the
        /// regional STS endpoint of the key's region.
        sts_endpoint: Option<String>,
        /// Mints the broker's token.
        identity: Arc<dyn IdentityTokenSource>,
        /// The `aud` the role's trust policy expects, e.g. `sts.amazonaws.com`.
        audience: String,
    },
    /// The credentials of the environment the broker runs in, found by the
    /// SDK's default chain (environment variables, a web identity token
    /// file, the ECS task role, EC2 instance metadata). Used for the storage
    /// KEK, which must be opened before the broker's own issuer exists and
    /// so cannot be reached by federation.
    Ambient,
}

// Hand-written so that the secret key can never reach a log line.
impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsCredentials::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"** redacted **")
                .finish(),
            AwsCredentials::WebIdentity {
                role_arn,
                session_name,
                sts_endpoint,
                identity,
                audience,
            } => f
                .debug_struct("WebIdentity")
                .field("role_arn", role_arn)
                .field("session_name", session_name)
                .field("sts_endpoint", sts_endpoint)
                .field("identity", identity)
                .field("audience", audience)
                .finish(),
            AwsCredentials::Ambient => f.write_str("Ambient"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_access_key_id_but_never_the_secret() {
        let creds = AwsCredentials::Static {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        };
        let settings = format!("{:?}", AwsSettings::new(creds));
        assert!(settings.contains("AKIDEXAMPLE"), "{settings}");
        assert!(!settings.contains("wJalrXUtnFEMI"), "{settings}");
    }

    #[test]
    fn defaults_are_ten_seconds_and_four_attempts() {
        let s = AwsSettings::new(AwsCredentials::Static {
            access_key_id: "a".into(),
            secret_access_key: "b".into(),
        });
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.max_attempts, 4);
        assert_eq!(s.endpoint, None);
    }
}
