//! The one credential factory: a KEK URI plus how to authenticate becomes a
//! [`KeyWrapper`]. The broker (federated credentials for workload clouds,
//! ambient ones for its storage KEK) and the workload (ambient credentials,
//! static ones in development) both open KEKs here, so the per-cloud choice
//! of client and credentials is written once.

use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::{IdentityTokenSource, KekUri, KeyWrapper, LocalKek, WrapError};

/// How a KEK's client proves who it is.
#[derive(Clone)]
pub enum KmsCredentials {
    /// The environment's default chain: an instance or task role, a service
    /// account, a managed identity (Azure: `AZURE_CLIENT_ID` names a
    /// user-assigned one).
    Ambient,
    /// Development only: an AWS access key.
    AwsAccessKey {
        /// `AKIA…`.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: Zeroizing<String>,
    },
    /// Development only: a bearer token for Cloud KMS or Key Vault.
    BearerToken(Zeroizing<String>),
    /// Development only: no credentials (a Cloud KMS test double).
    Anonymous,
    /// The broker's own identity token, traded at the KEK's cloud.
    Federated {
        /// Mints the broker's token.
        identity: Arc<dyn IdentityTokenSource>,
        /// What the cloud's STS needs.
        federation: Federation,
    },
}

impl std::fmt::Debug for KmsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KmsCredentials::Ambient => "Ambient",
            KmsCredentials::AwsAccessKey { .. } => "AwsAccessKey",
            KmsCredentials::BearerToken(_) => "BearerToken",
            KmsCredentials::Anonymous => "Anonymous",
            KmsCredentials::Federated { .. } => "Federated",
        })
    }
}

/// Per cloud, where the broker's token is traded and for what.
#[derive(Clone, Debug)]
pub enum Federation {
    /// STS `AssumeRoleWithWebIdentity` for `role_arn`.
    Aws {
        /// The role whose trust policy names the broker's issuer.
        role_arn: String,
        /// STS endpoint override (emulators).
        sts_endpoint: Option<String>,
    },
    /// STS token exchange at a workload identity provider, then
    /// service-account impersonation.
    Gcp {
        /// `//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`.
        workload_identity_provider: String,
        /// The service account (email) to impersonate.
        service_account: String,
        /// STS URL override (test doubles).
        sts_url: Option<String>,
        /// IAM Credentials URL override (test doubles).
        iam_credentials_url: Option<String>,
    },
    /// Entra ID client assertion for an app registration.
    Azure {
        /// The tenant.
        tenant_id: String,
        /// The app registration's client id.
        client_id: String,
        /// Authority override (test doubles).
        authority_host: Option<String>,
    },
}

/// Everything else a KEK may need besides its URI and credentials.
#[derive(Clone, Debug, Default)]
pub struct KekOptions {
    /// KMS endpoint override (emulators and test doubles; AWS and GCP).
    pub endpoint: Option<String>,
    /// A PEM CA the Key Vault's TLS chains to (test doubles).
    pub ca_certificate_pem: Option<Vec<u8>>,
    /// Where local KEK files live.
    pub local_kek_dir: PathBuf,
    /// Whether `local-kek://` may be used at all (dev profile only).
    pub allow_local: bool,
}

// Without a cloud feature (the onboarding crate's build) only local KEKs open.
#[cfg_attr(
    not(any(feature = "aws", feature = "gcp", feature = "azure")),
    allow(dead_code)
)]
fn unfit(uri: &KekUri, credentials: &KmsCredentials) -> WrapError {
    WrapError::Misconfigured(format!(
        "{credentials:?} credentials do not fit a {} KEK",
        uri.scheme().as_str()
    ))
}

