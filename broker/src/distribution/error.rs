//! The Privacy Sandbox compatible error body of the key endpoints:
//! `{"code": <gRPC code>, "message", "details": [{"reason", "domain",
//! "metadata"}]}` ([`wire::KeyApiErrorBody`]), whose reasons let a workload
//! tell a missing key, an authentication or permission failure, a required
//! attestation and an outage apart.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use wire::KeyApiErrorBody;

use crate::storage::StoreError;

/// Why a key request was refused. Each variant is one stable `reason`.
#[derive(Debug, thiserror::Error)]
pub enum KeyApiError {
    /// No such key, or it is not (yet, or any longer) served.
    #[error("{0}")]
    MissingKey(String),
    /// The key was revoked by an operator.
    #[error("key `{0}` was revoked")]
    KeyRevoked(String),
    /// A malformed request: bad query, body or field.
    #[error("{0}")]
    InvalidArgument(String),
    /// The ad tech is not onboarded (or is disabled) for the use case.
    #[error("{0}")]
    PermissionDenied(String),
    /// The use case releases keys only against SNP evidence (DESIGN §5.3).
    #[error("use case `{0}` releases keys only through attested release")]
    AttestationRequired(String),
    /// The evidence or its binding was refused; `reason` is the stable code
    /// of the attestation check that failed.
    #[error("attestation refused: {message}")]
    AttestationFailed {
        /// The attestation reason code, e.g. `measurement_not_allowed`.
        reason: &'static str,
        /// A short description, safe to show.
        message: String,
    },
    /// The workload's cloud has no KEK on this coordinator.
    #[error("cloud `{0}` is not enabled on this coordinator")]
    CloudNotEnabled(String),
    /// Too many challenges for this workload identity; retry after the
    /// given number of seconds.
    #[error("too many challenges for this workload; retry in {0} s")]
    RateLimited(u64),
    /// A dependency (database, KMS) failed; the detail is logged, not sent.
    #[error("the coordinator cannot serve keys right now")]
    Unavailable(String),
}

impl KeyApiError {
    /// The stable `reason` of the error body.
    pub fn reason(&self) -> &'static str {
        self.status_and_reason().1
    }

    fn status_and_reason(&self) -> (StatusCode, &'static str) {
        match self {
            KeyApiError::MissingKey(_) => (StatusCode::NOT_FOUND, "MISSING_KEY"),
            // 404, as the coordinator answers for a key it does not serve:
            // no gRPC code maps to 410, and the Java fetcher reads 404 as
            // KEY_NOT_FOUND.
            KeyApiError::KeyRevoked(_) => (StatusCode::NOT_FOUND, "KEY_REVOKED"),
            KeyApiError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
            KeyApiError::PermissionDenied(_) => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
            KeyApiError::AttestationRequired(_) => (StatusCode::FORBIDDEN, "ATTESTATION_REQUIRED"),
            KeyApiError::AttestationFailed { .. } => (StatusCode::FORBIDDEN, "ATTESTATION_FAILED"),
            KeyApiError::CloudNotEnabled(_) => (StatusCode::FORBIDDEN, "CLOUD_NOT_ENABLED"),
            KeyApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
            KeyApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        }
    }
}

impl From<StoreError> for KeyApiError {
    fn from(e: StoreError) -> Self {
        KeyApiError::Unavailable(format!("database: {e}"))
    }
}

impl IntoResponse for KeyApiError {
    fn into_response(self) -> Response {
        let (status, reason) = self.status_and_reason();
        if let KeyApiError::Unavailable(detail) = &self {
            tracing::error!(%detail, "key endpoint unavailable");
        }
        let mut body = KeyApiErrorBody::new(status.as_u16(), reason, self.to_string());
        if let Some(detail) = body.details.first_mut() {
            match &self {
                KeyApiError::AttestationFailed { reason, .. } => {
                    detail
                        .metadata
                        .insert(wire::ATTESTATION_REASON.to_owned(), (*reason).to_owned());
                }
                KeyApiError::KeyRevoked(_) => {
                    detail
                        .metadata
                        .insert("keyStatus".to_owned(), "revoked".to_owned());
                }
                _ => {}
            }
        }
        let mut response = (status, axum::Json(body)).into_response();
        let retry_after = match self {
            KeyApiError::RateLimited(secs) => Some(secs.into()),
            KeyApiError::Unavailable(_) => Some(axum::http::HeaderValue::from_static(
                crate::error::RETRY_AFTER_SECONDS,
            )),
            _ => None,
        };
        if let Some(value) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        response
    }
}
