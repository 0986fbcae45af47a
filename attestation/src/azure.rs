//! Azure confidential VM evidence (`az-snp-vtpm`, DESIGN §6): the HCL report that Azure's
//! paravisor writes into the vTPM, and a vTPM quote.
//!
//! On an Azure CVM the guest cannot choose `report_data`: the paravisor (HCL) asks for the
//! SNP report with `report_data[0..32]` = SHA-256 of its *runtime data*, a JSON document
//! naming the vTPM's attestation key (`HCLAkPub`) and carrying 64 bytes of `user-data` that
//! the guest wrote into NV index 0x01400002 beforehand. So the release binding travels one
//! hop further than on raw SNP:
//!
//! ```text
//! SNP report ──report_data[0..32]──▶ runtime data ──user-data──▶ SHA-512(nonce ‖ teePublicKey)
//!                                         └──HCLAkPub──▶ vTPM quote (extraData = nonce, PCRs)
//! ```
//!
//! The layout of the HCL report (little-endian): a 32-byte header (`HCLA`, version, size,
//! request type, status, reserved), the 1184-byte SNP report, a 20-byte runtime-data header
//! (data size, version, report type 2 = SNP, hash type, variable-data size), then the
//! variable data: the runtime data JSON, hashed exactly as its bytes stand.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::error::{Error, Reason};
use crate::evidence::{self, Evidence, REPORT_LEN, ReportFormat, WireCerts};
use crate::vtpm::{RsaKey, TpmQuote};

/// The `type` of Azure confidential VM evidence on the wire.
pub const AZURE_EVIDENCE_TYPE: &str = "az-snp-vtpm";

const HCL_MAGIC: &[u8; 4] = b"HCLA";
const HCL_HEADER_LEN: usize = 32;
const RUNTIME_HEADER_LEN: usize = 20;
/// Where the runtime data's JSON starts.
const VARIABLE_DATA_OFFSET: usize = HCL_HEADER_LEN + REPORT_LEN + RUNTIME_HEADER_LEN;
/// The vTPM NV index holding the HCL report is 2600 bytes; leave room, refuse the absurd.
const MAX_HCL_LEN: usize = 16 * 1024;
/// IGVM report type of an SNP report (4 would be TDX).
const REPORT_TYPE_SNP: u32 = 2;
/// The `kid` of the vTPM attestation key in the runtime data.
const AK_KID: &str = "HCLAkPub";

/// How the paravisor hashed the runtime data into `report_data` (IGVM hash type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuntimeHash {
    Sha256,
    Sha384,
    Sha512,
}

impl RuntimeHash {
    fn from_igvm(value: u32) -> Option<Self> {
        match value {
            1 => Some(RuntimeHash::Sha256),
            2 => Some(RuntimeHash::Sha384),
            3 => Some(RuntimeHash::Sha512),
            _ => None,
        }
    }

    /// The 64 bytes `report_data` must hold: the digest, then zeros.
    fn report_data(self, data: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        match self {
            RuntimeHash::Sha256 => out[..32].copy_from_slice(&Sha256::digest(data)),
            RuntimeHash::Sha384 => out[..48].copy_from_slice(&Sha384::digest(data)),
            RuntimeHash::Sha512 => out.copy_from_slice(&Sha512::digest(data)),
        }
        out
    }
}

/// The runtime data document, as far as verification reads it. Azure adds members over
/// time, so unknown ones are ignored (they are still covered by the hash).
#[derive(Debug, Deserialize)]
struct RuntimeDataDoc {
    keys: Vec<Jwk>,
    #[serde(rename = "vm-configuration", default)]
    vm_configuration: Option<VmConfigurationDoc>,
    #[serde(rename = "user-data", default)]
    user_data: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: String,
    #[serde(default)]
    kty: String,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VmConfigurationDoc {
    #[serde(rename = "secure-boot", default)]
    secure_boot: Option<bool>,
    #[serde(rename = "tpm-enabled", default)]
    tpm_enabled: Option<bool>,
    #[serde(rename = "console-enabled", default)]
    console_enabled: Option<bool>,
    #[serde(rename = "vmUniqueId", default)]
    vm_unique_id: Option<String>,
}

/// What the paravisor says about the VM's configuration (runtime data `vm-configuration`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmConfiguration {
    /// UEFI secure boot is on.
    pub secure_boot: Option<bool>,
    /// The vTPM is enabled.
    pub tpm_enabled: Option<bool>,
    /// The serial console is enabled (an operator can interact with the guest).
    pub console_enabled: Option<bool>,
    /// Azure's id of the VM.
    pub vm_unique_id: Option<String>,
}

