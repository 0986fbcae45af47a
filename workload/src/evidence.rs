//! Evidence sources: SNP reports binding a coordinator's nonce and this fetch's TEE key
//! (`report_data = SHA-512(nonce ‖ teePublicKey)`, DESIGN §5.3), with their certificates, in
//! the release request's wire form.
//!
//! [`SevGuest`] asks the AMD Secure Processor through `/dev/sev-guest`; [`Simulated`] signs
//! with the attestation crate's simulated AMD and exists for the dev profile only: it refuses
//! to be built with any other profile, so a production config can never reach it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use attestation::simulated::{ChipSpec, ReportFields, SimulatedAmd, SimulatedChip};
use attestation::{Evidence, EvidenceWire, ReportFormat};

use crate::WorkloadError;
use crate::config::{Config, EvidenceConfig, Profile, hex_field};

/// Produces SNP evidence whose `report_data` is exactly `report_data`.
#[async_trait]
pub trait EvidenceSource: Send + Sync + fmt::Debug {
    /// The report and its endorsement certificates, as sent in `evidence`.
    async fn evidence(&self, report_data: [u8; 64]) -> Result<EvidenceWire, WorkloadError>;
}

fn evidence_err(msg: impl Into<String>) -> WorkloadError {
    WorkloadError::Evidence(msg.into())
}

/// The guest's `/dev/sev-guest`, through the `sev` crate.
///
/// Certificates come from the host's certificate table of an extended report where the
/// platform provides one (Azure, ACI); otherwise from `certs_file`, a PEM bundle the operator
/// fetched from AMD's KDS for this chip (GCE, EC2).
#[derive(Debug, Clone)]
pub struct SevGuest {
    certs_file: Option<PathBuf>,
    vmpl: u32,
}

impl SevGuest {
    /// A source requesting reports at `vmpl`, with `certs_file` as the certificate fallback.
    pub fn new(certs_file: Option<PathBuf>, vmpl: u32) -> Self {
        Self { certs_file, vmpl }
    }
}

/// A report and the DER or PEM certificates found with it.
type RawEvidence = (Vec<u8>, Vec<Vec<u8>>);

