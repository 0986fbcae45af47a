//! The verifier: DESIGN §6 steps 1-4 in order, ending in a [`VerifiedReport`].

use std::time::SystemTime;

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq as _;

use crate::azure::AzureVtpmEvidence;
use crate::cert::Role;
use crate::chain::{self, ChainCache, TrustAnchors};
use crate::claims::{Claims, Tcb, VtpmClaims};
use crate::error::{Error, Reason};
use crate::evidence::{Evidence, PlatformEvidence};
use crate::report::{self, ReportGeneration, SigningKey};

/// The `report_data` a workload must put in its report for a release: SHA-512(nonce ‖
/// teePublicKey). Binding the TEE's public key means the released secrets can only be opened
/// inside the attested guest; binding the nonce makes the report single use.
pub fn expected_report_data(nonce: &[u8], tee_public_key: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(nonce);
    h.update(tee_public_key);
    h.finalize().into()
}

/// The binding a key release requires: `report_data` = SHA-512(nonce ‖ teePublicKey)
/// (DESIGN §5.3). A [`VerifiedReport`] keeps it, so that whatever is released on the strength
/// of the report can only be sealed to the TEE key the report names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseBinding {
    nonce: Vec<u8>,
    tee_public_key: [u8; 32],
    report_data: [u8; 64],
}

impl ReleaseBinding {
    /// The binding of a challenge `nonce` and the guest's X25519 `tee_public_key`.
    pub fn new(nonce: &[u8], tee_public_key: [u8; 32]) -> Self {
        ReleaseBinding {
            nonce: nonce.to_vec(),
            report_data: expected_report_data(nonce, &tee_public_key),
            tee_public_key,
        }
    }

    /// The challenge nonce: what a vTPM quote's `extraData` must be.
    pub fn nonce(&self) -> &[u8] {
        &self.nonce
    }

    /// The TEE key the report binds: the only key released material may be sealed to.
    pub fn tee_public_key(&self) -> &[u8; 32] {
        &self.tee_public_key
    }

    /// The 64 bytes the report's `report_data` must equal.
    pub fn report_data(&self) -> &[u8; 64] {
        &self.report_data
    }
}

/// Domain separation of attested key generation: a report made for a handover can never
/// pass as one made for a release (whose `report_data` hashes a nonce and a key, no domain).
pub const KEY_GENERATION_DOMAIN: &[u8] = b"keyferry/v1/handover";

/// The binding of a key generator's report (DESIGN §4.3): `report_data` = SHA-512(
/// `"keyferry/v1/handover"` ‖ challenge ‖ SHA-256 of the handover message). The challenge,
/// fresh from the Type-2, makes the report single use; the digest ties it to exactly the key
/// ids, public keys and sealed split it is sent with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGenerationBinding {
    message_digest: [u8; 32],
    report_data: [u8; 64],
}

impl KeyGenerationBinding {
    /// The binding of the Type-2's `challenge` and the handover message's `message_digest`.
    pub fn new(challenge: &[u8], message_digest: [u8; 32]) -> Self {
        let mut h = Sha512::new();
        h.update(KEY_GENERATION_DOMAIN);
        h.update(challenge);
        h.update(message_digest);
        KeyGenerationBinding {
            message_digest,
            report_data: h.finalize().into(),
        }
    }

    /// The 64 bytes the key generator's report must carry.
    pub fn report_data(&self) -> &[u8; 64] {
        &self.report_data
    }
}

/// Proof that a key generator's report verified (chain, signature, bindings) with
/// `report_data` equal to a [`KeyGenerationBinding`]: only
/// [`Verifier::verify_key_generation_at`] makes one, and only a policy admits it
/// ([`crate::ReleasePolicy::admit_key_generation`]).
#[derive(Clone, Debug)]
pub struct VerifiedKeyGeneration {
    claims: Claims,
    message_digest: [u8; 32],
}

impl VerifiedKeyGeneration {
    /// The attested claims of the key generator.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The digest of the handover message the report vouches for.
    pub fn message_digest(&self) -> &[u8; 32] {
        &self.message_digest
    }
}

