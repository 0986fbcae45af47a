//! The audit transparency log as an auditor meets it: the API, the
//! `keyferry audit` commands, an independent RFC 9162 verifier, and a
//! database an attacker edited.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use common::process::keyferry;
use common::{Broker, Serve};
use keyferry::audit::{Audit, AuditEvent, EventKind};
use serde_json::{Value, json};

/// A broker on the production start path with its data in `data`, which
/// outlives it: tests stop it, edit the data and start again.
async fn start(data: &Path) -> Broker {
    Broker::builder()
        .data_dir(data)
        .serve(Serve::Server)
        .start_sqlite()
        .await
}

impl Broker {
    async fn get(&self, path: &str) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.admin_token().trim())
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json")
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.admin_token().trim())
            .json(&body)
            .send()
            .await
            .expect("POST");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    async fn record(&self, n: usize) {
        for i in 0..n {
            let event = AuditEvent::new(EventKind::KeysFetched, "tester", json!({"i": i}));
            self.state.audit.record(0, event).await.expect("append");
        }
    }

    async fn size(&self) -> u64 {
        self.get("/v1/audit/sth").await["treeSize"]
            .as_u64()
            .expect("size")
    }

    /// Runs `keyferry audit ARGS` against this broker.
    async fn audit(&self, args: &[&str]) -> Output {
        let mut cmd = keyferry();
        cmd.arg("audit")
            .args(args)
            .arg("--server")
            .arg(&self.base)
            .arg("--token-file")
            .arg(self.token_file());
        tokio::task::spawn_blocking(move || cmd.output().expect("run"))
            .await
            .expect("join")
    }
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn python(request: &Value, script: &str) -> Option<Value> {
    let out = common::python::run(script, &[], request.to_string().as_bytes())?;
    Some(serde_json::from_str(&out).expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_agree_with_an_independent_rfc9162_verifier() {
    let dir = tempfile::tempdir().expect("dir");
    let broker = start(dir.path()).await;
    broker.record(40).await;
    // The broker appends its own lifecycle events too: pin one head.
    let sth = broker.get("/v1/audit/sth").await;
    let size = sth["treeSize"].as_u64().expect("size");
    let entries: Vec<String> = broker
        .get(&format!("/v1/audit/entries?start=0&end={size}"))
        .await["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["entry"].as_str().expect("entry").to_owned())
        .collect();
    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    for tree_size in [1, 2, 3, 5, 8, 13, 16, 31, size] {
        for index in [0, tree_size / 2, tree_size - 1] {
            let proof = broker
                .get(&format!(
                    "/v1/audit/proofs/inclusion?index={index}&treeSize={tree_size}"
                ))
                .await;
            inclusion.push(json!({"index": index, "treeSize": tree_size, "path": proof["path"]}));
        }
        for first in [1, tree_size / 2, tree_size] {
            if first == 0 {
                continue;
            }
            let proof = broker
                .get(&format!(
                    "/v1/audit/proofs/consistency?first={first}&second={tree_size}"
                ))
                .await;
            consistency.push(json!({"first": first, "second": tree_size, "proof": proof["proof"]}));
        }
    }
    let Some(result) = python(
        &json!({"entries": entries, "inclusion": inclusion, "consistency": consistency}),
        "rfc9162.py",
    ) else {
        return;
    };
    assert_eq!(
        result["roots"][size.to_string()],
        sth["rootHash"],
        "the Python root equals the signed root"
    );
    assert!(
        result["inclusion"]
            .as_array()
            .expect("results")
            .iter()
            .all(|ok| ok == true),
        "{result}"
    );
    assert!(
        result["consistency"]
            .as_array()
            .expect("results")
            .iter()
            .all(|ok| ok == true),
        "{result}"
    );
    assert_eq!(
        result["inclusion"].as_array().map(Vec::len),
        Some(inclusion.len())
    );

    // Out-of-range requests are client errors.
    let client = reqwest::Client::new();
    for path in [
        format!("/v1/audit/proofs/inclusion?index={size}&treeSize={size}"),
        "/v1/audit/proofs/consistency?first=2&second=100000000".to_owned(),
        "/v1/audit/entries?start=0&end=5000".to_owned(),
        "/v1/audit/entries?start=nope".to_owned(),
    ] {
        let r = client
            .get(format!("{}{path}", broker.base))
            .bearer_auth(broker.admin_token().trim())
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 400, "{path}");
    }
    // Heads and consistency proofs are public (hashes and sizes, for the
    // peer's witness and auditors); entries and inclusion proofs are for
    // auditors.
    for (path, status) in [
        ("/v1/audit/sth".to_owned(), 200),
        (
            "/v1/audit/proofs/consistency?first=1&second=2".to_owned(),
            200,
        ),
        ("/v1/audit/entries?start=0&end=1".to_owned(), 401),
        (
            format!("/v1/audit/proofs/inclusion?index=0&treeSize={size}"),
            401,
        ),
    ] {
        let r = client
            .get(format!("{}{path}", broker.base))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), status, "{path}");
    }
    broker.stop().await;
}

