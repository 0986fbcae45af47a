//! The request scenarios of DESIGN §10. Each drives a broker on loopback
//! with `concurrency` clients for `duration`, and measures, in the same
//! run, the crypto-bound ceiling of the same work: how many requests per
//! second the machine's cores could serve if the scenario's cryptography
//! were all they did. `throughput / ceiling` says how much the rest (HTTP,
//! JSON, the database, the audit log) costs.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use attestation::{Evidence, ReleaseBinding, Verifier, expected_report_data};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::fixture::{ATTESTED_USE_CASE, Fixture, MEASUREMENT, OPEN_USE_CASE, exchange_form};
use super::percentiles;

/// A request scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// `POST /v1/token`: verify the subject token, map it, sign a credential.
    TokenExchange,
    /// `GET /v1alpha/publicKeys`: unauthenticated, cacheable.
    PublicKeys,
    /// `GET /v1alpha/encryptionKeys:recent`: verify the credential, read and
    /// audit the wrapped splits.
    RecentKeys,
    /// `POST /v1/attestation/challenge` then `POST /v1/encryptionKeys:release`:
    /// verify the credential and the SNP report, seal each split.
    AttestedRelease,
}

/// What a run measured.
struct Outcome {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// Runs `request` from `concurrency` tasks for `duration`.
async fn drive<F, Fut>(concurrency: usize, duration: Duration, request: F) -> Outcome
where
    F: Fn(reqwest::Client) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Duration>> + Send,
{
    let request = Arc::new(request);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let request = request.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                while Instant::now() < deadline {
                    match request(http.clone()).await {
                        Ok(latency) => latencies.push(latency),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut outcome = Outcome {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for task in tasks {
        if let Ok((latencies, errors)) = task.await {
            outcome.latencies.extend(latencies);
            outcome.errors += errors;
        }
    }
    outcome.elapsed = started.elapsed();
    outcome.requests = outcome.latencies.len();
    outcome
}

/// Times one call of `request`, failing on any non-2xx answer.
async fn timed(request: reqwest::RequestBuilder) -> anyhow::Result<(Duration, Value)> {
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let latency = started.elapsed();
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok((latency, body))
}

/// Average seconds per call of `op`, over about half a second.
fn cost_of(mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_millis(500) || n < 20 {
        op()?;
        n += 1;
    }
    Ok(started.elapsed().as_secs_f64() / f64::from(n))
}

/// The ES256 JWT costs (verify, sign) on this machine: jsonwebtoken with
/// aws-lc-rs, as the broker uses.
fn jwt_costs(fixture: &Fixture) -> anyhow::Result<(f64, f64)> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("key generation"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("key"))?;
    let point = pair.public_key().as_ref().to_vec();
    let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
    let decoding = DecodingKey::from_ec_components(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&point[1..33]),
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&point[33..65]),
    )?;
    let claims = json!({"iss": fixture.issuer.url, "sub": "bench", "aud": "bench",
                        "exp": 4_102_444_800u64, "scope": "keys:read keys:release"});
    let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &encoding)?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["bench"]);
    let verify = cost_of(|| {
        jsonwebtoken::decode::<Value>(&token, &decoding, &validation)?;
        Ok(())
    })?;
    let sign = cost_of(|| {
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &encoding)?;
        Ok(())
    })?;
    Ok((verify, sign))
}

/// Signs a simulated report bound to `nonce` and `tee_key`: the evidence of
/// one release request.
fn evidence_for(fixture: &Fixture, nonce: &[u8], tee_key: &[u8; 32]) -> anyhow::Result<Value> {
    let mut fields = fixture.chip.report_fields();
    fields.measurement = MEASUREMENT;
    fields.report_data = expected_report_data(nonce, tee_key);
    let report = fixture.chip.sign_report(&fields)?;
    let pems = fixture.chip.cert_pems();
    let text = |i: usize| String::from_utf8_lossy(&pems[i]).into_owned();
    Ok(json!({"type": "sev-snp", "report": B64.encode(report),
              "certs": {"vcek": text(0), "ask": text(1), "ark": text(2)}}))
}

