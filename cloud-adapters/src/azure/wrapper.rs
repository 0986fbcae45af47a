use std::fmt;
use std::sync::Arc;

use crate::{KekUri, KeyWrapper, WrapError};
use async_trait::async_trait;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::http::{
    ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions, Transport,
};
use azure_identity::{
    ClientAssertionCredential, ClientAssertionCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId,
};
use azure_security_keyvault_keys::models::{
    EncryptionAlgorithm, KeyClientWrapKeyOptions, KeyOperationParameters, KeyOperationResult,
};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions, ResourceExt, ResourceId};
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use crate::azure::classify::{Op, classify};
use crate::azure::credential::{FederatedAssertion, StaticToken};
use crate::azure::{AzureCredentials, AzureSettings};

/// A ciphertext and the key id (`kid`, the full versioned key URL) that made
/// it, for callers that record which key version wrapped what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapped {
    /// The vault's RSA-OAEP-256 output, as is.
    pub ciphertext: Vec<u8>,
    /// `https://<vault-host>/keys/<name>/<version>`, as the vault reported it.
    pub kid: String,
}

/// Wraps and unwraps with one Azure Key Vault RSA key (`RSA-OAEP-256`).
///
/// # Which key version
/// A URI with a version pins it: wrap and unwrap always name it, so a key
/// rotation in the vault never strands a ciphertext. Without a version, the
/// key's current version is resolved once (with `get`, on first use) and
/// kept for the life of this wrapper, so that what it wraps it can unwrap.
/// A rotation followed by a broker restart would then move to the new
/// version while older ciphertexts still need the old one: production URIs
/// should pin a version, and callers that cannot may record the `kid` from
/// [`AzureKeyVaultWrapper::wrap_with_kid`] and unwrap with
/// [`AzureKeyVaultWrapper::unwrap_with_version`].
///
/// # Retries and tokens
/// Retries, backoff and the 401 challenge are azure_core's (see
/// [`AzureSettings`]); tokens are cached by the credential and by the
/// bearer policy until five minutes before they expire.
pub struct AzureKeyVaultWrapper {
    uri: KekUri,
    vault_host: String,
    key_name: String,
    pinned_version: Option<String>,
    resolved_version: OnceCell<String>,
    client: KeyClient,
}

impl fmt::Debug for AzureKeyVaultWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureKeyVaultWrapper")
            .field("uri", &self.uri)
            .field("resolved_version", &self.resolved_version.get())
            .finish_non_exhaustive()
    }
}

fn misconfigured(msg: impl Into<String>) -> WrapError {
    WrapError::Misconfigured(msg.into())
}

/// Key Vault's challenge names `https://vault.azure.net` and the client
/// checks that the vault host is under it; a loopback test double never is.
/// Only loopback hosts skip the check, so that a real vault host can never
/// talk a client into sending its token for another resource.
fn is_loopback(vault_host: &str) -> bool {
    let host = match vault_host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => vault_host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn to_azure_duration(d: std::time::Duration) -> azure_core::time::Duration {
    azure_core::time::Duration::try_from(d).unwrap_or(azure_core::time::Duration::MAX)
}

/// The HTTP side shared by the vault client and the token credential: one
/// reqwest client (TLS with rustls, per-attempt timeout) and one retry policy.
fn client_options(settings: &AzureSettings) -> Result<ClientOptions, WrapError> {
    if settings.max_attempts == 0 {
        return Err(misconfigured("azure max_attempts must be at least 1"));
    }
    if settings.timeout.is_zero() {
        return Err(misconfigured("azure timeout must be positive"));
    }
    let mut http = reqwest::Client::builder()
        .https_only(true)
        .connect_timeout(settings.timeout)
        .timeout(settings.timeout)
        // Key Vault does not redirect; following one would carry the
        // bearer token somewhere else.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = &settings.ca_certificate_pem {
        // `from_pem` defers parsing to `build()`, which then silently trusts
        // nothing; the bundle parser fails here, where the setting is named.
        let cas = reqwest::Certificate::from_pem_bundle(pem)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| misconfigured("azure ca_certificate_pem holds no PEM certificate"))?;
        http = http.tls_certs_only(cas);
    }
    let http = http
        .build()
        .map_err(|e| misconfigured(format!("cannot build the HTTPS client: {e}")))?;
    let retry = RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: to_azure_duration(settings.backoff_base),
        max_retries: settings.max_attempts - 1,
        // Attempts are already bounded by count and by `timeout` each; this
        // only stops a storm of slow answers from running on for minutes.
        max_total_elapsed: to_azure_duration(settings.timeout * settings.max_attempts),
        max_delay: azure_core::time::Duration::seconds(10),
    });
    Ok(ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        retry,
        ..Default::default()
    })
}

