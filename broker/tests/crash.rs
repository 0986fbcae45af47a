//! Crash consistency: `keyferry serve` (dev profile: SQLite, the embedded
//! Type-2, the lifecycle and audit tasks, the production start path)
//! killed with SIGKILL at random points while it generates keys, hands
//! them over, rotates, onboards ad techs, answers attested releases (a
//! workload of the npm test IdP, the simulated TEE, `broker` unwrap mode)
//! and records it all, 50 times on one data directory.
//!
//! After each kill the data directory is opened as the next start opens it
//! and checked: every change the broker answered is there with its audit
//! entry, and every release it answered has its entry; every active key has
//! split A at the Type-1 and split B at the Type-2; the log verifies with
//! one order and no gap. At the end, the
//! splits of every key are recombined from the stores and searched for in
//! every file under the data directory, database journals included: no
//! plaintext split or private key is on disk.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::{KeyWrapper, LocalKek};
use common::process::serve_with_config;
use common::tee::SimulatedTee;
use keyferry::audit::{Audit as _, AuditEntry, TransparencyLog};
use keyferry::config::{CloudConfig, Config, IssuerKind, UnwrapMode};
use keyferry::storage::Store;
use keys::RecipientKey;
use rand::Rng;
use serde_json::{Value, json};
use test_support::NodeIdp;

const KILLS: usize = 50;
const AUDIENCE: &str = "keyferry-crash";
const SUBJECT: &str = "112233445566778899001";
/// Both coordinators' storage KEK, and the GCP workloads' KEK.
const STORAGE_KEK: &str = "local-kek://storage";
const GCP_KEK: &str = "local-kek://gcp-splits";

/// Every run's configuration: the dev profile's defaults, with the
/// simulated AMD's root trusted and a release policy admitting the
/// simulated TEE, GCP splits unwrapped by the broker, and the test IdP
/// trusted for GCP workloads.
fn config_file(dir: &Path, tee: &SimulatedTee, idp: &NodeIdp) -> std::path::PathBuf {
    let mut config = Config::dev_default();
    tee.configure(&mut config);
    let mut gcp = CloudConfig::with_kek(GCP_KEK);
    gcp.unwrap = UnwrapMode::Broker;
    config.clouds.gcp = Some(gcp);
    config.issuers.push(common::issuer(
        "workload-idp",
        IssuerKind::Gcp,
        &idp.issuer,
        AUDIENCE,
    ));
    let path = dir.join("keyferry.toml");
    std::fs::write(&path, toml::to_string(&config).expect("TOML")).expect("write config");
    path
}

async fn open_store(db: &Path) -> Store {
    Store::connect(&format!("sqlite://{}", db.display()), 1)
        .await
        .expect("open the SQLite file")
}

async fn storage_kek(data: &Path) -> Arc<dyn KeyWrapper> {
    Arc::new(
        LocalKek::open_or_create(&data.join("keks"), "storage")
            .await
            .expect("local KEK"),
    )
}

/// What the clients saw answered while the broker ran.
#[derive(Default)]
struct Acknowledged {
    adtechs: BTreeSet<String>,
    /// Attested releases answered 200.
    releases: usize,
}

/// Fires onboarding and rotation requests at `base` until the broker dies;
/// records what it answered with success.
async fn drive(base: String, token: String, round: usize, seen: Arc<Mutex<Acknowledged>>) {
    let client = reqwest::Client::new();
    for n in 0.. {
        let id = format!("a-{round}-{n}");
        let created = client
            .post(format!("{base}/v1/admin/adtechs"))
            .bearer_auth(&token)
            .json(
                &json!({"id": id, "name": id, "sites": [format!("https://{id}.example")],
                          "useCases": ["aggregation-service"]}),
            )
            .send()
            .await;
        let Ok(created) = created else { return };
        if created.status() == 201 {
            seen.lock().expect("lock").adtechs.insert(id);
        }
        if n % 3 == 0 {
            let rotated = client
                .post(format!("{base}/v1/admin/keys/rotate"))
                .bearer_auth(&token)
                .json(&json!({}))
                .send()
                .await;
            if rotated.is_err() {
                return;
            }
        }
    }
}

