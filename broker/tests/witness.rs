//! Mutual log witnessing: a Type-1 and a Type-2 on loopback, each the
//! witness of the other's log, on SQLite and on PostgreSQL. Rounds are
//! driven by the test instead of the `audit.witness_interval` timer; one
//! round is one witnessing period.

mod common;

use std::process::Output;

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::Broker;
use common::process::keyferry;
use idp::ManualClock;
use keyferry::audit::witness::Round;
use keyferry::audit::{AuditEvent, EventKind};
use keyferry::config::Role;
use keyferry::testing::Db;
use serde_json::{Value, json};

struct Pair {
    t1: Broker,
    t2: Broker,
}

/// A Type-1 and its Type-2, each on a fresh database of `db`; `None` when
/// PostgreSQL is unavailable outside CI.
async fn pair(db: Db) -> Option<Pair> {
    let clock = ManualClock::starting_now();
    let bind = || async {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
    };
    let (l1, l2) = (bind().await, bind().await);
    let u1 = format!("http://{}", l1.local_addr().expect("addr"));
    let u2 = format!("http://{}", l2.local_addr().expect("addr"));
    let t2 = Broker::builder()
        .db(db)
        .listener(l2)
        .clock(clock.clone())
        .tweak(|c| {
            c.coordinator.name = "b".into();
            c.coordinator.role = Role::Type2;
            c.coordinator.peer_issuer = Some(u1.parse().expect("url"));
        })
        .start()
        .await?;
    let t1 = Broker::builder()
        .db(db)
        .listener(l1)
        .clock(clock)
        .tweak(|c| c.coordinator.peer_url = Some(u2))
        .start()
        .await?;
    Some(Pair { t1, t2 })
}

impl Broker {
    async fn round(&self) -> Round {
        self.state
            .witness
            .as_ref()
            .expect("a witness")
            .round()
            .await
            .expect("round")
    }

    async fn public(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn record(&self, n: usize, what: &str) {
        for i in 0..n {
            let event = AuditEvent::new(EventKind::KeysFetched, "tester", json!({what: i}));
            self.state.audit.record(0, event).await.expect("append");
        }
    }

    async fn size(&self) -> u64 {
        self.state.audit_log.sth().await.expect("sth").tree_size
    }

    /// Plays an operator who restores this coordinator's database from a
    /// backup taken at `size` entries: the log, its tree and its heads end
    /// there (and so do the co-signatures it had then).
    async fn roll_back_to(&self, size: u64) {
        self.state
            .store
            .execute_raw(&format!(
                "DELETE FROM audit_log WHERE idx >= {size}; \
                 DELETE FROM audit_nodes WHERE \
                 (idx + 1) * (CAST(1 AS BIGINT) << CAST(level AS INTEGER)) > {size}; \
                 DELETE FROM audit_heads WHERE tree_size > {size}; \
                 DELETE FROM audit_cosignatures WHERE tree_size > {size};"
            ))
            .await
            .expect("roll back");
        assert_eq!(self.size().await, size);
    }

    /// `keyferry audit verify --require-cosigned` against this broker.
    async fn verify_cosigned(&self) -> Output {
        self.verify_cosigned_with(&[]).await
    }

    /// [`Self::verify_cosigned`] with more arguments.
    async fn verify_cosigned_with(&self, args: &[&str]) -> Output {
        let mut cmd = keyferry();
        cmd.args(["audit", "verify", "--require-cosigned", "--server"])
            .arg(&self.base)
            .arg("--token-file")
            .arg(self.token_file())
            .args(args);
        tokio::task::spawn_blocking(move || cmd.output().expect("run"))
            .await
            .expect("join")
    }
}

/// The co-signature check as the test itself writes it: Ed25519 over the
/// context and the sorted, compact JSON of the head and the time.
fn cosignature_verifies(cosignature: &Value, head: &Value, witness_key: &str) -> bool {
    let body = json!({
        "cosignedAt": cosignature["cosignedAt"],
        "logKey": head["publicKey"],
        "rootHash": head["rootHash"],
        "timestamp": head["timestamp"],
        "treeSize": head["treeSize"],
    });
    let mut message = b"keyferry/v1/cosignature\n".to_vec();
    message.extend_from_slice(body.to_string().as_bytes());
    let signature = B64
        .decode(cosignature["signature"].as_str().unwrap_or(""))
        .unwrap_or_default();
    cosignature["publicKey"] == witness_key
        && UnparsedPublicKey::new(&ED25519, B64.decode(witness_key).expect("key"))
            .verify(&message, &signature)
            .is_ok()
}

async fn each_coordinator_cosigns_the_others_head_and_serves_it(db: Db) {
    let Some(p) = pair(db).await else { return };
    p.t1.state.keys.ensure_keys(None).await.expect("generate");
    p.t1.state.keys.run_handovers().await.expect("handover");
    // First rounds pin each other's log key (audited) and co-sign.
    assert!(matches!(p.t1.round().await, Round::Cosigned { .. }));
    assert!(matches!(p.t2.round().await, Round::Cosigned { .. }));
    assert!(matches!(p.t1.round().await, Round::Cosigned { .. }));
    for (node, peer) in [(&p.t1, &p.t2), (&p.t2, &p.t1)] {
        let started = node.audit_of_kind("audit.witness_started").await;
        assert_eq!(started.len(), 1, "pinned once");
        let (_, peer_head) = peer.public("/v1/audit/sth").await;
        assert_eq!(started[0]["details"]["logKey"], peer_head["publicKey"]);

        // The newest co-signed head carries the peer's co-signature, which
        // verifies with the key the peer publishes.
        let (status, cosigned) = node.public("/v1/audit/sth/cosigned").await;
        assert_eq!(status, 200, "{cosigned}");
        let cosignatures = cosigned["cosignatures"].as_array().expect("list");
        assert_eq!(cosignatures.len(), 1, "{cosigned}");
        assert_eq!(cosignatures[0]["witness"], peer.base.as_str());
        let peer_key = peer_head["publicKey"].as_str().expect("key");
        assert!(cosignature_verifies(&cosignatures[0], &cosigned, peer_key));
        let mut other = cosigned.clone();
        other["treeSize"] = json!(cosigned["treeSize"].as_u64().expect("size") + 1);
        assert!(!cosignature_verifies(&cosignatures[0], &other, peer_key));

        let out = node.verify_cosigned().await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("co-signed at size"), "{stdout}");
    }
    // A round with nothing new co-signs nothing new.
    assert_eq!(p.t2.round().await, Round::Unchanged);
    // It co-signs the same head again, so the co-signature's age says when
    // the witness last reached the log.
    let recent =
        p.t1.verify_cosigned_with(&["--max-cosigned-age", "3600"])
            .await;
    assert_eq!(
        recent.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&recent.stderr)
    );
    let stale =
        p.t1.verify_cosigned_with(&["--max-cosigned-age", "0"])
            .await;
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert_eq!(stale.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the newest co-signature is"), "{stderr}");

    // Only the peer's key co-signs, and only heads this log signed.
    let (_, head) = p.t1.public("/v1/audit/sth").await;
    let head: keyferry::audit::SignedTreeHead = serde_json::from_value(head).expect("head");
    let stranger = pair(Db::Sqlite).await.expect("a SQLite pair");
    let post = |body: Value| {
        let url = format!("{}/v1/audit/cosignatures", p.t1.base);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("post");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let forged = stranger.t2.state.audit_log.cosign(&head, &p.t2.base, 1);
    let (status, body) = post(json!({"head": head, "cosignature": forged})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("cosignature_invalid")),
        "{body}"
    );
    let mut unsigned = head.clone();
    unsigned.tree_size += 1000;
    let real = p.t2.state.audit_log.cosign(&unsigned, &p.t2.base, 1);
    let (status, body) = post(json!({"head": unsigned, "cosignature": real})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("unknown_head")),
        "{body}"
    );
    assert_eq!(
        p.t1.audit_of_kind("audit.cosignature_refused").await.len(),
        1
    );
    p.t1.assert_log_verifies().await;
    p.t2.assert_log_verifies().await;
}

