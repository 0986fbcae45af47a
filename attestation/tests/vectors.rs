//! Real AMD-signed reports from public repositories: each verifies or is refused as
//! `vectors.json` says, its claims equal `results.json`, and each kind of tampering is refused
//! with its own reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::SystemTime;

use attestation::simulated::SimulatedAmd;
use attestation::{Claims, Evidence, Reason, ReportDataCheck, ReportFormat, Verifier};
use common::{DAY, Vector, instant, reason};

const REPORT_DATA_OFFSET: usize = 0x50;
const MEASUREMENT_OFFSET: usize = 0x90;

fn verify(
    verifier: &Verifier,
    ev: &Evidence,
    at: SystemTime,
) -> Result<Claims, attestation::Error> {
    verifier
        .inspect_at(ev, ReportDataCheck::NotChecked, at)
        .map(|r| r.claims().clone())
}

fn tcb_string(c: &Claims) -> String {
    let t = c.reported_tcb;
    format!(
        "bl={} tee={} snp={} ucode={} fmc={:?}",
        t.bootloader, t.tee, t.snp, t.microcode, t.fmc
    )
}

#[test]
fn every_vector_verifies_or_is_refused_as_expected_and_claims_match_ground_truth() {
    let Some(vs) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    let mut checked = 0;
    for v in &vs.list {
        let at = instant(&v.verify_at);
        let result = vs.evidence(v).and_then(|ev| verify(&verifier, &ev, at));
        match v.expect.as_str() {
            "verify" => {
                let c = result.unwrap_or_else(|e| panic!("{}: {e}", v.name));
                let t = vs.truth(&v.name);
                assert_eq!(hex::encode(c.measurement), t.measurement, "{}", v.name);
                assert_eq!(hex::encode(c.report_data), t.report_data, "{}", v.name);
                assert_eq!(hex::encode(c.host_data), t.host_data, "{}", v.name);
                let chip = c
                    .chip_id
                    .map(hex::encode)
                    .unwrap_or_else(|| "00".repeat(64));
                assert_eq!(chip, t.chip_id, "{}", v.name);
                assert_eq!(c.vmpl, t.vmpl, "{}", v.name);
                assert_eq!(c.version, t.version, "{}", v.name);
                assert_eq!(tcb_string(&c), t.reported_tcb, "{}", v.name);
                assert_eq!(
                    c.generation.map(|g| g.name().to_owned()),
                    Some(v.generation.clone()),
                    "{}",
                    v.name
                );
                let kind = serde_json::to_value(c.signing_key).unwrap();
                assert_eq!(kind.as_str(), v.signing_key.as_deref(), "{}", v.name);
            }
            _ => {
                let r = reason(result, &v.name);
                assert_eq!(r, Reason::ReportGenerationUnknown, "{}", v.name);
            }
        }
        checked += 1;
    }
    assert_eq!(checked, vs.list.len());
    assert!(checked >= 19, "all vectors covered");
}

#[test]
fn every_generation_and_format_is_covered_by_a_verifying_vector() {
    let Some(vs) = common::vectors() else { return };
    let genuine: Vec<&Vector> = vs.genuine().collect();
    for generation in ["milan", "genoa", "turin"] {
        assert!(
            genuine.iter().any(|v| v.generation == generation),
            "{generation}"
        );
    }
    for format in ["raw", "hex", "azure-hcl"] {
        assert!(genuine.iter().any(|v| v.format == format), "{format}");
    }
    assert!(
        genuine
            .iter()
            .any(|v| v.signing_key.as_deref() == Some("vlek"))
    );
}

#[test]
fn vlek_vectors_are_refused_as_expired_today() {
    let Some(vs) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    for name in [
        "trustee snp test-vlek-report (VLEK)",
        "constellation aws vlek v3",
    ] {
        let ev = vs.evidence(vs.by_name(name)).unwrap();
        let r = reason(verifier.inspect(&ev, ReportDataCheck::NotChecked), name);
        assert_eq!(r, Reason::CertExpired, "{name}");
    }
}

#[test]
fn masked_chip_id_v2_vlek_vector_is_refused() {
    let Some(vs) = common::vectors() else { return };
    let v = vs.by_name("constellation vlek v2");
    let verifier = Verifier::new().unwrap();
    let result = vs
        .evidence(v)
        .and_then(|ev| verify(&verifier, &ev, instant(&v.verify_at)));
    assert_eq!(reason(result, &v.name), Reason::ReportGenerationUnknown);
}