/// The parsed runtime data: its exact bytes (what the report hashes) and what they say.
#[derive(Clone, Debug)]
pub(crate) struct RuntimeData {
    bytes: Vec<u8>,
    hash: RuntimeHash,
    pub(crate) attestation_key: RsaKey,
    pub(crate) user_data: Option<[u8; 64]>,
    pub(crate) vm_configuration: VmConfiguration,
}

impl RuntimeData {
    /// The `report_data` the SNP report must carry for these runtime data.
    pub(crate) fn expected_report_data(&self) -> [u8; 64] {
        self.hash.report_data(&self.bytes)
    }
}

fn malformed(detail: impl Into<String>) -> Error {
    Error::refused(Reason::RuntimeDataMalformed, detail)
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let field = bytes.get(offset..offset + 4)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

fn b64url(field: &str, text: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| malformed(format!("{field} is not base64url: {e}")))
}

/// Splits an HCL report into the SNP report and the parsed runtime data.
fn parse_hcl(hcl: &[u8]) -> Result<(Vec<u8>, RuntimeData), Error> {
    if hcl.len() > MAX_HCL_LEN {
        return Err(Error::refused(
            Reason::ReportMalformed,
            format!("HCL report has {} bytes (at most {MAX_HCL_LEN})", hcl.len()),
        ));
    }
    if !hcl.starts_with(HCL_MAGIC) {
        return Err(Error::refused(
            Reason::ReportMalformed,
            "HCL report does not start with `HCLA`",
        ));
    }
    let snp = evidence::decode_report(hcl, ReportFormat::AzureHcl)?;

    let header = HCL_HEADER_LEN + REPORT_LEN;
    let (Some(data_size), Some(report_type), Some(hash_type), Some(variable_size)) = (
        u32_at(hcl, header),
        u32_at(hcl, header + 8),
        u32_at(hcl, header + 12),
        u32_at(hcl, header + 16),
    ) else {
        return Err(malformed(format!(
            "HCL report has {} bytes: no runtime data header",
            hcl.len()
        )));
    };
    if report_type != REPORT_TYPE_SNP {
        return Err(malformed(format!(
            "runtime data report type {report_type} is not SNP ({REPORT_TYPE_SNP})"
        )));
    }
    let hash = RuntimeHash::from_igvm(hash_type)
        .ok_or_else(|| malformed(format!("runtime data hash type {hash_type} is unknown")))?;
    let variable_size = variable_size as usize;
    if (data_size as usize) < RUNTIME_HEADER_LEN + variable_size {
        return Err(malformed(format!(
            "runtime data size {data_size} cannot hold {variable_size} bytes of variable data"
        )));
    }
    let bytes = hcl
        .get(VARIABLE_DATA_OFFSET..VARIABLE_DATA_OFFSET + variable_size)
        .ok_or_else(|| {
            malformed(format!(
                "{variable_size} bytes of runtime data do not fit in {} bytes",
                hcl.len()
            ))
        })?
        .to_vec();

    let doc: RuntimeDataDoc = serde_json::from_slice(&bytes)
        .map_err(|e| malformed(format!("runtime data is not the expected JSON: {e}")))?;
    let ak = doc
        .keys
        .iter()
        .find(|k| k.kid == AK_KID)
        .ok_or_else(|| malformed(format!("runtime data names no `{AK_KID}` key")))?;
    if ak.kty != "RSA" {
        return Err(malformed(format!(
            "`{AK_KID}` is a {} key, not RSA",
            ak.kty
        )));
    }
    let (Some(n), Some(e)) = (&ak.n, &ak.e) else {
        return Err(malformed(format!("`{AK_KID}` lacks `n` or `e`")));
    };
    let attestation_key = RsaKey {
        n: b64url("HCLAkPub.n", n)?,
        e: b64url("HCLAkPub.e", e)?,
    };
    let user_data = doc
        .user_data
        .as_deref()
        .map(|hex_text| {
            hex::decode(hex_text)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| malformed("`user-data` is not 128 hex digits"))
        })
        .transpose()?;
    let vm_configuration = doc
        .vm_configuration
        .map(|c| VmConfiguration {
            secure_boot: c.secure_boot,
            tpm_enabled: c.tpm_enabled,
            console_enabled: c.console_enabled,
            vm_unique_id: c.vm_unique_id,
        })
        .unwrap_or_default();
    Ok((
        snp,
        RuntimeData {
            bytes,
            hash,
            attestation_key,
            user_data,
            vm_configuration,
        },
    ))
}

