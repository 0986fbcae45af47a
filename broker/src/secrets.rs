//! Coordinator secrets at rest: generated once, stored wrapped by the
//! storage KEK, shared by every replica.

use std::sync::Arc;

use cloud_adapters::KeyWrapper;
use zeroize::Zeroizing;

use crate::storage::{Store, StoreError, StoredSplit};

/// Why a secret could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The storage KEK failed.
    #[error("storage KEK: {0}")]
    Kek(#[from] cloud_adapters::WrapError),
    /// Generating the secret failed.
    #[error("cannot generate secret `{0}`")]
    Generate(String),
}

/// Reads a wrapped secret, creating it on first use. Replicas racing on the
/// first start converge on one value: the insert is conditional and the
/// value is re-read.
pub async fn secret_or_create<E>(
    store: &Store,
    kek: &Arc<dyn KeyWrapper>,
    name: &str,
    now_ms: i64,
    create: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, E>,
) -> Result<Zeroizing<Vec<u8>>, E>
where
    E: From<StoreError> + From<cloud_adapters::WrapError>,
{
    if store.wrapped_secret(name).await?.is_none() {
        let fresh = create()?;
        let wrapped = StoredSplit {
            kek_uri: kek.kek_uri().to_string(),
            ciphertext: kek.wrap(&fresh).await?,
        };
        store
            .insert_wrapped_secret_if_absent(name, &wrapped, now_ms)
            .await?;
    }
    let stored = store
        .wrapped_secret(name)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("secret `{name}` vanished")))?;
    Ok(kek.unwrap(&stored.ciphertext).await?)
}
