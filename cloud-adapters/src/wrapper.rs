use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::open::{KekOptions, KmsCredentials, open_kek};
use crate::{KekUri, WrapError};

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
    let options = KekOptions {
        endpoint: ctx.endpoint.clone(),
        ca_certificate_pem: None,
        local_kek_dir: ctx.local_kek_dir.clone(),
        allow_local: ctx.allow_local,
    };
    open_kek(uri, KmsCredentials::Ambient, &options).await
}