#[cfg(target_os = "linux")]
fn request_report(report_data: [u8; 64], vmpl: u32) -> Result<RawEvidence, WorkloadError> {
    use sev::firmware::guest::Firmware;
    use sev::firmware::host::CertType;

    let mut firmware =
        Firmware::open().map_err(|e| evidence_err(format!("cannot open /dev/sev-guest: {e}")))?;
    match firmware.get_ext_report(None, Some(report_data), Some(vmpl)) {
        Ok((report, table)) => {
            let certs = table
                .unwrap_or_default()
                .into_iter()
                .filter(|entry| {
                    matches!(
                        entry.cert_type,
                        CertType::ARK | CertType::ASK | CertType::VCEK | CertType::VLEK
                    )
                })
                .map(|entry| entry.data)
                .collect();
            Ok((report, certs))
        }
        // Some hypervisors do not implement the extended request: a plain report then, with
        // certificates from the configured file.
        Err(ext_err) => {
            let report = firmware
                .get_report(None, Some(report_data), Some(vmpl))
                .map_err(|e| {
                    evidence_err(format!(
                        "SNP report request failed: {e} (extended request: {ext_err})"
                    ))
                })?;
            Ok((report, Vec::new()))
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn request_report(_report_data: [u8; 64], _vmpl: u32) -> Result<RawEvidence, WorkloadError> {
    Err(evidence_err("/dev/sev-guest exists only on Linux"))
}

#[async_trait]
impl EvidenceSource for SevGuest {
    async fn evidence(&self, report_data: [u8; 64]) -> Result<EvidenceWire, WorkloadError> {
        let vmpl = self.vmpl;
        // The ioctl blocks while the PSP works: keep it off the async workers.
        let (report, mut certs) =
            tokio::task::spawn_blocking(move || request_report(report_data, vmpl))
                .await
                .map_err(|e| evidence_err(format!("report task failed: {e}")))??;
        if certs.is_empty() {
            let Some(path) = &self.certs_file else {
                return Err(evidence_err(
                    "the host provided no certificates and evidence.certs_file is not set",
                ));
            };
            let pem = tokio::fs::read(path)
                .await
                .map_err(|e| evidence_err(format!("cannot read {}: {e}", path.display())))?;
            certs.push(pem);
        }
        let evidence = Evidence::from_parts(&report, ReportFormat::Raw, certs)
            .map_err(|e| evidence_err(format!("the report or its certificates: {e}")))?;
        Ok(EvidenceWire::from(&evidence))
    }
}

/// The attestation crate's simulated attester: a VCEK issued by a simulated AMD CA loaded
/// from PEM, signing reports with the configured measurement, host data and policy.
/// **Dev profile only**; coordinators accept it only when they trust that CA's ARK.
pub struct Simulated {
    chip: SimulatedChip,
    fields: ReportFields,
}

impl fmt::Debug for Simulated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulated")
            .field("measurement", &hex::encode(self.fields.measurement))
            .field("host_data", &hex::encode(self.fields.host_data))
            .field("policy", &format_args!("{:#x}", self.fields.policy))
            .finish_non_exhaustive()
    }
}

impl Simulated {
    /// A simulated attester with the CA in `ca_pem` (`SimulatedAmd::to_pem`). Refuses any
    /// profile but dev.
    pub fn new(
        profile: Profile,
        ca_pem: &str,
        measurement: [u8; 48],
        host_data: [u8; 32],
        policy: Option<u64>,
    ) -> Result<Self, WorkloadError> {
        if profile != Profile::Dev {
            return Err(WorkloadError::DevOnly("simulated SNP evidence"));
        }
        let ca = SimulatedAmd::from_pem(ca_pem)
            .map_err(|e| evidence_err(format!("simulated CA: {e}")))?;
        let chip = ca
            .chip(ChipSpec::milan())
            .map_err(|e| evidence_err(format!("simulated chip: {e}")))?;
        let mut fields = chip.report_fields();
        fields.measurement = measurement;
        fields.host_data = host_data;
        if let Some(policy) = policy {
            fields.policy = policy;
        }
        Ok(Self { chip, fields })
    }

    /// From an `[evidence] source = "simulated"` config (reads `ca_file`).
    pub async fn from_config(config: &Config) -> Result<Self, WorkloadError> {
        let EvidenceConfig::Simulated {
            ca_file,
            measurement,
            host_data,
            policy,
        } = &config.evidence
        else {
            return Err(WorkloadError::Config(
                "evidence.source is not \"simulated\"".into(),
            ));
        };
        // Checked before touching the file, so production never even reads a CA.
        if !config.is_dev() {
            return Err(WorkloadError::DevOnly("simulated SNP evidence"));
        }
        let pem = zeroize::Zeroizing::new(
            tokio::fs::read_to_string(ca_file)
                .await
                .map_err(|e| evidence_err(format!("cannot read {}: {e}", ca_file.display())))?,
        );
        Self::new(
            config.profile,
            &pem,
            hex_field::<48>("measurement", measurement.as_deref())?,
            hex_field::<32>("host_data", host_data.as_deref())?,
            *policy,
        )
    }
}

#[async_trait]
impl EvidenceSource for Simulated {
    async fn evidence(&self, report_data: [u8; 64]) -> Result<EvidenceWire, WorkloadError> {
        let mut fields = self.fields.clone();
        fields.report_data = report_data;
        let evidence = self
            .chip
            .evidence(&fields)
            .map_err(|e| evidence_err(format!("simulated report: {e}")))?;
        Ok(EvidenceWire::from(&evidence))
    }
}

/// Builds the configured evidence source.
pub async fn evidence_source(config: &Config) -> Result<Arc<dyn EvidenceSource>, WorkloadError> {
    Ok(match &config.evidence {
        EvidenceConfig::SevGuest { certs_file, vmpl } => {
            Arc::new(SevGuest::new(certs_file.clone(), *vmpl))
        }
        EvidenceConfig::Simulated { .. } => Arc::new(Simulated::from_config(config).await?),
    })
}
