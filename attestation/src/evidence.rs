//! Evidence as it arrives: an SNP report in one of three encodings and the certificates that
//! endorse it, in the wire form of `POST /v1/encryptionKeys:release` (DESIGN §5.3).
//!
//! Building an [`Evidence`] only frames and decodes; nothing in it is trusted until
//! [`crate::Verifier`] has checked it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::azure::{AZURE_EVIDENCE_TYPE, AzureVtpmEvidence, AzureVtpmWire};
use crate::cert::{self, Cert, Role};
use crate::error::{Error, Reason};

/// Length of an SEV-SNP attestation report.
pub const REPORT_LEN: usize = 1184;

/// Where the SNP report sits inside an Azure vTPM HCL report.
const HCL_REPORT_OFFSET: usize = 32;
/// Magic of an Azure HCL report (`HCLA`).
const HCL_MAGIC: &[u8] = b"HCLA";

/// How the report bytes given to [`Evidence::from_parts`] are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// The 1184 raw bytes, as the guest's `/dev/sev-guest` returns them.
    Raw,
    /// Hexadecimal text of the raw bytes (whitespace ignored), as some tools print them.
    Hex,
    /// An Azure confidential VM's vTPM HCL report; the SNP report is bytes 32..1216.
    AzureHcl,
    /// Guess: `HCLA` magic means HCL, 1184 bytes means raw, hex text means hex.
    Auto,
}

/// The endorsement certificates of a report, sorted by role.
#[derive(Clone, Debug)]
pub(crate) struct CertBundle {
    /// The VCEK or VLEK (its role says which).
    pub(crate) vek: (Role, Cert),
    pub(crate) ask: Option<Cert>,
    pub(crate) asvk: Option<Cert>,
    pub(crate) ark: Option<Cert>,
}

/// An SNP report with its certificates, framed and classified but not verified.
#[derive(Clone, Debug)]
pub struct Evidence {
    report: Vec<u8>,
    pub(crate) certs: CertBundle,
}

impl Evidence {
    /// Builds evidence from a report in `format` and certificates, each PEM (one or more
    /// blocks) or DER, in any order: roles are read from the certificates themselves.
    ///
    /// Fails with `report_malformed` (wrong length, odd or invalid hex, short HCL report),
    /// `cert_malformed`, `cert_unrecognized`, `cert_duplicate` or `cert_missing`.
    pub fn from_parts(
        report: &[u8],
        format: ReportFormat,
        certs: Vec<Vec<u8>>,
    ) -> Result<Self, Error> {
        let report = decode_report(report, format)?;
        let mut all = Vec::new();
        for input in &certs {
            all.extend(cert::decode_certs(input)?);
        }
        Ok(Evidence {
            report,
            certs: classify(all)?,
        })
    }

    /// The 1184 raw bytes of the SNP report.
    pub fn report_bytes(&self) -> &[u8] {
        &self.report
    }
}

fn malformed(detail: impl Into<String>) -> Error {
    Error::refused(Reason::ReportMalformed, detail)
}

pub(crate) fn decode_report(input: &[u8], format: ReportFormat) -> Result<Vec<u8>, Error> {
    if input.is_empty() {
        return Err(malformed("report is empty"));
    }
    let format = match format {
        ReportFormat::Auto if input.starts_with(HCL_MAGIC) => ReportFormat::AzureHcl,
        ReportFormat::Auto if input.len() == REPORT_LEN => ReportFormat::Raw,
        ReportFormat::Auto
            if input
                .iter()
                .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace()) =>
        {
            ReportFormat::Hex
        }
        ReportFormat::Auto => {
            return Err(malformed(format!(
                "{} bytes are neither a raw report, hex text nor an HCL report",
                input.len()
            )));
        }
        other => other,
    };
    let raw = match format {
        ReportFormat::Raw | ReportFormat::Auto => input.to_vec(),
        ReportFormat::Hex => {
            let digits: Vec<u8> = input
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            if !digits.len().is_multiple_of(2) {
                return Err(malformed(format!(
                    "hex report has an odd number of digits ({})",
                    digits.len()
                )));
            }
            hex::decode(&digits).map_err(|e| malformed(format!("hex report: {e}")))?
        }
        ReportFormat::AzureHcl => {
            if !input.starts_with(HCL_MAGIC) {
                return Err(malformed("HCL report does not start with `HCLA`"));
            }
            let end = HCL_REPORT_OFFSET + REPORT_LEN;
            let snp = input.get(HCL_REPORT_OFFSET..end).ok_or_else(|| {
                malformed(format!(
                    "HCL report has {} bytes, needs at least {end}",
                    input.len()
                ))
            })?;
            snp.to_vec()
        }
    };
    if raw.len() != REPORT_LEN {
        return Err(malformed(format!(
            "report has {} bytes, expected {REPORT_LEN}",
            raw.len()
        )));
    }
    Ok(raw)
}

