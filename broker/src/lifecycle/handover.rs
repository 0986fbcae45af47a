//! `POST /v1alpha/encryptionKeys`: the Type-1 hands split B to the Type-2
//! (DESIGN §4.3), and `GET /v1/peer/keys`, where a coordinator publishes the
//! keys its peer needs (its HPKE handover key and its ES256 signing key).
//!
//! The request carries the key's public parts and split B sealed (HPKE,
//! info `keyferry/v1/handover-split`, aad = key id) to the Type-2's handover
//! key, and is authenticated by a token from the Type-1's issuer, which the
//! Type-2 trusts as `coordinator.peer_issuer`. The Type-2 checks the
//! Type-1's ES256 signature over the key (with the signing key the Type-1
//! publishes at `{peer_issuer}/v1/peer/keys`), then answers with its own.
//! Replays of the same key get the same answer; the same id with another
//! public key gets 409; a key the Type-1 did not sign gets 400 and a
//! `key.handover_refused` entry.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use wire::{HandoverAnswer, HandoverChallenge, HandoverRequest, PeerKeys};

use super::LifecycleState;
use super::key_generation::CheckError;
use super::service::{KeyService, LifecycleError};
use crate::Error;
use crate::audit::{AuditEvent, EventKind};
use crate::config::Role;
use crate::http::ApiJson;
use crate::storage::{KeyRecord, StoreError, status};

/// The handover request a Type-1 sends for `key` with split B `sealed` to
/// the Type-2 (public so tests can replay one).
pub fn handover_request(key: &KeyRecord, sealed: &[u8]) -> HandoverRequest {
    HandoverRequest {
        key_id: key.id.clone(),
        use_case: key.use_case.clone(),
        public_key_material: B64.encode(&key.public_key),
        public_keyset_handle: key.public_keyset.clone(),
        creation_time: key.creation_time,
        activation_time: key.activation_time,
        expiration_time: key.expiration_time,
        ttl_time: key.ttl_time,
        public_key_signature: key.signature.clone(),
        sealed_split: B64.encode(sealed),
        key_generation: None,
    }
}

/// The Type-1's HTTP client for its peer.
pub(super) struct PeerClient {
    http: reqwest::Client,
    base: String,
}

