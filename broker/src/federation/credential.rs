//! [`Caller`]: the proof that a request carries a valid federated credential
//! with the scope its endpoint needs.
//!
//! The scope is part of the type (`Caller<KeysRead>`), so an endpoint states
//! what it requires in its signature and cannot forget to check. Rejections
//! use the Privacy Sandbox compatible error body that the workload endpoints
//! answer in (`{"code","message","details":[{"reason"}]}`), with the RFC
//! 6750 `WWW-Authenticate` header.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idp::{CredentialRejection, VerifiedCredential};
use wire::KeyApiErrorBody;

use super::ExchangeState;
use crate::issuer::Issuer;

/// A scope an endpoint requires.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope string, e.g. `keys:read`.
    const SCOPE: &'static str;
}

/// `keys:read`: fetch wrapped keys (DESIGN §5.2).
#[derive(Debug)]
pub struct KeysRead;
impl RequiredScope for KeysRead {
    const SCOPE: &'static str = "keys:read";
}

/// `keys:release`: attested release (DESIGN §5.3).
#[derive(Debug)]
pub struct KeysRelease;
impl RequiredScope for KeysRelease {
    const SCOPE: &'static str = "keys:release";
}

/// A caller whose credential verified, with scope `S`.
#[derive(Debug)]
pub struct Caller<S: RequiredScope> {
    /// The verified credential: ad tech, cloud, source identity, jti.
    pub credential: VerifiedCredential,
    _scope: PhantomData<S>,
}

/// Why a credential was refused.
#[derive(Debug)]
pub struct CredentialError {
    status: StatusCode,
    reason: &'static str,
    message: String,
    /// RFC 6750's `error` for `WWW-Authenticate`; none when the refusal is
    /// not about the credential (the broker is busy or failing).
    bearer_error: Option<&'static str>,
    retry_after: Option<u64>,
}

impl CredentialError {
    /// The stable reason: `UNAUTHENTICATED`, `PERMISSION_DENIED`, or, for a
    /// workload ID token exchanged at the endpoint (`direct.rs`),
    /// `RESOURCE_EXHAUSTED` or `UNAVAILABLE`.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// What was wrong with the credential (never the credential itself).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(super) fn unauthenticated(message: impl Into<String>) -> Self {
        CredentialError {
            status: StatusCode::UNAUTHORIZED,
            reason: "UNAUTHENTICATED",
            message: message.into(),
            bearer_error: Some("invalid_token"),
            retry_after: None,
        }
    }

    pub(super) fn permission_denied(message: impl Into<String>) -> Self {
        CredentialError {
            status: StatusCode::FORBIDDEN,
            reason: "PERMISSION_DENIED",
            message: message.into(),
            bearer_error: Some("insufficient_scope"),
            retry_after: None,
        }
    }

    pub(super) fn rate_limited(retry_after_secs: u64) -> Self {
        CredentialError {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: "RESOURCE_EXHAUSTED",
            message: "too many token exchanges for this identity; retry later".into(),
            bearer_error: None,
            retry_after: Some(retry_after_secs),
        }
    }

    pub(super) fn unavailable(message: impl Into<String>) -> Self {
        CredentialError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: "UNAVAILABLE",
            message: message.into(),
            bearer_error: None,
            retry_after: Some(5),
        }
    }
}

impl From<CredentialRejection> for CredentialError {
    fn from(rejection: CredentialRejection) -> Self {
        match rejection {
            CredentialRejection::InsufficientScope => {
                CredentialError::permission_denied(rejection.to_string())
            }
            other => CredentialError::unauthenticated(format!("credential refused: {other}")),
        }
    }
}

impl IntoResponse for CredentialError {
    fn into_response(self) -> Response {
        let body = KeyApiErrorBody::new(self.status.as_u16(), self.reason, self.message);
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(error) = self.bearer_error
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer error=\"{error}\""))
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// What the [`Caller`] extractor checks a Bearer with: the broker's own
/// issuer and, where the router has them, the token exchange's parts, for the
/// workload ID tokens of issuers that opt in (`direct.rs`). A router whose
/// state is just an [`Issuer`] (a test of one endpoint) gets the first alone.
#[derive(Clone)]
pub struct CredentialCheck {
    issuer: Arc<Issuer>,
    exchange: Option<ExchangeState>,
}

impl FromRef<Arc<Issuer>> for CredentialCheck {
    fn from_ref(issuer: &Arc<Issuer>) -> Self {
        CredentialCheck {
            issuer: issuer.clone(),
            exchange: None,
        }
    }
}

impl From<ExchangeState> for CredentialCheck {
    fn from(exchange: ExchangeState) -> Self {
        CredentialCheck {
            issuer: exchange.issuer.clone(),
            exchange: Some(exchange),
        }
    }
}

impl<S, St> FromRequestParts<St> for Caller<S>
where
    S: RequiredScope,
    St: Send + Sync,
    CredentialCheck: FromRef<St>,
{
    type Rejection = CredentialError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let token = crate::bearer::bearer(parts).map_err(CredentialError::unauthenticated)?;
        let check = CredentialCheck::from_ref(state);
        let credential = match check.issuer.verify_credential(token, S::SCOPE) {
            Ok(credential) => credential,
            // Not one of the broker's credentials: perhaps a workload ID
            // token of an issuer that accepts them as Bearers.
            Err(rejection @ CredentialRejection::InvalidToken { .. }) => {
                let exchanged = match &check.exchange {
                    Some(exchange) => {
                        super::direct::exchange_bearer(exchange, token, S::SCOPE).await
                    }
                    None => None,
                };
                match exchanged {
                    Some(exchanged) => exchanged?,
                    None => return Err(rejection.into()),
                }
            }
            Err(rejection) => return Err(rejection.into()),
        };
        Ok(Caller {
            credential,
            _scope: PhantomData,
        })
    }
}
