//! `keyferry login`: an operator signs in at the operator OIDC issuer with
//! the device authorization grant (RFC 8628), and the admin commands use
//! the token it caches.
//!
//! The cached token is the ID token: its audience is the CLI's client id,
//! which is the broker's `[admin] oidc_audience`, and it carries the role
//! claim (DESIGN §7.4). The CLI verifies it (issuer, audience, signature,
//! expiry) before caching it, so a misconfigured issuer fails here rather
//! than at the first admin command. The cache holds a bearer credential:
//! it is written with mode 0600 in a 0700 directory, and a cache that
//! others can read is refused, as ssh refuses a private key.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreDeviceAuthorizationResponse, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, DeviceAuthorizationUrl, HttpRequest, HttpResponse,
    IssuerUrl, Nonce, ProviderMetadata, Scope,
};
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroizing;

use super::client::Failure;
use crate::config::{self, Overrides};

/// Options of `keyferry login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The operator OIDC issuer (default: `[admin] oidc_issuer` of --config).
    #[arg(long, env = "KEYFERRY_OPERATOR_ISSUER")]
    issuer: Option<Url>,
    /// The CLI's client id at the issuer (default: `[admin] oidc_audience`
    /// of --config, the audience the broker requires).
    #[arg(long, env = "KEYFERRY_OPERATOR_CLIENT_ID")]
    client_id: Option<String>,
    /// The broker configuration to read `[admin]` from.
    #[arg(long, env = "KEYFERRY_CONFIG")]
    config: Option<PathBuf>,
    /// Scopes to request besides `openid` (for example the one that
    /// releases the role claim); repeat or separate with commas.
    #[arg(long = "scope", value_delimiter = ',')]
    scopes: Vec<String>,
    /// Where to cache the token (default:
    /// `$XDG_CONFIG_HOME/keyferry/operator-token.json`).
    #[arg(long, env = "KEYFERRY_TOKEN_CACHE")]
    token_cache: Option<PathBuf>,
}

/// What `login` caches and the admin commands read.
#[derive(Serialize, Deserialize)]
pub(crate) struct CachedToken {
    /// The issuer that signed it.
    pub(crate) issuer: String,
    /// Its audience, the CLI's client id.
    pub(crate) client_id: String,
    /// The operator it names (`sub`).
    pub(crate) subject: String,
    /// Unix seconds.
    pub(crate) expires_at: u64,
    /// The ID token, sent as the bearer token.
    pub(crate) token: Zeroizing<String>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The cache path in effect: `explicit`, else under the user's config directory.
pub(crate) fn cache_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_owned());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("keyferry").join("operator-token.json"))
}

/// Reads the cached token at `path`: `Ok(None)` if there is none; an error
/// if it is unreadable, readable by others, or expired.
pub(crate) fn read_cache(path: &Path) -> Result<Option<CachedToken>, Failure> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure(format!("cannot read {}: {e}", path.display()))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Failure(format!(
                "{} is readable by others (mode {:o}): remove it and run `keyferry login` again",
                path.display(),
                mode & 0o777
            )));
        }
    }
    let cached: CachedToken = serde_json::from_slice(&bytes).map_err(|_| {
        Failure(format!(
            "{} is not a token cache; run `keyferry login`",
            path.display()
        ))
    })?;
    if cached.expires_at <= unix_now() {
        return Err(Failure(format!(
            "the operator token of {} from {} has expired; run `keyferry login`",
            cached.subject, cached.issuer
        )));
    }
    Ok(Some(cached))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The discovery fields the device flow needs beyond OpenID Connect's core
/// (RFC 8628 §4).
#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    device_authorization_endpoint: DeviceAuthorizationUrl,
}

impl AdditionalProviderMetadata for DeviceEndpoint {}

/// The operator issuer's discovery document, typed.
type OperatorIssuerMetadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Operator ID tokens are signed with an issuer's private key: never HMAC
/// with a shared secret, never `none`.
const SIGNING_ALGORITHMS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Largest response accepted from the issuer.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Http(#[from] http::Error),
}

/// The issuer's HTTP client, in the shape `openidconnect` calls: no
/// redirects (a redirect would let the discovery host send the CLI
/// anywhere), bounded responses.
fn http_client() -> Result<impl Fn(HttpRequest) -> HttpFuture, Failure> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Failure(format!("cannot build the HTTP client: {e}")))?;
    Ok(move |request: HttpRequest| -> HttpFuture {
        let client = client.clone();
        Box::pin(async move {
            let mut response = client.execute(request.try_into()?).await?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(builder.body(body)?)
        })
    })
}

type HttpFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, HttpError>> + Send>>;

/// `https://`, or `http://` on a loopback host (a local test issuer).
fn check_issuer(url: &Url) -> Result<(), Failure> {
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Failure(format!(
            "the operator issuer must be an https:// URL (http:// only on loopback): {url}"
        ))),
    }
}

