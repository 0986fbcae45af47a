//! GCP STS token exchange and IAM Credentials `generateAccessToken`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;

use super::{DoubleState, bearer, fault_response, google_error, lock, random_token};

const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// RFC 6749 §5.2 error, as GCP STS answers.
fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({"error": error, "error_description": description})),
    )
        .into_response()
}

pub(super) async fn token_exchange(
    State(state): State<Arc<DoubleState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    state.sts_calls.fetch_add(1, Ordering::SeqCst);
    let fault = {
        let mut faults = lock(&state.faults);
        (faults.fail_next_sts > 0).then(|| {
            faults.fail_next_sts -= 1;
            faults.sts_fault
        })
    };
    if let Some(Some(fault)) = fault {
        return fault_response(fault);
    }
    let Some(setup) = lock(&state.federation).clone() else {
        return oauth_error("invalid_request", "federation is not set up in the double");
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
        return oauth_error(
            "unsupported_grant_type",
            "grant_type must be token-exchange",
        );
    }
    for (name, want) in [
        ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("scope", CLOUD_PLATFORM),
    ] {
        if field(name) != want {
            return oauth_error("invalid_request", &format!("{name} must be {want}"));
        }
    }
    if field("audience") != setup.audience {
        return oauth_error(
            "invalid_target",
            "The audience is not a known pool provider.",
        );
    }
    let subject = field("subject_token");
    let subject_ok = match &setup.subject_token {
        Some(expected) => subject == expected,
        None => subject.split('.').count() == 3,
    };
    if !subject_ok {
        return oauth_error("invalid_grant", "The subject token is not trusted.");
    }
    let token = random_token("sts-");
    lock(&state.sts_tokens).insert(token.clone());
    Json(serde_json::json!({
        "access_token": token,
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "expires_in": 3600,
    }))
    .into_response()
}

#[derive(Deserialize)]
pub(super) struct GenerateRequest {
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    lifetime: String,
}

pub(super) async fn generate_access_token(
    State(state): State<Arc<DoubleState>>,
    Path(account_and_verb): Path<String>,
    headers: HeaderMap,
    Json(request): Json<GenerateRequest>,
) -> Response {
    state.iam_calls.fetch_add(1, Ordering::SeqCst);
    let Some(setup) = lock(&state.federation).clone() else {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "federation is not set up",
        );
    };
    let Some((account, "generateAccessToken")) = account_and_verb.split_once(':') else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "unknown method");
    };
    let federated = bearer(&headers).is_some_and(|t| lock(&state.sts_tokens).contains(t));
    if !federated {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        );
    }
    if account != setup.service_account {
        return google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
        );
    }
    if request.scope != [CLOUD_PLATFORM] || request.lifetime != "3600s" {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "scope must be [cloud-platform] and lifetime 3600s",
        );
    }
    let token = random_token("ya29.double-");
    lock(&state.tokens).insert(token.clone(), format!("serviceAccount:{account}"));
    let lifetime = jiff::SignedDuration::try_from(setup.token_lifetime).unwrap_or_default();
    let expire_time = jiff::Timestamp::now()
        .checked_add(lifetime)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    Json(serde_json::json!({
        "accessToken": token,
        "expireTime": expire_time.to_string(),
    }))
    .into_response()
}
