//! A simulated SEV-SNP guest for release tests: a chip of the simulated
//! AMD, whose root the broker is told to trust, and the release policy that
//! admits its measurement.

use std::path::Path;

use attestation::expected_report_data;
use attestation::simulated::{ChipSpec, ReportFields, SimulatedAmd, SimulatedChip, SimulatedVtpm};
use attestation::{AzureVtpmEvidence, AzureVtpmWire};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keyferry::config::Config;
use serde_json::{Value, json};

/// The launch measurement the release policy admits.
pub const MEASUREMENT: [u8; 48] = [0x11; 48];

/// The shared simulated AMD's CA and root, written once per test process
/// (`simulated-amd.pem`, `simulated-ark.pem`): every test broker's simulated
/// key generator signs with it and every Type-2 trusts it.
pub fn simulated_amd_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let amd = SimulatedAmd::shared().expect("simulated AMD");
        let dir = tempfile::tempdir().expect("dir");
        let pem = amd.to_pem().expect("CA PEM");
        std::fs::write(dir.path().join("simulated-amd.pem"), pem.as_bytes()).expect("write CA");
        std::fs::write(dir.path().join("simulated-ark.pem"), amd.ark_pem()).expect("write root");
        dir
    })
    .path()
}

/// A Type-1's key generator signs with the shared simulated AMD (unless
/// the test chose a CA); a Type-2 trusts its root. A Type-1 trusts no extra
/// root for this: releases still need the test to configure one.
pub fn attest_key_generation(config: &mut Config) {
    let dir = simulated_amd_dir();
    match config.coordinator.role {
        keyferry::config::Role::Type1 => {
            if config.coordinator.key_generator_ca.is_none() {
                config.coordinator.key_generator_ca = Some(dir.join("simulated-amd.pem"));
            }
        }
        keyferry::config::Role::Type2 => {
            config
                .attestation
                .extra_roots
                .push(dir.join("simulated-ark.pem"));
        }
    }
}

/// A Milan chip of the simulated AMD, with the root and policy files a
/// broker reads at start (kept until this is dropped).
pub struct SimulatedTee {
    pub chip: SimulatedChip,
    /// The vTPM of the same guest run as an Azure confidential VM.
    pub vtpm: SimulatedVtpm,
    files: tempfile::TempDir,
}

impl SimulatedTee {
    pub fn new() -> SimulatedTee {
        let amd = SimulatedAmd::shared().expect("simulated AMD");
        let chip = amd.chip(ChipSpec::milan()).expect("chip");
        let files = tempfile::tempdir().expect("dir");
        std::fs::write(files.path().join("sim-ark.pem"), amd.ark_pem()).expect("write root");
        std::fs::write(
            files.path().join("policy.json"),
            json!({"measurements": [hex::encode(MEASUREMENT)], "min_tcb": {"snp": 8}}).to_string(),
        )
        .expect("write policy");
        SimulatedTee {
            chip,
            vtpm: SimulatedVtpm::generate().expect("vTPM"),
            files,
        }
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        Path::new(self.files.path()).join(name)
    }

    /// Trusts the simulated root and admits [`MEASUREMENT`] for the first
    /// use case.
    pub fn configure(&self, c: &mut Config) {
        c.attestation.extra_roots = vec![self.file("sim-ark.pem")];
        c.use_cases[0].release_policy = Some(self.file("policy.json"));
    }

    /// Honest `sev-snp` evidence binding `nonce` and `tee_public`, after
    /// `tweak` changed the report's fields.
    pub fn evidence(
        &self,
        nonce: &[u8],
        tee_public: &[u8],
        tweak: impl FnOnce(&mut ReportFields),
    ) -> Value {
        let mut fields = self.chip.report_fields();
        fields.measurement = MEASUREMENT;
        fields.report_data = expected_report_data(nonce, tee_public);
        tweak(&mut fields);
        let report = self.chip.sign_report(&fields).expect("sign");
        let pems = self.chip.cert_pems();
        let text = |i: usize| String::from_utf8(pems[i].clone()).expect("pem");
        json!({"type": "sev-snp", "report": B64.encode(report),
               "certs": {"vcek": text(0), "ask": text(1), "ark": text(2)}})
    }

    /// Honest `az-snp-vtpm` evidence of the guest as an Azure confidential
    /// VM: user-data binding `nonce` and `tee_public`, a quote over `nonce`;
    /// then `tweak` may replace the HCL report's runtime data binding or the
    /// quote's nonce to test a refusal.
    pub fn azure_evidence(
        &self,
        nonce: &[u8],
        tee_public: &[u8],
        tweak: impl FnOnce(&mut AzureTweak),
    ) -> Value {
        let mut fields = self.chip.report_fields();
        fields.measurement = MEASUREMENT;
        let mut t = AzureTweak {
            user_data: expected_report_data(nonce, tee_public),
            quote_nonce: nonce.to_vec(),
            report_user_data: None,
        };
        tweak(&mut t);
        let runtime = self.vtpm.runtime_data(&t.user_data);
        let mut hcl = SimulatedVtpm::hcl_report(&self.chip, &fields, &runtime).expect("HCL");
        if let Some(other) = t.report_user_data {
            // The report of other runtime data (same length) spliced in.
            let other = self.vtpm.runtime_data(&other);
            let donor = SimulatedVtpm::hcl_report(&self.chip, &fields, &other).expect("HCL");
            hcl[32..32 + 1184].copy_from_slice(&donor[32..32 + 1184]);
        }
        let quote = self.vtpm.quote(&t.quote_nonce).expect("quote");
        let evidence =
            AzureVtpmEvidence::from_parts(&hcl, quote, self.chip.cert_pems()).expect("evidence");
        let mut value = serde_json::to_value(AzureVtpmWire::from(&evidence)).expect("json");
        value["type"] = json!("az-snp-vtpm");
        value
    }
}

/// What [`SimulatedTee::azure_evidence`] lets a test break.
pub struct AzureTweak {
    /// The runtime data's user-data.
    pub user_data: [u8; 64],
    /// The nonce the vTPM quotes.
    pub quote_nonce: Vec<u8>,
    /// Sign the report over runtime data with this user-data instead.
    pub report_user_data: Option<[u8; 64]>,
}