/// What [`Verifier::inspect`] does with `report_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportDataCheck {
    /// Require exactly these 64 bytes.
    Expect([u8; 64]),
    /// **DANGER: no freshness and no key binding.** The report may be a replay of one made
    /// for anyone, years ago. Only for offline inspection (`keyferry attest verify` without
    /// `--report-data`); an inspected report can never release anything.
    NotChecked,
}

/// Proof that a report was verified *for a release*: the chain up to a pinned root, validity
/// periods, the VCEK/VLEK bindings, the signature, and `report_data` equal to a
/// [`ReleaseBinding`]. Only [`Verifier::verify`] makes one; only it can be evaluated into a
/// [`crate::VerifiedEvidence`].
#[derive(Clone, Debug)]
pub struct VerifiedReport {
    claims: Claims,
    binding: ReleaseBinding,
}

impl VerifiedReport {
    /// The attested claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The binding `report_data` was checked against.
    pub fn binding(&self) -> &ReleaseBinding {
        &self.binding
    }
}

/// A report checked like a [`VerifiedReport`] except, perhaps, for `report_data`
/// ([`ReportDataCheck`]): what offline inspection and policy dry runs read. It proves nothing
/// about freshness or the guest's key, so no release can be made from it.
#[derive(Clone, Debug)]
pub struct InspectedReport {
    claims: Claims,
}

impl InspectedReport {
    /// The attested claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
}

/// Verifies SEV-SNP evidence against pinned roots. Holds the chain cache, so keep one per
/// process (it is `Sync`; share it behind an `Arc`).
#[derive(Debug)]
pub struct Verifier {
    anchors: TrustAnchors,
    cache: ChainCache,
}

impl Verifier {
    /// A verifier that trusts AMD's Milan, Genoa and Turin roots only: the production setting.
    pub fn new() -> Result<Self, Error> {
        Self::with_extra_roots::<&[u8]>(&[])
    }

    /// A verifier that also trusts `extra_roots` (PEM, one or more certificates each, or DER),
    /// such as a [`crate::simulated::SimulatedAmd`] ARK. Only the dev profile may configure
    /// these; the broker enforces that, not this crate.
    pub fn with_extra_roots<R: AsRef<[u8]>>(extra_roots: &[R]) -> Result<Self, Error> {
        let roots: Vec<&[u8]> = extra_roots.iter().map(AsRef::as_ref).collect();
        Ok(Verifier {
            anchors: TrustAnchors::new(&roots)?,
            cache: ChainCache::default(),
        })
    }

    /// Verifies `evidence` for a release now. See [`Verifier::verify_at`].
    pub fn verify(
        &self,
        evidence: &Evidence,
        binding: &ReleaseBinding,
    ) -> Result<VerifiedReport, Error> {
        self.verify_at(evidence, binding, SystemTime::now())
    }

    /// Verifies `evidence` for a release with certificate validity judged at `at`: every
    /// step of [`Verifier::inspect_at`], with `report_data` required to equal `binding`.
    pub fn verify_at(
        &self,
        evidence: &Evidence,
        binding: &ReleaseBinding,
        at: SystemTime,
    ) -> Result<VerifiedReport, Error> {
        let claims = self.check(evidence, Some(binding.report_data()), at)?;
        Ok(VerifiedReport {
            claims,
            binding: binding.clone(),
        })
    }

    /// Verifies evidence of any platform for a release, certificate validity judged at `at`
    /// (DESIGN §6, one verifier per evidence type, one proof for all):
    /// - `sev-snp`: [`Verifier::verify_at`];
    /// - `az-snp-vtpm`: the SNP report as for `sev-snp` but with `report_data` = the hash of
    ///   the runtime data (`runtime_data_mismatch`), the runtime data's `user-data` = the
    ///   binding (`user_data_mismatch`), and the vTPM quote signed by the runtime data's
    ///   attestation key over the nonce, its PCR values matching its digest. The PCRs become
    ///   claims (`vtpm`), so that a release policy can constrain them.
    pub fn verify_platform_at(
        &self,
        evidence: &PlatformEvidence,
        binding: &ReleaseBinding,
        at: SystemTime,
    ) -> Result<VerifiedReport, Error> {
        match evidence {
            PlatformEvidence::SevSnp(snp) => self.verify_at(snp, binding, at),
            PlatformEvidence::AzSnpVtpm(az) => {
                let claims = self.check_azure(az, Some(binding), at)?;
                Ok(VerifiedReport {
                    claims,
                    binding: binding.clone(),
                })
            }
        }
    }

