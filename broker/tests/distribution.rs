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
    broker
        .insert_key(
            "k-1",
            OPEN,
            "active",
            Duration::from_secs(60),
            b"split-a-bytes-32-long-xxxxxxxxxx",
            &["aws", "gcp"],
        )
        .await;
    broker
        .insert_key(
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
    // The other coordinator's entry: its signature, and the other two string
    // members printed with their default values, as the C++ fetcher requires
    // of every entry (`private_key_fetcher_provider_utils.cc`).
    assert_eq!(
        body["keyData"][1],
        json!({"publicKeySignature": "c2lnLWI=", "keyEncryptionKeyUri": "", "keyMaterial": ""})
    );
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

    // The whole int32 range, as the coordinator answers it: 0 is nothing
    // recent, 2147483647 every key still served.
    for (max_age, expected) in [
        ("0", vec![]),
        (
            "2147483647",
            vec!["encryptionKeys/k-1", "encryptionKeys/k-old"],
        ),
    ] {
        let (status, body) = broker
            .call(
                Method::GET,
                &format!("/v1alpha/encryptionKeys:recent?maxAgeSeconds={max_age}&useCase={OPEN}"),
                Some(&aws),
                None,
            )
            .await;
        assert_eq!(status, 200, "{max_age}: {body}");
        let names: Vec<&str> = body["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .filter_map(|k| k["name"].as_str())
            .collect();
        assert_eq!(names, expected, "{max_age}");
    }

    // Every answered fetch is audited, the empty one too.
    let fetched = broker.audit_of_kind("keys.fetched").await;
    assert_eq!(fetched.len(), 5);
    assert_eq!(fetched[0]["actor"], "adtech:adtech-1");
    assert_eq!(fetched[0]["details"]["cloud"], "aws");
    assert_eq!(fetched[0]["details"]["keyIds"], json!(["k-1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_status_and_reason() {
    let Some(broker) = broker(Db::Sqlite).await else {
        return;
    };
    broker
        .insert_key(
            "k-1",
            OPEN,
            "active",
            Duration::from_secs(60),
            b"s",
            &["aws"],
        )
        .await;
    broker
        .insert_key(
            "k-pending",
            OPEN,
            "pending",
            Duration::from_secs(60),
            b"s",
            &["aws"],
        )
        .await;
    broker
        .insert_key(
            "k-attested",
            ATTESTED,
            "active",
            Duration::from_secs(60),
            b"s",
            &["aws"],
        )
        .await;
    broker
        .insert_key(
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
            "/v1alpha/encryptionKeys:recent?maxAgeSeconds=-1",
            Some(aws.clone()),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1alpha/encryptionKeys:recent?maxAgeSeconds=2147483648",
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
    let mut answered = Vec::new();
    for (path, token, status, expected) in cases {
        let (got, body) = broker.call(Method::GET, path, token.as_deref(), None).await;
        assert_eq!((got, reason(&body)), (status, expected), "{path}: {body}");
        // The gRPC code of the status, as the Privacy Sandbox clients read it.
        assert_eq!(body["code"], wire::grpc_code(status), "{path}: {body}");
        assert_eq!(body["details"][0]["domain"], "keyferry", "{path}: {body}");
        assert_error_proto(&body);
        answered.push(json!({"status": status, "body": body}));
    }
    // What the framework refuses on the key API's paths is an ErrorResponse
    // too: a wrong method, an unknown route, an oversized release body.
    let raw = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        let allow = response.headers().get("allow").cloned();
        (status, allow, response.json::<Value>().await.expect("JSON"))
    };
    let base = &broker.base;
    for (request, status, expected) in [
        (
            broker
                .client
                .post(format!("{base}/v1alpha/encryptionKeys/k-1")),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (
            broker
                .client
                .get(format!("{base}/v1alpha/encryptionKeys/k-1/more")),
            404,
            "NOT_FOUND",
        ),
        (
            broker
                .client
                .post(format!("{base}/v1/encryptionKeys:release"))
                .bearer_auth(&aws)
                .header("content-type", "application/json")
                .body(vec![b' '; 128 * 1024]),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ] {
        let (got, allow, body) = raw(request).await;
        assert_eq!((got, reason(&body)), (status, expected), "{body}");
        assert_eq!(body["code"], wire::grpc_code(status), "{body}");
        assert_error_proto(&body);
        if status == 405 {
            assert!(allow.is_some(), "405 keeps its Allow header");
        }
        answered.push(json!({"status": status, "body": body}));
    }

    // An expired credential (the clock moves, so it comes last).
    let expiring = broker.credential(
        "adtech-1",
        IssuerKind::Aws,
        &["keys:read"],
        Duration::from_secs(60),
    );
    broker.clock().advance(Duration::from_secs(3600));
    let (status, body) = broker
        .call(
            Method::GET,
            "/v1alpha/encryptionKeys/k-1",
            Some(&expiring),
            None,
        )
        .await;
    assert_eq!((status, reason(&body)), (401, "UNAUTHENTICATED"), "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{body}"
    );
    answered.push(json!({"status": status, "body": body}));
    // And through protobuf's own parser, with the proto's schema and unknown
    // fields refused, as the Java fetcher parses them.
    if let Some(parsed) = common::python::parse_error_bodies(&answered) {
        assert!(
            parsed.contains("401 UNAUTHENTICATED UNAUTHENTICATED"),
            "{parsed}"
        );
        assert!(parsed.contains("404 NOT_FOUND KEY_REVOKED"), "{parsed}");
        assert!(parsed.contains("503 UNAVAILABLE UNAVAILABLE"), "{parsed}");
    }
    // Nothing refused was audited as a fetch.
    assert!(broker.audit_of_kind("keys.fetched").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_a_cloud_rewraps_live_keys_from_the_storage_copy() {
    let Some(broker) = broker(Db::Sqlite).await else {
        return;
    };
    broker
        .insert_key(
            "k-1",
            OPEN,
            "active",
            Duration::from_secs(60),
            b"split-one",
            &["aws"],
        )
        .await;
    broker
        .insert_key(
            "k-2",
            OPEN,
            "pending",
            Duration::from_secs(60),
            b"split-two",
            &["aws"],
        )
        .await;
    broker
        .insert_key("k-gone", OPEN, "active", Duration::from_secs(60), b"x", &[])
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
    broker
        .insert_key(
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
