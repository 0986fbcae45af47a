//! OIDC discovery metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2),
//! typed with `openidconnect`'s vocabulary: one [`DiscoveryDocument`] reads
//! trusted issuers' documents and writes the broker's own.
//!
//! `openidconnect::ProviderMetadata` is not that type: it requires an
//! `authorization_endpoint`, which neither side has. Kubernetes service
//! account issuers and AWS's outbound identity federation publish none, and
//! the broker's issuer is a token-exchange service (RFC 8414 §2 leaves the
//! field out when no grant uses it). `keyferry login`, which talks to a
//! full OpenID provider, uses `ProviderMetadata`.
//!
//! Reading is tolerant where the specifications let issuers grow: only
//! `issuer` and `jwks_uri` are required, and a list member this crate does
//! not know (a new signing algorithm, say) is skipped rather than making the
//! whole document unusable.

use openidconnect::core::{
    CoreClaimName, CoreGrantType, CoreJwsSigningAlgorithm, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{IssuerUrl, JsonWebKeySetUrl, ResponseTypes, Scope, TokenUrl};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::signing::TOKEN_EXCHANGE_GRANT;

/// `GET {issuer}/.well-known/openid-configuration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryDocument {
    /// The issuer identifier, compared exactly with the configured one.
    pub issuer: IssuerUrl,
    /// Where the issuer's signing keys are.
    pub jwks_uri: JsonWebKeySetUrl,
    /// Where tokens are issued, if the issuer issues any on request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<TokenUrl>,
    /// The grants the token endpoint answers.
    #[serde(
        default,
        deserialize_with = "known",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub grant_types_supported: Vec<CoreGrantType>,
    /// Required by OpenID Connect Discovery; relying parties read it.
    #[serde(default, deserialize_with = "known")]
    pub response_types_supported: Vec<ResponseTypes<CoreResponseType>>,
    /// Required by OpenID Connect Discovery.
    #[serde(default, deserialize_with = "known")]
    pub subject_types_supported: Vec<CoreSubjectIdentifierType>,
    /// The algorithms the issuer signs ID tokens with.
    #[serde(default, deserialize_with = "known")]
    pub id_token_signing_alg_values_supported: Vec<CoreJwsSigningAlgorithm>,
    /// The scopes the issuer grants.
    #[serde(
        default,
        deserialize_with = "known",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scopes_supported: Vec<Scope>,
    /// The claims its tokens may carry.
    #[serde(
        default,
        deserialize_with = "known",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub claims_supported: Vec<CoreClaimName>,
}

/// A list, keeping the members that parse as `T` (absent or `null`: empty).
fn known<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let values = Option::<Vec<Value>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(values
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// The claims the broker's federated credentials carry.
const CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "jti",
    "client_id",
    "scope",
    "adtech",
    "cloud",
    "src_iss",
    "src_sub",
];

/// The broker's issuer at `issuer_url`: what AWS IAM OIDC providers, GCP
/// workload identity pools and Azure federated credentials read. Token
/// exchange (RFC 8693) at `/v1/token`, ES256 credentials. The issuer is
/// written as given: its spelling is the `iss` of every credential.
pub fn discovery_document(
    issuer_url: &str,
    scopes_supported: &[String],
) -> Result<DiscoveryDocument, url::ParseError> {
    let base = issuer_url.trim_end_matches('/');
    Ok(DiscoveryDocument {
        issuer: IssuerUrl::new(issuer_url.to_owned())?,
        jwks_uri: JsonWebKeySetUrl::new(format!("{base}/.well-known/jwks.json"))?,
        token_endpoint: Some(TokenUrl::new(format!("{base}/v1/token"))?),
        grant_types_supported: vec![CoreGrantType::Extension(TOKEN_EXCHANGE_GRANT.to_owned())],
        response_types_supported: vec![ResponseTypes::new(vec![CoreResponseType::IdToken])],
        subject_types_supported: vec![CoreSubjectIdentifierType::Public],
        id_token_signing_alg_values_supported: vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256],
        scopes_supported: scopes_supported.iter().cloned().map(Scope::new).collect(),
        claims_supported: CLAIMS
            .iter()
            .map(|c| CoreClaimName::new((*c).to_owned()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_minimal_document_with_unknown_members_reads() {
        // A Kubernetes service account issuer's shape, with an algorithm
        // and a member this crate has never heard of.
        let doc: DiscoveryDocument = serde_json::from_value(json!({
            "issuer": "https://kubernetes.default.svc",
            "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "XS999"],
            "something_new": {"nested": true}
        }))
        .expect("reads");
        assert_eq!(doc.issuer.as_str(), "https://kubernetes.default.svc");
        assert_eq!(doc.jwks_uri.url().host_str(), Some("10.0.0.1"));
        assert_eq!(
            doc.id_token_signing_alg_values_supported,
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]
        );
        assert!(doc.token_endpoint.is_none());
    }

    #[test]
    fn issuer_and_jwks_uri_are_required_and_must_be_urls() {
        for doc in [
            json!({"jwks_uri": "https://a.example/jwks"}),
            json!({"issuer": "https://a.example"}),
            json!({"issuer": "https://a.example", "jwks_uri": "not a url"}),
            json!({"issuer": 7, "jwks_uri": "https://a.example/jwks"}),
        ] {
            assert!(
                serde_json::from_value::<DiscoveryDocument>(doc.clone()).is_err(),
                "{doc}"
            );
        }
    }

    #[test]
    fn the_issuer_keeps_its_exact_spelling() {
        // Discovery compares issuers as strings: a trailing slash matters.
        let doc: DiscoveryDocument = serde_json::from_value(json!({
            "issuer": "https://sts.windows.net/tenant/",
            "jwks_uri": "https://login.microsoftonline.com/common/discovery/keys"
        }))
        .expect("reads");
        assert_eq!(doc.issuer.as_str(), "https://sts.windows.net/tenant/");
    }
}
