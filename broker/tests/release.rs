//! Attested release (DESIGN §5.3) with the simulated SNP attester: the
//! happy path in both unwrap modes, and each refusal with its reason and an
//! audit entry carrying it.

mod common;

use std::time::Duration;

use attestation::expected_report_data;
use attestation::simulated::ReportFields;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::tee::{MEASUREMENT, SimulatedTee};
use common::{Broker, Db};
use idp::IssuerKind;
use keyferry::config::{CloudConfig, UnwrapMode};
use keys::RecipientKey;
use reqwest::Method;
use serde_json::{Value, json};

const USE_CASE: &str = "aggregation-service";
const SPLIT: &[u8] = b"the coordinator's split, 32 byte";

struct Setup {
    broker: Broker,
    tee: SimulatedTee,
}

async fn setup(db: Db) -> Option<Setup> {
    let tee = SimulatedTee::new();
    let broker = Broker::start(db, |c| {
        tee.configure(c);
        c.clouds.aws = Some(CloudConfig::with_kek("local-kek://aws-splits"));
        let mut gcp = CloudConfig::with_kek("local-kek://gcp-splits");
        gcp.unwrap = UnwrapMode::Broker;
        c.clouds.gcp = Some(gcp);
        c.clouds.azure = Some(CloudConfig::with_kek("local-kek://azure-splits"));
    })
    .await?;
    broker.insert_adtech("adtech-1", &[USE_CASE]).await;
    broker
        .insert_key(
            "k-1",
            USE_CASE,
            "active",
            Duration::from_secs(1),
            SPLIT,
            &["aws", "gcp", "azure"],
        )
        .await;
    Some(Setup { broker, tee })
}

fn credential(broker: &Broker, cloud: IssuerKind, adtech: &str, ttl: Duration) -> String {
    broker.credential(adtech, cloud, &["keys:read", "keys:release"], ttl)
}

/// A workload: its TEE key and its credential.
struct Workload<'a> {
    setup: &'a Setup,
    tee: RecipientKey,
    token: String,
}

impl<'a> Workload<'a> {
    fn new(setup: &'a Setup, cloud: IssuerKind) -> Self {
        Workload {
            setup,
            tee: RecipientKey::generate(),
            token: credential(&setup.broker, cloud, "adtech-1", Duration::from_secs(600)),
        }
    }