fn credential(
    settings: &AzureSettings,
    options: &ClientOptions,
) -> Result<Arc<dyn TokenCredential>, WrapError> {
    match &settings.credentials {
        AzureCredentials::Static { access_token } => {
            if access_token.is_empty() {
                return Err(misconfigured("azure static access_token is empty"));
            }
            Ok(Arc::new(StaticToken(access_token.clone())))
        }
        AzureCredentials::Federated {
            identity,
            tenant_id,
            client_id,
            authority_host,
            audience,
        } => {
            if !authority_host.starts_with("https://") {
                return Err(misconfigured(
                    "azure authority_host must be an https:// URL",
                ));
            }
            if audience.is_empty() {
                return Err(misconfigured("azure assertion audience is empty"));
            }
            let mut cloud = CustomConfiguration::default();
            cloud.authority_host = authority_host.clone();
            let mut client_options = options.clone();
            client_options.cloud = Some(Arc::new(CloudConfiguration::Custom(cloud)));
            let assertion = FederatedAssertion {
                identity: identity.clone(),
                audience: audience.clone(),
            };
            let credential = ClientAssertionCredential::new(
                tenant_id.clone(),
                client_id.clone(),
                assertion,
                Some(ClientAssertionCredentialOptions { client_options }),
            )
            .map_err(|e| misconfigured(format!("azure federated credential: {e}")))?;
            Ok(credential)
        }
        AzureCredentials::ManagedIdentity { client_id } => {
            let credential =
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: options.clone(),
                }))
                .map_err(|e| misconfigured(format!("azure managed identity: {e}")))?;
            Ok(credential)
        }
    }
}

impl AzureKeyVaultWrapper {
    /// A wrapper for `uri` (an `azure-kv://` URI). Nothing is sent yet: the
    /// first wrap or unwrap meets the vault's challenge and fetches a token.
    pub fn new(uri: KekUri, settings: AzureSettings) -> Result<Self, WrapError> {
        let KekUri::AzureKeyVault {
            vault_host,
            key_name,
            version,
        } = &uri
        else {
            return Err(WrapError::InvalidUri(format!(
                "{} is not an azure-kv:// URI",
                uri.scheme().as_str()
            )));
        };
        let options = client_options(&settings)?;
        let credential = credential(&settings, &options)?;
        let client = KeyClient::new(
            &format!("https://{vault_host}/"),
            credential,
            Some(KeyClientOptions {
                client_options: options,
                verify_challenge_resource: Some(!is_loopback(vault_host)),
                ..Default::default()
            }),
        )
        .map_err(|e| misconfigured(format!("azure key client: {e}")))?;
        Ok(AzureKeyVaultWrapper {
            vault_host: vault_host.clone(),
            key_name: key_name.clone(),
            pinned_version: version.clone(),
            resolved_version: OnceCell::new(),
            client,
            uri,
        })
    }

    fn describe(&self, version: Option<&str>) -> String {
        match version {
            Some(v) => format!("{}/keys/{}/{v}", self.vault_host, self.key_name),
            None => format!("{}/keys/{}", self.vault_host, self.key_name),
        }
    }

