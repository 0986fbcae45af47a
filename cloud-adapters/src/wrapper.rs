use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::{KekUri, LocalKek, WrapError};

/// Encrypts and decrypts small secrets (splits, signing keys) with one KEK.
///
/// Implementations hold a client and credentials; callers hold an
/// `Arc<dyn KeyWrapper>` per KEK URI and never see which cloud is behind it.
/// Plaintext comes back in a [`Zeroizing`] buffer so it is wiped when dropped.
#[async_trait]
pub trait KeyWrapper: Send + Sync + std::fmt::Debug {
    /// The KEK this wrapper uses, as configured.
    fn kek_uri(&self) -> &KekUri;

    /// Encrypts `plaintext` under the KEK (empty associated data).
    async fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError>;

    /// Decrypts a ciphertext made by [`KeyWrapper::wrap`] with the same KEK.
    async fn unwrap(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, WrapError>;

    /// Proves the KEK can encrypt now, and nothing more: a coordinator is
    /// granted Encrypt only on a workload cloud's KEK (the workloads hold
    /// Decrypt), so `/readyz` probes those KEKs with this.
    async fn probe_wrap(&self) -> Result<(), WrapError> {
        self.wrap(b"keyferry readiness probe").await.map(|_| ())
    }

    /// Proves the KEK is usable now: a wrap and unwrap of a fixed probe.
    /// `/readyz` calls this for the storage KEK, which the broker must be
    /// able to decrypt with.
    async fn probe(&self) -> Result<(), WrapError> {
        const PROBE: &[u8] = b"keyferry readiness probe";
        let ciphertext = self.wrap(PROBE).await?;
        let plaintext = self.unwrap(&ciphertext).await?;
        if plaintext.as_slice() == PROBE {
            Ok(())
        } else {
            Err(WrapError::InvalidCiphertext)
        }
    }
}

/// What a backend may need besides its URI.
#[derive(Clone, Debug)]
pub struct WrapperContext {
    /// Where local KEK files live (`<data-dir>/keks`).
    pub local_kek_dir: PathBuf,
    /// Whether `local-kek://` may be used at all (dev profile only).
    pub allow_local: bool,
    /// Overrides the KMS endpoint of a cloud KEK (emulators and test doubles).
    pub endpoint: Option<String>,
}

/// Opens the backend for `uri`: the one place a scheme becomes a client.
///
/// Cloud KEKs opened here authenticate with the *ambient* credentials of the
/// environment the process runs in (the SDKs' default chains: an ECS task
/// role, a Cloud Run service account, an Azure managed identity). That is
/// what the storage KEK needs: it protects the broker's own signing keys, so
/// it must open before the broker can mint the token that federation trades.
/// Workload-cloud KEKs are opened with federated credentials by the broker.
pub async fn open_wrapper(
    uri: &KekUri,
    ctx: &WrapperContext,
) -> Result<Arc<dyn KeyWrapper>, WrapError> {
    match uri {
        KekUri::Local { .. } if !ctx.allow_local => Err(WrapError::Misconfigured(
            "local-kek:// is only allowed in the dev profile".into(),
        )),
        KekUri::Local { name } => {
            let kek = LocalKek::open_or_create(&ctx.local_kek_dir, name).await?;
            Ok(Arc::new(kek))
        }
        #[cfg(feature = "aws")]
        KekUri::AwsKms { .. } => {
            use crate::aws::{AwsCredentials, AwsKmsWrapper, AwsSettings};
            let mut settings = AwsSettings::new(AwsCredentials::Ambient);
            settings.endpoint = ctx.endpoint.clone();
            Ok(Arc::new(AwsKmsWrapper::open(uri, settings).await?))
        }
        #[cfg(feature = "gcp")]
        KekUri::GcpKms { .. } => {
            use crate::gcp::{GcpCredentials, GcpKmsWrapper, GcpSettings};
            let mut settings = GcpSettings::new(GcpCredentials::Ambient);
            settings.endpoint = ctx.endpoint.clone();
            Ok(Arc::new(GcpKmsWrapper::new(uri.clone(), settings).await?))
        }
        #[cfg(feature = "azure")]
        KekUri::AzureKeyVault { .. } => {
            use crate::azure::{AzureCredentials, AzureKeyVaultWrapper, AzureSettings};
            let client_id = std::env::var("AZURE_CLIENT_ID").ok();
            let settings = AzureSettings::new(AzureCredentials::ManagedIdentity { client_id });
            Ok(Arc::new(AzureKeyVaultWrapper::new(uri.clone(), settings)?))
        }
        #[allow(unreachable_patterns)] // reachable when a cloud feature is off
        other => Err(WrapError::NotBuiltIn(other.scheme().as_str())),
    }
}