/// Starts a broker, writes a small history, verifies it, stops, lets
/// `tamper` edit the database, restarts and returns `audit verify`'s output.
async fn verify_after(tamper: &str) -> Output {
    let dir = tempfile::tempdir().expect("dir");
    let broker = start(dir.path()).await;
    broker
        .post("/v1/admin/adtechs", json!({"id": "acme", "name": "Acme"}))
        .await;
    broker.record(8).await;
    stdout(&broker.audit(&["verify"]).await);
    broker.stop().await;

    let url = format!("sqlite://{}/keyferry.db", dir.path().display());
    let store = keyferry::storage::Store::connect(&url, 1)
        .await
        .expect("db");
    keyferry::testing::execute(&store, tamper).await;
    store.close().await;

    let broker = start(dir.path()).await;
    let out = broker.audit(&["verify"]).await;
    broker.stop().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_deleting_inserting_or_reordering_a_row_is_caught_and_named() {
    for (tamper, named) in [
        (
            "UPDATE audit_log SET entry = replace(entry, '\"time\":', '\"time\":1,\"t\":') WHERE idx = 4",
            "entry 4: was altered",
        ),
        ("DELETE FROM audit_log WHERE idx = 5", "entry 5: is missing"),
        (
            "UPDATE audit_log SET idx = idx + 1000 WHERE idx >= 2; UPDATE audit_log SET idx = idx - 999 WHERE idx >= 1000; \
             INSERT INTO audit_log (idx, entry) SELECT 2, replace(entry, '\"index\":4', '\"index\":2') FROM audit_log WHERE idx = 5",
            "entry 2: was altered",
        ),
        (
            "UPDATE audit_log SET idx = -1 WHERE idx = 1; UPDATE audit_log SET idx = 1 WHERE idx = 2; UPDATE audit_log SET idx = 2 WHERE idx = -1",
            "entry 1: its content says index",
        ),
    ] {
        let out = verify_after(tamper).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{tamper}: {stderr}");
        assert!(
            stderr.contains(named),
            "{tamper}: expected {named:?} in {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_an_older_database_is_caught_by_the_saved_head() {
    let dir = tempfile::tempdir().expect("dir");
    let head = dir.path().join("head.json");
    let data = dir.path().join("data");
    let backup = dir.path().join("backup");
    let broker = start(&data).await;
    broker.record(5).await;
    broker.stop().await;
    copy_dir(&data, &backup);

    let broker = start(&data).await;
    broker.record(5).await;
    let saved = stdout(
        &broker
            .audit(&["verify", "--save-sth", head.to_str().expect("path")])
            .await,
    );
    assert!(saved.starts_with("verified"), "{saved}");
    broker.record(3).await;
    let later = stdout(
        &broker
            .audit(&["verify", "--trusted-sth", head.to_str().expect("path")])
            .await,
    );
    assert!(later.contains("consistent with the saved head"), "{later}");
    broker.stop().await;

    std::fs::remove_dir_all(&data).expect("rm");
    copy_dir(&backup, &data);
    let broker = start(&data).await;
    let out = broker
        .audit(&["verify", "--trusted-sth", head.to_str().expect("path")])
        .await;
    broker.stop().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not consistent with the saved head"),
        "{stderr}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_verifies_offline_and_an_edited_export_does_not() {
    let dir = tempfile::tempdir().expect("dir");
    let broker = start(&dir.path().join("data")).await;
    broker.record(12).await;
    let export = dir.path().join("export.json");
    stdout(
        &broker
            .audit(&["export", "--out", export.to_str().expect("path")])
            .await,
    );
    broker.stop().await;
    let offline = |path: PathBuf| {
        let mut cmd = keyferry();
        cmd.args(["audit", "verify", "--export"]).arg(path);
        cmd.output().expect("run")
    };
    assert!(stdout(&offline(export.clone())).starts_with("verified"));
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&export).expect("read")).expect("json");
    let entry = doc["entries"][7]["entry"]
        .as_str()
        .expect("entry")
        .replace("\"time\":", "\"time\":1,\"t\":");
    doc["entries"][7]["entry"] = json!(entry);
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, doc.to_string()).expect("write");
    let out = offline(edited);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("entry 7: was altered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_history_is_rebuilt_at_any_tree_size() {
    let dir = tempfile::tempdir().expect("dir");
    let broker = start(dir.path()).await;
    // The issuer the identities use.
    broker
        .post(
            "/v1/admin/issuers",
            json!({"name": "eks", "kind": "aws", "issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC", "audience": "sts.amazonaws.com"}),
        )
        .await;
    broker
        .post("/v1/admin/adtechs", json!({"id": "acme", "name": "Acme"}))
        .await;
    let identity = |sa: &str| json!({"cloud": "aws", "issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC", "subject": format!("system:serviceaccount:ads:{sa}")});
    let m1 = broker
        .post("/v1/admin/adtechs/acme/identities", identity("one"))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let after_m1 = broker.size().await;
    let m2 = broker
        .post("/v1/admin/adtechs/acme/identities", identity("two"))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let after_m2 = broker.size().await;
    let response = reqwest::Client::new()
        .delete(format!(
            "{}/v1/admin/adtechs/acme/identities/{m1}",
            broker.base
        ))
        .bearer_auth(broker.admin_token().trim())
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 200);
    let after_removal = broker.size().await;
    let response = reqwest::Client::new()
        .patch(format!("{}/v1/admin/adtechs/acme", broker.base))
        .bearer_auth(broker.admin_token().trim())
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), 200);

    let ids_at = |size: Option<u64>| {
        let broker = &broker;
        async move {
            let mut args = vec!["mappings".to_owned(), "--json".to_owned()];
            if let Some(size) = size {
                args.extend(["--at".to_owned(), size.to_string()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let table: Value =
                serde_json::from_str(&stdout(&broker.audit(&args).await)).expect("json");
            table["mappings"]
                .as_array()
                .expect("mappings")
                .iter()
                .map(|m| {
                    (
                        m["id"].as_str().expect("id").to_owned(),
                        m["adtechEnabled"].as_bool().expect("flag"),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids_at(Some(after_m1)).await, [(m1.clone(), true)]);
    let mut both = ids_at(Some(after_m2)).await;
    both.sort();
    let mut expected = vec![(m1.clone(), true), (m2.clone(), true)];
    expected.sort();
    assert_eq!(both, expected);
    assert_eq!(ids_at(Some(after_removal)).await, [(m2.clone(), true)]);
    assert_eq!(
        ids_at(None).await,
        [(m2.clone(), false)],
        "the ad tech was disabled last"
    );

    let diff: Value = serde_json::from_str(&stdout(
        &broker
            .audit(&[
                "mappings",
                "--json",
                "--diff",
                &after_m1.to_string(),
                &after_removal.to_string(),
            ])
            .await,
    ))
    .expect("json");
    let changes: Vec<(String, String)> = diff["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["change"].as_str().expect("c").to_owned(),
                c["mapping"]["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [("added".to_owned(), m2), ("removed".to_owned(), m1)]
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_appending_to_one_postgres_database_make_one_log() {
    let Some(db) = keyferry::testing::TestDb::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let kek: Arc<dyn cloud_adapters::KeyWrapper> = Arc::new(
        cloud_adapters::LocalKek::open_or_create(dir.path(), "storage")
            .await
            .expect("kek"),
    );
    let clock: Arc<dyn idp::Clock> = Arc::new(idp::SystemClock);
    let mut logs = Vec::new();
    for _ in 0..2 {
        let store = keyferry::storage::Store::connect(&db.url, 5)
            .await
            .expect("store");
        logs.push(
            keyferry::audit::TransparencyLog::open(store, kek.clone(), clock.clone())
                .await
                .expect("log"),
        );
    }
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let log = logs[i % 2].clone();
            tokio::spawn(async move {
                log.record(
                    i as i64,
                    AuditEvent::new(EventKind::KeysFetched, "replica", json!({"i": i})),
                )
                .await
            })
        })
        .collect();
    let mut indexes = Vec::new();
    for task in tasks {
        indexes.push(task.await.expect("task").expect("append"));
    }
    indexes.sort();
    assert_eq!(
        indexes,
        (0..200).collect::<Vec<i64>>(),
        "one total order, no gaps or duplicates"
    );
    let sth = logs[1].sth().await.expect("sth");
    let entries = common::assert_log_verifies(&db.store, sth).await;
    assert_eq!(entries.len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_and_its_entry_commit_together_and_survive_a_crash_before_the_log() {
    let broker = Broker::builder().start_sqlite().await;
    let state = &broker.state;
    let now = state.now_ms();
    let adtech = keyferry::storage::AdTech {
        id: "acme".into(),
        name: "Acme".into(),
        sites: vec![],
        use_cases: vec!["aggregation-service".into()],
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    let entry = AuditEvent::new(
        EventKind::AdtechCreated,
        "operator:ops-1",
        json!({"id": "acme"}),
    )
    .outbox(now);
    let size_before = state.store.audit_size().await.expect("size");

    // The change commits with its entry; the broker "dies" before the log
    // writer moves the entry (no flush). Before, this left a change with no
    // entry at all.
    state
        .store
        .insert_adtech(&adtech, &entry)
        .await
        .expect("insert");
    assert_eq!(state.store.outbox_len().await.expect("outbox"), 1);
    // A refused change leaves no entry.
    assert!(state.store.insert_adtech(&adtech, &entry).await.is_err());
    assert_eq!(state.store.outbox_len().await.expect("outbox"), 1);

    // The next start's log moves it into the tree, once.
    let restarted = keyferry::audit::TransparencyLog::open(
        state.store.clone(),
        state.storage_kek.clone(),
        state.clock.clone(),
    )
    .await
    .expect("open");
    restarted.flush().await.expect("flush again: nothing left");
    assert_eq!(state.store.outbox_len().await.expect("outbox"), 0);
    assert_eq!(
        state.store.audit_size().await.expect("size"),
        size_before + 1
    );
    let created = broker.audit_of_kind("adtech.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["actor"], "operator:ops-1");
    assert_eq!(created[0]["details"]["id"], "acme");
}
