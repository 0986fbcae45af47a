//! A moto server (AWS KMS and STS emulator) per test, killed when dropped.
//! Only processes and ports here: the AWS SDK settings that point at it
//! belong to the crates that have the SDK.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv holding `moto_server` and `boto3`: the first of
/// `<repository>/.venv`, `$KEYFERRY_VENV`, `<crate>/.venv` that has one,
/// where `<crate>` is the package whose test is running (cargo and nextest
/// set `CARGO_MANIFEST_DIR` for it).
pub fn venv() -> Option<PathBuf> {
    let candidates = [
        Some(Path::new(crate::REPOSITORY).join(".venv")),
        std::env::var_os("KEYFERRY_VENV").map(PathBuf::from),
        std::env::var_os("CARGO_MANIFEST_DIR").map(|crate_dir| Path::new(&crate_dir).join(".venv")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|v| v.join("bin/moto_server").is_file())
}

/// A moto server on a free loopback port, killed when dropped.
pub struct Moto {
    child: Child,
    /// Where it answers, `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The venv it runs from, whose `bin/python` has `boto3`.
    pub venv: PathBuf,
}

impl Moto {
    /// Starts moto, or returns `None` after printing why the test is
    /// skipped. Under `CI=true` a missing moto fails the test instead.
    pub fn start() -> Option<Moto> {
        let Some(venv) = venv() else {
            let why = "moto_server not found in ../.venv, $KEYFERRY_VENV or ./.venv \
                       (python3 -m venv .venv && .venv/bin/pip install 'moto[server]' boto3)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and {why}");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        };
        let port = free_port();
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            venv,
        };
        wait_until_answers(port, Duration::from_secs(20));
        Some(moto)
    }
}

impl Moto {
    /// Runs `tests/tools/kms_interop.py ENDPOINT REGION ARGS…` with this
    /// moto's venv Python (boto3, an independent AWS client); returns what
    /// it prints, trimmed, and fails the test when it fails. `args` are an
    /// ARN or `-`, the mode and its hex input, if any.
    pub fn boto3(&self, region: &str, args: &[&str]) -> String {
        let script = Path::new(crate::REPOSITORY).join("tests/tools/kms_interop.py");
        let out = Command::new(self.venv.join("bin/python"))
            .arg(script)
            .args([self.endpoint.as_str(), region])
            .args(args)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "boto3 {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    /// Creates a KMS key in `region` with boto3, for tests in crates
    /// without the AWS SDK; returns its ARN.
    pub fn create_key_with_boto3(&self, region: &str) -> String {
        self.boto3(region, &["-", "create-key"])
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Polls with a plain HTTP request until moto answers.
fn wait_until_answers(port: u16, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 12];
            if s.write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n").is_ok()
                && s.read_exact(&mut buf).is_ok()
                && buf.starts_with(b"HTTP/1.")
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("moto_server did not answer on port {port} within {limit:?}");
}
