//! The simulated attester: its reports verify only under its own root, and each field it
//! sets is checked by the verifier.
#![allow(clippy::unwrap_used)]

mod common;

use attestation::simulated::{ChipSpec, ReportFields, SimulatedAmd, SimulatedChip};
use attestation::{
    Evidence, Generation, Reason, ReleaseBinding, ReportDataCheck, ReportFormat, Tcb, Verifier,
    expected_report_data,
};
use common::reason;

fn sim() -> &'static SimulatedAmd {
    SimulatedAmd::shared().unwrap()
}

fn dev_verifier() -> Verifier {
    Verifier::with_extra_roots(&[sim().ark_pem()]).unwrap()
}

fn milan() -> SimulatedChip {
    sim().chip(ChipSpec::milan()).unwrap()
}

#[test]
fn simulated_reports_verify_with_the_simulated_root_configured() {
    let chip = milan();
    let mut fields = chip.report_fields();
    fields.measurement = [0xab; 48];
    fields.host_data = [0xcd; 32];
    fields.vmpl = 2;
    fields.family_id = [1; 16];
    fields.image_id = [2; 16];
    let ev = chip.evidence(&fields).unwrap();
    let verified = dev_verifier()
        .inspect(&ev, ReportDataCheck::NotChecked)
        .unwrap();
    let c = verified.claims();
    assert_eq!(c.measurement, [0xab; 48]);
    assert_eq!(c.host_data, [0xcd; 32]);
    assert_eq!(c.vmpl, 2);
    assert_eq!(c.family_id, [1; 16]);
    assert_eq!(c.image_id, [2; 16]);
    assert_eq!(c.generation, Some(Generation::Milan));
    assert_eq!(c.chip_id, Some([0x5a; 64]));
    assert_eq!(c.reported_tcb, ChipSpec::milan().tcb);
}

#[test]
fn simulated_reports_are_refused_with_amd_roots_only() {
    let chip = milan();
    let ev = chip.evidence(&chip.report_fields()).unwrap();
    let r = reason(
        Verifier::new()
            .unwrap()
            .inspect(&ev, ReportDataCheck::NotChecked),
        "amd only",
    );
    assert_eq!(r, Reason::ArkNotTrusted);
    // Also when the ARK is left out and must be looked up among the pinned roots.
    let certs = chip.cert_pems()[..2].to_vec();
    let ev = Evidence::from_parts(
        &chip.sign_report(&chip.report_fields()).unwrap(),
        ReportFormat::Raw,
        certs,
    )
    .unwrap();
    let r = reason(
        Verifier::new()
            .unwrap()
            .inspect(&ev, ReportDataCheck::NotChecked),
        "no ARK",
    );
    assert_eq!(r, Reason::ArkNotTrusted);
    // With the root configured, the ARK may be omitted.
    dev_verifier()
        .inspect(&ev, ReportDataCheck::NotChecked)
        .unwrap();
}

#[test]
fn every_supported_version_and_generation_verifies() {
    let turin = ChipSpec {
        generation: Generation::Turin,
        chip_id: {
            let mut id = [0u8; 64];
            id[..8].copy_from_slice(&[7; 8]);
            id
        },
        tcb: Tcb {
            bootloader: 1,
            tee: 0,
            snp: 2,
            microcode: 71,
            fmc: Some(3),
        },
    };
    let genoa = ChipSpec {
        generation: Generation::Genoa,
        ..ChipSpec::milan()
    };
    for spec in [ChipSpec::milan(), genoa, turin] {
        let chip = sim().chip(spec).unwrap();
        for version in [2, 3, 5] {
            let mut fields = chip.report_fields();
            fields.version = version;
            let ev = chip.evidence(&fields).unwrap();
            let result = dev_verifier().inspect(&ev, ReportDataCheck::NotChecked);
            let c = result.unwrap_or_else(|e| panic!("{:?} v{version}: {e}", spec.generation));
            assert_eq!(
                c.claims().reported_tcb,
                spec.tcb,
                "{:?} v{version}",
                spec.generation
            );
        }
    }
}

