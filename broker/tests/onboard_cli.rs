//! `keyferry onboard` against a running broker, as an operator types it.

mod common;

use std::process::Output;

use common::{Broker, Serve};
use serde_json::Value;

/// A dev broker on the production start path that trusts a Google-like
/// issuer.
async fn broker() -> Broker {
    Broker::builder()
        .serve(Serve::Server)
        .tweak(|config| config.issuers.push(common::google_issuer()))
        .start_sqlite()
        .await
}

impl Broker {
    /// Runs `keyferry onboard ARGS` off the async runtime's threads.
    async fn onboard(&self, args: &[&str]) -> Output {
        self.onboard_with(args, &[]).await
    }

    async fn onboard_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = common::process::keyferry();
        cmd.arg("onboard")
            .args(args)
            .env("KEYFERRY_SERVER", &self.base);
        if !env.iter().any(|(k, _)| *k == "KEYFERRY_TOKEN") {
            cmd.arg("--token-file").arg(self.token_file());
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().expect("run keyferry"))
            .await
            .expect("join")
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_onboards_an_adtech_end_to_end() {
    let broker = broker().await;
    let created = ok(&broker
        .onboard(&[
            "adtech",
            "create",
            "--id",
            "acme",
            "--name",
            "Acme Ads",
            "--site",
            "https://acme.example",
            "--use-case",
            "aggregation-service",
        ])
        .await);
    assert_eq!(created.trim(), "created ad tech acme");

    let added = ok(&broker
        .onboard(&[
            "identity",
            "add",
            "--adtech",
            "acme",
            "--cloud",
            "gcp",
            "--issuer",
            "https://accounts.google.com",
            "--subject",
            "112233445566778899001",
            "--condition",
            "google.compute_engine.project_id=acme-prod",
            "--scope",
            "keys:read",
        ])
        .await);
    assert!(added.starts_with("added identity m-"), "{added}");

    let listed: Value = serde_json::from_str(&ok(&broker
        .onboard(&["mappings", "list", "--json", "--cloud", "gcp"])
        .await))
    .expect("JSON");
    let mappings = listed["mappings"].as_array().expect("mappings");
    assert_eq!(mappings.len(), 1);
    let mapping = &mappings[0];
    assert_eq!(mapping["adtech"], "acme");
    assert_eq!(mapping["scopes"], serde_json::json!(["keys:read"]));
    assert_eq!(mapping["conditions"][0]["value"], "acme-prod");
    let id = mapping["id"].as_str().expect("id").to_owned();

    let table = ok(&broker
        .onboard(&["identity", "list", "--adtech", "acme"])
        .await);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("SUBJECT"),
        "{table}"
    );
    assert!(
        lines[1].contains(&id) && lines[1].contains("112233445566778899001"),
        "{table}"
    );

    ok(&broker
        .onboard(&[
            "issuer",
            "add",
            "--name",
            "eks",
            "--kind",
            "aws",
            "--issuer",
            "https://oidc.eks.us-east-1.amazonaws.com/id/ABC",
            "--audience",
            "sts.amazonaws.com",
        ])
        .await);
    let issuers = ok(&broker.onboard(&["issuer", "list"]).await);
    assert!(
        issuers.contains("google") && issuers.contains("config"),
        "{issuers}"
    );
    assert!(
        issuers.contains("eks") && issuers.contains("api"),
        "{issuers}"
    );

    assert_eq!(
        ok(&broker.onboard(&["adtech", "disable", "acme"]).await).trim(),
        "disabled ad tech acme"
    );
    let adtechs: Value =
        serde_json::from_str(&ok(&broker.onboard(&["adtech", "list", "--json"]).await))
            .expect("JSON");
    assert_eq!(adtechs["adtechs"][0]["enabled"], false);
    let shown: Value =
        serde_json::from_str(&ok(&broker.onboard(&["adtech", "show", "acme"]).await))
            .expect("JSON");
    assert_eq!(shown["identities"][0]["id"], id.as_str());

    ok(&broker.onboard(&["identity", "remove", &id]).await);
    let empty: Value =
        serde_json::from_str(&ok(&broker.onboard(&["mappings", "list", "--json"]).await))
            .expect("JSON");
    assert_eq!(empty["mappings"], serde_json::json!([]));
    broker.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_exit_1_with_the_servers_reason_and_bad_usage_exits_2() {
    let broker = broker().await;
    let out = broker
        .onboard(&["adtech", "create", "--id", "BAD", "--name", "x"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("400 invalid_field") && stderr.contains("id"),
        "{stderr}"
    );

    let out = broker
        .onboard_with(&["adtech", "list"], &[("KEYFERRY_TOKEN", "kf_wrong")])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401 unauthenticated"));

    let out = broker.onboard(&["identity", "remove", "m-missing"]).await;
    assert_eq!(out.status.code(), Some(1));

    let out = broker
        .onboard(&["identity", "add", "--adtech", "acme"])
        .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing arguments are a usage error"
    );
    let out = broker
        .onboard(&[
            "identity",
            "add",
            "--adtech",
            "a",
            "--cloud",
            "mars",
            "--issuer",
            "x",
            "--subject",
            "y",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    broker.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_lists_rotates_and_revokes_keys() {
    let broker = broker().await;
    let keys_cmd = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let mut cmd = common::process::keyferry();
        cmd.arg("keys")
            .args(args)
            .arg("--server")
            .arg(&broker.base)
            .arg("--token-file")
            .arg(broker.token_file());
        async move {
            tokio::task::spawn_blocking(move || cmd.output().expect("run"))
                .await
                .expect("join")
        }
    };
    let rotated = ok(&keys_cmd(&["rotate", "--use-case", "aggregation-service", "--json"]).await);
    let rotated: Value = serde_json::from_str(&rotated).expect("JSON");
    let generated = rotated["generated"].as_array().expect("generated");
    assert_eq!(generated.len(), 5);
    let id = generated[0].as_str().expect("id").to_owned();

    let listed: Value =
        serde_json::from_str(&ok(&keys_cmd(&["list", "--json"]).await)).expect("JSON");
    let mine = listed["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(
        mine["status"], "active",
        "the embedded peer acknowledged during the rotation"
    );

    let id_arg: &'static str = Box::leak(id.clone().into_boxed_str());
    let revoke_args: &'static [&'static str] = Box::leak(vec!["revoke", id_arg].into_boxed_slice());
    assert_eq!(
        ok(&keys_cmd(revoke_args).await).trim(),
        format!("revoked key {id}")
    );
    let table = ok(&keys_cmd(&["list"]).await);
    let line = table.lines().find(|l| l.starts_with(&id)).expect("row");
    assert!(line.contains("revoked"), "{line}");

    let out = keys_cmd(&["rotate", "--use-case", "no-such-use-case"]).await;
    assert_eq!(out.status.code(), Some(1));
    broker.shutdown();
}