#[test]
fn auto_format_detects_raw_hex_and_hcl_vectors() {
    let Some(vs) = common::vectors() else { return };
    for v in vs.genuine() {
        let auto = Evidence::from_parts(&vs.report(v), ReportFormat::Auto, vs.certs(v)).unwrap();
        assert_eq!(auto.report_bytes(), vs.raw_report(v), "{}", v.name);
    }
}

/// A flipped bit anywhere in the measurement or report_data breaks the signature.
#[test]
fn a_flipped_bit_in_the_signed_part_is_refused_as_signature_invalid() {
    let Some(vs) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    let cases = [
        ("measurement first bit", MEASUREMENT_OFFSET, 0x01),
        ("measurement last bit", MEASUREMENT_OFFSET + 47, 0x80),
        ("report_data middle bit", REPORT_DATA_OFFSET + 31, 0x10),
    ];
    for v in vs.genuine() {
        for (what, offset, mask) in cases {
            let mut raw = vs.raw_report(v);
            raw[offset] ^= mask;
            let ev = Evidence::from_parts(&raw, ReportFormat::Raw, vs.certs(v)).unwrap();
            let r = reason(verify(&verifier, &ev, instant(&v.verify_at)), &v.name);
            assert_eq!(r, Reason::ReportSignatureInvalid, "{}: {what}", v.name);
        }
    }
}

/// The VCEK (with its chain) of another chip: the hwID binding fails first. For VLEKs, which
/// carry no hwID, the other VLEK's key fails the signature.
#[test]
fn a_certificate_from_another_vector_is_refused() {
    let Some(vs) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    let genuine: Vec<&Vector> = vs.genuine().collect();
    let mut cases = 0;
    for v in &genuine {
        let own = verify(&verifier, &vs.evidence(v).unwrap(), instant(&v.verify_at)).unwrap();
        let other = genuine.iter().find(|o| {
            o.generation == v.generation
                && o.signing_key == v.signing_key
                && verify(&verifier, &vs.evidence(o).unwrap(), instant(&o.verify_at))
                    .unwrap()
                    .chip_id
                    != own.chip_id
                || (o.signing_key.as_deref() == Some("vlek")
                    && v.signing_key.as_deref() == Some("vlek")
                    && o.name != v.name)
        });
        let Some(other) = other else {
            eprintln!("{}: no other vector of its generation and key kind", v.name);
            continue;
        };
        let ev =
            Evidence::from_parts(&vs.raw_report(v), ReportFormat::Raw, vs.certs(other)).unwrap();
        let expected = if v.signing_key.as_deref() == Some("vlek") {
            Reason::ReportSignatureInvalid
        } else {
            Reason::ChipIdMismatch
        };
        let r = reason(verify(&verifier, &ev, instant(&v.verify_at)), &v.name);
        assert_eq!(
            r, expected,
            "{} with the certificates of {}",
            v.name, other.name
        );
        cases += 1;
    }
    assert!(cases >= 15, "only {cases} cases");
}

/// (what, certificates, verifier, expected refusal or `None` for a control that verifies)
type ChainCase<'a> = (&'a str, Vec<Vec<u8>>, &'a Verifier, Option<Reason>);

