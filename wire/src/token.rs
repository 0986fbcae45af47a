//! `POST /v1/token` (RFC 8693) answers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A granted exchange. Holds the credential: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The federated credential (an RFC 9068 JWT).
    pub access_token: String,
    /// Seconds until it expires.
    #[serde(default)]
    pub expires_in: u64,
    /// `urn:ietf:params:oauth:token-type:jwt`.
    #[serde(default)]
    pub issued_token_type: String,
    /// The granted scopes, space separated.
    #[serde(default)]
    pub scope: String,
    /// `Bearer`.
    pub token_type: String,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// RFC 6749 §5.2 error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    /// `invalid_grant`, `invalid_request`, ...
    pub error: String,
    /// Which check failed; never the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_credential() {
        let t = TokenResponse {
            access_token: "eyJhbGciOi.secret.part".into(),
            expires_in: 3600,
            issued_token_type: "urn:ietf:params:oauth:token-type:jwt".into(),
            scope: "keys:read".into(),
            token_type: "Bearer".into(),
        };
        assert!(!format!("{t:?}").contains("secret"));
    }
}