/// Each case changes one field of an honest report; the verifier names what is wrong.
#[test]
fn altered_report_fields_are_refused_with_their_own_reason() {
    let chip = milan();
    type Edit = fn(&mut ReportFields);
    let cases: &[(&str, Edit, Reason)] = &[
        (
            "reported TCB above the VCEK's",
            |f| f.reported_tcb.snp += 1,
            Reason::TcbMismatch,
        ),
        (
            "reported TCB below the VCEK's",
            |f| f.reported_tcb.microcode -= 1,
            Reason::TcbMismatch,
        ),
        (
            "another chip id",
            |f| f.chip_id[0] ^= 1,
            Reason::ChipIdMismatch,
        ),
        (
            "masked chip id with a VCEK",
            |f| f.chip_id = [0; 64],
            Reason::ChipIdMasked,
        ),
        (
            "signing key field says VLEK",
            |f| f.signing_key = 1,
            Reason::SigningKeyMismatch,
        ),
        (
            "report version 4",
            |f| f.version = 4,
            Reason::ReportVersionUnsupported,
        ),
        (
            "signature algorithm 2",
            |f| f.sig_algo = 2,
            Reason::SignatureAlgorithmUnsupported,
        ),
        (
            "Turin CPUID under a Milan VCEK",
            |f| f.cpuid = (0x1A, 0x02, 0),
            Reason::TcbMismatch,
        ),
    ];
    let verifier = dev_verifier();
    for (what, edit, expected) in cases {
        let mut fields = chip.report_fields();
        edit(&mut fields);
        let result = chip
            .evidence(&fields)
            .and_then(|ev| verifier.inspect(&ev, ReportDataCheck::NotChecked));
        assert_eq!(reason(result, what), *expected, "{what}");
    }
}

#[test]
fn unsupported_versions_and_cpuids_are_refused_before_parsing() {
    let chip = milan();
    let raw = chip.sign_report(&chip.report_fields()).unwrap();
    for version in [0u32, 1, 4, 6, 0xffff_ffff] {
        let mut raw = raw.clone();
        raw[..4].copy_from_slice(&version.to_le_bytes());
        let ev = Evidence::from_parts(&raw, ReportFormat::Raw, chip.cert_pems()).unwrap();
        let r = reason(
            dev_verifier().inspect(&ev, ReportDataCheck::NotChecked),
            "version",
        );
        assert_eq!(r, Reason::ReportVersionUnsupported, "version {version}");
    }
    // A CPUID family no SNP processor has (Zen 2): the TCB layout cannot be known.
    let mut zen2 = raw.clone();
    zen2[0x188] = 0x17;
    let ev = Evidence::from_parts(&zen2, ReportFormat::Raw, chip.cert_pems()).unwrap();
    let r = reason(
        dev_verifier().inspect(&ev, ReportDataCheck::NotChecked),
        "cpuid",
    );
    assert_eq!(r, Reason::ReportGenerationUnknown);
}

#[test]
fn under_a_simulated_root_the_generation_comes_from_the_report() {
    let chip = sim()
        .chip(ChipSpec {
            generation: Generation::Genoa,
            ..ChipSpec::milan()
        })
        .unwrap();
    let ev = chip.evidence(&chip.report_fields()).unwrap();
    let c = dev_verifier()
        .inspect(&ev, ReportDataCheck::NotChecked)
        .unwrap();
    assert_eq!(c.claims().generation, Some(Generation::Genoa));
}

#[test]
fn report_data_binding_matches_and_mismatches() {
    let chip = milan();
    let nonce = [9u8; 32];
    let tee_key = [4u8; 32];
    let mut fields = chip.report_fields();
    fields.report_data = expected_report_data(&nonce, &tee_key);
    let ev = chip.evidence(&fields).unwrap();
    let verifier = dev_verifier();
    let verified = verifier
        .verify(&ev, &ReleaseBinding::new(&nonce, tee_key))
        .unwrap();
    assert_eq!(verified.binding().tee_public_key(), &tee_key);
    for (what, binding) in [
        ("another nonce", ReleaseBinding::new(&[8u8; 32], tee_key)),
        ("another TEE key", ReleaseBinding::new(&nonce, [5u8; 32])),
    ] {
        assert_eq!(
            reason(verifier.verify(&ev, &binding), what),
            Reason::ReportDataMismatch,
            "{what}"
        );
    }
    let cases = [
        ("another nonce", expected_report_data(&[8u8; 32], &tee_key)),
        ("another TEE key", expected_report_data(&nonce, &[5u8; 32])),
        (
            "nonce and key swapped",
            expected_report_data(&tee_key, &nonce),
        ),
        ("zeros", [0u8; 64]),
    ];
    for (what, expected) in cases {
        let r = reason(
            verifier.inspect(&ev, ReportDataCheck::Expect(expected)),
            what,
        );
        assert_eq!(r, Reason::ReportDataMismatch, "{what}");
    }
}

