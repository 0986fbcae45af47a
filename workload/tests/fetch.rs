//! Test double: two minimal Keyferry coordinators (axum) that implement the workload-facing
//! wire contract faithfully enough to drive a real fetch: RFC 8693 token exchange, `GET
//! /v1/peer/keys`, single-use attestation challenges, and attested release that verifies the
//! simulated SNP evidence and its `report_data` binding, then seals each split to the TEE key
//! with `keys::seal` (raw split, or wrapped by a `local-kek://` KEK as the workload cloud's
//! KMS). They are not the broker; the end-to-end test against real brokers lives elsewhere.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use attestation::simulated::SimulatedAmd;
use attestation::{Evidence, EvidenceWire, ReleaseBinding, Verifier};
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::{KeyWrapper, LocalKek};
use keys::{Aead, KeySigner, PublicKeyset};
use rand::RngCore as _;
use serde_json::{Value, json};
use workload::{
    Config, CoordinatorReason, Fetcher, KeyProblem, Profile, Role, Step, WorkloadError,
};

const SUBJECT_TOKEN: &str = "cloud-oidc-token-of-the-workload";
const MEASUREMENT: [u8; 48] = [0x11; 48];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unwrap {
    Broker,
    CloudKms,
}

/// One key as both coordinators know it.
struct TestKey {
    id: String,
    public_key_b64: String,
    keyset_json: String,
    creation_ms: i64,
    /// Split A (Type-1's), split B (Type-2's).
    splits: [Vec<u8>; 2],
    /// Type-1's signature, Type-2's.
    signatures: [String; 2],
}

fn make_keys(signers: [&KeySigner; 2]) -> Vec<TestKey> {
    [
        (
            "3c1d2f9e-0000-4000-8000-000000000001",
            Aead::ChaCha20Poly1305,
        ),
        ("3c1d2f9e-0000-4000-8000-000000000002", Aead::Aes256Gcm),
    ]
    .into_iter()
    .map(|(id, aead)| make_key(id, aead, signers))
    .collect()
}

fn make_key(id: &str, aead: Aead, signers: [&KeySigner; 2]) -> TestKey {
    let now_ms = 1_900_000_000_000; // ttl far in the future of the test run
    let generated = keys::generate(aead).expect("generate");
    let splits = keys::split(generated.private_keyset());
    let message = keys::public_key_signature_message(id, now_ms, &generated.public_key_base64());
    TestKey {
        id: id.to_owned(),
        public_key_b64: generated.public_key_base64(),
        keyset_json: generated.public_keyset_json().to_owned(),
        creation_ms: now_ms,
        splits: [splits.a.to_vec(), splits.b.to_vec()],
        signatures: signers.map(|s| B64.encode(s.sign(&message))),
    }
}

/// A key both coordinators make after the workload's first fetch: released once
/// `published`, and only when asked for by id (as a key newer than the last refresh is
/// reached).
struct LateKey {
    key: TestKey,
    published: AtomicBool,
}

struct Coordinator {
    /// 0 for Type-1, 1 for Type-2: the index of its split and of its `keyData` entry.
    index: usize,
    signing_key_der: Vec<u8>,
    credential: String,
    nonces: Mutex<HashSet<[u8; 32]>>,
    keys: Arc<Vec<TestKey>>,
    unwrap: Unwrap,
    kek: Option<Arc<LocalKek>>,
    verifier: Arc<Verifier>,
    allowed_measurement: [u8; 48],
    late: Arc<LateKey>,
    /// Releases answered, by both coordinators.
    releases: Arc<AtomicUsize>,
}

type Shared = Arc<Coordinator>;

fn api_error(
    status: StatusCode,
    reason: &str,
    attestation_reason: Option<&str>,
    message: &str,
) -> Response {
    let mut detail = json!({ "reason": reason, "domain": "keyferry", "metadata": {} });
    if let Some(a) = attestation_reason {
        detail["metadata"]["attestationReason"] = json!(a);
    }
    let body = json!({
        "code": wire::grpc_code(status.as_u16()),
        "message": message,
        "details": [detail],
    });
    (status, axum::Json(body)).into_response()
}

fn authorized(state: &Coordinator, headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {}", state.credential).as_str())
}

