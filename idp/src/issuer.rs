//! Trusted issuers: their configuration, its validation, and per-cloud subject shapes.
//!
//! An [`IssuerConfig`] is what an operator writes in `keyferry.toml` (`[[issuers]]`) or what
//! onboarding registers for one account or tenant. Validation is strict because a mistake
//! here widens who can obtain credentials: the issuer URL must have the shape its cloud uses
//! (DESIGN §3.3), HMAC and `none` can never be allowed, and http is only accepted for
//! loopback issuers in the dev profile.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// Which kind of identity provider an issuer is; selects URL and subject validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuerKind {
    /// AWS IAM outbound identity federation or an EKS service-account issuer.
    Aws,
    /// Google (`accounts.google.com`) or Confidential Space.
    Gcp,
    /// Microsoft Entra ID (v1 `sts.windows.net` or v2 `login.microsoftonline.com`).
    Azure,
    /// Any other OIDC issuer reachable over https.
    Oidc,
}

impl IssuerKind {
    /// The lowercase name used in configuration and in the credential's `cloud` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Gcp => "gcp",
            Self::Azure => "azure",
            Self::Oidc => "oidc",
        }
    }
}

impl fmt::Display for IssuerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default issuer token lifetime bound: 24 hours (DESIGN §3.1 step 5).
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// One trusted issuer.
///
/// Durations are written as whole **seconds** in configuration
/// (`max_token_lifetime = 86400`): it needs no extra parser and cannot be misread.
/// The `issuer` string is kept exactly as configured because tokens are matched against
/// it byte for byte (`https://sts.windows.net/<tenant>/` keeps its trailing slash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Operator-facing name, used in logs and metrics.
    pub name: String,
    /// Cloud or generic OIDC.
    pub kind: IssuerKind,
    /// The exact `iss` value tokens carry.
    pub issuer: String,
    /// The audience tokens must be addressed to (one of their `aud` values).
    pub audience: String,
    /// Signature algorithms accepted from this issuer.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Longest accepted `exp − iat`, in seconds in configuration.
    #[serde(default = "default_max_lifetime", with = "duration_secs")]
    pub max_token_lifetime: Duration,
    /// Explicit JWKS location; when absent the issuer's discovery document names it.
    #[serde(default)]
    pub jwks_uri: Option<Url>,
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256, Algorithm::ES256]
}

fn default_max_lifetime() -> Duration {
    DEFAULT_MAX_TOKEN_LIFETIME
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl IssuerConfig {
    /// An issuer with the default algorithms (RS256, ES256), a 24 h lifetime bound and
    /// discovery of its JWKS.
    pub fn new(
        name: impl Into<String>,
        kind: IssuerKind,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            kind,
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: default_algorithms(),
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
            jwks_uri: None,
        }
    }

    /// Checks the entry before it is trusted.
    ///
    /// `allow_http_loopback` is the dev profile's switch: it admits `http://` issuers and
    /// JWKS URIs on 127.0.0.1, `localhost` or `[::1]`, and lets a loopback issuer be
    /// registered under any kind so tests can stand in for a cloud with a local IdP.
    pub fn validate(&self, allow_http_loopback: bool) -> Result<(), IssuerConfigError> {
        if self.name.trim().is_empty() || self.name.chars().any(char::is_control) {
            return Err(IssuerConfigError::InvalidName);
        }
        if self.audience.trim().is_empty() || self.audience.chars().any(char::is_control) {
            return Err(IssuerConfigError::InvalidAudience);
        }
        let url = check_url(&self.issuer, allow_http_loopback)
            .map_err(|problem| IssuerConfigError::InvalidIssuerUrl { problem })?;
        let loopback_dev = allow_http_loopback && is_loopback(&url);
        if !loopback_dev && !issuer_has_kind_shape(self.kind, &self.issuer) {
            return Err(IssuerConfigError::IssuerShape {
                kind: self.kind,
                expected: expected_issuer_shape(self.kind),
            });
        }
        if self.algorithms.is_empty() {
            return Err(IssuerConfigError::NoAlgorithms);
        }
        for alg in &self.algorithms {
            match alg {
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                    return Err(IssuerConfigError::ForbiddenAlgorithm(*alg));
                }
                Algorithm::EdDSA => return Err(IssuerConfigError::UnsupportedAlgorithm(*alg)),
                _ => {}
            }
        }
        if self.max_token_lifetime.is_zero() {
            return Err(IssuerConfigError::ZeroLifetime);
        }
        if let Some(jwks) = &self.jwks_uri {
            check_url(jwks.as_str(), allow_http_loopback)
                .map_err(|problem| IssuerConfigError::InvalidJwksUri { problem })?;
        }
        Ok(())
    }
}

