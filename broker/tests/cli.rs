//! The `keyferry` binary as an operator runs it.

mod common;

use std::process::Command;

use common::process::{keyferry, serve};
use std::time::{Duration, Instant};

fn check(config: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keyferry.toml");
    std::fs::write(&path, config).expect("write");
    let out = keyferry()
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_prints_the_effective_configuration_without_secrets() {
    let (code, stdout, stderr) = check(
        "profile = \"dev\"\n[coordinator]\npeer_url = \"embedded\"\n[storage]\nurl = \"postgres://kf:s3cret@127.0.0.1:5432/kf\"\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("profile = \"dev\""), "{stdout}");
    assert!(
        stdout.contains("postgres://kf:***@127.0.0.1:5432/kf"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret") && !stderr.contains("s3cret"));
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    for (config, key) in [
        (
            "profile = \"dev\"\n[server]\nlisten_addr = \"127.0.0.1:1\"\n",
            "listen_addr",
        ),
        (
            "profile = \"dev\"\n[coordinator]\npeer_issuer = \"::not a url::\"\n",
            "coordinator.peer_issuer",
        ),
        (
            "profile = \"dev\"\n[server]\nlisten = \"nowhere\"\n",
            "server.listen",
        ),
        ("profile = \"staging\"\n", "profile"),
        (
            "profile = \"production\"\n[server]\npublic_url = \"https://a.example.com\"\n\
             [coordinator]\npeer_url = \"https://b.example.com\"\nstorage_kek = \"local-kek://storage\"\n",
            "coordinator.storage_kek",
        ),
    ] {
        let (code, _, stderr) = check(config);
        assert_eq!(code, 2, "{config}\n{stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
    }
}

#[test]
fn production_lists_every_dev_only_setting_one_line_each() {
    let (code, _, stderr) = check(
        "profile = \"production\"\n\
         [server]\npublic_url = \"https://a.example.com\"\n\
         [coordinator]\npeer_url = \"embedded\"\nstorage_kek = \"local-kek://storage\"\n\
         [admin]\nbootstrap_token = true\n\
         [attestation]\nextra_roots = [\"sim-ark.pem\"]\n\
         [[issuers]]\nname = \"dev\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:9000\"\naudience = \"x\"\n",
    );
    assert_eq!(code, 2);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("configuration error"))
        .collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    for key in [
        "coordinator.storage_kek",
        "coordinator.peer_url",
        "admin.bootstrap_token",
        "attestation.extra_roots",
        "issuers[0].issuer",
    ] {
        assert!(lines.iter().any(|l| l.contains(key)), "{key}: {stderr}");
    }
}

#[test]
fn bad_usage_exits_2() {
    let out = keyferry().arg("no-such-command").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = keyferry()
        .args(["serve", "--listen", "not-an-address"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn serve_runs_on_its_defaults_logs_request_ids_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (child, base) = serve(&data, dir.path(), &[]);

    test_support::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        match client.get(format!("{base}/readyz")).send().await {
            Ok(r) if r.status() == 200 => break true,
            _ if Instant::now() > deadline => break false,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(ready, "not ready at {base}");
    client
        .get(format!("{base}/no-such-route"))
        .header("x-request-id", "cli-test-request-7")
        .send()
        .await
        .expect("request");

    // The default layout under --data-dir: SQLite file and a private local KEK.
    assert!(data.join("keyferry.db").is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("keks/storage.key"))
            .expect("kek")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "exit {:?}", out.status);
    let logs = String::from_utf8_lossy(&out.stderr);
    let tagged: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["span"]["request_id"] == "cli-test-request-7")
        .collect();
    assert!(
        !tagged.is_empty(),
        "no JSON log line carries the request id:\n{logs}"
    );
    assert!(logs.contains("shutdown requested"), "{logs}");
}

#[tokio::test]
async fn what_a_request_sends_reaches_the_logs_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("an operator's data directory");
    let (child, base) = serve(&data, dir.path(), &[]);
    test_support::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(client.get(format!("{base}/healthz")).send().await, Ok(r) if r.status() == 200)
    {
        assert!(Instant::now() < deadline, "not up at {base}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 40 requests with a 50 KB path and a 4 KB request id used to write
    // 50 KB into each of their log lines.
    let long_path = format!("/{}", "a".repeat(50_000));
    let long_id = "i".repeat(4_000);
    for _ in 0..40 {
        let answered = client
            .get(format!("{base}{long_path}"))
            .header("x-request-id", &long_id)
            .send()
            .await
            .expect("answered");
        assert_eq!(answered.status(), 404);
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let logs = String::from_utf8_lossy(&out.stderr);
    let longest = logs.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a log line of {longest} bytes");
    assert!(
        !logs.contains(&long_id[..100]),
        "the client's long id was logged"
    );
    let cut: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["span"]["path_len"] == 50_001)
        .collect();
    assert!(!cut.is_empty(), "the cut path's length is logged:\n{logs}");
    assert_eq!(cut[0]["span"]["path"].as_str().map(str::len), Some(256));

    // The database is the owner's only, although its directory existed.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("keyferry.db"))
            .expect("db")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_serve_publishes_keys_and_logs_no_secret() {
    use base64::Engine as _;
    use cloud_adapters::KeyWrapper;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (child, base) = serve(
        &data,
        dir.path(),
        &[(
            "RUST_LOG",
            "debug,sqlx=warn,hyper=warn,h2=warn,reqwest=warn,rustls=warn",
        )],
    );

    // The embedded Type-2 acknowledges and the keys appear, without any set-up.
    test_support::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ids: Vec<String> = loop {
        let body: serde_json::Value = match client
            .get(format!("{base}/v1alpha/publicKeys"))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let ids: Vec<String> = body["keys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() == 5 {
            break ids;
        }
        assert!(Instant::now() < deadline, "no keys published at {base}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Every secret the run produced, in the encodings a careless log might use.
    let mut secrets: Vec<String> = Vec::new();
    let type1 =
        keyferry::storage::Store::connect(&format!("sqlite://{}/keyferry.db", data.display()), 1)
            .await
            .expect("db");
    let type2 = keyferry::storage::Store::connect(
        &format!("sqlite://{}/peer/keyferry.db", data.display()),
        1,
    )
    .await
    .expect("db");
    let kek1 = cloud_adapters::LocalKek::open_or_create(&data.join("keks"), "storage")
        .await
        .expect("kek");
    let kek2 = cloud_adapters::LocalKek::open_or_create(&data.join("peer/keks"), "storage")
        .await
        .expect("kek");
    for id in &ids {
        let a = kek1
            .unwrap(&type1.splits(id).await.expect("splits")[0].ciphertext)
            .await
            .expect("A");
        let b = kek2
            .unwrap(&type2.splits(id).await.expect("splits")[0].ciphertext)
            .await
            .expect("B");
        let keyset = keys::recombine(&a, &b).expect("recombine");
        keys::PrivateKeyset::from_tink_bytes(&keyset).expect("a whole key from the two splits");
        for secret in [a.as_slice(), b.as_slice(), keyset.as_slice()] {
            secrets.push(b64(secret));
            secrets.push(hex(secret));
        }
    }
    secrets.push(
        std::fs::read_to_string(data.join("admin-token"))
            .expect("token")
            .trim()
            .to_owned(),
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        logs.contains("generated keys"),
        "the run did log its work:\n{logs}"
    );
    for secret in &secrets {
        // Long enough that a chance match is impossible; short prefixes too.
        for needle in [secret.as_str(), &secret[..secret.len().min(24)]] {
            assert!(!logs.contains(needle), "a secret reached the logs");
        }
    }
}

/// The public SNP vectors beside the repository, or `None` (skip) outside CI.
fn snp_vectors() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/snp"
    ));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !keyferry::testing::in_ci(),
        "CI=true and the SNP vectors are missing at {}",
        dir.display()
    );
    eprintln!("SKIPPED: no SNP vectors at {}", dir.display());
    None
}

#[test]
fn attest_verify_prints_the_claims_or_the_refusal_reason() {
    let Some(v) = snp_vectors() else { return };
    let verify = |report: &std::path::Path, extra: &[&str]| {
        let out = keyferry()
            .args(["attest", "verify", "--report"])
            .arg(report)
            .arg("--certs")
            .arg(v.join("trustee/snp/test-vcek.der"))
            .arg(v.join("virtee-sev/builtin/milan_ask.pem"))
            .arg(v.join("virtee-sev/builtin/milan_ark.pem"))
            .args(["--at", "2025-11-20T00:00:00Z"])
            .args(extra)
            .output()
            .expect("run");
        let stdout: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out.status.code(), stdout)
    };
    let report = v.join("trustee/snp/test-report.bin");
    let (code, claims) = verify(&report, &[]);
    assert_eq!(code, Some(0), "{claims}");
    assert_eq!(
        claims["measurement"],
        "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
    );

    // One flipped bit in the signed part.
    let dir = tempfile::tempdir().expect("dir");
    let mut bytes = std::fs::read(&report).expect("report");
    bytes[0x90] ^= 0x01;
    let flipped = dir.path().join("flipped.bin");
    std::fs::write(&flipped, &bytes).expect("write");
    let (code, refusal) = verify(&flipped, &[]);
    assert_eq!(
        (code, refusal["reason"].as_str()),
        (Some(1), Some("report_signature_invalid"))
    );

    // A policy that allows another measurement.
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        format!("{{\"measurements\": [\"{}\"]}}", "00".repeat(48)),
    )
    .expect("write");
    let policy_arg = policy.to_string_lossy().into_owned();
    let (code, refusal) = verify(&report, &["--policy", &policy_arg]);
    assert_eq!(
        (code, refusal["reason"].as_str()),
        (Some(1), Some("measurement_not_allowed"))
    );

    // Today, not at the vector's date: still valid (a VCEK), but a wrong
    // report_data binding is refused.
    let (code, refusal) = verify(&report, &["--report-data", &"00".repeat(64)]);
    assert_eq!(
        (code, refusal["reason"].as_str()),
        (Some(1), Some("report_data_mismatch"))
    );

    // Bad usage: exit 2.
    let (code, _) = verify(&dir.path().join("missing.bin"), &[]);
    assert_eq!(code, Some(2));
    let (code, _) = verify(&report, &["--report-data", "abc"]);
    assert_eq!(code, Some(2));
}

#[test]
fn attest_verify_reads_an_azure_vtpm_hcl_report() {
    let Some(v) = snp_vectors() else { return };
    let out = keyferry()
        .args(["attest", "verify", "--format", "azure-hcl", "--report"])
        .arg(v.join("trustee/az-snp-vtpm/hcl-report.bin"))
        .arg("--certs")
        .arg(v.join("trustee/az-snp-vtpm/vcek.pem"))
        .args(["--at", "2025-11-20T00:00:00Z"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        claims["measurement"],
        "9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c315"
    );
}

#[test]
fn attest_verify_takes_trustee_az_snp_vtpm_evidence() {
    let Some(v) = snp_vectors() else { return };
    let run = |file: &str, extra: &[&str]| {
        let out = keyferry()
            .args(["attest", "verify", "--evidence"])
            .arg(v.join("trustee/az-snp-vtpm").join(file))
            .args(["--at", "2025-11-20T00:00:00Z"])
            .args(extra)
            .output()
            .expect("run");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (
            out.status.code(),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for file in [
        "evidence-v0.json",
        "evidence-v1.json",
        "evidence-genoa.json",
    ] {
        let (code, claims, stderr) = run(file, &[]);
        assert_eq!(code, Some(0), "{file}: {stderr}");
        assert_eq!(
            claims["vtpm"]["pcrs"].as_object().map(|m| m.len()),
            Some(24)
        );
        assert!(stderr.contains("binding was not checked"), "{stderr}");
    }
    // With a binding: trustee's guest left user-data zero, so no nonce and
    // key can be bound to it.
    let zeros = format!("{}=", "A".repeat(43)); // base64 of 32 zero bytes
    let (code, refusal, _) = run(
        "evidence-v1.json",
        &["--nonce", &zeros, "--tee-public-key", &zeros],
    );
    assert_eq!(
        (code, refusal["reason"].as_str()),
        (Some(1), Some("user_data_mismatch"))
    );
}

#[test]
fn attest_verify_checks_a_release_evidence_object_with_its_binding() {
    use attestation::simulated::{ChipSpec, SimulatedAmd, SimulatedVtpm};
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let amd = SimulatedAmd::shared().expect("AMD");
    let chip = amd.chip(ChipSpec::milan()).expect("chip");
    let vtpm = SimulatedVtpm::generate().expect("vTPM");
    let (nonce, tee_key) = ([3u8; 32], [4u8; 32]);
    let bound = attestation::expected_report_data(&nonce, &tee_key);
    let evidence = vtpm
        .evidence(&chip, &chip.report_fields(), &bound, &nonce)
        .expect("evidence");
    let wire = attestation::EvidenceWire::AzSnpVtpm(attestation::AzureVtpmWire::from(&evidence));
    let dir = tempfile::tempdir().expect("dir");
    let (file, root) = (dir.path().join("evidence.json"), dir.path().join("ark.pem"));
    std::fs::write(&file, serde_json::to_vec(&wire).expect("json")).expect("write");
    std::fs::write(&root, amd.ark_pem()).expect("write");
    let run = |nonce: &[u8]| {
        let out = keyferry()
            .args(["attest", "verify", "--evidence"])
            .arg(&file)
            .arg("--extra-root")
            .arg(&root)
            .args([
                "--nonce",
                &b64.encode(nonce),
                "--tee-public-key",
                &b64.encode(tee_key),
            ])
            .output()
            .expect("run");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        (out.status.code(), json)
    };
    let (code, claims) = run(&nonce);
    assert_eq!(code, Some(0), "{claims}");
    assert_eq!(claims["vtpm"]["vm_configuration"]["secure_boot"], true);
    let (code, refusal) = run(&[9; 32]);
    assert_eq!(
        (code, refusal["reason"].as_str()),
        (Some(1), Some("user_data_mismatch"))
    );
}

#[test]
fn demo_runs_the_whole_flow_with_nothing_but_the_binary() {
    let dir = tempfile::tempdir().expect("dir");
    let out = keyferry()
        .arg("demo")
        .current_dir(dir.path())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admitted = format!(
        "B admitted A's key generator (simulated SEV-SNP, dev only) with measurement {}",
        hex::encode(keyferry::lifecycle::DEV_KEY_GENERATOR_MEASUREMENT)
    );
    for line in [
        "coordinator A (Type-1)",
        "published after B's signed acknowledgement",
        admitted.as_str(),
        "recombined 2 keys",
        "decrypted: {\"conversion\": \"purchase\", \"value\": 42}",
        "keys.released",
        "demo complete",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // It cleans up after itself: nothing is left in the working directory.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[test]
fn bench_drives_a_loopback_broker_and_reports_in_json() {
    let out = keyferry()
        .args([
            "bench",
            "recent-keys",
            "--duration",
            "1",
            "--concurrency",
            "2",
            "--json",
        ])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        report["requests"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    assert_eq!(report["errors"], 0, "{report}");
    assert!(
        report["ceilingPerSecond"].as_f64().is_some_and(|c| c > 0.0),
        "{report}"
    );

    // Scenarios that need an identity the broker trusts refuse a foreign target.
    let out = keyferry()
        .args(["bench", "token-exchange", "--target", "http://127.0.0.1:9"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("public-keys only"));
}
