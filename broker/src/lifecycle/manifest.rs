//! The signed public key manifest (DESIGN §4.4):
//! `GET /.well-known/{use_case}/v1/public-keys:signed` and
//! `/v1alpha/publicKeys:signed`.
//!
//! The same keys as the unsigned lists (which stay byte for byte what the
//! Privacy Sandbox clients read), each with both coordinators' signatures
//! and each coordinator's log entry recording its publication, with the
//! inclusion proof. Either coordinator serves it: it signs one half and
//! fetches the other half's proof from its peer.
//!
//! A proof, once made, proves the entry for good (a later head extends the
//! one it leads to), so proofs are kept in memory per key and fetched from
//! the peer once. The cache is bounded; a key leaves it when it is no
//! longer served.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use wire::{ES256, KeyInclusion, KeySignature, SignedKey, SignedKeyList, TYPE1, TYPE2};

use super::public::{MAX_KEYS, cacheable_json, default_use_case, known_use_case, max_age};
use super::{KeyService, LifecycleState};
use crate::Error;
use crate::audit::{EventKind, TransparencyLog};
use crate::config::Role;
use crate::storage::KeyRecord;

/// Most proofs kept: far more than the keys served (five per use case,
/// two proofs each); past it the cache starts over.
const MAX_CACHED_PROOFS: usize = 1024;

/// `GET /.well-known/{use_case}/v1/public-keys:signed`
pub(super) async fn signed_public_keys(
    State(state): State<LifecycleState>,
    Path(use_case): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    known_use_case(&state, &use_case)?;
    render(&state, &use_case, &headers).await
}

/// `GET /v1alpha/publicKeys:signed`: the first use case's.
pub(super) async fn default_signed_public_keys(
    State(state): State<LifecycleState>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let use_case = default_use_case(&state)?;
    render(&state, &use_case, &headers).await
}

async fn render(
    state: &LifecycleState,
    use_case: &str,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let keys = &state.keys;
    let now = keys.now_ms();
    let records = state.store.published_keys(use_case, now, MAX_KEYS).await?;
    let signers = Signers::of(keys).await?;
    let mut signed = Vec::with_capacity(records.len());
    for record in &records {
        let mut inclusion = Vec::with_capacity(2);
        for role in [Role::Type1, Role::Type2] {
            if let Some(proof) = keys.proofs.get(keys, &state.log, role, &record.id).await {
                inclusion.push(proof);
            }
        }
        signed.push(SignedKey {
            id: record.id.clone(),
            key: B64.encode(&record.public_key),
            creation_time: record.creation_time,
            signatures: signers.signatures(record),
            inclusion,
        });
    }
    let body = serde_json::to_string(&SignedKeyList { keys: signed })
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(cacheable_json(body, max_age(&records, now), headers))
}

/// What names each coordinator's signing key.
struct Signers {
    type1: Signer,
    type2: Signer,
}

struct Signer {
    coordinator: String,
    kid: String,
}

impl Signers {
    async fn of(keys: &KeyService) -> Result<Self, Error> {
        let own = Signer {
            coordinator: keys.public_url().to_owned(),
            kid: signing_key_id(&keys.signing_key_spki()),
        };
        let peer_spki = keys
            .peer_signing_key()
            .await
            .map_err(|e| Error::Unavailable(format!("the peer's signing key: {e}")))?;
        let peer = Signer {
            coordinator: keys.peer_url().unwrap_or_default().to_owned(),
            kid: signing_key_id(&peer_spki),
        };
        Ok(match keys.role() {
            Role::Type1 => Signers {
                type1: own,
                type2: peer,
            },
            Role::Type2 => Signers {
                type1: peer,
                type2: own,
            },
        })
    }