async fn token(State(state): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let oauth = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:token-exchange")
    {
        return oauth("unsupported_grant_type", "grant_type");
    }
    if form.get("subject_token_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:token-type:jwt")
    {
        return oauth("invalid_request", "subject_token_type");
    }
    if form.get("subject_token").map(String::as_str) != Some(SUBJECT_TOKEN) {
        return oauth("invalid_grant", "subject token refused: bad signature");
    }
    let scopes: HashSet<&str> = form
        .get("scope")
        .map(|s| s.split(' ').collect())
        .unwrap_or_default();
    if !scopes.contains("keys:release") {
        return oauth("invalid_scope", "keys:release not requested");
    }
    axum::Json(json!({
        "access_token": state.credential,
        "issued_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "keys:read keys:release",
    }))
    .into_response()
}

async fn peer_keys(State(state): State<Shared>) -> Response {
    axum::Json(json!({ "signingKey": B64.encode(&state.signing_key_der) })).into_response()
}

async fn challenge(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            None,
            "no valid credential",
        );
    }
    let mut nonce = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut nonce);
    state.nonces.lock().expect("lock").insert(nonce);
    axum::Json(json!({ "nonce": B64.encode(nonce), "expiresIn": 300 })).into_response()
}

fn b64_32(value: &Value) -> Option<[u8; 32]> {
    let bytes = B64.decode(value.as_str()?).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

async fn release(
    State(state): State<Shared>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if !authorized(&state, &headers) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            None,
            "no valid credential",
        );
    }
    let (Some(nonce), Some(tee)) = (b64_32(&body["nonce"]), b64_32(&body["teePublicKey"])) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            None,
            "nonce or teePublicKey",
        );
    };
    let Ok(wire) = serde_json::from_value::<EvidenceWire>(body["evidence"].clone()) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            None,
            "evidence",
        );
    };
    if !state.nonces.lock().expect("lock").remove(&nonce) {
        return api_error(
            StatusCode::FORBIDDEN,
            "ATTESTATION_FAILED",
            Some("nonce_unknown"),
            "nonce",
        );
    }
    let verified = Evidence::try_from(wire).and_then(|evidence| {
        state
            .verifier
            .verify(&evidence, &ReleaseBinding::new(&nonce, tee))
    });
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            let reason = e.reason().map(|r| r.code()).unwrap_or("evidence_invalid");
            return api_error(
                StatusCode::FORBIDDEN,
                "ATTESTATION_FAILED",
                Some(reason),
                &e.to_string(),
            );
        }
    };
    if verified.claims().measurement != state.allowed_measurement {
        return api_error(
            StatusCode::FORBIDDEN,
            "ATTESTATION_FAILED",
            Some("measurement_not_allowed"),
            "attestation refused: measurement is not allowed",
        );
    }
    state.releases.fetch_add(1, Ordering::SeqCst);
    // `keyIds` as the broker reads it: exactly those keys, an unknown one 404.
    let asked: Option<Vec<&str>> = body["keyIds"]
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_str).collect());
    let late = state
        .late
        .published
        .load(Ordering::SeqCst)
        .then_some(&state.late.key);
    let served: Vec<&TestKey> = match &asked {
        None => state.keys.iter().collect(),
        Some(ids) => {
            let known: Vec<&TestKey> = state.keys.iter().chain(late).collect();
            let mut served = Vec::new();
            for id in ids {
                match known.iter().find(|k| k.id == *id) {
                    Some(key) => served.push(*key),
                    None => {
                        return api_error(
                            StatusCode::NOT_FOUND,
                            "MISSING_KEY",
                            None,
                            "no such key",
                        );
                    }
                }
            }
            served
        }
    };
    let mut documents = Vec::new();
    for key in served {
        let split = &key.splits[state.index];
        let (content, kek_uri, inner) = match (state.unwrap, &state.kek) {
            (Unwrap::CloudKms, Some(kek)) => (
                "cloud-kms",
                kek.kek_uri().to_string(),
                kek.wrap(split).await.expect("wrap"),
            ),
            _ => ("broker", "local-kek://unused".to_owned(), split.clone()),
        };
        let sealed = keys::seal(&tee, keys::RELEASE_INFO, key.id.as_bytes(), &inner).expect("seal");
        let own = json!({
            "publicKeySignature": key.signatures[state.index],
            "keyEncryptionKeyUri": kek_uri,
            "keyMaterial": "",
            "sealedKeyMaterial": B64.encode(sealed),
            "sealedContent": content,
        });
        let other = json!({
            "publicKeySignature": key.signatures[1 - state.index],
            "keyEncryptionKeyUri": "",
            "keyMaterial": "",
        });
        let key_data = if state.index == 0 {
            vec![own, other]
        } else {
            vec![other, own]
        };
        documents.push(json!({
            "name": format!("encryptionKeys/{}", key.id),
            "encryptionKeyType": "MULTI_PARTY_HYBRID_EVEN_KEYSPLIT",
            "publicKeysetHandle": key.keyset_json,
            "publicKeyMaterial": key.public_key_b64,
            "creationTime": key.creation_ms.to_string(),
            "activationTime": key.creation_ms.to_string(),
            "expirationTime": (key.creation_ms + 7 * 86_400_000).to_string(),
            "ttlTime": key.creation_ms / 1000 + 365 * 86_400,
            "keyData": key_data,
        }));
    }
    axum::Json(json!({ "keys": documents })).into_response()
}

