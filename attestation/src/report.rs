//! The SNP attestation report: parsing with `sev`, the checks on its framing, and its
//! ECDSA P-384 signature.

use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;

use crate::error::{Error, Reason};

/// The signed part of a report: bytes 0..0x2A0.
pub(crate) const SIGNED_LEN: usize = 0x2A0;
const VERSION_OFFSET: usize = 0x00;
const SIG_ALGO_OFFSET: usize = 0x34;
const CHIP_ID: std::ops::Range<usize> = 0x1A0..0x1E0;
const CPUID_FAMILY: usize = 0x188;
const CPUID_MODEL: usize = 0x189;
/// `sig_algo` value for ECDSA P-384 with SHA-384.
const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// Report versions this verifier understands (4 was never released; 6+ may change layout).
const SUPPORTED_VERSIONS: [u32; 3] = [2, 3, 5];

/// An AMD EPYC processor generation with SEV-SNP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generation {
    /// 3rd generation EPYC (Zen 3).
    Milan,
    /// 4th generation EPYC (Zen 4), including Bergamo and Siena.
    Genoa,
    /// 5th generation EPYC (Zen 5).
    Turin,
}

impl Generation {
    /// The lowercase name (`milan`, `genoa`, `turin`).
    pub fn name(self) -> &'static str {
        match self {
            Generation::Milan => "milan",
            Generation::Genoa => "genoa",
            Generation::Turin => "turin",
        }
    }

    /// Turin and later encode TCB versions with an FMC byte and a different layout.
    pub(crate) fn turin_tcb_layout(self) -> bool {
        matches!(self, Generation::Turin)
    }
}

/// What a report says about its processor: an exact generation (v3+ CPUID fields), or only
/// the TCB layout (v2 reports, where `sev` infers Turin from a chip id of 8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReportGeneration {
    Exact(Generation),
    /// v2: Milan or Genoa (legacy TCB layout) or Turin (`true`).
    LayoutOnly {
        turin: bool,
    },
}

/// The key the report says signed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key: per chip and TCB, from AMD's KDS.
    Vcek,
    /// Versioned Loaded Endorsement Key: per cloud provider and TCB.
    Vlek,
}

/// A parsed report whose framing is valid; its signature is not checked yet.
#[derive(Clone, Debug)]
pub(crate) struct ParsedReport {
    pub(crate) raw: Vec<u8>,
    pub(crate) report: AttestationReport,
    pub(crate) generation: ReportGeneration,
    pub(crate) signing_key: SigningKey,
}

fn u32_at(raw: &[u8], offset: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&raw[offset..offset + 4]);
    u32::from_le_bytes(b)
}

/// Parses and checks the framing: version, signature algorithm, generation, signing key, and
/// that `sev`'s parse re-encodes to exactly the signed bytes (so the fields we report are the
/// fields that were signed; it also refuses non-zero reserved bytes, as `sev` does).
pub(crate) fn parse(raw: &[u8]) -> Result<ParsedReport, Error> {
    if raw.len() != crate::evidence::REPORT_LEN {
        return Err(Error::refused(
            Reason::ReportMalformed,
            format!("report has {} bytes", raw.len()),
        ));
    }
    let version = u32_at(raw, VERSION_OFFSET);
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(Error::refused(
            Reason::ReportVersionUnsupported,
            format!("report version {version} (supported: 2, 3, 5)"),
        ));
    }
    let sig_algo = u32_at(raw, SIG_ALGO_OFFSET);
    if sig_algo != SIG_ALGO_ECDSA_P384_SHA384 {
        return Err(Error::refused(
            Reason::SignatureAlgorithmUnsupported,
            format!("signature algorithm {sig_algo} (supported: 1, ECDSA P-384/SHA-384)"),
        ));
    }
    let chip_id = &raw[CHIP_ID];
    let generation = if version == 2 {
        // A v2 report carries no CPUID: sev tells the TCB layout from the chip id alone, which
        // is impossible when the chip id is masked.
        if chip_id.iter().all(|b| *b == 0) {
            return Err(Error::refused(
                Reason::ReportGenerationUnknown,
                "v2 report with a masked chip id: the processor generation is unknown",
            ));
        }
        ReportGeneration::LayoutOnly {
            turin: chip_id[8..].iter().all(|b| *b == 0),
        }
    } else {
        let (family, model) = (raw[CPUID_FAMILY], raw[CPUID_MODEL]);
        let generation = match sev::Generation::identify_cpu(family, model) {
            Ok(sev::Generation::Milan) => Generation::Milan,
            Ok(sev::Generation::Genoa) => Generation::Genoa,
            Ok(sev::Generation::Turin) => Generation::Turin,
            _ => {
                return Err(Error::refused(
                    Reason::ReportGenerationUnknown,
                    format!("unsupported CPUID family {family:#x} model {model:#x}"),
                ));
            }
        };
        ReportGeneration::Exact(generation)
    };

    let report = AttestationReport::from_bytes(raw)
        .map_err(|e| Error::refused(Reason::ReportMalformed, format!("report: {e}")))?;
    let reencoded = report
        .to_bytes()
        .map_err(|e| Error::refused(Reason::ReportMalformed, format!("report: {e}")))?;
    if reencoded[..SIGNED_LEN] != raw[..SIGNED_LEN] {
        return Err(Error::refused(
            Reason::ReportMalformed,
            "report has non-zero reserved bytes",
        ));
    }
    let signing_key = match report.key_info.signing_key() {
        0 => SigningKey::Vcek,
        1 => SigningKey::Vlek,
        7 => {
            return Err(Error::refused(
                Reason::ReportSignatureInvalid,
                "report is unsigned (signing key field: none)",
            ));
        }
        other => {
            return Err(Error::refused(
                Reason::SigningKeyMismatch,
                format!("reserved signing key field value {other}"),
            ));
        }
    };
    Ok(ParsedReport {
        raw: raw.to_vec(),
        report,
        generation,
        signing_key,
    })
}

/// Verifies the report signature over bytes 0..0x2A0 with a P-384 public key (SEC1 point).
///
/// Uses aws-lc (about 6x faster than `sev`'s pure-Rust path); a test checks that both agree
/// on every vector and on altered reports. r and s are stored little-endian in 72-byte fields
/// of which only the low 48 bytes may be non-zero.
pub(crate) fn verify_signature(raw: &[u8], vek_sec1: &[u8]) -> Result<(), Error> {
    let invalid = |d: &str| Error::refused(Reason::ReportSignatureInvalid, d.to_owned());
    let r = &raw[0x2A0..0x2A0 + 72];
    let s = &raw[0x2E8..0x2E8 + 72];
    if r[48..].iter().chain(&s[48..]).any(|b| *b != 0) {
        return Err(invalid("signature components exceed 384 bits"));
    }
    let mut sig = [0u8; 96];
    for i in 0..48 {
        sig[i] = r[47 - i];
        sig[48 + i] = s[47 - i];
    }
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, vek_sec1)
        .verify(&raw[..SIGNED_LEN], &sig)
        .map_err(|_| invalid("the VCEK/VLEK did not sign this report"))
}
