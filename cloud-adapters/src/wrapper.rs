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

    /// Proves the KEK is usable now: a wrap and unwrap of a fixed probe.
    /// `/readyz` calls this, so backends with per-call cost may override it.
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
}

/// Opens the backend for `uri`: the one place a scheme becomes a client.
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
        other => Err(WrapError::NotBuiltIn(other.scheme().as_str())),
    }
}