/// A workload's releases at `base` until the broker dies: once its ad tech
/// and identity mapping exist (each run makes sure), one token exchange,
/// then challenge and release in turn; records every release answered 200.
async fn workload(
    base: String,
    token: String,
    (issuer, subject_token): (String, String),
    tee: Arc<SimulatedTee>,
    seen: Arc<Mutex<Acknowledged>>,
) {
    let client = reqwest::Client::new();
    let admin = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    for (path, body) in [
        (
            "/v1/admin/adtechs",
            json!({"id": "acme", "name": "Acme", "sites": ["https://acme.example"], "useCases": ["aggregation-service"]}),
        ),
        (
            "/v1/admin/adtechs/acme/identities",
            json!({"cloud": "gcp", "issuer": issuer, "subject": SUBJECT, "conditions": []}),
        ),
    ] {
        match admin(path, body).await {
            Ok(r) if r.status() == 201 || r.status() == 409 => {}
            _ => return,
        }
    }
    let exchanged = client
        .post(format!("{base}/v1/token"))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject_token.as_str()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ])
        .send()
        .await;
    let Ok(exchanged) = exchanged else { return };
    assert_eq!(exchanged.status(), 200, "the exchange of a mapped workload");
    let Ok(body) = exchanged.json::<Value>().await else {
        return;
    };
    let credential = body["access_token"]
        .as_str()
        .expect("credential")
        .to_owned();
    let tee_key = RecipientKey::generate();
    loop {
        let Ok(listed) = client
            .get(format!(
                "{base}/.well-known/aggregation-service/v1/public-keys"
            ))
            .send()
            .await
        else {
            return;
        };
        let Ok(listed) = listed.json::<Value>().await else {
            return;
        };
        let Some(key_id) = listed["keys"][0]["id"].as_str().map(str::to_owned) else {
            // Nothing handed over yet in this run.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(challenge) = client
            .post(format!("{base}/v1/attestation/challenge"))
            .bearer_auth(&credential)
            .send()
            .await
        else {
            return;
        };
        let Ok(challenge) = challenge.json::<Value>().await else {
            return;
        };
        let nonce = B64
            .decode(challenge["nonce"].as_str().expect("nonce"))
            .expect("b64");
        let released = client
            .post(format!("{base}/v1/encryptionKeys:release"))
            .bearer_auth(&credential)
            .json(&json!({
                "nonce": B64.encode(&nonce),
                "teePublicKey": B64.encode(tee_key.public_key()),
                "evidence": tee.evidence(&nonce, &tee_key.public_key(), |_| {}),
                "keyIds": [key_id],
            }))
            .send()
            .await;
        let Ok(released) = released else { return };
        let status = released.status();
        let Ok(body) = released.json::<Value>().await else {
            return;
        };
        assert_eq!(status, 200, "a release of a published key: {body}");
        seen.lock().expect("lock").releases += 1;
    }
}

/// Opens the stores as the next start does and checks every invariant.
async fn assert_consistent(data: &Path, seen: &Acknowledged, after: usize) {
    let type1 = open_store(&data.join("keyferry.db")).await;
    let type2 = open_store(&data.join("peer/keyferry.db")).await;

    // The log, as the next start's writer opens it: committed entries
    // waiting in the outbox move into the tree, once.
    let clock: Arc<dyn idp::Clock> = Arc::new(idp::SystemClock);
    let log = TransparencyLog::open(type1.clone(), storage_kek(data).await, clock)
        .await
        .expect("the log opens after a kill");
    log.flush().await.expect("flush");
    let sth = log.sth().await.expect("sth");
    let entries = common::assert_log_verifies(&type1, sth).await;

    // Every answered change is there, with its entry.
    let created: BTreeSet<String> = entries
        .iter()
        .map(|e| AuditEntry::parse(&e.entry).expect("entry"))
        .map(|e| serde_json::to_value(e).expect("JSON"))
        .filter(|e| e["kind"] == "adtech.created")
        .filter_map(|e| e["details"]["id"].as_str().map(str::to_owned))
        .collect();
    for id in &seen.adtechs {
        assert!(type1.adtech(id).await.is_ok(), "kill {after}: {id} lost");
        assert!(created.contains(id), "kill {after}: {id} has no entry");
    }
    // Every answered release is audited (its entry is durable before the
    // answer); a release cut off before its answer may be audited too.
    let released = entries
        .iter()
        .map(|e| AuditEntry::parse(&e.entry).expect("entry"))
        .filter(|e| e.kind.as_str() == "keys.released")
        .count();
    assert!(
        released >= seen.releases,
        "kill {after}: {} releases answered, {released} audited",
        seen.releases
    );
    // ... and nothing has an entry that is not there.
    for id in &created {
        assert!(
            type1.adtech(id).await.is_ok(),
            "kill {after}: {id} audited, not stored"
        );
    }

    // No active key without both splits, each under every KEK once.
    for key in type1.keys(None).await.expect("keys") {
        if key.status == "active" {
            for (store, split) in [(&type1, "A"), (&type2, "B")] {
                let mut keks: Vec<String> = store
                    .splits(&key.id)
                    .await
                    .expect("splits")
                    .into_iter()
                    .map(|s| s.kek_uri)
                    .collect();
                keks.sort();
                assert_eq!(
                    keks,
                    [GCP_KEK, STORAGE_KEK],
                    "kill {after}: {} is active without split {split} under each KEK once",
                    key.id
                );
            }
        }
    }
    type1.close().await;
    type2.close().await;
}

