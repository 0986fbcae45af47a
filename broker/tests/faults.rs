//! Fault injection: each of the broker's dependencies (the peer
//! coordinator, a KMS, a workload IdP's keys, the database) sits behind a
//! [`FaultProxy`] that refuses, hangs, answers 503, goes slow or loses its
//! answers, before, during and after key generation, handover (on SQLite
//! and PostgreSQL), attested release in `broker` unwrap mode, token
//! exchange, admin changes, governance ballots and the audit append.
//!
//! The invariants, checked after each fault: no key is published without
//! both splits stored; no change is half-applied or missing its audit entry;
//! the log verifies with one order and no gap; a caller meanwhile gets a
//! clear 503 with its reason (never a 500, never a wait past the request
//! deadline); and everything recovers once the fault clears, with no
//! operator action.

mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::KeyWrapper;
use cloud_adapters::gcp::test_double::KmsDouble;
use cloud_adapters::gcp::{GcpCredentials, GcpKmsWrapper, GcpSettings};
use common::governance::{Member, ballot, member_configs, propose};
use common::tee::SimulatedTee;
use common::{Broker, Db};
use idp::ManualClock;
use keyferry::config::{CloudConfig, Config, IssuerKind, Role, UnwrapMode};
use keyferry::testing::TestDb;
use reqwest::Method;
use serde_json::{Value, json};
use test_support::{Fault, FaultProxy, NodeIdp};
use zeroize::Zeroizing;

/// The faults every dependency is put through.
const OUTAGES: [Fault; 4] = [
    Fault::Refuse,
    Fault::ServerError,
    Fault::Hang,
    Fault::LoseAnswers,
];

/// A Type-1 and a Type-2, each on its own database of `db`, served in
/// process on one moved clock; the Type-1 reaches the Type-2 only through
/// `peer`.
struct Pair {
    t1: Broker,
    t2: Broker,
    peer: FaultProxy,
    clock: ManualClock,
}

/// A [`Pair`] whose Type-1 wraps with `t1_kek` when given (else its local
/// KEK) and has `t1_tweak` applied to its configuration.
/// `None` when PostgreSQL is missing outside CI.
async fn pair(
    db: Db,
    t1_kek: Option<Arc<dyn KeyWrapper>>,
    t1_tweak: impl FnOnce(&mut Config),
) -> Option<Pair> {
    let clock = ManualClock::starting_now();
    let l1 = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let l2 = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let u1 = format!("http://{}", l1.local_addr().expect("addr"));
    let peer = FaultProxy::start(l2.local_addr().expect("addr")).await;
    // The Type-2's public URL is the proxy's: the Type-1's handover tokens
    // name it as their audience.
    let u2 = format!("http://{}", peer.addr());
    let t2 = Broker::builder()
        .db(db)
        .listener(l2)
        .clock(clock.clone())
        .tweak(|c| {
            c.coordinator.name = "b".into();
            c.coordinator.role = Role::Type2;
            c.coordinator.peer_issuer = Some(u1.parse().expect("url"));
            c.server.public_url = Some(u2.parse().expect("url"));
            c.admin.bootstrap_token = Some(false);
        })
        .start()
        .await?;
    let mut t1 = Broker::builder().db(db).listener(l1).clock(clock.clone());
    if let Some(kek) = t1_kek {
        t1 = t1.storage_kek(kek);
    }
    let t1 = t1
        .tweak(|c| {
            c.coordinator.peer_url = Some(u2.clone());
            c.coordinator.peer_timeout = Duration::from_millis(1500);
            t1_tweak(c);
        })
        .start()
        .await?;
    Some(Pair {
        t1,
        t2,
        peer,
        clock,
    })
}