/// Azure confidential VM evidence: the SNP report inside an HCL report, with its
/// certificates, the runtime data, and a vTPM quote. Framed and parsed, not verified:
/// [`crate::Verifier::verify_platform_at`] checks it.
#[derive(Clone, Debug)]
pub struct AzureVtpmEvidence {
    pub(crate) snp: Evidence,
    pub(crate) runtime: RuntimeData,
    pub(crate) quote: TpmQuote,
    hcl: Vec<u8>,
}

impl AzureVtpmEvidence {
    /// Builds the evidence from the whole HCL report (runtime data included), the quote and
    /// the certificates (PEM or DER, any order, as for [`Evidence::from_parts`]).
    ///
    /// Fails with `report_malformed`, `runtime_data_malformed`, `quote_malformed` or a
    /// certificate reason.
    pub fn from_parts(
        hcl_report: &[u8],
        quote: TpmQuote,
        certs: Vec<Vec<u8>>,
    ) -> Result<Self, Error> {
        let (report, runtime) = parse_hcl(hcl_report)?;
        Ok(AzureVtpmEvidence {
            snp: Evidence::from_parts(&report, ReportFormat::Raw, certs)?,
            runtime,
            quote,
            hcl: hcl_report.to_vec(),
        })
    }

    /// The SNP part: the report and its certificates.
    pub fn snp(&self) -> &Evidence {
        &self.snp
    }

    /// The vTPM attestation key the runtime data names (`HCLAkPub`).
    pub fn attestation_key(&self) -> &RsaKey {
        &self.runtime.attestation_key
    }

    /// The runtime data's `user-data`, when it has one.
    pub fn user_data(&self) -> Option<&[u8; 64]> {
        self.runtime.user_data.as_ref()
    }
}

/// The wire form of [`AzureVtpmEvidence`] (DESIGN §6, docs/attestation.md):
/// `{"type":"az-snp-vtpm","hclReport": base64, "tpmQuote": {"message","signature": base64,
/// "pcrs": [hex…]}, "certs"?: {…}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AzureVtpmWire {
    /// The whole HCL report (the vTPM NV index 0x01400001), standard base64.
    pub hcl_report: String,
    /// The vTPM quote.
    pub tpm_quote: TpmQuoteWire,
    /// The VCEK and its chain (PEM); the workload reads them from Azure's THIM endpoint.
    #[serde(default)]
    pub certs: WireCerts,
}

/// The quote of [`AzureVtpmWire`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpmQuoteWire {
    /// The marshalled `TPMS_ATTEST`, standard base64.
    pub message: String,
    /// Its signature by the attestation key, standard base64.
    pub signature: String,
    /// The SHA-256 PCR values, index = PCR number, hex.
    pub pcrs: Vec<String>,
}

impl TryFrom<AzureVtpmWire> for AzureVtpmEvidence {
    type Error = Error;

    fn try_from(wire: AzureVtpmWire) -> Result<Self, Error> {
        let b64 = |reason: Reason, field: &str, text: &str| {
            STANDARD
                .decode(text.trim())
                .map_err(|e| Error::refused(reason, format!("{field} is not base64: {e}")))
        };
        let hcl = b64(Reason::ReportMalformed, "hclReport", &wire.hcl_report)?;
        let q = wire.tpm_quote;
        let pcrs = q
            .pcrs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                hex::decode(p).map_err(|e| {
                    Error::refused(Reason::QuoteMalformed, format!("pcrs[{i}] is not hex: {e}"))
                })
            })
            .collect::<Result<_, _>>()?;
        let quote = TpmQuote::new(
            b64(Reason::QuoteMalformed, "tpmQuote.message", &q.message)?,
            b64(Reason::QuoteMalformed, "tpmQuote.signature", &q.signature)?,
            pcrs,
        )?;
        AzureVtpmEvidence::from_parts(&hcl, quote, wire.certs.into_pems())
    }
}