#[test]
fn expected_report_data_is_sha512_of_nonce_then_key() {
    use sha2::{Digest, Sha512};
    let got = expected_report_data(b"nonce", b"key");
    let want: [u8; 64] = Sha512::digest(b"noncekey").into();
    assert_eq!(got, want);
}

#[test]
fn the_simulated_ca_survives_pem_persistence() {
    let pem = sim().to_pem().unwrap();
    let loaded = SimulatedAmd::from_pem(&pem).unwrap();
    assert_eq!(loaded.ark_pem(), sim().ark_pem());
    // A chip issued by the reloaded CA verifies under the original root.
    let chip = loaded.chip(ChipSpec::milan()).unwrap();
    let ev = chip.evidence(&chip.report_fields()).unwrap();
    dev_verifier()
        .inspect(&ev, ReportDataCheck::NotChecked)
        .unwrap();
    // A key that does not match its certificate is refused.
    let blocks: Vec<&str> = pem.split_inclusive("-----\n").collect();
    assert!(blocks.len() > 4);
    assert!(SimulatedAmd::from_pem("").is_err());
    let certs_only = format!("{}{}", sim().ark_pem(), sim().ask_pem());
    assert!(SimulatedAmd::from_pem(&certs_only).is_err());
}

#[test]
fn the_chain_cache_serves_repeat_verifications_and_still_checks_signatures() {
    let chip = milan();
    let verifier = dev_verifier();
    let ev = chip.evidence(&chip.report_fields()).unwrap();
    verifier.inspect(&ev, ReportDataCheck::NotChecked).unwrap();
    verifier.inspect(&ev, ReportDataCheck::NotChecked).unwrap();
    assert_eq!(verifier.cached_chains(), 1);
    let mut raw = ev.report_bytes().to_vec();
    raw[0x90] ^= 1;
    let tampered = Evidence::from_parts(&raw, ReportFormat::Raw, chip.cert_pems()).unwrap();
    let r = reason(
        verifier.inspect(&tampered, ReportDataCheck::NotChecked),
        "tampered",
    );
    assert_eq!(r, Reason::ReportSignatureInvalid);
}

#[test]
fn extra_roots_must_be_self_signed_rsa_certificates() {
    let chip = milan();
    assert!(
        Verifier::with_extra_roots(&[sim().ask_pem()]).is_err(),
        "an ASK is not a root"
    );
    assert!(
        Verifier::with_extra_roots(&[chip.vcek_pem()]).is_err(),
        "a VCEK is not a root"
    );
    assert!(Verifier::with_extra_roots(&["garbage"]).is_err());
}

#[test]
fn a_key_generators_report_verifies_only_for_its_challenge_and_message() {
    use attestation::{KeyGenerationBinding, ReleasePolicy};
    let chip = milan();
    let binding = KeyGenerationBinding::new(&[7; 32], [9; 32]);
    let mut fields = chip.report_fields();
    fields.measurement = [0x22; 48];
    fields.report_data = *binding.report_data();
    let ev = chip.evidence(&fields).unwrap();
    let at = std::time::SystemTime::now();
    let verifier = dev_verifier();
    let verified = verifier
        .verify_key_generation_at(&ev, &binding, at)
        .unwrap();
    assert_eq!(verified.message_digest(), &[9; 32]);
    let policy = |m: [u8; 48]| {
        ReleasePolicy::from_json(&format!(r#"{{"measurements":["{}"]}}"#, hex::encode(m))).unwrap()
    };
    let admitted = policy([0x22; 48]).admit_key_generation(&verified).unwrap();
    assert_eq!(admitted.claims().measurement, [0x22; 48]);
    assert_eq!(
        reason(
            policy([0x33; 48]).admit_key_generation(&verified),
            "other image"
        ),
        Reason::MeasurementNotAllowed
    );
    for (other, what) in [
        (
            KeyGenerationBinding::new(&[8; 32], [9; 32]),
            "another challenge",
        ),
        (
            KeyGenerationBinding::new(&[7; 32], [1; 32]),
            "another message",
        ),
    ] {
        assert_eq!(
            reason(verifier.verify_key_generation_at(&ev, &other, at), what),
            Reason::ReportDataMismatch
        );
    }
    // The domain keeps a handover report from passing as a release's, and back.
    let release = ReleaseBinding::new(&[7; 32], [9; 32]);
    assert_ne!(release.report_data(), binding.report_data());
    assert_eq!(
        reason(verifier.verify_at(&ev, &release, at), "as a release"),
        Reason::ReportDataMismatch
    );
}
