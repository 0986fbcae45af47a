//! The Privacy Sandbox key endpoints (DESIGN §5.2) and re-wrapping: who gets
//! which wrapped split, in which document, and every refusal with its
//! reason. Keys are written straight into the store so each case controls
//! exactly what exists; the lifecycle that makes them is tested elsewhere.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Broker, Db};
use idp::IssuerKind;
use keyferry::config::{CloudConfig, UseCaseConfig};
use keyferry::storage::{KeyRecord, StoredSplit};
use reqwest::Method;
use serde_json::{Value, json};

const OPEN: &str = "open-use-case";
const ATTESTED: &str = "aggregation-service";

async fn broker(db: Db) -> Option<Broker> {
    let broker = Broker::start(db, |c| {
        let mut open = UseCaseConfig::aggregation_service();
        open.name = OPEN.into();
        open.require_attestation = false;
        c.use_cases.push(open);
        c.clouds.aws = Some(CloudConfig::with_kek("local-kek://aws-splits"));
        c.clouds.gcp = Some(CloudConfig::with_kek("local-kek://gcp-splits"));
    })
    .await?;
    for (id, use_cases) in [
        ("adtech-1", vec![OPEN, ATTESTED]),
        ("adtech-2", vec![ATTESTED]),
    ] {
        broker.insert_adtech(id, &use_cases).await;
    }
    Some(broker)
}

/// A key of `use_case` created `age` ago, with split `split` wrapped by
/// the storage KEK and by the KEKs of `clouds`.
async fn key(
    broker: &Broker,
    id: &str,
    use_case: &str,
    status: &str,
    age: Duration,
    split: &[u8],
    clouds: &[&str],
) {
    let state = &broker.state;
    let created = state.now_ms() - age.as_millis() as i64;
    let mut splits = vec![StoredSplit {
        kek_uri: state.storage_kek.kek_uri().to_string(),
        ciphertext: state.storage_kek.wrap(split).await.expect("wrap"),
    }];
    for (name, kek) in &state.cloud_keks {
        if clouds.contains(&name.as_str()) {
            splits.push(StoredSplit {
                kek_uri: kek.kek_uri().to_string(),
                ciphertext: kek.wrap(split).await.expect("wrap"),
            });
        }
    }
    let record = KeyRecord {
        id: id.into(),
        use_case: use_case.into(),
        status: status.into(),
        public_key: vec![7; 32],
        public_keyset: r#"{"primaryKeyId":1,"key":[]}"#.into(),
        creation_time: created,
        activation_time: created,
        expiration_time: created + 7 * 86_400_000,
        ttl_time: created + 14 * 86_400_000,
        signature: "c2lnLWE=".into(),
        peer_signature: "c2lnLWI=".into(),
        handover_attempts: 0,
        next_attempt_at: 0,
        revoked_at: None,
    };
    state
        .store
        .insert_received_key(
            &record,
            &splits,
            &keyferry::audit::AuditEvent::new(
                keyferry::audit::EventKind::KeyReceived,
                "test",
                serde_json::json!({}),
            )
            .outbox(0),
        )
        .await
        .expect("insert key");
}

fn credential(broker: &Broker, adtech: &str, cloud: IssuerKind, scopes: &[&str]) -> String {
    broker.credential(adtech, cloud, scopes, Duration::from_secs(600))
}

fn reason(body: &Value) -> &str {
    body["details"][0]["reason"].as_str().unwrap_or("")
}

