//! Attested key generation (DESIGN §4.3): the Type-1's key generator proves,
//! with SNP evidence bound to a fresh Type-2 challenge and to the handover
//! message, that it runs an image the Type-2's key-generation policy admits.
//!
//! - Type-1: [`KeyGenerator`] turns a challenge and a handover message into
//!   [`KeyGenerationEvidence`] (from `/dev/sev-guest`, or the simulated
//!   attester in dev).
//! - Type-2: [`KeyGenerationCheck`] issues challenges and admits evidence
//!   into [`AttestedKeyGeneration`], the proof that storing split B needs.
//!
//! `report_data` = SHA-512(`"keyferry/v1/handover"` ‖ challenge ‖ SHA-256 of
//! the RFC 8785 text of the handover request without `keyGeneration`): the
//! key ids, public keys, times, the Type-1's signature and the sealed split.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use attestation::simulated::SimulatedAmd;
use attestation::{
    AttestedKeyGeneration, Claims, Evidence, KeyGenerationBinding, ReleasePolicy, Verifier,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use wire::{HandoverChallenge, HandoverRequest, KeyGenerationEvidence};

use super::service::LifecycleError;
use crate::config::{Config, KeyGeneratorEvidence};
use crate::rate_limit::IdentityLimiter;
use crate::storage::{NonceOutcome, NonceOwner, Store, StoreError};

/// The launch measurement of the simulated key generator (dev): what the
/// dev profile's default key-generation policy admits, and what
/// `keyferry demo` shows.
pub const DEV_KEY_GENERATOR_MEASUREMENT: [u8; 48] =
    *b"keyferry/dev/simulated-key-generator/v1.........";

/// How long a handover challenge waits for its handover.
const CHALLENGE_LIFETIME_SECS: i64 = 300;

/// Handover challenges one peer identity may ask for per minute: each is a
/// database write, and the Type-1 asks for one per handover attempt.
const CHALLENGES_PER_MINUTE: u32 = 600;

/// The rate limit's name (its own buckets in `rate_limits`).
const CHALLENGE_LIMIT: &str = "handover_challenge";

/// Challenges belong to no ad tech: a workload's credential can never
/// consume one as its release nonce, nor the peer a workload's.
const PEER_NONCE_ADTECH: &str = "";

/// SHA-256 of the canonical handover message: `request` without its
/// `keyGeneration` member.
pub fn message_digest(request: &HandoverRequest) -> Result<[u8; 32], LifecycleError> {
    let bare = HandoverRequest {
        key_generation: None,
        ..request.clone()
    };
    let text = serde_jcs::to_vec(&bare).map_err(|e| LifecycleError::Corrupt(e.to_string()))?;
    Ok(Sha256::digest(text).into())
}

/// Where the simulated key generator's root is written beside its CA.
fn simulated_root_path(ca: &Path) -> PathBuf {
    ca.with_file_name("simulated-ark.pem")
}

/// The simulated key generator's CA (`coordinator.key_generator_ca`), made
/// on first use with its root beside it, when this Type-1 uses one (dev).
/// Returns the root's path, for a Type-2 to trust (`attestation.extra_roots`).
pub async fn ensure_simulated_key_generator(
    config: &Config,
) -> Result<Option<PathBuf>, LifecycleError> {
    if config.key_generator() != KeyGeneratorEvidence::Simulated || !config.is_dev() {
        return Ok(None);
    }
    let ca = config.key_generator_ca();
    let root = simulated_root_path(&ca);
    if ca.exists() {
        return Ok(Some(root));
    }
    let amd = tokio::task::spawn_blocking(SimulatedAmd::generate)
        .await
        .map_err(|e| LifecycleError::KeyGenerator(format!("simulated CA task: {e}")))?
        .map_err(|e| LifecycleError::KeyGenerator(format!("simulated CA: {e}")))?;
    let pem = amd
        .to_pem()
        .map_err(|e| LifecycleError::KeyGenerator(format!("simulated CA: {e}")))?;
    let write = |path: &Path, data: &[u8]| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::files::write_private(path, data)
    };
    write(&root, amd.ark_pem().as_bytes())
        .and_then(|()| write(&ca, pem.as_bytes()))
        .map_err(|e| LifecycleError::KeyGenerator(format!("{}: {e}", ca.display())))?;
    Ok(Some(root))
}

/// The Type-1's key generator as the Type-2 sees it: a source of SNP
/// reports over chosen `report_data`.
pub(super) struct KeyGenerator {
    source: Arc<dyn workload::EvidenceSource>,
}

