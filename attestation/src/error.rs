//! The crate's one error type and the stable reason codes of refusals.
//!
//! A refusal ([`Error::Refused`]) always carries a [`Reason`]: a closed, stable set of snake_case
//! codes that the broker writes to its audit log and returns to callers. The free-text `detail`
//! next to it is for operators; it is short, factual, and never holds secrets (evidence holds
//! none, but the rule keeps it safe to log).

use std::fmt;

/// Why evidence was refused. Codes are stable: scripts, dashboards and audit queries rely on them,
/// so a variant is never renamed, only added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    // --- Report framing and parsing -------------------------------------------------------
    /// The report is not a well-formed 1184-byte SEV-SNP report (wrong length, bad hex, short
    /// HCL report, non-zero reserved bytes, unparseable fields).
    ReportMalformed,
    /// The report's version is not one of 2, 3 or 5.
    ReportVersionUnsupported,
    /// The report is not signed with ECDSA P-384/SHA-384 (`sig_algo` 1).
    SignatureAlgorithmUnsupported,
    /// The processor generation cannot be determined from the report (a v2 report with a
    /// masked chip id, or an unknown CPUID family/model).
    ReportGenerationUnknown,
    /// The chip id is masked (MASK_CHIP_ID) but the report is signed with a VCEK, whose
    /// binding to the chip cannot then be checked.
    ChipIdMasked,

    // --- Certificates -----------------------------------------------------------------------
    /// A certificate is not valid PEM or DER X.509, or its key is of the wrong type.
    CertMalformed,
    /// A certificate is none of ARK, ASK, ASVK, VCEK or VLEK as AMD names them.
    CertUnrecognized,
    /// Two different certificates of the same role (for example two VCEKs) were presented.
    CertDuplicate,
    /// A required certificate (the VCEK/VLEK, or the ASVK of a VLEK) is missing.
    CertMissing,
    /// The root of the chain is not one of the pinned AMD roots (or a configured extra root).
    ArkNotTrusted,
    /// The ASK/ASVK is not signed by the pinned ARK.
    AskNotSignedByArk,
    /// The VCEK/VLEK is not signed by the ASK/ASVK.
    VekNotSignedByAsk,
    /// A certificate of the chain had expired at the verification instant.
    CertExpired,
    /// A certificate of the chain was not yet valid at the verification instant.
    CertNotYetValid,
    /// An AMD extension of the VCEK/VLEK (hwID, TCB levels) is missing or badly encoded.
    CertExtensionInvalid,
    /// The report's processor generation differs from the generation of the chain's root.
    GenerationMismatch,
    /// The VCEK's hwID differs from the report's `chip_id`: the VCEK belongs to another chip.
    ChipIdMismatch,
    /// The VCEK/VLEK's TCB extensions differ from the report's `reported_tcb`.
    TcbMismatch,
    /// The report's signing-key field (0 = VCEK, 1 = VLEK) differs from the presented key.
    SigningKeyMismatch,
    /// The report's signature does not verify with the VCEK/VLEK.
    ReportSignatureInvalid,
    /// `report_data` differs from the expected binding (nonce and TEE public key).
    ReportDataMismatch,

    // --- Azure confidential VMs (HCL report and vTPM quote) ---------------------------------
    /// The HCL report's runtime data is missing, truncated or not the expected JSON (no
    /// `HCLAkPub` RSA key, `user-data` not 64 bytes).
    RuntimeDataMalformed,
    /// `report_data` is not the hash of the runtime data that came with it.
    RuntimeDataMismatch,
    /// The runtime data's `user-data` is not the expected binding (nonce and TEE public key).
    UserDataMismatch,
    /// The vTPM quote is not a well-formed `TPMS_ATTEST` quote with its PCR values.
    QuoteMalformed,
    /// The vTPM quote is not signed by the runtime data's attestation key.
    QuoteSignatureInvalid,
    /// The vTPM quote was made for another nonce (`extraData`).
    QuoteNonceMismatch,
    /// The PCR values presented do not hash to the quote's `pcrDigest`.
    PcrDigestMismatch,

    // --- Release policy -----------------------------------------------------------------------
    /// The launch measurement is not in the policy's allowed list.
    MeasurementNotAllowed,
    /// `host_data` is not in the policy's allowed list.
    HostDataNotAllowed,
    /// A component of `reported_tcb` is below the policy's minimum.
    TcbBelowMinimum,
    /// The guest policy allows debugging and the release policy does not.
    DebugNotAllowed,
    /// The report was requested from a VMPL the policy does not allow.
    VmplNotAllowed,
    /// `family_id` differs from the policy's.
    FamilyIdMismatch,
    /// `image_id` differs from the policy's.
    ImageIdMismatch,
    /// SMT is enabled on the platform and the policy forbids it.
    SmtNotAllowed,
    /// The guest policy allows a migration agent and the release policy does not.
    MigrationAgentNotAllowed,
    /// The report version is below the policy's minimum.
    ReportVersionBelowMinimum,
    /// A PCR value the policy constrains is not allowed, or the evidence has no vTPM quote.
    PcrNotAllowed,
}

