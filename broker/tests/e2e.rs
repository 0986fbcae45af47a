//! The whole mission, end to end (issue: key distribution and attested
//! release): a Type-1 coordinator on PostgreSQL and a Type-2 on SQLite on
//! loopback, three workload identity issuers (the npm `oauth2-mock-server`,
//! one per cloud kind), AWS KMS and STS in moto, the Cloud KMS and Key Vault
//! test doubles, and simulated SNP evidence. For each of AWS, GCP and Azure
//! a workload (the real `workload` crate, configured as a workload is)
//! fetches from both coordinators, recombines, and decrypts a payload that
//! Google Tink (PyPI `tink`) encrypted with the published public keyset.
//! AWS and Azure use `unwrap = "cloud-kms"`, GCP `unwrap = "broker"`.
//!
//! Then: with the Type-2 down, a fresh fetch fails naming it and holds no
//! key, while the cached key set keeps decrypting. Finally, no subject
//! token and no private key appears in anything the brokers and the
//! workload logged.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use attestation::simulated::SimulatedAmd;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::azure::test_double::{AzureDouble, EntraTrust};
use cloud_adapters::gcp::test_double::KmsDouble;
use keyferry::config::{
    CloudConfig, Config, IssuerEntry, IssuerKind, Role, StaticCredentials, UnwrapMode,
};
use keyferry::server::Server;
use keyferry::testing::TestDb;
use serde_json::{Value, json};
use test_support::{Moto, NodeIdp};

const USE_CASE: &str = "aggregation-service";
const AUDIENCE: &str = "keyferry-e2e";
const ADTECH: &str = "adtech-e2e";
const MEASUREMENT: [u8; 48] = [0x5e; 48];
const REGION: &str = "eu-west-3";

/// Everything the brokers and the workload log, for the secrets check.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn install() -> CapturedLogs {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,keyferry=debug,workload=debug,cloud_adapters=debug,idp=debug,attestation=debug",
            ))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("one subscriber per test binary");
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

fn python(moto: &Moto) -> PathBuf {
    moto.venv.join("bin/python")
}

/// Google Tink encrypts `plaintext` to the Tink JSON public keyset.
fn tink_encrypt(
    moto: &Moto,
    public_keyset_json: &str,
    plaintext: &[u8],
    context: &[u8],
) -> Vec<u8> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/tools/tink_interop.py"
    );
    let request = json!({
        "publicKeysetJson": public_keyset_json,
        "encrypt": [{"plaintext": B64.encode(plaintext), "contextInfo": B64.encode(context)}],
    });
    let mut child = std::process::Command::new(python(moto))
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tink");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("tink output");
    assert!(
        out.status.success(),
        "tink: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("tink JSON");
    B64.decode(result["encrypted"][0].as_str().expect("ciphertext"))
        .expect("base64")
}

/// The cloud KMSs: one moto, one Cloud KMS double, one Key Vault double,
/// each holding one key per coordinator.
struct Kms {
    moto: Moto,
    gcp: KmsDouble,
    azure: AzureDouble,
    azure_ca: PathBuf,
    aws_keys: [String; 2],
    gcp_keys: [String; 2],
    azure_keys: [String; 2],
    azure_token: String,
}

const GCP_KEYS: [&str; 2] = [
    "projects/e2e/locations/global/keyRings/splits/cryptoKeys/coordinator-a",
    "projects/e2e/locations/global/keyRings/splits/cryptoKeys/coordinator-b",
];

