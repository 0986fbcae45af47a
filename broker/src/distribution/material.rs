//! The one way this coordinator's split material leaves it (DESIGN §5.2,
//! §5.3).
//!
//! A key document carries this coordinator's split only as an
//! [`OwnMaterial`], and an `OwnMaterial` is made only by [`SplitMaterial`],
//! from one of two proofs:
//! - [`Unattested`], which only [`Unattested::check`] makes, and only for a
//!   use case that does not require attestation: the `GET` endpoints;
//! - `&VerifiedEvidence`, which only the `attestation` crate makes, from a
//!   report verified with its `report_data` bound to a fresh nonce and a TEE
//!   key and then accepted by the release policy: attested release. The
//!   material is sealed to *that* TEE key, never to one named elsewhere.
//!
//! So a handler that forgets a check does not compile. From outside the
//! crate, neither proof can be made by hand:
//!
//! ```compile_fail
//! let proof = keyferry::distribution::Unattested { use_case: "any".into() };
//! ```
//!
//! and an inspected report (whose binding may be unchecked) is no evidence:
//!
//! ```compile_fail
//! # use keyferry::distribution::{KeyAccess, SplitMaterial};
//! # async fn f(m: &SplitMaterial, grant: &KeyAccess, key: &keyferry::storage::KeyRecord,
//! #            inspected: &attestation::InspectedReport) {
//! let material = m.sealed(grant, key, inspected).await; // expected `&VerifiedEvidence`
//! # }
//! ```
//!
//! while the paths through the checks compile:
//!
//! ```
//! # use keyferry::distribution::{KeyAccess, KeyApiError, OwnMaterial, SplitMaterial, Unattested};
//! # async fn f(m: &SplitMaterial, grant: &KeyAccess, key: &keyferry::storage::KeyRecord,
//! #            evidence: &attestation::VerifiedEvidence) -> Result<(), KeyApiError> {
//! let proof = Unattested::check(grant)?;
//! let wrapped: OwnMaterial = m.wrapped(grant, key, &proof).await?;
//! let sealed: OwnMaterial = m.sealed(grant, key, evidence).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use attestation::VerifiedEvidence;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::KeyWrapper;
use zeroize::Zeroizing;

use wire::KeyData;

use super::{KeyAccess, KeyApiError};
use crate::config::UnwrapMode;
use crate::storage::{KeyRecord, Store};

/// Proof that a use case releases keys without attestation. Only
/// [`Unattested::check`] makes one.
#[derive(Debug)]
pub struct Unattested {
    use_case: String,
}

impl Unattested {
    /// The proof for `grant`'s use case, or 403 `ATTESTATION_REQUIRED` when
    /// that use case releases keys only through attested release.
    pub fn check(grant: &KeyAccess) -> Result<Unattested, KeyApiError> {
        if grant.use_case.require_attestation {
            Err(KeyApiError::AttestationRequired(
                grant.use_case.name.clone(),
            ))
        } else {
            Ok(Unattested {
                use_case: grant.use_case.name.clone(),
            })
        }
    }
}

/// This coordinator's material for one key, as it goes into a key document.
/// Only [`SplitMaterial`] makes one.
#[derive(Debug)]
pub struct OwnMaterial(Own);

#[derive(Debug)]
enum Own {
    /// The KMS ciphertext, in the clear (`GET` endpoints).
    Wrapped {
        kek_uri: String,
        ciphertext: Vec<u8>,
    },
    /// The HPKE-sealed material of an attested release; `content` is
    /// `cloud-kms` or `broker`.
    Sealed {
        kek_uri: String,
        sealed: Vec<u8>,
        content: &'static str,
    },
}

impl OwnMaterial {
    /// This coordinator's `keyData` entry, with its public key signature.
    pub(super) fn into_key_data(self, public_key_signature: String) -> KeyData {
        match self.0 {
            Own::Wrapped {
                kek_uri,
                ciphertext,
            } => KeyData {
                public_key_signature,
                key_encryption_key_uri: kek_uri,
                key_material: B64.encode(ciphertext),
                sealed_key_material: None,
                sealed_content: None,
            },
            Own::Sealed {
                kek_uri,
                sealed,
                content,
            } => KeyData {
                public_key_signature,
                key_encryption_key_uri: kek_uri,
                key_material: String::new(),
                sealed_key_material: Some(B64.encode(sealed)),
                sealed_content: Some(content.to_owned()),
            },
        }
    }
}

