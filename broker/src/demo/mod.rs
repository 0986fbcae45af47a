//! `keyferry demo`: the whole mission on loopback, in one process, with
//! nothing but the binary. Two coordinators (Type-1 and Type-2, each on its
//! own temporary SQLite database), a stand-in cloud identity issuer, the
//! onboarding of an ad tech at both, and a workload with simulated SNP
//! evidence that fetches both splits, recombines the private key and
//! decrypts a payload encrypted to the published public key.
//!
//! Everything dev-only is said so in the transcript: the simulated AMD root,
//! the local KEKs, the stand-in issuer. The workload side is the real
//! `workload` crate, configured as a workload would be.

pub(crate) mod dev_issuer;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use attestation::simulated::SimulatedAmd;
use serde_json::{Value, json};

use crate::config::{CloudConfig, Config, IssuerEntry, IssuerKind, Role, UnwrapMode};
use crate::server::Server;
use dev_issuer::DevIssuer;

const USE_CASE: &str = "aggregation-service";
const AUDIENCE: &str = "keyferry-demo";
const ADTECH: &str = "adtech-demo";
/// The workload's cloud identity (an AWS role, as the stand-in issuer is
/// trusted as an `aws`-kind issuer).
const SUBJECT: &str = "arn:aws:iam::123456789012:role/demo-workload";
/// The launch measurement the release policy allows and the simulated
/// workload reports.
const MEASUREMENT: [u8; 48] = [0x4b; 48];

struct Transcript<'a> {
    out: &'a mut (dyn Write + Send),
    step: u32,
}

impl Transcript<'_> {
    fn step(&mut self, title: &str) {
        self.step += 1;
        let _ = writeln!(self.out, "\n{}. {title}", self.step);
    }

    fn line(&mut self, text: impl std::fmt::Display) {
        let _ = writeln!(self.out, "   {text}");
    }
}

/// One coordinator's configuration.
fn coordinator_config(
    dir: &Path,
    name: &str,
    role: Role,
    url: &str,
    peer: &str,
    issuer: &str,
    files: &Path,
) -> anyhow::Result<Config> {
    let mut config = Config::dev_default();
    config.data_dir = dir.join(name);
    config.server.listen = url
        .trim_start_matches("http://")
        .parse()
        .context("listen address")?;
    config.server.public_url = Some(url.parse()?);
    config.coordinator.name = name.into();
    config.coordinator.role = role;
    match role {
        Role::Type1 => config.coordinator.peer_url = Some(peer.into()),
        Role::Type2 => {
            config.coordinator.peer_url = None;
            config.coordinator.peer_issuer = Some(peer.parse()?);
        }
    }
    config.keys.active_keys = 2;
    config.use_cases[0].release_policy = Some(files.join("release-policy.json"));
    config.attestation.extra_roots = vec![files.join("simulated-ark.pem")];
    // A's key generator attests each handover with the same simulated AMD;
    // B admits the simulated key generator's image (the dev default policy).
    config.coordinator.key_generator_ca = Some(files.join("simulated-amd.pem"));
    let mut aws = CloudConfig::with_kek("local-kek://aws-splits");
    // AWS EC2's KMS cannot check SNP evidence: the broker unwraps and seals
    // the split itself (DESIGN §5.3).
    aws.unwrap = UnwrapMode::Broker;
    config.clouds.aws = Some(aws);
    config.issuers = vec![IssuerEntry {
        name: "demo-cloud".into(),
        kind: IssuerKind::Aws,
        issuer: issuer.parse()?,
        audience: AUDIENCE.into(),
        algorithms: None,
        max_token_lifetime: None,
        jwks_uri: None,
        accept_as_bearer: false,
    }];
    Ok(config)
}

async fn admin(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {base}{path}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("POST {base}{path}: {status}: {body}");
    }
    Ok(body)
}