impl PeerClient {
    pub(super) fn new(base: &str, timeout: std::time::Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(PeerClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The audience of handover tokens: the peer's base URL.
    pub(super) fn audience(&self) -> &str {
        &self.base
    }

    /// The peer's log entry recording key `key_id`'s publication, with its
    /// inclusion proof; `None` when the peer's log has none.
    pub(super) async fn key_inclusion(
        &self,
        key_id: &str,
    ) -> Result<Option<transparency::EntryInclusion>, LifecycleError> {
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|e| LifecycleError::Peer(format!("peer URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| LifecycleError::Peer("the peer URL cannot have a path".into()))?
            .pop_if_empty()
            .extend(["v1", "audit", "keys", key_id, "inclusion"]);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| LifecycleError::Peer(format!("cannot reach {}: {e}", self.base)))?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            status if !status.is_success() => Err(LifecycleError::Peer(format!(
                "GET /v1/audit/keys/…/inclusion answered {status}"
            ))),
            _ => response
                .json()
                .await
                .map(Some)
                .map_err(|e| LifecycleError::Peer(format!("key inclusion: {e}"))),
        }
    }

    pub(super) async fn keys(&self) -> Result<PeerKeys, LifecycleError> {
        let response = self
            .http
            .get(format!("{}/v1/peer/keys", self.base))
            .send()
            .await
            .map_err(|e| LifecycleError::Peer(format!("cannot reach {}: {e}", self.base)))?;
        if !response.status().is_success() {
            return Err(LifecycleError::Peer(format!(
                "GET /v1/peer/keys answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| LifecycleError::Peer(format!("peer keys: {e}")))
    }

    pub(super) async fn handover_challenge(
        &self,
        token: &str,
    ) -> Result<HandoverChallenge, LifecycleError> {
        let response = self
            .http
            .post(format!("{}/v1/peer/handover-challenges", self.base))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| LifecycleError::Peer(format!("cannot reach {}: {e}", self.base)))?;
        if !response.status().is_success() {
            return Err(LifecycleError::Peer(format!(
                "POST /v1/peer/handover-challenges answered {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| LifecycleError::Peer(format!("handover challenge: {e}")))
    }

    pub(super) async fn hand_over(
        &self,
        token: &str,
        request: &HandoverRequest,
    ) -> Result<HandoverAnswer, LifecycleError> {
        let response = self
            .http
            .post(format!("{}/v1alpha/encryptionKeys", self.base))
            .bearer_auth(token)
            .json(request)
            .send()
            .await
            .map_err(|e| LifecycleError::Peer(format!("cannot reach {}: {e}", self.base)))?;
        let status = response.status();
        if !status.is_success() {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let code = body["code"].as_str().unwrap_or("error");
            return Err(LifecycleError::Peer(format!(
                "handover refused: {} {code}",
                status.as_u16()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| LifecycleError::Peer(format!("handover answer: {e}")))
    }
}

/// `GET /v1/peer/keys`
pub(super) async fn peer_keys(
    State(state): State<LifecycleState>,
) -> Result<Json<PeerKeys>, Error> {
    let keys = state
        .keys
        .own_keys()
        .await
        .map_err(|e| Error::Unavailable(format!("handover keys: {e}")))?;
    Ok(Json(keys))
}

/// A request authenticated by the peer coordinator's issuer.
pub(super) struct PeerCaller {
    subject: String,
}

/// Generic over the router's state: all it needs is the [`KeyService`] that holds the
/// peer's issuer.
impl<St> FromRequestParts<St> for PeerCaller
where
    St: Send + Sync,
    Arc<KeyService>: FromRef<St>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        // A caller without a token is told to authenticate (401) before it
        // learns anything about this coordinator's role.
        let token = crate::bearer::bearer(parts).map_err(|m| Error::Unauthenticated(m.into()))?;
        let keys = Arc::<KeyService>::from_ref(state);
        let Some(validator) = keys.peer_validator() else {
            return Err(Error::Forbidden(
                "this coordinator accepts no handover (not a type2 with a peer_issuer)".into(),
            ));
        };
        let verified = validator.validate(token).await.map_err(|r| {
            Error::Unauthenticated(format!("peer token refused: {}", r.description()))
        })?;
        if !verified.sub().starts_with("coordinator:") {
            return Err(Error::Forbidden(
                "the token's subject is not a coordinator".into(),
            ));
        }
        Ok(PeerCaller {
            subject: verified.sub().to_owned(),
        })
    }
}

/// `POST /v1/peer/handover-challenges` on a Type-2: a fresh challenge for
/// the key generator's next report.
pub(super) async fn handover_challenge(
    State(state): State<LifecycleState>,
    caller: PeerCaller,
) -> Result<(StatusCode, Json<HandoverChallenge>), Error> {
    let service = &state.keys;
    let Some(check) = service.key_generation() else {
        return Err(Error::Forbidden(
            "only a type2 coordinator issues handover challenges".into(),
        ));
    };
    match check
        .challenge("peer", &caller.subject, service.now_ms())
        .await?
    {
        Ok(challenge) => Ok((StatusCode::CREATED, Json(challenge))),
        Err(wait) => Err(Error::Refused {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            detail: format!(
                "too many handover challenges; retry in {}s",
                wait.as_secs().max(1)
            ),
        }),
    }
}

fn bad(field: &str, problem: &str) -> Error {
    Error::invalid_field(field, problem)
}

/// `POST /v1alpha/encryptionKeys` on a Type-2.
pub(super) async fn receive(
    State(state): State<LifecycleState>,
    caller: PeerCaller,
    ApiJson(request): ApiJson<HandoverRequest>,
) -> Result<(StatusCode, Json<HandoverAnswer>), Error> {
    let service = &state.keys;
    if service.role() != Role::Type2 {
        return Err(Error::Forbidden(
            "only a type2 coordinator receives handovers".into(),
        ));
    }
    let key_id_ok = !request.key_id.is_empty()
        && request.key_id.len() <= 64
        && request
            .key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !key_id_ok {
        return Err(bad("keyId", "a UUID or 16 hex characters"));
    }
    if !service
        .use_cases()
        .iter()
        .any(|u| u.name == request.use_case)
    {
        return Err(bad("useCase", "not a use case of this coordinator"));
    }
    let public_key = B64
        .decode(&request.public_key_material)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| bad("publicKeyMaterial", "base64 of 32 bytes"))?;
    let keyset = keys::PublicKeyset::from_tink_json(&request.public_keyset_handle)
        .map_err(|_| bad("publicKeysetHandle", "not a Tink HPKE public keyset"))?;
    if keyset.public_key().as_slice() != public_key.as_slice() {
        return Err(bad(
            "publicKeysetHandle",
            "holds another public key than publicKeyMaterial",
        ));
    }
    let ordered = request.creation_time <= request.activation_time
        && request.activation_time < request.expiration_time
        && request.expiration_time <= request.ttl_time;
    if !ordered {
        return Err(bad(
            "expirationTime",
            "times must satisfy creation <= activation < expiration <= ttl",
        ));
    }

    // The key must be the Type-1's, whoever holds its issuer's token; the
    // check comes before the replay answer, so a replay cannot launder a
    // forged signature.
    let signed = service
        .signed_by_peer(
            &request.key_id,
            request.creation_time,
            &request.public_key_material,
            &request.public_key_signature,
        )
        .await
        .map_err(|e| Error::Unavailable(format!("the type1's signing key: {e}")))?;
    if !signed {
        let refused = AuditEvent::new(
            EventKind::KeyHandoverRefused,
            caller.subject.clone(),
            json!({"keyId": request.key_id, "useCase": request.use_case, "reason": "bad_signature"}),
        );
        state.audit.record(service.now_ms(), refused).await?;
        return Err(bad(
            "publicKeySignature",
            "does not verify with the type1's signing key",
        ));
    }

    // The key generator, attested and admitted, before anything is stored
    // or acknowledged.
    let attested = match service
        .admit_key_generation(&caller.subject, &request)
        .await
    {
        Ok(attested) => attested,
        Err(CheckError::Store(e)) => return Err(e.into()),
        Err(CheckError::Refused(refusal)) => {
            let refused = AuditEvent::new(
                EventKind::KeyHandoverRefused,
                caller.subject.clone(),
                json!({"keyId": request.key_id, "useCase": request.use_case,
                       "reason": refusal.reason, "message": refusal.message,
                       "claims": refusal.claims}),
            );
            state.audit.record(service.now_ms(), refused).await?;
            return Err(Error::Refused {
                status: StatusCode::FORBIDDEN,
                code: refusal.reason,
                detail: format!("key generation not admitted: {}", refusal.message),
            });
        }
    };

    // Idempotence: the same key again gets the same answer.
    match service.store().key(&request.key_id).await {
        Ok(existing) if existing.public_key == public_key => {
            return Ok((
                StatusCode::OK,
                Json(HandoverAnswer {
                    key_id: existing.id,
                    public_key_signature: existing.peer_signature,
                }),
            ));
        }
        Ok(_) => {
            return Err(Error::Conflict(format!(
                "key {} exists with another public key",
                request.key_id
            )));
        }
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }

    let sealed = B64
        .decode(&request.sealed_split)
        .map_err(|_| bad("sealedSplit", "not base64"))?;
    let split_b = service
        .open_handover(&request.key_id, &sealed)
        .await
        .map_err(|e| Error::Unavailable(format!("handover keys: {e}")))?
        .ok_or_else(|| {
            bad(
                "sealedSplit",
                "does not open with any handover key of this coordinator in use now",
            )
        })?;
    let splits = service
        .wrap_split(&split_b)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    drop(split_b);
    let own_signature = service.sign(
        &request.key_id,
        request.creation_time,
        &request.public_key_material,
    );
    let record = KeyRecord {
        id: request.key_id.clone(),
        use_case: request.use_case.clone(),
        status: status::ACTIVE.into(),
        public_key,
        public_keyset: request.public_keyset_handle.clone(),
        creation_time: request.creation_time,
        activation_time: request.activation_time,
        expiration_time: request.expiration_time,
        ttl_time: request.ttl_time,
        signature: request.public_key_signature.clone(),
        peer_signature: own_signature.clone(),
        handover_attempts: 0,
        next_attempt_at: 0,
        revoked_at: None,
    };
    let received = AuditEvent::new(
        EventKind::KeyReceived,
        caller.subject.clone(),
        json!({"keyId": request.key_id, "useCase": request.use_case,
               "keyGenerator": attested.as_ref().map(|a| a.claims())}),
    );
    match service
        .store()
        .insert_received_key(&record, &splits, &received.outbox(service.now_ms()))
        .await
    {
        Ok(()) => {}
        // A concurrent replay of the same handover won the race.
        Err(StoreError::Conflict(_)) => {
            let existing = service.store().key(&request.key_id).await?;
            if existing.public_key != record.public_key {
                return Err(Error::Conflict(format!(
                    "key {} exists with another public key",
                    request.key_id
                )));
            }
            return Ok((
                StatusCode::OK,
                Json(HandoverAnswer {
                    key_id: existing.id,
                    public_key_signature: existing.peer_signature,
                }),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    state.audit.publish_outbox().await;
    Ok((
        StatusCode::OK,
        Json(HandoverAnswer {
            key_id: request.key_id,
            public_key_signature: own_signature,
        }),
    ))
}