async fn spawn(state: Coordinator) -> String {
    let app = Router::new()
        .route("/v1/token", post(token))
        .route("/v1/peer/keys", get(peer_keys))
        .route("/v1/attestation/challenge", post(challenge))
        .route("/v1/encryptionKeys:release", post(release))
        .with_state(Arc::new(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A loopback URL where nothing listens.
async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

struct Setup {
    unwrap: Unwrap,
    type1_measurement: [u8; 48],
    type2_down: bool,
    subject_token: &'static str,
    pin_type1_key: Option<Vec<u8>>,
    /// Keys whose Type-2 signature is by a key the Type-2 does not publish:
    /// keys no Type-2 acknowledged.
    unacknowledged: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            unwrap: Unwrap::Broker,
            type1_measurement: MEASUREMENT,
            type2_down: false,
            subject_token: SUBJECT_TOKEN,
            pin_type1_key: None,
            unacknowledged: false,
        }
    }
}

struct Env {
    dir: tempfile::TempDir,
    config: Config,
    keys: Arc<Vec<TestKey>>,
    late: Arc<LateKey>,
    releases: Arc<AtomicUsize>,
}

fn simulated_amd() -> &'static SimulatedAmd {
    SimulatedAmd::shared().expect("simulated AMD")
}

async fn setup(s: Setup) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let amd = tokio::task::spawn_blocking(simulated_amd)
        .await
        .expect("generate CA");
    let ca_file = dir.path().join("simulated-amd.pem");
    std::fs::write(&ca_file, amd.to_pem().expect("pem").as_bytes()).expect("write CA");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, s.subject_token).expect("write token");
    let kek_dir = dir.path().join("keks");
    let kek = match s.unwrap {
        Unwrap::CloudKms => Some(Arc::new(
            LocalKek::open_or_create(&kek_dir, "workload-kms")
                .await
                .expect("kek"),
        )),
        Unwrap::Broker => None,
    };
    let verifier = Arc::new(Verifier::with_extra_roots(&[amd.ark_pem()]).expect("verifier"));
    let signers = [
        KeySigner::generate().expect("signer"),
        KeySigner::generate().expect("signer"),
    ];
    let stranger = KeySigner::generate().expect("signer");
    let type2_signer = if s.unacknowledged {
        &stranger
    } else {
        &signers[1]
    };
    let keys = Arc::new(make_keys([&signers[0], type2_signer]));
    let late = Arc::new(LateKey {
        key: make_key(
            "3c1d2f9e-0000-4000-8000-000000000003",
            Aead::ChaCha20Poly1305,
            [&signers[0], type2_signer],
        ),
        published: AtomicBool::new(false),
    });
    let releases = Arc::new(AtomicUsize::new(0));
    let coordinator = |index: usize, allowed_measurement| Coordinator {
        index,
        signing_key_der: signers[index].public_key_spki_der(),
        credential: format!("credential-of-coordinator-{index}"),
        nonces: Mutex::new(HashSet::new()),
        keys: Arc::clone(&keys),
        unwrap: s.unwrap,
        kek: kek.clone(),
        verifier: Arc::clone(&verifier),
        allowed_measurement,
        late: Arc::clone(&late),
        releases: Arc::clone(&releases),
    };
    let url1 = spawn(coordinator(0, s.type1_measurement)).await;
    let url2 = if s.type2_down {
        closed_url().await
    } else {
        spawn(coordinator(1, MEASUREMENT)).await
    };
    let pin = s
        .pin_type1_key
        .map(|k| format!("signing_key = \"{}\"\n", B64.encode(k)))
        .unwrap_or_default();
    let toml = format!(
        r#"
profile = "dev"
use_case = "aggregation-service"
cloud = "gcp"
request_timeout = "10s"

[coordinators.type1]
url = "{url1}"
{pin}
[coordinators.type2]
url = "{url2}"

[token]
source = "file"
path = "{token}"

[evidence]
source = "simulated"
ca_file = "{ca}"
measurement = "{measurement}"

[kms]
local_kek_dir = "{keks}"
"#,
        token = token_file.display(),
        ca = ca_file.display(),
        measurement = hex::encode(MEASUREMENT),
        keks = kek_dir.display(),
    );
    let config = Config::from_toml_str(&toml).expect("config");
    Env {
        dir,
        config,
        keys,
        late,
        releases,
    }
}

