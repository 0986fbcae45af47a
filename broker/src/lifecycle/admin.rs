//! `/v1/admin/keys`: list, rotate, revoke and re-wrap (operators).

use axum::Json;
use axum::extract::{Path, State};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::LifecycleState;
use crate::Error;
use crate::http::{ApiJson, ApiQuery};
use crate::operator::{AdminRole, Operator, ReaderRole};
use crate::storage::KeyRecord;

fn describe(key: &KeyRecord, now_ms: i64) -> Value {
    let state = match key.status.as_str() {
        "active" if now_ms >= key.expiration_time => "retired",
        "active" if now_ms < key.activation_time => "scheduled",
        other => other,
    };
    json!({
        "id": key.id,
        "useCase": key.use_case,
        "status": state,
        "publicKeyMaterial": B64.encode(&key.public_key),
        "creationTime": key.creation_time,
        "activationTime": key.activation_time,
        "expirationTime": key.expiration_time,
        "ttlTime": key.ttl_time,
        "handoverAttempts": key.handover_attempts,
        "revokedAt": key.revoked_at,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ListQuery {
    use_case: Option<String>,
}

/// `GET /v1/admin/keys?useCase=`
pub(super) async fn list(
    State(state): State<LifecycleState>,
    _operator: Operator<ReaderRole>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, Error> {
    let now = state.keys.now_ms();
    let keys = state.store.keys(query.use_case.as_deref()).await?;
    Ok(Json(
        json!({ "keys": keys.iter().map(|k| describe(k, now)).collect::<Vec<_>>() }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RotateRequest {
    use_case: Option<String>,
}

/// `POST /v1/admin/keys/rotate`: a fresh key set for a use case now; the
/// new keys displace the old ones in the public set once acknowledged.
pub(super) async fn rotate(
    State(state): State<LifecycleState>,
    operator: Operator<AdminRole>,
    ApiJson(request): ApiJson<RotateRequest>,
) -> Result<Json<Value>, Error> {
    let use_case = match request.use_case {
        Some(name) if state.keys.use_cases().iter().any(|u| u.name == name) => name,
        Some(_) => return Err(Error::invalid_field("useCase", "not a configured use case")),
        None => state
            .keys
            .use_cases()
            .first()
            .map(|u| u.name.clone())
            .ok_or_else(|| Error::NotFound("no use case is configured".into()))?,
    };
    if state.keys.role() != crate::config::Role::Type1 {
        return Err(Error::Conflict(
            "only the type1 coordinator generates keys".into(),
        ));
    }
    let generated = state
        .keys
        .ensure_keys(Some(&use_case))
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let event = crate::audit::AuditEvent::new(
        crate::audit::EventKind::KeysRotated,
        &operator.actor,
        json!({"useCase": use_case, "keyIds": generated}),
    );
    state.audit.record(state.keys.now_ms(), event).await?;
    // Hand the new keys over now rather than at the next tick.
    if let Err(e) = state.keys.run_handovers().await {
        tracing::warn!(error = %e, "handover after rotation failed; it will be retried");
    }
    Ok(Json(json!({ "useCase": use_case, "generated": generated })))
}

/// `POST /v1/admin/keys/{id}/revoke`
pub(super) async fn revoke(
    State(state): State<LifecycleState>,
    operator: Operator<AdminRole>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let key = state
        .keys
        .revoke(&id, &operator.actor)
        .await
        .map_err(|e| match e {
            super::LifecycleError::Store(e) => Error::from(e),
            other => Error::Unavailable(other.to_string()),
        })?;
    Ok(Json(describe(&key, state.keys.now_ms())))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RewrapRequest {
    /// One cloud, or every enabled cloud when absent.
    cloud: Option<String>,
}

/// `POST /v1/admin/keys/rewrap`: gives every live key a split wrapped by
/// the cloud's current KEK, from the storage KEK's copy (after a cloud is
/// enabled or its KEK changes; the lifecycle also does this at start).
pub(super) async fn rewrap(
    State(state): State<LifecycleState>,
    _operator: Operator<AdminRole>,
    ApiJson(request): ApiJson<RewrapRequest>,
) -> Result<Json<Value>, Error> {
    let outcome = state
        .keys
        .rewrap(request.cloud.as_deref())
        .await
        .map_err(|e| match e {
            super::LifecycleError::CloudNotEnabled(_) => {
                Error::invalid_field("cloud", "not an enabled cloud on this coordinator")
            }
            super::LifecycleError::Store(e) => Error::from(e),
            other => Error::Unavailable(other.to_string()),
        })?;
    Ok(Json(json!(outcome)))
}
