//! Azure Key Vault as a Keyferry key-encryption key (DESIGN §5.1): splits are
//! wrapped with `RSA-OAEP-256` under a vault key named by an
//! `azure-kv://<vault-host>/keys/<name>[/<version>]` URI, through Microsoft's
//! own `azure_security_keyvault_keys` client.
//!
//! # Layout
//! - `settings`: [`AzureSettings`] and [`AzureCredentials`], what the broker
//!   configures: a static token (dev only) or outbound federation, timeouts,
//!   retries, and a test CA.
//! - `credential`: the two `TokenCredential`s behind those settings: a static
//!   bearer token, and an Entra ID client-assertion credential whose assertion
//!   is a token from the broker's own [`IdentityTokenSource`].
//! - `wrapper`: [`AzureKeyVaultWrapper`], the [`KeyWrapper`] itself, and
//!   [`Wrapped`], a ciphertext with the key id (`kid`) that made it.
//! - `classify`: turns `azure_core` errors into the [`WrapError`] a caller
//!   acts on (retry, fix IAM, fix configuration, corrupt data).
//! - `test_double` (feature `test-double`): a TLS test double of the Key
//!   Vault keys REST API and the Entra ID token endpoint, for this crate's
//!   tests and the broker's.
//!
//! Ciphertexts are the vault's plain RSA-OAEP-256 output, with no framing:
//! what Tink's KMS envelope and a workload's own Azure tooling expect.
//!
//! [`IdentityTokenSource`]: crate::IdentityTokenSource
//! [`KeyWrapper`]: crate::KeyWrapper
//! [`WrapError`]: crate::WrapError

mod classify;
mod credential;
mod settings;
mod wrapper;

#[cfg(feature = "test-double")]
pub mod test_double;

pub use settings::{
    AzureCredentials, AzureSettings, DEFAULT_ASSERTION_AUDIENCE, DEFAULT_AUTHORITY_HOST,
};
pub use wrapper::{AzureKeyVaultWrapper, Wrapped};
