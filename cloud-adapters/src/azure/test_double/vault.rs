//! The Key Vault keys routes: the challenge, get key, wrapkey, unwrapkey.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::json;

use super::{State, VAULT_RESOURCE, bump, lock};

type Shared = AxState<Arc<State>>;
type Answer = Result<Response, Refusal>;

/// A refused request, rendered as Key Vault's error body
/// `{"error":{"code","message"}}` (and the challenge header on a 401).
/// Small, so handlers can return it by `?`.
pub(super) struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    challenge: Option<String>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if let Some(v) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
        response
    }
}

fn error(status: StatusCode, code: &'static str, message: &str) -> Refusal {
    Refusal {
        status,
        code,
        message: message.to_owned(),
        challenge: None,
    }
}

/// The 401 every unauthenticated request gets: it tells the client where to
/// get a token and for which resource.
fn challenge(state: &State, message: &str) -> Refusal {
    let tenant = lock(&state.federation)
        .as_ref()
        .map(|f| f.trust.tenant_id.clone())
        .unwrap_or_else(|| "organizations".to_owned());
    Refusal {
        challenge: Some(format!(
            r#"Bearer authorization="{}/{tenant}", resource="{VAULT_RESOURCE}""#,
            state.authority_host
        )),
        ..error(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }
}

fn fault(status: u16) -> Refusal {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match status {
        StatusCode::TOO_MANY_REQUESTS => "Throttled",
        StatusCode::FORBIDDEN => "Forbidden",
        _ => "ServiceUnavailable",
    };
    error(status, code, "fault injected by the test double")
}

/// What Key Vault checks first: the bearer token; then (double only) the
/// fault knobs; then the api-version every call must carry.
fn admit(
    state: &State,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    counter: &AtomicU64,
) -> Result<(), Refusal> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        None => {
            bump(&state.counters.challenges);
            return Err(challenge(
                state,
                "AKV10000: Request is missing a Bearer or PoP token.",
            ));
        }
        Some(token) if !state.is_known_token(token) => {
            bump(&state.counters.rejected_tokens);
            return Err(challenge(state, "AKV10032: Invalid token."));
        }
        Some(_) => {}
    }
    bump(counter);
    if let Some(status) = state.take_fault() {
        return Err(fault(status));
    }
    if !query.contains_key("api-version") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "api-version is required",
        ));
    }
    Ok(())
}

fn not_found(name: &str) -> Refusal {
    error(
        StatusCode::NOT_FOUND,
        "KeyNotFound",
        &format!("A key with (name/id) {name} was not found in this key vault."),
    )
}

fn kid(state: &State, name: &str, version: &str) -> String {
    format!("https://{}/keys/{name}/{version}", state.vault_host)
}

fn bundle(state: &State, name: &str, version: &str) -> Answer {
    let keys = lock(&state.keys);
    let key = keys
        .get(name)
        .and_then(|k| k.versions.get(version))
        .ok_or_else(|| not_found(name))?;
    Ok(Json(json!({
        "key": {
            "kid": kid(state, name, version),
            "kty": "RSA",
            "key_ops": ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
            "n": URL_SAFE_NO_PAD.encode(&key.n),
            "e": URL_SAFE_NO_PAD.encode(&key.e),
        },
        "attributes": {"enabled": true, "recoveryLevel": "Recoverable+Purgeable"},
    }))
    .into_response())
}

pub(super) async fn get_current_key(
    AxState(state): Shared,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Answer {
    admit(&state, &headers, &query, &state.counters.get_key_requests)?;
    let current = lock(&state.keys)
        .get(&name)
        .map(|k| k.current.clone())
        .ok_or_else(|| not_found(&name))?;
    bundle(&state, &name, &current)
}

pub(super) async fn get_key_version(
    AxState(state): Shared,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Answer {
    admit(&state, &headers, &query, &state.counters.get_key_requests)?;
    bundle(&state, &name, &version)
}

#[derive(Deserialize)]
struct KeyOperation {
    alg: String,
    value: String,
}

fn bad_parameter(message: &str) -> Refusal {
    error(StatusCode::BAD_REQUEST, "BadParameter", message)
}

/// The body and the key version it names, checked as Key Vault would.
fn operation(
    state: &State,
    name: &str,
    version: &str,
    body: &[u8],
) -> Result<(Vec<u8>, Arc<super::KeyVersion>), Refusal> {
    let op: KeyOperation = serde_json::from_slice(body)
        .map_err(|_| bad_parameter("The request body is not a key operation."))?;
    if op.alg != "RSA-OAEP-256" {
        return Err(bad_parameter("This double supports only RSA-OAEP-256."));
    }
    let value = URL_SAFE_NO_PAD
        .decode(op.value.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(&op.value))
        .map_err(|_| bad_parameter("value is not base64url."))?;
    let key = lock(&state.keys)
        .get(name)
        .and_then(|k| k.versions.get(version).cloned())
        .ok_or_else(|| not_found(name))?;
    Ok((value, key))
}

fn result(state: &State, name: &str, version: &str, value: &[u8]) -> Response {
    Json(json!({
        "kid": kid(state, name, version),
        "value": URL_SAFE_NO_PAD.encode(value),
    }))
    .into_response()
}

pub(super) async fn wrap_key(
    AxState(state): Shared,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    admit(&state, &headers, &query, &state.counters.wrap_requests)?;
    let (plaintext, key) = operation(&state, &name, &version, &body)?;
    let public = OaepPublicEncryptingKey::new(key.private.public_key())
        .map_err(|_| bad_parameter("not an RSA key"))?;
    if plaintext.len() > public.max_plaintext_size(&OAEP_SHA256_MGF1SHA256) {
        return Err(bad_parameter("The value is too long for this key."));
    }
    let mut out = vec![0u8; public.ciphertext_size()];
    let ciphertext = public
        .encrypt(&OAEP_SHA256_MGF1SHA256, &plaintext, &mut out, None)
        .map_err(|_| bad_parameter("RSA-OAEP-256 encryption failed."))?;
    Ok(result(&state, &name, &version, ciphertext))
}

pub(super) async fn unwrap_key(
    AxState(state): Shared,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    admit(&state, &headers, &query, &state.counters.unwrap_requests)?;
    let (ciphertext, key) = operation(&state, &name, &version, &body)?;
    let private = OaepPrivateDecryptingKey::new(key.private.clone())
        .map_err(|_| bad_parameter("not an RSA key"))?;
    let mut out = vec![0u8; private.min_output_size()];
    // Key Vault answers a ciphertext it cannot decrypt with 400, not 500.
    let plaintext = private
        .decrypt(&OAEP_SHA256_MGF1SHA256, &ciphertext, &mut out, None)
        .map_err(|_| bad_parameter("The parameter is incorrect."))?;
    Ok(result(&state, &name, &version, plaintext))
}
