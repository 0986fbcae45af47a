//! Interoperability with Google Tink (Python `tink`, see `tests/requirements.txt`): keys this
//! crate generates load in Tink, and ciphertexts cross in both directions.
//!
//! Python is found at `$KEYFERRY_PYTHON`, else `<crate>/../.venv/bin/python` (the workspace
//! venv), else `<crate>/.venv/bin/python`; the first that can `import tink` is used. When none
//! can, the test fails under `CI=true` and is skipped (with the reason printed) elsewhere.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::skip_or_fail;
use keys::{Aead, PrivateKeyset, PublicKeyset, generate, hybrid_encrypt};
use serde_json::json;

fn has_tink(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import tink, tink.hybrid"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn python_with_tink() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = std::env::var_os("KEYFERRY_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            manifest.join("../.venv/bin/python"),
            manifest.join(".venv/bin/python"),
        ])
        .collect();
    if let Some(found) = candidates.iter().find(|python| has_tink(python)) {
        return Some(found.clone());
    }
    skip_or_fail(&format!(
        "no Python with `tink` among {candidates:?}; \
         create a venv and `pip install -r tests/requirements.txt`, or set KEYFERRY_PYTHON"
    ))
}

fn run_tink(python: &Path, request: &serde_json::Value) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tools/tink_interop.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Tink script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let output = child.wait_with_output().expect("Tink script runs");
    assert!(
        output.status.success(),
        "Tink refused: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("Tink script prints JSON")
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(value: &serde_json::Value) -> Vec<u8> {
    STANDARD
        .decode(value.as_str().expect("a base64 string"))
        .expect("base64")
}

#[test]
fn tink_loads_generated_keys_and_ciphertexts_cross_both_ways() {
    let Some(python) = python_with_tink() else {
        return;
    };
    for aead in [Aead::ChaCha20Poly1305, Aead::Aes256Gcm] {
        let key = generate(aead).expect("generate");
        let from_rust =
            hybrid_encrypt(&key.public_key(), aead, b"from rust", b"ctx-rust").expect("encrypt");
        let mut tampered = from_rust.clone();
        *tampered.last_mut().expect("non-empty") ^= 1;

        let result = run_tink(
            &python,
            &json!({
                "privateKeyset": b64(key.private_keyset()),
                "decrypt": [
                    {"ciphertext": b64(&from_rust), "contextInfo": b64(b"ctx-rust")},
                    {"ciphertext": b64(&from_rust), "contextInfo": b64(b"other")},
                    {"ciphertext": b64(&tampered), "contextInfo": b64(b"ctx-rust")},
                ],
                "publicKeysetJson": key.public_keyset_json(),
                "encrypt": [
                    {"plaintext": b64(b"from tink"), "contextInfo": b64(b"ctx-tink")},
                    {"plaintext": "", "contextInfo": ""},
                ],
            }),
        );

        // (a) Tink loads the private keyset and opens the Rust ciphertext, and only that.
        let decrypted = &result["decrypted"];
        assert_eq!(unb64(&decrypted[0]["plaintext"]), b"from rust", "{aead:?}");
        assert!(
            decrypted[1]["error"].is_string(),
            "wrong context info must fail in Tink"
        );
        assert!(
            decrypted[2]["error"].is_string(),
            "tampered ciphertext must fail in Tink"
        );

        // Tink derives the same public key from the private keyset.
        let derived = PublicKeyset::from_tink_json(
            result["derivedPublicKeysetJson"]
                .as_str()
                .expect("derived public keyset"),
        )
        .expect("Tink's public keyset parses");
        assert_eq!(derived.public_key(), key.public_key());
        assert_eq!(derived.aead(), aead);
        assert_eq!(derived.tink_key_id(), key.tink_key_id());

        // (b) Tink encrypts with the Rust-made JSON public keyset; Rust decrypts.
        let keyset = PrivateKeyset::from_tink_bytes(key.private_keyset()).expect("parses");
        let encrypted = result["encrypted"].as_array().expect("encrypted");
        assert_eq!(encrypted.len(), 2);
        let plaintext = keyset
            .decrypt(&unb64(&encrypted[0]), b"ctx-tink")
            .expect("opens");
        assert_eq!(*plaintext, b"from tink", "{aead:?}");
        let plaintext = keyset.decrypt(&unb64(&encrypted[1]), b"").expect("opens");
        assert!(plaintext.is_empty());
    }
}
