//! The loopback world the request scenarios run against: a dev broker with
//! its embedded Type-2 (so keys are published), a stand-in workload issuer,
//! an onboarded ad tech with one identity, and the simulated attester.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use attestation::simulated::{SimulatedAmd, SimulatedChip};
use serde_json::{Value, json};

use crate::config::{CloudConfig, Config, IssuerEntry, IssuerKind, UnwrapMode, UseCaseConfig};
use crate::demo::dev_issuer::DevIssuer;
use crate::server::Server;

pub(super) const OPEN_USE_CASE: &str = "bench-open";
pub(super) const ATTESTED_USE_CASE: &str = "aggregation-service";
pub(super) const AUDIENCE: &str = "keyferry-bench";
const ADTECH: &str = "adtech-bench";
const SUBJECT: &str = "arn:aws:iam::123456789012:role/bench-workload";
pub(super) const MEASUREMENT: [u8; 48] = [0x62; 48];

pub(super) struct Fixture {
    pub(super) base: String,
    pub(super) issuer: DevIssuer,
    pub(super) chip: SimulatedChip,
    pub(super) ark_pem: String,
    handle: axum_server::Handle,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl Fixture {
    pub(super) async fn start() -> anyhow::Result<Fixture> {
        crate::server::install_crypto_provider();
        let dir = tempfile::tempdir()?;
        let amd = tokio::task::spawn_blocking(SimulatedAmd::generate)
            .await?
            .context("simulated AMD root")?;
        let chip = amd.chip(attestation::simulated::ChipSpec::milan())?;
        let ark = dir.path().join("simulated-ark.pem");
        std::fs::write(&ark, amd.ark_pem())?;
        let policy = dir.path().join("policy.json");
        std::fs::write(
            &policy,
            json!({"measurements": [hex::encode(MEASUREMENT)]}).to_string(),
        )?;
        let issuer = DevIssuer::start().await?;

        let mut config = Config::dev_default();
        config.data_dir = dir.path().join("broker");
        config.server.listen = "127.0.0.1:0".parse()?;
        // One identity drives all the load: no per-identity limit here.
        config.federation.rate_limit_per_minute = u32::MAX;
        config.attestation.challenges_per_minute = u32::MAX;
        config.use_cases[0].release_policy = Some(policy);
        let mut open = UseCaseConfig::aggregation_service();
        open.name = OPEN_USE_CASE.into();
        open.require_attestation = false;
        config.use_cases.push(open);
        config.attestation.extra_roots = vec![ark];
        let mut aws = CloudConfig::with_kek("local-kek://aws-splits");
        aws.unwrap = UnwrapMode::Broker;
        config.clouds.aws = Some(aws);
        config.issuers = vec![IssuerEntry {
            name: "bench".into(),
            kind: IssuerKind::Aws,
            issuer: issuer.url.parse()?,
            audience: AUDIENCE.into(),
            algorithms: None,
            max_token_lifetime: None,
            jwks_uri: None,
            accept_as_bearer: false,
        }];
        let token_file = config.data_dir.join("admin-token");
        let server = Server::bind(config).await?;
        let base = format!("http://{}", server.local_addr());
        let handle = server.handle();
        tokio::spawn(server.run());

        let http = reqwest::Client::new();
        let admin = std::fs::read_to_string(&token_file)?;
        for (path, body) in [
            (
                "/v1/admin/adtechs".to_owned(),
                json!({"id": ADTECH, "name": "Bench", "useCases": [ATTESTED_USE_CASE, OPEN_USE_CASE]}),
            ),
            (
                format!("/v1/admin/adtechs/{ADTECH}/identities"),
                json!({"cloud": "aws", "issuer": issuer.url, "subject": SUBJECT,
                       "scopes": ["keys:read", "keys:release"]}),
            ),
        ] {
            let response = http
                .post(format!("{base}{path}"))
                .bearer_auth(&admin)
                .json(&body)
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("{path}: {}", response.status());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for use_case in [ATTESTED_USE_CASE, OPEN_USE_CASE] {
            loop {
                let keys: Value = http
                    .get(format!("{base}/.well-known/{use_case}/v1/public-keys"))
                    .send()
                    .await?
                    .json()
                    .await?;
                if keys["keys"].as_array().is_some_and(|k| !k.is_empty()) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the bench broker published no keys for {use_case}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(Fixture {
            base,
            issuer,
            chip,
            ark_pem: amd.ark_pem(),
            handle,
            _dir: dir,
        })
    }

    /// A fresh subject token of the bench workload.
    pub(super) fn subject_token(&self) -> anyhow::Result<String> {
        Ok(self.issuer.token(SUBJECT, AUDIENCE)?.as_str().to_owned())
    }

    /// A credential for the bench workload (both scopes).
    pub(super) async fn credential(&self, http: &reqwest::Client) -> anyhow::Result<String> {
        let answer: Value = http
            .post(format!("{}/v1/token", self.base))
            .form(&exchange_form(&self.subject_token()?))
            .send()
            .await?
            .json()
            .await?;
        answer["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access_token")
    }
}

/// The RFC 8693 form for `subject_token`.
pub(super) fn exchange_form(subject_token: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange".into(),
        ),
        ("subject_token", subject_token.to_owned()),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:jwt".into(),
        ),
        ("scope", "keys:read keys:release".into()),
    ]
}
