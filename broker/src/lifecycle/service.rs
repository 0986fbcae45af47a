use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::{Cloud, KeyWrapper};
use idp::{Clock, IssuerConfig, IssuerKind, IssuerRegistry, JwksCache, JwksPolicy, TokenValidator};
use keys::{KeyIdFormat, KeySigner};
use serde_json::json;
use zeroize::Zeroizing;

use wire::{HandoverAnswer, PeerKeys};

use super::handover::{PeerClient, handover_request};
use super::handover_keys::HandoverKeys;
use super::key_generation::{CheckError, KeyGenerationCheck, KeyGenerator};
use super::manifest::KeyProofs;
use crate::audit::{Audit, AuditEvent, EventKind};
use crate::config::{Config, KeysConfig, Role, UseCaseConfig};
use crate::issuer::Issuer;
use crate::secrets::secret_or_create;
use crate::storage::{KeyRecord, Store, StoreError, StoredSplit, status};
use crate::time::unix_ms;

const SIGNER_SECRET: &str = "public_key_signer";
const PEER_KEYS_SETTING: &str = "peer_keys";
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a lifecycle step failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A KEK failed to wrap or unwrap.
    #[error("KEK: {0}")]
    Kek(#[from] cloud_adapters::WrapError),
    /// Key material could not be made or read.
    #[error("key material: {0}")]
    Keys(#[from] keys::KeyError),
    /// The peer coordinator could not be reached or refused.
    #[error("peer coordinator: {0}")]
    Peer(String),
    /// A stored value does not decode.
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// The key generator could not attest, or its attestation could not
    /// be set up.
    #[error("key generator: {0}")]
    KeyGenerator(String),
    /// A re-wrap named a cloud without a `[clouds.<name>]` section.
    #[error("cloud `{0}` is not enabled on this coordinator")]
    CloudNotEnabled(String),
}

/// What [`KeyService::rewrap`] did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RewrapOutcome {
    /// The splits added, one per key and cloud.
    pub rewrapped: Vec<RewrappedSplit>,
}

/// One split added by a re-wrap.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RewrappedSplit {
    /// The key.
    pub key_id: String,
    /// The cloud whose KEK now wraps a copy of the split.
    pub cloud: String,
}

/// The key lifecycle of one coordinator.
pub struct KeyService {
    store: Store,
    storage_kek: Arc<dyn KeyWrapper>,
    /// Each enabled workload cloud's KEK, by cloud name.
    cloud_keks: Vec<(Cloud, Arc<dyn KeyWrapper>)>,
    clock: Arc<dyn Clock>,
    audit: Arc<dyn Audit>,
    issuer: Arc<Issuer>,
    role: Role,
    name: String,
    use_cases: Vec<UseCaseConfig>,
    timing: KeysConfig,
    signer: KeySigner,
    /// Type-2 only: open the splits the Type-1 seals to it.
    handover_keys: Option<HandoverKeys>,
    /// Type-2 only: validates the Type-1's tokens.
    peer_validator: Option<TokenValidator>,
    /// Type-1 only: talks to the Type-2.
    peer: Option<PeerClient>,
    /// Type-1 only: attests each handover (`None`: `key_generator = "none"`).
    key_generator: Option<KeyGenerator>,
    /// Type-2 only: admits the Type-1's key generator.
    key_generation: Option<KeyGenerationCheck>,
    /// This coordinator's base URL, as the manifest names it.
    public_url: String,
    /// The signed manifest's inclusion proofs.
    pub(super) proofs: KeyProofs,
}

