//! The attested claims: every field of a verified report in readable JSON (hex strings, named
//! flags). `keyferry attest verify` prints them and the audit log records them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sev::firmware::guest::AttestationReport;
use sev::firmware::host::TcbVersion;

use crate::azure::VmConfiguration;
use crate::report::{Generation, SigningKey};
use crate::vtpm::PCR_LEN;

/// Claims of a verified SNP report. Plain data: holding a `Claims` proves nothing; the proofs
/// are [`crate::VerifiedReport`] and [`crate::VerifiedEvidence`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Report format version (2, 3 or 5).
    pub version: u32,
    /// Processor generation: from the pinned AMD root, or from the report's CPUID for an
    /// extra (simulated) root; `null` when neither tells (a v2 report under an extra root).
    pub generation: Option<Generation>,
    /// Which key signed the report.
    pub signing_key: SigningKey,
    /// Launch measurement (48 bytes).
    #[serde(with = "hex_array")]
    pub measurement: [u8; 48],
    /// Data the host provided at launch (32 bytes), e.g. a container policy digest.
    #[serde(with = "hex_array")]
    pub host_data: [u8; 32],
    /// Data the guest put in the report (64 bytes): the nonce binding.
    #[serde(with = "hex_array")]
    pub report_data: [u8; 64],
    /// The chip id (64 bytes), or `"masked"` when the platform masks it (MASK_CHIP_ID, usual
    /// with a VLEK).
    #[serde(with = "chip_id")]
    pub chip_id: Option<[u8; 64]>,
    /// The VMPL the report was requested from.
    pub vmpl: u32,
    /// The guest's security version number.
    pub guest_svn: u32,
    /// The guest policy the owner set at launch.
    pub policy: PolicyClaims,
    /// Platform state when the report was made.
    pub platform_info: PlatformClaims,
    /// TCB the signing key was derived for; equal to the VCEK/VLEK's TCB extensions.
    pub reported_tcb: Tcb,
    /// TCB now running.
    pub current_tcb: Tcb,
    /// TCB committed (anti-rollback floor).
    pub committed_tcb: Tcb,
    /// TCB when the guest was launched.
    pub launch_tcb: Tcb,
    /// Firmware versions (`major.minor.build`).
    pub firmware: FirmwareClaims,
    /// Family id from the ID block (16 bytes).
    #[serde(with = "hex_array")]
    pub family_id: [u8; 16],
    /// Image id from the ID block (16 bytes).
    #[serde(with = "hex_array")]
    pub image_id: [u8; 16],
    /// SHA-384 of the ID key that signed the ID block (zero without an ID block).
    #[serde(with = "hex_array")]
    pub id_key_digest: [u8; 48],
    /// SHA-384 of the author key that certified the ID key (zero without one).
    #[serde(with = "hex_array")]
    pub author_key_digest: [u8; 48],
    /// Whether `author_key_digest` is present (KEY_INFO.AUTHOR_KEY_EN).
    pub author_key_enabled: bool,
    /// Report id of this guest (32 bytes).
    #[serde(with = "hex_array")]
    pub report_id: [u8; 32],
    /// Report id of the guest's migration agent (32 bytes; all ones when none).
    #[serde(with = "hex_array")]
    pub report_id_ma: [u8; 32],
    /// CPUID family, model and stepping (v3 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuid: Option<CpuidClaims>,
    /// What the vTPM quote of an Azure confidential VM attests (`az-snp-vtpm` evidence only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vtpm: Option<VtpmClaims>,
}

/// Claims of an Azure confidential VM's vTPM: the quoted PCRs and the paravisor's account of
/// the VM configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VtpmClaims {
    /// The quoted SHA-256 PCR values, hex, by PCR number.
    pub pcrs: BTreeMap<u8, String>,
    /// The runtime data's `vm-configuration`.
    pub vm_configuration: VmConfiguration,
}

impl VtpmClaims {
    pub(crate) fn new(pcrs: &BTreeMap<u8, [u8; PCR_LEN]>, config: &VmConfiguration) -> Self {
        VtpmClaims {
            pcrs: pcrs.iter().map(|(i, v)| (*i, hex::encode(v))).collect(),
            vm_configuration: config.clone(),
        }
    }
}

/// Guest policy flags (GUEST_POLICY).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyClaims {
    /// Minimum ABI version (`major.minor`).
    pub abi: String,
    /// Bit 16: the host may use SMT.
    pub smt: bool,
    /// Bit 18: a migration agent may be associated.
    pub migration_agent: bool,
    /// Bit 19: the hypervisor may debug the guest (memory readable: never for production).
    pub debug: bool,
    /// Bit 20: the guest may run on one socket only.
    pub single_socket: bool,
    /// The whole 64-bit value, hex.
    pub raw: String,
}