/// Why an issuer entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerConfigError {
    /// `name` is empty or holds control characters.
    #[error("issuer name must be non-empty text")]
    InvalidName,
    /// `audience` is empty or holds control characters.
    #[error("issuer audience must be non-empty text")]
    InvalidAudience,
    /// The issuer URL is not an acceptable URL.
    #[error("issuer URL: {problem}")]
    InvalidIssuerUrl {
        /// What is wrong with it.
        problem: UrlProblem,
    },
    /// The issuer URL does not have the shape its kind uses.
    #[error("issuer URL does not look like a {kind} issuer; expected {expected}")]
    IssuerShape {
        /// The configured kind.
        kind: IssuerKind,
        /// The accepted shapes.
        expected: &'static str,
    },
    /// `algorithms` is empty.
    #[error("at least one signature algorithm must be allowed")]
    NoAlgorithms,
    /// HMAC algorithms share the verification secret with the signer; they are never allowed.
    #[error("algorithm {0:?} is never allowed for a trusted issuer (HMAC)")]
    ForbiddenAlgorithm(Algorithm),
    /// The JWKS cache only holds RSA and EC keys.
    #[error("algorithm {0:?} is not supported (only RS*, PS*, ES256, ES384)")]
    UnsupportedAlgorithm(Algorithm),
    /// `max_token_lifetime` is zero.
    #[error("max_token_lifetime must be positive")]
    ZeroLifetime,
    /// The explicit `jwks_uri` is not acceptable.
    #[error("jwks_uri: {problem}")]
    InvalidJwksUri {
        /// What is wrong with it.
        problem: UrlProblem,
    },
}

/// What is wrong with an issuer or JWKS URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    /// Not parseable as an absolute URL.
    #[error("not a valid absolute URL")]
    Unparseable,
    /// Holds whitespace or control characters (would not match `iss` byte for byte).
    #[error("contains whitespace or control characters")]
    Whitespace,
    /// Uses http (or another scheme) where https is required.
    #[error("must use https (http only for loopback hosts in the dev profile)")]
    NotHttps,
    /// Carries `user:password@`.
    #[error("must not contain credentials")]
    Credentials,
    /// Carries a query or fragment, which OIDC issuers never have.
    #[error("must not contain a query or fragment")]
    QueryOrFragment,
}

/// Parses `raw` and applies the transport rules shared by issuer URLs and JWKS URIs.
pub(crate) fn check_url(raw: &str, allow_http_loopback: bool) -> Result<Url, UrlProblem> {
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlProblem::Whitespace);
    }
    let url = Url::parse(raw).map_err(|_| UrlProblem::Unparseable)?;
    if url.host().is_none() {
        return Err(UrlProblem::Unparseable);
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_http_loopback && is_loopback(&url) => {}
        _ => return Err(UrlProblem::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlProblem::Credentials);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(UrlProblem::QueryOrFragment);
    }
    Ok(url)
}

/// True for 127.0.0.0/8, `localhost` and `[::1]`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn expected_issuer_shape(kind: IssuerKind) -> &'static str {
    match kind {
        IssuerKind::Gcp => {
            "https://accounts.google.com or https://confidentialcomputing.googleapis.com"
        }
        IssuerKind::Azure => {
            "https://login.microsoftonline.com/<tenant-guid>/v2.0 or https://sts.windows.net/<tenant-guid>/"
        }
        IssuerKind::Aws => {
            "https://<id>.tokens.sts.global.api.aws or https://oidc.eks.<region>.amazonaws.com/id/<id>"
        }
        IssuerKind::Oidc => "an https URL",
    }
}