impl std::fmt::Debug for KeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyService")
            .field("role", &self.role)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl KeyService {
    /// Opens the lifecycle: loads (or creates) this coordinator's secrets.
    #[allow(clippy::too_many_arguments)] // the parts of AppState it needs
    pub async fn open(
        config: &Config,
        store: Store,
        storage_kek: Arc<dyn KeyWrapper>,
        cloud_keks: Vec<(Cloud, Arc<dyn KeyWrapper>)>,
        clock: Arc<dyn Clock>,
        audit: Arc<dyn Audit>,
        issuer: Arc<Issuer>,
    ) -> Result<Arc<KeyService>, LifecycleError> {
        let now_ms = unix_ms(clock.now());
        let signer_pkcs8 =
            secret_or_create::<LifecycleError>(&store, &storage_kek, SIGNER_SECRET, now_ms, || {
                Ok(KeySigner::generate()?.to_pkcs8())
            })
            .await?;
        let signer = KeySigner::from_pkcs8(&signer_pkcs8)?;
        let role = config.coordinator.role;
        let (mut handover_keys, mut peer_validator, mut peer) = (None, None, None);
        let (mut key_generator, mut key_generation) = (None, None);
        match role {
            Role::Type2 => {
                key_generation = Some(KeyGenerationCheck::open(config, &store)?);
                handover_keys = Some(HandoverKeys::new(
                    store.clone(),
                    storage_kek.clone(),
                    config.coordinator.handover_key_rotation,
                    config.coordinator.handover_key_overlap,
                ));
                if let Some(peer_issuer) = &config.coordinator.peer_issuer {
                    peer_validator = Some(peer_validator_for(
                        config,
                        peer_issuer.as_str(),
                        clock.clone(),
                    )?);
                    // The Type-1 publishes its signing key at its issuer URL.
                    peer = Some(
                        PeerClient::new(peer_issuer.as_str(), config.coordinator.peer_timeout)
                            .map_err(|e| LifecycleError::Peer(e.to_string()))?,
                    );
                }
            }
            Role::Type1 => {
                key_generator = KeyGenerator::open(config).await?;
                if let Some(url) = config
                    .coordinator
                    .peer_url
                    .as_deref()
                    .filter(|u| *u != "embedded")
                {
                    peer = Some(
                        PeerClient::new(url, config.coordinator.peer_timeout)
                            .map_err(|e| LifecycleError::Peer(e.to_string()))?,
                    );
                }
            }
        }
        Ok(Arc::new(KeyService {
            store,
            storage_kek,
            cloud_keks,
            clock,
            audit,
            issuer,
            role,
            name: config.coordinator.name.clone(),
            use_cases: config.use_cases.clone(),
            timing: config.keys.clone(),
            signer,
            handover_keys,
            peer_validator,
            peer,
            key_generator,
            key_generation,
            public_url: config.public_url().trim_end_matches('/').to_owned(),
            proofs: KeyProofs::default(),
        }))
    }

    /// This coordinator's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configured use cases.
    pub fn use_cases(&self) -> &[UseCaseConfig] {
        &self.use_cases
    }

    /// The keys this coordinator publishes for its peer and workloads.
    pub async fn own_keys(&self) -> Result<PeerKeys, LifecycleError> {
        let (handover_key, handover_keys) = match &self.handover_keys {
            Some(ring) => {
                let (current, announced) = ring.announce(self.now_ms()).await?;
                (Some(current), announced)
            }
            None => (None, Vec::new()),
        };
        Ok(PeerKeys {
            handover_key,
            signing_key: B64.encode(self.signer.public_key_spki_der()),
            handover_keys,
        })
    }

    /// Split B of `key_id`, opened with the handover key that sealed it if
    /// that key still opens handovers (Type-2 only).
    pub(super) async fn open_handover(
        &self,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, LifecycleError> {
        match &self.handover_keys {
            Some(ring) => ring.open(self.now_ms(), key_id, sealed).await,
            None => Ok(None),
        }
    }

    /// The Type-2's key-generation check.
    pub(super) fn key_generation(&self) -> Option<&KeyGenerationCheck> {
        self.key_generation.as_ref()
    }

    /// Admits the key generator of `request` (Type-2): `Ok(None)` when no
    /// attestation is required and none was sent.
    pub(super) async fn admit_key_generation(
        &self,
        subject: &str,
        request: &wire::HandoverRequest,
    ) -> Result<Option<attestation::AttestedKeyGeneration>, CheckError> {
        match &self.key_generation {
            Some(check) => {
                check
                    .admit(subject, request, self.clock.now(), self.now_ms())
                    .await
            }
            None => Ok(None),
        }
    }

    pub(super) fn peer_validator(&self) -> Option<&TokenValidator> {
        self.peer_validator.as_ref()
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn now_ms(&self) -> i64 {
        unix_ms(self.clock.now())
    }

    pub(super) fn sign(&self, key_id: &str, creation_ms: i64, public_key_b64: &str) -> String {
        B64.encode(self.signer.sign(&keys::public_key_signature_message(
            key_id,
            creation_ms,
            public_key_b64,
        )))
    }

    /// An event of this coordinator's lifecycle.
    fn event(&self, kind: EventKind, details: serde_json::Value) -> AuditEvent {
        AuditEvent::new(kind, format!("coordinator:{}", self.name), details)
    }

    /// Wraps a split with the storage KEK and every workload cloud's KEK.
    pub(super) async fn wrap_split(
        &self,
        split: &[u8],
    ) -> Result<Vec<StoredSplit>, LifecycleError> {
        let mut out = Vec::with_capacity(1 + self.cloud_keks.len());
        let clouds = self.cloud_keks.iter().map(|(_, kek)| kek);
        for kek in std::iter::once(&self.storage_kek).chain(clouds) {
            out.push(StoredSplit {
                kek_uri: kek.kek_uri().to_string(),
                ciphertext: kek.wrap(split).await?,
            });
        }
        Ok(out)
    }

    /// Gives every live key a split wrapped by `cloud`'s KEK (every enabled
    /// cloud when `None`), from the storage KEK's copy: what enabling a
    /// cloud, or changing its KEK, needs. Idempotent, and safe with several
    /// replicas (a split another replica added first is left alone). Each
    /// key re-wrapped is audited.
    pub async fn rewrap(&self, cloud: Option<&str>) -> Result<RewrapOutcome, LifecycleError> {
        let targets: Vec<_> = match cloud {
            None => self.cloud_keks.iter().collect(),
            Some(name) => {
                let target = self.cloud_keks.iter().find(|(c, _)| *c == name);
                vec![target.ok_or_else(|| LifecycleError::CloudNotEnabled(name.to_owned()))?]
            }
        };
        let source = self.storage_kek.kek_uri().to_string();
        let mut outcome = RewrapOutcome::default();
        for (name, kek) in targets {
            let target = kek.kek_uri().to_string();
            let missing = self
                .store
                .splits_missing_kek(&source, &target, self.now_ms())
                .await?;
            for (key_id, stored) in missing {
                let split = self.storage_kek.unwrap(&stored.ciphertext).await?;
                let rewrapped = StoredSplit {
                    kek_uri: target.clone(),
                    ciphertext: kek.wrap(&split).await?,
                };
                drop(split);
                let entry = self
                    .event(
                        EventKind::KeyRewrapped,
                        json!({"keyId": key_id, "cloud": name, "kek": target}),
                    )
                    .outbox(self.now_ms());
                if self
                    .store
                    .add_split(&key_id, &rewrapped, self.now_ms(), &entry)
                    .await?
                {
                    self.audit.publish_outbox().await;
                    outcome.rewrapped.push(RewrappedSplit {
                        key_id,
                        cloud: name.as_str().to_owned(),
                    });
                }
            }
        }
        Ok(outcome)
    }

    /// This coordinator's base URL.
    pub(super) fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The peer's base URL, if a peer is configured.
    pub(super) fn peer_url(&self) -> Option<&str> {
        self.peer.as_ref().map(PeerClient::audience)
    }

    pub(super) fn peer_client(&self) -> Option<&PeerClient> {
        self.peer.as_ref()
    }

    /// SubjectPublicKeyInfo (DER) of this coordinator's public key signing key.
    pub(super) fn signing_key_spki(&self) -> Vec<u8> {
        self.signer.public_key_spki_der().to_vec()
    }

    /// The peer's signing key (SPKI DER): the one last seen, else fetched.
    pub(super) async fn peer_signing_key(&self) -> Result<Vec<u8>, LifecycleError> {
        let keys = match self.last_peer_keys().await? {
            Some(keys) => keys,
            None => self.fetch_peer_keys().await?,
        };
        B64.decode(&keys.signing_key)
            .map_err(|e| LifecycleError::Corrupt(format!("the peer's signing key: {e}")))
    }

    /// The peer's keys: fetched fresh when possible, else the last ones seen.
    async fn peer_keys(&self) -> Result<PeerKeys, LifecycleError> {
        match self.fetch_peer_keys().await {
            Ok(keys) => Ok(keys),
            Err(e) => self.last_peer_keys().await?.ok_or(e),
        }
    }

    /// The peer's keys as it publishes them now, remembered for when it
    /// cannot be reached.
    async fn fetch_peer_keys(&self) -> Result<PeerKeys, LifecycleError> {
        let peer = self
            .peer
            .as_ref()
            .ok_or_else(|| LifecycleError::Peer("no peer configured".into()))?;
        let keys = peer.keys().await?;
        let text =
            serde_json::to_string(&keys).map_err(|e| LifecycleError::Corrupt(e.to_string()))?;
        self.store.set_setting(PEER_KEYS_SETTING, &text).await?;
        Ok(keys)
    }

    /// The peer's keys last fetched, if ever.
    async fn last_peer_keys(&self) -> Result<Option<PeerKeys>, LifecycleError> {
        self.store
            .setting(PEER_KEYS_SETTING)
            .await?
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| LifecycleError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    /// Whether `signature` (base64) is the Type-1's signature over the key,
    /// checked by a Type-2 before it stores split B or acknowledges: a
    /// token of the Type-1's issuer alone does not make a key the Type-1's.
    /// Tried with the signing key last seen, then once with the one the
    /// Type-1 publishes now (it may have a new one); `Err` only when that
    /// cannot be fetched.
    pub(super) async fn signed_by_peer(
        &self,
        key_id: &str,
        creation_ms: i64,
        public_key_b64: &str,
        signature: &str,
    ) -> Result<bool, LifecycleError> {
        let Ok(signature) = B64.decode(signature) else {
            return Ok(false);
        };
        let message = keys::public_key_signature_message(key_id, creation_ms, public_key_b64);
        let verifies = |keys: &PeerKeys| {
            B64.decode(&keys.signing_key)
                .is_ok_and(|spki| keys::verify_signature(&spki, &message, &signature).is_ok())
        };
        if self
            .last_peer_keys()
            .await?
            .is_some_and(|keys| verifies(&keys))
        {
            return Ok(true);
        }
        Ok(verifies(&self.fetch_peer_keys().await?))
    }

    /// Tops every use case up to `keys.active_keys` live keys (a key due for
    /// replacement within `keys.refresh_window` does not count). With
    /// `rotate`, that use case gets a whole fresh set regardless. Only a
    /// Type-1 generates. Returns the ids generated.
    ///
    /// The database lock is held only for short counting and inserting
    /// transactions, never across network calls (the peer, a cloud KMS): on
    /// SQLite it blocks every other writer. Key ids are reserved in the first
    /// transaction; whatever a concurrent replica made unnecessary in the
    /// meantime is discarded in the second.
    pub async fn ensure_keys(&self, rotate: Option<&str>) -> Result<Vec<String>, LifecycleError> {
        if self.role != Role::Type1 {
            return Ok(Vec::new());
        }
        let mut generated = Vec::new();
        let mut peer_keys: Option<PeerKeys> = None;
        for use_case in &self.use_cases {
            let forced = rotate == Some(use_case.name.as_str());
            let wanted = i64::from(self.timing.active_keys);
            let horizon = |now: i64| now + ms(self.timing.refresh_window);

            let now = self.now_ms();
            let mut tx = self.store.lock_key_generation(now).await?;
            let live = tx.live_keys(&use_case.name, horizon(now)).await?;
            let missing = if forced {
                wanted
            } else {
                (wanted - live).max(0)
            };
            if missing == 0 {
                tx.commit().await?;
                continue;
            }
            let mut ids = Vec::new();
            for _ in 0..missing {
                ids.push(match use_case.key_id_format {
                    KeyIdFormat::Uuid => keys::uuid_key_id(),
                    KeyIdFormat::Sequence => {
                        keys::sequence_key_id(tx.next_sequence(&use_case.name).await?)
                    }
                });
            }
            tx.commit().await?;

            let peer = match &peer_keys {
                Some(p) => p.clone(),
                None => peer_keys.insert(self.peer_keys().await?).clone(),
            };
            let handover_public = peer
                .handover_key
                .as_deref()
                .and_then(|k| B64.decode(k).ok())
                .ok_or_else(|| LifecycleError::Peer("the peer published no handover key".into()))?;
            let mut prepared = Vec::with_capacity(ids.len());
            for id in ids {
                prepared.push(
                    self.prepare_key(use_case, id, now, &handover_public)
                        .await?,
                );
            }

            let mut tx = self.store.lock_key_generation(self.now_ms()).await?;
            let live = tx.live_keys(&use_case.name, horizon(now)).await?;
            let still_missing = if forced {
                wanted
            } else {
                (wanted - live).max(0)
            };
            let mut made = Vec::new();
            for (record, wrapped_a, sealed_b) in prepared
                .into_iter()
                .take(usize::try_from(still_missing).unwrap_or(0))
            {
                tx.insert(&record, &wrapped_a, Some(&sealed_b)).await?;
                let generated = self.event(
                    EventKind::KeyGenerated,
                    json!({"keyId": record.id, "useCase": use_case.name}),
                );
                tx.outbox(&generated.outbox(self.now_ms())).await?;
                made.push(record.id);
            }
            tx.commit().await?;
            self.audit.publish_outbox().await;
            if !made.is_empty() {
                tracing::info!(use_case = %use_case.name, count = made.len(), "generated keys; handing split B to the peer");
            }
            generated.extend(made);
        }
        Ok(generated)
    }

    /// Generates one key pair, splits it, wraps split A and seals split B.
    /// The plaintext keyset and splits are dropped (zeroized) on return.
    async fn prepare_key(
        &self,
        use_case: &UseCaseConfig,
        id: String,
        now: i64,
        handover_public: &[u8],
    ) -> Result<(KeyRecord, Vec<StoredSplit>, Vec<u8>), LifecycleError> {
        let key = keys::generate(use_case.aead)?;
        let splits = keys::split(key.private_keyset());
        let wrapped_a = self.wrap_split(&splits.a).await?;
        let sealed_b = keys::seal(
            handover_public,
            keys::HANDOVER_INFO,
            id.as_bytes(),
            &splits.b,
        )?;
        let public_b64 = key.public_key_base64();
        let record = KeyRecord {
            signature: self.sign(&id, now, &public_b64),
            id,
            use_case: use_case.name.clone(),
            status: status::PENDING.into(),
            public_key: key.public_key().to_vec(),
            public_keyset: key.public_keyset_json().to_owned(),
            creation_time: now,
            activation_time: now,
            expiration_time: now + ms(self.timing.validity),
            ttl_time: now + ms(self.timing.ttl),
            peer_signature: String::new(),
            handover_attempts: 0,
            next_attempt_at: now,
            revoked_at: None,
        };
        Ok((record, wrapped_a, sealed_b))
    }

    /// Sends every due pending key's sealed split B to the Type-2. A key
    /// becomes active only on a verified acknowledgement; a failure is
    /// retried with exponential backoff and jitter. Returns (activated,
    /// failed).
    pub async fn run_handovers(&self) -> Result<(usize, usize), LifecycleError> {
        let Some(peer) = self.peer.as_ref().filter(|_| self.role == Role::Type1) else {
            return Ok((0, 0));
        };
        let due = self.store.due_handovers(self.now_ms()).await?;
        if due.is_empty() {
            return Ok((0, 0));
        }
        let peer_keys = self.peer_keys().await;
        let (mut activated, mut failed) = (0, 0);
        for (key, sealed) in due {
            let outcome = match &peer_keys {
                Ok(peer_keys) => self.hand_over(peer, peer_keys, &key, &sealed).await,
                Err(e) => Err(LifecycleError::Peer(e.to_string())),
            };
            match outcome {
                Ok(peer_signature) => {
                    let entry = self
                        .event(
                            EventKind::KeyActivated,
                            json!({"keyId": key.id, "useCase": key.use_case}),
                        )
                        .outbox(self.now_ms());
                    if self
                        .store
                        .activate_key(&key.id, &peer_signature, &entry)
                        .await?
                    {
                        self.audit.publish_outbox().await;
                        activated += 1;
                    }
                }
                Err(e) => {
                    failed += 1;
                    let attempts = key.handover_attempts + 1;
                    let delay = backoff(attempts);
                    tracing::warn!(key_id = %key.id, attempts, retry_in_ms = ms(delay), error = %e, "handover failed");
                    self.store
                        .reschedule_handover(&key.id, attempts, self.now_ms() + ms(delay))
                        .await?;
                }
            }
        }
        Ok((activated, failed))
    }

    async fn hand_over(
        &self,
        peer: &PeerClient,
        peer_keys: &PeerKeys,
        key: &KeyRecord,
        sealed: &[u8],
    ) -> Result<String, LifecycleError> {
        let now = self.clock.now();
        let token = self
            .issuer
            .current()
            .mint_outbound_token(now, &self.name, peer.audience(), Duration::from_secs(300))
            .map_err(|e| LifecycleError::Peer(format!("cannot mint the handover token: {e}")))?;
        let mut request = handover_request(key, sealed);
        if let Some(generator) = &self.key_generator {
            // A fresh challenge per attempt: a report is good for one
            // handover only.
            let challenge = peer.handover_challenge(token.as_str()).await?;
            request.key_generation = Some(generator.attest(&challenge, &request).await?);
        }
        let answer: HandoverAnswer = peer.hand_over(token.as_str(), &request).await?;
        if answer.key_id != key.id {
            return Err(LifecycleError::Peer(
                "the peer acknowledged another key".into(),
            ));
        }
        let spki = B64
            .decode(&peer_keys.signing_key)
            .map_err(|e| LifecycleError::Peer(e.to_string()))?;
        let signature = B64
            .decode(&answer.public_key_signature)
            .map_err(|e| LifecycleError::Peer(e.to_string()))?;
        let message = keys::public_key_signature_message(
            &key.id,
            key.creation_time,
            &B64.encode(&key.public_key),
        );
        keys::verify_signature(&spki, &message, &signature).map_err(|_| {
            LifecycleError::Peer("the peer's acknowledgement signature does not verify".into())
        })?;
        Ok(answer.public_key_signature)
    }

    /// Deletes keys past their TTL and pending keys whose handover did not
    /// succeed within `keys.handover_timeout`.
    pub async fn purge(&self) -> Result<usize, LifecycleError> {
        let now = self.now_ms();
        let purged = self
            .store
            .purge_keys(
                now,
                now - ms(self.timing.handover_timeout),
                |id, was_pending| {
                    let kind = if was_pending {
                        EventKind::KeyDropped
                    } else {
                        EventKind::KeyDeleted
                    };
                    self.event(kind, json!({"keyId": id})).outbox(now)
                },
            )
            .await?;
        self.audit.publish_outbox().await;
        Ok(purged.len())
    }

    /// Revokes a key (admin).
    pub async fn revoke(&self, id: &str, actor: &str) -> Result<KeyRecord, LifecycleError> {
        let now = self.now_ms();
        let key = self
            .store
            .revoke_key(id, now, |key| {
                AuditEvent::new(
                    EventKind::KeyRevoked,
                    actor,
                    json!({"keyId": id, "useCase": key.use_case}),
                )
                .outbox(now)
            })
            .await?;
        self.audit.publish_outbox().await;
        Ok(key)
    }

    /// Runs the lifecycle until the task is dropped: due handovers every two
    /// seconds; purge (expired keys, pending keys past the handover timeout)
    /// every minute; generation every `keys.generation_interval`, or again
    /// after a few seconds when the last attempt failed (a Type-2 that is
    /// still starting must not postpone key generation by hours).
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        const RETRY: Duration = Duration::from_secs(5);
        let service = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_generation = tokio::time::Instant::now();
            // Live keys made before a cloud was enabled (or its KEK changed)
            // get that cloud's split first; retried every tick until done.
            let mut rewrapped = service.cloud_keks.is_empty();
            let mut next_purge = tokio::time::Instant::now();
            loop {
                tick.tick().await;
                if !rewrapped {
                    match service.rewrap(None).await {
                        Ok(outcome) => {
                            if !outcome.rewrapped.is_empty() {
                                tracing::info!(
                                    splits = outcome.rewrapped.len(),
                                    "re-wrapped live keys for enabled clouds"
                                );
                            }
                            rewrapped = true;
                        }
                        Err(e) => tracing::warn!(error = %e, "re-wrap postponed; retrying"),
                    }
                }
                if tokio::time::Instant::now() >= next_purge {
                    if let Err(e) = service.purge().await {
                        tracing::warn!(error = %e, "key purge failed");
                    }
                    if let Err(e) = service.store.purge_expired_nonces(service.now_ms()).await {
                        tracing::warn!(error = %e, "nonce purge failed");
                    }
                    next_purge = tokio::time::Instant::now() + Duration::from_secs(60);
                }
                if tokio::time::Instant::now() >= next_generation {
                    let outcome = service.ensure_keys(None).await.map(|_| ());
                    next_generation = tokio::time::Instant::now()
                        + match outcome {
                            Ok(()) => service.timing.generation_interval,
                            Err(e) => {
                                tracing::warn!(error = %e, "key generation postponed; retrying soon");
                                RETRY
                            }
                        };
                }
                if let Err(e) = service.run_handovers().await {
                    tracing::warn!(error = %e, "handover round failed");
                }
            }
        })
    }
}