/// Issuer and client id from the flags, else from the configuration.
fn issuer_and_client(args: &LoginArgs) -> Result<(Url, String), Failure> {
    let admin = match (&args.issuer, &args.client_id, &args.config) {
        (Some(_), Some(_), _) => None,
        (_, _, Some(path)) => Some(
            config::load(Some(path), &Overrides::default())
                .map_err(|e| Failure(e.to_string()))?
                .admin,
        ),
        _ => None,
    };
    let issuer = args
        .issuer
        .clone()
        .or_else(|| admin.as_ref().and_then(|a| a.oidc_issuer.clone()))
        .ok_or_else(|| {
            Failure(
                "no operator issuer: pass --issuer or a --config with [admin] oidc_issuer".into(),
            )
        })?;
    let client_id = args
        .client_id
        .clone()
        .or_else(|| admin.as_ref().and_then(|a| a.oidc_audience.clone()))
        .ok_or_else(|| {
            Failure(
                "no client id: pass --client-id or a --config with [admin] oidc_audience".into(),
            )
        })?;
    Ok((issuer, client_id))
}

/// Runs `keyferry login`.
pub(crate) fn run(args: LoginArgs) -> ExitCode {
    super::client::block_on(login(args))
}

async fn login(args: LoginArgs) -> Result<(), Failure> {
    let (issuer, client_id) = issuer_and_client(&args)?;
    check_issuer(&issuer)?;
    let path = cache_path(args.token_cache.as_deref())
        .ok_or_else(|| Failure("no HOME: pass --token-cache".into()))?;
    let http = http_client()?;

    // `IssuerUrl` keeps the issuer as configured: a trailing slash is part
    // of some issuers' identifiers, and discovery compares it exactly.
    let issuer_url = IssuerUrl::new(issuer.as_str().trim_end_matches('/').to_owned())
        .map_err(|e| Failure(format!("invalid issuer URL: {e}")))?;
    let metadata = OperatorIssuerMetadata::discover_async(issuer_url.clone(), &http)
        .await
        .map_err(|e| Failure(format!("discovery at {issuer_url} failed: {}", chain(&e))))?;
    let device_endpoint = metadata
        .additional_metadata()
        .device_authorization_endpoint
        .clone();
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.clone()), None)
            .set_device_authorization_url(device_endpoint);

    let mut request = client
        .exchange_device_code()
        .add_scope(Scope::new("openid".into()));
    for scope in args
        .scopes
        .iter()
        .filter(|s| !s.is_empty() && *s != "openid")
    {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let details: CoreDeviceAuthorizationResponse = request
        .request_async(&http)
        .await
        .map_err(|e| Failure(format!("device authorization refused: {}", chain(&e))))?;
    eprintln!(
        "To sign in, open {} and enter the code {}",
        details.verification_uri().as_str(),
        details.user_code().secret()
    );
    if let Some(complete) = details.verification_uri_complete() {
        eprintln!("or open {}", complete.secret());
    }

    let response = client
        .exchange_device_access_token(&details)
        .map_err(|e| Failure(format!("the issuer has no token endpoint: {e}")))?
        .request_async(&http, tokio::time::sleep, None)
        .await
        .map_err(|e| Failure(format!("sign-in did not complete: {}", chain(&e))))?;
    // The access token may be opaque and is for the issuer's own APIs; the
    // broker reads the ID token.
    let id_token = response
        .extra_fields()
        .id_token()
        .ok_or_else(|| Failure("the issuer returned no ID token (was `openid` granted?)".into()))?;
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(SIGNING_ALGORITHMS);
    // The device grant has no nonce: the code is bound to this client's
    // device code, polled over TLS.
    let claims = id_token
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .map_err(|e| Failure(format!("the ID token does not verify: {e}")))?;
    let cached = CachedToken {
        issuer: claims.issuer().to_string(),
        client_id,
        subject: claims.subject().to_string(),
        expires_at: u64::try_from(claims.expiration().timestamp()).unwrap_or(0),
        token: Zeroizing::new(id_token.to_string()),
    };
    let body = Zeroizing::new(
        serde_json::to_vec(&cached).map_err(|e| Failure(format!("cannot encode: {e}")))?,
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_private_dir(dir)
            .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display())))?;
    }
    crate::files::write_private(&path, &body)
        .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    eprintln!(
        "signed in as {} at {}; token cached in {} for {} min",
        cached.subject,
        cached.issuer,
        path.display(),
        cached.expires_at.saturating_sub(unix_now()) / 60
    );
    Ok(())
}

/// An error and its causes on one line (the libraries' messages are terse).
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_or_loopback_http() {
        for ok in [
            "https://login.example",
            "http://127.0.0.1:8080",
            "http://[::1]:1",
            "http://localhost:9",
        ] {
            assert!(check_issuer(&ok.parse().expect("url")).is_ok(), "{ok}");
        }
        for refused in ["http://login.example", "http://10.0.0.1", "ftp://127.0.0.1"] {
            assert!(
                check_issuer(&refused.parse().expect("url")).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn an_explicit_cache_path_wins() {
        assert_eq!(
            cache_path(Some(Path::new("/tmp/t.json"))),
            Some(PathBuf::from("/tmp/t.json"))
        );
    }
}