fn assert_decrypts(keys: &workload::KeySet, expected: &[TestKey]) {
    let mut ids = keys.key_ids();
    ids.sort();
    let mut want: Vec<String> = expected.iter().map(|k| k.id.clone()).collect();
    want.sort();
    assert_eq!(ids, want);
    for key in expected {
        let public = PublicKeyset::from_tink_json(&key.keyset_json).expect("public keyset");
        let ciphertext = public
            .encrypt(b"a report for aggregation", b"context info")
            .expect("encrypt");
        let plaintext = keys
            .decrypt(&key.id, &ciphertext, b"context info")
            .expect("decrypt");
        assert_eq!(plaintext.as_slice(), b"a report for aggregation");
        assert!(
            keys.decrypt(&key.id, &ciphertext, b"other context")
                .is_err()
        );
    }
}

#[tokio::test]
async fn both_coordinators_in_broker_mode_give_working_keys_that_export_in_dev() {
    let env = setup(Setup::default()).await;
    let keys = workload::fetch_once(&env.config).await.expect("fetch");
    assert_decrypts(&keys, &env.keys);

    let out = env.dir.path().join("export");
    let written = workload::export_keyset(&keys, &out, Profile::Dev).expect("export");
    assert_eq!(written.len(), 4);
    for path in &written {
        let mode = std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let first = &env.keys[0];
    let private = std::fs::read(out.join(format!("{}.keyset.bin", first.id))).expect("read");
    let parsed = keys::PrivateKeyset::from_tink_bytes(&private).expect("Tink keyset");
    assert_eq!(B64.encode(parsed.public_key()), first.public_key_b64);
    let summary = keys.summary().to_string();
    assert!(
        summary.contains(&first.id) && !summary.contains(&first.public_key_b64),
        "{summary}"
    );
}

/// A report encrypted to a key created after the last refresh: the first decryption fetches
/// that key by id from both coordinators, once however many reports arrive together; an id
/// neither has is asked for once, then answered as unknown from memory.
#[tokio::test]
async fn a_key_newer_than_the_last_refresh_is_fetched_by_id_once() {
    let env = setup(Setup::default()).await;
    let fetcher = Arc::new(Fetcher::from_config(&env.config).await.expect("fetcher"));
    let keys = workload::WorkloadKeys::start(fetcher, std::time::Duration::from_secs(3600))
        .await
        .expect("start");
    assert_eq!(env.releases.load(Ordering::SeqCst), 2, "one release each");
    let late = &env.late.key;
    assert!(!keys.key_ids().contains(&late.id));

    // The coordinators make a key; a batch of reports encrypted to it arrives.
    env.late.published.store(true, Ordering::SeqCst);
    let public = PublicKeyset::from_tink_json(&late.keyset_json).expect("public keyset");
    let reports: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            public
                .encrypt(format!("report {i}").as_bytes(), b"ctx")
                .expect("encrypt")
        })
        .collect();
    let batch: Vec<_> = reports
        .iter()
        .map(|report| {
            let (keys, id, report) = (Arc::clone(&keys), late.id.clone(), report.clone());
            tokio::spawn(async move {
                keys.decrypt_or_fetch(&id, &report, b"ctx")
                    .await
                    .map(|p| p.to_vec())
            })
        })
        .collect();
    for (i, task) in batch.into_iter().enumerate() {
        let plaintext = task.await.expect("join").expect("decrypt");
        assert_eq!(plaintext, format!("report {i}").as_bytes());
    }
    assert_eq!(
        env.releases.load(Ordering::SeqCst),
        4,
        "one fetch by id for the batch, at each coordinator"
    );
    assert!(keys.key_ids().contains(&late.id), "and the key is held");

    // An id no coordinator has: asked for once, then known to be missing.
    let unknown = "3c1d2f9e-0000-4000-8000-00000000dead";
    for _ in 0..3 {
        assert!(matches!(
            keys.decrypt_or_fetch(unknown, &reports[0], b"ctx").await,
            Err(WorkloadError::UnknownKey(id)) if id == unknown
        ));
    }
    let after_unknown = env.releases.load(Ordering::SeqCst);
    assert!(
        (5..=6).contains(&after_unknown),
        "one attempt (one or both coordinators answered): {after_unknown}"
    );
    // An id that is not a key id is never sent anywhere.
    assert!(
        keys.decrypt_or_fetch("../../etc", &reports[0], b"ctx")
            .await
            .is_err()
    );
    assert_eq!(env.releases.load(Ordering::SeqCst), after_unknown);
    // The held keys are untouched by the misses.
    assert_eq!(keys.key_ids().len(), 3);
}

