use std::fmt;

use google_cloud_auth::credentials::{CacheableResource, CredentialsProvider, EntityTag};
use google_cloud_auth::errors::CredentialsError;
use http::{Extensions, HeaderMap, HeaderValue, header::AUTHORIZATION};
use zeroize::Zeroizing;

use crate::WrapError;
use crate::gcp::settings::misconfigured;

/// The universe every Keyferry credential belongs to. The SDK compares it
/// with the endpoint's and refuses a mismatch at build time.
pub(crate) const UNIVERSE_DOMAIN: &str = "googleapis.com";

/// A `Bearer` header value, marked sensitive so that `http`'s and `reqwest`'s
/// `Debug` print `Sensitive` instead of the token.
pub(crate) fn bearer(token: &str) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    Ok(value)
}

pub(crate) fn auth_headers(value: HeaderValue) -> CacheableResource<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(1);
    headers.insert(AUTHORIZATION, value);
    // The SDK never sends an entity tag back to us (it asks for fresh
    // headers on every attempt), so a new tag each time is correct.
    CacheableResource::New {
        entity_tag: EntityTag::new(),
        data: headers,
    }
}

/// A fixed bearer token, for development against real Cloud KMS with a
/// `gcloud auth print-access-token` token, or for the test double.
pub(crate) struct StaticToken {
    header: HeaderValue,
}

impl StaticToken {
    pub(crate) fn new(token: &Zeroizing<String>) -> Result<Self, WrapError> {
        if token.is_empty() {
            return Err(misconfigured("static access token is empty"));
        }
        // The error from `http` does not echo the value; ours does not either.
        let header = bearer(token).map_err(|_| {
            misconfigured("static access token has characters a header cannot hold")
        })?;
        Ok(Self { header })
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken(<redacted>)")
    }
}

impl CredentialsProvider for StaticToken {
    async fn headers(
        &self,
        _extensions: Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        Ok(auth_headers(self.header.clone()))
    }

    async fn universe_domain(&self) -> Option<String> {
        Some(UNIVERSE_DOMAIN.to_owned())
    }
}