/// Waits until `base` publishes keys; returns their ids.
async fn published_keys(http: &reqwest::Client, base: &str) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body: Value = http
            .get(format!("{base}/v1alpha/publicKeys"))
            .send()
            .await?
            .json()
            .await
            .unwrap_or(Value::Null);
        let ids: Vec<String> = body["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["id"].as_str().map(str::to_owned))
            .collect();
        if !ids.is_empty() {
            return Ok(ids);
        }
        if Instant::now() > deadline {
            bail!("{base} published no keys within a minute");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the demo, writing the transcript to `out`.
pub async fn run(out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    crate::server::install_crypto_provider();
    let mut t = Transcript { out, step: 0 };
    let dir = tempfile::tempdir().context("temporary directory")?;
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files)?;
    let http = reqwest::Client::new();

    t.step("A simulated AMD SEV-SNP root (dev only: it stands in for AMD's, so no SNP hardware is needed)");
    let amd = tokio::task::spawn_blocking(SimulatedAmd::generate)
        .await
        .context("key generation task")?
        .context("simulated AMD root")?;
    std::fs::write(files.join("simulated-ark.pem"), amd.ark_pem())?;
    std::fs::write(files.join("simulated-amd.pem"), amd.to_pem()?.as_bytes())?;
    std::fs::write(
        files.join("release-policy.json"),
        json!({"measurements": [hex::encode(MEASUREMENT)]}).to_string(),
    )?;
    t.line("RSA-4096 ARK and ASK, P-384 VCEK, as AMD's; coordinators trust it via attestation.extra_roots");
    t.line(format!(
        "release policy of {USE_CASE}: measurement {}…",
        &hex::encode(MEASUREMENT)[..16]
    ));

    t.step("A stand-in cloud identity issuer (dev only: an OIDC issuer on loopback, trusted as kind aws)");
    let issuer = DevIssuer::start().await.context("demo issuer")?;
    t.line(format!(
        "issuer {}; workload identity {SUBJECT}",
        issuer.url
    ));

    t.step("Two coordinators, each with its own SQLite database and KEKs");
    let listener_a = std::net::TcpListener::bind("127.0.0.1:0")?;
    let listener_b = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url_a = format!("http://{}", listener_a.local_addr()?);
    let url_b = format!("http://{}", listener_b.local_addr()?);
    let config_a = coordinator_config(
        dir.path(),
        "a",
        Role::Type1,
        &url_a,
        &url_b,
        &issuer.url,
        &files,
    )?;
    let config_b = coordinator_config(
        dir.path(),
        "b",
        Role::Type2,
        &url_b,
        &url_a,
        &issuer.url,
        &files,
    )?;
    let b = Server::on_listener(config_b, listener_b)
        .await
        .context("coordinator B")?;
    let a = Server::on_listener(config_a, listener_a)
        .await
        .context("coordinator A")?;
    let (handle_a, handle_b) = (a.handle(), b.handle());
    let state_a = a.state().clone();
    let state_b = b.state().clone();
    let task_b = tokio::spawn(b.run());
    let task_a = tokio::spawn(a.run());
    t.line(format!("coordinator A (Type-1) {url_a}"));
    t.line(format!("coordinator B (Type-2) {url_b}"));

    t.step("A generates HPKE keys, keeps split A, hands split B (HPKE-sealed) to B");
    let ids = published_keys(&http, &url_a).await?;
    t.line(format!(
        "published after B's signed acknowledgement: {}",
        ids.join(", ")
    ));
    let received = state_b
        .audit_log
        .events(0, 1000)
        .await?
        .into_iter()
        .find(|e| e.kind == "key.received")
        .context("B recorded no handover")?;
    t.line(format!(
        "B admitted A's key generator (simulated SEV-SNP, dev only) with measurement {}",
        received.body["details"]["keyGenerator"]["measurement"]
            .as_str()
            .unwrap_or("(none)")
    ));

    t.step(&format!(
        "Onboarding ad tech `{ADTECH}` at both coordinators (admin API, bootstrap tokens)"
    ));
    for (name, base, data) in [
        ("A", &url_a, dir.path().join("a")),
        ("B", &url_b, dir.path().join("b")),
    ] {
        let token = std::fs::read_to_string(data.join("admin-token"))
            .with_context(|| format!("coordinator {name}'s bootstrap token"))?;
        admin(
            &http,
            base,
            &token,
            "/v1/admin/adtechs",
            json!({"id": ADTECH, "name": "Demo Ad Tech", "useCases": [USE_CASE]}),
        )
        .await?;
        let mapping = admin(
            &http,
            base,
            &token,
            &format!("/v1/admin/adtechs/{ADTECH}/identities"),
            json!({"cloud": "aws", "issuer": issuer.url, "subject": SUBJECT,
                   "scopes": ["keys:read", "keys:release"]}),
        )
        .await?;
        t.line(format!(
            "coordinator {name}: {ADTECH} may use {USE_CASE}; identity {}",
            mapping["id"].as_str().unwrap_or("?")
        ));
    }

    t.step("The workload fetches from both coordinators (the `workload` crate)");
    let token_file = files.join("workload-token");
    std::fs::write(&token_file, issuer.token(SUBJECT, AUDIENCE)?.as_bytes())?;
    let workload_toml = format!(
        r#"profile = "dev"
use_case = "{USE_CASE}"
cloud = "aws"
[coordinators.type1]
url = "{url_a}"
audience = "{AUDIENCE}"
[coordinators.type2]
url = "{url_b}"
audience = "{AUDIENCE}"
[token]
source = "file"
path = "{token}"
[evidence]
source = "simulated"
ca_file = "{ca}"
measurement = "{measurement}"
"#,
        token = token_file.display(),
        ca = files.join("simulated-amd.pem").display(),
        measurement = hex::encode(MEASUREMENT),
    );
    let config = workload::Config::from_toml_str(&workload_toml)?;
    let keys = workload::fetch_once(&config).await?;
    t.line("per coordinator: token exchange (RFC 8693), challenge nonce, SNP report with");
    t.line("report_data = SHA-512(nonce ‖ TEE key), release sealed to the TEE key");
    t.line(format!(
        "recombined {} keys from split A ⊕ split B; each matches its public key and both signatures",
        keys.len()
    ));

    t.step("A report encrypted to the published public key, decrypted in the workload");
    let Some(key) = keys.keys().next() else {
        bail!("the workload holds no key");
    };
    let public = keys::PublicKeyset::from_tink_json(key.public_keyset_json())?;
    let plaintext = b"{\"conversion\": \"purchase\", \"value\": 42}";
    let context_info = b"keyferry demo";
    let ciphertext = public.encrypt(plaintext, context_info)?;
    let opened = keys.decrypt(key.id(), &ciphertext, context_info)?;
    if opened.as_slice() != plaintext {
        bail!("the decrypted payload differs from what was encrypted");
    }
    t.line(format!(
        "key {}: {} bytes of ciphertext",
        key.id(),
        ciphertext.len()
    ));
    t.line(format!("decrypted: {}", String::from_utf8_lossy(&opened)));

    t.step("What the audit logs recorded");
    for (name, state) in [("A", &state_a), ("B", &state_b)] {
        let size = state.store.audit_size().await?;
        let entries = state.store.audit_entries(0, size).await?;
        let mut kinds: Vec<String> = entries
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(&e.entry).ok())
            .filter_map(|e| e["kind"].as_str().map(str::to_owned))
            .collect();
        kinds.dedup();
        t.line(format!(
            "coordinator {name}: {size} entries: {}",
            kinds.join(", ")
        ));
    }

    handle_a.graceful_shutdown(Some(Duration::from_secs(2)));
    handle_b.graceful_shutdown(Some(Duration::from_secs(2)));
    let _ = task_a.await;
    let _ = task_b.await;
    let _ = writeln!(t.out, "\ndemo complete");
    Ok(())
}