/// Opens the backend for `uri` with `credentials`: the one place a scheme
/// and a credential kind become a client.
#[cfg_attr(
    not(any(feature = "aws", feature = "gcp", feature = "azure")),
    allow(unused_variables)
)]
pub async fn open_kek(
    uri: &KekUri,
    credentials: KmsCredentials,
    options: &KekOptions,
) -> Result<Arc<dyn KeyWrapper>, WrapError> {
    match uri {
        KekUri::Local { .. } if !options.allow_local => Err(WrapError::Misconfigured(
            "local-kek:// is only allowed in the dev profile".into(),
        )),
        KekUri::Local { name } => Ok(Arc::new(
            LocalKek::open_or_create(&options.local_kek_dir, name).await?,
        )),
        #[cfg(feature = "aws")]
        KekUri::AwsKms { .. } => {
            use crate::aws::{AwsCredentials, AwsKmsWrapper, AwsSettings};
            let aws = match credentials {
                KmsCredentials::Ambient => AwsCredentials::Ambient,
                KmsCredentials::AwsAccessKey {
                    access_key_id,
                    secret_access_key,
                } => AwsCredentials::Static {
                    access_key_id,
                    secret_access_key: secret_access_key.to_string(),
                },
                KmsCredentials::Federated {
                    identity,
                    federation:
                        Federation::Aws {
                            role_arn,
                            sts_endpoint,
                        },
                } => AwsCredentials::WebIdentity {
                    role_arn,
                    session_name: "keyferry".into(),
                    sts_endpoint,
                    identity,
                    audience: "sts.amazonaws.com".into(),
                },
                other => return Err(unfit(uri, &other)),
            };
            let ambient = matches!(aws, AwsCredentials::Ambient);
            let mut settings = AwsSettings::new(aws);
            settings.endpoint = options.endpoint.clone();
            // The ambient chain is resolved once, at open; the others need no I/O.
            if ambient {
                Ok(Arc::new(AwsKmsWrapper::open(uri, settings).await?))
            } else {
                Ok(Arc::new(AwsKmsWrapper::new(uri, settings)?))
            }
        }
        #[cfg(feature = "gcp")]
        KekUri::GcpKms { .. } => {
            use crate::gcp::{GcpCredentials, GcpKmsWrapper, GcpSettings};
            let gcp = match credentials {
                KmsCredentials::Ambient => GcpCredentials::Ambient,
                KmsCredentials::BearerToken(access_token) => {
                    GcpCredentials::Static { access_token }
                }
                KmsCredentials::Anonymous => GcpCredentials::Anonymous,
                KmsCredentials::Federated {
                    identity,
                    federation:
                        Federation::Gcp {
                            workload_identity_provider,
                            service_account,
                            sts_url,
                            iam_credentials_url,
                        },
                } => {
                    let mut federated = GcpCredentials::federated(
                        identity,
                        workload_identity_provider,
                        service_account,
                    );
                    if let GcpCredentials::Federated {
                        sts_url: sts,
                        iam_credentials_url: iam,
                        ..
                    } = &mut federated
                    {
                        if let Some(url) = sts_url {
                            *sts = url;
                        }
                        if let Some(url) = iam_credentials_url {
                            *iam = url;
                        }
                    }
                    federated
                }
                other => return Err(unfit(uri, &other)),
            };
            let mut settings = GcpSettings::new(gcp);
            settings.endpoint = options.endpoint.clone();
            Ok(Arc::new(GcpKmsWrapper::new(uri.clone(), settings).await?))
        }
        #[cfg(feature = "azure")]
        KekUri::AzureKeyVault { .. } => {
            use crate::azure::{AzureCredentials, AzureKeyVaultWrapper, AzureSettings};
            let azure = match credentials {
                KmsCredentials::Ambient => AzureCredentials::ManagedIdentity {
                    client_id: std::env::var("AZURE_CLIENT_ID").ok(),
                },
                KmsCredentials::BearerToken(access_token) => {
                    AzureCredentials::Static { access_token }
                }
                KmsCredentials::Federated {
                    identity,
                    federation:
                        Federation::Azure {
                            tenant_id,
                            client_id,
                            authority_host,
                        },
                } => {
                    let mut federated = AzureCredentials::federated(identity, tenant_id, client_id);
                    if let (
                        AzureCredentials::Federated {
                            authority_host: a, ..
                        },
                        Some(host),
                    ) = (&mut federated, authority_host)
                    {
                        *a = host;
                    }
                    federated
                }
                other => return Err(unfit(uri, &other)),
            };
            let mut settings = AzureSettings::new(azure);
            settings.ca_certificate_pem = options.ca_certificate_pem.clone();
            Ok(Arc::new(AzureKeyVaultWrapper::new(uri.clone(), settings)?))
        }
        #[allow(unreachable_patterns)] // reachable when a cloud feature is off
        other => Err(WrapError::NotBuiltIn(other.scheme().as_str())),
    }
}
