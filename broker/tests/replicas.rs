//! Replicas: two and three Type-1 brokers on one PostgreSQL database
//! behind one public URL (as behind a load balancer), with one Type-2,
//! serving at once: token exchanges, challenges and attested releases,
//! onboarding, scheduled generation and rotation.
//!
//! Checked: one key set per period whichever replicas generate; a whole set
//! per operator rotation, each key handed over once and published alike by
//! every replica; each nonce released once, whichever replica it reaches; a
//! contested change made once; one audit order, without a gap, that
//! verifies.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::KeyWrapper;
use common::Broker;
use common::tee::SimulatedTee;
use futures::future::join_all;
use idp::ManualClock;
use keyferry::config::{CloudConfig, Config, IssuerKind, Role};
use keyferry::testing::TestDb;
use keys::RecipientKey;
use reqwest::Method;
use serde_json::{Value, json};
use test_support::NodeIdp;

const AUDIENCE: &str = "keyferry-replicas";
const SUBJECT: &str = "112233445566778899001";

struct Deployment {
    replicas: Vec<Broker>,
    type2: Broker,
    clock: ManualClock,
    idp: NodeIdp,
    tee: Arc<SimulatedTee>,
    _data_dirs: Vec<tempfile::TempDir>,
    /// Dropped last: it drops the database.
    _db: TestDb,
}

/// What every replica shares: the database, the public URL, the peer, the
/// trusted issuer and the attestation settings.
fn shared(c: &mut Config, db_url: &str, public: &str, peer: &str, idp: &str, tee: &SimulatedTee) {
    c.storage.url = Some(db_url.into());
    c.server.public_url = Some(public.parse().expect("url"));
    c.coordinator.peer_url = Some(peer.into());
    c.clouds.gcp = Some(CloudConfig::with_kek("local-kek://gcp-splits"));
    c.issuers.push(common::issuer(
        "workload-idp",
        IssuerKind::Gcp,
        idp,
        AUDIENCE,
    ));
    tee.configure(c);
}

async fn deployment(n: usize, tweak: impl Fn(&mut Config)) -> Option<Deployment> {
    let db = TestDb::postgres().await?;
    let idp = NodeIdp::start().await?;
    let tee = Arc::new(SimulatedTee::new());
    let clock = ManualClock::starting_now();
    let bind = || async {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
    };
    let listeners = {
        let mut l = Vec::new();
        for _ in 0..n {
            l.push(bind().await);
        }
        l
    };
    // Replica 0's address stands for the load balancer's.
    let public = format!("http://{}", listeners[0].local_addr().expect("addr"));
    let l2 = bind().await;
    let peer = format!("http://{}", l2.local_addr().expect("addr"));
    let type2 = Broker::builder()
        .listener(l2)
        .clock(clock.clone())
        .tweak(|c| {
            c.coordinator.name = "b".into();
            c.coordinator.role = Role::Type2;
            c.coordinator.peer_issuer = Some(public.parse().expect("url"));
            c.admin.bootstrap_token = Some(false);
        })
        .start_sqlite()
        .await;

    let url = db.url.clone();
    let mut replicas: Vec<Broker> = Vec::new();
    let mut kek: Option<Arc<dyn KeyWrapper>> = None;
    let mut data_dirs = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let mut builder = Broker::builder().listener(listener).clock(clock.clone());
        if let (Some(kek), Some(first)) = (&kek, replicas.first()) {
            // The first replica's storage KEK and bootstrap token (its
            // file, which a later replica finds valid and keeps).
            let dir = tempfile::tempdir().expect("dir");
            std::fs::copy(first.token_file(), dir.path().join("admin-token")).expect("token");
            builder = builder.storage_kek(kek.clone()).data_dir(dir.path());
            data_dirs.push(dir);
        }
        let replica = builder
            .tweak(|c| {
                shared(c, &url, &public, &peer, &idp.issuer, &tee);
                tweak(c);
            })
            .start()
            .await
            .expect("a replica on the shared database");
        if i == 0 {
            kek = Some(replica.state.storage_kek.clone());
        }
        replicas.push(replica);
    }
    Some(Deployment {
        replicas,
        type2,
        clock,
        idp,
        tee,
        _data_dirs: data_dirs,
        _db: db,
    })
}

impl Deployment {
    fn admin_token(&self) -> &str {
        self.replicas[0].admin_token()
    }

    /// `path` on replica `i` as the bootstrap admin.
    async fn admin(&self, i: usize, method: Method, path: &str, body: Value) -> (u16, Value) {
        self.replicas[i]
            .call(method, path, Some(self.admin_token()), Some(body))
            .await
    }