fn issuer_has_kind_shape(kind: IssuerKind, issuer: &str) -> bool {
    match kind {
        IssuerKind::Gcp => {
            issuer == "https://accounts.google.com"
                || issuer == "https://confidentialcomputing.googleapis.com"
        }
        IssuerKind::Azure => {
            if let Some(rest) = issuer.strip_prefix("https://login.microsoftonline.com/") {
                rest.strip_suffix("/v2.0").is_some_and(is_guid)
            } else if let Some(rest) = issuer.strip_prefix("https://sts.windows.net/") {
                rest.strip_suffix('/').is_some_and(is_guid)
            } else {
                false
            }
        }
        IssuerKind::Aws => {
            if let Some(rest) = issuer.strip_prefix("https://oidc.eks.") {
                match rest.split_once(".amazonaws.com/id/") {
                    Some((region, id)) => {
                        is_label(region, |c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
                        }) && is_label(id, |c| c.is_ascii_alphanumeric())
                    }
                    None => false,
                }
            } else if let Some(rest) = issuer.strip_prefix("https://") {
                rest.strip_suffix(".tokens.sts.global.api.aws")
                    .is_some_and(|id| {
                        is_label(id, |c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
                        })
                    })
            } else {
                false
            }
        }
        IssuerKind::Oidc => issuer.starts_with("https://"),
    }
}

fn is_label(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(allowed)
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits of either case.
pub(crate) fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8usize, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Longest accepted generic OIDC subject, in bytes.
pub const MAX_OIDC_SUBJECT_LEN: usize = 255;

/// Upper bound for every subject before its cloud-specific check (an IAM role path may be
/// 512 bytes).
const MAX_CLOUD_SUBJECT_LEN: usize = 600;

/// Checks that `subject` has the shape `kind`'s tokens put in `sub`, so an onboarding typo
/// is caught when the mapping is created rather than silently never matching.
///
/// - AWS: `arn:aws:iam::<12 digits>:role/<path/name>`,
///   `arn:aws:sts::<12 digits>:assumed-role/<role>/<session>` (also the `aws-cn` and
///   `aws-us-gov` partitions), or EKS `system:serviceaccount:<namespace>:<name>`.
/// - GCP: the 21-digit service-account unique id, or
///   `<name>@<project>.iam.gserviceaccount.com`.
/// - Azure: a GUID (object id).
/// - OIDC: any non-empty text of at most 255 bytes without control characters.
pub fn validate_subject(kind: IssuerKind, subject: &str) -> Result<(), SubjectError> {
    if subject.is_empty() {
        return Err(SubjectError::Empty);
    }
    if subject.len() > MAX_CLOUD_SUBJECT_LEN {
        return Err(SubjectError::TooLong {
            max: MAX_CLOUD_SUBJECT_LEN,
        });
    }
    if subject.chars().any(char::is_control) {
        return Err(SubjectError::ControlCharacter);
    }
    match kind {
        IssuerKind::Aws => validate_aws_subject(subject),
        IssuerKind::Gcp => validate_gcp_subject(subject),
        IssuerKind::Azure => {
            if is_guid(subject) {
                Ok(())
            } else {
                Err(SubjectError::NotAzureObjectId)
            }
        }
        IssuerKind::Oidc => {
            if subject.len() > MAX_OIDC_SUBJECT_LEN {
                Err(SubjectError::TooLong {
                    max: MAX_OIDC_SUBJECT_LEN,
                })
            } else {
                Ok(())
            }
        }
    }
}

/// Why a subject does not fit its cloud.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// The subject is empty.
    #[error("subject is empty")]
    Empty,
    /// The subject is longer than allowed.
    #[error("subject is longer than {max} bytes")]
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The subject holds control characters.
    #[error("subject contains control characters")]
    ControlCharacter,
    /// Not an ARN or an EKS service account at all.
    #[error(
        "aws subject must be a role ARN (arn:aws:iam::<account>:role/<name>) or an EKS service account (system:serviceaccount:<namespace>:<name>)"
    )]
    NotAwsPrincipal,
    /// The ARN's partition is not an AWS partition.
    #[error("aws ARN partition must be aws, aws-cn or aws-us-gov")]
    AwsPartition,
    /// The ARN's account id is not 12 digits.
    #[error("aws account id must be 12 digits")]
    AwsAccountId,
    /// The ARN names something other than a role or an assumed role.
    #[error(
        "aws ARN must name an IAM role (iam::<account>:role/...) or an assumed role (sts::<account>:assumed-role/...)"
    )]
    AwsResource,
    /// The role path, role name or session name has invalid characters or length.
    #[error("aws role or session name is empty, too long or has characters IAM does not allow")]
    AwsRoleName,
    /// The EKS namespace is not a DNS label.
    #[error("EKS namespace must be a DNS label (lowercase letters, digits, '-', at most 63)")]
    EksNamespace,
    /// The EKS service-account name is not a DNS subdomain.
    #[error(
        "EKS service account name must be a DNS subdomain (lowercase letters, digits, '-', '.', at most 253)"
    )]
    EksServiceAccount,
    /// Neither a 21-digit unique id nor a service-account email.
    #[error(
        "gcp subject must be a 21-digit service account unique id or <name>@<project>.iam.gserviceaccount.com"
    )]
    NotGcpServiceAccount,
    /// Not a GUID.
    #[error("azure subject must be an object id GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
    NotAzureObjectId,
}

