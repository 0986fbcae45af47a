//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// True on CI, where a missing fixture or tool is a failure, not a skip.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (returns `None` after saying why) or, under `CI=true`, fails.
pub fn skip_or_fail<T>(reason: &str) -> Option<T> {
    assert!(!on_ci(), "CI=true: {reason}");
    eprintln!("SKIPPED: {reason}");
    None
}

/// The shared vectors folder: `$KEYFERRY_VECTORS`, default `../shared/vectors` beside the repository.
pub fn vectors_dir() -> PathBuf {
    std::env::var_os("KEYFERRY_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"))
}

/// The Tink HPKE vectors file, parsed; `None` (skip) when it is absent outside CI.
pub fn tink_vectors() -> Option<serde_json::Value> {
    let path = vectors_dir().join("tink/hpke.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            return skip_or_fail(&format!(
                "Tink vectors not readable at {} ({e}); set KEYFERRY_VECTORS",
                path.display()
            ));
        }
    };
    let json: serde_json::Value = serde_json::from_str(&text).expect("hpke.json is JSON");
    assert!(
        !json["vectors"]
            .as_array()
            .expect("vectors array")
            .is_empty(),
        "hpke.json has no vectors"
    );
    Some(json)
}

/// A string field of a vector.
pub fn str_field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector field {name} missing"))
}

/// A base64 field of a vector, decoded.
pub fn b64_field(v: &serde_json::Value, name: &str) -> Vec<u8> {
    STANDARD
        .decode(str_field(v, name))
        .unwrap_or_else(|e| panic!("vector field {name} not base64: {e}"))
}
