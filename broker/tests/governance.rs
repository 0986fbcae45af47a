//! Governance of release policies through the admin API (DESIGN §7.3):
//! M-1 ballots change nothing, the M-th applies atomically, and every bad
//! ballot is refused with its own code and audited. On SQLite and
//! PostgreSQL.

mod common;

use std::process::Output;

use std::time::Duration;

use common::governance::{Member, ballot, member_configs, propose};
use common::{Broker, Db};
use reqwest::Method;
use serde_json::{Value, json};

/// A broker whose governance is three members with threshold 2.
async fn governed(db: Db) -> Option<(Broker, Vec<Member>)> {
    let members = vec![
        Member::new("alice"),
        Member::new("bob"),
        Member::new("carol"),
    ];
    let configs = member_configs(&members);
    let broker = Broker::start(db, |c| {
        c.governance.threshold = Some(2);
        c.governance.members = configs;
    })
    .await?;
    Some((broker, members))
}

fn policy_json() -> Value {
    json!({
        "measurements": ["a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"],
        "allow_debug": false
    })
}

async fn the_mth_ballot_applies_a_release_policy_and_not_before(db: Db) {
    let Some((broker, members)) = governed(db).await else {
        return;
    };
    let proposal = propose(
        &broker,
        json!({"kind": "release_policy", "useCase": "aggregation-service", "policy": policy_json()}),
    )
    .await;
    let id = proposal["id"].as_str().expect("id");
    let digest = proposal["digest"].as_str().expect("digest");
    assert_eq!(proposal["status"], "open");

    let (status, after) = ballot(&broker, id, "alice", &members[0].sign(digest)).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["status"], "open");
    assert_eq!(after["approvals"], json!(["alice"]));
    assert!(
        broker
            .state
            .store
            .release_policy("aggregation-service")
            .await
            .expect("read")
            .is_none(),
        "one ballot of two must not apply anything"
    );

    let (status, after) = ballot(&broker, id, "bob", &members[1].sign(digest)).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["status"], "applied");
    let in_force = broker
        .state
        .store
        .release_policy("aggregation-service")
        .await
        .expect("read")
        .expect("policy in force");
    assert_eq!(in_force.proposal_id, id);
    let stored: Value = serde_json::from_str(&in_force.policy).expect("json");
    assert_eq!(stored, policy_json());

    // A ballot after application is refused: the proposal is closed.
    let (status, body) = ballot(&broker, id, "carol", &members[2].sign(digest)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("proposal_closed"))
    );

    let kinds: Vec<String> = broker
        .audit_events()
        .await
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .filter(|k| k.starts_with("gov."))
        .collect();
    assert_eq!(
        kinds,
        [
            "gov.proposed",
            "gov.ballot",
            "gov.ballot",
            "gov.applied",
            "gov.ballot_refused"
        ]
    );
}

