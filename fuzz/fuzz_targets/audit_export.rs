//! Audit logs as auditors read them back (the `transparency` crate): one
//! entry's text, or a whole export (signed head and entries) checked by the
//! offline verifier. The first byte picks which.
//!
//! Properties beyond "no panic": an entry that parses is its own canonical
//! text and parses back to itself (what an auditor reads is what was
//! hashed; an integer beyond 2^53 once broke this), and an export verifies
//! against its own head exactly when it verifies alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use transparency::AuditEntry;
use transparency::verify::{Export, verify};

fuzz_target!(|data: &[u8]| {
    let Some((kind, body)) = data.split_first() else {
        return;
    };
    if kind % 2 == 0 {
        let Ok(text) = std::str::from_utf8(body) else {
            return;
        };
        let _ = AuditEntry::claimed_index(text);
        if let Ok(entry) = AuditEntry::parse(text) {
            let canonical = entry.canonical();
            let again = AuditEntry::parse(&canonical).expect("a canonical entry parses");
            assert_eq!(again, entry, "canonical text does not round-trip");
            assert_eq!(again.canonical(), canonical, "canonical text is not stable");
        }
    } else if let Ok(export) = serde_json::from_slice::<Export>(body) {
        let alone = verify(&export, None);
        let against_itself = verify(&export, Some(&export.sth));
        match (alone, against_itself) {
            (Ok(alone), Ok(against_itself)) => {
                assert_eq!(alone.tree_size, against_itself.tree_size);
                assert!(against_itself.consistent_with_saved);
            }
            (Err(_), Err(_)) => {}
            (alone, against_itself) => {
                panic!("a log and its own head disagree: {alone:?} / {against_itself:?}")
            }
        }
    }
});