/// 1 s, 2 s, 4 s … capped at five minutes, each ±20 %.
fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let base = Duration::from_secs(1)
        .saturating_mul(2u32.saturating_pow(exp))
        .min(MAX_BACKOFF);
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.8..1.2);
    base.mul_f64(jitter)
}

fn peer_validator_for(
    config: &Config,
    peer_issuer: &str,
    clock: Arc<dyn Clock>,
) -> Result<TokenValidator, LifecycleError> {
    let registry = IssuerRegistry::new(config.is_dev());
    let mut entry = IssuerConfig::new(
        "peer",
        IssuerKind::Oidc,
        peer_issuer.trim_end_matches('/'),
        config.public_url(),
    );
    // The broker's issuer signs with ES256 only.
    entry.algorithms = vec![
        "ES256"
            .parse()
            .map_err(|_| LifecycleError::Corrupt("ES256".into()))?,
    ];
    registry
        .insert(entry)
        .map_err(|e| LifecycleError::Peer(format!("coordinator.peer_issuer: {e}")))?;
    let policy = JwksPolicy {
        allow_http_loopback: config.is_dev(),
        ..JwksPolicy::default()
    };
    let jwks =
        JwksCache::new(clock.clone(), policy).map_err(|e| LifecycleError::Peer(e.to_string()))?;
    Ok(TokenValidator::new(registry, jwks, clock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for (attempts, base) in [
            (1, 1.0),
            (2, 2.0),
            (3, 4.0),
            (9, 256.0),
            (10, 300.0),
            (50, 300.0),
        ] {
            let d = backoff(attempts).as_secs_f64();
            assert!(
                d >= base * 0.8 && d <= base * 1.2,
                "attempt {attempts}: {d}"
            );
        }
    }
}