/// The VEK presented under an intermediate it does not chain to.
#[test]
fn a_chain_under_a_different_root_is_refused() {
    let Some(vs) = common::vectors() else { return };
    let sim = SimulatedAmd::shared().unwrap();
    let amd_only = Verifier::new().unwrap();
    let with_sim = Verifier::with_extra_roots(&[sim.ark_pem()]).unwrap();
    let genuine: Vec<&Vector> = vs.genuine().collect();
    for v in &genuine {
        let at = instant(&v.verify_at);
        let raw = vs.raw_report(v);
        let vek = vs.read(&v.certs[0]);
        let vek_only = {
            // The first file may be a bundle (VCEK, ASK, ARK): keep its first certificate.
            use der::Encode;
            common::first_cert(&vek).to_der().unwrap()
        };
        let vlek = v.signing_key.as_deref() == Some("vlek");
        let (foreign_ask, foreign_ark) = match v.generation.as_str() {
            "milan" => ("genoa_ask.pem", "genoa_ark.pem"),
            _ => ("milan_ask.pem", "milan_ark.pem"),
        };
        let own_ark = format!("{}_ark.pem", v.generation);
        let own_ask = format!("{}_ask.pem", v.generation);
        let b = |n: &str| common::builtin(&vs.dir, n);

        let sim_chain = || {
            vec![
                vek_only.clone(),
                sim.ask_pem().into_bytes(),
                sim.ark_pem().into_bytes(),
            ]
        };
        let cases: Vec<ChainCase> = if !vlek {
            vec![
                (
                    "its own ASK and ARK (control)",
                    vec![vek_only.clone(), b(&own_ask), b(&own_ark)],
                    &amd_only,
                    None,
                ),
                (
                    "the simulated ASK and ARK, simulated root configured",
                    sim_chain(),
                    &with_sim,
                    Some(Reason::VekNotSignedByAsk),
                ),
                (
                    "the simulated ASK and ARK, AMD roots only",
                    sim_chain(),
                    &amd_only,
                    Some(Reason::ArkNotTrusted),
                ),
                (
                    "another generation's ASK",
                    vec![vek_only.clone(), b(foreign_ask)],
                    &amd_only,
                    Some(Reason::VekNotSignedByAsk),
                ),
                (
                    "its ASK under another generation's ARK",
                    vec![vek_only.clone(), b(&own_ask), b(foreign_ark)],
                    &amd_only,
                    Some(Reason::AskNotSignedByArk),
                ),
            ]
        } else {
            let asvk_bundle =
                |g: &str| vs.read(&format!("trustee/vendor-certs/{g}_ask_ark_asvk.pem"));
            vec![
                (
                    "its own ASVK bundle (control)",
                    vec![vek_only.clone(), asvk_bundle("milan")],
                    &amd_only,
                    None,
                ),
                (
                    "no ASVK, only an ASK",
                    vec![vek_only.clone(), b(&own_ask), b(&own_ark)],
                    &amd_only,
                    Some(Reason::CertMissing),
                ),
                (
                    "the Genoa ASVK bundle",
                    vec![vek_only.clone(), asvk_bundle("genoa")],
                    &amd_only,
                    Some(Reason::VekNotSignedByAsk),
                ),
                (
                    "the simulated ASK and ARK",
                    sim_chain(),
                    &with_sim,
                    Some(Reason::CertMissing),
                ),
            ]
        };
        for (what, certs, verifier, expected) in cases {
            let ev = Evidence::from_parts(&raw, ReportFormat::Raw, certs).unwrap();
            let result = verify(verifier, &ev, at);
            match expected {
                None => drop(result.unwrap_or_else(|e| panic!("{}: {what}: {e}", v.name))),
                Some(expected) => assert_eq!(reason(result, what), expected, "{}: {what}", v.name),
            }
        }
    }
}

#[test]
fn certificates_outside_their_validity_period_are_refused() {
    let Some(vs) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    for v in vs.genuine() {
        let vek = common::first_cert(&vs.read(&v.certs[0]));
        let validity = &vek.tbs_certificate.validity;
        let ev = vs.evidence(v).unwrap();
        let cases = [
            (
                "after notAfter",
                validity.not_after.to_system_time() + DAY,
                Reason::CertExpired,
            ),
            (
                "before notBefore",
                validity.not_before.to_system_time() - DAY,
                Reason::CertNotYetValid,
            ),
        ];
        for (what, at, expected) in cases {
            let r = reason(verify(&verifier, &ev, at), &v.name);
            assert_eq!(r, expected, "{}: {what}", v.name);
        }
        // And validity is judged at every call, also once the chain is cached.
        verify(&verifier, &ev, instant(&v.verify_at)).unwrap();
        let r = reason(
            verify(&verifier, &ev, validity.not_after.to_system_time() + DAY),
            &v.name,
        );
        assert_eq!(
            r,
            Reason::CertExpired,
            "{}: expiry after a cache hit",
            v.name
        );
    }
    assert!(verifier.cached_chains() > 0);
}

