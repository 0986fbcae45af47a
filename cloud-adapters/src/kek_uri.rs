use std::fmt;
use std::str::FromStr;

use crate::WrapError;

/// A parsed key-encryption-key URI (DESIGN §5.1).
///
/// Parsing happens once, when configuration is loaded, so a typo in a KEK URI
/// stops the broker at start instead of at the first key generation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KekUri {
    /// `aws-kms://arn:<partition>:kms:<region>:<account>:key/<id>` (or `alias/<name>`).
    AwsKms {
        /// The full key ARN, as AWS KMS takes it for `KeyId`.
        arn: String,
        /// The region the ARN names; the KMS client must be in it.
        region: String,
        /// The 12-digit account that owns the key.
        account: String,
    },
    /// `gcp-kms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>`.
    GcpKms {
        /// The Cloud KMS resource name of the crypto key.
        name: String,
    },
    /// `azure-kv://<vault-host>/keys/<name>[/<version>]`.
    AzureKeyVault {
        /// The vault's host name (with a port only for test doubles).
        vault_host: String,
        /// The key's name in the vault.
        key_name: String,
        /// A pinned key version; `None` means the vault's current version.
        version: Option<String>,
    },
    /// `local-kek://<name>`: a key file under the data dir, dev profile only.
    Local {
        /// The key's name; also its file name.
        name: String,
    },
}

/// The scheme of a [`KekUri`], for configuration checks and metrics labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KekScheme {
    /// `aws-kms://`
    AwsKms,
    /// `gcp-kms://`
    GcpKms,
    /// `azure-kv://`
    AzureKeyVault,
    /// `local-kek://`
    Local,
}

impl KekScheme {
    /// The URI prefix without `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            KekScheme::AwsKms => "aws-kms",
            KekScheme::GcpKms => "gcp-kms",
            KekScheme::AzureKeyVault => "azure-kv",
            KekScheme::Local => "local-kek",
        }
    }
}

impl KekUri {
    /// Which backend this URI needs.
    pub fn scheme(&self) -> KekScheme {
        match self {
            KekUri::AwsKms { .. } => KekScheme::AwsKms,
            KekUri::GcpKms { .. } => KekScheme::GcpKms,
            KekUri::AzureKeyVault { .. } => KekScheme::AzureKeyVault,
            KekUri::Local { .. } => KekScheme::Local,
        }
    }

    /// True for the dev-only local KEK, which production refuses.
    pub fn is_local(&self) -> bool {
        matches!(self, KekUri::Local { .. })
    }

    /// The cloud whose KMS holds this KEK; `None` for a local KEK.
    pub fn cloud(&self) -> Option<Cloud> {
        match self {
            KekUri::AwsKms { .. } => Some(Cloud::Aws),
            KekUri::GcpKms { .. } => Some(Cloud::Gcp),
            KekUri::AzureKeyVault { .. } => Some(Cloud::Azure),
            KekUri::Local { .. } => None,
        }
    }
}

/// A workload cloud: a KMS that wraps splits, and the place a workload runs.
/// The one list of clouds; docs/clouds.md says what adding one takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cloud {
    /// AWS: KMS, `aws-kms://` KEKs.
    Aws,
    /// Google Cloud: Cloud KMS, `gcp-kms://` KEKs.
    Gcp,
    /// Azure: Key Vault, `azure-kv://` KEKs.
    Azure,
}

impl Cloud {
    /// Every cloud, in the order configuration lists them.
    pub const ALL: [Cloud; 3] = [Cloud::Aws, Cloud::Gcp, Cloud::Azure];

    /// The lower-case name used in configuration, credentials and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Gcp => "gcp",
            Cloud::Azure => "azure",
        }
    }

    /// The cloud named `name`.
    pub fn from_name(name: &str) -> Option<Cloud> {
        Cloud::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// So that `cloud == "aws"` reads as it should in tests and configuration code.
impl PartialEq<&str> for Cloud {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Cloud {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Cloud {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Cloud::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown cloud `{name}`: aws, gcp or azure"))
        })
    }
}

fn invalid(msg: impl Into<String>) -> WrapError {
    WrapError::InvalidUri(msg.into())
}

/// Names used in URIs: short, and safe as a file name for local KEKs.
fn is_simple_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_aws(rest: &str) -> Result<KekUri, WrapError> {
    // arn:<partition>:kms:<region>:<account>:key/<id>
    let parts: Vec<&str> = rest.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return Err(invalid("aws-kms URI must hold a KMS key ARN"));
    };
    if arn != "arn" || !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") || service != "kms" {
        return Err(invalid(
            "aws-kms URI must start with arn:<partition>:kms: (partition aws, aws-cn or aws-us-gov)",
        ));
    }
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid("aws-kms ARN has an invalid region"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("aws-kms ARN account must be 12 digits"));
    }
    let key_ok = match resource.split_once('/') {
        Some(("key", id)) => is_simple_name(id, 128),
        Some(("alias", name)) => {
            !name.is_empty()
                && name.len() <= 256
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))
        }
        _ => false,
    };
    if !key_ok {
        return Err(invalid("aws-kms ARN must end in key/<id> or alias/<name>"));
    }
    Ok(KekUri::AwsKms {
        arn: rest.to_owned(),
        region: region.to_owned(),
        account: account.to_owned(),
    })
}