    /// Checks Azure CVM evidence; `binding` `None` skips the nonce and TEE key (offline
    /// inspection: [`Verifier::inspect_platform_at`]).
    fn check_azure(
        &self,
        az: &AzureVtpmEvidence,
        binding: Option<&ReleaseBinding>,
        at: SystemTime,
    ) -> Result<Claims, Error> {
        let mut claims = self.check(&az.snp, None, at)?;
        let expected = az.runtime.expected_report_data();
        if !bool::from(expected.ct_eq(&claims.report_data)) {
            return Err(Error::refused(
                Reason::RuntimeDataMismatch,
                "report_data is not the hash of the HCL report's runtime data",
            ));
        }
        if let Some(binding) = binding {
            let bound = az
                .runtime
                .user_data
                .is_some_and(|u| bool::from(u.ct_eq(binding.report_data())));
            if !bound {
                return Err(Error::refused(
                    Reason::UserDataMismatch,
                    "the runtime data's user-data is not SHA-512(nonce ‖ teePublicKey)",
                ));
            }
        }
        // Without a binding there is no nonce to hold the quote to: check its signature and
        // PCR digest against the nonce it carries, which proves nothing about freshness.
        let nonce = match binding {
            Some(b) => b.nonce().to_vec(),
            None => az.quote.extra_data()?,
        };
        let pcrs = az.quote.verify(&az.runtime.attestation_key, &nonce)?;
        claims.vtpm = Some(VtpmClaims::new(&pcrs, &az.runtime.vm_configuration));
        Ok(claims)
    }

    /// Inspects evidence of any platform, as [`Verifier::inspect_at`] does for SNP: every
    /// check of [`Verifier::verify_platform_at`] but the binding when `binding` is `None`.
    pub fn inspect_platform_at(
        &self,
        evidence: &PlatformEvidence,
        binding: Option<&ReleaseBinding>,
        at: SystemTime,
    ) -> Result<InspectedReport, Error> {
        let claims = match (evidence, binding) {
            (PlatformEvidence::SevSnp(snp), b) => {
                self.check(snp, b.map(ReleaseBinding::report_data), at)?
            }
            (PlatformEvidence::AzSnpVtpm(az), b) => self.check_azure(az, b, at)?,
        };
        Ok(InspectedReport { claims })
    }

    /// Verifies a key generator's `evidence` for a handover, with certificate validity judged
    /// at `at`: every step of [`Verifier::inspect_at`], with `report_data` required to equal
    /// `binding`.
    pub fn verify_key_generation_at(
        &self,
        evidence: &Evidence,
        binding: &KeyGenerationBinding,
        at: SystemTime,
    ) -> Result<VerifiedKeyGeneration, Error> {
        let claims = self.check(evidence, Some(binding.report_data()), at)?;
        Ok(VerifiedKeyGeneration {
            claims,
            message_digest: binding.message_digest,
        })
    }

    /// Inspects `evidence` now. See [`Verifier::inspect_at`].
    pub fn inspect(
        &self,
        evidence: &Evidence,
        report_data: ReportDataCheck,
    ) -> Result<InspectedReport, Error> {
        self.inspect_at(evidence, report_data, SystemTime::now())
    }

    /// Checks `evidence` with certificate validity judged at `at` (tests and offline checks
    /// of old evidence), `report_data` as `report_data` says. Steps, each with its own
    /// refusal reason:
    /// 1. the report: length, version 2/3/5, ECDSA P-384/SHA-384, generation, signing-key field;
    /// 2. the chain: presented ARK pinned, ASK/ASVK signed by it, VEK signed by the ASK/ASVK
    ///    (cached per chain), validity periods at `at` (never cached);
    /// 3. the VEK bindings: signing-key field matches the VEK kind, a VCEK needs an unmasked
    ///    chip id equal to its hwID, TCB extensions equal `reported_tcb`;
    /// 4. the report signature (always checked), then `report_data`.
    pub fn inspect_at(
        &self,
        evidence: &Evidence,
        report_data: ReportDataCheck,
        at: SystemTime,
    ) -> Result<InspectedReport, Error> {
        let expected = match &report_data {
            ReportDataCheck::Expect(expected) => Some(expected),
            ReportDataCheck::NotChecked => None,
        };
        let claims = self.check(evidence, expected, at)?;
        Ok(InspectedReport { claims })
    }