/// The report signature is checked with aws-lc; `sev`'s own pure-Rust check must agree with it
/// on every vector, genuine and altered.
#[test]
fn aws_lc_and_sev_agree_on_every_report_signature() {
    use sev::certs::snp::{Certificate, Verifiable};
    use sev::firmware::guest::AttestationReport;
    use sev::parser::ByteParser;

    let Some(vs) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    let mut compared = 0;
    for v in vs.genuine() {
        let vek = Certificate::from(common::first_cert(&vs.read(&v.certs[0])));
        for flip in [
            None,
            Some((MEASUREMENT_OFFSET + 5, 0x04)),
            Some((REPORT_DATA_OFFSET, 0x01)),
        ] {
            let mut raw = vs.raw_report(v);
            if let Some((offset, mask)) = flip {
                raw[offset] ^= mask;
            }
            let parsed = AttestationReport::from_bytes(&raw).unwrap();
            let sev_ok = (&vek, &parsed).verify().is_ok();
            let ev = Evidence::from_parts(&raw, ReportFormat::Raw, vs.certs(v)).unwrap();
            let ours = verify(&verifier, &ev, instant(&v.verify_at));
            assert_eq!(
                ours.is_ok(),
                sev_ok,
                "{} flip {flip:?}: ours {ours:?}",
                v.name
            );
            assert_eq!(sev_ok, flip.is_none(), "{} flip {flip:?}", v.name);
            compared += 1;
        }
    }
    assert!(compared >= 54);
}

#[test]
fn evidence_round_trips_through_the_wire_form() {
    let Some(vs) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    for v in vs.genuine() {
        let ev = vs.evidence(v).unwrap();
        let json = serde_json::to_string(&ev).unwrap();
        let back: Evidence = serde_json::from_str(&json).unwrap();
        assert_eq!(back.report_bytes(), ev.report_bytes());
        let a = verify(&verifier, &ev, instant(&v.verify_at)).unwrap();
        let b = verify(&verifier, &back, instant(&v.verify_at)).unwrap();
        assert_eq!(a, b, "{}", v.name);
    }
}

#[test]
fn wire_labels_are_not_trusted_a_bundle_under_any_label_is_classified() {
    let Some(vs) = common::vectors() else { return };
    let v = vs.by_name("trustee snp test-vlek-report (VLEK)");
    let vlek = common::first_cert(&vs.read(&v.certs[0]));
    let vlek_pem = {
        use der::EncodePem;
        vlek.to_pem(der::pem::LineEnding::LF).unwrap()
    };
    let bundle = String::from_utf8(vs.read(&v.certs[1])).unwrap(); // ASK, ARK, ASVK
    use base64::Engine;
    let json = serde_json::json!({
        "type": "sev-snp",
        "report": base64::engine::general_purpose::STANDARD.encode(vs.raw_report(v)),
        // Deliberately mislabelled: the VLEK as "vcek", the whole bundle as "ark".
        "certs": {"vcek": vlek_pem, "ark": bundle}
    });
    let ev: Evidence = serde_json::from_value(json).unwrap();
    let claims = verify(&Verifier::new().unwrap(), &ev, instant(&v.verify_at)).unwrap();
    assert_eq!(claims.signing_key, attestation::SigningKey::Vlek);
}

#[test]
fn a_genuine_vek_in_pem_with_76_character_crlf_lines_verifies() {
    use base64::Engine;
    use der::Encode;
    let Some(vs) = common::vectors() else { return };
    let v = vs
        .genuine()
        .find(|v| v.certs.len() >= 2)
        .expect("a genuine vector with its certificates in files");
    let vek = common::first_cert(&vs.read(&v.certs[0]));
    // MIME-style wrapping, as many base64 encoders write it.
    let b64 = base64::engine::general_purpose::STANDARD.encode(vek.to_der().unwrap());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\r\n{}\r\n-----END CERTIFICATE-----\r\n",
        lines.join("\r\n")
    );
    let rest = String::from_utf8(vs.read(&v.certs[1])).unwrap();
    let json = serde_json::json!({
        "type": "sev-snp",
        "report": base64::engine::general_purpose::STANDARD.encode(vs.raw_report(v)),
        "certs": {"vcek": pem, "ark": rest}
    });
    let ev: Evidence = serde_json::from_value(json).unwrap();
    let at = instant(&v.verify_at);
    let verifier = Verifier::new().unwrap();
    let wrapped = verify(&verifier, &ev, at).unwrap_or_else(|e| panic!("{}: {e}", v.name));
    let original = verify(&verifier, &vs.evidence(v).unwrap(), at).unwrap();
    assert_eq!(wrapped, original, "{}", v.name);
}
