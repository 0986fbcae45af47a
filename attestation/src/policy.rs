//! Release policies: per use case, the JSON document that says which verified guests may
//! receive keys (DESIGN §6 step 5), and their evaluation into a [`VerifiedEvidence`].
//!
//! ```json
//! {
//!   "measurements": ["<96 hex digits>", "..."],
//!   "host_data": ["<64 hex digits>"],
//!   "min_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115},
//!   "allow_debug": false,
//!   "vmpls": [0],
//!   "family_id": "<32 hex digits>",
//!   "image_id": "<32 hex digits>",
//!   "smt": "allowed",
//!   "allow_migration_agent": false,
//!   "min_report_version": 2,
//!   "pcrs": {"4": ["<64 hex digits>"], "7": ["<64 hex digits>"]}
//! }
//! ```
//! `pcrs` constrains the SHA-256 PCRs of a vTPM quote (`az-snp-vtpm` evidence): each listed
//! PCR must be quoted with one of its allowed values, so evidence without a quote fails it.
//! Only `measurements` is required. Absent `host_data`, `min_tcb`, `family_id`, `image_id`
//! and `min_report_version` do not constrain; the other fields default to the safe choice
//! (no debug, VMPL 0 only, no migration agent). Unknown fields are refused, so a misspelt
//! rule cannot silently vanish.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::claims::{Claims, Tcb};
use crate::error::{Error, Reason};
use crate::verifier::{ReleaseBinding, VerifiedKeyGeneration, VerifiedReport};
use crate::vtpm::{PCR_COUNT, PCR_LEN};

/// Whether the platform may run with SMT (simultaneous multithreading) enabled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtRule {
    /// SMT may be on.
    #[default]
    Allowed,
    /// Refuse reports whose platform has SMT enabled (PLATFORM_INFO bit 0): sibling
    /// hyperthreads are a side-channel risk some deployments exclude.
    Forbidden,
}

/// Minimum security version per TCB component, compared with `reported_tcb` (the TCB the
/// VCEK/VLEK certifies, so the host cannot inflate it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinimumTcb {
    /// Minimum PSP bootloader SVN.
    #[serde(default)]
    pub bootloader: u8,
    /// Minimum PSP OS (TEE) SVN.
    #[serde(default)]
    pub tee: u8,
    /// Minimum SNP firmware SVN.
    #[serde(default)]
    pub snp: u8,
    /// Minimum microcode patch level.
    #[serde(default)]
    pub microcode: u8,
    /// Minimum FMC SVN; applies only to reports that carry one (Turin and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
}

/// The policy document as written (hex strings); validated into [`ReleasePolicy`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDocument {
    measurements: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host_data: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_tcb: Option<MinimumTcb>,
    #[serde(default)]
    allow_debug: bool,
    #[serde(default = "default_vmpls")]
    vmpls: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    family_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image_id: Option<String>,
    #[serde(default)]
    smt: SmtRule,
    #[serde(default)]
    allow_migration_agent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_report_version: Option<u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pcrs: BTreeMap<String, Vec<String>>,
}

fn default_vmpls() -> Vec<u32> {
    vec![0]
}

/// A validated release policy. Parse with [`ReleasePolicy::from_json`] (or serde), evaluate
/// with [`ReleasePolicy::evaluate`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PolicyDocument", into = "PolicyDocument")]
pub struct ReleasePolicy {
    measurements: Vec<[u8; 48]>,
    host_data: Option<Vec<[u8; 32]>>,
    min_tcb: Option<MinimumTcb>,
    allow_debug: bool,
    vmpls: Vec<u32>,
    family_id: Option<[u8; 16]>,
    image_id: Option<[u8; 16]>,
    smt: SmtRule,
    allow_migration_agent: bool,
    min_report_version: Option<u32>,
    /// Allowed values per vTPM PCR.
    pcrs: BTreeMap<u8, Vec<[u8; PCR_LEN]>>,
}

