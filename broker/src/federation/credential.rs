//! [`Caller`]: the proof that a request carries a valid federated credential
//! with the scope its endpoint needs.
//!
//! The scope is part of the type (`Caller<KeysRead>`), so an endpoint states
//! what it requires in its signature and cannot forget to check. Rejections
//! use the Privacy Sandbox compatible error body that the workload endpoints
//! answer in (`{"code","message","details":[{"reason"}]}`), with the RFC
//! 6750 `WWW-Authenticate` header.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idp::{CredentialRejection, VerifiedCredential};
use serde_json::json;

use crate::state::AppState;

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
        let body = json!({
            "code": self.status.as_u16(),
            "message": self.message,
            "details": [{ "reason": self.reason }],
        });
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

/// The bearer token of a request, if it has exactly one well-formed one.
pub fn bearer(parts: &Parts) -> Result<&str, &'static str> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or("missing Authorization header")?;
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let value = value
        .to_str()
        .map_err(|_| "malformed Authorization header")?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or("malformed Authorization header")?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err("expected a Bearer token");
    }
    Ok(token.trim())
}

impl<S: RequiredScope> FromRequestParts<AppState> for Caller<S> {
    type Rejection = CredentialError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).map_err(CredentialError::unauthenticated)?;
        let now = state.clock.now();
        let issuer = state.issuer.current();
        let verifier = issuer.credential_verifier(now);
        let credential = verifier.verify(token, issuer.issuer(), S::SCOPE, now)?;
        Ok(Caller {
            credential,
            _scope: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(values: &[&str]) -> Parts {
        let mut builder = axum::http::Request::builder();
        for v in values {
            builder = builder.header(header::AUTHORIZATION, *v);
        }
        builder.body(()).expect("request").into_parts().0
    }

    #[test]
    fn bearer_tokens_are_taken_only_from_one_well_formed_header() {
        assert_eq!(bearer(&parts(&["Bearer abc.def.ghi"])), Ok("abc.def.ghi"));
        assert_eq!(bearer(&parts(&["bearer abc"])), Ok("abc"));
        assert!(bearer(&parts(&[])).is_err());
        assert!(bearer(&parts(&["Basic dXNlcjpwYXNz"])).is_err());
        assert!(bearer(&parts(&["Bearer"])).is_err());
        assert!(bearer(&parts(&["Bearer  "])).is_err());
        assert!(bearer(&parts(&["Bearer a", "Bearer b"])).is_err());
    }
}
