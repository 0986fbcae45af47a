//! `POST /v1/encryptionKeys:release` (DESIGN §5.3): splits for a workload
//! that proves, with SNP evidence bound to a fresh nonce and its TEE key,
//! that it runs the code the use case's release policy allows.
//!
//! Order of checks: credential (extractor), request shape, authorization
//! (ad tech, use case, cloud), evidence verification with the report-data
//! binding, the nonce (consumed once, atomically, after the evidence
//! verified so a forged report cannot burn a legitimate workload's nonce),
//! the release policy, the keys. Each refusal after the credential is
//! audited with its reason and, once verified, the attested claims.

use std::collections::HashMap;

use std::sync::Arc;

use attestation::{Claims, PlatformEvidence, ReleaseBinding, ReleasePolicy, Verifier};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use wire::{EncryptionKey, EncryptionKeyList, ReleaseRequest};

use super::access::workload_identity;
use super::challenge::NONCE_LEN;
use super::encryption_key::encryption_key;
use super::{Distribution, KeyAccess, KeyApiError};
use crate::audit::{AuditEvent, EventKind};
use crate::config::{Config, UnwrapMode};
use crate::federation::{Caller, CredentialError, KeysRelease};
use crate::rate_limit::{CHALLENGES, IdentityLimiter};
use crate::storage::{KeyRecord, NonceOutcome, NonceOwner, Store};

/// Most key ids one release may name.
const MAX_KEY_IDS: usize = 100;

/// What attested release needs besides the store: the evidence verifier
/// (with its chain cache) and the release policies from the configuration.
pub struct Release {
    /// Shared with the blocking tasks that verify evidence.
    verifier: Arc<Verifier>,
    /// Policies from `use_cases[].release_policy` files, by use case. A
    /// policy governance applied (in the database) takes precedence.
    file_policies: HashMap<String, ReleasePolicy>,
    /// Challenges per workload identity (source issuer and subject),
    /// shared by replicas on PostgreSQL.
    challenges: IdentityLimiter,
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release")
            .field("verifier", &self.verifier)
            .field("file_policies", &self.file_policies.keys())
            .finish_non_exhaustive()
    }
}

/// Why the release state could not be built at start.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseSetupError {
    /// A file named in the configuration cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A policy or trust anchor is invalid.
    #[error("{what}: {source}")]
    Invalid {
        /// Which setting.
        what: String,
        /// Why.
        source: attestation::Error,
    },
}

impl Release {
    /// Loads the trust anchors (AMD's, plus `attestation.extra_roots`,
    /// which `config check` allows in the dev profile only) and the
    /// release policy files; counts challenges in `store` on PostgreSQL.
    pub fn open(config: &Config, store: &Store) -> Result<Release, ReleaseSetupError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|source| ReleaseSetupError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let roots = config
            .attestation
            .extra_roots
            .iter()
            .map(|p| read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let verifier =
            Verifier::with_extra_roots(&roots).map_err(|source| ReleaseSetupError::Invalid {
                what: "attestation.extra_roots".into(),
                source,
            })?;
        let mut file_policies = HashMap::new();
        for use_case in &config.use_cases {
            if let Some(path) = &use_case.release_policy {
                let text = String::from_utf8_lossy(&read(path)?).into_owned();
                let policy = ReleasePolicy::from_json(&text).map_err(|source| {
                    ReleaseSetupError::Invalid {
                        what: format!("release policy of `{}`", use_case.name),
                        source,
                    }
                })?;
                file_policies.insert(use_case.name.clone(), policy);
            }
        }
        let per_minute = std::num::NonZeroU32::new(config.attestation.challenges_per_minute)
            .unwrap_or(std::num::NonZeroU32::MIN);
        Ok(Release {
            verifier: Arc::new(verifier),
            file_policies,
            challenges: IdentityLimiter::new(store, CHALLENGES, per_minute),
        })
    }