    /// The steps of [`Verifier::inspect_at`]; the attested claims.
    fn check(
        &self,
        evidence: &Evidence,
        report_data: Option<&[u8; 64]>,
        at: SystemTime,
    ) -> Result<Claims, Error> {
        let parsed = report::parse(evidence.report_bytes())?;
        let r = &parsed.report;

        let vek_role = evidence.certs.vek.0;
        let vek_kind = match vek_role {
            Role::Vlek => SigningKey::Vlek,
            _ => SigningKey::Vcek,
        };
        if parsed.signing_key != vek_kind {
            return Err(Error::refused(
                Reason::SigningKeyMismatch,
                format!(
                    "report says {:?}, certificate is a {}",
                    parsed.signing_key,
                    vek_role.name()
                ),
            ));
        }
        let chip_masked = r.chip_id.iter().all(|b| *b == 0);
        if vek_kind == SigningKey::Vcek && chip_masked {
            return Err(Error::refused(
                Reason::ChipIdMasked,
                "chip id is masked: a VCEK cannot be bound to the chip",
            ));
        }

        let facts = chain::verify(&self.anchors, &self.cache, &evidence.certs)?;
        facts.check_validity(at)?;

        let generation = match (facts.root_generation, parsed.generation) {
            (Some(root), ReportGeneration::Exact(reported)) if root != reported => {
                return Err(Error::refused(
                    Reason::GenerationMismatch,
                    format!("{} report under the {} root", reported.name(), root.name()),
                ));
            }
            (Some(root), ReportGeneration::LayoutOnly { turin })
                if root.turin_tcb_layout() != turin =>
            {
                return Err(Error::refused(
                    Reason::GenerationMismatch,
                    format!("report chip id does not fit the {} root", root.name()),
                ));
            }
            (Some(root), _) => Some(root),
            (None, ReportGeneration::Exact(reported)) => Some(reported),
            (None, ReportGeneration::LayoutOnly { .. }) => None,
        };

        if let Some(hw_id) = &facts.vek_extensions.hw_id {
            // Turin VCEKs carry an 8-byte hwID: the report's chip id is those 8 bytes followed
            // by zeros. Compare the whole field so that trailing bytes cannot differ either.
            let mut expected = [0u8; 64];
            expected[..hw_id.len()].copy_from_slice(hw_id);
            if vek_kind == SigningKey::Vcek && r.chip_id != expected {
                return Err(Error::refused(
                    Reason::ChipIdMismatch,
                    "the VCEK's hwID differs from the report's chip id",
                ));
            }
        }

        let cert_tcb = facts.vek_extensions.tcb;
        let reported = Tcb::from(&r.reported_tcb);
        // Turin reports and VCEKs both carry an FMC SVN; earlier generations neither.
        let fmc_matches = cert_tcb.fmc == reported.fmc;
        if cert_tcb.bootloader != reported.bootloader
            || cert_tcb.tee != reported.tee
            || cert_tcb.snp != reported.snp
            || cert_tcb.microcode != reported.microcode
            || !fmc_matches
        {
            let cert = Tcb {
                bootloader: cert_tcb.bootloader,
                tee: cert_tcb.tee,
                snp: cert_tcb.snp,
                microcode: cert_tcb.microcode,
                fmc: cert_tcb.fmc,
            };
            return Err(Error::refused(
                Reason::TcbMismatch,
                format!("reported TCB [{reported}] differs from the certificate's [{cert}]"),
            ));
        }

        report::verify_signature(&parsed.raw, &facts.vek_sec1)?;

        if let Some(expected) = report_data {
            // Not secret, but compare in constant time anyway: it costs nothing.
            if !bool::from(expected.ct_eq(&r.report_data)) {
                return Err(Error::refused(
                    Reason::ReportDataMismatch,
                    "report_data is not the expected binding (a release: SHA-512(nonce ‖ teePublicKey))",
                ));
            }
        }

        Ok(Claims::from_report(r, generation, vek_kind))
    }

    /// Number of chains in the cache (for metrics and tests).
    pub fn cached_chains(&self) -> usize {
        self.cache.len()
    }
}