/// Reads this coordinator's splits for release: the stored KMS ciphertexts,
/// and the storage KEK for clouds whose workloads get the plaintext split.
pub struct SplitMaterial {
    store: Store,
    storage_kek: Arc<dyn KeyWrapper>,
}

impl std::fmt::Debug for SplitMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitMaterial").finish_non_exhaustive()
    }
}

impl SplitMaterial {
    pub(super) fn new(store: Store, storage_kek: Arc<dyn KeyWrapper>) -> Self {
        SplitMaterial { store, storage_kek }
    }

    /// The split of `key` wrapped by the grant's cloud KEK, for a use case
    /// that `proof` shows needs no attestation.
    pub async fn wrapped(
        &self,
        grant: &KeyAccess,
        key: &KeyRecord,
        proof: &Unattested,
    ) -> Result<OwnMaterial, KeyApiError> {
        same_use_case(grant, key, &proof.use_case)?;
        let ciphertext = self.cloud_split(grant, &key.id).await?;
        Ok(OwnMaterial(Own::Wrapped {
            kek_uri: grant.kek_uri(),
            ciphertext,
        }))
    }

    /// The split of `key`, in the form the cloud's `unwrap` mode says, sealed
    /// to the TEE key `evidence` bound (HPKE base mode, info
    /// `keyferry/v1/sealed-split`, aad = the key id).
    pub async fn sealed(
        &self,
        grant: &KeyAccess,
        key: &KeyRecord,
        evidence: &VerifiedEvidence,
    ) -> Result<OwnMaterial, KeyApiError> {
        same_use_case(grant, key, &grant.use_case.name)?;
        let (content, plaintext): (&'static str, Zeroizing<Vec<u8>>) = match grant.unwrap {
            UnwrapMode::CloudKms => (
                "cloud-kms",
                Zeroizing::new(self.cloud_split(grant, &key.id).await?),
            ),
            UnwrapMode::Broker => ("broker", self.storage_split(&key.id).await?),
        };
        let sealed = keys::seal(
            evidence.tee_public_key(),
            keys::RELEASE_INFO,
            key.id.as_bytes(),
            &plaintext,
        )
        .map_err(|e| KeyApiError::Unavailable(format!("sealing: {e}")))?;
        Ok(OwnMaterial(Own::Sealed {
            kek_uri: grant.kek_uri(),
            sealed,
            content,
        }))
    }

    /// This coordinator's split of `key_id`, wrapped by the grant's cloud KEK.
    async fn cloud_split(&self, grant: &KeyAccess, key_id: &str) -> Result<Vec<u8>, KeyApiError> {
        let kek_uri = grant.kek_uri();
        self.store
            .splits(key_id)
            .await?
            .into_iter()
            .find(|s| s.kek_uri == kek_uri)
            .map(|s| s.ciphertext)
            .ok_or_else(|| {
                KeyApiError::Unavailable(format!(
                    "key `{key_id}` has no split for {} yet (re-wrap pending)",
                    grant.cloud
                ))
            })
    }

    /// This coordinator's plaintext split of `key_id`, unwrapped from the
    /// storage KEK.
    async fn storage_split(&self, key_id: &str) -> Result<Zeroizing<Vec<u8>>, KeyApiError> {
        let storage_uri = self.storage_kek.kek_uri().to_string();
        let stored = self
            .store
            .splits(key_id)
            .await?
            .into_iter()
            .find(|s| s.kek_uri == storage_uri)
            .ok_or_else(|| {
                KeyApiError::Unavailable(format!("key `{key_id}` has no storage split"))
            })?;
        self.storage_kek
            .unwrap(&stored.ciphertext)
            .await
            .map_err(|e| KeyApiError::Unavailable(format!("storage KEK: {e}")))
    }
}

/// A proof and a grant are for one use case; the key must be of it.
fn same_use_case(grant: &KeyAccess, key: &KeyRecord, proven: &str) -> Result<(), KeyApiError> {
    if key.use_case == grant.use_case.name && proven == grant.use_case.name {
        Ok(())
    } else {
        Err(KeyApiError::PermissionDenied(format!(
            "key `{}` is not of use case `{}`",
            key.id, grant.use_case.name
        )))
    }
}
