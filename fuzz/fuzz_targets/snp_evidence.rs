//! The `evidence` object of an attested release, as the broker reads it,
//! of every type: the JSON wire form, then the checks up to (not including)
//! the nonce binding: report format, certificate classification and chain to
//! AMD's pinned roots, TCB and key bindings, the report signature; for
//! `az-snp-vtpm` also the HCL report's runtime data and the vTPM quote.
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use attestation::{EvidenceWire, PlatformEvidence, Verifier};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| Verifier::new().expect("the pinned AMD roots load"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = serde_json::from_slice::<EvidenceWire>(data) else {
        return;
    };
    let Ok(evidence) = PlatformEvidence::try_from(wire) else {
        return;
    };
    let _ = verifier().inspect_platform_at(&evidence, None, SystemTime::now());
});