/// Proof that a report verified for a release (its `report_data` bound to a nonce and a TEE
/// key) satisfied a release policy. Only [`ReleasePolicy::evaluate`] makes one, from a
/// [`VerifiedReport`]; functions that release keys require it.
///
/// An [`crate::InspectedReport`], whose `report_data` may not have been checked, is no
/// release proof:
///
/// ```compile_fail
/// # use attestation::{Evidence, ReleasePolicy, ReportDataCheck, Verifier};
/// # fn f(verifier: &Verifier, evidence: &Evidence, policy: &ReleasePolicy) -> Result<(), attestation::Error> {
/// let inspected = verifier.inspect(evidence, ReportDataCheck::NotChecked)?;
/// let released = policy.evaluate(&inspected)?; // error: expected `&VerifiedReport`
/// # Ok(()) }
/// ```
///
/// while the same steps with the binding compile:
///
/// ```
/// # use attestation::{Evidence, ReleaseBinding, ReleasePolicy, Verifier};
/// # fn f(verifier: &Verifier, evidence: &Evidence, policy: &ReleasePolicy) -> Result<(), attestation::Error> {
/// let verified = verifier.verify(evidence, &ReleaseBinding::new(&[7; 32], [9; 32]))?;
/// let released = policy.evaluate(&verified)?;
/// assert_eq!(released.tee_public_key(), &[9; 32]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VerifiedEvidence {
    claims: Claims,
    binding: ReleaseBinding,
}

impl VerifiedEvidence {
    /// The attested claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The TEE key the report bound: released material is sealed to this key, never to one
    /// the request names separately.
    pub fn tee_public_key(&self) -> &[u8; 32] {
        self.binding.tee_public_key()
    }
}

/// Proof that a key was generated by an attested key generator that the key-generation policy
/// admits, for exactly the handover message of [`AttestedKeyGeneration::message_digest`].
#[derive(Clone, Debug)]
pub struct AttestedKeyGeneration {
    claims: Claims,
    message_digest: [u8; 32],
}

impl AttestedKeyGeneration {
    /// The key generator's attested claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The digest of the handover message the key generator vouched for.
    pub fn message_digest(&self) -> &[u8; 32] {
        &self.message_digest
    }
}

fn parse_hex<const N: usize>(field: &str, text: &str) -> Result<[u8; N], Error> {
    let bytes =
        hex::decode(text.trim()).map_err(|e| Error::policy(field, format!("not hex: {e}")))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        Error::policy(
            field,
            format!(
                "expected {N} bytes ({} hex digits), got {}",
                2 * N,
                bytes.len()
            ),
        )
    })
}

impl TryFrom<PolicyDocument> for ReleasePolicy {
    type Error = Error;