async fn kms(dir: &Path) -> Option<Kms> {
    let moto = Moto::start()?;
    let aws_keys = [
        moto.create_key_with_boto3(REGION),
        moto.create_key_with_boto3(REGION),
    ];
    let gcp = KmsDouble::start().await.expect("gcp double");
    for (key, principal) in GCP_KEYS.iter().zip(["coordinator-a", "coordinator-b"]) {
        gcp.create_key(key);
        gcp.grant(key, principal);
        gcp.grant(key, "workload");
    }
    gcp.issue_token("tok-a", "coordinator-a");
    gcp.issue_token("tok-b", "coordinator-b");
    let azure = AzureDouble::start().await.expect("azure double");
    let azure_ca = dir.join("azure-ca.pem");
    std::fs::write(&azure_ca, azure.ca_certificate_pem()).expect("write CA");
    let azure_keys = ["splits-a", "splits-b"].map(|name| {
        let version = azure.create_key(name);
        format!("azure-kv://{}/keys/{name}/{version}", azure.vault_host())
    });
    let azure_token = azure.issue_static_token();
    Some(Kms {
        moto,
        gcp,
        azure,
        azure_ca,
        aws_keys: aws_keys.map(|arn| format!("aws-kms://{arn}")),
        gcp_keys: GCP_KEYS.map(|k| format!("gcp-kms://{k}")),
        azure_keys,
        azure_token,
    })
}

/// The three workload identity issuers, one per cloud kind.
struct Issuers {
    aws: NodeIdp,
    gcp: NodeIdp,
    azure: NodeIdp,
}

const SUBJECTS: [(&str, &str); 3] = [
    ("aws", "arn:aws:iam::444455556666:role/e2e-workload"),
    ("gcp", "123456789012345678901"),
    ("azure", "5f1e8c2a-9b7d-4e3f-a1c6-2d8b0e4f7a93"),
];

#[allow(clippy::too_many_arguments)] // one coordinator's whole setting
fn coordinator_config(
    name: &str,
    role: Role,
    url: &str,
    peer: &str,
    data: &Path,
    files: &Path,
    kms: &Kms,
    issuers: &Issuers,
    storage_url: Option<String>,
) -> Config {
    let index = usize::from(role == Role::Type2);
    let mut config = Config::dev_default();
    config.data_dir = data.join(name);
    config.storage.url = storage_url;
    config.server.listen = url.trim_start_matches("http://").parse().expect("addr");
    config.server.public_url = Some(url.parse().expect("url"));
    config.coordinator.name = name.into();
    config.coordinator.role = role;
    match role {
        Role::Type1 => config.coordinator.peer_url = Some(peer.into()),
        Role::Type2 => {
            config.coordinator.peer_url = None;
            config.coordinator.peer_issuer = Some(peer.parse().expect("url"));
        }
    }
    config.keys.active_keys = 2;
    config.use_cases[0].release_policy = Some(files.join("policy.json"));
    config.attestation.extra_roots = vec![files.join("simulated-ark.pem")];
    // A's key generator attests with the same simulated AMD B trusts.
    config.coordinator.key_generator_ca = Some(files.join("simulated-amd.pem"));

    // AWS: federated with the broker's own token (STS in moto), cloud-kms.
    let mut aws = CloudConfig::with_kek(kms.aws_keys[index].clone());
    aws.endpoint = Some(kms.moto.endpoint.parse().expect("url"));
    aws.sts_endpoint = Some(kms.moto.endpoint.clone());
    aws.role_arn = Some(format!("arn:aws:iam::123456789012:role/keyferry-{name}"));
    config.clouds.aws = Some(aws);
    // GCP: a static token (dev), broker mode.
    let mut gcp = CloudConfig::with_kek(kms.gcp_keys[index].clone());
    gcp.endpoint = Some(kms.gcp.endpoint().parse().expect("url"));
    gcp.unwrap = UnwrapMode::Broker;
    gcp.static_credentials = Some(StaticCredentials {
        access_token: Some(if index == 0 { "tok-a" } else { "tok-b" }.into()),
        ..Default::default()
    });
    config.clouds.gcp = Some(gcp);
    // Azure: coordinator A federates (client assertion signed by its own
    // issuer, which the Entra double checks against A's JWKS); B has a
    // static token. cloud-kms.
    let mut azure = CloudConfig::with_kek(kms.azure_keys[index].clone());
    azure.ca_file = Some(kms.azure_ca.clone());
    if role == Role::Type1 {
        azure.tenant_id = Some("e2e-tenant".into());
        azure.client_id = Some("coordinator-a-app".into());
        azure.authority_host = Some(kms.azure.authority_host().to_owned());
    } else {
        azure.static_credentials = Some(StaticCredentials {
            access_token: Some(kms.azure_token.clone()),
            ..Default::default()
        });
    }
    config.clouds.azure = Some(azure);

    config.issuers = [
        ("aws", IssuerKind::Aws, &issuers.aws),
        ("gcp", IssuerKind::Gcp, &issuers.gcp),
        ("azure", IssuerKind::Azure, &issuers.azure),
    ]
    .into_iter()
    .map(|(name, kind, idp)| IssuerEntry {
        name: format!("e2e-{name}"),
        kind,
        issuer: idp.issuer.parse().expect("url"),
        audience: AUDIENCE.into(),
        algorithms: None,
        max_token_lifetime: None,
        jwks_uri: None,
        accept_as_bearer: false,
    })
    .collect();
    config
}

