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
    bearer_error: &'static str,
}

impl CredentialError {
    /// The stable reason: `UNAUTHENTICATED` or `PERMISSION_DENIED`.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// What was wrong with the credential (never the credential itself).
    pub fn message(&self) -> &str {
        &self.message
    }

    fn unauthenticated(message: impl Into<String>) -> Self {
        CredentialError {
            status: StatusCode::UNAUTHORIZED,
            reason: "UNAUTHENTICATED",
            message: message.into(),
            bearer_error: "invalid_token",
        }
    }
}

impl From<CredentialRejection> for CredentialError {
    fn from(rejection: CredentialRejection) -> Self {
        match rejection {
            CredentialRejection::InsufficientScope => CredentialError {
                status: StatusCode::FORBIDDEN,
                reason: "PERMISSION_DENIED",
                message: rejection.to_string(),
                bearer_error: "insufficient_scope",
            },
            other => CredentialError::unauthenticated(format!("credential refused: {other}")),
        }
    }
}

impl IntoResponse for CredentialError {
    fn into_response(self) -> Response {
        let body = KeyApiErrorBody::new(self.status.as_u16(), self.reason, self.message);
        let mut response = (self.status, axum::Json(body)).into_response();
        let challenge = format!("Bearer error=\"{}\"", self.bearer_error);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Generic over the router's state: all it needs is the broker's [`Issuer`], so a test of
/// an endpoint behind it builds an issuer, not a whole broker.
impl<S, St> FromRequestParts<St> for Caller<S>
where
    S: RequiredScope,
    St: Send + Sync,
    Arc<Issuer>: FromRef<St>,
{
    type Rejection = CredentialError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let token = crate::bearer::bearer(parts).map_err(CredentialError::unauthenticated)?;
        let credential = Arc::<Issuer>::from_ref(state).verify_credential(token, S::SCOPE)?;
        Ok(Caller {
            credential,
            _scope: PhantomData,
        })
    }
}
