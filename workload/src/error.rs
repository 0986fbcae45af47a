//! The crate's one error type.
//!
//! Every variant names *where* a fetch failed (which coordinator, which step, which key) and
//! *why*, with the coordinator's own stable reason code when it sent one, so that an operator
//! can tell "my workload is not onboarded" from "my TEE's measurement is not allowed" from "the
//! Type-2 coordinator is down" without reading logs. No variant ever carries a token, a
//! credential, a split or key bytes.

use std::fmt;

use cloud_adapters::WrapError;
use keys::KeyError;

/// Which of the two coordinators (DESIGN §1). Type-1 generates keys and holds split A;
/// Type-2 holds split B. `keyData[0]` is always Type-1's entry, `keyData[1]` Type-2's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The Type-1 coordinator (`coordinators.type1`).
    Type1,
    /// The Type-2 coordinator (`coordinators.type2`).
    Type2,
}

impl Role {
    /// Index of this coordinator's entry in `keyData`.
    pub fn key_data_index(self) -> usize {
        match self {
            Role::Type1 => 0,
            Role::Type2 => 1,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Type1 => "Type-1",
            Role::Type2 => "Type-2",
        })
    }
}

/// The step of the protocol with a coordinator that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `POST /v1/token` (RFC 8693 token exchange).
    TokenExchange,
    /// `GET /v1/peer/keys` (the coordinator's public key signing key).
    SigningKey,
    /// `POST /v1/attestation/challenge`.
    Challenge,
    /// `POST /v1/encryptionKeys:release`.
    Release,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::TokenExchange => "token exchange",
            Step::SigningKey => "signing key",
            Step::Challenge => "attestation challenge",
            Step::Release => "key release",
        })
    }
}

/// Why a coordinator call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorReason {
    /// No answer: connection refused, DNS, TLS or timeout. Likely an outage or a wrong URL.
    Unreachable(String),
    /// The token exchange was refused with an RFC 6749 error (`invalid_grant`, …); the
    /// description names the failed check (expired token, no mapping, …).
    OAuth {
        /// HTTP status.
        status: u16,
        /// RFC 6749 `error`.
        error: String,
        /// RFC 6749 `error_description`, if sent.
        description: String,
    },
    /// A key endpoint answered its Privacy Sandbox error body.
    Api {
        /// HTTP status.
        status: u16,
        /// `details[0].reason`: `MISSING_KEY`, `UNAUTHENTICATED`, `PERMISSION_DENIED`,
        /// `ATTESTATION_REQUIRED`, `ATTESTATION_FAILED`, `UNAVAILABLE`, `INVALID_ARGUMENT`,
        /// `KEY_REVOKED`, `CLOUD_NOT_ENABLED`; `None` when the body had none.
        reason: Option<String>,
        /// `details[0].metadata.attestationReason` (e.g. `measurement_not_allowed`) with
        /// `ATTESTATION_FAILED`.
        attestation_reason: Option<String>,
        /// The `message`.
        message: String,
    },
    /// An error status with a body that is neither error format (a proxy page, say).
    Http {
        /// HTTP status.
        status: u16,
    },
    /// A success answer that breaks the wire contract (bad JSON, wrong nonce length, …).
    Malformed(String),
}

impl fmt::Display for CoordinatorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoordinatorReason::Unreachable(detail) => write!(f, "unreachable: {detail}"),
            CoordinatorReason::OAuth {
                status,
                error,
                description,
            } => write!(f, "HTTP {status} {error}: {description}"),
            CoordinatorReason::Api {
                status,
                reason,
                attestation_reason,
                message,
            } => {
                write!(
                    f,
                    "HTTP {status} {}",
                    reason.as_deref().unwrap_or("(no reason)")
                )?;
                if let Some(a) = attestation_reason {
                    write!(f, " ({a})")?;
                }
                write!(f, ": {message}")
            }
            CoordinatorReason::Http { status } => write!(f, "HTTP {status}"),
            CoordinatorReason::Malformed(detail) => write!(f, "malformed answer: {detail}"),
        }
    }
}

