//! SEV-SNP attestation for Keyferry: verification of AMD SEV-SNP evidence, release policies,
//! and a simulated attester for tests and the demo (DESIGN §5.3 and §6).
//!
//! # Layout
//!
//! - `evidence`: [`Evidence`], a report (raw, hex or Azure HCL) with its certificates, and
//!   its wire form [`EvidenceWire`]. Framing only: nothing there is trusted yet.
//! - `azure`: [`AzureVtpmEvidence`], an Azure confidential VM's HCL report (the SNP report and
//!   the runtime data that `report_data` hashes) with a vTPM quote, and its wire form.
//! - `vtpm`: [`TpmQuote`], a `TPMS_ATTEST` quote, its RSA signature and its PCR digest.
//! - `cert`: decoding AMD certificates (PEM bundles or DER), classifying them by role from
//!   their names, reading the VCEK/VLEK extensions (hwID, TCB levels).
//! - `report`: parsing the report with `sev`, its version/algorithm/generation checks, and
//!   its ECDSA P-384 signature.
//! - `chain`: the pinned roots, ARK → ASK/ASVK → VCEK/VLEK signatures, validity periods,
//!   and the bounded per-chain cache.
//! - `verifier`: [`Verifier`], the verification steps in order, ending in the proof
//!   [`VerifiedReport`] when `report_data` equals a [`ReleaseBinding`] (nonce and TEE key),
//!   or in an [`InspectedReport`] for offline inspection, which releases nothing.
//!   [`Verifier::verify_key_generation_at`] checks a key generator's report against a
//!   [`KeyGenerationBinding`] (challenge and handover message) into [`VerifiedKeyGeneration`].
//! - `policy`: [`ReleasePolicy`] documents and their evaluation into the proofs
//!   [`VerifiedEvidence`] (a release) and [`AttestedKeyGeneration`] (a handover).
//! - `claims`: [`Claims`], what a verified report says, as readable JSON.
//! - `error`: the one [`Error`] type and the stable refusal codes, [`Reason`].
//! - [`simulated`]: a generated ARK/ASK/VCEK chain and report signer.
//!
//! # Use
//!
//! ```no_run
//! # fn main() -> Result<(), attestation::Error> {
//! use attestation::{Evidence, ReleaseBinding, ReleasePolicy, ReportFormat, Verifier};
//! # let (report, certs, nonce, tee_key, policy_json) = (vec![], vec![], [0u8; 32], [0u8; 32], "");
//! let verifier = Verifier::new()?; // AMD roots only
//! let evidence = Evidence::from_parts(&report, ReportFormat::Raw, certs)?;
//! let verified = verifier.verify(&evidence, &ReleaseBinding::new(&nonce, tee_key))?;
//! let released = ReleasePolicy::from_json(policy_json)?.evaluate(&verified)?;
//! println!("{}", serde_json::to_string_pretty(released.claims()).unwrap_or_default());
//! # Ok(()) }
//! ```

mod azure;
mod cert;
mod chain;
mod claims;
mod error;
mod evidence;
mod policy;
mod report;
pub mod simulated;
mod verifier;
mod vtpm;

pub use azure::{
    AZURE_EVIDENCE_TYPE, AzureVtpmEvidence, AzureVtpmWire, TpmQuoteWire, VmConfiguration,
};
pub use claims::{
    Claims, CpuidClaims, FirmwareClaims, PlatformClaims, PolicyClaims, Tcb, VtpmClaims,
};
pub use error::{Error, Reason};
pub use evidence::{
    EVIDENCE_TYPE, Evidence, EvidenceWire, PlatformEvidence, REPORT_LEN, ReportFormat,
    SnpEvidenceWire, WireCerts,
};
pub use policy::{AttestedKeyGeneration, MinimumTcb, ReleasePolicy, SmtRule, VerifiedEvidence};
pub use report::{Generation, SigningKey};
pub use verifier::{
    InspectedReport, KEY_GENERATION_DOMAIN, KeyGenerationBinding, ReleaseBinding, ReportDataCheck,
    VerifiedKeyGeneration, VerifiedReport, Verifier, expected_report_data,
};
pub use vtpm::{PCR_COUNT, PCR_LEN, RsaKey, TpmQuote};
