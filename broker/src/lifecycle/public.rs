//! The public key endpoints (DESIGN §4.4): unauthenticated, at most five
//! keys, newest expiry first, cacheable until the earliest expiry (at most a
//! week), with an `ETag` so clients revalidate cheaply.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::LifecycleState;
use crate::Error;
use crate::storage::KeyRecord;

/// Most keys a list holds.
pub(super) const MAX_KEYS: i64 = 5;
const MAX_AGE_CAP_SECS: i64 = 604_800;

/// `GET /.well-known/{use_case}/v1/public-keys`
pub(super) async fn public_keys(
    State(state): State<LifecycleState>,
    Path(use_case): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    known_use_case(&state, &use_case)?;
    render(&state, &use_case, &headers).await
}

/// `GET /v1alpha/publicKeys`: the first configured use case's keys, as the
/// Privacy Sandbox coordinator serves its single key set.
pub(super) async fn default_public_keys(
    State(state): State<LifecycleState>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let use_case = default_use_case(&state)?;
    render(&state, &use_case, &headers).await
}

/// The use case a `{use_case}` path names, if configured.
pub(super) fn known_use_case(state: &LifecycleState, use_case: &str) -> Result<(), Error> {
    if !state.keys.use_cases().iter().any(|u| u.name == use_case) {
        return Err(Error::NotFound(format!("no use case `{use_case}`")));
    }
    Ok(())
}

/// The first configured use case: the one the `/v1alpha` paths serve.
pub(super) fn default_use_case(state: &LifecycleState) -> Result<String, Error> {
    state
        .keys
        .use_cases()
        .first()
        .map(|u| u.name.clone())
        .ok_or_else(|| Error::NotFound("no use case is configured".into()))
}

async fn render(
    state: &LifecycleState,
    use_case: &str,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let now = state.keys.now_ms();
    let keys = state.store.published_keys(use_case, now, MAX_KEYS).await?;
    let body = json!({
        "keys": keys.iter().map(|k| json!({"id": k.id, "key": B64.encode(&k.public_key)})).collect::<Vec<_>>(),
    })
    .to_string();
    Ok(cacheable_json(body, max_age(&keys, now), headers))
}

/// Seconds a key list may be cached: until its earliest expiry, at most a
/// week.
pub(super) fn max_age(keys: &[KeyRecord], now_ms: i64) -> i64 {
    keys.iter()
        .map(|k| (k.expiration_time - now_ms) / 1000)
        .min()
        .unwrap_or(0)
        .clamp(0, MAX_AGE_CAP_SECS)
}

/// `body` as JSON with an `ETag` and `Cache-Control`, or 304 when the
/// client's `If-None-Match` already names it.
pub(super) fn cacheable_json(body: String, max_age: i64, headers: &HeaderMap) -> Response {
    let digest = Sha256::digest(body.as_bytes());
    let etag = format!(
        "\"{}\"",
        digest[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let cache_control = format!("public, max-age={max_age}");
    let not_modified = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cache_control) {
        h.insert(header::CACHE_CONTROL, v);
    }
    response
}