    /// A token exchange on replica `i`: the credential.
    async fn exchange(&self, i: usize, subject_token: &str) -> String {
        let replica = &self.replicas[i];
        let response = replica
            .client
            .post(format!("{}/v1/token", replica.base))
            .form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", subject_token),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ])
            .send()
            .await
            .expect("token call");
        assert_eq!(response.status(), 200, "exchange on replica {i}");
        let body: Value = response.json().await.expect("JSON");
        body["access_token"]
            .as_str()
            .expect("credential")
            .to_owned()
    }

    /// Onboards `acme` (through replica 0) with the test IdP's GCP workload
    /// (through the last replica); a subject token of that workload.
    async fn onboard_acme(&mut self) -> String {
        let n = self.replicas.len();
        let (status, body) = self
            .admin(
                0,
                Method::POST,
                "/v1/admin/adtechs",
                json!({"id": "acme", "name": "Acme",
                "sites": ["https://acme.example"], "useCases": ["aggregation-service"]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let issuer = self.idp.issuer.clone();
        let (status, body) = self
            .admin(
                n - 1,
                Method::POST,
                "/v1/admin/adtechs/acme/identities",
                json!({"cloud": "gcp",
                "issuer": issuer, "subject": SUBJECT, "conditions": []}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        self.idp
            .token(common::gcp_workload_claims(SUBJECT, AUDIENCE))
            .await
    }

    /// Every replica runs `ensure_keys` at once; the ids they generated.
    async fn generate_everywhere(&self) -> Vec<String> {
        let tasks: Vec<_> = self
            .replicas
            .iter()
            .map(|r| {
                let keys = r.state.keys.clone();
                tokio::spawn(async move { keys.ensure_keys(None).await.expect("generate") })
            })
            .collect();
        let mut ids = Vec::new();
        for task in tasks {
            ids.extend(task.await.expect("task"));
        }
        // Every replica hands over what is pending, at once too.
        let tasks: Vec<_> = self
            .replicas
            .iter()
            .map(|r| {
                let keys = r.state.keys.clone();
                tokio::spawn(async move { keys.run_handovers().await.expect("handover") })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        ids.sort();
        ids
    }
}

/// One workload's round on replica `i`: a token exchange, a challenge, and
/// a release of that nonce sent to every replica at once. Returns how many
/// of the releases were answered 200.
async fn workload_round(d: &Deployment, i: usize, subject_token: &str, key_id: &str) -> usize {
    let n = d.replicas.len();
    let replica = &d.replicas[i];
    let credential = d.exchange(i, subject_token).await;

    let (status, body) = replica
        .call(
            Method::POST,
            "/v1/attestation/challenge",
            Some(&credential),
            None,
        )
        .await;
    assert_eq!(status, 200, "challenge on replica {i}: {body}");
    let nonce = B64
        .decode(body["nonce"].as_str().expect("nonce"))
        .expect("b64");

    let tee = RecipientKey::generate();
    let request = json!({
        "nonce": B64.encode(&nonce),
        "teePublicKey": B64.encode(tee.public_key()),
        "evidence": d.tee.evidence(&nonce, &tee.public_key(), |_| {}),
        "keyIds": [key_id],
    });
    let releases = (0..n).map(|j| {
        let (credential, request) = (credential.clone(), request.clone());
        async move {
            d.replicas[j]
                .call(
                    Method::POST,
                    "/v1/encryptionKeys:release",
                    Some(&credential),
                    Some(request),
                )
                .await
        }
    });
    let answers = join_all(releases).await;
    let mut released = 0;
    for (status, body) in answers {
        match status {
            200 => released += 1,
            // The same nonce again, from whichever replica: refused.
            s if (400..500).contains(&s) => {}
            s => panic!("a release answered {s}: {body}"),
        }
    }
    released
}

async fn replicas_under_load(n: usize) {
    let Some(mut d) = deployment(n, |_| {}).await else {
        return;
    };
    // Onboarding through the replicas.
    let subject_token = d.onboard_acme().await;

    // One key set, whichever replicas generate at once.
    let first = d.generate_everywhere().await;
    assert_eq!(first.len(), 5, "one key set between {n} replicas");
    let key_id = first[0].clone();

    // Load: workloads on every replica, onboarding on every replica, and
    // one ad tech every replica tries to create.
    let d = &d;
    let rounds = (0..4 * n).map(|k| workload_round(d, k % n, &subject_token, &key_id));
    let onboarding = (0..3 * n).map(|k| async move {
        let id = if k % 3 == 0 {
            "contested".to_owned()
        } else {
            format!("r{}-{k}", k % n)
        };
        d.admin(
            k % n,
            Method::POST,
            "/v1/admin/adtechs",
            json!({"id": id, "name": id,
            "sites": [format!("https://{id}.example")], "useCases": ["aggregation-service"]}),
        )
        .await
        .0
    });
    // And an operator's rotation on every replica at once: each is a
    // request of its own, so each makes a whole set.
    let rotations = (0..n).map(|i| d.admin(i, Method::POST, "/v1/admin/keys/rotate", json!({})));
    let (released, created, rotated) =
        tokio::join!(join_all(rounds), join_all(onboarding), join_all(rotations));
    assert!(
        released.iter().all(|&r| r == 1),
        "each nonce released once: {released:?}"
    );
    assert!(created.iter().all(|&s| s == 201 || s == 409), "{created:?}");
    assert_eq!(
        created.iter().filter(|&&s| s == 409).count(),
        n - 1,
        "contested: one wins"
    );

    let mut rotated_ids = BTreeSet::new();
    for (status, body) in &rotated {
        assert_eq!(*status, 200, "{body}");
        let ids = body["generated"].as_array().expect("generated");
        assert_eq!(ids.len(), 5, "a whole set per rotation: {body}");
        rotated_ids.extend(ids.iter().map(|id| id.as_str().expect("id").to_owned()));
    }
    assert_eq!(rotated_ids.len(), 5 * n, "no key id twice");
    // Handed over once each (a rotation hands over before it answers; a
    // handover that lost a race is retried by the next round).
    d.generate_everywhere().await;
    for id in &rotated_ids {
        let key = d.replicas[0].state.store.key(id).await.expect("stored");
        assert_eq!(key.status, "active", "{id}");
        assert_eq!(
            d.type2
                .state
                .store
                .splits(id)
                .await
                .expect("splits B")
                .len(),
            1,
            "{id}: split B, once"
        );
    }
    let entries = d.replicas[n - 1].audit_of_kind("keys.rotated").await;
    assert_eq!(entries.len(), n, "one entry per rotation");
    let audited: BTreeSet<String> = entries
        .iter()
        .flat_map(|e| e["details"]["keyIds"].as_array().expect("ids").clone())
        .map(|id| id.as_str().expect("id").to_owned())
        .collect();
    assert_eq!(audited, rotated_ids);
    // Every replica publishes the same, newest keys.
    let mut published = Vec::new();
    for replica in &d.replicas {
        let (status, body) = replica
            .call(
                Method::GET,
                "/.well-known/aggregation-service/v1/public-keys",
                None,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        published.push(body["keys"].clone());
    }
    assert!(published.windows(2).all(|w| w[0] == w[1]), "{published:?}");

    // The next period: replicas generate its set once.
    let validity = d.replicas[0].state.config.keys.validity;
    let window = d.replicas[0].state.config.keys.refresh_window;
    d.clock.advance(validity - window + Duration::from_secs(60));
    let second = d.generate_everywhere().await;
    assert_eq!(second.len(), 5, "one successor set between {n} replicas");

    // One audit order, whichever replica wrote.
    let size = d.replicas[n - 1].assert_log_verifies().await;
    let released = d.replicas[0].audit_of_kind("keys.released").await;
    assert_eq!(released.len(), 4 * n, "one entry per release");
    let contested = d.replicas[0]
        .audit_of_kind("adtech.created")
        .await
        .into_iter()
        .filter(|e| e["details"]["id"] == "contested")
        .count();
    assert_eq!(contested, 1);
    assert!(size > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_database_under_load_keep_one_key_set_nonce_use_and_audit_order() {
    replicas_under_load(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_database_under_load_keep_one_key_set_nonce_use_and_audit_order() {
    replicas_under_load(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workloads_challenges_are_limited_across_replicas_not_per_replica() {
    let Some(mut d) = deployment(2, |c| c.attestation.challenges_per_minute = 3).await else {
        return;
    };
    let subject_token = d.onboard_acme().await;
    let credential = d.exchange(0, &subject_token).await;
    let mut statuses = Vec::new();
    for k in 0..6 {
        let (status, _) = d.replicas[k % 2]
            .call(
                Method::POST,
                "/v1/attestation/challenge",
                Some(&credential),
                None,
            )
            .await;
        statuses.push(status);
    }
    // Three a minute in all, not three per replica.
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
}
