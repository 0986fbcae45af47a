//! The `keyferry workload fetch --config FILE` configuration (TOML).
//!
//! Parsed strictly (`deny_unknown_fields`: a misspelt key is an error, not a silent default)
//! and validated once by [`Config::from_toml_str`], so that everything after it can trust the
//! values. The production profile refuses every development shortcut here, at load time:
//! simulated evidence, KMS endpoint and static credential overrides, and plain-http
//! coordinators (loopback excepted in dev). `--export-keyset` is refused by
//! [`crate::export_keyset`] itself.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use url::Url;
use zeroize::Zeroizing;

use crate::WorkloadError;
use crate::error::Role;

/// Default refresh interval: 8 hours (jittered by ±10 %).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(8 * 3600);

/// Where the key material came from decides what is allowed (DESIGN §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Development and tests: simulated evidence, local KEKs, KMS overrides, export.
    Dev,
    /// Real deployments: every development shortcut is refused.
    Production,
}

/// The cloud the workload runs in: whose KMS unwraps `cloud-kms` splits
/// (cloud-adapters' one list of clouds).
pub use cloud_adapters::Cloud;

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `dev` or `production`.
    pub profile: Profile,
    /// The use case whose keys to fetch; `None` lets each coordinator pick its default.
    #[serde(default)]
    pub use_case: Option<String>,
    /// The workload's cloud.
    pub cloud: Cloud,
    /// The two coordinators.
    pub coordinators: Coordinators,
    /// Where the workload's cloud identity token comes from.
    pub token: TokenSourceConfig,
    /// Where SNP evidence comes from.
    pub evidence: EvidenceConfig,
    /// Dev only: KMS endpoint, static credentials and the local KEK directory.
    #[serde(default)]
    pub kms: Option<KmsOverrides>,
    /// How often the refresher fetches again (humantime, e.g. `"8h"`).
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// Bound on each HTTP call to a coordinator or metadata server.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Fetch exactly these key ids (exclusive with `max_age_seconds`).
    #[serde(default)]
    pub key_ids: Option<Vec<String>>,
    /// Fetch keys created within this many seconds (exclusive with `key_ids`).
    #[serde(default)]
    pub max_age_seconds: Option<i64>,
}

fn default_refresh() -> Duration {
    DEFAULT_REFRESH_INTERVAL
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// `[coordinators.type1]` and `[coordinators.type2]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coordinators {
    /// The Type-1 coordinator (its entry is `keyData[0]`).
    pub type1: CoordinatorConfig,
    /// The Type-2 coordinator (its entry is `keyData[1]`).
    pub type2: CoordinatorConfig,
}

impl Coordinators {
    /// The configuration of `role`.
    pub fn get(&self, role: Role) -> &CoordinatorConfig {
        match role {
            Role::Type1 => &self.type1,
            Role::Type2 => &self.type2,
        }
    }
}

/// One coordinator.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Base URL, e.g. `https://coordinator-a.example.com`.
    pub url: Url,
    /// The `aud` its trusted-issuer entry expects in the workload's cloud token; default:
    /// the URL without a trailing slash.
    #[serde(default)]
    pub audience: Option<String>,
    /// Pinned ES256 public key signing key (base64 SubjectPublicKeyInfo DER). Without it,
    /// the key published at `GET /v1/peer/keys` is used (trust on each fetch).
    #[serde(default)]
    pub signing_key: Option<String>,
}

impl CoordinatorConfig {
    /// The audience to request the cloud token for.
    pub fn audience(&self) -> String {
        self.audience
            .clone()
            .unwrap_or_else(|| self.url.as_str().trim_end_matches('/').to_owned())
    }

    /// `{url}/{path}` (the URL may carry a path prefix).
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}/{path}", self.url.as_str().trim_end_matches('/'))
    }

    /// The pinned signing key, decoded (validated at load).
    pub(crate) fn pinned_signing_key(&self) -> Option<Vec<u8>> {
        self.signing_key
            .as_deref()
            .and_then(|k| B64.decode(k.trim()).ok())
    }
}

