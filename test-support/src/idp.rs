//! Drives the test IdP in `tests/idp-server/` at the repository root (a
//! wrapper around the npm package `oauth2-mock-server`) over its
//! stdin/stdout JSON-line protocol.

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A running `node tests/idp-server/server.mjs`; killed when dropped.
pub struct NodeIdp {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// The issuer URL, `http://127.0.0.1:<port>`.
    pub issuer: String,
    next_id: u64,
}

/// Skips the calling test with a reason, or fails it under `CI=true`, where a missing
/// prerequisite is a broken set-up rather than a developer's incomplete machine.
fn unavailable(reason: &str) -> Option<NodeIdp> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("test IdP unavailable under CI=true: {reason}");
    }
    // Written to the raw stderr handle so libtest's output capture does not hide it.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED (test IdP unavailable): {reason}"
    );
    None
}

impl NodeIdp {
    /// Starts the IdP, or returns `None` (test skipped) when node or the npm package is
    /// missing outside CI.
    pub async fn start() -> Option<Self> {
        crate::install_crypto_provider();
        let dir = Path::new(crate::REPOSITORY).join("tests/idp-server");
        if !dir
            .join("node_modules/oauth2-mock-server/package.json")
            .exists()
        {
            return unavailable(
                "oauth2-mock-server is not installed: run `npm ci` in tests/idp-server at the repository root",
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
            Err(e) => return unavailable(&format!("cannot run node: {e}")),
        };
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("IdP did not start within 30 s")
            .expect("reading IdP stdout")
            .expect("IdP exited before it was ready");
        let ready: Value = serde_json::from_str(&ready).expect("ready line is JSON");
        assert_eq!(ready["event"], "ready", "{ready}");
        let issuer = ready["issuer"].as_str().expect("issuer").to_owned();
        Some(Self {
            _child: child,
            stdin,
            lines,
            issuer,
            next_id: 0,
        })
    }

    async fn call(&mut self, mut request: Value) -> Value {
        self.next_id += 1;
        request["id"] = json!(self.next_id);
        let line = format!("{request}\n");
        self.stdin.write_all(line.as_bytes()).await.expect("write");
        self.stdin.flush().await.expect("flush");
        let reply = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("IdP reply within 30 s")
            .expect("read")
            .expect("IdP exited");
        let reply: Value = serde_json::from_str(&reply).expect("reply is JSON");
        assert_eq!(reply["id"], json!(self.next_id), "{reply}");
        assert!(reply.get("error").is_none(), "IdP error: {reply}");
        reply
    }

    /// A token signed by the IdP's current key with `claims` merged into its defaults
    /// (`iss`, `iat`, `exp` = iat + 3600, `nbf`), `header` merged into the JOSE header and
    /// the claims named in `remove` deleted.
    pub async fn token_with(&mut self, claims: Value, header: Value, remove: &[&str]) -> String {
        let reply = self
            .call(json!({"cmd": "token", "claims": claims, "header": header, "remove": remove}))
            .await;
        reply["token"].as_str().expect("token").to_owned()
    }

    /// A token with `claims` and default header.
    pub async fn token(&mut self, claims: Value) -> String {
        self.token_with(claims, json!({}), &[]).await
    }

    /// Generates a new RS256 key that signs later tokens; returns its kid. The old key
    /// stays published.
    pub async fn rotate(&mut self) -> String {
        let reply = self.call(json!({"cmd": "rotate"})).await;
        reply["kid"].as_str().expect("kid").to_owned()
    }

    /// (JWKS requests, discovery requests) served so far.
    pub async fn stats(&mut self) -> (u64, u64) {
        let reply = self.call(json!({"cmd": "stats"})).await;
        (
            reply["jwks"].as_u64().expect("jwks"),
            reply["discovery"].as_u64().expect("discovery"),
        )
    }

    /// Stops the HTTP server (the process keeps answering on stdin).
    pub async fn stop(&mut self) {
        self.call(json!({"cmd": "stop"})).await;
    }
}