impl From<&AzureVtpmEvidence> for AzureVtpmWire {
    fn from(evidence: &AzureVtpmEvidence) -> Self {
        let q = &evidence.quote;
        AzureVtpmWire {
            hcl_report: STANDARD.encode(&evidence.hcl),
            tpm_quote: TpmQuoteWire {
                message: STANDARD.encode(q.message()),
                signature: STANDARD.encode(q.signature()),
                pcrs: q.pcrs().iter().map(hex::encode).collect(),
            },
            certs: WireCerts::from(&evidence.snp.certs),
        }
    }
}

/// The evidence JSON that trustee's `az-snp-vtpm` attester writes, in either of its forms:
/// version 1 and later (`hcl_report` base64url, `tpm_quote` with hex `message`, `signature`
/// and `pcrs`, `vcek` PEM) or the unversioned original (`report` and the quote's parts as
/// byte arrays). Read by `keyferry attest verify`; never accepted by the release endpoint.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TrusteeEvidence {
    Versioned {
        version: u32,
        hcl_report: String,
        tpm_quote: TrusteeQuote<String>,
        vcek: String,
    },
    Original {
        report: Vec<u8>,
        quote: TrusteeQuote<Vec<u8>>,
        vcek: String,
    },
}

#[derive(Debug, Deserialize)]
struct TrusteeQuote<B> {
    message: B,
    signature: B,
    pcrs: Vec<B>,
}

impl AzureVtpmEvidence {
    /// Reads trustee's `az-snp-vtpm` evidence JSON (its attester's output), with `extra_certs`
    /// beside the VCEK it carries (the ASK is optional: AMD's are built in).
    pub fn from_trustee_json(json: &[u8], extra_certs: Vec<Vec<u8>>) -> Result<Self, Error> {
        let hex_field = |reason: Reason, field: &str, text: &str| {
            hex::decode(text)
                .map_err(|e| Error::refused(reason, format!("{field} is not hex: {e}")))
        };
        let doc: TrusteeEvidence = serde_json::from_slice(json).map_err(|e| {
            Error::refused(
                Reason::ReportMalformed,
                format!("not trustee az-snp-vtpm evidence: {e}"),
            )
        })?;
        let (hcl, quote, vcek) = match doc {
            TrusteeEvidence::Versioned {
                version,
                hcl_report,
                tpm_quote: q,
                vcek,
            } => {
                if version == 0 {
                    return Err(Error::refused(
                        Reason::ReportMalformed,
                        "trustee evidence version 0 has no `hcl_report`",
                    ));
                }
                let hcl = URL_SAFE_NO_PAD
                    .decode(hcl_report.trim_end_matches('='))
                    .map_err(|e| {
                        Error::refused(
                            Reason::ReportMalformed,
                            format!("hcl_report is not base64url: {e}"),
                        )
                    })?;
                let pcrs = q
                    .pcrs
                    .iter()
                    .map(|p| hex_field(Reason::QuoteMalformed, "tpm_quote.pcrs", p))
                    .collect::<Result<_, _>>()?;
                let quote = TpmQuote::new(
                    hex_field(Reason::QuoteMalformed, "tpm_quote.message", &q.message)?,
                    hex_field(Reason::QuoteMalformed, "tpm_quote.signature", &q.signature)?,
                    pcrs,
                )?;
                (hcl, quote, vcek)
            }
            TrusteeEvidence::Original {
                report,
                quote: q,
                vcek,
            } => (report, TpmQuote::new(q.message, q.signature, q.pcrs)?, vcek),
        };
        // trustee writes the VCEK as PEM, or (version 1 on) as bare base64 of the DER.
        let vcek = if vcek.contains("-----BEGIN") {
            vcek.into_bytes()
        } else {
            let text: String = vcek.split_whitespace().collect();
            STANDARD
                .decode(&text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|e| {
                    Error::refused(Reason::CertMalformed, format!("vcek is not base64: {e}"))
                })?
        };
        let mut certs = vec![vcek];
        certs.extend(extra_certs);
        AzureVtpmEvidence::from_parts(&hcl, quote, certs)
    }
}
