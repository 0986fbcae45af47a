//! The repository's `.venv` Python (made by `scripts/test.sh`) running an
//! independent checker from `tests/tools/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `.venv/bin/python`, or `None` (with the reason printed) outside CI when
/// it is missing; under `CI=true` a missing one fails the test.
pub fn python(checker: &str) -> Option<PathBuf> {
    let python = root().join(".venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        !keyferry::testing::in_ci(),
        "{} is missing under CI=true: scripts/test.sh creates it",
        python.display()
    );
    eprintln!("skipping {checker}: run scripts/test.sh to create .venv");
    None
}

/// Runs `tests/tools/<script>` with `args` and `stdin`; returns its stdout,
/// failing the test with its stderr if it exits non-zero.
pub fn run(script: &str, args: &[&str], stdin: &[u8]) -> Option<String> {
    let python = python(script)?;
    let mut child = Command::new(python)
        .arg(root().join("tests/tools").join(script))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for python");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("utf-8"))
}

/// Parses each `{"status", "body"}` of `answered` strictly as the Privacy Sandbox
/// `ErrorResponse` (`tests/tools/error_proto.py`: protobuf's own parser, unknown fields
/// refused); returns one line per body, `<status> <code name> <reason>`.
pub fn parse_error_bodies(answered: &[serde_json::Value]) -> Option<String> {
    let input = serde_json::Value::Array(answered.to_vec()).to_string();
    let parsed = run("error_proto.py", &[], input.as_bytes())?;
    assert_eq!(parsed.lines().count(), answered.len(), "{parsed}");
    Some(parsed)
}
