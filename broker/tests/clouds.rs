//! Workload-cloud KEKs through their adapters, from the broker's side: split
//! A is wrapped by Cloud KMS (the project's REST double of it) and `/readyz`
//! reports that KEK.

use cloud_adapters::KeyWrapper;
use cloud_adapters::gcp::test_double::KmsDouble;
use keyferry::config::{CloudConfig, Config, StaticCredentials};

const KEY: &str = "projects/p/locations/global/keyRings/splits/cryptoKeys/gcp-splits";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_a_is_wrapped_by_cloud_kms_and_readiness_reports_the_kek() {
    keyferry::server::install_crypto_provider();
    let double = KmsDouble::start().await.expect("double");
    double.create_key(KEY);
    double.grant(KEY, "coordinator-a");
    double.issue_token("dev-token", "coordinator-a");

    let dir = tempfile::tempdir().expect("dir");
    let mut config = Config::dev_default();
    config.data_dir = dir.path().to_owned();
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    let mut gcp = CloudConfig::with_kek(format!("gcp-kms://{KEY}"));
    gcp.endpoint = Some(double.endpoint().parse().expect("url"));
    gcp.static_credentials = Some(StaticCredentials {
        access_token: Some("dev-token".into()),
        ..Default::default()
    });
    config.clouds.gcp = Some(gcp);

    let server = keyferry::server::Server::bind(config).await.expect("bind");
    let base = format!("http://{}", server.local_addr());
    let state = server.state().clone();
    let handle = server.handle();
    tokio::spawn(server.run());

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
    let storage_kek = cloud_adapters::LocalKek::open_or_create(&dir.path().join("keks"), "storage")
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
    handle.shutdown();
}
