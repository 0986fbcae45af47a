//! Release policies: document validation and each rule accepting and refusing, on real
//! vectors and simulated reports.
#![allow(clippy::unwrap_used)]

mod common;

use attestation::simulated::{ChipSpec, SimulatedAmd, SimulatedChip};
use attestation::{
    Error, InspectedReport, Reason, ReleaseBinding, ReleasePolicy, ReportDataCheck, VerifiedReport,
    Verifier,
};
use common::reason;
use serde_json::json;

fn sim_chip() -> SimulatedChip {
    SimulatedAmd::shared()
        .unwrap()
        .chip(ChipSpec::milan())
        .unwrap()
}

fn sim_verifier() -> Verifier {
    Verifier::with_extra_roots(&[SimulatedAmd::shared().unwrap().ark_pem()]).unwrap()
}

fn policy(doc: serde_json::Value) -> ReleasePolicy {
    ReleasePolicy::from_json(&doc.to_string()).unwrap()
}

fn vector_report(name: &str) -> Option<InspectedReport> {
    let vs = common::vectors()?;
    let v = vs.by_name(name);
    let ev = vs.evidence(v).unwrap();
    Some(
        Verifier::new()
            .unwrap()
            .inspect_at(
                &ev,
                ReportDataCheck::NotChecked,
                common::instant(&v.verify_at),
            )
            .unwrap(),
    )
}

const GO_SEV_GUEST: &str = "go-sev-guest attestation.bin";
const GO_SEV_GUEST_MEASUREMENT: &str = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01";
const ACI: &str = "confidential-sidecar-containers ACI snp_report.bin";
const ACI_MEASUREMENT: &str = "51068107cdc7ee3d89c7821b05bca6147eb77b2005ae759050fc049b65a1b0beabc65a9d857acecf23225f5ec76849f5";
const ACI_HOST_DATA: &str = "cadd74f71ebb8fbf9782baab649612520f3c416bc5ce9ac768808ddc8d9b031c";

#[test]
fn the_debug_enabled_go_sev_guest_vector_is_refused_unless_debug_is_allowed() {
    let Some(report) = vector_report(GO_SEV_GUEST) else {
        return;
    };
    assert!(report.claims().policy.debug);
    let strict = policy(json!({"measurements": [GO_SEV_GUEST_MEASUREMENT]}));
    assert_eq!(
        reason(strict.check_claims(report.claims()), "debug"),
        Reason::DebugNotAllowed
    );
    let lax = policy(json!({"measurements": [GO_SEV_GUEST_MEASUREMENT], "allow_debug": true}));
    lax.check_claims(report.claims()).unwrap();
}

