//! Configuration: `keyferry.toml`, then `KEYFERRY_<SECTION>__<KEY>` environment
//! overrides, then command-line flags; unknown keys are refused at every layer.
//!
//! Loading (`load`) only parses; [`Config::check`] then applies the rules that
//! span several keys, above all the production profile's refusal of every
//! dev-only convenience. The two are separate so `config check` can print all
//! problems at once instead of stopping at the first.

mod check;
mod load;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cloud_adapters::Cloud;
use serde::{Deserialize, Serialize};
use url::Url;

pub use check::ConfigProblem;
pub use load::{ConfigError, Overrides, from_toml, load};

/// The whole configuration of one coordinator.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `dev` allows local KEKs, simulated attestation roots, http loopback
    /// issuers and the bootstrap token; `production` refuses each at start.
    /// A config file must say which: there is no silent default.
    pub profile: Profile,
    /// Where the default SQLite file and local KEKs live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// HTTP serving.
    #[serde(default)]
    pub server: ServerConfig,
    /// The database.
    #[serde(default)]
    pub storage: StorageConfig,
    /// This coordinator's identity and its peer.
    #[serde(default)]
    pub coordinator: CoordinatorConfig,
    /// Operator authentication.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Trusted workload identity issuers.
    #[serde(default)]
    pub issuers: Vec<IssuerEntry>,
    /// Token exchange.
    #[serde(default)]
    pub federation: FederationConfig,
    /// The key lifecycle's timing.
    #[serde(default)]
    pub keys: KeysConfig,
    /// Use cases: one key set each.
    #[serde(default)]
    pub use_cases: Vec<UseCaseConfig>,
    /// Workload clouds whose KEKs wrap every split.
    #[serde(default)]
    pub clouds: CloudsConfig,
    /// Attestation trust anchors.
    #[serde(default)]
    pub attestation: AttestationConfig,
    /// The first governance members and threshold (DESIGN §7.3).
    #[serde(default)]
    pub governance: GovernanceConfig,
    /// The audit log's witnessing of the peer (DESIGN §7.2).
    #[serde(default)]
    pub audit: AuditConfig,
}

/// `[governance]`: read once, when the database has no members yet; after
/// that, membership and threshold change only through approved proposals.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// Approvals needed to apply a proposal (M).
    pub threshold: Option<u32>,
    /// The founding members.
    pub members: Vec<GovMemberConfig>,
}

/// `[[governance.members]]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GovMemberConfig {
    /// Unique name.
    pub name: String,
    /// Ed25519 public key: base64 of the 32 raw bytes, or a PEM
    /// SubjectPublicKeyInfo.
    pub public_key: String,
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32
/// key bytes follow it.
pub const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Parses a member's Ed25519 public key: base64 of the 32 raw bytes, or a
/// PEM `PUBLIC KEY` (as `openssl pkey -pubout` writes it). Returns the
/// canonical form, base64 of the raw bytes.
pub fn parse_member_key(text: &str) -> Result<String, String> {
    let text = text.trim();
    let raw = if text.starts_with("-----BEGIN") {
        let pem = pem::parse(text).map_err(|e| format!("not a PEM public key: {e}"))?;
        if pem.tag() != "PUBLIC KEY" {
            return Err(format!("expected a PUBLIC KEY PEM, got {}", pem.tag()));
        }
        let der = pem.contents();
        if der.len() != 44 || der[..12] != ED25519_SPKI_PREFIX {
            return Err("not an Ed25519 public key".into());
        }
        der[12..].to_vec()
    } else {
        B64.decode(text)
            .map_err(|_| "not base64 (or a PEM public key)".to_owned())?
    };
    if raw.len() != 32 {
        return Err(format!(
            "an Ed25519 public key is 32 bytes, not {}",
            raw.len()
        ));
    }
    Ok(B64.encode(raw))
}

/// Deployment profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Local development and tests.
    Dev,
    /// Anything that holds real keys.
    Production,
}

/// `[server]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The externally visible base URL: the issuer URL and the base of every
    /// link. Defaults to `http://<listen>`.
    pub public_url: Option<Url>,
    /// PEM certificate chain; with `tls_key`, the broker serves TLS itself.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub body_limit: usize,
    /// A request still running after this long is answered 408.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// A connection that has not sent a whole request head this long after
    /// it opened, or after its last response, is closed (slow clients and
    /// idle keep-alive connections alike).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Connections served at once; more are closed on arrival.
    pub max_connections: usize,
    /// How long `/readyz` reuses a good KEK probe (a KMS call each); a
    /// failed one is retried after at most 5 s.
    #[serde(with = "humantime_serde")]
    pub readiness_kek_interval: Duration,
    /// Who may read `GET /metrics`.
    pub metrics: MetricsAccess,
    /// With `metrics = "listener"`: the address of the listener that serves
    /// `/metrics` alone (plain HTTP, meant for an internal network).
    pub metrics_listen: Option<SocketAddr>,
}