impl KeyGenerator {
    /// The configured key generator; `None` with `key_generator = "none"`.
    pub(super) async fn open(config: &Config) -> Result<Option<KeyGenerator>, LifecycleError> {
        let source: Arc<dyn workload::EvidenceSource> = match config.key_generator() {
            KeyGeneratorEvidence::None => return Ok(None),
            KeyGeneratorEvidence::SevGuest => Arc::new(workload::SevGuest::new(
                config.coordinator.key_generator_certs.clone(),
                0,
            )),
            KeyGeneratorEvidence::Simulated => {
                if !config.is_dev() {
                    return Err(LifecycleError::KeyGenerator(
                        "the simulated key generator is for the dev profile only".into(),
                    ));
                }
                ensure_simulated_key_generator(config).await?;
                let path = config.key_generator_ca();
                let pem = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
                    LifecycleError::KeyGenerator(format!("{}: {e}", path.display()))
                })?);
                let simulated = workload::Simulated::new(
                    workload::Profile::Dev,
                    &pem,
                    DEV_KEY_GENERATOR_MEASUREMENT,
                    [0; 32],
                    None,
                )
                .map_err(|e| LifecycleError::KeyGenerator(e.to_string()))?;
                Arc::new(simulated)
            }
        };
        Ok(Some(KeyGenerator { source }))
    }

    /// Evidence that this key generator made `request`, bound to `challenge`.
    pub(super) async fn attest(
        &self,
        challenge: &HandoverChallenge,
        request: &HandoverRequest,
    ) -> Result<KeyGenerationEvidence, LifecycleError> {
        let bytes = B64
            .decode(&challenge.challenge)
            .map_err(|_| LifecycleError::Peer("the handover challenge is not base64".into()))?;
        let binding = KeyGenerationBinding::new(&bytes, message_digest(request)?);
        let evidence = self
            .source
            .evidence(*binding.report_data())
            .await
            .map_err(|e| LifecycleError::KeyGenerator(e.to_string()))?;
        Ok(KeyGenerationEvidence {
            challenge: challenge.challenge.clone(),
            evidence,
        })
    }
}

/// A handover the key-generation check refused: a stable reason, what to
/// say, and the attested claims once the evidence verified.
#[derive(Debug)]
pub(super) struct KeyGenerationRefusal {
    pub(super) reason: &'static str,
    pub(super) message: String,
    pub(super) claims: Option<Box<Claims>>,
}

impl KeyGenerationRefusal {
    fn new(reason: &'static str, message: impl Into<String>, claims: Option<&Claims>) -> Self {
        KeyGenerationRefusal {
            reason,
            message: message.into(),
            claims: claims.cloned().map(Box::new),
        }
    }

    fn attestation(e: &attestation::Error, claims: Option<&Claims>) -> Self {
        let reason = e.reason().map_or("evidence_invalid", |r| r.code());
        Self::new(reason, e.to_string(), claims)
    }
}

/// What keeps a handover from being admitted: a refusal, or a database
/// that could not decide (the Type-1 retries either way).
#[derive(Debug)]
pub(super) enum CheckError {
    Refused(KeyGenerationRefusal),
    Store(StoreError),
}

impl From<KeyGenerationRefusal> for CheckError {
    fn from(r: KeyGenerationRefusal) -> Self {
        CheckError::Refused(r)
    }
}

impl From<StoreError> for CheckError {
    fn from(e: StoreError) -> Self {
        CheckError::Store(e)
    }
}

/// The Type-2's side: challenges, evidence verification, the policy.
pub(super) struct KeyGenerationCheck {
    required: bool,
    verifier: Arc<Verifier>,
    /// `coordinator.key_generation_policy`, or in dev the simulated key
    /// generator's measurement; governance's policy takes precedence.
    configured_policy: Option<ReleasePolicy>,
    challenges: IdentityLimiter,
    store: Store,
}