async fn bad_ballots_are_refused_each_with_its_code(db: Db) {
    let Some((broker, members)) = governed(db).await else {
        return;
    };
    let proposal = propose(&broker, json!({"kind": "set_threshold", "threshold": 3})).await;
    let id = proposal["id"].as_str().expect("id");
    let digest = proposal["digest"].as_str().expect("digest");

    // Signed by bob's key but presented as alice's.
    let (status, body) = ballot(&broker, id, "alice", &members[1].sign(digest)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("ballot_signature_invalid"))
    );
    // A signature over another digest.
    let (status, body) = ballot(&broker, id, "alice", &members[0].sign(&"0".repeat(64))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("ballot_signature_invalid"))
    );
    // Not a member, whatever the key.
    let mallory = Member::new("mallory");
    let (status, body) = ballot(&broker, id, "mallory", &mallory.sign(digest)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("not_a_member")));
    // Twice from one member.
    let (status, _) = ballot(&broker, id, "alice", &members[0].sign(digest)).await;
    assert_eq!(status, 200);
    let (status, body) = ballot(&broker, id, "alice", &members[0].sign(digest)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("duplicate_ballot"))
    );
    assert_eq!(
        broker.state.store.gov_threshold().await.expect("m"),
        Some(2)
    );

    // An expired proposal takes no more ballots.
    let late = propose(&broker, json!({"kind": "remove_member", "name": "carol"})).await;
    let late_id = late["id"].as_str().expect("id");
    let late_digest = late["digest"].as_str().expect("digest");
    broker
        .clock()
        .advance(Duration::from_secs(7 * 24 * 3600 + 1));
    let (status, body) = ballot(&broker, late_id, "bob", &members[1].sign(late_digest)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("proposal_expired"))
    );
    let (_, shown) = broker
        .admin(Method::GET, &format!("/v1/gov/proposals/{late_id}"), None)
        .await;
    assert_eq!(shown["status"], "expired");
    assert_eq!(
        broker
            .state
            .store
            .gov_members()
            .await
            .expect("members")
            .len(),
        3
    );

    let refusals: Vec<String> = broker
        .audit_of_kind("gov.ballot_refused")
        .await
        .iter()
        .map(|e| {
            e["details"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        refusals,
        [
            "ballot_signature_invalid",
            "ballot_signature_invalid",
            "not_a_member",
            "duplicate_ballot",
            "proposal_expired"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_take_effect_for_later_ballots() {
    let Some((broker, members)) = governed(Db::Sqlite).await else {
        return;
    };
    let dave = Member::new("dave");
    let add = propose(
        &broker,
        json!({"kind": "add_member", "name": "dave", "publicKey": dave.public()}),
    )
    .await;
    let (id, digest) = (
        add["id"].as_str().expect("id"),
        add["digest"].as_str().expect("d"),
    );
    for m in &members[..2] {
        let (status, body) = ballot(&broker, id, m.name, &m.sign(digest)).await;
        assert_eq!(status, 200, "{body}");
    }
    let names: Vec<String> = broker
        .state
        .store
        .gov_members()
        .await
        .expect("members")
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave"]);

    // Dave now votes; a threshold above the member count is refused up front.
    let (status, body) = broker
        .admin(
            Method::POST,
            "/v1/gov/proposals",
            Some(json!({"change": {"kind": "set_threshold", "threshold": 5}})),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("change.threshold"))
    );
    let raise = propose(&broker, json!({"kind": "set_threshold", "threshold": 3})).await;
    let (id, digest) = (
        raise["id"].as_str().expect("id"),
        raise["digest"].as_str().expect("d"),
    );
    let (_, _) = ballot(&broker, id, "dave", &dave.sign(digest)).await;
    let (status, after) = ballot(&broker, id, "carol", &members[2].sign(digest)).await;
    assert_eq!((status, after["status"].as_str()), (200, Some("applied")));
    assert_eq!(
        broker.state.store.gov_threshold().await.expect("m"),
        Some(3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_are_validated_and_need_an_operator() {
    let Some((broker, _)) = governed(Db::Sqlite).await else {
        return;
    };
    let (status, _) = broker
        .call(
            Method::POST,
            "/v1/gov/proposals",
            None,
            Some(json!({"change": {"kind": "set_threshold", "threshold": 1}})),
        )
        .await;
    assert_eq!(status, 401);
    for (change, field) in [
        (
            json!({"kind": "release_policy", "useCase": "", "policy": policy_json()}),
            "change.useCase",
        ),
        (
            json!({"kind": "release_policy", "useCase": "x", "policy": [1]}),
            "change.policy",
        ),
        (
            json!({"kind": "add_member", "name": "eve", "publicKey": "AAAA"}),
            "change.publicKey",
        ),
        (
            json!({"kind": "remove_member", "name": "nobody"}),
            "change.name",
        ),
        (
            json!({"kind": "set_threshold", "threshold": 0}),
            "change.threshold",
        ),
    ] {
        let (status, body) = broker
            .admin(
                Method::POST,
                "/v1/gov/proposals",
                Some(json!({"change": change})),
            )
            .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (400, Some(field)),
            "{change}: {body}"
        );
    }
    let (status, body) = broker
        .admin(
            Method::POST,
            "/v1/gov/proposals",
            Some(json!({"change": {"kind": "grant_everything"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

/// `keyferry gov ARGS` against `broker`, off the async threads.
async fn gov(broker: &Broker, args: Vec<String>) -> Output {
    let mut cmd = common::process::keyferry();
    cmd.arg("gov")
        .args(args)
        .arg("--server")
        .arg(&broker.base)
        .arg("--token-file")
        .arg(broker.token_file());
    tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_approve_with_keyferry_gov_and_their_pem_keys() {
    let Some((broker, members)) = governed(Db::Sqlite).await else {
        return;
    };
    let keys = tempfile::tempdir().expect("dir");
    let policy = keys.path().join("policy.json");
    std::fs::write(&policy, policy_json().to_string()).expect("policy");
    let out = gov(
        &broker,
        strings(&[
            "propose",
            "release-policy",
            &policy.to_string_lossy(),
            "--use-case",
            "aggregation-service",
            "--json",
        ]),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proposal: Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = proposal["id"].as_str().expect("id").to_owned();

    let approve = |member: &Member, key: &std::path::Path| {
        strings(&[
            "approve",
            &id,
            "--member",
            member.name,
            "--key",
            &key.to_string_lossy(),
        ])
    };
    // A key that is not the member's: refused, exit 1, nothing counted.
    let out = gov(
        &broker,
        approve(&members[0], &members[1].pem_file(keys.path())),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ballot_signature_invalid"));

    let out = gov(
        &broker,
        approve(&members[0], &members[0].pem_file(keys.path())),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 of 2 approvals, open"));
    let out = gov(
        &broker,
        approve(&members[1], &members[1].pem_file(keys.path())),
    )
    .await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 of 2 approvals, applied"));
    assert!(
        broker
            .state
            .store
            .release_policy("aggregation-service")
            .await
            .expect("read")
            .is_some()
    );
    let out = gov(&broker, strings(&["list", "--status", "applied"])).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
}

keyferry::on_both_backends!(
    db:
    the_mth_ballot_applies_a_release_policy_and_not_before,
    bad_ballots_are_refused_each_with_its_code,
);
