//! The `TokenCredential`s the Key Vault client asks for bearer tokens.

use std::fmt;
use std::sync::Arc;

use crate::IdentityTokenSource;
use async_trait::async_trait;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::ClientMethodOptions;
use azure_core::time::{Duration, OffsetDateTime};
use azure_identity::ClientAssertion;
use zeroize::Zeroizing;

/// A fixed bearer token (dev only).
pub(crate) struct StaticToken(pub(crate) Zeroizing<String>);

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

#[async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        // The real expiry is unknown here. Claiming one hour makes the bearer
        // policy come back for it now and then (free) instead of caching a
        // made-up far-future expiry.
        Ok(AccessToken::new(
            Secret::new(self.0.as_str().to_owned()),
            OffsetDateTime::now_utc() + Duration::hours(1),
        ))
    }
}

/// The client assertion of the federated flow: a fresh token from the
/// broker's own issuer, minted for the audience Entra ID expects.
///
/// `azure_identity::ClientAssertionCredential` calls this only when its token
/// cache misses (no token yet, or one within five minutes of expiry), under a
/// write lock, so concurrent wraps share one assertion and one token request.
#[derive(Debug)]
pub(crate) struct FederatedAssertion {
    pub(crate) identity: Arc<dyn IdentityTokenSource>,
    pub(crate) audience: String,
}

#[async_trait]
impl ClientAssertion for FederatedAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        let token = self
            .identity
            .identity_token(&self.audience)
            .await
            // The WrapError rides along as the source so that `classify`
            // can hand the caller the token source's own verdict.
            .map_err(|e| {
                azure_core::Error::with_error(
                    ErrorKind::Credential,
                    e,
                    "the broker's identity token source failed",
                )
            })?;
        Ok(token.as_str().to_owned())
    }
}