async fn a_workload_gets_its_clouds_wrapped_split_in_the_privacy_sandbox_shape(db: Db) {
    let Some(broker) = broker(db).await else {
        return;
    };
    key(
        &broker,
        "k-1",
        OPEN,
        "active",
        Duration::from_secs(60),
        b"split-a-bytes-32-long-xxxxxxxxxx",
        &["aws", "gcp"],
    )
    .await;
    key(
        &broker,
        "k-old",
        OPEN,
        "active",
        Duration::from_secs(7200),
        b"old",
        &["aws"],
    )
    .await;
    let aws = credential(&broker, "adtech-1", IssuerKind::Aws, &["keys:read"]);

    let (status, body) = broker
        .call(Method::GET, "/v1alpha/encryptionKeys/k-1", Some(&aws), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "encryptionKeys/k-1");
    assert_eq!(
        body["encryptionKeyType"],
        "MULTI_PARTY_HYBRID_EVEN_KEYSPLIT"
    );
    assert!(body["creationTime"].is_string() && body["expirationTime"].is_string());
    assert!(body["ttlTime"].is_i64());
    assert_eq!(body["publicKeyMaterial"], B64.encode([7u8; 32]));
    let own = &body["keyData"][0];
    assert_eq!(own["keyEncryptionKeyUri"], "local-kek://aws-splits");
    assert_eq!(own["publicKeySignature"], "c2lnLWE=");
    assert_eq!(body["keyData"][1]["keyMaterial"], "");
    assert_eq!(body["keyData"][1]["publicKeySignature"], "c2lnLWI=");
    // The material is the AWS KEK's ciphertext of the split.
    let wrapped = B64
        .decode(own["keyMaterial"].as_str().expect("material"))
        .expect("b64");
    let aws_kek = &broker
        .state
        .cloud_keks
        .iter()
        .find(|(n, _)| *n == "aws")
        .expect("aws")
        .1;
    assert_eq!(
        aws_kek.unwrap(&wrapped).await.expect("unwrap").as_slice(),
        b"split-a-bytes-32-long-xxxxxxxxxx"
    );

    // The same key for a GCP workload comes wrapped by the GCP KEK.
    let gcp = credential(&broker, "adtech-1", IssuerKind::Gcp, &["keys:read"]);
    let (status, body) = broker
        .call(Method::GET, "/v1alpha/encryptionKeys/k-1", Some(&gcp), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["keyData"][0]["keyEncryptionKeyUri"],
        "local-kek://gcp-splits"
    );

    // :recent returns what is younger than maxAgeSeconds only.
    let (status, body) = broker
        .call(
            Method::GET,
            &format!("/v1alpha/encryptionKeys:recent?maxAgeSeconds=3600&useCase={OPEN}"),
            Some(&aws),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(names, ["encryptionKeys/k-1"]);

    let fetched = broker.audit_of_kind("keys.fetched").await;
    assert_eq!(fetched.len(), 3);
    assert_eq!(fetched[0]["actor"], "adtech:adtech-1");
    assert_eq!(fetched[0]["details"]["cloud"], "aws");
    assert_eq!(fetched[0]["details"]["keyIds"], json!(["k-1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status_and_reason() {
    let Some(broker) = broker(Db::Sqlite).await else {
        return;
    };
    key(
        &broker,
        "k-1",
        OPEN,
        "active",
        Duration::from_secs(60),
        b"s",
        &["aws"],
    )
    .await;
    key(
        &broker,
        "k-pending",
        OPEN,
        "pending",
        Duration::from_secs(60),
        b"s",
        &["aws"],
    )
    .await;
    key(
        &broker,
        "k-attested",
        ATTESTED,
        "active",
        Duration::from_secs(60),
        b"s",
        &["aws"],
    )
    .await;
    key(
        &broker,
        "k-revoked",
        OPEN,
        "active",
        Duration::from_secs(60),
        b"s",
        &["aws"],
    )
    .await;
    broker
        .state
        .keys
        .revoke("k-revoked", "test")
        .await
        .expect("revoke");
    let aws = credential(&broker, "adtech-1", IssuerKind::Aws, &["keys:read"]);
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("/v1alpha/encryptionKeys/k-1", None, 401, "UNAUTHENTICATED"),
        (
            "/v1alpha/encryptionKeys/k-1",
            Some("not.a.jwt".into()),
            401,
            "UNAUTHENTICATED",
        ),
        (
            "/v1alpha/encryptionKeys/k-1",
            Some(credential(
                &broker,
                "adtech-1",
                IssuerKind::Aws,
                &["keys:release"],
            )),
            403,
            "PERMISSION_DENIED",
        ),
        (
            "/v1alpha/encryptionKeys/k-1",
            Some(credential(
                &broker,
                "adtech-2",
                IssuerKind::Aws,
                &["keys:read"],
            )),
            403,
            "PERMISSION_DENIED",
        ),
        (
            "/v1alpha/encryptionKeys/k-1",
            Some(credential(
                &broker,
                "adtech-unknown",
                IssuerKind::Aws,
                &["keys:read"],
            )),
            403,
            "PERMISSION_DENIED",
        ),
        (
            "/v1alpha/encryptionKeys/k-1",
            Some(credential(
                &broker,
                "adtech-1",
                IssuerKind::Azure,
                &["keys:read"],
            )),
            403,
            "CLOUD_NOT_ENABLED",
        ),
        (
            "/v1alpha/encryptionKeys/k-1",
            Some(credential(
                &broker,
                "adtech-1",
                IssuerKind::Gcp,
                &["keys:read"],
            )),
            503,
            "UNAVAILABLE",
        ),
        (
            "/v1alpha/encryptionKeys/k-attested",
            Some(aws.clone()),
            403,
            "ATTESTATION_REQUIRED",
        ),
        (
            "/v1alpha/encryptionKeys/k-revoked",
            Some(aws.clone()),
            404,
            "KEY_REVOKED",
        ),
        (
            "/v1alpha/encryptionKeys/k-pending",
            Some(aws.clone()),
            404,
            "MISSING_KEY",
        ),
        (
            "/v1alpha/encryptionKeys/nope",
            Some(aws.clone()),
            404,
            "MISSING_KEY",
        ),
        (
            "/v1alpha/encryptionKeys/a%2F..%2Fb",
            Some(aws.clone()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1alpha/encryptionKeys:recent?maxAgeSeconds=abc",
            Some(aws.clone()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1alpha/encryptionKeys:recent",
            Some(aws.clone()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1alpha/encryptionKeys:recent?maxAgeSeconds=60",
            Some(aws.clone()),
            403,
            "ATTESTATION_REQUIRED",
        ),
        (
            "/v1alpha/encryptionKeys:recent?maxAgeSeconds=60&useCase=nope",
            Some(aws.clone()),
            400,
            "INVALID_ARGUMENT",
        ),
    ];
    for (path, token, status, expected) in cases {
        let (got, body) = broker.call(Method::GET, path, token.as_deref(), None).await;
        assert_eq!((got, reason(&body)), (status, expected), "{path}: {body}");
        // The gRPC code of the status, as the Privacy Sandbox clients read it.
        assert_eq!(body["code"], wire::grpc_code(status), "{path}: {body}");
        assert_eq!(body["details"][0]["domain"], "keyferry", "{path}: {body}");
        assert_error_proto(&body);
    }
    // Nothing refused was audited as a fetch.
    assert!(broker.audit_of_kind("keys.fetched").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_a_cloud_rewraps_live_keys_from_the_storage_copy() {
    let Some(broker) = broker(Db::Sqlite).await else {
        return;
    };
    key(
        &broker,
        "k-1",
        OPEN,
        "active",
        Duration::from_secs(60),
        b"split-one",
        &["aws"],
    )
    .await;
    key(
        &broker,
        "k-2",
        OPEN,
        "pending",
        Duration::from_secs(60),
        b"split-two",
        &["aws"],
    )
    .await;
    key(
        &broker,
        "k-gone",
        OPEN,
        "active",
        Duration::from_secs(60),
        b"x",
        &[],
    )
    .await;
    broker
        .state
        .keys
        .revoke("k-gone", "test")
        .await
        .expect("revoke");
    let gcp = credential(&broker, "adtech-1", IssuerKind::Gcp, &["keys:read"]);
    let (status, _) = broker
        .call(Method::GET, "/v1alpha/encryptionKeys/k-1", Some(&gcp), None)
        .await;
    assert_eq!(status, 503, "no GCP split yet");

    let (status, body) = broker
        .admin(
            Method::POST,
            "/v1/admin/keys/rewrap",
            Some(json!({"cloud": "gcp"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<&str> = body["rewrapped"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["keyId"].as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["k-1", "k-2"], "live keys only, not the revoked one");

    let (status, body) = broker
        .call(Method::GET, "/v1alpha/encryptionKeys/k-1", Some(&gcp), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let wrapped = B64
        .decode(
            body["keyData"][0]["keyMaterial"]
                .as_str()
                .expect("material"),
        )
        .expect("b64");
    let gcp_kek = &broker
        .state
        .cloud_keks
        .iter()
        .find(|(n, _)| *n == "gcp")
        .expect("gcp")
        .1;
    assert_eq!(
        gcp_kek.unwrap(&wrapped).await.expect("unwrap").as_slice(),
        b"split-one"
    );

    // Idempotent: nothing left to do, for one cloud or all.
    let (_, again) = broker
        .admin(Method::POST, "/v1/admin/keys/rewrap", Some(json!({})))
        .await;
    assert_eq!(again["rewrapped"], json!([]));
    let (status, body) = broker
        .admin(
            Method::POST,
            "/v1/admin/keys/rewrap",
            Some(json!({"cloud": "azure"})),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("cloud")));
    assert_eq!(broker.audit_of_kind("key.rewrapped").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_stops_working_when_its_mapping_is_removed() {
    let Some(broker) = broker(Db::Sqlite).await else {
        return;
    };
    key(
        &broker,
        "k-1",
        OPEN,
        "active",
        Duration::from_secs(60),
        b"split-a-bytes-32-long-xxxxxxxxxx",
        &["aws"],
    )
    .await;
    let aws = credential(&broker, "adtech-1", IssuerKind::Aws, &["keys:read"]);
    let fetch = || broker.call(Method::GET, "/v1alpha/encryptionKeys/k-1", Some(&aws), None);
    assert_eq!(fetch().await.0, 200);

    // The credential is valid for ten more minutes, but its mapping is gone:
    // it used to keep working until it expired.
    broker
        .state
        .store
        .delete_mapping("m-adtech-1", |m| {
            keyferry::audit::AuditEvent::new(
                keyferry::audit::EventKind::MappingRemoved,
                "test",
                serde_json::json!({"id": m.id}),
            )
            .outbox(0)
        })
        .await
        .expect("delete");
    let (status, body) = fetch().await;
    assert_eq!(
        (status, reason(&body)),
        (403, "PERMISSION_DENIED"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("mapping")),
        "{body}"
    );
}

keyferry::on_both_backends!(
    db:
    a_workload_gets_its_clouds_wrapped_split_in_the_privacy_sandbox_shape,
);

/// The Privacy Sandbox `ErrorResponse` as its Java fetcher parses it:
/// exactly `code`, `message`, `details[{reason, domain, metadata}]`, with a
/// non-zero code, a message, and string metadata.
fn assert_error_proto(body: &Value) {
    let members = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(members(body), ["code", "details", "message"], "{body}");
    assert_ne!(body["code"].as_i64(), Some(0), "{body}");
    assert!(
        !body["message"].as_str().expect("message").is_empty(),
        "{body}"
    );
    for detail in body["details"].as_array().expect("details") {
        assert_eq!(members(detail), ["domain", "metadata", "reason"], "{body}");
        let metadata = detail["metadata"].as_object().expect("metadata");
        assert!(metadata.values().all(Value::is_string), "{body}");
    }
}