fn iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

fn validate_aws_subject(subject: &str) -> Result<(), SubjectError> {
    if let Some(rest) = subject.strip_prefix("system:serviceaccount:") {
        let (ns, name) = rest.split_once(':').ok_or(SubjectError::NotAwsPrincipal)?;
        if !is_dns_name(ns, 63, false) {
            return Err(SubjectError::EksNamespace);
        }
        if !is_dns_name(name, 253, true) {
            return Err(SubjectError::EksServiceAccount);
        }
        return Ok(());
    }
    let Some(rest) = subject.strip_prefix("arn:") else {
        return Err(SubjectError::NotAwsPrincipal);
    };
    let mut parts = rest.splitn(5, ':');
    let (Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(SubjectError::NotAwsPrincipal);
    };
    if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Err(SubjectError::AwsPartition);
    }
    if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
        return Err(SubjectError::AwsAccountId);
    }
    if !region.is_empty() {
        return Err(SubjectError::AwsResource);
    }
    match service {
        "iam" => {
            let path = resource
                .strip_prefix("role/")
                .ok_or(SubjectError::AwsResource)?;
            let segments: Vec<&str> = path.split('/').collect();
            let name_ok = segments
                .last()
                .is_some_and(|name| !name.is_empty() && name.len() <= 64);
            if !name_ok
                || path.len() > 512
                || segments
                    .iter()
                    .any(|s| s.is_empty() || !s.chars().all(iam_name_char))
            {
                return Err(SubjectError::AwsRoleName);
            }
            Ok(())
        }
        "sts" => {
            let rest = resource
                .strip_prefix("assumed-role/")
                .ok_or(SubjectError::AwsResource)?;
            let (role, session) = rest.split_once('/').ok_or(SubjectError::AwsRoleName)?;
            let role_ok = !role.is_empty() && role.len() <= 64 && role.chars().all(iam_name_char);
            let session_ok =
                (2..=64).contains(&session.len()) && session.chars().all(iam_name_char);
            if role_ok && session_ok {
                Ok(())
            } else {
                Err(SubjectError::AwsRoleName)
            }
        }
        _ => Err(SubjectError::AwsResource),
    }
}