#[tokio::test]
async fn both_coordinators_in_cloud_kms_mode_give_working_keys() {
    let env = setup(Setup {
        unwrap: Unwrap::CloudKms,
        ..Setup::default()
    })
    .await;
    let keys = workload::fetch_once(&env.config).await.expect("fetch");
    assert_decrypts(&keys, &env.keys);
}

#[tokio::test]
async fn a_pinned_signing_key_that_does_not_match_refuses_every_key() {
    let env = setup(Setup {
        pin_type1_key: Some(KeySigner::generate().expect("signer").public_key_spki_der()),
        ..Setup::default()
    })
    .await;
    let err = workload::fetch_once(&env.config)
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            WorkloadError::KeyRefused {
                problem: KeyProblem::BadSignature(Role::Type1),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_key_no_type2_acknowledged_is_refused() {
    let env = setup(Setup {
        unacknowledged: true,
        ..Setup::default()
    })
    .await;
    let err = workload::fetch_once(&env.config)
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            WorkloadError::KeyRefused {
                problem: KeyProblem::BadSignature(Role::Type2),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn one_coordinator_down_fails_the_fetch_naming_it_and_keeps_no_key() {
    let env = setup(Setup {
        type2_down: true,
        ..Setup::default()
    })
    .await;
    let fetcher = Arc::new(Fetcher::from_config(&env.config).await.expect("fetcher"));
    let err = fetcher.fetch().await.expect_err("fetch fails");
    assert_eq!(err.coordinator(), Some(Role::Type2), "{err}");
    assert!(
        matches!(
            &err,
            WorkloadError::Coordinator {
                // Exchange and signing key lookup run concurrently; either notices first.
                step: Step::TokenExchange | Step::SigningKey,
                reason: CoordinatorReason::Unreachable(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("Type-2 coordinator (http://127.0.0.1:"),
        "{err}"
    );
    // A workload cannot even start without both splits.
    let start = workload::WorkloadKeys::start(fetcher, std::time::Duration::from_secs(60)).await;
    assert!(start.is_err());
}

#[tokio::test]
async fn attestation_failed_carries_the_coordinators_reason() {
    let env = setup(Setup {
        type1_measurement: [0x22; 48],
        ..Setup::default()
    })
    .await;
    let err = workload::fetch_once(&env.config)
        .await
        .expect_err("refused");
    assert_eq!(err.coordinator(), Some(Role::Type1), "{err}");
    assert_eq!(
        err.coordinator_reason(),
        Some("ATTESTATION_FAILED"),
        "{err}"
    );
    assert_eq!(
        err.attestation_reason(),
        Some("measurement_not_allowed"),
        "{err}"
    );
    assert!(err.to_string().contains("key release failed"), "{err}");
}

#[tokio::test]
async fn a_refused_token_exchange_carries_the_oauth_error_and_not_the_token() {
    let env = setup(Setup {
        subject_token: "a-token-no-issuer-trusts",
        ..Setup::default()
    })
    .await;
    let err = workload::fetch_once(&env.config)
        .await
        .expect_err("refused");
    assert_eq!(err.coordinator_reason(), Some("invalid_grant"), "{err}");
    assert!(
        !err.to_string().contains("a-token-no-issuer-trusts"),
        "{err}"
    );
    assert!(
        !format!("{err:?}").contains("a-token-no-issuer-trusts"),
        "{err:?}"
    );
}