    /// Both signatures over `record`: a key record holds the Type-1's in
    /// `signature` and the Type-2's in `peer_signature` on either side.
    fn signatures(&self, record: &KeyRecord) -> Vec<KeySignature> {
        [
            (TYPE1, &self.type1, &record.signature),
            (TYPE2, &self.type2, &record.peer_signature),
        ]
        .into_iter()
        .filter(|(_, _, signature)| !signature.is_empty())
        .map(|(role, signer, signature)| KeySignature {
            role: role.to_owned(),
            coordinator: signer.coordinator.clone(),
            kid: signer.kid.clone(),
            alg: ES256.to_owned(),
            signature: signature.clone(),
            keys_url: format!("{}/v1/peer/keys", signer.coordinator),
        })
        .collect()
    }
}

/// A signing key's id: base64url of SHA-256 over its SubjectPublicKeyInfo.
pub fn signing_key_id(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(spki_der))
}

/// The log entry kind that records a key's publication on `role`.
fn entry_kind(role: Role) -> EventKind {
    match role {
        Role::Type1 => EventKind::KeyActivated,
        Role::Type2 => EventKind::KeyReceived,
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Type1 => TYPE1,
        Role::Type2 => TYPE2,
    }
}

/// How long a failed fetch from the peer stops further ones: the manifest
/// is public, and each request must not become requests to a peer that is
/// down.
const PEER_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Inclusion proofs made or fetched, by role and key id.
#[derive(Default)]
pub(super) struct KeyProofs {
    cached: Mutex<HashMap<(&'static str, String), KeyInclusion>>,
    /// When the last fetch from the peer failed.
    peer_failed_at: Mutex<Option<Instant>>,
}

impl KeyProofs {
    /// `role`'s proof for `key_id`: from this coordinator's log when it is
    /// that role, else from the peer, checked before it is kept. `None`
    /// while it cannot be had (the peer is down, or the entry is not yet
    /// written); the next request tries again.
    async fn get(
        &self,
        keys: &KeyService,
        log: &TransparencyLog,
        role: Role,
        key_id: &str,
    ) -> Option<KeyInclusion> {
        let slot = (role_name(role), key_id.to_owned());
        if let Some(hit) = lock(&self.cached).get(&slot) {
            return Some(hit.clone());
        }
        let proof = if role == keys.role() {
            let proof = log.key_inclusion(key_id).await;
            proof
                .inspect_err(|e| tracing::warn!(error = %e, "cannot prove a key's entry"))
                .ok()??
        } else {
            let peer = keys.peer_client()?;
            if self.peer_failed_recently() {
                return None;
            }
            let proof = match peer.key_inclusion(key_id).await {
                Ok(proof) => proof?,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch the peer's key proof");
                    *lock(&self.peer_failed_at) = Some(Instant::now());
                    return None;
                }
            };
            if !proves(&proof, role, key_id) {
                tracing::warn!(key_id, "the peer's proof of a key's entry does not verify");
                return None;
            }
            proof
        };
        let coordinator = if role == keys.role() {
            keys.public_url().to_owned()
        } else {
            keys.peer_url().unwrap_or_default().to_owned()
        };
        let inclusion = KeyInclusion {
            role: slot.0.to_owned(),
            coordinator,
            proof,
        };
        let mut cached = lock(&self.cached);
        if cached.len() >= MAX_CACHED_PROOFS {
            cached.clear();
        }
        cached.insert(slot, inclusion.clone());
        Some(inclusion)
    }

    fn peer_failed_recently(&self) -> bool {
        lock(&self.peer_failed_at).is_some_and(|at| at.elapsed() < PEER_RETRY_AFTER)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave either value half-written: every
    // change is one assignment, insert or clear.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `proof` verifies and is `role`'s publication entry of `key_id`.
fn proves(proof: &transparency::EntryInclusion, role: Role, key_id: &str) -> bool {
    proof.verify().is_ok_and(|entry| {
        entry.kind == entry_kind(role) && entry.details["keyId"].as_str() == Some(key_id)
    })
}
