use thiserror::Error;

/// Why a wrap or unwrap failed.
///
/// The variants are the distinctions a caller acts on: retry later
/// (`Unavailable`), fix IAM (`PermissionDenied`), fix configuration
/// (`KeyNotFound`, `InvalidUri`, `Misconfigured`, `NotBuiltIn`), or treat the
/// stored data as corrupt or forged (`InvalidCiphertext`). No variant carries
/// plaintext or key bytes.
#[derive(Debug, Error)]
pub enum WrapError {
    /// The KEK URI does not parse; the message names the part that is wrong.
    #[error("invalid KEK URI: {0}")]
    InvalidUri(String),
    /// A scheme this build has no backend for yet.
    #[error("KEK scheme `{0}` is not built into this binary")]
    NotBuiltIn(&'static str),
    /// The configuration forbids this backend (e.g. a local KEK outside the
    /// dev profile) or a key file is unsafe to use.
    #[error("KEK misconfigured: {0}")]
    Misconfigured(String),
    /// The KMS says the key does not exist (or is disabled).
    #[error("KEK not found: {0}")]
    KeyNotFound(String),
    /// The KMS refused the caller's credentials for this key.
    #[error("permission denied on KEK: {0}")]
    PermissionDenied(String),
    /// The KMS could not be reached or answered with a transient error.
    #[error("KEK unavailable: {0}")]
    Unavailable(String),
    /// The ciphertext was not produced by this KEK, or was altered.
    #[error("ciphertext is invalid for this KEK")]
    InvalidCiphertext,
}