/// The ids of the keys `node` publishes.
async fn published(node: &Broker) -> Vec<String> {
    let (status, body) = node
        .call(
            Method::GET,
            "/.well-known/aggregation-service/v1/public-keys",
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> = body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// The Type-1 publishes only active keys, and each active key has split A
/// at the Type-1 and exactly one split B at the Type-2.
async fn assert_published_keys_have_both_splits(p: &Pair) {
    let keys = p.t1.state.store.keys(None).await.expect("keys");
    let active: Vec<String> = keys
        .iter()
        .filter(|k| k.status == "active")
        .map(|k| k.id.clone())
        .collect();
    for id in published(&p.t1).await {
        assert!(active.contains(&id), "{id} is published but not active");
    }
    for id in &active {
        assert!(
            !p.t1
                .state
                .store
                .splits(id)
                .await
                .expect("splits A")
                .is_empty(),
            "{id}: split A"
        );
        assert_eq!(
            p.t2.state.store.splits(id).await.expect("splits B").len(),
            1,
            "{id}: split B, once"
        );
    }
}

async fn handovers_ride_out_every_peer_fault_and_only_acknowledged_keys_are_published(db: Db) {
    let Some(p) = pair(db, None, |_| {}).await else {
        return;
    };

    // Never having seen the peer's handover key, the Type-1 cannot seal
    // split B: it generates nothing rather than something it cannot hand
    // over.
    p.peer.set(Fault::Refuse);
    let refused = p.t1.state.keys.ensure_keys(None).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(p.t1.state.store.keys(None).await.expect("keys").is_empty());
    assert!(p.t1.audit_of_kind("key.generated").await.is_empty());

    p.peer.set(Fault::None);
    let mut generated = p.t1.state.keys.ensure_keys(None).await.expect("generate");
    generated.sort();
    assert_eq!(generated.len(), 5);

    for fault in OUTAGES {
        p.peer.set(fault);
        assert_eq!(
            p.t1.state.keys.run_handovers().await.expect("a round"),
            (0, 5),
            "{fault:?}: every handover fails, none hangs"
        );
        assert!(published(&p.t1).await.is_empty(), "{fault:?}");
        assert_published_keys_have_both_splits(&p).await;
        // Past every backoff, within the handover timeout.
        p.clock.advance(Duration::from_secs(600));
    }
    // The answers lost were the Type-2's handover challenges: without one
    // the key generator cannot attest, so no split B was sent or stored.
    // (An acknowledgement lost after the Type-2 stored split B is replayed
    // and answered the same: keys.rs.)
    assert!(p.t2.state.store.keys(None).await.expect("keys").is_empty());

    // The fault clears (to a slow link): the retried handovers are
    // acknowledged again, without storing anything twice.
    p.peer.set(Fault::Slow(Duration::from_millis(2)));
    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("a round"),
        (5, 0)
    );
    assert_eq!(published(&p.t1).await, generated);
    assert_published_keys_have_both_splits(&p).await;
    assert_eq!(p.t2.audit_of_kind("key.received").await.len(), 5);
    assert_eq!(p.t1.audit_of_kind("key.activated").await.len(), 5);
    p.t1.assert_log_verifies().await;
    p.t2.assert_log_verifies().await;
}

keyferry::on_both_backends!(
    db: handovers_ride_out_every_peer_fault_and_only_acknowledged_keys_are_published
);

const GCP_KEY: &str = "projects/faults/locations/global/keyRings/storage/cryptoKeys/type1";

/// A Cloud KMS storage KEK (the double), reached through a proxy.
async fn gcp_kek(double: &KmsDouble, proxy: &FaultProxy) -> Arc<dyn KeyWrapper> {
    double.create_key(GCP_KEY);
    double.issue_token("dev-token", "user:type1@example.com");
    double.grant(GCP_KEY, "user:type1@example.com");
    let settings = GcpSettings {
        endpoint: Some(proxy.url_for(&double.endpoint())),
        timeout: Duration::from_secs(1),
        max_attempts: 2,
        ..GcpSettings::new(GcpCredentials::Static {
            access_token: Zeroizing::new("dev-token".into()),
        })
    };
    let uri = format!("gcp-kms://{GCP_KEY}").parse().expect("KEK URI");
    Arc::new(GcpKmsWrapper::new(uri, settings).await.expect("wrapper"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_kms_faulty_no_key_is_generated_and_generation_resumes() {
    let double = KmsDouble::start().await.expect("Cloud KMS double");
    let kms = FaultProxy::in_front_of(&double.endpoint()).await;
    let p = pair(Db::Sqlite, Some(gcp_kek(&double, &kms).await), |_| {})
        .await
        .expect("SQLite pair");
    // The Type-1 has seen its peer: only the KMS stands in the way.
    p.t1.state.keys.ensure_keys(None).await.expect("generate");
    p.t1.state.keys.run_handovers().await.expect("handover");
    let before = published(&p.t1).await;
    assert_eq!(before.len(), 5);

    for fault in [Fault::Refuse, Fault::ServerError, Fault::Hang] {
        kms.set(fault);
        let failed =
            p.t1.state
                .keys
                .ensure_keys(Some("aggregation-service"))
                .await;
        assert!(failed.is_err(), "{fault:?}: {failed:?}");
        assert_eq!(
            p.t1.state.store.keys(None).await.expect("keys").len(),
            5,
            "{fault:?}: a key whose split A could not be wrapped is not stored"
        );
        assert_eq!(p.t1.audit_of_kind("key.generated").await.len(), 5);
        assert_eq!(published(&p.t1).await, before, "{fault:?}");
    }

    kms.set(Fault::None);
    let rotated =
        p.t1.state
            .keys
            .ensure_keys(Some("aggregation-service"))
            .await;
    let mut rotated = rotated.expect("generate once the KMS is back");
    rotated.sort();
    assert_eq!(rotated.len(), 5);
    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("round"),
        (5, 0)
    );
    let active = p.t1.state.store.keys(None).await.expect("keys");
    for id in &rotated {
        assert!(
            active.iter().any(|k| &k.id == id && k.status == "active"),
            "{id}"
        );
    }
    assert_published_keys_have_both_splits(&p).await;
    p.t1.assert_log_verifies().await;
}

/// `POST /v1/encryptionKeys:release` of `key_id` by a GCP workload of
/// `adtech-1` with a fresh challenge and honest evidence; the nonce used, the
/// status and the body.
async fn attested_release(
    broker: &Broker,
    tee: &SimulatedTee,
    tee_key: &keys::RecipientKey,
    key_id: &str,
    nonce: Option<Vec<u8>>,
) -> (Vec<u8>, u16, Value) {
    let credential = broker.credential(
        "adtech-1",
        idp::IssuerKind::Gcp,
        &["keys:read", "keys:release"],
        Duration::from_secs(600),
    );
    let nonce = match nonce {
        Some(nonce) => nonce,
        None => {
            let (status, body) = broker
                .call(
                    Method::POST,
                    "/v1/attestation/challenge",
                    Some(&credential),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            B64.decode(body["nonce"].as_str().expect("nonce"))
                .expect("b64")
        }
    };
    let body = json!({
        "nonce": B64.encode(&nonce),
        "teePublicKey": B64.encode(tee_key.public_key()),
        "evidence": tee.evidence(&nonce, &tee_key.public_key(), |_| {}),
        "keyIds": [key_id],
    });
    let (status, body) = broker
        .call(
            Method::POST,
            "/v1/encryptionKeys:release",
            Some(&credential),
            Some(body),
        )
        .await;
    (nonce, status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_kms_faulty_broker_unwrapped_releases_are_503_and_audited() {
    // In `broker` unwrap mode the release unwraps split A with the storage
    // KEK (here Cloud KMS) before sealing it to the TEE key.
    let double = KmsDouble::start().await.expect("Cloud KMS double");
    let kms = FaultProxy::in_front_of(&double.endpoint()).await;
    let tee = SimulatedTee::new();
    let p = pair(Db::Sqlite, Some(gcp_kek(&double, &kms).await), |c| {
        tee.configure(c);
        let mut gcp = CloudConfig::with_kek("local-kek://gcp-splits");
        gcp.unwrap = UnwrapMode::Broker;
        c.clouds.gcp = Some(gcp);
    })
    .await
    .expect("SQLite pair");
    p.t1.state.keys.ensure_keys(None).await.expect("generate");
    p.t1.state.keys.run_handovers().await.expect("handover");
    p.t1.insert_adtech("adtech-1", &["aggregation-service"])
        .await;
    let key_id = published(&p.t1).await.remove(0);
    let tee_key = keys::RecipientKey::generate();

    for (round, fault) in OUTAGES.into_iter().enumerate() {
        kms.set(fault);
        let started = std::time::Instant::now();
        let (nonce, status, body) = attested_release(&p.t1, &tee, &tee_key, &key_id, None).await;
        assert_eq!(
            (status, body["details"][0]["reason"].as_str()),
            (503, Some("UNAVAILABLE")),
            "{fault:?}: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{fault:?}: {:?}",
            started.elapsed()
        );
        let unavailable =
            p.t1.audit_of_kind("keys.release_refused")
                .await
                .into_iter()
                .filter(|e| e["details"]["reason"] == "UNAVAILABLE")
                .count();
        assert_eq!(unavailable, round + 1, "{fault:?}: every refusal audited");
        assert!(p.t1.audit_of_kind("keys.released").await.is_empty());

        // The nonce went with the attempt: evidence is bound to one answer,
        // so the workload asks for a new challenge.
        kms.set(Fault::None);
        let (_, status, body) = attested_release(&p.t1, &tee, &tee_key, &key_id, Some(nonce)).await;
        assert_eq!(
            (
                status,
                body["details"][0]["metadata"]["attestationReason"].as_str()
            ),
            (403, Some("nonce_unknown")),
            "{fault:?}: {body}"
        );
    }

    let (_, status, body) = attested_release(&p.t1, &tee, &tee_key, &key_id, None).await;
    assert_eq!(status, 200, "once the KMS is back: {body}");
    let own = &body["keys"][0]["keyData"][0];
    assert_eq!(own["sealedContent"], "broker");
    let sealed = B64
        .decode(own["sealedKeyMaterial"].as_str().expect("sealed"))
        .expect("b64");
    let opened = keys::open(&tee_key, keys::RELEASE_INFO, key_id.as_bytes(), &sealed)
        .expect("sealed to the TEE key");
    let storage_uri = p.t1.state.storage_kek.kek_uri().to_string();
    let stored = p.t1.state.store.splits(&key_id).await.expect("splits");
    let split_a = stored
        .iter()
        .find(|s| s.kek_uri == storage_uri)
        .expect("split A under the storage KEK");
    let expected =
        p.t1.state
            .storage_kek
            .unwrap(&split_a.ciphertext)
            .await
            .expect("unwrap");
    assert_eq!(opened.as_slice(), expected.as_slice());
    assert_eq!(p.t1.audit_of_kind("keys.released").await.len(), 1);
    p.t1.assert_log_verifies().await;
}

const AUDIENCE: &str = "keyferry-faults";
const GCP_SUBJECT: &str = "112233445566778899001";

/// A broker trusting `idp` as a GCP issuer whose JWKS it fetches through
/// `jwks`.
async fn broker_trusting(idp: &NodeIdp, jwks: &FaultProxy) -> Broker {
    let discovery: Value = reqwest::get(format!("{}/.well-known/openid-configuration", idp.issuer))
        .await
        .expect("discovery")
        .json()
        .await
        .expect("JSON");
    let jwks_uri = jwks.url_for(discovery["jwks_uri"].as_str().expect("jwks_uri"));
    let broker = Broker::builder()
        .tweak(|c| {
            let mut issuer = common::issuer("workload-idp", IssuerKind::Gcp, &idp.issuer, AUDIENCE);
            issuer.jwks_uri = Some(jwks_uri.parse().expect("url"));
            c.issuers.push(issuer);
        })
        .start_sqlite()
        .await;
    let (status, body) = broker
        .admin(
            Method::POST,
            "/v1/admin/adtechs",
            Some(
                json!({"id": "acme", "name": "Acme", "sites": ["https://acme.example"],
                        "useCases": ["aggregation-service"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = broker
        .admin(
            Method::POST,
            "/v1/admin/adtechs/acme/identities",
            Some(
                json!({"cloud": "gcp", "issuer": idp.issuer, "subject": GCP_SUBJECT,
                        "conditions": []}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    broker
}

async fn exchange(broker: &Broker, token: &str) -> (u16, Value) {
    let response = broker
        .client
        .post(format!("{}/v1/token", broker.base))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", token),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ])
        .send()
        .await
        .expect("token call");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_idp_keys_unreachable_exchanges_are_503_and_recover_on_their_own() {
    let Some(mut idp) = NodeIdp::start().await else {
        return;
    };
    let upstream = FaultProxy::in_front_of(&idp.issuer).await;
    let broker = broker_trusting(&idp, &upstream).await;
    let token = idp
        .token(common::gcp_workload_claims(GCP_SUBJECT, AUDIENCE))
        .await;

    // The broker has never had the issuer's keys: it cannot check the
    // token, so it asks the workload to come back, whatever the fault.
    for fault in [
        Fault::Refuse,
        Fault::ServerError,
        Fault::Hang,
        Fault::Slow(Duration::from_secs(3)),
    ] {
        upstream.set(fault);
        let (status, body) = exchange(&broker, &token).await;
        assert_eq!(status, 503, "{fault:?}: {body}");
        assert_eq!(body["error"], "temporarily_unavailable", "{fault:?}");
        // One fetch per issuer per minute: the next attempt is allowed a
        // minute later.
        broker.clock().advance(Duration::from_secs(61));
    }

    upstream.set(Fault::None);
    let (status, body) = exchange(&broker, &token).await;
    assert_eq!(status, 200, "recovered without operator action: {body}");

    // Known keys keep working through a later outage.
    for fault in OUTAGES {
        upstream.set(fault);
        let (status, body) = exchange(&broker, &token).await;
        assert_eq!(status, 200, "{fault:?}: {body}");
    }
    broker.assert_log_verifies().await;
}

/// POST /v1/admin/adtechs for `id`; the status and the problem code.
async fn create_adtech(broker: &Broker, id: &str) -> (u16, Value) {
    broker
        .admin(
            Method::POST,
            "/v1/admin/adtechs",
            Some(
                json!({"id": id, "name": id, "sites": [format!("https://{id}.example")],
                        "useCases": ["aggregation-service"]}),
            ),
        )
        .await
}

/// Polls `/readyz` until it answers 200; panics after `limit`.
async fn ready_within(broker: &Broker, limit: Duration) {
    let start = std::time::Instant::now();
    loop {
        let (status, _) = broker.call(Method::GET, "/readyz", None, None).await;
        if status == 200 {
            return;
        }
        assert!(start.elapsed() < limit, "not ready again within {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_faulty_callers_get_503_and_no_change_is_half_applied() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let proxy = FaultProxy::in_front_of(&db.url).await;
    let through_proxy = proxy.url_for(&db.url);
    let broker = Broker::builder()
        .test_db(Some(db))
        .tweak(|c| {
            c.storage.url = Some(through_proxy);
            c.server.request_timeout = Duration::from_secs(2);
        })
        .start()
        .await
        .expect("PostgreSQL is there");
    broker
        .insert_adtech("reader", &["aggregation-service"])
        .await;
    let credential = broker.credential(
        "reader",
        idp::IssuerKind::Gcp,
        &["keys:read"],
        Duration::from_secs(3600),
    );

    for (round, fault) in [
        Fault::Refuse,
        Fault::Hang,
        Fault::LoseAnswers,
        Fault::Slow(Duration::from_millis(400)),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("acme-{round}");
        proxy.set(fault);
        let started = std::time::Instant::now();
        let (status, body) = create_adtech(&broker, &id).await;
        if !matches!(fault, Fault::Slow(_)) {
            assert_eq!(status, 503, "{fault:?}: {body}");
            assert!(
                ["unavailable", "dependency_timeout"]
                    .contains(&body["code"].as_str().unwrap_or("")),
                "{fault:?}: {body}"
            );
            let (status, headers, body) = broker
                .call_with_headers(
                    Method::GET,
                    "/v1alpha/encryptionKeys:recent?maxAgeSeconds=60",
                    Some(&credential),
                    None,
                )
                .await;
            assert_eq!(
                status, 503,
                "{fault:?}: a fetch is audited or refused: {body}"
            );
            assert!(headers.contains_key("retry-after"), "{fault:?}");
            let (status, headers, _) = broker
                .call_with_headers(
                    Method::POST,
                    "/v1/admin/adtechs",
                    Some(broker.admin_token()),
                    Some(json!({"id": format!("{id}-b"), "name": "B",
                        "sites": ["https://b.example"], "useCases": ["aggregation-service"]})),
                )
                .await;
            assert_eq!(status, 503, "{fault:?}");
            assert!(headers.contains_key("retry-after"), "{fault:?}");
            let (status, body) = broker.call(Method::GET, "/readyz", None, None).await;
            assert_eq!(status, 503, "{fault:?}: {body}");
        }
        // No answer waits past the request deadline (2 s) by much, and
        // the slowest path (a reconnect) by the pool's acquire timeout.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{fault:?}: {:?}",
            started.elapsed()
        );

        proxy.set(Fault::None);
        ready_within(&broker, Duration::from_secs(30)).await;
        // Whatever the client was told, the change and its audit entry
        // committed together or not at all.
        let exists = broker.state.store.adtech(&id).await.is_ok();
        let entries = broker
            .audit_of_kind("adtech.created")
            .await
            .into_iter()
            .filter(|e| e["details"]["id"] == id.as_str())
            .count();
        assert_eq!(
            entries,
            usize::from(exists),
            "{fault:?}: {id} exists: {exists}"
        );
        if !exists {
            assert_eq!(
                create_adtech(&broker, &id).await.0,
                201,
                "{fault:?}: retried"
            );
        }
        broker.assert_log_verifies().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_faulty_a_deciding_ballot_applies_whole_or_not_at_all() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let proxy = FaultProxy::in_front_of(&db.url).await;
    let through_proxy = proxy.url_for(&db.url);
    let members = [
        Member::new("alice"),
        Member::new("bob"),
        Member::new("carol"),
    ];
    let broker = Broker::builder()
        .test_db(Some(db))
        .tweak(|c| {
            c.storage.url = Some(through_proxy);
            c.server.request_timeout = Duration::from_secs(2);
            c.governance.threshold = Some(2);
            c.governance.members = member_configs(&members);
        })
        .start()
        .await
        .expect("PostgreSQL is there");

    for (round, fault) in [
        Fault::Refuse,
        Fault::Hang,
        Fault::LoseAnswers,
        Fault::Slow(Duration::from_millis(400)),
    ]
    .into_iter()
    .enumerate()
    {
        // Each round a policy of its own, so which one is in force tells
        // which proposal applied.
        let policy = json!({"measurements": [format!("{:096x}", round + 1)], "allow_debug": false});
        let proposal = propose(
            &broker,
            json!({"kind": "release_policy", "useCase": "aggregation-service", "policy": policy}),
        )
        .await;
        let id = proposal["id"].as_str().expect("id");
        let digest = proposal["digest"].as_str().expect("digest");
        let (status, body) = ballot(&broker, id, "alice", &members[0].sign(digest)).await;
        assert_eq!(status, 200, "{body}");

        proxy.set(fault);
        let (status, body) = ballot(&broker, id, "bob", &members[1].sign(digest)).await;
        if matches!(fault, Fault::Slow(_)) {
            // A transaction of many round trips may outlast the request
            // deadline on a slow link: then it is a 503 like any other.
            assert!(
                (status, body["status"].as_str()) == (200, Some("applied")) || status == 503,
                "{fault:?}: {status} {body}"
            );
        } else {
            assert_eq!(status, 503, "{fault:?}: {body}");
        }
        proxy.set(Fault::None);
        ready_within(&broker, Duration::from_secs(30)).await;
        // Entries committed with their change but not yet moved from the
        // outbox into the log move now.
        broker.assert_log_verifies().await;

        // The deciding ballot, the policy and the `gov.applied` entry went
        // in together or not at all, whatever bob was told.
        let in_force = broker
            .state
            .store
            .release_policy("aggregation-service")
            .await
            .expect("read")
            .filter(|p| p.proposal_id == id);
        let applied = broker
            .audit_of_kind("gov.applied")
            .await
            .into_iter()
            .filter(|e| e["details"]["proposalId"] == id)
            .count();
        assert_eq!(
            applied,
            usize::from(in_force.is_some()),
            "{fault:?}: in force: {}",
            in_force.is_some()
        );
        // Bob asks again: applied now, or already closed by the ballot
        // that committed unseen.
        let (status, body) = ballot(&broker, id, "bob", &members[1].sign(digest)).await;
        if in_force.is_some() {
            assert_eq!(status, 409, "{fault:?}: {body}");
        } else {
            assert_eq!(
                (status, body["status"].as_str()),
                (200, Some("applied")),
                "{fault:?}: {body}"
            );
        }
        let policy_now = broker
            .state
            .store
            .release_policy("aggregation-service")
            .await
            .expect("read")
            .expect("in force");
        assert_eq!(policy_now.proposal_id, id, "{fault:?}");
        broker.assert_log_verifies().await;
    }
}