/// Who may read `GET /metrics` (`server.metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Anyone who reaches the main listener, like most Prometheus targets.
    #[default]
    Open,
    /// A bearer token with the operator role `auditor` or `admin`.
    Operator,
    /// Only the separate `server.metrics_listen` listener; the main one
    /// answers 404.
    Listener,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            tls_cert: None,
            tls_key: None,
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(20),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            readiness_kek_interval: Duration::from_secs(30),
            metrics: MetricsAccess::Open,
            metrics_listen: None,
        }
    }
}

/// `[storage]`
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://PATH` or `postgres://user@host:5432/db`; defaults to
    /// `sqlite://<data_dir>/keyferry.db`.
    pub url: Option<String>,
    /// Connection pool size (default 10).
    pub max_connections: Option<u32>,
}

/// The role a coordinator plays in the split-trust pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Generates keys, keeps split A, hands split B to its peer.
    Type1,
    /// Receives and keeps split B.
    Type2,
}

/// `[coordinator]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoordinatorConfig {
    /// Short name, used in `sub=coordinator:<name>`.
    pub name: String,
    /// `type1` or `type2`.
    pub role: Role,
    /// The peer coordinator's base URL, or `embedded` (dev only) for a
    /// Type-2 peer inside this process.
    pub peer_url: Option<String>,
    /// The issuer URL whose tokens authenticate the peer.
    pub peer_issuer: Option<Url>,
    /// The KEK that wraps everything this coordinator stores. A cloud KEK is
    /// reached with the ambient credentials of the environment the broker
    /// runs in (task role, service account, managed identity), not by
    /// federation: it protects the issuer keys federation would need.
    pub storage_kek: String,
    /// Overrides the storage KEK's KMS endpoint (emulators; dev profile).
    pub storage_kek_endpoint: Option<Url>,
    /// How long a Type-1 waits for its peer's answer (connect included)
    /// before it counts the handover as failed and retries later.
    #[serde(with = "humantime_serde")]
    pub peer_timeout: Duration,
    /// Type-2: how often it makes a new handover key (the key the Type-1
    /// seals split B to). Keys are numbered by period of this length.
    #[serde(with = "humantime_serde")]
    pub handover_key_rotation: Duration,
    /// Type-2: how long after its successor takes over a handover key
    /// still opens handovers. At least `keys.handover_timeout`, so a split
    /// sealed just before a rotation can still be handed over.
    #[serde(with = "humantime_serde")]
    pub handover_key_overlap: Duration,
    /// Type-1: what attests its key generator to the Type-2 at each
    /// handover. Unset means `sev-guest` in production, `simulated` in dev.
    pub key_generator: Option<KeyGeneratorEvidence>,
    /// Type-1 with `key_generator = "simulated"`: the simulated AMD CA (PEM,
    /// `SimulatedAmd::to_pem`). Unset: `<data_dir>/key-generator/simulated-amd.pem`,
    /// made at first start with its root beside it (`simulated-ark.pem`).
    pub key_generator_ca: Option<PathBuf>,
    /// Type-1 with `key_generator = "sev-guest"`: a PEM bundle (VCEK, ASK,
    /// ARK) for when the host supplies no certificates.
    pub key_generator_certs: Option<PathBuf>,
    /// Type-2: refuse a handover whose key generator is not attested and
    /// admitted by the key-generation policy. `false` is for the dev profile
    /// only.
    pub attested_key_generation: bool,
    /// Type-2: the key-generation policy (a release policy document) until
    /// governance puts one in force. Unset in dev: the simulated key
    /// generator's measurement only; unset in production: none, and every
    /// handover is refused until governance applies one.
    pub key_generation_policy: Option<PathBuf>,
}

