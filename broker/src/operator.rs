//! Operator authentication (DESIGN §7.4): who may call `/v1/admin/*` and
//! `/v1/audit/*`.
//!
//! Two sources of operator identity:
//! - the **bootstrap token** (dev profile only): 32 random bytes written to
//!   `<data-dir>/admin-token` (0600) at first start; the database keeps only
//!   its SHA-256, compared in constant time;
//! - the **operator OIDC issuer** (production): bearer JWTs from
//!   `admin.oidc_issuer` for `admin.oidc_audience`, validated like subject
//!   tokens, with roles in `admin.role_claim`.
//!
//! Handlers take [`Operator<R>`], where `R` names the roles allowed, so an
//! admin endpoint cannot compile without its check.

use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idp::{Clock, IssuerConfig, IssuerKind, IssuerRegistry, JwksCache, JwksPolicy, TokenValidator};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::Error;
use crate::config::Config;
use crate::storage::Store;
use crate::time::unix_ms;

/// An operator role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Onboarding, keys, configuration.
    Admin,
    /// Reads audit data and registries.
    Auditor,
    /// Votes on governance proposals.
    Member,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Member => "member",
        }
    }
}

/// Which roles an endpoint accepts.
pub trait RoleRequirement: Send + Sync + 'static {
    /// The accepted roles.
    const ROLES: &'static [Role];
}

/// Admin only: every change.
#[derive(Debug)]
pub struct AdminRole;
impl RoleRequirement for AdminRole {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// Admin or auditor: reading registries and the audit log.
#[derive(Debug)]
pub struct ReaderRole;
impl RoleRequirement for ReaderRole {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Auditor];
}

/// Admin or governance member: proposing and voting.
#[derive(Debug)]
pub struct GovernorRole;
impl RoleRequirement for GovernorRole {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Member];
}

/// Any operator role: reading governance state.
#[derive(Debug)]
pub struct AnyRole;
impl RoleRequirement for AnyRole {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Auditor, Role::Member];
}

/// An authenticated operator allowed by `R`.
#[derive(Debug)]
pub struct Operator<R: RoleRequirement> {
    /// For audit records: `admin-token:<label>` or `operator:<sub>`.
    pub actor: String,
    _role: PhantomData<R>,
}

struct StoredToken {
    hash: [u8; 32],
    role: Role,
    label: String,
}

struct OperatorOidc {
    validator: TokenValidator,
    role_claim: String,
}

/// The operator authenticator of one broker.
pub struct AdminAuth {
    tokens: Vec<StoredToken>,
    oidc: Option<OperatorOidc>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("tokens", &self.tokens.len())
            .field("oidc", &self.oidc.is_some())
            .finish()
    }
}

/// Why operator authentication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AdminAuthError {
    /// The bootstrap token file could not be written.
    #[error("bootstrap admin token {path}: {source}")]
    TokenFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
    /// The operator issuer is invalid.
    #[error("admin.oidc_issuer: {0}")]
    Oidc(String),
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

const BOOTSTRAP_LABEL: &str = "bootstrap";