/// RFC 1123 label (or subdomain when `dots`): lowercase alphanumerics and '-', starting and
/// ending with an alphanumeric.
fn is_dns_name(s: &str, max: usize, dots: bool) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !s.is_empty()
        && s.len() <= max
        && edge_ok(s.chars().next())
        && edge_ok(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.'))
}

fn validate_gcp_subject(subject: &str) -> Result<(), SubjectError> {
    if subject.len() == 21 && subject.chars().all(|c| c.is_ascii_digit()) {
        return Ok(());
    }
    let Some((local, domain)) = subject.split_once('@') else {
        return Err(SubjectError::NotGcpServiceAccount);
    };
    let Some(project) = domain.strip_suffix(".iam.gserviceaccount.com") else {
        return Err(SubjectError::NotGcpServiceAccount);
    };
    let local_ok = (6..=30).contains(&local.len())
        && local.starts_with(|c: char| c.is_ascii_lowercase())
        && local
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let project_ok = (6..=30).contains(&project.len())
        && project
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if local_ok && project_ok {
        Ok(())
    } else {
        Err(SubjectError::NotGcpServiceAccount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn config(kind: IssuerKind, issuer: &str) -> IssuerConfig {
        IssuerConfig::new("test", kind, issuer, "https://coordinator-a.example.com")
    }

    #[test]
    fn cloud_issuer_shapes_are_accepted_in_production() {
        let good = [
            (IssuerKind::Gcp, "https://accounts.google.com".to_owned()),
            (
                IssuerKind::Gcp,
                "https://confidentialcomputing.googleapis.com".to_owned(),
            ),
            (
                IssuerKind::Azure,
                format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            ),
            (
                IssuerKind::Azure,
                format!("https://sts.windows.net/{TENANT}/"),
            ),
            (
                IssuerKind::Aws,
                "https://a1b2c3d4-5678-90ab-cdef-111122223333.tokens.sts.global.api.aws".to_owned(),
            ),
            (
                IssuerKind::Aws,
                "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
                    .to_owned(),
            ),
            (
                IssuerKind::Oidc,
                "https://idp.example.com/realms/x".to_owned(),
            ),
        ];
        for (kind, issuer) in good {
            assert_eq!(config(kind, &issuer).validate(false), Ok(()), "{issuer}");
        }
    }

    #[test]
    fn issuer_urls_of_the_wrong_shape_are_refused_naming_the_kind() {
        let bad = [
            (IssuerKind::Gcp, "https://accounts.google.com/"),
            (IssuerKind::Gcp, "https://evil.example.com"),
            (
                IssuerKind::Azure,
                "https://login.microsoftonline.com/common/v2.0",
            ),
            (IssuerKind::Azure, "https://sts.windows.net/not-a-guid/"),
            (
                IssuerKind::Aws,
                "https://oidc.eks.us-east-1.amazonaws.com/id/",
            ),
            (
                IssuerKind::Aws,
                "https://x.tokens.sts.global.api.aws.evil.com",
            ),
        ];
        for (kind, issuer) in bad {
            match config(kind, issuer).validate(false) {
                Err(IssuerConfigError::IssuerShape { kind: k, .. }) => assert_eq!(k, kind),
                other => panic!("{issuer}: {other:?}"),
            }
        }
    }

    #[test]
    fn http_is_only_accepted_for_loopback_in_dev() {
        for host in ["127.0.0.1:8080", "localhost:9000", "[::1]:1234"] {
            let c = config(IssuerKind::Gcp, &format!("http://{host}"));
            assert_eq!(c.validate(true), Ok(()), "{host} in dev, any kind");
            assert_eq!(
                c.validate(false),
                Err(IssuerConfigError::InvalidIssuerUrl {
                    problem: UrlProblem::NotHttps
                })
            );
        }
        let remote = config(IssuerKind::Oidc, "http://idp.example.com");
        assert_eq!(
            remote.validate(true),
            Err(IssuerConfigError::InvalidIssuerUrl {
                problem: UrlProblem::NotHttps
            })
        );
    }

    #[test]
    fn malformed_issuer_urls_are_refused() {
        let cases = [
            ("not a url", UrlProblem::Whitespace),
            ("idp.example.com", UrlProblem::Unparseable),
            ("https://u:p@idp.example.com", UrlProblem::Credentials),
            ("https://idp.example.com/?x=1", UrlProblem::QueryOrFragment),
            ("ftp://idp.example.com", UrlProblem::NotHttps),
        ];
        for (issuer, problem) in cases {
            assert_eq!(
                config(IssuerKind::Oidc, issuer).validate(true),
                Err(IssuerConfigError::InvalidIssuerUrl { problem }),
                "{issuer}"
            );
        }
    }

    #[test]
    fn hmac_and_eddsa_algorithms_are_refused() {
        let mut c = config(IssuerKind::Oidc, "https://idp.example.com");
        c.algorithms = vec![Algorithm::RS256, Algorithm::HS256];
        assert_eq!(
            c.validate(false),
            Err(IssuerConfigError::ForbiddenAlgorithm(Algorithm::HS256))
        );
        c.algorithms = vec![Algorithm::EdDSA];
        assert_eq!(
            c.validate(false),
            Err(IssuerConfigError::UnsupportedAlgorithm(Algorithm::EdDSA))
        );
        c.algorithms = vec![];
        assert_eq!(c.validate(false), Err(IssuerConfigError::NoAlgorithms));
    }

    #[test]
    fn other_fields_are_checked() {
        let mut c = config(IssuerKind::Oidc, "https://idp.example.com");
        c.name = " ".into();
        assert_eq!(c.validate(false), Err(IssuerConfigError::InvalidName));
        let mut c = config(IssuerKind::Oidc, "https://idp.example.com");
        c.audience = String::new();
        assert_eq!(c.validate(false), Err(IssuerConfigError::InvalidAudience));
        let mut c = config(IssuerKind::Oidc, "https://idp.example.com");
        c.max_token_lifetime = Duration::ZERO;
        assert_eq!(c.validate(false), Err(IssuerConfigError::ZeroLifetime));
        let mut c = config(IssuerKind::Oidc, "https://idp.example.com");
        c.jwks_uri = Some(Url::parse("http://idp.example.com/jwks").expect("url"));
        assert_eq!(
            c.validate(true),
            Err(IssuerConfigError::InvalidJwksUri {
                problem: UrlProblem::NotHttps
            })
        );
    }

    #[test]
    fn config_deserializes_with_defaults_and_rejects_unknown_fields() {
        let c: IssuerConfig = serde_json::from_value(serde_json::json!({
            "name": "google", "kind": "gcp", "issuer": "https://accounts.google.com",
            "audience": "https://coordinator-a.example.com"
        }))
        .expect("parses");
        assert_eq!(c.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(c.max_token_lifetime, DEFAULT_MAX_TOKEN_LIFETIME);
        assert_eq!(c.jwks_uri, None);

        let c: IssuerConfig = serde_json::from_value(serde_json::json!({
            "name": "eks", "kind": "aws", "issuer": "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC",
            "audience": "sts.amazonaws.com", "algorithms": ["RS256"], "max_token_lifetime": 3600,
            "jwks_uri": "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC/keys"
        }))
        .expect("parses");
        assert_eq!(c.max_token_lifetime, Duration::from_secs(3600));
        assert_eq!(
            serde_json::to_value(&c).expect("serializes")["max_token_lifetime"],
            3600
        );

        let unknown = serde_json::from_value::<IssuerConfig>(serde_json::json!({
            "name": "x", "kind": "oidc", "issuer": "https://a", "audience": "b", "jwks": "c"
        }));
        assert!(unknown.is_err());
        let bad_kind = serde_json::from_value::<IssuerConfig>(serde_json::json!({
            "name": "x", "kind": "AWS", "issuer": "https://a", "audience": "b"
        }));
        assert!(bad_kind.is_err());
    }

    #[test]
    fn aws_subjects() {
        for ok in [
            "arn:aws:iam::111122223333:role/workload",
            "arn:aws:iam::111122223333:role/path/to/my-role_1+=,.@",
            "arn:aws-us-gov:iam::111122223333:role/r",
            "arn:aws:sts::111122223333:assumed-role/workload/i-0abc123",
            "system:serviceaccount:default:bidding-server",
            "system:serviceaccount:ad-tech-1:svc.v2",
        ] {
            assert_eq!(validate_subject(IssuerKind::Aws, ok), Ok(()), "{ok}");
        }
        let bad = [
            (
                "arn:aws:iam::11112222333:role/x",
                SubjectError::AwsAccountId,
            ),
            (
                "arn:aws:iam::11112222333a:role/x",
                SubjectError::AwsAccountId,
            ),
            (
                "arn:gcp:iam::111122223333:role/x",
                SubjectError::AwsPartition,
            ),
            (
                "arn:aws:iam::111122223333:user/x",
                SubjectError::AwsResource,
            ),
            ("arn:aws:s3::111122223333:role/x", SubjectError::AwsResource),
            ("arn:aws:iam::111122223333:role/", SubjectError::AwsRoleName),
            (
                "arn:aws:iam::111122223333:role/a//b",
                SubjectError::AwsRoleName,
            ),
            (
                "arn:aws:iam::111122223333:role/bad name",
                SubjectError::AwsRoleName,
            ),
            ("arn:aws:iam", SubjectError::NotAwsPrincipal),
            ("111122223333", SubjectError::NotAwsPrincipal),
            (
                "system:serviceaccount:Default:x",
                SubjectError::EksNamespace,
            ),
            (
                "system:serviceaccount:ns:-x",
                SubjectError::EksServiceAccount,
            ),
            ("system:serviceaccount:ns", SubjectError::NotAwsPrincipal),
        ];
        for (sub, err) in bad {
            assert_eq!(validate_subject(IssuerKind::Aws, sub), Err(err), "{sub}");
        }
        assert_eq!(
            validate_subject(IssuerKind::Aws, &"a".repeat(601)),
            Err(SubjectError::TooLong { max: 600 })
        );
        let long_role = format!("arn:aws:iam::111122223333:role/{}", "r".repeat(65));
        assert_eq!(
            validate_subject(IssuerKind::Aws, &long_role),
            Err(SubjectError::AwsRoleName)
        );
    }

    #[test]
    fn gcp_subjects() {
        for ok in [
            "113475438248934895348",
            "workload-sa@my-project-123.iam.gserviceaccount.com",
        ] {
            assert_eq!(validate_subject(IssuerKind::Gcp, ok), Ok(()), "{ok}");
        }
        for bad in [
            "11347543824893489534",
            "1134754382489348953489",
            "abc@my-project.iam.gserviceaccount.com",
            "workload-sa@gmail.com",
            "workload-sa",
        ] {
            assert_eq!(
                validate_subject(IssuerKind::Gcp, bad),
                Err(SubjectError::NotGcpServiceAccount),
                "{bad}"
            );
        }
    }

    #[test]
    fn azure_and_oidc_subjects() {
        assert_eq!(validate_subject(IssuerKind::Azure, TENANT), Ok(()));
        assert_eq!(
            validate_subject(IssuerKind::Azure, "72f988bf-86f1-41af-91ab-2d7cd011db4"),
            Err(SubjectError::NotAzureObjectId)
        );
        assert_eq!(validate_subject(IssuerKind::Oidc, "any subject"), Ok(()));
        assert_eq!(
            validate_subject(IssuerKind::Oidc, ""),
            Err(SubjectError::Empty)
        );
        assert_eq!(
            validate_subject(IssuerKind::Oidc, "a\nb"),
            Err(SubjectError::ControlCharacter)
        );
        assert_eq!(
            validate_subject(IssuerKind::Oidc, &"x".repeat(256)),
            Err(SubjectError::TooLong { max: 255 })
        );
        assert_eq!(validate_subject(IssuerKind::Oidc, &"x".repeat(255)), Ok(()));
    }
}