async fn a_rolled_back_or_rewritten_log_is_caught_by_its_witness_in_one_round(db: Db) {
    let Some(p) = pair(db).await else { return };
    p.t1.record(8, "first").await;
    assert!(matches!(p.t2.round().await, Round::Cosigned { .. }));
    assert!(matches!(p.t1.round().await, Round::Cosigned { .. }));
    p.t1.record(5, "second").await;
    let witnessed = p.t1.size().await;
    assert!(matches!(p.t2.round().await, Round::Cosigned { tree_size } if tree_size == witnessed));
    let out = p.t1.verify_cosigned().await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The database restored from a backup three entries old: the earlier
    // co-signed head is in it, the last one is not.
    p.t1.roll_back_to(witnessed - 3).await;
    assert_eq!(p.t2.round().await, Round::Refused { reason: "rollback" });
    // Detected once, refused every round after.
    assert_eq!(p.t2.round().await, Round::Refused { reason: "rollback" });
    let failed = p.t2.audit_of_kind("audit.witness_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["details"]["reason"], "rollback");
    assert_eq!(failed[0]["details"]["last"]["treeSize"], witnessed);
    let (_, view) = p.t2.public("/v1/audit/witness").await;
    assert_eq!(view["failure"]["reason"], "rollback", "{view}");
    assert_eq!(
        view["head"]["treeSize"], witnessed,
        "the last good head is kept"
    );
    // An auditor with no saved head of their own is told too.
    let out = p.t1.verify_cosigned().await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused this log's head: rollback"),
        "{stderr}"
    );

    // Rewritten up to the size the witness saw: a second history.
    p.t1.record(3, "rewritten").await;
    assert_eq!(p.t1.size().await, witnessed);
    assert_eq!(
        p.t2.round().await,
        Round::Refused {
            reason: "split_view"
        }
    );
    // And beyond it: no consistency proof can join the two.
    p.t1.record(2, "more").await;
    assert_eq!(
        p.t2.round().await,
        Round::Refused {
            reason: "inconsistent"
        }
    );
    let reasons: Vec<Value> =
        p.t2.audit_of_kind("audit.witness_failed")
            .await
            .iter()
            .map(|e| e["details"]["reason"].clone())
            .collect();
    assert_eq!(
        reasons,
        [
            json!("rollback"),
            json!("split_view"),
            json!("inconsistent")
        ]
    );
    let out = p.t1.verify_cosigned().await;
    assert_eq!(out.status.code(), Some(1));
    // The witness's own log stays whole.
    p.t2.assert_log_verifies().await;
}

keyferry::on_both_backends!(
    db: each_coordinator_cosigns_the_others_head_and_serves_it,
    a_rolled_back_or_rewritten_log_is_caught_by_its_witness_in_one_round,
);
