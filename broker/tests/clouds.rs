//! Workload-cloud KEKs through their adapters, from the broker's side: split
//! A is wrapped by Cloud KMS (the project's REST double of it) and `/readyz`
//! reports that KEK.

mod common;

use std::time::Duration;

use cloud_adapters::KeyWrapper;
use cloud_adapters::gcp::test_double::KmsDouble;
use common::{Broker, Serve};
use keyferry::config::{CloudConfig, StaticCredentials};

const KEY: &str = "projects/p/locations/global/keyRings/splits/cryptoKeys/gcp-splits";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_a_is_wrapped_by_cloud_kms_and_readiness_reports_the_kek() {
    let double = KmsDouble::start().await.expect("double");
    double.create_key(KEY);
    double.grant(KEY, "coordinator-a");
    double.issue_token("dev-token", "coordinator-a");
    let broker = broker_with_gcp(&double, Duration::ZERO).await;
    let (state, base) = (&broker.state, &broker.base);

    let client = reqwest::Client::new();
    let ready: serde_json::Value = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["checks"]["kek_gcp"], "ok", "{ready}");

    // Generation (already run by the lifecycle at start, or now) wraps
    // split A under the storage KEK and under Cloud KMS.
    state.keys.ensure_keys(None).await.expect("generate");
    let keys = state.store.keys(None).await.expect("keys");
    let splits = state.store.splits(&keys[0].id).await.expect("splits");
    let gcp_split = splits
        .iter()
        .find(|s| s.kek_uri == format!("gcp-kms://{KEY}"))
        .expect("a Cloud KMS split");
    let local = splits
        .iter()
        .find(|s| s.kek_uri == "local-kek://storage")
        .expect("a storage split");
    let storage_kek =
        cloud_adapters::LocalKek::open_or_create(&broker.data_dir().join("keks"), "storage")
            .await
            .expect("kek");
    let via_kms = state.cloud_keks[0]
        .1
        .unwrap(&gcp_split.ciphertext)
        .await
        .expect("Cloud KMS unwraps");
    assert_eq!(
        via_kms.as_slice(),
        storage_kek
            .unwrap(&local.ciphertext)
            .await
            .expect("unwrap")
            .as_slice()
    );
    assert!(double.kms_requests() >= 2);

    // With Cloud KMS gone the broker is not ready, and says which KEK.
    double.shutdown().await;
    let response = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["checks"]["kek_gcp"], "unavailable");
    assert_eq!(body["checks"]["storage_kek"], "ok");
    broker.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_probes_the_kms_once_per_interval_however_many_ask() {
    let double = KmsDouble::start().await.expect("double");
    double.create_key(KEY);
    double.grant(KEY, "coordinator-a");
    double.issue_token("dev-token", "coordinator-a");
    // In process: no lifecycle task calls the KMS meanwhile.
    let broker = gcp_builder(&double, Duration::from_secs(3600))
        .serve(Serve::InProcess)
        .start_sqlite()
        .await;
    let (status, body) = readyz(&broker.base).await;
    assert_eq!(
        (status, &body["checks"]["kek_gcp"]),
        (200, &"ok".into()),
        "{body}"
    );
    let after_first = double.kms_requests();

    // Forty unauthenticated probes at once cost no KMS call: the first
    // result is kept for the interval (each used to make one).
    let mut probes = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let base = broker.base.clone();
        probes.spawn(async move { readyz(&base).await.0 });
    }
    while let Some(status) = probes.join_next().await {
        assert_eq!(status.expect("probe"), 200);
    }
    assert_eq!(double.kms_requests(), after_first);
    broker.shutdown();
}

/// A dev broker (embedded Type-2) whose GCP KEK is the Cloud KMS double;
/// `/readyz` reuses a good KEK probe for `readiness` (zero: probes each time).
async fn broker_with_gcp(double: &KmsDouble, readiness: Duration) -> Broker {
    gcp_builder(double, readiness)
        .serve(Serve::Server)
        .start_sqlite()
        .await
}