/// `[token]`: where the workload's cloud OIDC token comes from (`source = …`).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TokenSourceConfig {
    /// A file re-read on each use, e.g. an EKS projected service account token.
    File {
        /// The token file.
        path: PathBuf,
    },
    /// The GCE/GKE/Cloud Run metadata server's identity endpoint.
    GcpMetadata {
        /// Default `http://metadata.google.internal`.
        #[serde(default = "gcp_metadata_default")]
        base_url: Url,
    },
    /// Azure IMDS managed identity token (the coordinator's audience is the `resource`).
    AzureImds {
        /// Default `http://169.254.169.254`.
        #[serde(default = "azure_imds_default")]
        base_url: Url,
        /// A user-assigned identity's client id.
        #[serde(default)]
        client_id: Option<String>,
    },
    /// AWS IAM outbound identity federation: STS `GetWebIdentityToken`, with the ambient
    /// AWS credentials of the workload.
    AwsSts {
        /// The STS region (the account's issuer is global; the call is regional).
        region: String,
        /// Overrides the STS endpoint (VPC endpoint or emulator).
        #[serde(default)]
        endpoint: Option<String>,
        /// `ES384` (default) or `RS256`.
        #[serde(default = "default_aws_alg")]
        signing_algorithm: String,
        /// Token lifetime, 60..=3600 s (default 300).
        #[serde(default)]
        duration_seconds: Option<i32>,
    },
}

fn gcp_metadata_default() -> Url {
    // A constant that parses.
    Url::parse("http://metadata.google.internal").expect("constant URL")
}

fn azure_imds_default() -> Url {
    Url::parse("http://169.254.169.254").expect("constant URL")
}

fn default_aws_alg() -> String {
    "ES384".to_owned()
}

/// `[evidence]`: where SNP evidence comes from (`source = …`).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
pub enum EvidenceConfig {
    /// `/dev/sev-guest`.
    SevGuest {
        /// PEM bundle (VCEK or VLEK, ASK or ASVK, optional ARK) used when the host's
        /// certificate table is empty (e.g. on plain EC2 or GCE).
        #[serde(default)]
        certs_file: Option<PathBuf>,
        /// The VMPL to request the report at (default 0).
        #[serde(default)]
        vmpl: u32,
    },
    /// The attestation crate's simulated attester. Dev profile only.
    Simulated {
        /// The simulated AMD CA (`SimulatedAmd::to_pem`), e.g. the broker's dev data.
        ca_file: PathBuf,
        /// Launch measurement, 96 hex digits (default zero).
        #[serde(default)]
        measurement: Option<String>,
        /// Host data, 64 hex digits (default zero).
        #[serde(default)]
        host_data: Option<String>,
        /// Guest policy bits (default 0x30000: SMT allowed, no debug).
        #[serde(default)]
        policy: Option<u64>,
    },
}

/// `[kms]`: development overrides for reaching the KMS (emulators and test doubles).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsOverrides {
    /// KMS endpoint, e.g. moto's `http://127.0.0.1:5000`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Where `local-kek://` KEK files live (default `keyferry-data/keks`).
    #[serde(default)]
    pub local_kek_dir: Option<PathBuf>,
    /// Static credentials instead of the ambient ones.
    #[serde(default)]
    pub credentials: Option<StaticKmsCredentials>,
}

/// Static KMS credentials for development (`kind = …`).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StaticKmsCredentials {
    /// An AWS access key.
    AwsStatic {
        /// `AKIA…`.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: Secret,
    },
    /// A GCP OAuth access token.
    GcpStatic {
        /// The bearer token.
        access_token: Secret,
    },
    /// No credentials (a GCP KMS test double that does not check callers).
    GcpAnonymous,
    /// An Azure Key Vault access token, and the test double's CA.
    AzureStatic {
        /// The bearer token.
        access_token: Secret,
        /// PEM CA certificate the vault double's TLS certificate chains to.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
}

/// A secret string from the config file: wiped on drop, never printed.
#[derive(Clone, Deserialize)]
#[serde(from = "String")]
pub struct Secret(Zeroizing<String>);

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(Zeroizing::new(s))
    }
}