fn parse_gcp(rest: &str) -> Result<KekUri, WrapError> {
    let parts: Vec<&str> = rest.split('/').collect();
    let [
        "projects",
        project,
        "locations",
        location,
        "keyRings",
        ring,
        "cryptoKeys",
        key,
    ] = parts[..]
    else {
        return Err(invalid(
            "gcp-kms URI must be projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>",
        ));
    };
    for (what, v) in [
        ("project", project),
        ("location", location),
        ("key ring", ring),
        ("crypto key", key),
    ] {
        if !is_simple_name(v, 100) {
            return Err(invalid(format!("gcp-kms URI has an invalid {what}")));
        }
    }
    Ok(KekUri::GcpKms {
        name: rest.to_owned(),
    })
}

fn parse_azure(rest: &str) -> Result<KekUri, WrapError> {
    let parts: Vec<&str> = rest.split('/').collect();
    let (host, name, version) = match parts[..] {
        [host, "keys", name] => (host, name, None),
        [host, "keys", name, version] => (host, name, Some(version)),
        _ => {
            return Err(invalid(
                "azure-kv URI must be <vault-host>/keys/<name>[/<version>]",
            ));
        }
    };
    let (hostname, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    let host_ok = !hostname.is_empty()
        && hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    if !host_ok {
        return Err(invalid("azure-kv URI has an invalid vault host"));
    }
    if !is_simple_name(name, 127) {
        return Err(invalid("azure-kv URI has an invalid key name"));
    }
    if version.is_some_and(|v| !is_simple_name(v, 64)) {
        return Err(invalid("azure-kv URI has an invalid key version"));
    }
    Ok(KekUri::AzureKeyVault {
        vault_host: host.to_owned(),
        key_name: name.to_owned(),
        version: version.map(str::to_owned),
    })
}

impl FromStr for KekUri {
    type Err = WrapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(invalid(
                "missing scheme (aws-kms://, gcp-kms://, azure-kv:// or local-kek://)",
            ));
        };
        match scheme {
            "aws-kms" => parse_aws(rest),
            "gcp-kms" => parse_gcp(rest),
            "azure-kv" => parse_azure(rest),
            "local-kek" if is_simple_name(rest, 64) => Ok(KekUri::Local {
                name: rest.to_owned(),
            }),
            "local-kek" => Err(invalid(
                "local-kek name must be 1-64 letters, digits, '-' or '_'",
            )),
            _ => Err(invalid(
                "unknown scheme (expected aws-kms, gcp-kms, azure-kv or local-kek)",
            )),
        }
    }
}

impl fmt::Display for KekUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KekUri::AwsKms { arn, .. } => write!(f, "aws-kms://{arn}"),
            KekUri::GcpKms { name } => write!(f, "gcp-kms://{name}"),
            KekUri::AzureKeyVault {
                vault_host,
                key_name,
                version: None,
            } => write!(f, "azure-kv://{vault_host}/keys/{key_name}"),
            KekUri::AzureKeyVault {
                vault_host,
                key_name,
                version: Some(v),
            } => write!(f, "azure-kv://{vault_host}/keys/{key_name}/{v}"),
            KekUri::Local { name } => write!(f, "local-kek://{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_parses_and_prints_back_unchanged() {
        for uri in [
            "aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "aws-kms://arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/splits",
            "gcp-kms://projects/p-1/locations/global/keyRings/r/cryptoKeys/k",
            "azure-kv://vault.example.vault.azure.net/keys/splits",
            "azure-kv://127.0.0.1:8443/keys/splits/0123abcd",
            "local-kek://storage",
        ] {
            let parsed: KekUri = uri.parse().unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(parsed.to_string(), uri);
        }
    }

    #[test]
    fn aws_uri_exposes_region_and_account() {
        let uri: KekUri = "aws-kms://arn:aws:kms:eu-west-3:444455556666:key/k1"
            .parse()
            .expect("valid");
        assert_eq!(
            uri,
            KekUri::AwsKms {
                arn: "arn:aws:kms:eu-west-3:444455556666:key/k1".into(),
                region: "eu-west-3".into(),
                account: "444455556666".into(),
            }
        );
        assert_eq!(uri.scheme(), KekScheme::AwsKms);
        assert!(!uri.is_local());
    }

    #[test]
    fn malformed_uris_are_refused_with_a_reason() {
        for (uri, needle) in [
            ("storage", "missing scheme"),
            ("s3://bucket/key", "unknown scheme"),
            (
                "aws-kms://arn:aws:s3:us-east-1:111122223333:key/k",
                "arn:<partition>:kms",
            ),
            ("aws-kms://arn:aws:kms:us-east-1:1111:key/k", "12 digits"),
            ("aws-kms://arn:aws:kms:US_EAST:111122223333:key/k", "region"),
            (
                "aws-kms://arn:aws:kms:us-east-1:111122223333:bucket/k",
                "key/<id>",
            ),
            (
                "aws-kms://arn:aws:kms:us-east-1:111122223333:key/",
                "key/<id>",
            ),
            ("gcp-kms://projects/p/locations/l/keyRings/r", "cryptoKeys"),
            (
                "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k/extra",
                "cryptoKeys",
            ),
            (
                "gcp-kms://projects//locations/l/keyRings/r/cryptoKeys/k",
                "project",
            ),
            (
                "azure-kv://vault.example.net/secrets/k",
                "<vault-host>/keys",
            ),
            ("azure-kv://bad host/keys/k", "vault host"),
            ("azure-kv://host:0/keys/k", "vault host"),
            ("azure-kv://host/keys/k!", "key name"),
            ("local-kek://", "local-kek name"),
            ("local-kek://../etc/passwd", "local-kek name"),
        ] {
            match uri.parse::<KekUri>() {
                Err(WrapError::InvalidUri(msg)) => {
                    assert!(msg.contains(needle), "{uri}: {msg:?} lacks {needle:?}")
                }
                other => panic!("{uri}: expected InvalidUri, got {other:?}"),
            }
        }
    }
}
