//! The broker's one error type and its mapping to HTTP.
//!
//! Every handler returns `Result<_, Error>`; [`Error::into_response`] is the
//! one place a failure becomes a status and an RFC 9457 problem+json body
//! with a stable `code`. Client mistakes are 4xx; internal failures answer a
//! generic 500 or 503 and log the detail, which may name hosts or files but
//! never secrets.
//!
//! The OAuth token endpoint and the Privacy Sandbox compatible endpoints
//! answer in their own error formats and do not use this type.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::storage::StoreError;

/// What every 503 tells the client to wait before it retries: outages of a
/// dependency are not the client's to fix, and a hint keeps retries from
/// arriving all at once.
pub(crate) const RETRY_AFTER_SECONDS: &str = "5";

/// A request failure, as the client will see it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; `code` says how (`bad_json`, `invalid_field`…).
    #[error("{detail}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Human explanation naming the field.
        detail: String,
        /// The request field at fault, when there is one.
        field: Option<String>,
    },
    /// No such resource (or route).
    #[error("{0}")]
    NotFound(String),
    /// The resource exists but not with that method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with existing state (duplicate, overlap).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than `server.body_limit`.
    #[error("request body too large")]
    PayloadTooLarge,
    /// No valid operator credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// The operator's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The body is not `application/json`.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// A well-formed request that a rule refuses, with the rule's own
    /// stable code (a governance ballot from a non-member, on an expired
    /// proposal…).
    #[error("{detail}")]
    Refused {
        /// 403, 409 or 410, as the rule says.
        status: StatusCode,
        /// Stable code.
        code: &'static str,
        /// Human explanation.
        detail: String,
    },
    /// A dependency (database, KMS) is down; retry later.
    #[error("service unavailable")]
    Unavailable(String),
    /// A bug or corrupt state; the detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    /// A 400 naming the field and what is wrong with it.
    pub fn invalid_field(field: &str, problem: impl std::fmt::Display) -> Self {
        Error::BadRequest {
            code: "invalid_field",
            detail: format!("{field}: {problem}"),
            field: Some(field.to_owned()),
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Refused { status, .. } => *status,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. } => code,
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::PayloadTooLarge => "payload_too_large",
            Error::UnsupportedMediaType => "unsupported_media_type",
            Error::Refused { code, .. } => code,
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

/// Every onboarding field rule answers `400 invalid_field` naming the field
/// (DESIGN §7.1); this is the one place the onboarding crate's refusals
/// become that.
impl From<onboarding::FieldError> for Error {
    fn from(e: onboarding::FieldError) -> Self {
        Error::invalid_field(e.field(), e.error())
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Error::NotFound(format!("{what} not found")),
            StoreError::Conflict(what) => Error::Conflict(format!("{what} already exists")),
            StoreError::Database(e) => Error::Unavailable(format!("database: {e}")),
            StoreError::Unavailable(e) => Error::Unavailable(e),
            other => Error::Internal(other.to_string()),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// A URI naming the problem type (`about:blank` style per code).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the status.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this request.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
    /// The request field at fault (an RFC 9457 extension member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem for `status` with the given code and detail.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:keyferry:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            field: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let detail = match &self {
            Error::Unavailable(detail) => {
                tracing::warn!(%detail, "dependency unavailable");
                "a dependency of the service is unavailable; retry later".to_owned()
            }
            Error::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let mut problem = Problem::new(self.status(), self.code(), detail);
        if let Error::BadRequest { field, .. } = &self {
            problem.field = field.clone();
        }
        let mut response = problem.into_response();
        match self {
            Error::Unauthenticated(_) => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Error::Unavailable(_) => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
            }
            _ => {}
        }
        response
    }
}
