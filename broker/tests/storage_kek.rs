//! A cloud storage KEK reached with the ambient credentials of the
//! environment (here: AWS's environment variables, as an ECS task or a
//! pod would have them), against moto: `keyferry serve` starts on it,
//! wraps its own secrets with it, and starts again from them.

mod common;

use std::process::Child;
use std::time::Duration;

use common::process::{keyferry, serve};
use test_support::Moto;

const REGION: &str = "eu-west-3";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn ready(base: &str) -> serde_json::Value {
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(format!("{base}/readyz")).await
            && response.status() == 200
        {
            return response.json().await.expect("json");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} never became ready");
}

async fn jwks_kids(base: &str) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_kek_can_be_a_cloud_kms_key_reached_with_ambient_credentials() {
    let Some(moto) = Moto::start() else { return };
    let arn = moto.create_key_with_boto3(REGION);
    let kek = format!("aws-kms://{arn}");
    let data = tempfile::tempdir().expect("dir");
    let env = [
        ("KEYFERRY_COORDINATOR__STORAGE_KEK", kek.as_str()),
        (
            "KEYFERRY_COORDINATOR__STORAGE_KEK_ENDPOINT",
            moto.endpoint.as_str(),
        ),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];

    let (child, base) = serve(data.path(), data.path(), &env);
    let first = Running(child);
    let body = ready(&base).await;
    assert_eq!(body["checks"]["storage_kek"], "ok", "{body}");
    let kids = jwks_kids(&base).await;
    drop(first);

    // Its secrets are wrapped by the KMS key, not by anything on disk.
    let store = keyferry::storage::Store::connect(
        &format!("sqlite://{}", data.path().join("keyferry.db").display()),
        1,
    )
    .await
    .expect("store");
    let signer = store
        .wrapped_secret("public_key_signer")
        .await
        .expect("read")
        .expect("a wrapped signer");
    assert_eq!(signer.kek_uri, kek);
    assert!(!data.path().join("keks/storage.key").exists());
    drop(store);

    // A restart unwraps them through KMS again: same issuer keys.
    let (child, base) = serve(data.path(), data.path(), &env);
    let _second = Running(child);
    ready(&base).await;
    assert_eq!(jwks_kids(&base).await, kids);
}

#[test]
fn without_credentials_the_broker_refuses_to_start_and_says_why() {
    let Some(moto) = Moto::start() else { return };
    let arn = moto.create_key_with_boto3(REGION);
    let data = tempfile::tempdir().expect("dir");
    let out = keyferry()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env(
            "KEYFERRY_COORDINATOR__STORAGE_KEK",
            format!("aws-kms://{arn}"),
        )
        .env("KEYFERRY_COORDINATOR__STORAGE_KEK_ENDPOINT", &moto.endpoint)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", data.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", data.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("storage KEK") || stderr.contains("KEK"),
        "{stderr}"
    );
}

#[test]
fn production_accepts_a_cloud_storage_kek_but_not_an_endpoint_override() {
    let dir = tempfile::tempdir().expect("dir");
    let base = "profile = \"production\"\n[server]\npublic_url = \"https://a.example\"\n\
                [storage]\nurl = \"postgres://kf@db:5432/kf\"\n\
                [coordinator]\nrole = \"type2\"\npeer_issuer = \"https://b.example\"\n\
                storage_kek = \"aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\"\n\
                [admin]\noidc_issuer = \"https://ops.example\"\noidc_audience = \"keyferry\"\n";
    let run = |config: &str| {
        let path = dir.path().join("keyferry.toml");
        std::fs::write(&path, config).expect("write");
        keyferry()
            .args(["config", "check", "--config"])
            .arg(&path)
            .output()
            .expect("run")
    };
    let out = run(base);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&base.replace(
        "[admin]",
        "storage_kek_endpoint = \"http://127.0.0.1:5000\"\n[admin]",
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("coordinator.storage_kek_endpoint"));
}
