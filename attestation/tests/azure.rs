//! Azure confidential VM evidence (`az-snp-vtpm`): the real HCL reports and vTPM quotes of
//! trustee's test data, read in place from `shared/vectors/snp/trustee/az-snp-vtpm`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use attestation::{
    AzureVtpmEvidence, EvidenceWire, PlatformEvidence, Reason, ReleaseBinding, TpmQuote, Verifier,
};

/// The trustee vectors, each with the instant its VCEK was valid (vectors.json).
const TRUSTEE: [&str; 4] = [
    "evidence-v0.json",
    "evidence-v1.json",
    "evidence-v2.json",
    "evidence-genoa.json",
];

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join("trustee/az-snp-vtpm").join(name)).unwrap()
}

fn at() -> std::time::SystemTime {
    common::instant("2025-11-20T00:00:00Z")
}

fn reason<T: std::fmt::Debug>(r: Result<T, attestation::Error>) -> Reason {
    r.unwrap_err().reason().unwrap()
}

#[test]
fn every_trustee_azure_vector_passes_the_runtime_data_and_quote_checks() {
    let Some(vs) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    for name in TRUSTEE {
        let az = AzureVtpmEvidence::from_trustee_json(&read(&vs.dir, name), vec![]).unwrap();
        let evidence = PlatformEvidence::AzSnpVtpm(az);
        let inspected = verifier
            .inspect_platform_at(&evidence, None, at())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let vtpm = inspected.claims().vtpm.as_ref().expect("vTPM claims");
        assert_eq!(vtpm.pcrs.len(), 24, "{name}: the quote selects every PCR");
        // The runtime data's own account of the VM, as Azure wrote it.
        assert_eq!(vtpm.vm_configuration.tpm_enabled, Some(true), "{name}");

        // The same evidence survives the release endpoint's wire form.
        let wire = EvidenceWire::from(&evidence);
        let json = serde_json::to_string(&wire).unwrap();
        assert!(
            json.starts_with(r#"{"type":"az-snp-vtpm","hclReport":"#),
            "{json:.60}"
        );
        let back = PlatformEvidence::try_from(serde_json::from_str::<EvidenceWire>(&json).unwrap())
            .unwrap();
        verifier.inspect_platform_at(&back, None, at()).unwrap();
    }
}

#[test]
fn one_flipped_byte_of_runtime_data_breaks_the_report_data_binding() {
    let Some(vs) = common::vectors() else { return };
    let verifier = Verifier::new().unwrap();
    for name in TRUSTEE {
        let az = AzureVtpmEvidence::from_trustee_json(&read(&vs.dir, name), vec![]).unwrap();
        let EvidenceWire::AzSnpVtpm(mut wire) =
            EvidenceWire::from(&PlatformEvidence::AzSnpVtpm(az))
        else {
            unreachable!()
        };
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut hcl = b64.decode(&wire.hcl_report).unwrap();
        // A byte inside the vmUniqueId string: the JSON still parses, its hash changes.
        let json_start = 32 + 1184 + 20;
        let at_id = hcl[json_start..]
            .windows(12)
            .position(|w| w == b"vmUniqueId\":")
            .map(|p| json_start + p + 14)
            .unwrap_or_else(|| panic!("{name}: no vmUniqueId"));
        hcl[at_id] ^= 0x01;
        wire.hcl_report = b64.encode(&hcl);
        let tampered = PlatformEvidence::try_from(EvidenceWire::AzSnpVtpm(wire)).unwrap();
        assert_eq!(
            reason(verifier.inspect_platform_at(&tampered, None, at())),
            Reason::RuntimeDataMismatch,
            "{name}"
        );
    }
}

#[test]
fn a_release_needs_the_binding_in_user_data() {
    let Some(vs) = common::vectors() else { return };
    // trustee's attester left user-data zero: no nonce and TEE key can be bound to it.
    let az =
        AzureVtpmEvidence::from_trustee_json(&read(&vs.dir, "evidence-v1.json"), vec![]).unwrap();
    assert_eq!(az.user_data(), Some(&[0u8; 64]));
    let binding = ReleaseBinding::new(b"challenge", [7; 32]);
    let r = Verifier::new().unwrap().verify_platform_at(
        &PlatformEvidence::AzSnpVtpm(az),
        &binding,
        at(),
    );
    assert_eq!(reason(r), Reason::UserDataMismatch);
}

#[test]
fn the_quote_holds_its_nonce_signature_and_pcrs() {
    let Some(vs) = common::vectors() else { return };
    let az =
        AzureVtpmEvidence::from_trustee_json(&read(&vs.dir, "evidence-v1.json"), vec![]).unwrap();
    let wire = attestation::AzureVtpmWire::from(&az);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let message = b64.decode(&wire.tpm_quote.message).unwrap();
    let signature = b64.decode(&wire.tpm_quote.signature).unwrap();
    let pcrs: Vec<Vec<u8>> = wire
        .tpm_quote
        .pcrs
        .iter()
        .map(|p| hex::decode(p).unwrap())
        .collect();
    let key = az_key(&az);
    // trustee's attester quoted over the nonce "challenge".
    let quote = TpmQuote::new(message.clone(), signature.clone(), pcrs.clone()).unwrap();
    assert_eq!(quote.verify(&key, b"challenge").unwrap().len(), 24);
    assert_eq!(
        reason(quote.verify(&key, b"another nonce")),
        Reason::QuoteNonceMismatch
    );

    let mut bad_signature = signature.clone();
    bad_signature[10] ^= 1;
    let q = TpmQuote::new(message.clone(), bad_signature, pcrs.clone()).unwrap();
    assert_eq!(
        reason(q.verify(&key, b"challenge")),
        Reason::QuoteSignatureInvalid
    );

    let mut bad_pcrs = pcrs.clone();
    bad_pcrs[7][0] ^= 1;
    let q = TpmQuote::new(message.clone(), signature.clone(), bad_pcrs).unwrap();
    assert_eq!(
        reason(q.verify(&key, b"challenge")),
        Reason::PcrDigestMismatch
    );

    let q = TpmQuote::new(message, signature, pcrs[..7].to_vec()).unwrap();
    assert_eq!(reason(q.verify(&key, b"challenge")), Reason::QuoteMalformed);
}

/// The HCL attestation key, as the runtime data names it.
fn az_key(az: &AzureVtpmEvidence) -> attestation::RsaKey {
    az.attestation_key().clone()
}

#[test]
fn malformed_hcl_reports_are_refused_with_their_reason() {
    let Some(vs) = common::vectors() else { return };
    let hcl = read(&vs.dir, "hcl-report.bin");
    let quote = || TpmQuote::new(vec![1], vec![1], vec![]).unwrap();
    let cases: Vec<(&str, Vec<u8>, Reason)> = vec![
        ("no magic", hcl[4..].to_vec(), Reason::ReportMalformed),
        (
            "no runtime data",
            hcl[..1216].to_vec(),
            Reason::RuntimeDataMalformed,
        ),
        (
            "truncated runtime data",
            hcl[..1400].to_vec(),
            Reason::RuntimeDataMalformed,
        ),
        (
            "oversized",
            [hcl.clone(), vec![0; 20_000]].concat(),
            Reason::ReportMalformed,
        ),
        (
            "runtime data is not JSON",
            {
                let mut h = hcl.clone();
                h[1236] = b'x';
                h
            },
            Reason::RuntimeDataMalformed,
        ),
        (
            "TDX report type",
            {
                let mut h = hcl.clone();
                h[1216 + 8] = 4;
                h
            },
            Reason::RuntimeDataMalformed,
        ),
    ];
    let vcek = std::fs::read(vs.dir.join("trustee/az-snp-vtpm/vcek.pem")).unwrap();
    for (what, bytes, expected) in cases {
        assert_eq!(
            reason(AzureVtpmEvidence::from_parts(
                &bytes,
                quote(),
                vec![vcek.clone()]
            )),
            expected,
            "{what}"
        );
    }
}

#[test]
fn a_policy_on_pcrs_admits_the_quoted_values_only() {
    let Some(vs) = common::vectors() else { return };
    let az =
        AzureVtpmEvidence::from_trustee_json(&read(&vs.dir, "evidence-v1.json"), vec![]).unwrap();
    let snp_only = PlatformEvidence::SevSnp(az.snp().clone());
    let verifier = Verifier::new().unwrap();
    let claims = verifier
        .inspect_platform_at(&PlatformEvidence::AzSnpVtpm(az), None, at())
        .unwrap()
        .claims()
        .clone();
    let measurement = hex::encode(claims.measurement);
    let pcr7 = claims.vtpm.as_ref().unwrap().pcrs[&7].clone();
    let policy = |pcr7: &str| {
        attestation::ReleasePolicy::from_json(
            &serde_json::json!({"measurements": [measurement], "pcrs": {"7": [pcr7]}}).to_string(),
        )
        .unwrap()
    };
    policy(&pcr7).check_claims(&claims).unwrap();
    assert_eq!(
        reason(policy(&"00".repeat(32)).check_claims(&claims)),
        Reason::PcrNotAllowed
    );
    // The same SNP report without its quote cannot satisfy a PCR rule.
    let bare = verifier
        .inspect_platform_at(&snp_only, None, at())
        .unwrap()
        .claims()
        .clone();
    assert_eq!(
        reason(policy(&pcr7).check_claims(&bare)),
        Reason::PcrNotAllowed
    );

    for bad in [
        serde_json::json!({"24": ["00"]}),
        serde_json::json!({"x": ["00"]}),
        serde_json::json!({"7": []}),
        serde_json::json!({"7": ["00"]}),
    ] {
        let doc = serde_json::json!({"measurements": [measurement], "pcrs": bad});
        assert!(
            attestation::ReleasePolicy::from_json(&doc.to_string()).is_err(),
            "{doc}"
        );
    }
}

mod simulated {
    use attestation::simulated::{ChipSpec, SimulatedAmd, SimulatedVtpm};
    use attestation::{
        AzureVtpmEvidence, PlatformEvidence, Reason, ReleaseBinding, Verifier, expected_report_data,
    };

    const NONCE: [u8; 32] = [5; 32];
    const TEE_KEY: [u8; 32] = [9; 32];

    fn verify(
        evidence: AzureVtpmEvidence,
    ) -> Result<attestation::VerifiedReport, attestation::Error> {
        let amd = SimulatedAmd::shared().unwrap();
        let verifier = Verifier::with_extra_roots(&[amd.ark_pem()]).unwrap();
        verifier.verify_platform_at(
            &PlatformEvidence::AzSnpVtpm(evidence),
            &ReleaseBinding::new(&NONCE, TEE_KEY),
            std::time::SystemTime::now(),
        )
    }

    #[test]
    fn an_honest_simulated_cvm_verifies_and_each_broken_link_has_its_reason() {
        let amd = SimulatedAmd::shared().unwrap();
        let chip = amd.chip(ChipSpec::milan()).unwrap();
        let vtpm = SimulatedVtpm::generate().unwrap();
        let fields = chip.report_fields();
        let bound = expected_report_data(&NONCE, &TEE_KEY);

        let verified = verify(vtpm.evidence(&chip, &fields, &bound, &NONCE).unwrap()).unwrap();
        assert_eq!(verified.binding().tee_public_key(), &TEE_KEY);
        let vtpm_claims = verified.claims().vtpm.as_ref().unwrap();
        assert_eq!(vtpm_claims.pcrs[&23], hex::encode([23u8; 32]));
        assert_eq!(vtpm_claims.vm_configuration.secure_boot, Some(true));

        // user-data bound to another nonce.
        let other = expected_report_data(&[6; 32], &TEE_KEY);
        let e = vtpm.evidence(&chip, &fields, &other, &NONCE).unwrap();
        assert_eq!(
            verify(e).unwrap_err().reason(),
            Some(Reason::UserDataMismatch)
        );

        // A quote over another nonce.
        let e = vtpm.evidence(&chip, &fields, &bound, &[6; 32]).unwrap();
        assert_eq!(
            verify(e).unwrap_err().reason(),
            Some(Reason::QuoteNonceMismatch)
        );

        // Runtime data that is not the one the report hashes: the report of one runtime
        // data spliced into the HCL report of another of the same length.
        let honest = SimulatedVtpm::hcl_report(&chip, &fields, &vtpm.runtime_data(&bound)).unwrap();
        let mut spliced =
            SimulatedVtpm::hcl_report(&chip, &fields, &vtpm.runtime_data(&other)).unwrap();
        spliced[32..32 + 1184].copy_from_slice(&honest[32..32 + 1184]);
        let spliced =
            AzureVtpmEvidence::from_parts(&spliced, vtpm.quote(&NONCE).unwrap(), chip.cert_pems())
                .unwrap();
        assert_eq!(
            verify(spliced).unwrap_err().reason(),
            Some(Reason::RuntimeDataMismatch)
        );

        // A quote signed by another vTPM's key.
        let stranger = SimulatedVtpm::generate().unwrap();
        let runtime = vtpm.runtime_data(&bound);
        let hcl = SimulatedVtpm::hcl_report(&chip, &fields, &runtime).unwrap();
        let e =
            AzureVtpmEvidence::from_parts(&hcl, stranger.quote(&NONCE).unwrap(), chip.cert_pems())
                .unwrap();
        assert_eq!(
            verify(e).unwrap_err().reason(),
            Some(Reason::QuoteSignatureInvalid)
        );
    }
}