impl Secret {
    /// The secret value.
    pub fn expose(&self) -> &Zeroizing<String> {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn invalid(msg: impl Into<String>) -> WorkloadError {
    WorkloadError::Config(msg.into())
}

/// Decodes `digits` hex digits into N bytes.
pub(crate) fn hex_field<const N: usize>(
    field: &str,
    value: Option<&str>,
) -> Result<[u8; N], WorkloadError> {
    let Some(text) = value else {
        return Ok([0u8; N]);
    };
    let bytes =
        hex::decode(text.trim()).map_err(|e| invalid(format!("evidence.{field}: not hex: {e}")))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        invalid(format!(
            "evidence.{field}: {} bytes, expected {N} ({} hex digits)",
            bytes.len(),
            2 * N
        ))
    })
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, WorkloadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml_str(&text)
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, WorkloadError> {
        let config: Config = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// True with the dev profile.
    pub fn is_dev(&self) -> bool {
        self.profile == Profile::Dev
    }

    /// The checks `from_toml_str` runs; call it again after editing a `Config` in code.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let dev = self.is_dev();
        for role in [Role::Type1, Role::Type2] {
            let c = self.coordinators.get(role);
            let name = match role {
                Role::Type1 => "coordinators.type1",
                Role::Type2 => "coordinators.type2",
            };
            match c.url.scheme() {
                "https" => {}
                "http" if dev && is_loopback(&c.url) => {}
                "http" => {
                    return Err(invalid(format!(
                        "{name}.url: plain http is only allowed for loopback hosts in the dev profile"
                    )));
                }
                other => return Err(invalid(format!("{name}.url: unsupported scheme `{other}`"))),
            }
            if let Some(key) = &c.signing_key {
                let der = B64
                    .decode(key.trim())
                    .map_err(|e| invalid(format!("{name}.signing_key: not base64: {e}")))?;
                if der.is_empty() {
                    return Err(invalid(format!("{name}.signing_key: empty")));
                }
            }
        }
        if self.coordinators.type1.url == self.coordinators.type2.url {
            return Err(invalid(
                "coordinators.type1.url and coordinators.type2.url are the same: split trust needs two coordinators",
            ));
        }
        if let EvidenceConfig::Simulated {
            measurement,
            host_data,
            ..
        } = &self.evidence
        {
            if !dev {
                return Err(WorkloadError::DevOnly("evidence.source = \"simulated\""));
            }
            hex_field::<48>("measurement", measurement.as_deref())?;
            hex_field::<32>("host_data", host_data.as_deref())?;
        }
        if let Some(kms) = &self.kms {
            if !dev {
                return Err(WorkloadError::DevOnly(
                    "[kms] (endpoint, static credentials, local KEK directory)",
                ));
            }
            let fits = matches!(
                (&kms.credentials, self.cloud),
                (None, _)
                    | (Some(StaticKmsCredentials::AwsStatic { .. }), Cloud::Aws)
                    | (
                        Some(
                            StaticKmsCredentials::GcpStatic { .. }
                                | StaticKmsCredentials::GcpAnonymous
                        ),
                        Cloud::Gcp,
                    )
                    | (Some(StaticKmsCredentials::AzureStatic { .. }), Cloud::Azure)
            );
            if !fits {
                return Err(invalid(format!(
                    "kms.credentials: kind does not fit cloud = \"{}\"",
                    self.cloud.as_str()
                )));
            }
        }
        if let TokenSourceConfig::AwsSts {
            signing_algorithm,
            duration_seconds,
            ..
        } = &self.token
        {
            if !matches!(signing_algorithm.as_str(), "ES384" | "RS256") {
                return Err(invalid("token.signing_algorithm: ES384 or RS256"));
            }
            if let Some(d) = duration_seconds
                && !(60..=3600).contains(d)
            {
                return Err(invalid("token.duration_seconds: 60 to 3600"));
            }
        }
        if self.key_ids.is_some() && self.max_age_seconds.is_some() {
            return Err(invalid("key_ids and max_age_seconds are exclusive"));
        }
        if let Some(ids) = &self.key_ids
            && ids.is_empty()
        {
            return Err(invalid("key_ids: empty (omit it to fetch the default set)"));
        }
        if let Some(age) = self.max_age_seconds
            && age <= 0
        {
            return Err(invalid("max_age_seconds: must be positive"));
        }
        if self.refresh_interval < Duration::from_secs(60) {
            return Err(invalid("refresh_interval: at least 1 minute"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout: must be positive"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
profile = "dev"
use_case = "aggregation-service"
cloud = "gcp"

[coordinators.type1]
url = "http://127.0.0.1:8080"

[coordinators.type2]
url = "http://127.0.0.1:8081"

[token]
source = "file"
path = "/tmp/token"
"#;

    const SEV_GUEST: &str = "\n[evidence]\nsource = \"sev-guest\"\n";
    const SIMULATED: &str = "\n[evidence]\nsource = \"simulated\"\nca_file = \"ca.pem\"\n";

    fn production(text: &str) -> String {
        text.replace("profile = \"dev\"", "profile = \"production\"")
            .replace("http://127.0.0.1:8080", "https://a.example.com")
            .replace("http://127.0.0.1:8081", "https://b.example.com")
    }

    #[test]
    fn the_example_config_loads() {
        let config =
            Config::from_toml_str(include_str!("../workload.example.toml")).expect("valid");
        assert_eq!(config.profile, Profile::Production);
        assert_eq!(config.refresh_interval, DEFAULT_REFRESH_INTERVAL);
    }

    #[test]
    fn a_dev_config_with_simulated_evidence_loads() {
        let config = Config::from_toml_str(&format!("{BASE}{SIMULATED}")).expect("valid");
        assert!(config.is_dev());
        assert_eq!(config.refresh_interval, DEFAULT_REFRESH_INTERVAL);
        assert_eq!(
            config.coordinators.type1.audience(),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn production_refuses_simulated_evidence() {
        let err =
            Config::from_toml_str(&production(&format!("{BASE}{SIMULATED}"))).expect_err("refused");
        assert!(matches!(err, WorkloadError::DevOnly(_)), "{err}");
    }

    #[test]
    fn production_with_sev_guest_loads() {
        Config::from_toml_str(&production(&format!("{BASE}{SEV_GUEST}"))).expect("valid");
    }

    #[test]
    fn production_refuses_static_kms_credentials() {
        let kms = "\n[kms.credentials]\nkind = \"gcp-static\"\naccess_token = \"ya29.secret\"\n";
        let text = production(&format!("{BASE}{SEV_GUEST}{kms}"));
        let err = Config::from_toml_str(&text).expect_err("refused");
        assert!(matches!(err, WorkloadError::DevOnly(_)), "{err}");
        // And the secret never shows in Debug, even in dev.
        let dev = Config::from_toml_str(&format!("{BASE}{SEV_GUEST}{kms}")).expect("dev allows it");
        assert!(!format!("{dev:?}").contains("ya29.secret"));
    }

    #[test]
    fn production_refuses_a_kms_endpoint_override() {
        let kms = "\n[kms]\nendpoint = \"http://127.0.0.1:5000\"\n";
        let err = Config::from_toml_str(&production(&format!("{BASE}{SEV_GUEST}{kms}")))
            .expect_err("refused");
        assert!(matches!(err, WorkloadError::DevOnly(_)), "{err}");
    }

    #[test]
    fn production_refuses_export() {
        let keys = crate::KeySet::empty(std::sync::Arc::new(crate::SystemClock));
        let dir = tempfile::tempdir().expect("tempdir");
        let err =
            crate::export_keyset(&keys, dir.path(), Profile::Production).expect_err("refused");
        assert!(matches!(err, WorkloadError::DevOnly(_)), "{err}");
    }

    #[test]
    fn production_refuses_plain_http_coordinators() {
        let text =
            format!("{BASE}{SEV_GUEST}").replace("profile = \"dev\"", "profile = \"production\"");
        let err = Config::from_toml_str(&text).expect_err("refused");
        assert!(err.to_string().contains("plain http"), "{err}");
    }

    #[test]
    fn static_credentials_of_another_cloud_are_refused() {
        let kms = "\n[kms.credentials]\nkind = \"aws-static\"\naccess_key_id = \"AKID\"\nsecret_access_key = \"s\"\n";
        let err = Config::from_toml_str(&format!("{BASE}{SEV_GUEST}{kms}")).expect_err("refused");
        assert!(err.to_string().contains("does not fit"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            Config::from_toml_str(&format!("{BASE}{SEV_GUEST}\nrefresh_intervall = \"1h\"\n"))
                .expect_err("refused");
        assert!(err.to_string().contains("refresh_intervall"), "{err}");
        let err =
            Config::from_toml_str(&format!("{BASE}{SEV_GUEST}vmpll = 1\n")).expect_err("refused");
        assert!(err.to_string().contains("vmpll"), "{err}");
    }

    #[test]
    fn the_same_coordinator_twice_is_refused() {
        let text = format!("{BASE}{SEV_GUEST}").replace("8081", "8080");
        assert!(Config::from_toml_str(&text).is_err());
    }

    #[test]
    fn key_ids_and_max_age_are_exclusive() {
        let text = BASE.replace(
            "cloud = \"gcp\"",
            "cloud = \"gcp\"\nkey_ids = [\"a\"]\nmax_age_seconds = 10",
        );
        assert!(Config::from_toml_str(&format!("{text}{SEV_GUEST}")).is_err());
    }

    #[test]
    fn a_bad_simulated_measurement_is_refused() {
        let sim = format!("{SIMULATED}measurement = \"abcd\"\n");
        let err = Config::from_toml_str(&format!("{BASE}{sim}")).expect_err("refused");
        assert!(err.to_string().contains("measurement"), "{err}");
    }
}
