//! `:encrypt` and `:decrypt` on a crypto key.
//!
//! Ciphertext format (this double's own, opaque to callers):
//! `0x4B 0x44 0x01` ("KD", version 1) ‖ 12-byte nonce ‖ AES-256-GCM output.
//! The GCM associated data is `key name ‖ 0x00 ‖ additionalAuthenticatedData`,
//! so a ciphertext opens only under the same key and the same AAD, like Cloud
//! KMS.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use aes_gcm::aead::{Aead, AeadCore, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::{DoubleState, Fault, bearer, fault_response, google_error, lock};

const MAGIC: [u8; 3] = [0x4B, 0x44, 0x01];
const NONCE_LEN: usize = 12;
/// Cloud KMS's documented limit on `plaintext`.
const MAX_PLAINTEXT: usize = 64 * 1024;

/// Both request bodies; the SDK omits empty fields (proto3 JSON), so every
/// field defaults to empty.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct CryptoRequest {
    plaintext: String,
    ciphertext: String,
    additional_authenticated_data: String,
}

pub(super) async fn crypto_key_call(
    State(state): State<Arc<DoubleState>>,
    Path((project, location, ring, key_and_verb)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.kms_requests.fetch_add(1, Ordering::SeqCst);
    let Some((key, verb)) = key_and_verb.split_once(':') else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown method");
    };
    let name = format!("projects/{project}/locations/{location}/keyRings/{ring}/cryptoKeys/{key}");

    if let Some(fault) = take_fault(&state) {
        return fault_response(fault);
    }

    let principal = bearer(&headers).and_then(|t| lock(&state.tokens).get(t).cloned());
    let Some(principal) = principal else {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    };
    let permission = match verb {
        "encrypt" => "cloudkms.cryptoKeyVersions.useToEncrypt",
        "decrypt" => "cloudkms.cryptoKeyVersions.useToDecrypt",
        _ => return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown method"),
    };
    let denied = || {
        google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!(
                "Permission '{permission}' denied on resource '{name}' (or it may not exist)."
            ),
        )
    };
    if lock(&state.faults).always_forbidden {
        return denied();
    }
    let Ok(request) = serde_json::from_slice::<CryptoRequest>(&body) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid JSON payload.",
        );
    };
    let decode = |field: &str| STANDARD.decode(field);
    let (Ok(plaintext), Ok(ciphertext), Ok(aad)) = (
        decode(&request.plaintext),
        decode(&request.ciphertext),
        decode(&request.additional_authenticated_data),
    ) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid base64 value.",
        );
    };

    let keys = lock(&state.keys);
    let Some(key) = keys.get(&name) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("{name} not found."),
        );
    };
    if !key.principals.contains(&principal) {
        return denied();
    }
    let associated = [name.as_bytes(), &[0], &aad].concat();
    match verb {
        "encrypt" => encrypt(&key.aead, &name, &plaintext, &associated),
        _ => decrypt(&key.aead, &ciphertext, &associated),
    }
}

fn take_fault(state: &DoubleState) -> Option<Fault> {
    let mut faults = lock(&state.faults);
    if faults.fail_next == 0 {
        return None;
    }
    faults.fail_next -= 1;
    faults.fault
}

fn encrypt(aead: &Aes256Gcm, name: &str, plaintext: &[u8], aad: &[u8]) -> Response {
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "The plaintext must be between 1 and 65536 bytes.",
        );
    }
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let Ok(sealed) = aead.encrypt(
        &nonce,
        Payload {
            msg: plaintext,
            aad,
        },
    ) else {
        return google_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "seal failed");
    };
    let ciphertext = [&MAGIC[..], nonce.as_slice(), &sealed].concat();
    Json(serde_json::json!({
        "name": format!("{name}/cryptoKeyVersions/1"),
        "ciphertext": STANDARD.encode(ciphertext),
    }))
    .into_response()
}

fn decrypt(aead: &Aes256Gcm, ciphertext: &[u8], aad: &[u8]) -> Response {
    let invalid = || {
        google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Decryption failed: the ciphertext is invalid.",
        )
    };
    let Some(rest) = ciphertext.strip_prefix(&MAGIC[..]) else {
        return invalid();
    };
    if rest.len() < NONCE_LEN {
        return invalid();
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let Ok(plaintext) = aead.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad }) else {
        return invalid();
    };
    Json(serde_json::json!({
        "plaintext": STANDARD.encode(plaintext),
        "usedPrimary": true,
    }))
    .into_response()
}
