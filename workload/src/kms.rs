//! Unwrapping `cloud-kms` splits with the workload cloud's KMS, through cloud-adapters.
//!
//! Production uses the workload's *ambient* credentials (`open_wrapper`: the instance's
//! role, service account or managed identity), because the KMS key's IAM is where the ad
//! tech says which workloads may decrypt. The dev profile may override the endpoint and use
//! static credentials (emulators, test doubles) and `local-kek://` KEKs.
//!
//! A KEK URI comes from a coordinator's answer, so it is checked against the configured
//! cloud before any client is built: a coordinator cannot make the workload call another
//! cloud's KMS with its ambient credentials.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use cloud_adapters::{KekOptions, KekUri, KeyWrapper, KmsCredentials, WrapError, open_kek};
use zeroize::Zeroizing;

use crate::WorkloadError;
use crate::config::{Cloud, Config, KmsOverrides, StaticKmsCredentials};
use crate::error::{KeyProblem, Role};

/// Where local KEKs live by default, as the broker's default data dir has them.
const DEFAULT_LOCAL_KEK_DIR: &str = "keyferry-data/keks";

/// Opens KEKs on first use and keeps the clients (connection pools, credential caches) for
/// later refreshes.
#[derive(Debug)]
pub(crate) struct Unwrapper {
    cloud: Cloud,
    dev: bool,
    kms: KmsOverrides,
    wrappers: tokio::sync::Mutex<HashMap<KekUri, Arc<dyn KeyWrapper>>>,
}

impl Unwrapper {
    pub(crate) fn new(config: &Config) -> Self {
        let kms = match &config.kms {
            Some(k) => KmsOverrides {
                endpoint: k.endpoint.clone(),
                local_kek_dir: k.local_kek_dir.clone(),
                credentials: k.credentials.clone(),
            },
            None => KmsOverrides::default(),
        };
        Self {
            cloud: config.cloud,
            dev: config.is_dev(),
            kms,
            wrappers: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Decrypts `ciphertext` (a split) with the KEK `kek` named by `role`'s entry of key
    /// `key_id`.
    pub(crate) async fn unwrap(
        &self,
        key_id: &str,
        role: Role,
        kek: &str,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, WorkloadError> {
        let refuse = |source: WrapError| {
            WorkloadError::key(
                key_id,
                KeyProblem::Unwrap {
                    role,
                    kek: kek.to_owned(),
                    source,
                },
            )
        };
        let uri: KekUri = kek.parse().map_err(refuse)?;
        let fits = match uri.cloud() {
            None => self.dev,
            Some(cloud) => cloud == self.cloud,
        };
        if !fits {
            return Err(WorkloadError::key(
                key_id,
                KeyProblem::KekNotOfThisCloud {
                    kek: kek.to_owned(),
                    cloud: self.cloud.as_str(),
                },
            ));
        }
        let wrapper = self.wrapper(&uri).await.map_err(refuse)?;
        wrapper.unwrap(ciphertext).await.map_err(refuse)
    }

    async fn wrapper(&self, uri: &KekUri) -> Result<Arc<dyn KeyWrapper>, WrapError> {
        // Held across the open so two keys under one new KEK build one client, not two.
        let mut wrappers = self.wrappers.lock().await;
        if let Some(w) = wrappers.get(uri) {
            return Ok(Arc::clone(w));
        }
        let wrapper = self.open(uri).await?;
        wrappers.insert(uri.clone(), Arc::clone(&wrapper));
        Ok(wrapper)
    }

    async fn open(&self, uri: &KekUri) -> Result<Arc<dyn KeyWrapper>, WrapError> {
        // A GCP token must not be sent to Key Vault, nor an Azure one to Cloud KMS.
        let fits = matches!(
            (&self.kms.credentials, uri.cloud()),
            (None, _)
                | (_, None)
                | (
                    Some(StaticKmsCredentials::AwsStatic { .. }),
                    Some(Cloud::Aws)
                )
                | (
                    Some(
                        StaticKmsCredentials::GcpStatic { .. } | StaticKmsCredentials::GcpAnonymous
                    ),
                    Some(Cloud::Gcp)
                )
                | (
                    Some(StaticKmsCredentials::AzureStatic { .. }),
                    Some(Cloud::Azure)
                )
        );
        if !fits {
            return Err(WrapError::Misconfigured(format!(
                "kms.credentials do not fit a {} KEK",
                uri.scheme().as_str()
            )));
        }
        let credentials = match &self.kms.credentials {
            None => KmsCredentials::Ambient,
            Some(StaticKmsCredentials::AwsStatic {
                access_key_id,
                secret_access_key,
            }) => KmsCredentials::AwsAccessKey {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key.expose().clone(),
            },
            Some(StaticKmsCredentials::GcpStatic { access_token })
            | Some(StaticKmsCredentials::AzureStatic { access_token, .. }) => {
                KmsCredentials::BearerToken(access_token.expose().clone())
            }
            Some(StaticKmsCredentials::GcpAnonymous) => KmsCredentials::Anonymous,
        };
        let ca_certificate_pem = match &self.kms.credentials {
            Some(StaticKmsCredentials::AzureStatic {
                ca_file: Some(path),
                ..
            }) => Some(tokio::fs::read(path).await.map_err(|e| {
                WrapError::Misconfigured(format!("cannot read {}: {e}", path.display()))
            })?),
            _ => None,
        };
        let options = KekOptions {
            endpoint: self.kms.endpoint.clone(),
            ca_certificate_pem,
            local_kek_dir: self
                .kms
                .local_kek_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCAL_KEK_DIR)),
            allow_local: self.dev,
        };
        open_kek(uri, credentials, &options).await
    }
}