    /// The key version wrap and unwrap use: the pinned one, or the current
    /// one resolved on first use. A failed resolution is not cached.
    pub async fn key_version(&self) -> Result<&str, WrapError> {
        if let Some(v) = &self.pinned_version {
            return Ok(v);
        }
        let version = self
            .resolved_version
            .get_or_try_init(|| async {
                let key = self
                    .client
                    .get_key(&self.key_name, None)
                    .await
                    .map_err(|e| classify(&e, Op::GetKey, &self.describe(None)))?
                    .into_model()
                    .map_err(|_| self.bad_answer(Op::GetKey, None))?;
                let version = key
                    .resource_id()
                    .ok()
                    .and_then(|id| id.version)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| self.bad_answer(Op::GetKey, None))?;
                tracing::warn!(
                    kek = %self.uri,
                    version = %version,
                    "azure KEK URI has no version; using the current one for this process (pin it)"
                );
                Ok::<_, WrapError>(version)
            })
            .await?;
        Ok(version)
    }

    fn bad_answer(&self, op: Op, version: Option<&str>) -> WrapError {
        WrapError::Unavailable(format!(
            "{op} on {}: the vault's answer does not parse",
            self.describe(version)
        ))
    }

    /// Wraps `plaintext` and reports which key version did it.
    pub async fn wrap_with_kid(&self, plaintext: &[u8]) -> Result<Wrapped, WrapError> {
        let version = self.key_version().await?;
        let params = KeyOperationParameters {
            algorithm: Some(EncryptionAlgorithm::RsaOaep256),
            value: Some(plaintext.to_vec()),
            ..Default::default()
        };
        let result = self.call(Op::Wrap, version, params).await?;
        let ciphertext = result
            .result
            .filter(|c| !c.is_empty())
            .ok_or_else(|| self.bad_answer(Op::Wrap, Some(version)))?;
        let kid = result
            .kid
            .unwrap_or_else(|| format!("https://{}", self.describe(Some(version))));
        Ok(Wrapped { ciphertext, kid })
    }

    /// Unwraps with an explicit key version (from a recorded `kid`, for
    /// instance), whatever the URI says.
    pub async fn unwrap_with_version(
        &self,
        ciphertext: &[u8],
        version: &str,
    ) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        if ciphertext.is_empty() {
            return Err(WrapError::InvalidCiphertext);
        }
        let params = KeyOperationParameters {
            algorithm: Some(EncryptionAlgorithm::RsaOaep256),
            value: Some(ciphertext.to_vec()),
            ..Default::default()
        };
        let result = self.call(Op::Unwrap, version, params).await?;
        result
            .result
            .map(Zeroizing::new)
            .ok_or_else(|| self.bad_answer(Op::Unwrap, Some(version)))
    }

    /// Parses the version out of a `kid` this vault key returned.
    pub fn version_of_kid(&self, kid: &str) -> Result<String, WrapError> {
        let id: ResourceId = kid
            .parse()
            .map_err(|_| WrapError::InvalidUri("kid is not a key URL".into()))?;
        match id.version {
            Some(v) if id.name == self.key_name && !v.is_empty() => Ok(v),
            _ => Err(WrapError::InvalidUri(format!(
                "kid does not name a version of key {}",
                self.key_name
            ))),
        }
    }

    async fn call(
        &self,
        op: Op,
        version: &str,
        params: KeyOperationParameters,
    ) -> Result<KeyOperationResult, WrapError> {
        let body: RequestContent<KeyOperationParameters> = params
            .try_into()
            .map_err(|_| misconfigured("cannot encode the key operation"))?;
        let response = match op {
            Op::Wrap => {
                let options = KeyClientWrapKeyOptions {
                    key_version: Some(version.to_owned()),
                    ..Default::default()
                };
                self.client
                    .wrap_key(&self.key_name, body, Some(options))
                    .await
            }
            Op::Unwrap | Op::GetKey => {
                self.client
                    .unwrap_key(&self.key_name, version, body, None)
                    .await
            }
        };
        let response = response.map_err(|e| {
            let err = classify(&e, op, &self.describe(Some(version)));
            tracing::debug!(kek = %self.uri, %op, error = %err, "azure key vault call failed");
            err
        })?;
        response
            .into_model()
            .map_err(|_| self.bad_answer(op, Some(version)))
    }
}

#[async_trait]
impl KeyWrapper for AzureKeyVaultWrapper {
    fn kek_uri(&self) -> &KekUri {
        &self.uri
    }

    async fn wrap(&self, plaintext: &[u8]) -> Result<Vec<u8>, WrapError> {
        Ok(self.wrap_with_kid(plaintext).await?.ciphertext)
    }

    async fn unwrap(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        let version = self.key_version().await?;
        self.unwrap_with_version(ciphertext, version).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_vault_hosts_skip_the_challenge_resource_check() {
        for host in ["127.0.0.1:8443", "localhost:1", "localhost", "[::1]:443"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "myvault.vault.azure.net",
            "10.0.0.1:443",
            "localhost.evil.example",
            "vault.azure.net:443",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