/// Runs one scenario and prints its report.
pub async fn run_scenario(
    scenario: Scenario,
    target: Option<String>,
    concurrency: usize,
    duration: Duration,
    json_out: bool,
) -> anyhow::Result<()> {
    if target.is_some() && scenario != Scenario::PublicKeys {
        bail!(
            "--target works for public-keys only: the other scenarios need an issuer and an ad \
             tech the broker trusts, so they start their own broker on loopback"
        );
    }
    let fixture = Arc::new(Fixture::start().await.context("loopback broker")?);
    let base = target.unwrap_or_else(|| fixture.base.clone());
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let (jwt_verify, jwt_sign) = jwt_costs(&fixture)?;
    let http = reqwest::Client::new();

    let (outcome, ceiling, crypto) = match scenario {
        Scenario::PublicKeys => {
            let url = format!("{base}/v1alpha/publicKeys");
            let outcome = drive(concurrency, duration, move |http| {
                let url = url.clone();
                async move { Ok(timed(http.get(url)).await?.0) }
            })
            .await;
            (outcome, None, "none (no cryptography on this path)")
        }
        Scenario::TokenExchange => {
            let (base, fixture2) = (base.clone(), fixture.clone());
            let outcome = drive(concurrency, duration, move |http| {
                let url = format!("{base}/v1/token");
                let token = fixture2.subject_token();
                async move {
                    let form = exchange_form(&token?);
                    Ok(timed(http.post(url).form(&form)).await?.0)
                }
            })
            .await;
            (
                outcome,
                Some(cores / (jwt_verify + jwt_sign)),
                "ES256 verify (subject token) + ES256 sign (credential)",
            )
        }
        Scenario::RecentKeys => {
            let credential = fixture.credential(&http).await?;
            let url = format!(
                "{base}/v1alpha/encryptionKeys:recent?maxAgeSeconds=604800&useCase={OPEN_USE_CASE}"
            );
            let outcome = drive(concurrency, duration, move |http| {
                let (url, credential) = (url.clone(), credential.clone());
                async move { Ok(timed(http.get(url).bearer_auth(credential)).await?.0) }
            })
            .await;
            (
                outcome,
                Some(cores / jwt_verify),
                "ES256 verify (credential)",
            )
        }
        Scenario::AttestedRelease => {
            let credential = fixture.credential(&http).await?;
            // The ceiling: the broker's own verifier on one of these reports
            // (its chain cached, as in steady state), one HPKE seal per key.
            let verifier = Verifier::with_extra_roots(&[fixture.ark_pem.as_bytes()])?;
            let tee = keys::RecipientKey::generate();
            let nonce = [7u8; 32];
            let wire: attestation::EvidenceWire =
                serde_json::from_value(evidence_for(&fixture, &nonce, &tee.public_key())?)?;
            let evidence = Evidence::try_from(wire)?;
            let binding = ReleaseBinding::new(&nonce, tee.public_key());
            let verify = cost_of(|| {
                verifier.verify(&evidence, &binding)?;
                Ok(())
            })?;
            let seal = cost_of(|| {
                keys::seal(
                    &tee.public_key(),
                    keys::RELEASE_INFO,
                    b"key-id",
                    &[0u8; 100],
                )?;
                Ok(())
            })?;
            let keys_per_release = reqwest::get(format!(
                "{base}/.well-known/{ATTESTED_USE_CASE}/v1/public-keys"
            ))
            .await?
            .json::<Value>()
            .await?["keys"]
                .as_array()
                .map_or(1, Vec::len) as f64;
            let (base, fixture2) = (base.clone(), fixture.clone());
            let outcome = drive(concurrency, duration, move |http| {
                let (base, credential, fixture) =
                    (base.clone(), credential.clone(), fixture2.clone());
                async move {
                    let (_, challenge) = timed(
                        http.post(format!("{base}/v1/attestation/challenge"))
                            .bearer_auth(&credential),
                    )
                    .await?;
                    let nonce = B64.decode(challenge["nonce"].as_str().unwrap_or_default())?;
                    let tee = keys::RecipientKey::generate();
                    let evidence = evidence_for(&fixture, &nonce, &tee.public_key())?;
                    let body = json!({"nonce": B64.encode(&nonce),
                                      "teePublicKey": B64.encode(tee.public_key()),
                                      "evidence": evidence, "useCase": ATTESTED_USE_CASE});
                    Ok(timed(
                        http.post(format!("{base}/v1/encryptionKeys:release"))
                            .bearer_auth(&credential)
                            .json(&body),
                    )
                    .await?
                    .0)
                }
            })
            .await;
            (
                outcome,
                Some(cores / (2.0 * jwt_verify + verify + keys_per_release * seal)),
                "2 × ES256 verify (challenge, release) + SNP report verification + one HPKE seal per key",
            )
        }
    };

    let throughput = outcome.requests as f64 / outcome.elapsed.as_secs_f64();
    let (p50, p99) = percentiles(outcome.latencies);
    let report = json!({
        "scenario": format!("{scenario:?}"),
        "target": base,
        "concurrency": concurrency,
        "seconds": outcome.elapsed.as_secs_f64(),
        "requests": outcome.requests,
        "errors": outcome.errors,
        "throughputPerSecond": throughput,
        "latencyP50Micros": p50,
        "latencyP99Micros": p99,
        "ceilingPerSecond": ceiling,
        "ceilingWork": crypto,
        "ratio": ceiling.map(|c| throughput / c),
        "cores": cores,
        "jwtVerifyMicros": jwt_verify * 1e6,
        "jwtSignMicros": jwt_sign * 1e6,
    });
    if json_out {
        println!("{report}");
    } else {
        println!(
            "scenario     {scenario:?} against {}",
            report["target"].as_str().unwrap_or("")
        );
        println!(
            "requests     {} in {:.1} s ({} errors), {concurrency} clients",
            outcome.requests,
            outcome.elapsed.as_secs_f64(),
            outcome.errors
        );
        println!("throughput   {throughput:.0}/s");
        println!(
            "latency      p50 {:.2} ms, p99 {:.2} ms",
            p50 / 1000.0,
            p99 / 1000.0
        );
        match ceiling {
            Some(c) => println!(
                "ceiling      {c:.0}/s on {cores} cores ({crypto}); ratio {:.2}",
                throughput / c
            ),
            None => println!("ceiling      {crypto}"),
        }
    }
    if outcome.requests == 0 {
        bail!("no request succeeded ({} errors)", outcome.errors);
    }
    Ok(())
}
