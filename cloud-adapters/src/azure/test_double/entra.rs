//! The Entra ID token endpoint, client-credentials grant with a JWT client
//! assertion (the flow of a federated identity credential).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::json;

use super::{EntraTrust, State, VAULT_RESOURCE, bump, lock, random_hex};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Entra's error body; `azure_identity` requires `error_codes` and
/// `error_description`.
fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    (
        status,
        Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
        })),
    )
        .into_response()
}

/// Why an assertion was refused, as an Entra error code and description.
fn verify(assertion: &str, jwks: &JwkSet, trust: &EntraTrust) -> Result<(), (u32, &'static str)> {
    let header =
        decode_header(assertion).map_err(|_| (700_027, "Client assertion is not a valid JWT."))?;
    if !matches!(
        header.alg,
        Algorithm::ES256 | Algorithm::ES384 | Algorithm::RS256 | Algorithm::PS256
    ) {
        return Err((700_027, "Client assertion uses an unsupported algorithm."));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or((
        700_027,
        "No key in the issuer's JWKS matches the assertion.",
    ))?;
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| (700_027, "The issuer's JWKS holds an unusable key."))?;
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[&trust.audience]);
    validation.set_issuer(&[&trust.issuer]);
    validation.sub = Some(trust.subject.clone());
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
    validation.leeway = 60;
    decode::<serde_json::Value>(assertion, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => (700_027, "Client assertion failed signature validation."),
            K::ExpiredSignature => (
                700_024,
                "Client assertion is not within its valid time range.",
            ),
            K::InvalidIssuer | K::InvalidSubject | K::InvalidAudience => (
                70_021,
                "No matching federated identity record found for presented assertion.",
            ),
            _ => (700_027, "Client assertion failed validation."),
        }
    })?;
    Ok(())
}

pub(super) async fn token(
    AxState(state): AxState<Arc<State>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    bump(&state.counters.token_requests);
    let federation = lock(&state.federation)
        .as_ref()
        .map(|f| (f.trust.clone(), f.jwks.clone()));
    let Some((trust, jwks)) = federation.filter(|(t, _)| t.tenant_id == tenant) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            "Tenant not found.",
        );
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let bad =
        |error, code, description| entra_error(StatusCode::BAD_REQUEST, error, code, description);
    if field("grant_type") != "client_credentials" {
        return bad(
            "unsupported_grant_type",
            70_003,
            "Only client_credentials is supported.",
        );
    }
    if field("client_assertion_type") != JWT_BEARER {
        return bad(
            "invalid_request",
            50_027,
            "client_assertion_type must be jwt-bearer.",
        );
    }
    if field("client_id") != trust.client_id {
        return bad(
            "unauthorized_client",
            700_016,
            "Application not found in the directory.",
        );
    }
    if field("scope") != format!("{VAULT_RESOURCE}/.default") {
        return bad(
            "invalid_scope",
            70_011,
            "The provided scope is not valid here.",
        );
    }
    if let Err((code, description)) = verify(field("client_assertion"), &jwks, &trust) {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        );
    }
    let access_token = random_hex(32);
    lock(&state.tokens).insert(access_token.clone());
    lock(&state.issued).push(access_token.clone());
    bump(&state.counters.tokens_issued);
    let lifetime = state.token_lifetime.load(Ordering::Relaxed);
    Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }))
    .into_response()
}