    fn try_from(doc: PolicyDocument) -> Result<Self, Error> {
        if doc.measurements.is_empty() {
            return Err(Error::policy(
                "measurements",
                "must list at least one allowed measurement",
            ));
        }
        let measurements = doc
            .measurements
            .iter()
            .enumerate()
            .map(|(i, m)| parse_hex::<48>(&format!("measurements[{i}]"), m))
            .collect::<Result<_, _>>()?;
        let host_data = match &doc.host_data {
            Some(list) if list.is_empty() => {
                return Err(Error::policy(
                    "host_data",
                    "an empty list would refuse everything; omit the field to allow any",
                ));
            }
            Some(list) => Some(
                list.iter()
                    .enumerate()
                    .map(|(i, h)| parse_hex::<32>(&format!("host_data[{i}]"), h))
                    .collect::<Result<_, _>>()?,
            ),
            None => None,
        };
        if doc.vmpls.is_empty() {
            return Err(Error::policy("vmpls", "must list at least one VMPL"));
        }
        if let Some(v) = doc.vmpls.iter().find(|v| **v > 3) {
            return Err(Error::policy("vmpls", format!("VMPL {v} is not in 0..=3")));
        }
        if let Some(v) = doc.min_report_version
            && !(2..=5).contains(&v)
        {
            return Err(Error::policy(
                "min_report_version",
                format!("{v} is not in 2..=5"),
            ));
        }
        let mut pcrs = BTreeMap::new();
        for (index, values) in &doc.pcrs {
            let field = format!("pcrs.{index}");
            let pcr = index
                .parse::<u8>()
                .ok()
                .filter(|i| usize::from(*i) < PCR_COUNT)
                .ok_or_else(|| {
                    Error::policy(&field, format!("not a PCR number (0..{PCR_COUNT})"))
                })?;
            if values.is_empty() {
                return Err(Error::policy(
                    &field,
                    "an empty list would refuse everything; omit the PCR to allow any",
                ));
            }
            let allowed = values
                .iter()
                .enumerate()
                .map(|(i, v)| parse_hex::<PCR_LEN>(&format!("{field}[{i}]"), v))
                .collect::<Result<_, _>>()?;
            if pcrs.insert(pcr, allowed).is_some() {
                return Err(Error::policy(&field, "PCR listed twice"));
            }
        }
        Ok(ReleasePolicy {
            pcrs,
            measurements,
            host_data,
            min_tcb: doc.min_tcb,
            allow_debug: doc.allow_debug,
            vmpls: doc.vmpls,
            family_id: doc
                .family_id
                .as_deref()
                .map(|f| parse_hex::<16>("family_id", f))
                .transpose()?,
            image_id: doc
                .image_id
                .as_deref()
                .map(|f| parse_hex::<16>("image_id", f))
                .transpose()?,
            smt: doc.smt,
            allow_migration_agent: doc.allow_migration_agent,
            min_report_version: doc.min_report_version,
        })
    }
}

impl From<ReleasePolicy> for PolicyDocument {
    fn from(p: ReleasePolicy) -> Self {
        PolicyDocument {
            measurements: p.measurements.iter().map(hex::encode).collect(),
            host_data: p
                .host_data
                .map(|list| list.iter().map(hex::encode).collect()),
            min_tcb: p.min_tcb,
            allow_debug: p.allow_debug,
            vmpls: p.vmpls,
            family_id: p.family_id.map(hex::encode),
            image_id: p.image_id.map(hex::encode),
            smt: p.smt,
            allow_migration_agent: p.allow_migration_agent,
            min_report_version: p.min_report_version,
            pcrs: p
                .pcrs
                .iter()
                .map(|(i, values)| (i.to_string(), values.iter().map(hex::encode).collect()))
                .collect(),
        }
    }
}

fn refuse(reason: Reason, detail: String) -> Result<(), Error> {
    Err(Error::refused(reason, detail))
}