#[test]
fn measurement_and_host_data_rules_on_a_real_container_vector() {
    let Some(report) = vector_report(ACI) else {
        return;
    };
    let other = "11".repeat(48);
    let cases = [
        (
            "allowed measurement",
            json!({"measurements": [other, ACI_MEASUREMENT]}),
            None,
        ),
        (
            "other measurement",
            json!({"measurements": [other]}),
            Some(Reason::MeasurementNotAllowed),
        ),
        (
            "allowed host_data",
            json!({"measurements": [ACI_MEASUREMENT], "host_data": [ACI_HOST_DATA]}),
            None,
        ),
        (
            "other host_data",
            json!({"measurements": [ACI_MEASUREMENT], "host_data": ["00".repeat(32)]}),
            Some(Reason::HostDataNotAllowed),
        ),
        (
            "minimum TCB met",
            json!({"measurements": [ACI_MEASUREMENT], "min_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}}),
            None,
        ),
        (
            "microcode below minimum",
            json!({"measurements": [ACI_MEASUREMENT], "min_tcb": {"microcode": 116}}),
            Some(Reason::TcbBelowMinimum),
        ),
        (
            "snp below minimum",
            json!({"measurements": [ACI_MEASUREMENT], "min_tcb": {"snp": 9}}),
            Some(Reason::TcbBelowMinimum),
        ),
        (
            "VMPL 0 allowed by default",
            json!({"measurements": [ACI_MEASUREMENT]}),
            None,
        ),
        (
            "only VMPL 1 allowed",
            json!({"measurements": [ACI_MEASUREMENT], "vmpls": [1]}),
            Some(Reason::VmplNotAllowed),
        ),
        (
            "min report version 3",
            json!({"measurements": [ACI_MEASUREMENT], "min_report_version": 3}),
            Some(Reason::ReportVersionBelowMinimum),
        ),
    ];
    check(&report, &cases);
}

#[test]
fn the_vmpl_rule_on_the_vmpl_1_vlek_vector() {
    let Some(report) = vector_report("trustee snp test-vlek-report (VLEK)") else {
        return;
    };
    let m = hex::encode(report.claims().measurement);
    let cases = [
        (
            "default VMPL 0 only",
            json!({"measurements": [m]}),
            Some(Reason::VmplNotAllowed),
        ),
        (
            "VMPL 1 allowed",
            json!({"measurements": [m], "vmpls": [0, 1]}),
            None,
        ),
    ];
    check(&report, &cases);
}

fn check(report: &InspectedReport, cases: &[(&str, serde_json::Value, Option<Reason>)]) {
    for (what, doc, expected) in cases {
        let result = policy(doc.clone()).check_claims(report.claims());
        match expected {
            None => result.unwrap_or_else(|e| panic!("{what}: {e}")),
            Some(expected) => assert_eq!(reason(result, what), *expected, "{what}"),
        }
    }
}

#[test]
fn every_rule_accepts_and_refuses_on_simulated_reports() {
    let chip = sim_chip();
    let verifier = sim_verifier();
    let m = "ab".repeat(48);
    // Simulated reports carry a real release binding, so these go the release path:
    // verify with the binding, then evaluate into the proof.
    let binding = ReleaseBinding::new(&[3; 32], [6; 32]);
    let sign = |edit: &dyn Fn(&mut attestation::simulated::ReportFields)| {
        let mut f = chip.report_fields();
        f.measurement = [0xab; 48];
        f.report_data = *binding.report_data();
        edit(&mut f);
        verifier
            .verify(&chip.evidence(&f).unwrap(), &binding)
            .unwrap()
    };
    let honest = sign(&|_| {});
    let debug = sign(&|f| f.policy |= 1 << 19);
    let migration = sign(&|f| f.policy |= 1 << 18);
    let vmpl3 = sign(&|f| f.vmpl = 3);
    let ids = sign(&|f| {
        f.family_id = [0x0f; 16];
        f.image_id = [0x1e; 16];
    });
    let no_smt = sign(&|f| f.platform_info = 0x2);

    let base = json!({"measurements": [m]});
    let with = |extra: serde_json::Value| {
        let mut doc = base.clone();
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        doc
    };
    let cases: Vec<(&str, &VerifiedReport, serde_json::Value, Option<Reason>)> = vec![
        ("honest report, base policy", &honest, base.clone(), None),
        (
            "debug forbidden by default",
            &debug,
            base.clone(),
            Some(Reason::DebugNotAllowed),
        ),
        (
            "debug allowed",
            &debug,
            with(json!({"allow_debug": true})),
            None,
        ),
        (
            "migration agent forbidden by default",
            &migration,
            base.clone(),
            Some(Reason::MigrationAgentNotAllowed),
        ),
        (
            "migration agent allowed",
            &migration,
            with(json!({"allow_migration_agent": true})),
            None,
        ),
        (
            "VMPL 3 refused by default",
            &vmpl3,
            base.clone(),
            Some(Reason::VmplNotAllowed),
        ),
        ("VMPL 3 allowed", &vmpl3, with(json!({"vmpls": [3]})), None),
        (
            "family and image id match",
            &ids,
            with(json!({"family_id": "0f".repeat(16), "image_id": "1e".repeat(16)})),
            None,
        ),
        (
            "family id differs",
            &honest,
            with(json!({"family_id": "0f".repeat(16)})),
            Some(Reason::FamilyIdMismatch),
        ),
        (
            "image id differs",
            &ids,
            with(json!({"image_id": "00".repeat(16)})),
            Some(Reason::ImageIdMismatch),
        ),
        (
            "SMT on, SMT forbidden",
            &honest,
            with(json!({"smt": "forbidden"})),
            Some(Reason::SmtNotAllowed),
        ),
        (
            "SMT off, SMT forbidden",
            &no_smt,
            with(json!({"smt": "forbidden"})),
            None,
        ),
        (
            "SMT on, SMT allowed",
            &honest,
            with(json!({"smt": "allowed"})),
            None,
        ),
        (
            "TCB at minimum",
            &honest,
            with(json!({"min_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}})),
            None,
        ),
        (
            "bootloader below minimum",
            &honest,
            with(json!({"min_tcb": {"bootloader": 4}})),
            Some(Reason::TcbBelowMinimum),
        ),
        (
            "host data not allowed",
            &honest,
            with(json!({"host_data": ["11".repeat(32)]})),
            Some(Reason::HostDataNotAllowed),
        ),
        (
            "measurement not allowed",
            &honest,
            json!({"measurements": ["cd".repeat(48)]}),
            Some(Reason::MeasurementNotAllowed),
        ),
    ];
    for (what, report, doc, expected) in cases {
        let result = policy(doc).evaluate(report);
        match expected {
            None => {
                let released = result.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(released.claims(), report.claims(), "{what}");
                assert_eq!(released.tee_public_key(), &[6; 32], "{what}");
            }
            Some(expected) => assert_eq!(reason(result, what), expected, "{what}"),
        }
    }
}

#[test]
fn invalid_policy_documents_name_the_offending_field() {
    let m = "ab".repeat(48);
    let cases = [
        (
            "short measurement",
            json!({"measurements": ["ab"]}),
            "measurements[0]",
        ),
        (
            "second measurement not hex",
            json!({"measurements": [m, "zz".repeat(48)]}),
            "measurements[1]",
        ),
        (
            "no measurements",
            json!({"measurements": []}),
            "measurements",
        ),
        (
            "host data of 31 bytes",
            json!({"measurements": [m], "host_data": ["00".repeat(31)]}),
            "host_data[0]",
        ),
        (
            "empty host data list",
            json!({"measurements": [m], "host_data": []}),
            "host_data",
        ),
        (
            "family id too long",
            json!({"measurements": [m], "family_id": "00".repeat(17)}),
            "family_id",
        ),
        (
            "image id odd hex",
            json!({"measurements": [m], "image_id": "0"}),
            "image_id",
        ),
        (
            "VMPL 4",
            json!({"measurements": [m], "vmpls": [4]}),
            "vmpls",
        ),
        (
            "no VMPL",
            json!({"measurements": [m], "vmpls": []}),
            "vmpls",
        ),
        (
            "report version 9",
            json!({"measurements": [m], "min_report_version": 9}),
            "min_report_version",
        ),
    ];
    for (what, doc, field) in cases {
        match ReleasePolicy::from_json(&doc.to_string()) {
            Err(Error::InvalidPolicy { field: f, .. }) => assert_eq!(f, field, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    let structural = [
        (
            json!({"measurements": [m], "allow_debugg": true}),
            "allow_debugg",
        ),
        (
            json!({"measurements": [m], "min_tcb": {"ucode": 1}}),
            "ucode",
        ),
        (json!({"measurements": [m], "smt": "maybe"}), "maybe"),
        (json!({}), "measurements"),
    ];
    for (doc, mention) in structural {
        let err = ReleasePolicy::from_json(&doc.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains(mention), "{err} should mention {mention}");
    }
}

#[test]
fn a_policy_round_trips_through_json() {
    let doc = json!({
        "measurements": ["ab".repeat(48)],
        "host_data": ["cd".repeat(32)],
        "min_tcb": {"bootloader": 1, "tee": 0, "snp": 2, "microcode": 3, "fmc": 1},
        "allow_debug": false,
        "vmpls": [0, 1],
        "family_id": "01".repeat(16),
        "image_id": "02".repeat(16),
        "smt": "forbidden",
        "allow_migration_agent": false,
        "min_report_version": 3
    });
    let p = policy(doc.clone());
    assert_eq!(serde_json::to_value(&p).unwrap(), doc);
    let back: ReleasePolicy = serde_json::from_value(doc).unwrap();
    assert_eq!(back, p);
}

#[test]
fn claims_print_as_readable_json() {
    let chip = sim_chip();
    let report = sim_verifier()
        .inspect(
            &chip.evidence(&chip.report_fields()).unwrap(),
            ReportDataCheck::NotChecked,
        )
        .unwrap();
    let v = serde_json::to_value(report.claims()).unwrap();
    assert_eq!(v["signing_key"], "vcek");
    assert_eq!(v["generation"], "milan");
    assert_eq!(v["chip_id"], "5a".repeat(64));
    assert_eq!(
        v["reported_tcb"],
        json!({"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115})
    );
    assert_eq!(v["policy"]["debug"], false);
    assert_eq!(v["measurement"].as_str().unwrap().len(), 96);
    let back: attestation::Claims = serde_json::from_value(v).unwrap();
    assert_eq!(&back, report.claims());

    // A masked chip id serialises as "masked" (here via Claims directly: a VCEK refuses it).
    let mut masked = report.claims().clone();
    masked.chip_id = None;
    assert_eq!(serde_json::to_value(&masked).unwrap()["chip_id"], "masked");
}