fn gcp_builder(double: &KmsDouble, readiness: Duration) -> common::BrokerBuilder<'static> {
    let endpoint = double.endpoint();
    Broker::builder().tweak(move |config| {
        config.server.readiness_kek_interval = readiness;
        let mut gcp = CloudConfig::with_kek(format!("gcp-kms://{KEY}"));
        gcp.endpoint = Some(endpoint.parse().expect("url"));
        gcp.static_credentials = Some(StaticCredentials {
            access_token: Some("dev-token".into()),
            ..Default::default()
        });
        config.clouds.gcp = Some(gcp);
    })
}

async fn readyz(base: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

/// Every key that exists has its split under both KEKs: no key is ever
/// stored half wrapped.
async fn assert_every_key_fully_wrapped(state: &keyferry::AppState) -> usize {
    let keys = state.store.keys(None).await.expect("keys");
    for key in &keys {
        let splits = state.store.splits(&key.id).await.expect("splits");
        let mut keks: Vec<&str> = splits.iter().map(|s| s.kek_uri.as_str()).collect();
        keks.sort_unstable();
        assert_eq!(
            keks,
            [format!("gcp-kms://{KEY}").as_str(), "local-kek://storage"],
            "key {} is partially wrapped",
            key.id
        );
    }
    keys.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_403_is_a_clear_error_and_leaves_no_partial_key() {
    let double = KmsDouble::start().await.expect("double");
    double.create_key(KEY);
    double.grant(KEY, "coordinator-a");
    double.issue_token("dev-token", "coordinator-a");
    double.set_always_forbidden(true);
    let broker = broker_with_gcp(&double, Duration::ZERO).await;
    let (state, base) = (&broker.state, &broker.base);

    let error = state.keys.ensure_keys(None).await.expect_err("KMS refuses");
    let message = error.to_string();
    assert!(message.contains("permission denied"), "{message}");
    assert_eq!(assert_every_key_fully_wrapped(state).await, 0);
    let (status, body) = readyz(base).await;
    assert_eq!(
        (status, &body["checks"]["kek_gcp"]),
        (503, &"unavailable".into())
    );
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .contains(r#"keyferry_kms_errors_total{kek="gcp",op="wrap",kind="permission_denied"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"keyferry_kms_call_duration_seconds_count{kek="storage",op="wrap"}"#)
    );

    // Once the grant works, generation completes with every split wrapped.
    double.set_always_forbidden(false);
    state.keys.ensure_keys(None).await.expect("generate");
    assert!(assert_every_key_fully_wrapped(state).await > 0);
    assert_eq!(readyz(base).await.0, 200);
    broker.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_resumes_when_an_unavailable_kms_comes_back() {
    let double = KmsDouble::start().await.expect("double");
    double.create_key(KEY);
    double.grant(KEY, "coordinator-a");
    double.issue_token("dev-token", "coordinator-a");
    // Far more 503s than the adapter's retries: an outage, not a blip.
    double.fail_next(10_000, cloud_adapters::gcp::test_double::Fault::Unavailable);
    let broker = broker_with_gcp(&double, Duration::ZERO).await;
    let (state, base) = (&broker.state, &broker.base);

    assert!(state.keys.ensure_keys(None).await.is_err());
    assert_eq!(assert_every_key_fully_wrapped(state).await, 0);
    let (status, body) = readyz(base).await;
    assert_eq!(status, 503);
    assert_eq!(body["checks"]["kek_gcp"], "unavailable");
    assert_eq!(body["checks"]["storage_kek"], "ok");

    double.fail_next(0, cloud_adapters::gcp::test_double::Fault::Unavailable);
    // The lifecycle retries on its own within seconds; wait for it rather
    // than calling ensure_keys ourselves.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if assert_every_key_fully_wrapped(state).await > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "generation did not resume"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(readyz(base).await.0, 200);
    broker.shutdown();
}