    /// Admits one challenge at `now_ms` for the credential's workload
    /// identity, or says how long to wait.
    pub(super) async fn admit_challenge(
        &self,
        credential: &idp::VerifiedCredential,
        now_ms: i64,
    ) -> Result<(), KeyApiError> {
        match self
            .challenges
            .check(credential.src_iss(), credential.src_sub(), now_ms)
            .await?
        {
            None => Ok(()),
            Some(wait) => Err(KeyApiError::RateLimited(
                (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
            )),
        }
    }

    /// Forgets identities not seen for a while (the shared windows are
    /// purged with the token exchange limit's, in the same table).
    pub(super) async fn prune_challenge_limits(&self, now_ms: i64) {
        self.challenges.prune(now_ms).await;
    }

    /// The policy in force for `use_case`: governance's, else the file's.
    async fn policy(
        &self,
        store: &Store,
        use_case: &str,
    ) -> Result<Option<ReleasePolicy>, KeyApiError> {
        if let Some(stored) = store.release_policy(use_case).await? {
            let policy = ReleasePolicy::from_json(&stored.policy).map_err(|e| {
                KeyApiError::Unavailable(format!("stored release policy of `{use_case}`: {e}"))
            })?;
            return Ok(Some(policy));
        }
        Ok(self.file_policies.get(use_case).cloned())
    }
}

/// A refusal on its way out: what to answer, and what to audit.
struct Refusal {
    error: KeyApiError,
    claims: Option<Claims>,
}

impl From<KeyApiError> for Refusal {
    fn from(error: KeyApiError) -> Self {
        Refusal {
            error,
            claims: None,
        }
    }
}

fn attestation_refusal(e: &attestation::Error, claims: Option<Claims>) -> Refusal {
    let reason = e.reason().map_or("evidence_invalid", |r| r.code());
    Refusal {
        error: KeyApiError::AttestationFailed {
            reason,
            message: e.to_string(),
        },
        claims,
    }
}

fn decode_32(field: &str, value: &str) -> Result<[u8; 32], KeyApiError> {
    B64.decode(value)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| {
            KeyApiError::InvalidArgument(format!("`{field}` must be base64 of 32 bytes"))
        })
}

/// `POST /v1/encryptionKeys:release`
pub(super) async fn release(
    State(service): State<Arc<Distribution>>,
    caller: Result<Caller<KeysRelease>, CredentialError>,
    body: Bytes,
) -> Response {
    match caller {
        Ok(caller) => release_for(&service, &caller, &body).await.into_response(),
        // A refused credential is a refused release too: audited (with no
        // ad tech to attribute it to), then answered as the extractor would.
        Err(rejection) => {
            let event = AuditEvent::new(
                EventKind::KeysReleaseRefused,
                "unauthenticated",
                json!({"reason": rejection.reason(), "message": rejection.message()}),
            );
            if let Err(e) = service.audit.record(service.now_ms(), event).await {
                return KeyApiError::from(e).into_response();
            }
            rejection.into_response()
        }
    }
}

async fn release_for(
    service: &Distribution,
    caller: &Caller<KeysRelease>,
    body: &[u8],
) -> Result<Json<EncryptionKeyList>, KeyApiError> {
    let credential = &caller.credential;
    let actor = format!("adtech:{}", credential.adtech());
    match release_checked(service, credential, body).await {
        Ok((grant, keys, claims, documents)) => {
            let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
            let event = AuditEvent::new(
                EventKind::KeysReleased,
                actor,
                json!({
                    "useCase": grant.use_case.name,
                    "cloud": grant.cloud,
                    "unwrap": unwrap_name(grant.unwrap),
                    "keyIds": ids,
                    "workload": workload_identity(credential),
                    "claims": claims,
                }),
            );
            service.audit.record(service.now_ms(), event).await?;
            Ok(Json(EncryptionKeyList { keys: documents }))
        }
        Err(refusal) => {
            if let KeyApiError::AttestationFailed { reason, .. } = &refusal.error {
                service.metrics.attestation_failure(reason);
            }
            let event = AuditEvent::new(
                EventKind::KeysReleaseRefused,
                actor,
                json!({
                    "reason": refusal_reason(&refusal.error),
                    "message": refusal.error.to_string(),
                    "workload": workload_identity(credential),
                    "claims": refusal.claims,
                }),
            );
            service.audit.record(service.now_ms(), event).await?;
            Err(refusal.error)
        }
    }
}

fn unwrap_name(mode: UnwrapMode) -> &'static str {
    match mode {
        UnwrapMode::CloudKms => "cloud-kms",
        UnwrapMode::Broker => "broker",
    }
}

fn refusal_reason(error: &KeyApiError) -> &'static str {
    match error {
        KeyApiError::AttestationFailed { reason, .. } => reason,
        other => other.reason(),
    }
}

type Released = (KeyAccess, Vec<KeyRecord>, Claims, Vec<EncryptionKey>);

