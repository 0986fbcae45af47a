//! The `keyferry` binary as a child process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// `keyferry` with none of the developer's own `KEYFERRY_*` overrides.
pub fn keyferry() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyferry"));
    for (key, _) in std::env::vars() {
        if key.starts_with("KEYFERRY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Starts `keyferry serve` on a free loopback port with `data` as its data
/// dir; returns the process and the address its banner announces.
pub fn serve(
    data: &std::path::Path,
    cwd: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    serve_with_config(data, cwd, None, env)
}

/// [`serve`] with `--config config` when given.
pub fn serve_with_config(
    data: &std::path::Path,
    cwd: &std::path::Path,
    config: Option<&std::path::Path>,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let mut cmd = keyferry();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("banner");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, base)
}
