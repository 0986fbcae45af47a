//! The key lifecycle across two coordinators on loopback: a Type-1 on
//! SQLite and a Type-2 on PostgreSQL, one moved clock, and the lifecycle
//! driven step by step (generation, handover, purge) instead of by timers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use attestation::KeyGenerationBinding;
use attestation::simulated::{ChipSpec, ReportFields, SimulatedAmd};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::KeyWrapper;
use common::{Broker, Serve};
use idp::{Clock, ManualClock};
use keyferry::config::{Config, Role};
use keyferry::lifecycle::handover_request;
use keyferry::testing::TestDb;
use serde_json::{Value, json};

impl Broker {
    /// The storage KEK, opened again from its file.
    async fn kek(&self) -> Arc<dyn KeyWrapper> {
        Arc::new(
            cloud_adapters::LocalKek::open_or_create(&self.data_dir().join("keks"), "storage")
                .await
                .expect("kek"),
        )
    }
}

struct Pair {
    t1: Broker,
    t2: Broker,
    clock: ManualClock,
}

/// A Type-1 on SQLite and a Type-2 on PostgreSQL (SQLite when PostgreSQL is
/// unavailable outside CI), served in process on one moved clock, with
/// `tweak` applied to the Type-1's config.
async fn pair(tweak: impl FnOnce(&mut Config)) -> Pair {
    pair_with(tweak, |_| {}).await
}

/// [`pair`] with `tweak2` applied to the Type-2's config as well.
async fn pair_with(tweak: impl FnOnce(&mut Config), tweak2: impl FnOnce(&mut Config)) -> Pair {
    let clock = ManualClock::starting_now();
    let l1 = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let l2 = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (u1, u2) = (
        format!("http://{}", l1.local_addr().expect("addr")),
        format!("http://{}", l2.local_addr().expect("addr")),
    );

    let t2 = Broker::builder()
        .test_db(TestDb::postgres().await)
        .listener(l2)
        .clock(clock.clone())
        .tweak(|c2| {
            c2.coordinator.name = "b".into();
            c2.coordinator.role = Role::Type2;
            c2.coordinator.peer_issuer = Some(u1.parse().expect("url"));
            c2.admin.bootstrap_token = Some(false);
            tweak2(c2);
        })
        .start()
        .await
        .expect("the Type-2 falls back to SQLite");

    let t1 = Broker::builder()
        .listener(l1)
        .clock(clock.clone())
        .tweak(|c1| {
            c1.coordinator.peer_url = Some(u2);
            tweak(c1);
        })
        .start_sqlite()
        .await;
    Pair { t1, t2, clock }
}

impl Pair {
    /// The Type-1's pending handovers (key and sealed split B), oldest
    /// first, due or not.
    async fn pending(&self) -> Vec<(keyferry::storage::KeyRecord, Vec<u8>)> {
        self.t1
            .state
            .store
            .due_handovers(i64::MAX)
            .await
            .expect("due")
    }

    /// A handover token of the Type-1's issuer for `audience`.
    fn handover_token(&self, audience: &str) -> String {
        self.t1
            .state
            .issuer
            .current()
            .mint_outbound_token(self.clock.now(), "a", audience, Duration::from_secs(300))
            .expect("token")
            .as_str()
            .to_owned()
    }

    /// A fresh handover challenge of the Type-2, for the peer's `token`.
    async fn challenge(&self, token: &str) -> Vec<u8> {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/peer/handover-challenges", self.t2.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("json");
        B64.decode(body["challenge"].as_str().expect("challenge"))
            .expect("base64")
    }

    /// `request` with the simulated key generator's evidence for
    /// `challenge` over the message `bound_to` (`request` itself when
    /// `None`), after `tweak` changed the report's fields.
    fn with_evidence(
        request: &Value,
        challenge: &[u8],
        bound_to: Option<&Value>,
        tweak: impl FnOnce(&mut ReportFields),
    ) -> Value {
        let message: wire::HandoverRequest =
            serde_json::from_value(bound_to.unwrap_or(request).clone()).expect("a request");
        let digest = keyferry::lifecycle::message_digest(&message).expect("digest");
        let chip = SimulatedAmd::shared()
            .expect("simulated AMD")
            .chip(ChipSpec::milan())
            .expect("chip");
        let mut fields = chip.report_fields();
        fields.measurement = keyferry::lifecycle::DEV_KEY_GENERATOR_MEASUREMENT;
        fields.report_data = *KeyGenerationBinding::new(challenge, digest).report_data();
        tweak(&mut fields);
        let evidence = attestation::EvidenceWire::from(&chip.evidence(&fields).expect("report"));
        let mut attested = request.clone();
        attested["keyGeneration"] =
            json!({"challenge": B64.encode(challenge), "evidence": evidence});
        attested
    }

    /// `request` as the honest key generator attests it, for a fresh challenge.
    async fn attested(&self, token: &str, request: Value) -> Value {
        let challenge = self.challenge(token).await;
        Pair::with_evidence(&request, &challenge, None, |_| {})
    }