/// `coordinator.key_generator`: how a Type-1's key generator attests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyGeneratorEvidence {
    /// An SNP report from `/dev/sev-guest`: the production setting.
    SevGuest,
    /// A report signed by a simulated AMD CA (dev only).
    Simulated,
    /// No evidence (dev only, with a Type-2 that does not require it).
    None,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            name: "a".into(),
            role: Role::Type1,
            peer_url: None,
            peer_issuer: None,
            storage_kek: "local-kek://storage".into(),
            storage_kek_endpoint: None,
            peer_timeout: Duration::from_secs(10),
            handover_key_rotation: Duration::from_secs(30 * 86_400),
            handover_key_overlap: Duration::from_secs(86_400),
            key_generator: None,
            key_generator_ca: None,
            key_generator_certs: None,
            attested_key_generation: true,
            key_generation_policy: None,
        }
    }
}

/// `[audit]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// How often this coordinator fetches its peer's tree head, checks it
    /// extends the last one it saw, and co-signs it.
    #[serde(with = "humantime_serde")]
    pub witness_interval: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            witness_interval: Duration::from_secs(60),
        }
    }
}

/// `[admin]`: how operators authenticate (DESIGN §7.4).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Create a bootstrap admin token at first start (dev profile only).
    /// Unset means: yes in dev, no in production.
    pub bootstrap_token: Option<bool>,
    /// The operator OIDC issuer whose tokens carry roles (production).
    pub oidc_issuer: Option<Url>,
    /// The `aud` operator tokens must carry.
    pub oidc_audience: Option<String>,
    /// Explicit JWKS URL of the operator issuer (default: discovery).
    pub oidc_jwks_uri: Option<Url>,
    /// The claim holding the roles (`admin`, `auditor`, `member`), a string
    /// or an array. Default `keyferry_roles`.
    pub role_claim: Option<String>,
}

impl AdminConfig {
    /// The role claim in effect.
    pub fn role_claim(&self) -> &str {
        self.role_claim.as_deref().unwrap_or("keyferry_roles")
    }
}

/// `[federation]`: the token exchange of DESIGN §3.1.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// Lifetime of issued credentials.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// Audiences a caller may request; the public URL is always allowed
    /// and is the default.
    pub audiences: Vec<String>,
    /// Exchanges allowed per workload identity (issuer and subject) per
    /// minute; more get 429 with `Retry-After`.
    pub rate_limit_per_minute: u32,
    /// Refused exchanges audited one by one per minute; the rest are
    /// counted per source into one entry each at the minute's end.
    pub audited_refusals_per_minute: u32,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            token_ttl: Duration::from_secs(3600),
            audiences: Vec::new(),
            rate_limit_per_minute: 60,
            audited_refusals_per_minute: 100,
        }
    }
}

/// `[[issuers]]`: a trusted workload identity issuer (DESIGN §3.3).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerEntry {
    /// A short name for logs and metrics.
    pub name: String,
    /// `aws`, `gcp`, `azure` or `oidc`.
    pub kind: IssuerKind,
    /// The exact `iss` value tokens carry.
    pub issuer: Url,
    /// The `aud` value tokens must carry.
    pub audience: String,
    /// Accepted signature algorithms (default RS256, ES256).
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Longest accepted `exp - iat` (default 24 h).
    #[serde(default, with = "humantime_serde")]
    pub max_token_lifetime: Option<Duration>,
    /// Skip discovery and fetch keys here.
    #[serde(default)]
    pub jwks_uri: Option<Url>,
    /// Accept this issuer's tokens directly as the Bearer of the key
    /// endpoints, exchanged there as `POST /v1/token` would (for stock
    /// Privacy Sandbox GCP clients, which have no exchange step). Off by
    /// default: see docs/identity.md for the trade-off.
    #[serde(default)]
    pub accept_as_bearer: bool,
}

impl IssuerEntry {
    /// The `idp` form of this entry, or what is wrong with it.
    pub fn to_idp(&self) -> Result<idp::IssuerConfig, String> {
        let kind = match self.kind {
            IssuerKind::Aws => idp::IssuerKind::Aws,
            IssuerKind::Gcp => idp::IssuerKind::Gcp,
            IssuerKind::Azure => idp::IssuerKind::Azure,
            IssuerKind::Oidc => idp::IssuerKind::Oidc,
        };
        let issuer = self.issuer.as_str();
        // Url adds a trailing slash to a bare origin; `iss` comparison is exact,
        // so keep what the operator wrote for host-only issuers.
        let issuer = if self.issuer.path() == "/" && !issuer.ends_with("//") {
            issuer.trim_end_matches('/')
        } else {
            issuer
        };
        let mut config = idp::IssuerConfig::new(&self.name, kind, issuer, &self.audience);
        if let Some(algorithms) = &self.algorithms {
            config.algorithms = algorithms
                .iter()
                .map(|a| a.parse().map_err(|_| format!("unknown algorithm `{a}`")))
                .collect::<Result<_, _>>()?;
        }
        if let Some(lifetime) = self.max_token_lifetime {
            config.max_token_lifetime = lifetime;
        }
        config.jwks_uri = self.jwks_uri.clone();
        Ok(config)
    }
}