impl ReleasePolicy {
    /// Parses and validates a policy document. Errors name the offending field.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let doc: PolicyDocument =
            serde_json::from_str(text).map_err(|e| Error::policy("(document)", e.to_string()))?;
        ReleasePolicy::try_from(doc)
    }

    /// Evaluates the policy on a report verified for a release. Refuses with the first failed
    /// rule's reason; the report stays with the caller so that a refusal can be audited with
    /// its claims.
    pub fn evaluate(&self, report: &VerifiedReport) -> Result<VerifiedEvidence, Error> {
        self.check_claims(report.claims())?;
        Ok(VerifiedEvidence {
            claims: report.claims().clone(),
            binding: report.binding().clone(),
        })
    }

    /// Evaluates the policy, as a **key-generation policy**, on a key generator's verified
    /// report: the same rules as a release policy (measurements, host data, minimum TCB, no
    /// debug…). The proof it makes is what a Type-2 requires before it stores a split.
    pub fn admit_key_generation(
        &self,
        report: &VerifiedKeyGeneration,
    ) -> Result<AttestedKeyGeneration, Error> {
        self.check_claims(report.claims())?;
        Ok(AttestedKeyGeneration {
            claims: report.claims().clone(),
            message_digest: *report.message_digest(),
        })
    }

    /// The policy's rules on `claims`, with no proof made: for offline inspection and dry
    /// runs (`keyferry attest verify --policy`). The same rules, in the same order, as
    /// [`ReleasePolicy::evaluate`].
    pub fn check_claims(&self, c: &Claims) -> Result<(), Error> {
        if let Some(min) = self.min_report_version
            && c.version < min
        {
            refuse(
                Reason::ReportVersionBelowMinimum,
                format!("report version {} < {min}", c.version),
            )?;
        }
        if !self.measurements.contains(&c.measurement) {
            refuse(
                Reason::MeasurementNotAllowed,
                format!("measurement {} is not allowed", hex::encode(c.measurement)),
            )?;
        }
        if let Some(allowed) = &self.host_data
            && !allowed.contains(&c.host_data)
        {
            refuse(
                Reason::HostDataNotAllowed,
                format!("host_data {} is not allowed", hex::encode(c.host_data)),
            )?;
        }
        if let Some(family_id) = &self.family_id
            && *family_id != c.family_id
        {
            refuse(
                Reason::FamilyIdMismatch,
                format!("family_id {}", hex::encode(c.family_id)),
            )?;
        }
        if let Some(image_id) = &self.image_id
            && *image_id != c.image_id
        {
            refuse(
                Reason::ImageIdMismatch,
                format!("image_id {}", hex::encode(c.image_id)),
            )?;
        }
        if !self.vmpls.contains(&c.vmpl) {
            refuse(
                Reason::VmplNotAllowed,
                format!("VMPL {} (allowed: {:?})", c.vmpl, self.vmpls),
            )?;
        }
        if c.policy.debug && !self.allow_debug {
            refuse(
                Reason::DebugNotAllowed,
                "guest policy allows debugging (bit 19)".into(),
            )?;
        }
        if c.policy.migration_agent && !self.allow_migration_agent {
            refuse(
                Reason::MigrationAgentNotAllowed,
                "guest policy allows a migration agent (bit 18)".into(),
            )?;
        }
        if self.smt == SmtRule::Forbidden && c.platform_info.smt_enabled {
            refuse(
                Reason::SmtNotAllowed,
                "SMT is enabled on the platform".into(),
            )?;
        }
        if let Some(min) = &self.min_tcb {
            check_tcb(&c.reported_tcb, min)?;
        }
        self.check_pcrs(c)
    }
}

impl ReleasePolicy {
    fn check_pcrs(&self, c: &Claims) -> Result<(), Error> {
        if self.pcrs.is_empty() {
            return Ok(());
        }
        let Some(vtpm) = &c.vtpm else {
            return refuse(
                Reason::PcrNotAllowed,
                "the policy constrains vTPM PCRs and the evidence has no vTPM quote".into(),
            );
        };
        for (index, allowed) in &self.pcrs {
            let Some(value) = vtpm.pcrs.get(index) else {
                return refuse(Reason::PcrNotAllowed, format!("PCR {index} is not quoted"));
            };
            if !allowed.iter().any(|a| hex::encode(a) == *value) {
                return refuse(
                    Reason::PcrNotAllowed,
                    format!("PCR {index} = {value} is not allowed"),
                );
            }
        }
        Ok(())
    }
}

fn check_tcb(tcb: &Tcb, min: &MinimumTcb) -> Result<(), Error> {
    let components = [
        ("bootloader", tcb.bootloader, min.bootloader),
        ("tee", tcb.tee, min.tee),
        ("snp", tcb.snp, min.snp),
        ("microcode", tcb.microcode, min.microcode),
    ];
    for (name, have, want) in components {
        if have < want {
            refuse(
                Reason::TcbBelowMinimum,
                format!("reported {name} SVN {have} < {want}"),
            )?;
        }
    }
    if let (Some(have), Some(want)) = (tcb.fmc, min.fmc)
        && have < want
    {
        refuse(
            Reason::TcbBelowMinimum,
            format!("reported fmc SVN {have} < {want}"),
        )?;
    }
    Ok(())
}