/// Platform flags (PLATFORM_INFO).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformClaims {
    /// Bit 0: SMT is enabled on the platform.
    pub smt_enabled: bool,
    /// Bit 1: TSME is enabled.
    pub tsme_enabled: bool,
    /// Bit 2: ECC memory is in use.
    pub ecc_enabled: bool,
    /// Bit 3: RAPL is disabled.
    pub rapl_disabled: bool,
    /// Bit 4: ciphertext hiding is enabled.
    pub ciphertext_hiding_enabled: bool,
    /// Bit 5: alias check completed (v3+).
    pub alias_check_complete: bool,
    /// The whole 64-bit value, hex.
    pub raw: String,
}

/// A TCB version: security version numbers of each firmware component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tcb {
    /// PSP bootloader SVN.
    pub bootloader: u8,
    /// PSP OS (TEE) SVN.
    pub tee: u8,
    /// SNP firmware SVN.
    pub snp: u8,
    /// Microcode patch level.
    pub microcode: u8,
    /// FMC SVN (Turin and later only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
}

impl From<&TcbVersion> for Tcb {
    fn from(t: &TcbVersion) -> Self {
        Tcb {
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
            fmc: t.fmc,
        }
    }
}

impl From<Tcb> for TcbVersion {
    fn from(t: Tcb) -> Self {
        TcbVersion {
            fmc: t.fmc,
            bootloader: t.bootloader,
            tee: t.tee,
            snp: t.snp,
            microcode: t.microcode,
        }
    }
}

impl std::fmt::Display for Tcb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bl={} tee={} snp={} ucode={}",
            self.bootloader, self.tee, self.snp, self.microcode
        )?;
        if let Some(fmc) = self.fmc {
            write!(f, " fmc={fmc}")?;
        }
        Ok(())
    }
}

/// Firmware versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareClaims {
    /// Running firmware (`major.minor.build`).
    pub current: String,
    /// Committed firmware.
    pub committed: String,
}

/// CPUID identification of the processor (v3+ reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuidClaims {
    /// Combined family.
    pub family: u8,
    /// Combined model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

impl Claims {
    pub(crate) fn from_report(
        r: &AttestationReport,
        generation: Option<Generation>,
        signing_key: SigningKey,
    ) -> Self {
        let policy = r.policy;
        let platform = r.plat_info;
        let masked = r.chip_id.iter().all(|b| *b == 0);
        Claims {
            version: r.version,
            generation,
            signing_key,
            measurement: r.measurement,
            host_data: r.host_data,
            report_data: r.report_data,
            chip_id: (!masked).then_some(r.chip_id),
            vmpl: r.vmpl,
            guest_svn: r.guest_svn,
            policy: PolicyClaims {
                abi: format!("{}.{}", policy.abi_major(), policy.abi_minor()),
                smt: policy.smt_allowed(),
                migration_agent: policy.migrate_ma_allowed(),
                debug: policy.debug_allowed(),
                single_socket: policy.single_socket_required(),
                raw: format!("{:#x}", u64::from(policy)),
            },
            platform_info: PlatformClaims {
                smt_enabled: platform.smt_enabled(),
                tsme_enabled: platform.tsme_enabled(),
                ecc_enabled: platform.ecc_enabled(),
                rapl_disabled: platform.rapl_disabled(),
                ciphertext_hiding_enabled: platform.ciphertext_hiding_enabled(),
                alias_check_complete: platform.alias_check_complete(),
                raw: format!("{:#x}", u64::from(platform)),
            },
            reported_tcb: Tcb::from(&r.reported_tcb),
            current_tcb: Tcb::from(&r.current_tcb),
            committed_tcb: Tcb::from(&r.committed_tcb),
            launch_tcb: Tcb::from(&r.launch_tcb),
            firmware: FirmwareClaims {
                current: r.current.to_string(),
                committed: r.committed.to_string(),
            },
            family_id: r.family_id,
            image_id: r.image_id,
            id_key_digest: r.id_key_digest,
            author_key_digest: r.author_key_digest,
            author_key_enabled: r.key_info.author_key_en(),
            report_id: r.report_id,
            report_id_ma: r.report_id_ma,
            cpuid: match (r.cpuid_fam_id, r.cpuid_mod_id, r.cpuid_step) {
                (Some(family), Some(model), Some(stepping)) => Some(CpuidClaims {
                    family,
                    model,
                    stepping,
                }),
                _ => None,
            },
            vtpm: None,
        }
    }
}

/// Fixed-size byte arrays as lowercase hex strings.
mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; N];
        hex::decode_to_slice(&text, &mut out).map_err(D::Error::custom)?;
        Ok(out)
    }
}

/// A chip id as hex, or the string `masked`.
mod chip_id {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) const MASKED: &str = "masked";

    pub(super) fn serialize<S: Serializer>(id: &Option<[u8; 64]>, s: S) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => s.serialize_str(&hex::encode(id)),
            None => s.serialize_str(MASKED),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 64]>, D::Error> {
        let text = String::deserialize(d)?;
        if text == MASKED {
            return Ok(None);
        }
        let mut out = [0u8; 64];
        hex::decode_to_slice(&text, &mut out).map_err(D::Error::custom)?;
        Ok(Some(out))
    }
}
