//! The `evidence` object of an attested release, as the broker reads it:
//! the JSON wire form, then the checks up to (not including) the nonce
//! binding: report format, certificate classification and chain to AMD's
//! pinned roots, TCB and key bindings, the report signature.
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use attestation::{Evidence, EvidenceWire, ReportDataCheck, Verifier};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| Verifier::new().expect("the pinned AMD roots load"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = serde_json::from_slice::<EvidenceWire>(data) else {
        return;
    };
    let Ok(evidence) = Evidence::try_from(wire) else {
        return;
    };
    let _ = verifier().inspect_at(&evidence, ReportDataCheck::NotChecked, SystemTime::now());
});
