//! Key wrapping for Keyferry: every split and every broker secret at rest is
//! encrypted by a key-encryption key (KEK) that lives in a KMS, never on the
//! coordinator's disk (the dev-only local KEK is the one exception).
//!
//! # Layout
//! - `kek_uri`: the KEK URI schemes of DESIGN §5.1 (`aws-kms://`, `gcp-kms://`,
//!   `azure-kv://`, `local-kek://`), parsed into a [`KekUri`] once at the edge.
//! - `kek_uri` also holds [`Cloud`], the one list of workload clouds.
//! - `wrapper`: the [`KeyWrapper`] trait every backend implements, and
//!   [`open_wrapper`] (ambient credentials).
//! - `open`: [`open_kek`], the one factory that turns a URI and
//!   [`KmsCredentials`] into a backend.
//! - `local`: [`LocalKek`], AES-256-GCM with a key file under the data dir.
//! - `aws` (feature `aws`): AWS KMS with STS web-identity federation.
//! - `azure` (feature `azure`): Azure Key Vault with Entra ID client assertions;
//!   its TLS test double behind `test-double`.
//! - `gcp` (feature `gcp`): Google Cloud KMS with STS token exchange and
//!   service-account impersonation; its REST test double behind `test-double`.
//! - `identity`: [`IdentityTokenSource`], the broker's own token that cloud
//!   adapters trade at their cloud's STS for KMS credentials.
//! - `error`: [`WrapError`], the one error type of this crate.
//!
//! Ciphertexts are opaque bytes to callers. For the cloud KMSs they are the
//! plain KMS ciphertext with empty associated data, which is what Tink's KMS
//! envelope expects, so a workload can unwrap with stock tooling.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "azure")]
pub mod azure;
mod error;
#[cfg(feature = "gcp")]
pub mod gcp;
mod identity;
mod kek_uri;
mod local;
mod open;
mod wrapper;

pub use error::WrapError;
pub use identity::IdentityTokenSource;
pub use kek_uri::{Cloud, KekScheme, KekUri};
pub use local::LocalKek;
pub use open::{Federation, KekOptions, KmsCredentials, open_kek};
pub use wrapper::{KeyWrapper, WrapperContext, open_wrapper};