/// Sorts certificates by role. Identical duplicates (the same ARK in two files) are dropped;
/// two different certificates in one role are refused rather than guessed between.
fn classify(certs: Vec<Cert>) -> Result<CertBundle, Error> {
    let mut vek: Option<(Role, Cert)> = None;
    let (mut ask, mut asvk, mut ark) = (None, None, None);
    for cert in certs {
        let role = cert.role()?;
        let slot = match role {
            Role::Ark => &mut ark,
            Role::Ask => &mut ask,
            Role::Asvk => &mut asvk,
            Role::Vcek | Role::Vlek => {
                match &vek {
                    Some((_, existing)) if *existing == cert => {}
                    Some((existing_role, _)) => {
                        return Err(Error::refused(
                            Reason::CertDuplicate,
                            format!(
                                "both a {} and a {} were presented",
                                existing_role.name(),
                                role.name()
                            ),
                        ));
                    }
                    None => vek = Some((role, cert)),
                }
                continue;
            }
        };
        match slot {
            Some(existing) if *existing == cert => {}
            Some(_) => {
                return Err(Error::refused(
                    Reason::CertDuplicate,
                    format!("two different {} certificates were presented", role.name()),
                ));
            }
            None => *slot = Some(cert),
        }
    }
    let vek = vek.ok_or_else(|| Error::refused(Reason::CertMissing, "no VCEK or VLEK"))?;
    Ok(CertBundle {
        vek,
        ask,
        asvk,
        ark,
    })
}

/// The `evidence` object of a release request (DESIGN §5.3 and §6), tagged by `type`: one
/// variant per platform. Deserialize request bodies into this type (a JSON error is a bad
/// request), then convert with `PlatformEvidence::try_from` (or `Evidence::try_from` where
/// only SNP evidence is acceptable) to get a refusal [`Reason`] for the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EvidenceWire {
    /// `sev-snp`: a raw SNP report from `/dev/sev-guest`.
    #[serde(rename = "sev-snp")]
    SevSnp(SnpEvidenceWire),
    /// `az-snp-vtpm`: an Azure confidential VM's HCL report and vTPM quote.
    #[serde(rename = "az-snp-vtpm")]
    AzSnpVtpm(AzureVtpmWire),
}

/// `sev-snp` evidence on the wire:
/// `{"type":"sev-snp","report": base64, "certs": {"vcek"|"vlek", "ask"|"asvk", "ark"?}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpEvidenceWire {
    /// The 1184-byte report, standard base64.
    pub report: String,
    /// PEM certificates. The labels are hints only: roles are read from the certificates.
    pub certs: WireCerts,
}

/// The certificates of [`EvidenceWire`], each PEM.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireCerts {
    /// VCEK (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcek: Option<String>,
    /// VLEK (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlek: Option<String>,
    /// ASK (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<String>,
    /// ASVK (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asvk: Option<String>,
    /// ARK (PEM); optional, the pinned ARK is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ark: Option<String>,
}

/// The `type` of SNP evidence on the wire.
pub const EVIDENCE_TYPE: &str = "sev-snp";

