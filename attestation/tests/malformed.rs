//! Malformed input never panics and is refused with a clear reason.
#![allow(clippy::unwrap_used)]

mod common;

use attestation::simulated::{ChipSpec, SimulatedAmd};
use attestation::{Evidence, EvidenceWire, Reason, ReportDataCheck, ReportFormat, Verifier};
use common::reason;

fn certs() -> Vec<Vec<u8>> {
    let sim = SimulatedAmd::shared().unwrap();
    sim.chip(ChipSpec::milan()).unwrap().cert_pems()
}

#[test]
fn malformed_reports_are_refused_as_report_malformed() {
    let hcl_short = {
        let mut v = b"HCLA".to_vec();
        v.resize(1215, 0);
        v
    };
    let cases: Vec<(&str, Vec<u8>, ReportFormat)> = vec![
        ("empty raw", vec![], ReportFormat::Raw),
        ("empty auto", vec![], ReportFormat::Auto),
        ("truncated raw", vec![0; 1183], ReportFormat::Raw),
        ("too long raw", vec![0; 1185], ReportFormat::Raw),
        ("hex with odd length", b"abc".to_vec(), ReportFormat::Hex),
        (
            "hex with a non-hex digit",
            b"zz".to_vec(),
            ReportFormat::Hex,
        ),
        (
            "hex of the wrong length",
            "00".repeat(1183).into_bytes(),
            ReportFormat::Hex,
        ),
        (
            "HCL shorter than 1216 bytes",
            hcl_short.clone(),
            ReportFormat::AzureHcl,
        ),
        (
            "HCL shorter than 1216 bytes, auto",
            hcl_short,
            ReportFormat::Auto,
        ),
        (
            "HCL without its magic",
            vec![0; 2600],
            ReportFormat::AzureHcl,
        ),
        ("binary garbage, auto", vec![0xff; 700], ReportFormat::Auto),
    ];
    for (what, report, format) in cases {
        let r = reason(Evidence::from_parts(&report, format, certs()), what);
        assert_eq!(r, Reason::ReportMalformed, "{what}");
    }
}

#[test]
fn malformed_certificates_are_refused_with_their_reason() {
    let report = vec![0u8; 1184];
    let good = certs();
    let cases: Vec<(&str, Vec<Vec<u8>>, Reason)> = vec![
        ("no certificates", vec![], Reason::CertMissing),
        (
            "only the ASK and ARK",
            good[1..].to_vec(),
            Reason::CertMissing,
        ),
        ("an empty certificate", vec![vec![]], Reason::CertMalformed),
        (
            "garbage DER",
            vec![vec![0x30, 0x03, 1, 2, 3]],
            Reason::CertMalformed,
        ),
        ("random bytes", vec![vec![0xde; 300]], Reason::CertMalformed),
        (
            "a PEM with a broken body",
            vec![b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".to_vec()],
            Reason::CertMalformed,
        ),
        (
            "a PEM without footer",
            vec![b"-----BEGIN CERTIFICATE-----\nMIIB\n".to_vec()],
            Reason::CertMalformed,
        ),
        (
            "a private key instead of a certificate",
            vec![b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec()],
            Reason::CertMalformed,
        ),
        (
            "two different VCEKs",
            vec![
                good[0].clone(),
                SimulatedAmd::shared()
                    .unwrap()
                    .chip(ChipSpec::milan())
                    .unwrap()
                    .vcek_pem()
                    .into_bytes(),
            ],
            Reason::CertDuplicate,
        ),
    ];
    for (what, certs, expected) in cases {
        let r = reason(
            Evidence::from_parts(&report, ReportFormat::Raw, certs),
            what,
        );
        assert_eq!(r, expected, "{what}");
    }
    // The same certificate twice is harmless.
    let twice = vec![good[0].clone(), good[0].clone(), good[1].clone()];
    Evidence::from_parts(&report, ReportFormat::Raw, twice).unwrap();
}

#[test]
fn an_all_zero_report_is_refused_without_panicking() {
    let ev = Evidence::from_parts(&[0u8; 1184], ReportFormat::Raw, certs()).unwrap();
    let verifier = Verifier::new().unwrap();
    let r = reason(verifier.inspect(&ev, ReportDataCheck::NotChecked), "zeros");
    assert_eq!(r, Reason::ReportVersionUnsupported);
}

#[test]
fn every_single_byte_value_at_every_header_offset_is_handled() {
    // A cheap fuzz of the fields sev interprets: no input may panic.
    let sim = SimulatedAmd::shared().unwrap();
    let chip = sim.chip(ChipSpec::milan()).unwrap();
    let raw = chip.sign_report(&chip.report_fields()).unwrap();
    let verifier = Verifier::with_extra_roots(&[sim.ark_pem()]).unwrap();
    for offset in (0..0x60).chain(0x180..0x1A0).chain(0x1E0..0x1F8) {
        for value in [0x00, 0x01, 0x02, 0x05, 0x1A, 0x80, 0xff] {
            let mut bad = raw.clone();
            bad[offset] = value;
            let ev = Evidence::from_parts(&bad, ReportFormat::Raw, chip.cert_pems()).unwrap();
            let _ = verifier.inspect(&ev, ReportDataCheck::NotChecked);
        }
    }
}

#[test]
fn wire_evidence_with_bad_fields_is_refused() {
    let sim = SimulatedAmd::shared().unwrap();
    let chip = sim.chip(ChipSpec::milan()).unwrap();
    let ev = chip.evidence(&chip.report_fields()).unwrap();
    let EvidenceWire::SevSnp(wire) = EvidenceWire::from(&ev) else {
        panic!("SNP evidence has the sev-snp wire form");
    };

    let mut bad_base64 = wire.clone();
    bad_base64.report = "***".into();
    let mut no_vek = wire.clone();
    no_vek.certs.vcek = None;
    for (what, w, expected) in [
        ("report not base64", bad_base64, Reason::ReportMalformed),
        ("no VCEK", no_vek, Reason::CertMissing),
    ] {
        assert_eq!(reason(Evidence::try_from(w), what), expected, "{what}");
    }
    // An unknown type is a malformed request, not evidence to refuse.
    let tdx = r#"{"type":"tdx","report":"","certs":{}}"#;
    assert!(serde_json::from_str::<EvidenceWire>(tdx).is_err());
    let unknown_field = r#"{"type":"sev-snp","report":"","certs":{},"extra":1}"#;
    assert!(serde_json::from_str::<EvidenceWire>(unknown_field).is_err());
}

#[test]
fn a_report_whose_cpuid_contradicts_its_amd_root_is_a_generation_mismatch() {
    let Some(vs) = common::vectors() else { return };
    // A Genoa v3 report with its CPUID model rewritten to Milan, under the Genoa chain.
    let v = vs.by_name("routex genoa v3");
    let mut raw = vs.raw_report(v);
    raw[0x189] = 0x01;
    let ev = Evidence::from_parts(&raw, ReportFormat::Raw, vs.certs(v)).unwrap();
    let at = common::instant(&v.verify_at);
    let r = reason(
        Verifier::new()
            .unwrap()
            .inspect_at(&ev, ReportDataCheck::NotChecked, at),
        "cpuid",
    );
    assert_eq!(r, Reason::GenerationMismatch);
}

#[test]
fn reason_codes_are_distinct_snake_case() {
    let mut seen = std::collections::HashSet::new();
    for r in Reason::ALL {
        let code = r.code();
        assert!(
            code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{code}"
        );
        assert!(seen.insert(code), "duplicate {code}");
    }
}