    /// `POST /v1alpha/encryptionKeys` of `body` at the Type-2: the status
    /// and the JSON body (`Null` when not JSON).
    async fn post_handover(&self, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1alpha/encryptionKeys", self.t2.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("post");
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    }
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.expect("GET")
}

async fn published(node: &Broker) -> Vec<String> {
    let body: Value = get(
        &format!(
            "{}/.well-known/aggregation-service/v1/public-keys",
            node.base
        ),
        &[],
    )
    .await
    .json()
    .await
    .expect("json");
    body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_published_only_after_the_type2_acknowledges() {
    let p = pair(|_| {}).await;
    let generated = p.t1.state.keys.ensure_keys(None).await.expect("generate");
    assert_eq!(generated.len(), 5);
    assert!(
        published(&p.t1).await.is_empty(),
        "pending keys must not be published"
    );
    assert!(p.t2.state.store.keys(None).await.expect("keys").is_empty());

    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("handover"),
        (5, 0)
    );
    let mut public = published(&p.t1).await;
    public.sort();
    let mut expected = generated.clone();
    expected.sort();
    assert_eq!(public, expected);
    // The Type-2 holds split B of every key, wrapped by its own KEK only.
    for id in &generated {
        let splits = p.t2.state.store.splits(id).await.expect("splits");
        assert_eq!(splits.len(), 1);
        assert_eq!(splits[0].kek_uri, "local-kek://storage");
    }
    // A second check generates nothing: five live keys exist.
    assert!(
        p.t1.state
            .keys
            .ensure_keys(None)
            .await
            .expect("generate")
            .is_empty()
    );
    let kinds: Vec<String> =
        p.t2.state
            .audit_log
            .events(0, 100)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.kind)
            .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "key.received").count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_type2_down_nothing_is_published_and_the_handover_resumes() {
    let mut p = pair(|_| {}).await;
    p.t1.state
        .keys
        .ensure_keys(None)
        .await
        .expect("generate while the type2 is up");
    p.t2.stop_serving();
    for round in 1..=3 {
        assert_eq!(
            p.t1.state.keys.run_handovers().await.expect("round"),
            (0, 5),
            "round {round}"
        );
        assert!(published(&p.t1).await.is_empty());
        // Backoff: nothing is due until the delay has passed.
        assert_eq!(
            p.t1.state.keys.run_handovers().await.expect("round"),
            (0, 0)
        );
        p.clock.advance(Duration::from_secs(10));
    }
    let keys = p.t1.state.store.keys(None).await.expect("keys");
    assert!(
        keys.iter()
            .all(|k| k.status == "pending" && k.handover_attempts == 3),
        "{keys:?}"
    );

    p.t2.serve_again().await;
    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("round"),
        (5, 0)
    );
    assert_eq!(published(&p.t1).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_key_is_dropped_after_the_handover_timeout() {
    let mut p = pair(|_| {}).await;
    p.t1.state.keys.ensure_keys(None).await.expect("generate");
    p.t2.stop_serving();
    p.t1.state.keys.run_handovers().await.expect("round");
    p.clock.advance(Duration::from_secs(3601));
    assert_eq!(p.t1.state.keys.purge().await.expect("purge"), 5);
    assert!(p.t1.state.store.keys(None).await.expect("keys").is_empty());
    let events = p.t1.state.audit_log.events(0, 100).await.expect("audit");
    assert_eq!(events.iter().filter(|e| e.kind == "key.dropped").count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handovers_are_idempotent_authenticated_and_conflicts_refused() {
    let p = pair(|_| {}).await;
    p.t1.state.keys.ensure_keys(None).await.expect("generate");
    let (record, sealed) = p.pending().await.remove(0);
    p.t1.state.keys.run_handovers().await.expect("handover");
    let stored = p.t1.state.store.key(&record.id).await.expect("key");
    let token = p.handover_token(&p.t2.base);
    let request = serde_json::to_value(handover_request(&record, &sealed)).expect("json");

    // A replay gets the same answer (the key generator attests each).
    let (status, answer) = p
        .post_handover(Some(&token), p.attested(&token, request.clone()).await)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["publicKeySignature"], stored.peer_signature.as_str());

    // The same id with another public key conflicts, even signed by the
    // Type-1 (one restored from a backup that hands out an id again).
    let other = keys::generate(keys::Aead::ChaCha20Poly1305).expect("key");
    let mut conflicting = request.clone();
    conflicting["publicKeyMaterial"] = json!(other.public_key_base64());
    conflicting["publicKeysetHandle"] = json!(other.public_keyset_json());
    assert_eq!(
        p.post_handover(Some(&token), conflicting.clone()).await.0,
        400,
        "unsigned: refused before the conflict is looked at"
    );
    let type1_signer = {
        let wrapped = p.t1.state.store.wrapped_secret("public_key_signer").await;
        let wrapped = wrapped.expect("read").expect("the Type-1's signing key");
        let pkcs8 = p.t1.state.storage_kek.unwrap(&wrapped.ciphertext).await;
        keys::KeySigner::from_pkcs8(&pkcs8.expect("unwrap")).expect("signer")
    };
    let message = keys::public_key_signature_message(
        &record.id,
        record.creation_time,
        &other.public_key_base64(),
    );
    conflicting["publicKeySignature"] = json!(B64.encode(type1_signer.sign(&message)));
    let conflicting = p.attested(&token, conflicting).await;
    assert_eq!(p.post_handover(Some(&token), conflicting).await.0, 409);

    // Unauthenticated, for another audience, or signed by a stranger: refused.
    assert_eq!(p.post_handover(None, request.clone()).await.0, 401);
    assert_eq!(
        p.post_handover(
            Some(&p.handover_token("https://elsewhere.example")),
            request.clone()
        )
        .await
        .0,
        401
    );
    let stranger = pair(|_| {}).await;
    let foreign = stranger
        .t1
        .state
        .issuer
        .current()
        .mint_outbound_token(
            stranger.clock.now(),
            "a",
            &p.t2.base,
            Duration::from_secs(300),
        )
        .expect("token");
    assert_eq!(
        p.post_handover(Some(foreign.as_str()), request.clone())
            .await
            .0,
        401
    );

    // A key the Type-1 signed, with its split sealed to someone else: it
    // does not open.
    p.t1.state
        .keys
        .ensure_keys(Some("aggregation-service"))
        .await
        .expect("rotate");
    let (fresh, _) = p.pending().await.remove(0);
    let elsewhere = keys::RecipientKey::generate();
    let sealed_elsewhere = keys::seal(
        &elsewhere.public_key(),
        keys::HANDOVER_INFO,
        fresh.id.as_bytes(),
        &[7; 32],
    )
    .expect("seal");
    let resealed = serde_json::to_value(handover_request(&fresh, &sealed_elsewhere)).expect("json");
    let resealed = p.attested(&token, resealed).await;
    let (status, body) = p.post_handover(Some(&token), resealed).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("sealedSplit")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_of_a_key_the_type1_did_not_sign_is_refused_and_audited() {
    let p = pair(|_| {}).await;
    p.t1.state.keys.ensure_keys(None).await.expect("generate");
    let mut due = p.pending().await;
    let (record, sealed) = due.remove(0);
    // The Type-1's genuine signature, of another key.
    let of_another_key = due.remove(0).0.signature;
    let token = p.handover_token(&p.t2.base);
    let honest = serde_json::to_value(handover_request(&record, &sealed)).expect("json");
    let message = keys::public_key_signature_message(
        &record.id,
        record.creation_time,
        &B64.encode(&record.public_key),
    );

    // Signed by another signer, a signature of another key, garbage: each
    // refused with the peer's valid token, nothing stored, each audited.
    let stranger = keys::KeySigner::generate().expect("signer");
    let forgeries = [
        B64.encode(stranger.sign(&message)),
        of_another_key,
        "not base64!".to_owned(),
    ];
    for (n, forged) in forgeries.iter().enumerate() {
        let mut request = honest.clone();
        request["publicKeySignature"] = json!(forged);
        let (status, body) = p.post_handover(Some(&token), request).await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (400, Some("invalid_field"), Some("publicKeySignature")),
            "{body}"
        );
        assert!(p.t2.state.store.key(&record.id).await.is_err(), "stored");
        assert!(
            p.t2.state
                .store
                .splits(&record.id)
                .await
                .expect("splits")
                .is_empty()
        );
        let refused = p.t2.audit_of_kind("key.handover_refused").await;
        assert_eq!(refused.len(), n + 1);
        assert_eq!(refused[n]["details"]["reason"], "bad_signature");
        assert_eq!(refused[n]["details"]["keyId"], record.id.as_str());
    }
    assert!(p.t2.audit_of_kind("key.received").await.is_empty());

    // The Type-1's own handover of the same key goes through.
    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("handover"),
        (5, 0)
    );
    assert_eq!(p.t2.audit_of_kind("key.received").await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handover_whose_key_generator_is_not_admitted_stores_nothing_and_is_audited() {
    let p = pair(|_| {}).await;
    p.t1.state.keys.ensure_keys(None).await.expect("generate");
    let mut due = p.pending().await;
    let (record, sealed) = due.remove(0);
    let (other, other_sealed) = due.remove(0);
    let token = p.handover_token(&p.t2.base);
    let honest = serde_json::to_value(handover_request(&record, &sealed)).expect("json");
    let another_message =
        serde_json::to_value(handover_request(&other, &other_sealed)).expect("json");

    // A challenge an honest handover of another key used up.
    let used = p.challenge(&token).await;
    let accepted = Pair::with_evidence(&another_message, &used, None, |_| {});
    assert_eq!(p.post_handover(Some(&token), accepted).await.0, 200);

    let mut cases = vec![("key_generation_evidence_missing", honest.clone())];
    let wrong_image = |f: &mut ReportFields| f.measurement = [0x66; 48];
    let debuggable = |f: &mut ReportFields| f.policy |= 1 << 19;
    for (reason, bound_to, tweak) in [
        (
            "measurement_not_allowed",
            None,
            &wrong_image as &dyn Fn(&mut ReportFields),
        ),
        ("debug_not_allowed", None, &debuggable),
        (
            "report_data_mismatch",
            Some(&another_message),
            &|_: &mut ReportFields| {},
        ),
    ] {
        let challenge = p.challenge(&token).await;
        cases.push((
            reason,
            Pair::with_evidence(&honest, &challenge, bound_to, tweak),
        ));
    }
    cases.push((
        "challenge_unknown",
        Pair::with_evidence(&honest, &used, None, |_| {}),
    ));
    cases.push((
        "challenge_unknown",
        Pair::with_evidence(&honest, &[9; 32], None, |_| {}),
    ));

    for (n, (reason, request)) in cases.into_iter().enumerate() {
        let (status, body) = p.post_handover(Some(&token), request).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some(reason)),
            "{body}"
        );
        assert!(
            p.t2.state.store.key(&record.id).await.is_err(),
            "{reason}: stored"
        );
        assert!(
            p.t2.state
                .store
                .splits(&record.id)
                .await
                .expect("splits")
                .is_empty(),
            "{reason}: split B stored"
        );
        let refused = p.t2.audit_of_kind("key.handover_refused").await;
        assert_eq!(refused.len(), n + 1);
        let details = &refused[n]["details"];
        assert_eq!(details["reason"], reason);
        assert_eq!(details["keyId"], record.id.as_str());
        // Once the report verified, the refusal names what it attested.
        let verified = !matches!(
            reason,
            "key_generation_evidence_missing" | "report_data_mismatch"
        );
        assert_eq!(
            details["claims"]["measurement"].is_string(),
            verified,
            "{details}"
        );
    }
    assert_eq!(p.t2.audit_of_kind("key.received").await.len(), 1);

    // The honest Type-1 hands over every key, attested.
    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("handover"),
        (5, 0)
    );
    let received = p.t2.audit_of_kind("key.received").await;
    assert_eq!(received.len(), 5, "one replay answered, not stored twice");
    assert_eq!(
        received[4]["details"]["keyGenerator"]["measurement"],
        hex::encode(keyferry::lifecycle::DEV_KEY_GENERATOR_MEASUREMENT)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_generator_the_policy_does_not_admit_publishes_nothing_until_governance_admits_it() {
    use common::governance::{Member, ballot, member_configs, propose};
    let dir = tempfile::tempdir().expect("dir");
    let policy_file = dir.path().join("key-generation.json");
    let other_image = json!({"measurements": [hex::encode([0x77u8; 48])]});
    std::fs::write(&policy_file, other_image.to_string()).expect("write policy");
    let members = [Member::new("alice"), Member::new("bob")];
    let p = pair_with(
        |_| {},
        |c2| {
            c2.coordinator.key_generation_policy = Some(policy_file.clone());
            c2.admin.bootstrap_token = Some(true);
            c2.governance.members = member_configs(&members);
            c2.governance.threshold = Some(2);
        },
    )
    .await;
    p.t1.state.keys.ensure_keys(None).await.expect("generate");
    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("handover"),
        (0, 5)
    );
    assert!(published(&p.t1).await.is_empty());
    assert!(p.t2.state.store.keys(None).await.expect("keys").is_empty());
    let refused = p.t2.audit_of_kind("key.handover_refused").await;
    assert_eq!(refused.len(), 5);
    assert!(
        refused
            .iter()
            .all(|e| e["details"]["reason"] == "measurement_not_allowed"),
        "{refused:?}"
    );

    // The Type-2's members admit the key generator's image, two of two.
    let admitted = json!({"measurements":
        [hex::encode(keyferry::lifecycle::DEV_KEY_GENERATOR_MEASUREMENT)]});
    let proposal = propose(
        &p.t2,
        json!({"kind": "key_generation_policy", "policy": admitted}),
    )
    .await;
    let (id, digest) = (
        proposal["id"].as_str().expect("id"),
        proposal["digest"].as_str().expect("digest"),
    );
    for member in &members {
        let (status, body) = ballot(&p.t2, id, member.name, &member.sign(digest)).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(p.t2.audit_of_kind("gov.applied").await.len(), 1);

    // The Type-1 retried after its backoff: now every key is handed over.
    p.clock.advance(Duration::from_secs(600));
    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("handover"),
        (5, 0)
    );
    assert_eq!(published(&p.t1).await.len(), 5);
}

/// Moves `clock` to `offset` after the start of the next handover key
/// period (`coordinator.handover_key_rotation`, 30 days by default).
fn into_next_handover_period(clock: &ManualClock, offset: Duration) {
    let rotation = 30 * 86_400_000_u128;
    let now = clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let next = (now / rotation + 1) * rotation;
    let to = Duration::from_millis(u64::try_from(next).expect("ms")) + offset;
    clock.set(std::time::UNIX_EPOCH + to);
}

async fn announced_handover_keys(t2: &Broker) -> Vec<Value> {
    get(&format!("{}/v1/peer/keys", t2.base), &[])
        .await
        .json::<Value>()
        .await
        .expect("json")["handoverKeys"]
        .as_array()
        .expect("handoverKeys")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handovers_ride_a_handover_key_rotation_and_an_old_key_opens_nothing_after_its_overlap() {
    let p = pair(|_| {}).await;
    let before = announced_handover_keys(&p.t2).await;
    assert_eq!(before.len(), 1, "{before:?}");

    // Sealed to this period's key, handed over in the next period's
    // first minute: the old key still opens it.
    p.t1.state.keys.ensure_keys(None).await.expect("generate");
    into_next_handover_period(&p.clock, Duration::from_secs(60));
    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("round"),
        (5, 0)
    );
    let during = announced_handover_keys(&p.t2).await;
    assert_eq!(during.len(), 2, "{during:?}");
    assert_ne!(during[0]["key"], before[0]["key"], "a new current key");
    assert_eq!(during[1]["key"], before[0]["key"], "the old one, announced");
    assert!(during[1]["notAfter"].is_i64(), "{during:?}");
    // The Type-1 seals new splits to the new key.
    let peer_keys = get(&format!("{}/v1/peer/keys", p.t2.base), &[])
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(peer_keys["handoverKey"], during[0]["key"]);

    // Sealed now, handed over only after the next rotation's overlap
    // (1 day): nothing opens it, nothing is stored or published.
    let rotated =
        p.t1.state
            .keys
            .ensure_keys(Some("aggregation-service"))
            .await
            .expect("rotate");
    into_next_handover_period(&p.clock, Duration::from_secs(86_400 + 60));
    assert_eq!(announced_handover_keys(&p.t2).await.len(), 1);
    // The retired keys are gone from the Type-2's database.
    for kid in [&before[0]["kid"], &during[0]["kid"]] {
        let name = format!("handover_key/{}", kid.as_str().expect("kid"));
        assert!(
            p.t2.state
                .store
                .wrapped_secret(&name)
                .await
                .expect("read")
                .is_none(),
            "{name} is kept"
        );
    }
    assert_eq!(
        p.t1.state.keys.run_handovers().await.expect("round"),
        (0, 5)
    );
    // Refused for the split, not anything else.
    let (record, sealed) = p.pending().await.remove(0);
    let request = serde_json::to_value(handover_request(&record, &sealed)).expect("json");
    let token = p.handover_token(&p.t2.base);
    let request = p.attested(&token, request).await;
    let (status, body) = p.post_handover(Some(&token), request).await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "sealedSplit", "{body}");
    for id in &rotated {
        assert!(p.t2.state.store.key(id).await.is_err(), "{id} stored");
        assert_eq!(
            p.t1.state.store.key(id).await.expect("key").status,
            "pending"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recombined_splits_are_the_published_key_and_both_signatures_verify() {
    let p = pair(|_| {}).await;
    let ids = p.t1.state.keys.ensure_keys(None).await.expect("generate");
    p.t1.state.keys.run_handovers().await.expect("handover");
    let (kek1, kek2) = (p.t1.kek().await, p.t2.kek().await);
    let signer = |node: &Broker| {
        let base = node.base.clone();
        async move {
            let keys: Value = get(&format!("{base}/v1/peer/keys"), &[])
                .await
                .json()
                .await
                .expect("json");
            B64.decode(keys["signingKey"].as_str().expect("signing key"))
                .expect("base64")
        }
    };
    let (spki1, spki2) = (signer(&p.t1).await, signer(&p.t2).await);
    for id in &ids {
        let record = p.t1.state.store.key(id).await.expect("key");
        let a = kek1
            .unwrap(&p.t1.state.store.splits(id).await.expect("splits")[0].ciphertext)
            .await
            .expect("A");
        let b = kek2
            .unwrap(&p.t2.state.store.splits(id).await.expect("splits")[0].ciphertext)
            .await
            .expect("B");
        assert_ne!(a.as_slice(), b.as_slice());
        let keyset = keys::recombine(&a, &b).expect("recombine");
        let private = keys::PrivateKeyset::from_tink_bytes(&keyset).expect("a Tink keyset");
        assert_eq!(private.public_key().to_vec(), record.public_key);
        // Encrypt to the published key, decrypt with the recombined one.
        let ciphertext =
            keys::hybrid_encrypt(&private.public_key(), private.aead(), b"report", b"ctx")
                .expect("enc");
        assert_eq!(
            private
                .decrypt(&ciphertext, b"ctx")
                .expect("dec")
                .as_slice(),
            b"report"
        );

        let message = keys::public_key_signature_message(
            id,
            record.creation_time,
            &B64.encode(&record.public_key),
        );
        keys::verify_signature(
            &spki1,
            &message,
            &B64.decode(&record.signature).expect("b64"),
        )
        .expect("type1 signature");
        keys::verify_signature(
            &spki2,
            &message,
            &B64.decode(&record.peer_signature).expect("b64"),
        )
        .expect("type2 signature");
        assert!(
            keys::verify_signature(
                &spki2,
                &message,
                &B64.decode(&record.signature).expect("b64")
            )
            .is_err()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successors_rotate_in_and_old_keys_retire_then_disappear() {
    let p = pair(|_| {}).await;
    let first = p.t1.state.keys.ensure_keys(None).await.expect("generate");
    p.t1.state.keys.run_handovers().await.expect("handover");
    let day = Duration::from_secs(24 * 3600);

    // Cache-Control follows the earliest expiry, capped at a week.
    let url = format!(
        "{}/.well-known/aggregation-service/v1/public-keys",
        p.t1.base
    );
    let response = get(&url, &[]).await;
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=604800"
    );
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    assert_eq!(get(&url, &[("if-none-match", &etag)]).await.status(), 304);
    p.clock.advance(day);
    let response = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(response.status(), 304, "same keys, same ETag");
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=518400"
    );

    // Inside the refresh window the check generates five successors.
    p.clock.advance(5 * day + Duration::from_secs(60));
    let successors = p.t1.state.keys.ensure_keys(None).await.expect("generate");
    assert_eq!(successors.len(), 5);
    p.t1.state.keys.run_handovers().await.expect("handover");
    let response = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(response.status(), 200, "a new key set has a new ETag");
    let body: Value = response.json().await.expect("json");
    let ids: Vec<&str> = body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 5, "at most five keys");
    assert!(
        ids.iter().all(|id| successors.iter().any(|s| s == id)),
        "newest expiry first"
    );

    // Past the old keys' expiry they are retired: unpublished, splits kept.
    p.clock.advance(day);
    assert!(
        published(&p.t1)
            .await
            .iter()
            .all(|id| successors.contains(id))
    );
    assert_eq!(p.t1.state.keys.purge().await.expect("purge"), 0);
    assert!(
        !p.t1
            .state
            .store
            .splits(&first[0])
            .await
            .expect("splits")
            .is_empty()
    );
    // Past their TTL they are deleted on both sides.
    p.clock.advance(365 * day);
    assert!(p.t1.state.keys.purge().await.expect("purge") >= 5);
    assert!(matches!(
        p.t1.state.store.key(&first[0]).await,
        Err(keyferry::storage::StoreError::NotFound(_))
    ));
    assert!(p.t2.state.keys.purge().await.expect("purge") >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_takes_a_key_out_of_the_public_set_at_once() {
    let p = pair(|_| {}).await;
    let ids = p.t1.state.keys.ensure_keys(None).await.expect("generate");
    p.t1.state.keys.run_handovers().await.expect("handover");
    let token = p.t1.admin_token();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/admin/keys/{}/revoke", p.t1.base, ids[0]))
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), 200);
    let after = published(&p.t1).await;
    assert_eq!(after.len(), 4);
    assert!(!after.contains(&ids[0]));
    assert_eq!(
        p.t1.state.store.key(&ids[0]).await.expect("key").status,
        "revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_key_ids_are_bit_reversed_counters() {
    let p = pair(|c| {
        c.use_cases[0].key_id_format = keys::KeyIdFormat::Sequence;
        c.use_cases[0].aead = keys::Aead::Aes256Gcm;
    })
    .await;
    let mut ids = p.t1.state.keys.ensure_keys(None).await.expect("generate");
    ids.sort();
    // Counters 1..5 bit-reversed: 8…, 4…, C…, 2…, A… (sorted here).
    assert_eq!(
        ids,
        [
            "2000000000000000",
            "4000000000000000",
            "8000000000000000",
            "A000000000000000",
            "C000000000000000"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_postgres_database_generate_one_key_set() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let p = pair(|_| {}).await;
    let clock = p.clock.clone();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        // The Type-1's configuration and storage KEK, in a data directory
        // of its own, on the shared database.
        let replica = Broker::builder()
            .serve(Serve::NotServed)
            .config(p.t1.state.config.as_ref().clone())
            .storage_kek(p.t1.kek().await)
            .clock(clock.clone())
            .tweak(|c| c.storage.url = Some(db.url.clone()))
            .start()
            .await
            .expect("a replica on the test's database");
        replicas.push(replica);
    }
    let tasks: Vec<_> = replicas
        .iter()
        .map(|replica| {
            let keys = replica.state.keys.clone();
            tokio::spawn(async move { keys.ensure_keys(None).await.expect("generate").len() })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    assert_eq!(total, 5, "exactly one key set between the replicas");
    assert_eq!(db.store.keys(None).await.expect("keys").len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_a_is_wrapped_by_the_storage_kek_and_every_cloud_kek() {
    let p = pair(|c| {
        for cloud in ["aws", "gcp", "azure"] {
            let entry =
                keyferry::config::CloudConfig::with_kek(format!("local-kek://{cloud}-splits"));
            match cloud {
                "aws" => c.clouds.aws = Some(entry),
                "gcp" => c.clouds.gcp = Some(entry),
                _ => c.clouds.azure = Some(entry),
            }
        }
    })
    .await;
    let ids = p.t1.state.keys.ensure_keys(None).await.expect("generate");
    let keks = p.t1.data_dir().join("keks");
    let mut plaintexts = Vec::new();
    for (uri, name) in [
        ("local-kek://aws-splits", "aws-splits"),
        ("local-kek://azure-splits", "azure-splits"),
        ("local-kek://gcp-splits", "gcp-splits"),
        ("local-kek://storage", "storage"),
    ] {
        let splits = p.t1.state.store.splits(&ids[0]).await.expect("splits");
        let split = splits
            .iter()
            .find(|s| s.kek_uri == uri)
            .unwrap_or_else(|| panic!("no split under {uri}"));
        let kek = cloud_adapters::LocalKek::open_or_create(&keks, name)
            .await
            .expect("kek");
        plaintexts.push(
            kek.unwrap(&split.ciphertext)
                .await
                .expect("unwrap")
                .to_vec(),
        );
    }
    assert!(
        plaintexts.windows(2).all(|w| w[0] == w[1]),
        "every KEK wraps the same split A"
    );
}

/// The signed manifest checked without the project's verification code:
/// messages, key ids, RFC 9162 inclusion and tree-head signatures rebuilt
/// here from their specifications, with aws-lc-rs only for the primitives.
mod independent {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey};
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    fn sha256(parts: &[&[u8]]) -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    /// RFC 9162 §2.1.1's split: the largest power of two below `n` (> 1).
    fn split(n: usize) -> usize {
        1 << (usize::BITS - 1 - (n - 1).leading_zeros())
    }

    /// RFC 9162 §2.1.1: the root of `leaves` by recursive split.
    fn root_of(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            1 => leaves[0],
            n => {
                let k = split(n);
                sha256(&[&[1], &root_of(&leaves[..k]), &root_of(&leaves[k..])])
            }
        }
    }

    /// RFC 9162 §2.1.3.1 reversed: the root an inclusion path leads to,
    /// by recursion on the same split the tree is built with.
    fn root_from_path(index: usize, size: usize, leaf: [u8; 32], path: &[[u8; 32]]) -> [u8; 32] {
        if size == 1 {
            assert!(path.is_empty(), "a path longer than the tree is deep");
            return leaf;
        }
        let k = split(size);
        let (sibling, rest) = path
            .split_last()
            .expect("a path shorter than the tree is deep");
        if index < k {
            sha256(&[&[1], &root_from_path(index, k, leaf, rest), sibling])
        } else {
            sha256(&[
                &[1],
                sibling,
                &root_from_path(index - k, size - k, leaf, rest),
            ])
        }
    }

    #[test]
    fn the_recursive_path_agrees_with_the_recursive_root() {
        let leaves: Vec<[u8; 32]> = (0u8..7).map(|i| sha256(&[&[0], &[i]])).collect();
        // Paths built by hand from the tree ((0 1)(2 3))((4 5) 6).
        let node = |a: [u8; 32], b: [u8; 32]| sha256(&[&[1], &a, &b]);
        let path_of_5 = [
            leaves[4],
            leaves[6],
            node(node(leaves[0], leaves[1]), node(leaves[2], leaves[3])),
        ];
        assert_eq!(
            root_from_path(5, 7, leaves[5], &path_of_5),
            root_of(&leaves)
        );
        let path_of_6 = [
            node(leaves[4], leaves[5]),
            node(node(leaves[0], leaves[1]), node(leaves[2], leaves[3])),
        ];
        assert_eq!(
            root_from_path(6, 7, leaves[6], &path_of_6),
            root_of(&leaves)
        );
        assert_ne!(
            root_from_path(6, 7, leaves[5], &path_of_6),
            root_of(&leaves)
        );
    }

    fn b64(v: &Value) -> Vec<u8> {
        B64.decode(v.as_str().expect("a string")).expect("base64")
    }

    /// `keyId|creationTime|publicKeyMaterial`, the time as RFC 3339 with
    /// milliseconds (the Privacy Sandbox signature message).
    fn signed_message(key: &Value) -> Vec<u8> {
        let ms = key["creationTime"].as_i64().expect("creationTime");
        let time = jiff::Timestamp::from_millisecond(ms)
            .expect("time")
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        format!(
            "{}|{time}|{}",
            key["id"].as_str().expect("id"),
            key["key"].as_str().expect("key")
        )
        .into_bytes()
    }

    /// Checks one manifest key against the two coordinators' own
    /// documents; `bases` is (Type-1, Type-2). Returns an error naming the
    /// first problem.
    pub(super) async fn check(key: &Value, bases: [&str; 2]) -> Result<(), String> {
        let message = signed_message(key);
        for (role, base, kind) in [
            ("type1", bases[0], "key.activated"),
            ("type2", bases[1], "key.received"),
        ] {
            let signature = key["signatures"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["role"] == role))
                .ok_or(format!("no {role} signature"))?;
            if signature["alg"] != "ES256" || signature["coordinator"] != base {
                return Err(format!("{role}: {signature}"));
            }
            let published: Value = reqwest::get(signature["keysUrl"].as_str().expect("url"))
                .await
                .expect("keys")
                .json()
                .await
                .expect("json");
            let spki = b64(&published["signingKey"]);
            if signature["kid"] != URL_SAFE_NO_PAD.encode(sha256(&[&spki])) {
                return Err(format!("{role}: kid is not its published key's"));
            }
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &spki)
                .verify(&message, &b64(&signature["signature"]))
                .map_err(|_| format!("{role}: the signature does not verify"))?;

            let inclusion = key["inclusion"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["role"] == role))
                .ok_or(format!("no {role} inclusion"))?;
            let entry_text = inclusion["entry"].as_str().expect("entry");
            let entry: Value = serde_json::from_str(entry_text).expect("entry json");
            if entry["kind"] != kind || entry["details"]["keyId"] != key["id"] {
                return Err(format!("{role}: the entry is {entry}"));
            }
            let head = &inclusion["head"];
            let sth: Value = reqwest::get(format!("{base}/v1/audit/sth"))
                .await
                .expect("sth")
                .json()
                .await
                .expect("json");
            if head["publicKey"] != sth["publicKey"] {
                return Err(format!("{role}: proven under another log's key"));
            }
            let size = usize::try_from(head["treeSize"].as_u64().expect("size")).expect("size");
            let head_message = format!(
                "keyferry/v1/sth\n{{\"rootHash\":{},\"timestamp\":{},\"treeSize\":{size}}}",
                head["rootHash"], head["timestamp"]
            );
            UnparsedPublicKey::new(&ED25519, b64(&head["publicKey"]))
                .verify(head_message.as_bytes(), &b64(&head["signature"]))
                .map_err(|_| format!("{role}: the tree head's signature does not verify"))?;
            let index =
                usize::try_from(inclusion["leafIndex"].as_u64().expect("index")).expect("index");
            if entry["index"].as_u64() != Some(index as u64) {
                return Err(format!("{role}: the entry claims another position"));
            }
            let path: Vec<[u8; 32]> = inclusion["auditPath"]
                .as_array()
                .expect("path")
                .iter()
                .map(|h| b64(h).try_into().expect("32 bytes"))
                .collect();
            let leaf = sha256(&[&[0], entry_text.as_bytes()]);
            if root_from_path(index, size, leaf, &path).to_vec() != b64(&head["rootHash"]) {
                return Err(format!("{role}: the entry is not in the signed head"));
            }
        }
        Ok(())
    }
}

async fn keys_verify(args: &[&str]) -> std::process::Output {
    let mut cmd = common::process::keyferry();
    cmd.args(["keys", "verify"]).args(args);
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run keyferry")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signed_manifest_verifies_on_its_own_and_a_key_the_type2_did_not_sign_is_refused() {
    let p = pair(|_| {}).await;
    let ids = p.t1.state.keys.ensure_keys(None).await.expect("generate");
    p.t1.state.keys.run_handovers().await.expect("handover");
    let well_known = "/.well-known/aggregation-service/v1/public-keys";
    let unsigned: Value = get(&format!("{}{well_known}", p.t1.base), &[])
        .await
        .json()
        .await
        .expect("json");
    // The unsigned list is still exactly `{"keys":[{"id","key"}…]}`.
    for key in unsigned["keys"].as_array().expect("keys") {
        let mut members: Vec<&str> = key
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["id", "key"]);
    }
    let manifest = |base: String, path: &'static str| async move {
        let response = get(&format!("{base}{path}"), &[]).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("etag"));
        response.json::<Value>().await.expect("json")
    };
    let signed = manifest(p.t1.base.clone(), well_known_signed()).await;
    let keys = signed["keys"].as_array().expect("keys");
    let mut listed: Vec<&str> = keys.iter().map(|k| k["id"].as_str().expect("id")).collect();
    listed.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    for key in keys {
        independent::check(key, [&p.t1.base, &p.t2.base])
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", key["id"]));
    }
    // The `/v1alpha` twin serves the first use case; the Type-2 serves the
    // same keys with the same signatures and proofs of both logs.
    assert_eq!(
        manifest(p.t1.base.clone(), "/v1alpha/publicKeys:signed").await,
        signed
    );
    let from_type2 = manifest(p.t2.base.clone(), well_known_signed()).await;
    for key in from_type2["keys"].as_array().expect("keys") {
        independent::check(key, [&p.t1.base, &p.t2.base])
            .await
            .unwrap_or_else(|e| panic!("from the Type-2, {}: {e}", key["id"]));
    }

    let verified = keys_verify(&["--server", &p.t1.base, "--type2", &p.t2.base]).await;
    let stdout = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(stdout.matches("verified").count(), ids.len(), "{stdout}");
    // Pinned to another Type-2, every key is refused.
    let elsewhere = keys_verify(&["--server", &p.t1.base, "--type2", "http://127.0.0.1:1"]).await;
    assert!(!elsewhere.status.success());

    // The Type-1's database is made to serve one key with a Type-2
    // signature the Type-2 never made (its own signature copied over).
    let forged = &ids[0];
    p.t1.state
        .store
        .execute_raw(&format!(
            "UPDATE keys SET peer_signature = signature WHERE id = '{forged}'"
        ))
        .await
        .expect("forge");
    let signed = manifest(p.t1.base.clone(), well_known_signed()).await;
    let key = signed["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["id"] == forged.as_str())
        .expect("still listed");
    let refused = independent::check(key, [&p.t1.base, &p.t2.base]).await;
    assert_eq!(
        refused,
        Err("type2: the signature does not verify".to_owned())
    );
    let refused = keys_verify(&["--server", &p.t1.base, "--use-case", "aggregation-service"]).await;
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains(forged.as_str()))
        .expect("the forged key's line");
    assert!(
        line.contains("REFUSED: type2 signature does not verify"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("verified").count(),
        ids.len() - 1,
        "{stdout}"
    );
}

fn well_known_signed() -> &'static str {
    "/.well-known/aggregation-service/v1/public-keys:signed"
}