/// Every split and recombined keyset of every key both stores hold, and
/// one wrapped split as it is stored (which the search must find).
async fn secrets(data: &Path) -> (Vec<Vec<u8>>, Vec<u8>) {
    let type1 = open_store(&data.join("keyferry.db")).await;
    let type2 = open_store(&data.join("peer/keyferry.db")).await;
    let (kek1, kek2) = (
        storage_kek(data).await,
        storage_kek(&data.join("peer")).await,
    );
    let mut secrets = Vec::new();
    let mut stored = Vec::new();
    for key in type1.keys(None).await.expect("keys") {
        let under_storage_kek = |splits: Vec<keyferry::storage::StoredSplit>| {
            splits.into_iter().find(|s| s.kek_uri == STORAGE_KEK)
        };
        let a = under_storage_kek(type1.splits(&key.id).await.expect("splits"));
        let b = under_storage_kek(type2.splits(&key.id).await.expect("splits"));
        let (Some(a), Some(b)) = (a, b) else {
            continue;
        };
        stored.clone_from(&a.ciphertext);
        let a = kek1.unwrap(&a.ciphertext).await.expect("unwrap A");
        let b = kek2.unwrap(&b.ciphertext).await.expect("unwrap B");
        let keyset = keys::recombine(&a, &b).expect("recombine");
        secrets.extend([a.to_vec(), b.to_vec(), keyset.to_vec()]);
    }
    type1.close().await;
    type2.close().await;
    (secrets, stored)
}

/// Which of `needles` (each at least 16 bytes) occur in `bytes`.
fn found_in(bytes: &[u8], needles: &[&[u8]]) -> BTreeSet<usize> {
    // Each needle indexed by its first bytes, so the haystack is read once.
    const PREFIX: usize = 16;
    let mut by_prefix: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, needle) in needles.iter().enumerate() {
        assert!(needle.len() >= PREFIX);
        by_prefix.entry(&needle[..PREFIX]).or_default().push(i);
    }
    let mut found = BTreeSet::new();
    for (at, window) in bytes.windows(PREFIX).enumerate() {
        for &i in by_prefix.get(window).into_iter().flatten() {
            if bytes[at..].starts_with(needles[i]) {
                found.insert(i);
            }
        }
    }
    found
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_fifty_times_mid_work_the_state_stays_consistent_and_no_secret_is_on_disk() {
    let Some(mut idp) = NodeIdp::start().await else {
        return;
    };
    let subject_token = idp
        .token(common::gcp_workload_claims(SUBJECT, AUDIENCE))
        .await;
    let tee = Arc::new(SimulatedTee::new());
    let dir = tempfile::tempdir().expect("dir");
    let config = config_file(dir.path(), &tee, &idp);
    let data = dir.path().join("data");
    let seen = Arc::new(Mutex::new(Acknowledged::default()));
    let mut total = Acknowledged::default();
    let mut rng = rand::thread_rng();
    for round in 0..KILLS {
        let (mut child, base) = serve_with_config(&data, dir.path(), Some(&config), &[]);
        let token = std::fs::read_to_string(data.join("admin-token")).expect("token");
        let driver = tokio::spawn(drive(base.clone(), token.clone(), round, seen.clone()));
        let releases = tokio::spawn(workload(
            base,
            token,
            (idp.issuer.clone(), subject_token.clone()),
            tee.clone(),
            seen.clone(),
        ));
        // From the first moments (migrations, the first generation and
        // handover) to the middle of steady work.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..900))).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let _ = driver.await;
        if let Err(e) = releases.await {
            std::panic::resume_unwind(e.into_panic());
        }
        let acknowledged = std::mem::take(&mut *seen.lock().expect("lock"));
        total.adtechs.extend(acknowledged.adtechs);
        total.releases += acknowledged.releases;
        assert_consistent(&data, &total, round).await;
    }
    assert!(
        total.adtechs.len() > KILLS,
        "the kills fell mid-work, not before any"
    );
    assert!(
        total.releases > KILLS / 5,
        "kills fell mid-release too: {} releases",
        total.releases
    );

    let (secrets, stored) = secrets(&data).await;
    assert!(secrets.len() >= 15, "keys were made and handed over");
    // The stored (wrapped) split is the control: the search must see it.
    let mut needles: Vec<&[u8]> = vec![&stored];
    needles.extend(secrets.iter().map(Vec::as_slice));
    let mut files = Vec::new();
    files_under(&data, &mut files);
    let mut control_seen = false;
    for file in files {
        // A journal SQLite removes as the last connection closes may be
        // gone by now; what no longer exists holds nothing.
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", file.display()),
        };
        let found = found_in(&bytes, &needles);
        control_seen |= found.contains(&0);
        assert!(
            found.iter().all(|&i| i == 0),
            "{} holds a plaintext split or key",
            file.display()
        );
    }
    assert!(control_seen, "the search finds what is stored");
}