impl AdminAuth {
    /// Sets up operator authentication; in dev, creates the bootstrap token
    /// file if it is missing or no longer matches the stored hash.
    pub async fn open(
        config: &Config,
        store: &Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<AdminAuth>, AdminAuthError> {
        if config.is_dev() && config.bootstrap_token_enabled() {
            ensure_bootstrap_token(
                &config.data_dir.join("admin-token"),
                store,
                unix_ms(clock.now()),
            )
            .await?;
        }
        let mut tokens = Vec::new();
        for (hash, role, label) in store.admin_token_hashes().await? {
            // Only the bootstrap token exists today; it is only honoured in dev.
            let (Ok(hash), Some(role)) =
                (<[u8; 32]>::try_from(hash.as_slice()), Role::parse(&role))
            else {
                continue;
            };
            if label == BOOTSTRAP_LABEL && !(config.is_dev() && config.bootstrap_token_enabled()) {
                continue;
            }
            tokens.push(StoredToken { hash, role, label });
        }
        let oidc = match (&config.admin.oidc_issuer, &config.admin.oidc_audience) {
            (Some(issuer), Some(audience)) => {
                let issuer = issuer.as_str().trim_end_matches('/');
                let mut entry = IssuerConfig::new("operators", IssuerKind::Oidc, issuer, audience);
                entry.jwks_uri = config.admin.oidc_jwks_uri.clone();
                let registry = IssuerRegistry::new(config.is_dev());
                registry
                    .insert(entry)
                    .map_err(|e| AdminAuthError::Oidc(e.to_string()))?;
                let policy = JwksPolicy {
                    allow_http_loopback: config.is_dev(),
                    ..JwksPolicy::default()
                };
                let jwks = JwksCache::new(clock.clone(), policy)
                    .map_err(|e| AdminAuthError::Oidc(e.to_string()))?;
                Some(OperatorOidc {
                    validator: TokenValidator::new(registry, jwks, clock),
                    role_claim: config.admin.role_claim().to_owned(),
                })
            }
            _ => None,
        };
        Ok(Arc::new(AdminAuth { tokens, oidc }))
    }

    /// Authenticates a bearer token: `(actor, roles)`.
    async fn authenticate(&self, token: &str) -> Result<(String, Vec<Role>), Error> {
        let hash = sha256(token.as_bytes());
        // Compare against every stored hash without stopping early.
        let mut found: Option<&StoredToken> = None;
        for stored in &self.tokens {
            if bool::from(stored.hash.ct_eq(&hash)) {
                found = Some(stored);
            }
        }
        if let Some(stored) = found {
            return Ok((format!("admin-token:{}", stored.label), vec![stored.role]));
        }
        let Some(oidc) = &self.oidc else {
            return Err(Error::Unauthenticated("invalid operator token".into()));
        };
        let verified = oidc.validator.validate(token).await.map_err(|r| {
            Error::Unauthenticated(format!("operator token refused: {}", r.description()))
        })?;
        let roles = match verified.claim_at_path(&oidc.role_claim) {
            Some(serde_json::Value::String(s)) => {
                s.split_whitespace().filter_map(Role::parse).collect()
            }
            Some(serde_json::Value::Array(values)) => values
                .iter()
                .filter_map(|v| v.as_str())
                .filter_map(Role::parse)
                .collect(),
            _ => Vec::new(),
        };
        Ok((format!("operator:{}", verified.sub()), roles))
    }
}

async fn ensure_bootstrap_token(
    path: &Path,
    store: &Store,
    now_ms: i64,
) -> Result<(), AdminAuthError> {
    let file_error = |source| AdminAuthError::TokenFile {
        path: path.display().to_string(),
        source,
    };
    let stored: Vec<[u8; 32]> = store
        .admin_token_hashes()
        .await?
        .into_iter()
        .filter(|(_, _, label)| label == BOOTSTRAP_LABEL)
        .filter_map(|(hash, _, _)| hash.try_into().ok())
        .collect();
    if let Ok(existing) = std::fs::read(path).map(Zeroizing::new) {
        let hash = sha256(existing.trim_ascii());
        if stored.iter().any(|h| bool::from(h.ct_eq(&hash))) {
            return Ok(());
        }
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut secret[..]);
    let token = Zeroizing::new(format!("kf_{}", URL_SAFE_NO_PAD.encode(*secret)));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_error)?;
    }
    crate::files::write_private(path, token.as_bytes()).map_err(file_error)?;
    store
        .replace_admin_token(
            BOOTSTRAP_LABEL,
            &sha256(token.as_bytes()),
            Role::Admin.as_str(),
            now_ms,
        )
        .await?;
    tracing::info!(path = %path.display(), "wrote the bootstrap admin token (dev profile only)");
    Ok(())
}

/// Writes `data` to `path` readable by the owner only, replacing any file.
/// Generic over the router's state: all it needs is [`AdminAuth`].
impl<R, St> FromRequestParts<St> for Operator<R>
where
    R: RoleRequirement,
    St: Send + Sync,
    Arc<AdminAuth>: FromRef<St>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let token = crate::bearer::bearer(parts).map_err(|m| Error::Unauthenticated(m.into()))?;
        let (actor, roles) = Arc::<AdminAuth>::from_ref(state)
            .authenticate(token)
            .await?;
        if !roles.iter().any(|r| R::ROLES.contains(r)) {
            let needed: Vec<&str> = R::ROLES.iter().map(|r| r.as_str()).collect();
            return Err(Error::Forbidden(format!(
                "this needs the role {}",
                needed.join(" or ")
            )));
        }
        Ok(Operator {
            actor,
            _role: PhantomData,
        })
    }
}