impl KeyGenerationCheck {
    /// Reads the trust anchors (AMD's and, in dev, `attestation.extra_roots`)
    /// and the configured policy.
    pub(super) fn open(config: &Config, store: &Store) -> Result<Self, LifecycleError> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| LifecycleError::KeyGenerator(format!("{}: {e}", path.display())))
        };
        let roots = config
            .attestation
            .extra_roots
            .iter()
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let verifier = Verifier::with_extra_roots(&roots)
            .map_err(|e| LifecycleError::KeyGenerator(format!("attestation.extra_roots: {e}")))?;
        let configured_policy = match &config.coordinator.key_generation_policy {
            Some(path) => {
                let text = String::from_utf8_lossy(&read(path)?).into_owned();
                Some(ReleasePolicy::from_json(&text).map_err(|e| {
                    LifecycleError::KeyGenerator(format!("coordinator.key_generation_policy: {e}"))
                })?)
            }
            None if config.is_dev() => Some(dev_policy()?),
            None => None,
        };
        Ok(KeyGenerationCheck {
            required: config.coordinator.attested_key_generation,
            verifier: Arc::new(verifier),
            configured_policy,
            challenges: IdentityLimiter::new(
                store,
                CHALLENGE_LIMIT,
                NonZeroU32::new(CHALLENGES_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            ),
            store: store.clone(),
        })
    }

    /// A fresh challenge for the peer `subject`, or how long to wait.
    pub(super) async fn challenge(
        &self,
        issuer: &str,
        subject: &str,
        now_ms: i64,
    ) -> Result<Result<HandoverChallenge, std::time::Duration>, StoreError> {
        if let Some(wait) = self.challenges.check(issuer, subject, now_ms).await? {
            return Ok(Err(wait));
        }
        let mut challenge = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut challenge);
        let owner = NonceOwner {
            adtech: PEER_NONCE_ADTECH,
            subject,
        };
        self.store
            .insert_nonce(&challenge, owner, now_ms + CHALLENGE_LIFETIME_SECS * 1000)
            .await?;
        Ok(Ok(HandoverChallenge {
            challenge: B64.encode(challenge),
            expires_in: CHALLENGE_LIFETIME_SECS,
        }))
    }

    /// Admits `request` from the peer `subject`: `Ok(None)` when attestation
    /// is not required and none was sent (dev only). Order: the evidence and
    /// its binding, then the challenge (consumed once, after the evidence
    /// verified, so a forged report cannot burn it), then the policy.
    pub(super) async fn admit(
        &self,
        subject: &str,
        request: &HandoverRequest,
        at: SystemTime,
        now_ms: i64,
    ) -> Result<Option<AttestedKeyGeneration>, CheckError> {
        let Some(sent) = &request.key_generation else {
            if self.required {
                return Err(KeyGenerationRefusal::new(
                    "key_generation_evidence_missing",
                    "this coordinator requires an attested key generator",
                    None,
                )
                .into());
            }
            return Ok(None);
        };
        let challenge = B64
            .decode(&sent.challenge)
            .ok()
            .filter(|c| c.len() == 32)
            .ok_or_else(|| {
                KeyGenerationRefusal::new(
                    "challenge_invalid",
                    "keyGeneration.challenge must be base64 of 32 bytes",
                    None,
                )
            })?;
        let digest = message_digest(request)
            .map_err(|e| KeyGenerationRefusal::new("evidence_invalid", e.to_string(), None))?;
        let evidence = Evidence::try_from(sent.evidence.clone())
            .map_err(|e| KeyGenerationRefusal::attestation(&e, None))?;
        let binding = KeyGenerationBinding::new(&challenge, digest);
        let verifier = self.verifier.clone();
        let verified = tokio::task::spawn_blocking(move || {
            verifier.verify_key_generation_at(&evidence, &binding, at)
        })
        .await
        .map_err(|e| KeyGenerationRefusal::new("evidence_invalid", e.to_string(), None))?
        .map_err(|e| KeyGenerationRefusal::attestation(&e, None))?;
        let claims = verified.claims();

        let owner = NonceOwner {
            adtech: PEER_NONCE_ADTECH,
            subject,
        };
        let refused =
            |reason, message: &str| KeyGenerationRefusal::new(reason, message, Some(claims));
        match self.store.consume_nonce(&challenge, owner, now_ms).await? {
            NonceOutcome::Consumed => {}
            NonceOutcome::Expired => {
                return Err(refused("challenge_expired", "the handover challenge expired").into());
            }
            NonceOutcome::OtherOwner | NonceOutcome::Unknown => {
                return Err(refused(
                    "challenge_unknown",
                    "the handover challenge was never issued to this peer or was already used",
                )
                .into());
            }
        }

        let policy = self.policy().await?.ok_or_else(|| {
            refused(
                "no_key_generation_policy",
                "no key-generation policy is in force on this coordinator",
            )
        })?;
        policy
            .admit_key_generation(&verified)
            .map_err(|e| KeyGenerationRefusal::attestation(&e, Some(claims)).into())
            .map(Some)
    }

    /// The policy in force: governance's, else the configured one.
    async fn policy(&self) -> Result<Option<ReleasePolicy>, CheckError> {
        if let Some(stored) = self.store.key_generation_policy().await? {
            return ReleasePolicy::from_json(&stored.policy)
                .map(Some)
                .map_err(|e| {
                    CheckError::Store(StoreError::Corrupt(format!(
                        "stored key-generation policy: {e}"
                    )))
                });
        }
        Ok(self.configured_policy.clone())
    }
}

/// The dev profile's key-generation policy: the simulated key generator,
/// not debuggable (the policy format forbids debug by default).
fn dev_policy() -> Result<ReleasePolicy, LifecycleError> {
    let doc = serde_json::json!({"measurements": [hex::encode(DEV_KEY_GENERATOR_MEASUREMENT)]});
    ReleasePolicy::from_json(&doc.to_string())
        .map_err(|e| LifecycleError::KeyGenerator(format!("dev key-generation policy: {e}")))
}