async fn release_checked(
    service: &Distribution,
    credential: &idp::VerifiedCredential,
    body: &[u8],
) -> Result<Released, Refusal> {
    let request: ReleaseRequest = serde_json::from_slice(body)
        .map_err(|e| KeyApiError::InvalidArgument(format!("not a release request: {e}")))?;
    let nonce = B64
        .decode(&request.nonce)
        .ok()
        .filter(|n| n.len() == NONCE_LEN)
        .ok_or_else(|| KeyApiError::InvalidArgument("`nonce` must be base64 of 32 bytes".into()))?;
    let tee_public_key = decode_32("teePublicKey", &request.tee_public_key)?;

    // Which keys, hence which use case.
    let (use_case, named_keys) = match (&request.key_ids, request.max_age_seconds) {
        (Some(_), Some(_)) => {
            return Err(KeyApiError::InvalidArgument(
                "give `keyIds` or `maxAgeSeconds`, not both".into(),
            )
            .into());
        }
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_KEY_IDS {
                return Err(KeyApiError::InvalidArgument(format!(
                    "`keyIds` must name 1 to {MAX_KEY_IDS} keys"
                ))
                .into());
            }
            let mut keys = Vec::with_capacity(ids.len());
            for id in ids {
                keys.push(service.servable_key(id).await?);
            }
            let use_case = keys[0].use_case.clone();
            if keys.iter().any(|k| k.use_case != use_case)
                || request.use_case.as_ref().is_some_and(|u| *u != use_case)
            {
                return Err(KeyApiError::InvalidArgument(
                    "all `keyIds` must belong to one use case".into(),
                )
                .into());
            }
            (use_case, Some(keys))
        }
        (None, max_age) => {
            if max_age.is_some_and(|n| n <= 0) {
                return Err(KeyApiError::InvalidArgument(
                    "`maxAgeSeconds` must be positive".into(),
                )
                .into());
            }
            (
                service.use_case_or_default(request.use_case.as_deref())?,
                None,
            )
        }
    };
    let grant = KeyAccess::check(service, credential, &use_case).await?;

    // The evidence, bound to this nonce and this TEE key. Verification is
    // CPU work (a cached chain, one P-384 signature): off the async threads.
    let evidence =
        PlatformEvidence::try_from(request.evidence).map_err(|e| attestation_refusal(&e, None))?;
    let binding = ReleaseBinding::new(&nonce, tee_public_key);
    let at = service.clock.now();
    let verifier = service.release.verifier.clone();
    let verified =
        tokio::task::spawn_blocking(move || verifier.verify_platform_at(&evidence, &binding, at))
            .await
            .map_err(|e| KeyApiError::Unavailable(format!("verifier task: {e}")))?
            .map_err(|e| attestation_refusal(&e, None))?;
    let claims = verified.claims().clone();
    let with_claims = |error: KeyApiError| Refusal {
        error,
        claims: Some(claims.clone()),
    };

    let owner = NonceOwner {
        adtech: credential.adtech(),
        subject: credential.sub(),
    };
    match service
        .store
        .consume_nonce(&nonce, owner, service.now_ms())
        .await
    {
        Ok(NonceOutcome::Consumed) => {}
        Ok(NonceOutcome::Expired) => {
            return Err(with_claims(KeyApiError::AttestationFailed {
                reason: "nonce_expired",
                message: "the challenge nonce expired; ask for a new one".into(),
            }));
        }
        Ok(NonceOutcome::OtherOwner) => {
            return Err(with_claims(KeyApiError::AttestationFailed {
                reason: "nonce_not_yours",
                message: "the nonce was issued to another credential".into(),
            }));
        }
        Ok(NonceOutcome::Unknown) => {
            return Err(with_claims(KeyApiError::AttestationFailed {
                reason: "nonce_unknown",
                message: "the nonce was never issued or was already used".into(),
            }));
        }
        Err(e) => return Err(with_claims(e.into())),
    }

    let policy = service
        .release
        .policy(&service.store, &use_case)
        .await
        .map_err(with_claims)?
        .ok_or_else(|| {
            with_claims(KeyApiError::AttestationFailed {
                reason: "no_release_policy",
                message: format!("use case `{use_case}` has no release policy"),
            })
        })?;
    let released = policy
        .evaluate(&verified)
        .map_err(|e| attestation_refusal(&e, Some(claims.clone())))?;

    let keys = match named_keys {
        Some(keys) => keys,
        None => {
            let max_age = request.max_age_seconds.unwrap_or(i64::MAX / 1000);
            service
                .recent_keys(&use_case, max_age)
                .await
                .map_err(with_claims)?
        }
    };
    let mut documents = Vec::with_capacity(keys.len());
    for key in &keys {
        let material = service
            .material
            .sealed(&grant, key, &released)
            .await
            .map_err(with_claims)?;
        documents.push(encryption_key(key, service.role, material));
    }
    Ok((grant, keys, released.claims().clone(), documents))
}
