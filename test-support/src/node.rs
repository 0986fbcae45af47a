//! A test server written in JavaScript around an npm package, run with
//! `node` and driven over its stdin/stdout: one JSON object per line, a
//! start-up line first, then replies that carry their request's `"id"`.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A running `node server.mjs` in a folder of `tests/`; killed when dropped.
pub(crate) struct NodeServer {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

/// Skips the calling test with a reason, or fails it under `CI=true`, where a missing
/// prerequisite is a broken set-up rather than a developer's incomplete machine.
fn unavailable<T>(what: &str, reason: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} unavailable under CI=true: {reason}");
    }
    // Written to the raw stderr handle so libtest's output capture does not hide it.
    let _ = writeln!(std::io::stderr(), "SKIPPED ({what} unavailable): {reason}");
    None
}

impl NodeServer {
    /// Starts `tests/<folder>/server.mjs`, which needs the npm `package`, and
    /// returns it with its start-up line; `None` (test skipped) when node or
    /// the package is missing outside CI. `what` names it in messages.
    pub(crate) async fn start(folder: &str, package: &str, what: &str) -> Option<(Self, Value)> {
        crate::install_crypto_provider();
        let dir = Path::new(crate::REPOSITORY).join("tests").join(folder);
        if !dir
            .join("node_modules")
            .join(package)
            .join("package.json")
            .exists()
        {
            return unavailable(
                what,
                &format!(
                    "{package} is not installed: run `npm ci` in tests/{folder} at the repository root"
                ),
            );
        }
        let spawned = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return unavailable(what, &format!("cannot run node: {e}")),
        };
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{what} did not start within 30 s"))
            .expect("reading stdout")
            .unwrap_or_else(|| panic!("{what} exited before it was ready"));
        let ready: Value = serde_json::from_str(&ready).expect("ready line is JSON");
        assert_eq!(ready["event"], "ready", "{ready}");
        let server = Self {
            _child: child,
            stdin,
            lines,
            next_id: 0,
        };
        Some((server, ready))
    }

    /// Sends `request` and returns the reply with its id; panics on an `error` reply.
    pub(crate) async fn call(&mut self, mut request: Value) -> Value {
        self.next_id += 1;
        request["id"] = json!(self.next_id);
        let line = format!("{request}\n");
        self.stdin.write_all(line.as_bytes()).await.expect("write");
        self.stdin.flush().await.expect("flush");
        let reply = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("reply within 30 s")
            .expect("read")
            .expect("the test server exited");
        let reply: Value = serde_json::from_str(&reply).expect("reply is JSON");
        assert_eq!(reply["id"], json!(self.next_id), "{reply}");
        assert!(reply.get("error").is_none(), "test server error: {reply}");
        reply
    }
}
