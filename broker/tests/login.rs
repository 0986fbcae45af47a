//! `keyferry login` against a certified OpenID provider (the npm
//! `oidc-provider`, device flow enabled): an operator signs in with the
//! device authorization grant (RFC 8628), the token is cached with mode
//! 0600, and the admin commands authenticate with it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use common::{Broker, Serve};
use serde_json::Value;
use test_support::OperatorIdp;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// A broker whose operator issuer is `idp`, for ID tokens of its CLI client.
async fn broker(idp: &OperatorIdp) -> Broker {
    let issuer = idp.issuer.clone();
    let client_id = idp.client_id.clone();
    Broker::builder()
        .serve(Serve::Server)
        .tweak(move |config| {
            config.admin.oidc_issuer = Some(issuer.parse().expect("url"));
            config.admin.oidc_audience = Some(client_id);
        })
        .start()
        .await
        .expect("a SQLite broker starts")
}

/// Runs `keyferry login` with `cache`; `account` approves in the browser
/// (or refuses, with `deny`). Returns the exit status and what it printed.
async fn login(
    idp: &mut OperatorIdp,
    cache: &Path,
    account: &str,
    deny: bool,
) -> (ExitStatus, String) {
    let mut command = tokio::process::Command::from(common::process::keyferry());
    command
        .args([
            "login",
            "--issuer",
            &idp.issuer,
            "--client-id",
            &idp.client_id,
        ])
        .args(["--scope", "keyferry", "--token-cache"])
        .arg(cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("spawn keyferry login");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), stderr.read_line(&mut line))
            .await
            .expect("login prints the verification URI within 30 s")
            .expect("read stderr");
        assert!(read > 0, "login ended before it printed the URI: {printed}");
        printed.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("or open ") {
            break url.to_owned();
        }
    };
    assert!(printed.contains("enter the code"), "{printed}");
    let page = idp.approve(&url, account, deny).await;
    if !deny {
        assert_eq!(page, "Sign-in Success");
    }
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).await.expect("read stderr");
    printed.push_str(&rest);
    // The device grant polls every 5 s (RFC 8628's default interval).
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("login ends within 60 s of the approval")
        .expect("wait");
    (status, printed)
}

/// `keyferry onboard …` against `broker` with the token cache at `cache`,
/// from a directory without a bootstrap token.
fn onboard(broker: &Broker, cache: &Path, args: &[&str]) -> std::process::Output {
    let cwd = tempfile::tempdir().expect("tempdir");
    common::process::keyferry()
        .arg("onboard")
        .args(args)
        .args(["--server", &broker.base, "--json"])
        .env("KEYFERRY_TOKEN_CACHE", cache)
        .current_dir(cwd.path())
        .output()
        .expect("run keyferry onboard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_with_the_device_grant_and_the_admin_commands_use_the_cached_token() {
    let Some(mut idp) = OperatorIdp::start().await else {
        return;
    };
    let broker = broker(&idp).await;
    let home = tempfile::tempdir().expect("tempdir");
    let cache = home.path().join("config/keyferry/operator-token.json");

    let (status, printed) = login(&mut idp, &cache, "alice", false).await;
    assert!(status.success(), "login failed: {printed}");
    assert!(printed.contains("signed in as alice"), "{printed}");

    // The cache: the owner's only, in a directory that is the owner's only.
    let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o600);
    assert_eq!(mode(cache.parent().expect("dir")), 0o700);
    let cached: Value =
        serde_json::from_slice(&std::fs::read(&cache).expect("cache")).expect("JSON");
    assert_eq!(cached["issuer"], idp.issuer.as_str());
    assert_eq!(cached["subject"], "alice");
    let token = cached["token"].as_str().expect("token");
    assert!(!printed.contains(token), "the token is never printed");

    // Every admin command reads it: a write, attributed to the operator.
    let created = onboard(
        &broker,
        &cache,
        &[
            "adtech",
            "create",
            "--id",
            "adtech-1",
            "--name",
            "Ad Tech One",
            "--use-case",
            "aggregation-service",
        ],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let listed = onboard(&broker, &cache, &["adtech", "list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert!(listed.to_string().contains("adtech-1"), "{listed}");
    let audited = broker.audit_of_kind("adtech.created").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0]["actor"], "operator:alice", "{}", audited[0]);

    // A cache that others can read is refused, as ssh refuses a key.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let refused = onboard(&broker, &cache, &["adtech", "list"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("readable by others"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_operator_without_a_role_is_refused_and_a_refused_sign_in_caches_nothing() {
    let Some(mut idp) = OperatorIdp::start().await else {
        return;
    };
    let broker = broker(&idp).await;
    let home = tempfile::tempdir().expect("tempdir");

    // mallory signs in, but the issuer gives her no Keyferry role.
    let cache = home.path().join("mallory.json");
    let (status, printed) = login(&mut idp, &cache, "mallory", false).await;
    assert!(status.success(), "{printed}");
    let refused = onboard(&broker, &cache, &["adtech", "list"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("403"), "{stderr}");

    // The operator refuses the sign-in at the issuer: login fails, no cache.
    let cache = home.path().join("denied.json");
    let (status, printed) = login(&mut idp, &cache, "alice", true).await;
    assert_eq!(status.code(), Some(1), "{printed}");
    assert!(printed.contains("access_denied"), "{printed}");
    assert!(!cache.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cached_token_asks_for_a_new_login() {
    let broker = Broker::builder().start_sqlite().await;
    let home = tempfile::tempdir().expect("tempdir");
    let cache = home.path().join("operator-token.json");
    let expired = serde_json::json!({
        "issuer": "https://login.example",
        "client_id": "keyferry-cli",
        "subject": "alice",
        "expires_at": 1,
        "token": "eyJ.expired.token",
    });
    std::fs::write(&cache, expired.to_string()).expect("write");
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let refused = onboard(&broker, &cache, &["adtech", "list"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("has expired; run `keyferry login`"),
        "{stderr}"
    );
    assert!(!stderr.contains("eyJ.expired.token"), "{stderr}");
}