/// The cloud (or generic OIDC) an issuer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerKind {
    /// AWS IAM outbound federation or EKS.
    Aws,
    /// Google accounts or Confidential Space.
    Gcp,
    /// Microsoft Entra ID.
    Azure,
    /// Any OIDC issuer.
    Oidc,
}

/// `[keys]`: the key lifecycle of DESIGN §4.2.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Keys valid at once per use case.
    pub active_keys: u32,
    /// How long a key is published.
    #[serde(with = "humantime_serde")]
    pub validity: Duration,
    /// How long its splits are served (from creation).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// A key is replaced this long before it expires.
    #[serde(with = "humantime_serde")]
    pub refresh_window: Duration,
    /// How often the generation check runs.
    #[serde(with = "humantime_serde")]
    pub generation_interval: Duration,
    /// A pending key whose handover has not succeeded by then is dropped.
    #[serde(with = "humantime_serde")]
    pub handover_timeout: Duration,
}

impl Default for KeysConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        KeysConfig {
            active_keys: 5,
            validity: Duration::from_secs(7 * DAY),
            ttl: Duration::from_secs(365 * DAY),
            refresh_window: Duration::from_secs(DAY),
            generation_interval: Duration::from_secs(6 * 3600),
            handover_timeout: Duration::from_secs(3600),
        }
    }
}

/// `[[use_cases]]`: one key set and its release rules.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UseCaseConfig {
    /// Name, as in `/.well-known/<name>/v1/public-keys`.
    pub name: String,
    /// The HPKE AEAD of this use case's keys.
    #[serde(default)]
    pub aead: keys::Aead,
    /// `uuid` or `sequence` key ids.
    #[serde(default)]
    pub key_id_format: keys::KeyIdFormat,
    /// Whether splits are released only against SNP evidence (DESIGN §5.3).
    #[serde(default = "yes")]
    pub require_attestation: bool,
    /// The release policy document (DESIGN §6).
    #[serde(default)]
    pub release_policy: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

impl UseCaseConfig {
    /// The dev default: the Aggregation Service, attestation required.
    pub fn aggregation_service() -> Self {
        UseCaseConfig {
            name: "aggregation-service".into(),
            aead: keys::Aead::default(),
            key_id_format: keys::KeyIdFormat::default(),
            require_attestation: true,
            release_policy: None,
        }
    }
}

/// `[clouds]`: the workload clouds this coordinator serves.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudsConfig {
    /// AWS.
    pub aws: Option<CloudConfig>,
    /// GCP.
    pub gcp: Option<CloudConfig>,
    /// Azure.
    pub azure: Option<CloudConfig>,
}

impl CloudsConfig {
    /// The enabled clouds.
    pub fn enabled(&self) -> Vec<(Cloud, &CloudConfig)> {
        [
            (Cloud::Aws, &self.aws),
            (Cloud::Gcp, &self.gcp),
            (Cloud::Azure, &self.azure),
        ]
        .into_iter()
        .filter_map(|(name, c)| c.as_ref().map(|c| (name, c)))
        .collect()
    }
}

/// `[clouds.<name>]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    /// The KEK in that cloud that wraps splits for its workloads.
    pub kek: String,
    /// KMS endpoint override (emulators and test doubles only).
    #[serde(default)]
    pub endpoint: Option<Url>,
    /// What the attested release seals: the KMS ciphertext (`cloud-kms`)
    /// or the plaintext split (`broker`).
    #[serde(default)]
    pub unwrap: UnwrapMode,
    /// AWS: the role the broker assumes with its own token
    /// (`AssumeRoleWithWebIdentity`).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// AWS: STS endpoint override (emulators only).
    #[serde(default)]
    pub sts_endpoint: Option<String>,
    /// GCP: the workload identity pool provider
    /// (`//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/Q`).
    #[serde(default)]
    pub workload_identity_provider: Option<String>,
    /// GCP: the service account to impersonate.
    #[serde(default)]
    pub service_account: Option<String>,
    /// GCP: STS and IAM Credentials base URLs (test doubles only).
    #[serde(default)]
    pub sts_url: Option<String>,
    /// GCP: see `sts_url`.
    #[serde(default)]
    pub iam_credentials_url: Option<String>,
    /// Azure: the tenant of the app registration or managed identity.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Azure: its client id (the federated identity credential's subject).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Azure: Entra authority host override (test doubles only).
    #[serde(default)]
    pub authority_host: Option<String>,
    /// Azure: a PEM CA to trust for the vault and authority (test doubles
    /// serve TLS with their own CA; dev profile only).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Dev only: static credentials instead of federation — AWS
    /// `access_key_id`/`secret_access_key`, or a GCP/Azure `access_token`.
    #[serde(default)]
    pub static_credentials: Option<StaticCredentials>,
}

