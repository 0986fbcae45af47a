use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::WrapError;

/// The broker's own identity, for outbound federation (DESIGN §5.1).
///
/// Cloud adapters trade a token from this source at their cloud's STS (AWS
/// `AssumeRoleWithWebIdentity`, GCP STS token exchange, Azure client
/// assertion) for KMS credentials. The broker implements it with its OIDC
/// issuer (`sub = coordinator:<name>`); tests may use any issuer the fake
/// STS trusts.
#[async_trait]
pub trait IdentityTokenSource: Send + Sync + std::fmt::Debug {
    /// A fresh JWT for `audience`, short-lived (minutes).
    async fn identity_token(&self, audience: &str) -> Result<Zeroizing<String>, WrapError>;
}
