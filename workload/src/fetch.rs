//! One fetch: both coordinators in parallel, then open, unwrap, recombine and check.
//!
//! ```text
//!   fresh TEE key (X25519, memory only)
//!   ├─ Type-1: cloud token → /v1/token → challenge → evidence(SHA-512(nonce‖tee)) → release
//!   └─ Type-2: cloud token → /v1/token → challenge → evidence(SHA-512(nonce‖tee)) → release
//!   for each key id released by both:
//!     documents agree → both signatures verify → open both sealed splits with the TEE key
//!     → unwrap `cloud-kms` splits with the workload cloud's KMS → XOR → Tink keyset
//!     → its public key is publicKeyMaterial and publicKeysetHandle
//! ```
//!
//! The fetch is all or nothing: if either coordinator fails, or any key fails a check, the
//! result is an error and every split and key already opened is wiped when dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keys::RecipientKey;
use zeroize::Zeroizing;

use crate::WorkloadError;
use crate::check::{ReleasedKey, SealedContent, recombine_checked};
use crate::client::CoordinatorClient;
use crate::config::Config;
use crate::error::{KeyProblem, Role};
use crate::evidence::{EvidenceSource, evidence_source};
use crate::keyset::{Clock, KeySet, SystemClock};
use crate::kms::Unwrapper;
use crate::token::{TokenSource, token_source};
use wire::ReleaseRequest;

/// Everything a fetch needs, built once from the config and reused by every refresh (HTTP
/// connection pools, KMS clients).
#[derive(Debug)]
pub struct Fetcher {
    config: Config,
    token: Arc<dyn TokenSource>,
    evidence: Arc<dyn EvidenceSource>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    unwrapper: Unwrapper,
}

/// What one coordinator answered.
struct CoordinatorAnswer {
    signing_key: Vec<u8>,
    keys: Vec<ReleasedKey>,
}

impl Fetcher {
    /// Builds the configured token and evidence sources and the system clock.
    pub async fn from_config(config: &Config) -> Result<Self, WorkloadError> {
        config.validate()?;
        let token = token_source(&config.token, config.request_timeout).await?;
        let evidence = evidence_source(config).await?;
        Self::with_parts(config.clone(), token, evidence, Arc::new(SystemClock))
    }