impl CloudConfig {
    /// A cloud section with only its KEK set (federation settings empty).
    pub fn with_kek(kek: impl Into<String>) -> Self {
        CloudConfig {
            kek: kek.into(),
            endpoint: None,
            unwrap: UnwrapMode::default(),
            role_arn: None,
            sts_endpoint: None,
            workload_identity_provider: None,
            service_account: None,
            sts_url: None,
            iam_credentials_url: None,
            tenant_id: None,
            client_id: None,
            authority_host: None,
            ca_file: None,
            static_credentials: None,
        }
    }
}

/// Dev-only static cloud credentials (production refuses them).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticCredentials {
    /// AWS access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// AWS secret access key.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// GCP or Azure bearer token.
    #[serde(default)]
    pub access_token: Option<String>,
}

/// Where a workload's split is unwrapped (DESIGN §5.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnwrapMode {
    /// The workload decrypts with its own cloud KMS.
    #[default]
    CloudKms,
    /// The broker unwraps and seals the plaintext split to the TEE.
    Broker,
}

/// `[attestation]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttestationConfig {
    /// Extra ARK certificates to trust (dev only: simulated attesters).
    pub extra_roots: Vec<PathBuf>,
    /// Challenge nonces one workload identity may ask for per minute, per
    /// instance: each is a database write, so a credential holder must not
    /// be able to make them without bound.
    pub challenges_per_minute: u32,
}

impl Default for AttestationConfig {
    fn default() -> Self {
        AttestationConfig {
            extra_roots: Vec::new(),
            challenges_per_minute: 600,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./keyferry-data")
}

impl Config {
    /// The configuration a bare `keyferry serve` runs with.
    pub fn dev_default() -> Self {
        Config {
            profile: Profile::Dev,
            data_dir: default_data_dir(),
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            coordinator: CoordinatorConfig {
                peer_url: Some("embedded".into()),
                ..CoordinatorConfig::default()
            },
            admin: AdminConfig::default(),
            issuers: Vec::new(),
            federation: FederationConfig::default(),
            keys: KeysConfig::default(),
            use_cases: vec![UseCaseConfig::aggregation_service()],
            clouds: CloudsConfig::default(),
            attestation: AttestationConfig::default(),
            governance: GovernanceConfig::default(),
            audit: AuditConfig::default(),
        }
    }

    /// The database URL in effect.
    pub fn storage_url(&self) -> String {
        match &self.storage.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("keyferry.db").display()),
        }
    }

    /// The public base URL in effect, without a trailing slash.
    pub fn public_url(&self) -> String {
        let url = match &self.server.public_url {
            Some(url) => url.to_string(),
            None => format!("http://{}", self.server.listen),
        };
        url.trim_end_matches('/').to_owned()
    }

    /// Where local KEK files live.
    pub fn local_kek_dir(&self) -> PathBuf {
        self.data_dir.join("keks")
    }

    /// Whether the dev-only bootstrap admin token is enabled.
    pub fn bootstrap_token_enabled(&self) -> bool {
        self.admin
            .bootstrap_token
            .unwrap_or(self.profile == Profile::Dev)
    }

    /// How this Type-1's key generator attests (`coordinator.key_generator`
    /// or the profile's default).
    pub fn key_generator(&self) -> KeyGeneratorEvidence {
        self.coordinator
            .key_generator
            .unwrap_or(match self.profile {
                Profile::Dev => KeyGeneratorEvidence::Simulated,
                Profile::Production => KeyGeneratorEvidence::SevGuest,
            })
    }

    /// The simulated key generator's CA file (`coordinator.key_generator_ca`
    /// or its default in the data directory).
    pub fn key_generator_ca(&self) -> PathBuf {
        self.coordinator
            .key_generator_ca
            .clone()
            .unwrap_or_else(|| {
                self.data_dir
                    .join("key-generator")
                    .join("simulated-amd.pem")
            })
    }

    /// Whether dev-only conveniences are allowed.
    pub fn is_dev(&self) -> bool {
        self.profile == Profile::Dev
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