    async fn nonce(&self) -> Vec<u8> {
        let (status, body) = self
            .setup
            .broker
            .call(
                Method::POST,
                "/v1/attestation/challenge",
                Some(&self.token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["expiresIn"], 300);
        B64.decode(body["nonce"].as_str().expect("nonce"))
            .expect("b64")
    }

    /// Honest report fields for `nonce`, then `tweak`.
    fn evidence(&self, nonce: &[u8], tweak: impl FnOnce(&mut ReportFields)) -> Value {
        self.setup
            .tee
            .evidence(nonce, &self.tee.public_key(), tweak)
    }

    async fn release(&self, nonce: &[u8], evidence: Value) -> (u16, Value) {
        let body = json!({
            "nonce": B64.encode(nonce),
            "teePublicKey": B64.encode(self.tee.public_key()),
            "evidence": evidence,
            "keyIds": ["k-1"],
        });
        self.setup
            .broker
            .call(
                Method::POST,
                "/v1/encryptionKeys:release",
                Some(&self.token),
                Some(body),
            )
            .await
    }
}

/// Keeps a refusal's status and body for the strict parse at the end of a
/// test; returns the status.
fn seen(answered: &mut Vec<Value>, status: u16, body: &Value) -> u16 {
    answered.push(json!({"status": status, "body": body}));
    status
}

fn attestation_reason(body: &Value) -> (&str, &str) {
    (
        body["details"][0]["reason"].as_str().unwrap_or(""),
        body["details"][0]["metadata"]["attestationReason"]
            .as_str()
            .unwrap_or(""),
    )
}

async fn an_attested_workload_gets_its_split_sealed_to_its_tee_key(db: Db) {
    let Some(setup) = setup(db).await else {
        return;
    };
    // AWS: cloud-kms mode, the sealed content is the AWS KEK's ciphertext.
    let aws = Workload::new(&setup, IssuerKind::Aws);
    let nonce = aws.nonce().await;
    let (status, body) = aws.release(&nonce, aws.evidence(&nonce, |_| {})).await;
    assert_eq!(status, 200, "{body}");
    let own = &body["keys"][0]["keyData"][0];
    assert_eq!(own["keyMaterial"], "");
    assert_eq!(own["sealedContent"], "cloud-kms");
    assert_eq!(own["keyEncryptionKeyUri"], "local-kek://aws-splits");
    let sealed = B64
        .decode(own["sealedKeyMaterial"].as_str().expect("sealed"))
        .expect("b64");
    let opened = keys::open(&aws.tee, keys::RELEASE_INFO, b"k-1", &sealed).expect("open");
    let aws_kek = &setup
        .broker
        .state
        .cloud_keks
        .iter()
        .find(|(n, _)| *n == "aws")
        .expect("aws")
        .1;
    assert_eq!(
        aws_kek.unwrap(&opened).await.expect("unwrap").as_slice(),
        SPLIT
    );
    // Another TEE key cannot open it.
    assert!(
        keys::open(
            &RecipientKey::generate(),
            keys::RELEASE_INFO,
            b"k-1",
            &sealed
        )
        .is_err()
    );

    // GCP: broker mode, the sealed content is the split itself.
    let gcp = Workload::new(&setup, IssuerKind::Gcp);
    let nonce = gcp.nonce().await;
    let (status, body) = gcp.release(&nonce, gcp.evidence(&nonce, |_| {})).await;
    assert_eq!(status, 200, "{body}");
    let own = &body["keys"][0]["keyData"][0];
    assert_eq!(own["sealedContent"], "broker");
    let sealed = B64
        .decode(own["sealedKeyMaterial"].as_str().expect("sealed"))
        .expect("b64");
    let opened = keys::open(&gcp.tee, keys::RELEASE_INFO, b"k-1", &sealed).expect("open");
    assert_eq!(opened.as_slice(), SPLIT);

    let released = setup.broker.audit_of_kind("keys.released").await;
    assert_eq!(released.len(), 2);
    assert_eq!(
        released[0]["details"]["claims"]["measurement"],
        hex::encode(MEASUREMENT)
    );
    assert_eq!(released[0]["details"]["unwrap"], "cloud-kms");
    assert_eq!(released[1]["details"]["unwrap"], "broker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_has_its_reason_and_an_audit_entry() {
    let Some(setup) = setup(Db::Sqlite).await else {
        return;
    };
    let w = Workload::new(&setup, IssuerKind::Aws);
    let mut expected = Vec::new();
    let mut answered = Vec::new();

    // Wrong measurement.
    let nonce = w.nonce().await;
    let (status, body) = w
        .release(&nonce, w.evidence(&nonce, |f| f.measurement = [0x22; 48]))
        .await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body)
        ),
        (403, ("ATTESTATION_FAILED", "measurement_not_allowed"))
    );
    expected.push("measurement_not_allowed");

    // A debug guest (policy bit 19).
    let nonce = w.nonce().await;
    let (status, body) = w
        .release(&nonce, w.evidence(&nonce, |f| f.policy |= 1 << 19))
        .await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body)
        ),
        (403, ("ATTESTATION_FAILED", "debug_not_allowed"))
    );
    expected.push("debug_not_allowed");

    // report_data not bound to the TEE key presented.
    let nonce = w.nonce().await;
    let other = RecipientKey::generate();
    let (status, body) = w
        .release(
            &nonce,
            w.evidence(&nonce, |f| {
                f.report_data = expected_report_data(&nonce, &other.public_key())
            }),
        )
        .await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body)
        ),
        (403, ("ATTESTATION_FAILED", "report_data_mismatch"))
    );
    expected.push("report_data_mismatch");

    // A replayed nonce: the first use succeeds, the second is refused.
    let nonce = w.nonce().await;
    let evidence = w.evidence(&nonce, |_| {});
    assert_eq!(w.release(&nonce, evidence.clone()).await.0, 200);
    let (status, body) = w.release(&nonce, evidence).await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body)
        ),
        (403, ("ATTESTATION_FAILED", "nonce_unknown"))
    );
    expected.push("nonce_unknown");

    // A nonce issued to another ad tech's credential is not this one's,
    // and stays usable by its owner.
    setup.broker.insert_adtech("adtech-3", &[USE_CASE]).await;
    let owner = Workload {
        setup: &setup,
        tee: RecipientKey::generate(),
        token: credential(
            &setup.broker,
            IssuerKind::Aws,
            "adtech-3",
            Duration::from_secs(600),
        ),
    };
    let nonce = owner.nonce().await;
    let (status, body) = w.release(&nonce, w.evidence(&nonce, |_| {})).await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body)
        ),
        (403, ("ATTESTATION_FAILED", "nonce_not_yours"))
    );
    expected.push("nonce_not_yours");
    assert_eq!(
        owner
            .release(&nonce, owner.evidence(&nonce, |_| {}))
            .await
            .0,
        200
    );

    // An expired nonce.
    let nonce = w.nonce().await;
    setup.broker.clock().advance(Duration::from_secs(301));
    let (status, body) = w.release(&nonce, w.evidence(&nonce, |_| {})).await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body)
        ),
        (403, ("ATTESTATION_FAILED", "nonce_expired"))
    );
    expected.push("nonce_expired");

    // One flipped bit in the signed report.
    let nonce = w.nonce().await;
    let mut evidence = w.evidence(&nonce, |_| {});
    let mut report = B64
        .decode(evidence["report"].as_str().expect("r"))
        .expect("b64");
    report[0x90] ^= 1;
    evidence["report"] = json!(B64.encode(report));
    let (status, body) = w.release(&nonce, evidence).await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body)
        ),
        (403, ("ATTESTATION_FAILED", "report_signature_invalid"))
    );
    expected.push("report_signature_invalid");

    // A truncated report.
    let nonce = w.nonce().await;
    let mut evidence = w.evidence(&nonce, |_| {});
    evidence["report"] = json!(B64.encode([0u8; 100]));
    let (status, body) = w.release(&nonce, evidence).await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body)
        ),
        (403, ("ATTESTATION_FAILED", "report_malformed"))
    );
    expected.push("report_malformed");

    // An ad tech not onboarded for the use case.
    let stranger = Workload {
        setup: &setup,
        tee: RecipientKey::generate(),
        token: credential(
            &setup.broker,
            IssuerKind::Aws,
            "adtech-2",
            Duration::from_secs(600),
        ),
    };
    let nonce = stranger.nonce().await;
    let (status, body) = stranger
        .release(&nonce, stranger.evidence(&nonce, |_| {}))
        .await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body).0
        ),
        (403, "PERMISSION_DENIED")
    );
    expected.push("PERMISSION_DENIED");

    // Without evidence, when the use case requires it: the GET endpoints.
    let (status, body) = setup
        .broker
        .call(
            Method::GET,
            "/v1alpha/encryptionKeys/k-1",
            Some(&w.token),
            None,
        )
        .await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body).0
        ),
        (403, "ATTESTATION_REQUIRED")
    );
    // ... and a release body without evidence is malformed.
    let nonce = w.nonce().await;
    let (status, body) = setup
        .broker
        .call(
            Method::POST,
            "/v1/encryptionKeys:release",
            Some(&w.token),
            Some(json!({"nonce": B64.encode(&nonce), "teePublicKey": B64.encode(w.tee.public_key())})),
        )
        .await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body).0
        ),
        (400, "INVALID_ARGUMENT")
    );
    expected.push("INVALID_ARGUMENT");

    // An expired credential: refused before anything else. At the release
    // endpoint the refusal is audited too, with no ad tech to name.
    let expired = credential(
        &setup.broker,
        IssuerKind::Aws,
        "adtech-1",
        Duration::from_secs(60),
    );
    let nonce = w.nonce().await;
    let evidence = w.evidence(&nonce, |_| {});
    setup.broker.clock().advance(Duration::from_secs(3600));
    let (status, body) = setup
        .broker
        .call(
            Method::POST,
            "/v1/attestation/challenge",
            Some(&expired),
            None,
        )
        .await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body).0
        ),
        (401, "UNAUTHENTICATED")
    );
    let (status, body) = setup
        .broker
        .call(
            Method::POST,
            "/v1/encryptionKeys:release",
            Some(&expired),
            Some(json!({"nonce": B64.encode(&nonce), "teePublicKey": B64.encode(w.tee.public_key()), "evidence": evidence})),
        )
        .await;
    assert_eq!(
        (
            seen(&mut answered, status, &body),
            attestation_reason(&body).0
        ),
        (401, "UNAUTHENTICATED")
    );
    expected.push("UNAUTHENTICATED");

    let refused: Vec<String> = setup
        .broker
        .audit_of_kind("keys.release_refused")
        .await
        .iter()
        .map(|e| {
            e["details"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(refused, expected);
    // Every refusal parses with protobuf's own parser as the ErrorResponse
    // proto, unknown fields refused, as the Java fetcher parses it.
    if let Some(parsed) = common::python::parse_error_bodies(&answered) {
        assert!(
            parsed.contains("403 PERMISSION_DENIED ATTESTATION_FAILED"),
            "{parsed}"
        );
        assert!(
            parsed.contains("403 PERMISSION_DENIED ATTESTATION_REQUIRED"),
            "{parsed}"
        );
    }
    // Refusals after verification carry the attested claims.
    let first = &setup.broker.audit_of_kind("keys.release_refused").await[0];
    assert_eq!(
        first["details"]["claims"]["measurement"],
        hex::encode([0x22; 48])
    );
    let metrics = setup.broker.state.metrics.render();
    assert!(
        metrics.contains(r#"keyferry_attestation_failures_total{reason="debug_not_allowed"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_root_is_trusted_only_when_configured() {
    let Some(setup) = setup(Db::Sqlite).await else {
        return;
    };
    // A second broker without the extra root refuses the same evidence.
    let plain = Broker::start(Db::Sqlite, |c| {
        c.clouds.aws = Some(CloudConfig::with_kek("local-kek://aws-splits"));
    })
    .await
    .expect("broker");
    plain.insert_adtech("adtech-1", &[USE_CASE]).await;
    let w = Workload {
        setup: &setup,
        tee: RecipientKey::generate(),
        token: credential(
            &plain,
            IssuerKind::Aws,
            "adtech-1",
            Duration::from_secs(600),
        ),
    };
    let (status, body) = plain
        .call(
            Method::POST,
            "/v1/attestation/challenge",
            Some(&w.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let nonce = B64.decode(body["nonce"].as_str().expect("n")).expect("b64");
    let evidence = w.evidence(&nonce, |_| {});
    let (status, body) = plain
        .call(
            Method::POST,
            "/v1/encryptionKeys:release",
            Some(&w.token),
            Some(json!({"nonce": B64.encode(&nonce), "teePublicKey": B64.encode(w.tee.public_key()), "evidence": evidence})),
        )
        .await;
    assert_eq!(
        (status, attestation_reason(&body)),
        (403, ("ATTESTATION_FAILED", "ark_not_trusted"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_are_rate_limited_per_workload_identity() {
    let Some(broker) = Broker::start(Db::Sqlite, |c| {
        c.attestation.challenges_per_minute = 2;
        c.clouds.aws = Some(CloudConfig::with_kek("local-kek://aws-splits"));
    })
    .await
    else {
        return;
    };
    broker.insert_adtech("adtech-1", &[USE_CASE]).await;
    let token = credential(
        &broker,
        IssuerKind::Aws,
        "adtech-1",
        Duration::from_secs(600),
    );
    let mut statuses = Vec::new();
    let mut last = Value::Null;
    for _ in 0..3 {
        let (status, body) = broker
            .call(
                Method::POST,
                "/v1/attestation/challenge",
                Some(&token),
                None,
            )
            .await;
        statuses.push(status);
        last = body;
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(attestation_reason(&last).0, "RESOURCE_EXHAUSTED");
    // Nonces were stored only for the admitted challenges.
    assert_eq!(
        broker
            .state
            .store
            .purge_expired_nonces(i64::MAX)
            .await
            .expect("purge"),
        2
    );
}

keyferry::on_both_backends!(
    db:
    an_attested_workload_gets_its_split_sealed_to_its_tee_key,
);

type Tweak = dyn Fn(&mut common::tee::AzureTweak);

/// An Azure confidential VM (`az-snp-vtpm`): the paravisor's HCL report
/// and a vTPM quote carry the binding instead of `report_data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_cvm_gets_its_split_through_its_hcl_report_and_vtpm_quote() {
    let Some(setup) = setup(Db::Sqlite).await else {
        return;
    };
    let w = Workload::new(&setup, IssuerKind::Azure);
    let tee_key = w.tee.public_key();
    let evidence = |nonce: &[u8], tweak: &Tweak| setup.tee.azure_evidence(nonce, &tee_key, tweak);

    let nonce = w.nonce().await;
    let (status, body) = w.release(&nonce, evidence(&nonce, &|_| {})).await;
    assert_eq!(status, 200, "{body}");
    let sealed = B64
        .decode(
            body["keys"][0]["keyData"][0]["sealedKeyMaterial"]
                .as_str()
                .expect("sealed"),
        )
        .expect("b64");
    keys::open(&w.tee, keys::RELEASE_INFO, b"k-1", &sealed).expect("sealed to the TEE key");
    let released = setup.broker.audit_of_kind("keys.released").await;
    let claims = &released[0]["details"]["claims"];
    assert_eq!(claims["measurement"], hex::encode(MEASUREMENT));
    assert_eq!(claims["vtpm"]["pcrs"]["7"], hex::encode([7u8; 32]));

    let mut answered = Vec::new();
    const OTHER_NONCE: [u8; 32] = [0x42; 32];
    let refusals: [(&str, &Tweak); 3] = [
        ("user_data_mismatch", &|t| {
            t.user_data = expected_report_data(&OTHER_NONCE, &[1; 32])
        }),
        ("quote_nonce_mismatch", &|t| {
            t.quote_nonce = OTHER_NONCE.to_vec()
        }),
        ("runtime_data_mismatch", &|t| {
            t.report_user_data = Some(expected_report_data(&OTHER_NONCE, &[1; 32]))
        }),
    ];
    for (reason, tweak) in refusals {
        let nonce = w.nonce().await;
        let (status, body) = w.release(&nonce, evidence(&nonce, tweak)).await;
        assert_eq!(
            (
                seen(&mut answered, status, &body),
                attestation_reason(&body)
            ),
            (403, ("ATTESTATION_FAILED", reason)),
            "{body}"
        );
    }
    let refused: Vec<String> = setup
        .broker
        .audit_of_kind("keys.release_refused")
        .await
        .iter()
        .map(|e| {
            e["details"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        refused,
        [
            "user_data_mismatch",
            "quote_nonce_mismatch",
            "runtime_data_mismatch"
        ]
    );
    // An unknown evidence type is a malformed request.
    let nonce = w.nonce().await;
    let (status, body) = w
        .release(&nonce, json!({"type": "tdx", "quote": "AAAA"}))
        .await;
    assert_eq!(seen(&mut answered, status, &body), 400, "{body}");
    if let Some(parsed) = common::python::parse_error_bodies(&answered) {
        assert!(
            parsed.contains("403 PERMISSION_DENIED ATTESTATION_FAILED"),
            "{parsed}"
        );
    }
}