async fn admin(client: &reqwest::Client, base: &str, token: &str, path: &str, body: Value) {
    let response = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("admin call");
    let status = response.status();
    assert!(
        status.is_success(),
        "{path}: {status}: {}",
        response.text().await.unwrap_or_default()
    );
}

async fn wait_for_published_keys(base: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body: Value = reqwest::get(format!("{base}/v1alpha/publicKeys"))
            .await
            .expect("public keys")
            .json()
            .await
            .unwrap_or(Value::Null);
        let ids: Vec<String> = body["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["id"].as_str().map(str::to_owned))
            .collect();
        if ids.len() >= 2 {
            return ids;
        }
        assert!(Instant::now() < deadline, "no keys published: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A workload's `keyferry workload fetch --config` file.
fn workload_toml(
    cloud: &str,
    urls: (&str, &str),
    token_file: &Path,
    files: &Path,
    kms: &Kms,
) -> String {
    let kms_section = match cloud {
        "aws" => format!(
            "[kms]\nendpoint = \"{}\"\n[kms.credentials]\nkind = \"aws-static\"\naccess_key_id = \"testing\"\nsecret_access_key = \"testing\"\n",
            kms.moto.endpoint
        ),
        "azure" => format!(
            "[kms.credentials]\nkind = \"azure-static\"\naccess_token = \"{}\"\nca_file = \"{}\"\n",
            kms.azure_token,
            kms.azure_ca.display()
        ),
        _ => String::new(),
    };
    let text = format!(
        r#"profile = "dev"
use_case = "{USE_CASE}"
cloud = "{cloud}"
request_timeout = "20s"
[coordinators.type1]
url = "{a}"
audience = "{AUDIENCE}"
[coordinators.type2]
url = "{b}"
audience = "{AUDIENCE}"
[token]
source = "file"
path = "{token}"
[evidence]
source = "simulated"
ca_file = "{ca}"
measurement = "{measurement}"
{kms_section}"#,
        a = urls.0,
        b = urls.1,
        token = token_file.display(),
        ca = files.join("simulated-amd.pem").display(),
        measurement = hex::encode(MEASUREMENT),
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_in_three_clouds_recombine_and_decrypt_what_tink_encrypted() {
    let logs = CapturedLogs::install();
    test_support::install_crypto_provider();
    let dir = tempfile::tempdir().expect("dir");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).expect("files dir");

    let Some(kms) = kms(dir.path()).await else {
        return;
    };
    let (Some(aws_idp), Some(gcp_idp), Some(azure_idp)) = (
        NodeIdp::start().await,
        NodeIdp::start().await,
        NodeIdp::start().await,
    ) else {
        return;
    };
    let mut issuers = Issuers {
        aws: aws_idp,
        gcp: gcp_idp,
        azure: azure_idp,
    };
    let Some(pg) = TestDb::postgres().await else {
        return;
    };

    let amd = SimulatedAmd::shared().expect("simulated AMD");
    std::fs::write(files.join("simulated-ark.pem"), amd.ark_pem()).expect("ark");
    std::fs::write(
        files.join("simulated-amd.pem"),
        amd.to_pem().expect("pem").as_bytes(),
    )
    .expect("ca");
    std::fs::write(
        files.join("policy.json"),
        json!({"measurements": [hex::encode(MEASUREMENT)]}).to_string(),
    )
    .expect("policy");

    // Two coordinators that know each other's URL before either starts.
    let listener_a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listener_b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url_a = format!("http://{}", listener_a.local_addr().expect("addr"));
    let url_b = format!("http://{}", listener_b.local_addr().expect("addr"));
    let config_b = coordinator_config(
        "b",
        Role::Type2,
        &url_b,
        &url_a,
        dir.path(),
        &files,
        &kms,
        &issuers,
        None,
    );
    let config_a = coordinator_config(
        "a",
        Role::Type1,
        &url_a,
        &url_b,
        dir.path(),
        &files,
        &kms,
        &issuers,
        Some(pg.url.clone()),
    );
    let b = Server::on_listener(config_b, listener_b)
        .await
        .expect("coordinator B");
    let a = Server::on_listener(config_a, listener_a)
        .await
        .expect("coordinator A");
    // The Entra double trusts coordinator A's issuer for its app.
    kms.azure
        .trust_federation(EntraTrust {
            tenant_id: "e2e-tenant".into(),
            client_id: "coordinator-a-app".into(),
            issuer: url_a.clone(),
            subject: "coordinator:a".into(),
            audience: "api://AzureADTokenExchange".into(),
            jwks: a.state().issuer.current().jwks_document(SystemTime::now()),
        })
        .expect("trust");
    let (handle_a, handle_b) = (a.handle(), b.handle());
    let state_a = a.state().clone();
    let state_b = b.state().clone();
    tokio::spawn(a.run());
    let task_b = tokio::spawn(b.run());

    let published = wait_for_published_keys(&url_a).await;
    // Coordinator A reached Key Vault through Entra with its own token.
    assert!(
        kms.azure.stats().tokens_issued >= 1,
        "no federated Entra token was issued"
    );

    // Onboard the ad tech at both coordinators, one identity per cloud.
    let client = reqwest::Client::new();
    for (base, name) in [(&url_a, "a"), (&url_b, "b")] {
        let token =
            std::fs::read_to_string(dir.path().join(name).join("admin-token")).expect("token");
        admin(
            &client,
            base,
            &token,
            "/v1/admin/adtechs",
            json!({"id": ADTECH, "name": "E2E Ad Tech", "useCases": [USE_CASE]}),
        )
        .await;
        for ((cloud, subject), idp) in
            SUBJECTS
                .iter()
                .zip([&issuers.aws, &issuers.gcp, &issuers.azure])
        {
            admin(
                &client,
                base,
                &token,
                &format!("/v1/admin/adtechs/{ADTECH}/identities"),
                json!({"cloud": cloud, "issuer": idp.issuer, "subject": subject,
                       "scopes": ["keys:read", "keys:release"]}),
            )
            .await;
        }
    }

    let mut subject_tokens = Vec::new();
    let mut private_keysets = Vec::new();
    let mut cached = None;
    for (cloud, subject) in SUBJECTS {
        let idp = match cloud {
            "aws" => &mut issuers.aws,
            "gcp" => &mut issuers.gcp,
            _ => &mut issuers.azure,
        };
        let token = idp.token(json!({"sub": subject, "aud": AUDIENCE})).await;
        let token_file = files.join(format!("{cloud}-token"));
        std::fs::write(&token_file, &token).expect("token file");
        subject_tokens.push(token);
        let toml = workload_toml(cloud, (&url_a, &url_b), &token_file, &files, &kms);
        let config = workload::Config::from_toml_str(&toml).expect("workload config");
        let keys = workload::fetch_once(&config)
            .await
            .unwrap_or_else(|e| panic!("{cloud}: fetch failed: {e}"));
        let mut ids = keys.key_ids();
        ids.sort();
        let mut expected = published.clone();
        expected.sort();
        assert_eq!(
            ids, expected,
            "{cloud}: the workload holds exactly the published keys"
        );

        for key in keys.keys() {
            let plaintext = format!("{cloud} report for {}", key.id()).into_bytes();
            let ciphertext = tink_encrypt(
                &kms.moto,
                key.public_keyset_json(),
                &plaintext,
                b"e2e context",
            );
            let opened = keys
                .decrypt(key.id(), &ciphertext, b"e2e context")
                .unwrap_or_else(|e| panic!("{cloud}: decrypt {}: {e}", key.id()));
            assert_eq!(opened.as_slice(), plaintext.as_slice());
        }
        let export = files.join(format!("export-{cloud}"));
        for path in workload::export_keyset(&keys, &export, workload::Profile::Dev).expect("export")
        {
            if path.to_string_lossy().ends_with(".bin") {
                private_keysets.push(std::fs::read(path).expect("keyset"));
            }
        }
        if cloud == "aws" {
            cached = Some((config, keys));
        }
        if cloud == "gcp" {
            // The same through the binary, as a workload runs it.
            let path = files.join("workload-gcp.toml");
            std::fs::write(&path, &toml).expect("config file");
            let export = files.join("cli-export");
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keyferry"));
            cmd.args(["workload", "fetch", "--config"])
                .arg(&path)
                .arg("--export-keyset")
                .arg(&export);
            let out = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
                .await
                .expect("join");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let summary: Value = serde_json::from_slice(&out.stdout).expect("summary JSON");
            assert_eq!(summary["count"], json!(published.len()), "{summary}");
            assert_eq!(
                summary["exported"].as_array().map(Vec::len),
                Some(2 * published.len()),
                "{summary}"
            );
        }
    }

    // What each coordinator audited: a release per cloud, with the claims.
    for state in [&state_a, &state_b] {
        let size = state.store.audit_size().await.expect("size");
        let released: Vec<Value> = state
            .store
            .audit_entries(0, size)
            .await
            .expect("entries")
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(&e.entry).ok())
            .filter(|e| e["kind"] == "keys.released")
            .collect();
        let clouds: Vec<&str> = released
            .iter()
            .filter_map(|e| e["details"]["cloud"].as_str())
            .collect();
        // The GCP workload fetched twice: through the library and the CLI.
        assert_eq!(clouds, ["aws", "gcp", "gcp", "azure"]);
        assert_eq!(
            released[0]["details"]["claims"]["measurement"],
            hex::encode(MEASUREMENT)
        );
        assert_eq!(released[1]["details"]["unwrap"], "broker");
        assert_eq!(released[3]["details"]["unwrap"], "cloud-kms");
    }

    // The Type-2 goes down: a fresh fetch fails naming it and yields no
    // key; the key set fetched before keeps decrypting until its TTL.
    let (config, keys) = cached.expect("aws keys");
    handle_b.shutdown();
    let _ = task_b.await;
    let error = workload::fetch_once(&config)
        .await
        .expect_err("type2 is down");
    assert_eq!(error.coordinator(), Some(workload::Role::Type2), "{error}");
    assert!(error.to_string().contains(&url_b), "{error}");
    let key = keys.keys().next().expect("a key");
    let ciphertext = tink_encrypt(&kms.moto, key.public_keyset_json(), b"still here", b"");
    assert_eq!(
        keys.decrypt(key.id(), &ciphertext, b"")
            .expect("cached")
            .as_slice(),
        b"still here"
    );
    handle_a.shutdown();

    // Nothing secret in any log line the brokers or the workload wrote.
    let text = logs.text();
    if let Some(path) = std::env::var_os("E2E_LOG_FILE") {
        std::fs::write(path, &text).expect("write logs");
    }
    // The capture works: the brokers' request lines are in it.
    assert!(
        text.contains("/v1/encryptionKeys:release"),
        "logs were not captured"
    );
    for token in &subject_tokens {
        assert!(!text.contains(token.as_str()), "a subject token was logged");
    }
    for keyset in &private_keysets {
        for form in [B64.encode(keyset), hex::encode(keyset)] {
            assert!(!text.contains(&form), "a private keyset was logged");
        }
    }
    assert!(!text.contains(&kms.azure_token), "a vault token was logged");
    drop(pg);
}