impl Reason {
    /// Every reason, in declaration order (for documentation and exhaustive tests).
    pub const ALL: &'static [Reason] = &[
        Reason::ReportMalformed,
        Reason::ReportVersionUnsupported,
        Reason::SignatureAlgorithmUnsupported,
        Reason::ReportGenerationUnknown,
        Reason::ChipIdMasked,
        Reason::CertMalformed,
        Reason::CertUnrecognized,
        Reason::CertDuplicate,
        Reason::CertMissing,
        Reason::ArkNotTrusted,
        Reason::AskNotSignedByArk,
        Reason::VekNotSignedByAsk,
        Reason::CertExpired,
        Reason::CertNotYetValid,
        Reason::CertExtensionInvalid,
        Reason::GenerationMismatch,
        Reason::ChipIdMismatch,
        Reason::TcbMismatch,
        Reason::SigningKeyMismatch,
        Reason::ReportSignatureInvalid,
        Reason::ReportDataMismatch,
        Reason::RuntimeDataMalformed,
        Reason::RuntimeDataMismatch,
        Reason::UserDataMismatch,
        Reason::QuoteMalformed,
        Reason::QuoteSignatureInvalid,
        Reason::QuoteNonceMismatch,
        Reason::PcrDigestMismatch,
        Reason::MeasurementNotAllowed,
        Reason::HostDataNotAllowed,
        Reason::TcbBelowMinimum,
        Reason::DebugNotAllowed,
        Reason::VmplNotAllowed,
        Reason::FamilyIdMismatch,
        Reason::ImageIdMismatch,
        Reason::SmtNotAllowed,
        Reason::MigrationAgentNotAllowed,
        Reason::ReportVersionBelowMinimum,
        Reason::PcrNotAllowed,
    ];

    /// The stable snake_case code of this reason.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::ReportMalformed => "report_malformed",
            Reason::ReportVersionUnsupported => "report_version_unsupported",
            Reason::SignatureAlgorithmUnsupported => "signature_algorithm_unsupported",
            Reason::ReportGenerationUnknown => "report_generation_unknown",
            Reason::ChipIdMasked => "chip_id_masked",
            Reason::CertMalformed => "cert_malformed",
            Reason::CertUnrecognized => "cert_unrecognized",
            Reason::CertDuplicate => "cert_duplicate",
            Reason::CertMissing => "cert_missing",
            Reason::ArkNotTrusted => "ark_not_trusted",
            Reason::AskNotSignedByArk => "ask_not_signed_by_ark",
            Reason::VekNotSignedByAsk => "vek_not_signed_by_ask",
            Reason::CertExpired => "cert_expired",
            Reason::CertNotYetValid => "cert_not_yet_valid",
            Reason::CertExtensionInvalid => "cert_extension_invalid",
            Reason::GenerationMismatch => "generation_mismatch",
            Reason::ChipIdMismatch => "chip_id_mismatch",
            Reason::TcbMismatch => "tcb_mismatch",
            Reason::SigningKeyMismatch => "signing_key_mismatch",
            Reason::ReportSignatureInvalid => "report_signature_invalid",
            Reason::ReportDataMismatch => "report_data_mismatch",
            Reason::RuntimeDataMalformed => "runtime_data_malformed",
            Reason::RuntimeDataMismatch => "runtime_data_mismatch",
            Reason::UserDataMismatch => "user_data_mismatch",
            Reason::QuoteMalformed => "quote_malformed",
            Reason::QuoteSignatureInvalid => "quote_signature_invalid",
            Reason::QuoteNonceMismatch => "quote_nonce_mismatch",
            Reason::PcrDigestMismatch => "pcr_digest_mismatch",
            Reason::MeasurementNotAllowed => "measurement_not_allowed",
            Reason::HostDataNotAllowed => "host_data_not_allowed",
            Reason::TcbBelowMinimum => "tcb_below_minimum",
            Reason::DebugNotAllowed => "debug_not_allowed",
            Reason::VmplNotAllowed => "vmpl_not_allowed",
            Reason::FamilyIdMismatch => "family_id_mismatch",
            Reason::ImageIdMismatch => "image_id_mismatch",
            Reason::SmtNotAllowed => "smt_not_allowed",
            Reason::MigrationAgentNotAllowed => "migration_agent_not_allowed",
            Reason::ReportVersionBelowMinimum => "report_version_below_minimum",
            Reason::PcrNotAllowed => "pcr_not_allowed",
        }
    }

    /// True for the reasons that come from a release policy rather than from verification.
    pub fn is_policy(&self) -> bool {
        matches!(
            self,
            Reason::MeasurementNotAllowed
                | Reason::HostDataNotAllowed
                | Reason::TcbBelowMinimum
                | Reason::DebugNotAllowed
                | Reason::VmplNotAllowed
                | Reason::FamilyIdMismatch
                | Reason::ImageIdMismatch
                | Reason::SmtNotAllowed
                | Reason::MigrationAgentNotAllowed
                | Reason::ReportVersionBelowMinimum
                | Reason::PcrNotAllowed
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The evidence was refused, by verification or by a release policy. The broker answers
    /// the caller with `reason` and audits both fields.
    #[error("{reason}: {detail}")]
    Refused {
        /// The stable reason code.
        reason: Reason,
        /// A short factual description for operators.
        detail: String,
    },
    /// A release policy document is invalid; `field` names the offending JSON field
    /// (for example `measurements[1]`).
    #[error("invalid release policy: {field}: {problem}")]
    InvalidPolicy {
        /// The JSON path of the offending field, or `(document)` for a syntax error.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A configured extra trust anchor is unusable (not a self-signed RSA certificate).
    /// Likely cause: a wrong file in `attestation.extra_roots`.
    #[error("invalid trust anchor: {0}")]
    InvalidTrustAnchor(String),
    /// The simulated attester failed (bad persisted PEM, key generation or signing failure).
    #[error("simulated attester: {0}")]
    Simulated(String),
}

impl Error {
    /// The refusal reason, if this error is a refusal.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Error::Refused { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    pub(crate) fn refused(reason: Reason, detail: impl Into<String>) -> Self {
        Error::Refused {
            reason,
            detail: detail.into(),
        }
    }

    pub(crate) fn policy(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::InvalidPolicy {
            field: field.into(),
            problem: problem.into(),
        }
    }
}