/// Why a released key was refused. The key is dropped; nothing half-checked is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The `EncryptionKey` document breaks the format (DESIGN §5.2): the detail says where.
    #[error("malformed EncryptionKey: {0}")]
    Malformed(String),
    /// The serving coordinator's own `keyData` entry carries no `sealedKeyMaterial`.
    #[error("the {0} coordinator's entry has no sealedKeyMaterial")]
    MissingSealedMaterial(Role),
    /// `sealedContent` is neither `cloud-kms` nor `broker`.
    #[error("unknown sealedContent `{0}`")]
    UnknownSealedContent(String),
    /// Only one coordinator released this key, so it cannot be recombined.
    #[error("only the {0} coordinator released this key")]
    OnlyOneCoordinator(Role),
    /// The two coordinators describe the key differently (a field named here): one of them
    /// serves a different or forged key.
    #[error("the coordinators disagree on {0}")]
    CoordinatorsDisagree(&'static str),
    /// A coordinator's public key signature does not verify with its signing key.
    #[error("the {0} coordinator's public key signature is invalid")]
    BadSignature(Role),
    /// The sealed split did not open with this fetch's TEE key (tampered, or sealed to
    /// another key or key id).
    #[error("the {0} coordinator's sealed split does not open")]
    SealedSplitDoesNotOpen(Role),
    /// The KEK URI does not belong to the workload's cloud (or is a local KEK outside dev).
    #[error("KEK `{kek}` is not a {cloud} KMS key")]
    KekNotOfThisCloud {
        /// The URI as the coordinator sent it.
        kek: String,
        /// The configured workload cloud.
        cloud: &'static str,
    },
    /// Unwrapping a split with the workload cloud's KMS failed.
    #[error("unwrapping the {role} split with `{kek}` failed: {source}")]
    Unwrap {
        /// Whose split.
        role: Role,
        /// The KEK URI.
        kek: String,
        /// The adapter's error.
        #[source]
        source: WrapError,
    },
    /// The splits could not be recombined into a Keyferry keyset (different lengths, or
    /// the result is not a valid keyset): a wrong or corrupted split.
    #[error("the recombined splits are not a valid keyset: {0}")]
    BadKeyset(#[source] KeyError),
    /// The recombined private key's public key is not `publicKeyMaterial`: a split of
    /// another key.
    #[error("the recombined private key does not match publicKeyMaterial")]
    PublicKeyMismatch,
    /// `publicKeysetHandle` does not describe the recombined key (key or AEAD differ).
    #[error("publicKeysetHandle does not match the recombined key: {0}")]
    PublicKeysetMismatch(String),
}

/// Everything that can go wrong in the workload library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// The configuration is invalid; the message names the field.
    #[error("configuration: {0}")]
    Config(String),
    /// A dev-only feature (named) was asked for with the production profile.
    #[error("{0} is only allowed with profile = \"dev\"")]
    DevOnly(&'static str),
    /// The workload cloud's identity token could not be obtained.
    #[error("identity token from {source_kind}: {message}")]
    Token {
        /// `file`, `gcp-metadata`, `azure-imds` or `aws-sts`.
        source_kind: &'static str,
        /// What failed (never the token).
        message: String,
    },
    /// A coordinator refused a step, or could not be reached.
    #[error("{coordinator} coordinator ({url}): {step} failed: {reason}")]
    Coordinator {
        /// Which coordinator.
        coordinator: Role,
        /// Its configured URL.
        url: String,
        /// Which call.
        step: Step,
        /// Why.
        reason: CoordinatorReason,
    },
    /// The TEE could not produce evidence (no `/dev/sev-guest`, firmware error, no certs).
    #[error("SNP evidence: {0}")]
    Evidence(String),
    /// A released key failed a check and was refused.
    #[error("key `{key_id}`: {problem}")]
    KeyRefused {
        /// The key id (`?` when even the name did not parse).
        key_id: String,
        /// Which check failed.
        problem: KeyProblem,
    },
    /// `decrypt` named a key that is not held: never fetched, or dropped after `ttlTime`.
    #[error("key `{0}` is not held (unknown, or past its ttlTime)")]
    UnknownKey(String),
    /// The ciphertext did not decrypt with the key (wrong key, context info, or tampering).
    #[error("decryption with key `{key_id}` failed: {source}")]
    Decrypt {
        /// The key id.
        key_id: String,
        /// The key crate's error.
        #[source]
        source: KeyError,
    },
    /// Writing the summary to the caller's output failed.
    #[error("writing the summary: {0}")]
    Output(#[source] std::io::Error),
    /// Writing an exported keyset failed.
    #[error("export to {path}: {message}")]
    Export {
        /// The file or directory.
        path: String,
        /// What failed.
        message: String,
    },
}

impl WorkloadError {
    /// The coordinator a failure is attributed to, if any.
    pub fn coordinator(&self) -> Option<Role> {
        match self {
            WorkloadError::Coordinator { coordinator, .. } => Some(*coordinator),
            _ => None,
        }
    }

    /// The coordinator's stable reason code (`ATTESTATION_FAILED`, `MISSING_KEY`, …, or the
    /// OAuth `error` of a refused token exchange), if it sent one.
    pub fn coordinator_reason(&self) -> Option<&str> {
        match self {
            WorkloadError::Coordinator {
                reason: CoordinatorReason::Api { reason, .. },
                ..
            } => reason.as_deref(),
            WorkloadError::Coordinator {
                reason: CoordinatorReason::OAuth { error, .. },
                ..
            } => Some(error),
            _ => None,
        }
    }

    /// The attestation refusal code (`measurement_not_allowed`, …) of an
    /// `ATTESTATION_FAILED` answer.
    pub fn attestation_reason(&self) -> Option<&str> {
        match self {
            WorkloadError::Coordinator {
                reason:
                    CoordinatorReason::Api {
                        attestation_reason, ..
                    },
                ..
            } => attestation_reason.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn key(key_id: &str, problem: KeyProblem) -> Self {
        WorkloadError::KeyRefused {
            key_id: key_id.to_owned(),
            problem,
        }
    }
}