    /// Builds a fetcher from parts (tests, or a caller with its own token or evidence
    /// source). The config's profile rules still apply.
    pub fn with_parts(
        config: Config,
        token: Arc<dyn TokenSource>,
        evidence: Arc<dyn EvidenceSource>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, WorkloadError> {
        config.validate()?;
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            // A coordinator never redirects; following one would resend the credential.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WorkloadError::Config(format!("HTTP client: {e}")))?;
        let unwrapper = Unwrapper::new(&config);
        Ok(Self {
            config,
            token,
            evidence,
            clock,
            http,
            unwrapper,
        })
    }

    /// The configuration this fetcher was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The clock keys are judged by.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// Fetches, recombines and checks the configured keys from both coordinators.
    pub async fn fetch(&self) -> Result<KeySet, WorkloadError> {
        self.fetch_selected(self.config.key_ids.as_deref()).await
    }

    /// Fetches, recombines and checks the key `key_id` alone (of the configured use case).
    pub async fn fetch_key(&self, key_id: &str) -> Result<KeySet, WorkloadError> {
        self.fetch_selected(Some(&[key_id.to_owned()])).await
    }

    /// Both coordinators' keys: `key_ids` if given, else the configured recent ones.
    async fn fetch_selected(&self, key_ids: Option<&[String]>) -> Result<KeySet, WorkloadError> {
        // One TEE key per fetch: its private half never leaves this function's memory and is
        // wiped when it returns; the splits sealed to it are useless afterwards.
        let tee = RecipientKey::generate();
        let tee_public = tee.public_key();
        let (type1, type2) = tokio::try_join!(
            self.ask_coordinator(Role::Type1, tee_public, key_ids),
            self.ask_coordinator(Role::Type2, tee_public, key_ids),
        )?;

        let mut second: BTreeMap<String, ReleasedKey> = BTreeMap::new();
        for key in type2.keys {
            if second.contains_key(&key.id) {
                return Err(duplicate(&key.id, Role::Type2));
            }
            second.insert(key.id.clone(), key);
        }
        let mut pairs = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for key in type1.keys {
            if !seen.insert(key.id.clone()) {
                return Err(duplicate(&key.id, Role::Type1));
            }
            match second.remove(&key.id) {
                Some(other) => pairs.push((key, other)),
                None => one_sided(&key.id, Role::Type1, key_ids.is_some())?,
            }
        }
        for id in second.keys() {
            one_sided(id, Role::Type2, key_ids.is_some())?;
        }

        let signing_keys = [type1.signing_key.as_slice(), type2.signing_key.as_slice()];
        let mut held = Vec::with_capacity(pairs.len());
        for (k1, k2) in &pairs {
            k1.agrees_with(k2)?;
            k1.verify_signatures(signing_keys)?;
            let split1 = self.open_split(&tee, k1).await?;
            let split2 = self.open_split(&tee, k2).await?;
            held.push(recombine_checked(
                k1,
                &split1,
                &split2,
                self.config.is_dev(),
            )?);
        }
        Ok(KeySet::new(held, Arc::clone(&self.clock)))
    }

    async fn ask_coordinator(
        &self,
        role: Role,
        tee_public: [u8; 32],
        key_ids: Option<&[String]>,
    ) -> Result<CoordinatorAnswer, WorkloadError> {
        let config = self.config.coordinators.get(role);
        let client = CoordinatorClient {
            role,
            config,
            http: &self.http,
        };
        let subject = self.token.token(&config.audience()).await?;
        let (credential, signing_key) =
            tokio::try_join!(client.exchange(&subject), client.signing_key())?;
        drop(subject);
        let nonce = client.challenge(&credential).await?;
        let report_data = attestation::expected_report_data(&nonce, &tee_public);
        let evidence = self.evidence.evidence(report_data).await?;
        let request = ReleaseRequest {
            nonce: B64.encode(nonce),
            tee_public_key: B64.encode(tee_public),
            evidence,
            use_case: self.config.use_case.clone(),
            key_ids: key_ids.map(<[String]>::to_vec),
            // Exclusive with ids (a fetch by id asks for that key whatever its age).
            max_age_seconds: self.config.max_age_seconds.filter(|_| key_ids.is_none()),
        };
        let documents = client.release(&credential, &request).await?;
        let keys = documents
            .into_iter()
            .map(|doc| ReleasedKey::parse(doc, role))
            .collect::<Result<Vec<_>, _>>()?;
        tracing::debug!(coordinator = %role, keys = keys.len(), "keys released");
        Ok(CoordinatorAnswer { signing_key, keys })
    }

    /// Opens a sealed split with the TEE key (AAD = the bare key id) and, for `cloud-kms`,
    /// unwraps the KMS ciphertext inside.
    async fn open_split(
        &self,
        tee: &RecipientKey,
        key: &ReleasedKey,
    ) -> Result<Zeroizing<Vec<u8>>, WorkloadError> {
        let opened = keys::open(tee, keys::RELEASE_INFO, key.id.as_bytes(), &key.own.sealed)
            .map_err(|_| {
                WorkloadError::key(&key.id, KeyProblem::SealedSplitDoesNotOpen(key.served_by))
            })?;
        match key.own.content {
            SealedContent::Broker => Ok(opened),
            SealedContent::CloudKms => {
                self.unwrapper
                    .unwrap(&key.id, key.served_by, &key.own.kek_uri, &opened)
                    .await
            }
        }
    }
}

/// A key released by one coordinator only cannot be recombined. When the caller asked for
/// it by id that is an error; otherwise the coordinators are momentarily out of step (a key
/// handed over seconds ago) and the key is skipped until the next refresh.
fn one_sided(id: &str, role: Role, by_id: bool) -> Result<(), WorkloadError> {
    if by_id {
        return Err(WorkloadError::key(id, KeyProblem::OnlyOneCoordinator(role)));
    }
    tracing::warn!(key_id = id, coordinator = %role, "key released by one coordinator only; skipped");
    Ok(())
}

fn duplicate(id: &str, role: Role) -> WorkloadError {
    WorkloadError::key(
        id,
        KeyProblem::Malformed(format!("the {role} coordinator released it twice")),
    )
}

/// Fetches the keys once with the configured sources and the system clock.
pub async fn fetch_once(config: &Config) -> Result<KeySet, WorkloadError> {
    Fetcher::from_config(config).await?.fetch().await
}