impl WireCerts {
    /// The certificates as PEM bytes, labels dropped (roles are read from the certificates).
    pub(crate) fn into_pems(self) -> Vec<Vec<u8>> {
        [self.vcek, self.vlek, self.ask, self.asvk, self.ark]
            .into_iter()
            .flatten()
            .map(String::into_bytes)
            .collect()
    }
}

impl From<&CertBundle> for WireCerts {
    fn from(b: &CertBundle) -> Self {
        // Encoding a certificate we decoded ourselves cannot fail; an empty string would be
        // refused as cert_malformed on the way back in, never silently accepted.
        let pem = |c: &Cert| cert::to_pem("CERTIFICATE", &c.der).unwrap_or_default();
        let (vcek, vlek) = match &b.vek {
            (Role::Vlek, c) => (None, Some(pem(c))),
            (_, c) => (Some(pem(c)), None),
        };
        WireCerts {
            vcek,
            vlek,
            ask: b.ask.as_ref().map(pem),
            asvk: b.asvk.as_ref().map(pem),
            ark: b.ark.as_ref().map(pem),
        }
    }
}

impl TryFrom<SnpEvidenceWire> for Evidence {
    type Error = Error;

    fn try_from(wire: SnpEvidenceWire) -> Result<Self, Error> {
        let report = BASE64
            .decode(wire.report.trim())
            .map_err(|e| malformed(format!("report is not base64: {e}")))?;
        Evidence::from_parts(&report, ReportFormat::Raw, wire.certs.into_pems())
    }
}

/// Only raw SNP evidence converts: for the steps that accept no other platform (a key
/// generator's report).
impl TryFrom<EvidenceWire> for Evidence {
    type Error = Error;

    fn try_from(wire: EvidenceWire) -> Result<Self, Error> {
        match wire {
            EvidenceWire::SevSnp(snp) => Evidence::try_from(snp),
            EvidenceWire::AzSnpVtpm(_) => Err(malformed(format!(
                "`{AZURE_EVIDENCE_TYPE}` evidence where `{EVIDENCE_TYPE}` is required"
            ))),
        }
    }
}

impl From<&Evidence> for EvidenceWire {
    fn from(evidence: &Evidence) -> Self {
        EvidenceWire::SevSnp(SnpEvidenceWire {
            report: BASE64.encode(&evidence.report),
            certs: WireCerts::from(&evidence.certs),
        })
    }
}

/// Evidence of any supported platform, framed and parsed but not verified:
/// [`crate::Verifier::verify_platform_at`] checks it.
#[derive(Clone, Debug)]
// One per request, moved into the verifier task and dropped: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum PlatformEvidence {
    /// A raw SNP report (`sev-snp`).
    SevSnp(Evidence),
    /// An Azure confidential VM (`az-snp-vtpm`).
    AzSnpVtpm(AzureVtpmEvidence),
}

impl PlatformEvidence {
    /// The evidence type, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            PlatformEvidence::SevSnp(_) => EVIDENCE_TYPE,
            PlatformEvidence::AzSnpVtpm(_) => AZURE_EVIDENCE_TYPE,
        }
    }
}

impl TryFrom<EvidenceWire> for PlatformEvidence {
    type Error = Error;

    fn try_from(wire: EvidenceWire) -> Result<Self, Error> {
        Ok(match wire {
            EvidenceWire::SevSnp(snp) => PlatformEvidence::SevSnp(Evidence::try_from(snp)?),
            EvidenceWire::AzSnpVtpm(az) => {
                PlatformEvidence::AzSnpVtpm(AzureVtpmEvidence::try_from(az)?)
            }
        })
    }
}

impl From<&PlatformEvidence> for EvidenceWire {
    fn from(evidence: &PlatformEvidence) -> Self {
        match evidence {
            PlatformEvidence::SevSnp(snp) => EvidenceWire::from(snp),
            PlatformEvidence::AzSnpVtpm(az) => EvidenceWire::AzSnpVtpm(AzureVtpmWire::from(az)),
        }
    }
}

impl Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        EvidenceWire::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Evidence {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = EvidenceWire::deserialize(d)?;
        Evidence::try_from(wire).map_err(serde::de::Error::custom)
    }
}
