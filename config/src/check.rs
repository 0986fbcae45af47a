use std::fmt;

use cloud_adapters::KekUri;
use url::Url;

use super::{Config, Profile};

/// One broken rule, with the key it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key, e.g. `coordinator.storage_kek`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}: {}", self.key, self.message)
    }
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
    fn check_keys(&self, problem: &mut impl FnMut(&str, String)) {
        let production = self.profile == Profile::Production;
        let keys = &self.keys;
        if !(1..=20).contains(&keys.active_keys) {
            problem("keys.active_keys", "must be between 1 and 20".into());
        }
        if keys.refresh_window >= keys.validity {
            problem(
                "keys.refresh_window",
                "must be shorter than keys.validity".into(),
            );
        }
        if keys.ttl < keys.validity {
            problem("keys.ttl", "must be at least keys.validity".into());
        }
        if keys.generation_interval.is_zero() || keys.generation_interval > keys.refresh_window {
            problem(
                "keys.generation_interval",
                "must be positive and at most keys.refresh_window, or keys could expire unreplaced"
                    .into(),
            );
        }
        if keys.handover_timeout.is_zero() {
            problem("keys.handover_timeout", "must be positive".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, use_case) in self.use_cases.iter().enumerate() {
            let ok = !use_case.name.is_empty()
                && use_case.name.len() <= 64
                && use_case
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                problem(
                    &format!("use_cases[{i}].name"),
                    "lower-case letters, digits or '-'".into(),
                );
            }
            if !names.insert(use_case.name.as_str()) {
                problem(
                    &format!("use_cases[{i}].name"),
                    format!("duplicate use case `{}`", use_case.name),
                );
            }
        }
        for (name, cloud) in self.clouds.enabled() {
            match cloud.kek.parse::<KekUri>() {
                Err(e) => problem(&format!("clouds.{name}.kek"), e.to_string()),
                Ok(uri) if production && uri.is_local() => problem(
                    &format!("clouds.{name}.kek"),
                    "local-kek:// is for the dev profile only".into(),
                ),
                Ok(_) => {}
            }
            if production && cloud.static_credentials.is_some() {
                problem(
                    &format!("clouds.{name}.static_credentials"),
                    "static cloud credentials are for the dev profile only; use federation".into(),
                );
            }
            let overrides = [
                ("sts_endpoint", cloud.sts_endpoint.is_some()),
                ("sts_url", cloud.sts_url.is_some()),
                ("iam_credentials_url", cloud.iam_credentials_url.is_some()),
                ("authority_host", cloud.authority_host.is_some()),
                ("ca_file", cloud.ca_file.is_some()),
            ];
            for (key, set) in overrides {
                if production && set {
                    problem(
                        &format!("clouds.{name}.{key}"),
                        "endpoint overrides are for emulators and test doubles (dev profile)"
                            .into(),
                    );
                }
            }
            if production && cloud.endpoint.is_some() {
                problem(
                    &format!("clouds.{name}.endpoint"),
                    "endpoint overrides are for emulators and test doubles (dev profile)".into(),
                );
            }
        }
    }
}

/// The first thing wrong with an issuer entry, as (field, message).
fn issuer_problem(issuer: &super::IssuerEntry, production: bool) -> Option<(&'static str, String)> {
    match issuer.issuer.scheme() {
        "https" => {}
        "http" if production => {
            return Some((
                "issuer",
                "http issuers are for the dev profile only; an issuer must be https".into(),
            ));
        }
        "http" if !is_loopback(&issuer.issuer) => {
            return Some((
                "issuer",
                "http is allowed only for loopback issuers in dev".into(),
            ));
        }
        "http" => {}
        other => return Some(("issuer", format!("unsupported scheme `{other}`"))),
    }
    if issuer.audience.is_empty() {
        return Some(("audience", "must not be empty".into()));
    }
    match issuer.to_idp() {
        Err(e) => Some(("algorithms", e)),
        Ok(config) => config
            .validate(!production)
            .err()
            .map(|e| ("issuer", e.to_string())),
    }
}

impl Config {
    /// Applies every rule that the types alone cannot, returning all
    /// problems rather than the first.
    pub fn check(&self) -> Result<(), Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(ConfigProblem {
                key: key.to_owned(),
                message,
            })
        };
        let production = self.profile == Profile::Production;

        match self.coordinator.storage_kek.parse::<KekUri>() {
            Err(e) => problem("coordinator.storage_kek", e.to_string()),
            Ok(uri) if production && uri.is_local() => problem(
                "coordinator.storage_kek",
                "local-kek:// is for the dev profile only; use a cloud KMS key".into(),
            ),
            Ok(_) => {}
        }
        if production && self.coordinator.storage_kek_endpoint.is_some() {
            problem(
                "coordinator.storage_kek_endpoint",
                "endpoint overrides are for emulators and test doubles (dev profile)".into(),
            );
        }

        let storage_url = self.storage_url();
        match Url::parse(&storage_url) {
            Ok(url) if matches!(url.scheme(), "sqlite" | "postgres" | "postgresql") => {}
            Ok(url) => problem(
                "storage.url",
                format!("unsupported scheme `{}` (sqlite or postgres)", url.scheme()),
            ),
            Err(e) => problem("storage.url", format!("not a URL: {e}")),
        }
        if self.storage.max_connections == Some(0) {
            problem("storage.max_connections", "must be at least 1".into());
        }

        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            problem(
                "server.tls_cert",
                "tls_cert and tls_key must be set together".into(),
            );
        }
        if self.server.body_limit < 1024 {
            problem("server.body_limit", "must be at least 1024 bytes".into());
        }
        if self.server.header_read_timeout < std::time::Duration::from_millis(100) {
            problem(
                "server.header_read_timeout",
                "must be at least 100ms".into(),
            );
        }
        if self.server.readiness_kek_interval > std::time::Duration::from_secs(3600) {
            problem(
                "server.readiness_kek_interval",
                "at most 1h: readiness would hide a KEK failure for longer".into(),
            );
        }
        match (self.server.metrics, self.server.metrics_listen) {
            (crate::MetricsAccess::Listener, None) => problem(
                "server.metrics_listen",
                "is required with server.metrics = \"listener\"".into(),
            ),
            (crate::MetricsAccess::Listener, Some(addr)) if addr == self.server.listen => problem(
                "server.metrics_listen",
                "must differ from server.listen".into(),
            ),
            (crate::MetricsAccess::Open | crate::MetricsAccess::Operator, Some(_)) => problem(
                "server.metrics_listen",
                "is used only with server.metrics = \"listener\"".into(),
            ),
            _ => {}
        }
        if self.server.max_connections == 0 {
            problem("server.max_connections", "must be at least 1".into());
        }
        if self.coordinator.peer_timeout.is_zero() {
            problem(
                "coordinator.peer_timeout",
                "must be longer than zero".into(),
            );
        }
        if self.server.request_timeout.is_zero() {
            problem("server.request_timeout", "must be longer than zero".into());
        }
        let (rotation, overlap) = (
            self.coordinator.handover_key_rotation,
            self.coordinator.handover_key_overlap,
        );
        if overlap < self.keys.handover_timeout {
            problem(
                "coordinator.handover_key_overlap",
                "must be at least keys.handover_timeout: a split sealed just before a rotation is handed over until then".into(),
            );
        }
        if rotation <= overlap {
            problem(
                "coordinator.handover_key_rotation",
                "must be longer than coordinator.handover_key_overlap".into(),
            );
        }
        if let Some(url) = &self.server.public_url {
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some()
            {
                problem(
                    "server.public_url",
                    "must be an http(s) URL without query or fragment".into(),
                );
            } else if production && url.scheme() != "https" {
                problem(
                    "server.public_url",
                    "must be https in production: it is the issuer URL that clouds trust".into(),
                );
            }
        } else if production {
            problem(
                "server.public_url",
                "must be set in production (the https issuer URL)".into(),
            );
        }

        if self.coordinator.name.is_empty()
            || !self
                .coordinator
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            problem(
                "coordinator.name",
                "must be letters, digits, '-' or '_'".into(),
            );
        }
        match self.coordinator.peer_url.as_deref() {
            Some("embedded") if production => problem(
                "coordinator.peer_url",
                "an embedded peer is for the dev profile only: a real Type-2 is operated by another party".into(),
            ),
            Some("embedded") | None => {}
            Some(other) => match Url::parse(other) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {
                    if production && url.scheme() != "https" {
                        problem("coordinator.peer_url", "must be https in production".into());
                    }
                }
                _ => problem(
                    "coordinator.peer_url",
                    "must be an http(s) URL or `embedded`".into(),
                ),
            },
        }
        match self.coordinator.role {
            super::Role::Type1 if self.coordinator.peer_url.is_none() => problem(
                "coordinator.peer_url",
                "a type1 coordinator needs its type2 peer (a URL, or `embedded` in dev)".into(),
            ),
            super::Role::Type2 if self.coordinator.peer_issuer.is_none() => problem(
                "coordinator.peer_issuer",
                "a type2 coordinator must name the type1's issuer to accept its handovers".into(),
            ),
            super::Role::Type2 if self.coordinator.peer_url.as_deref() == Some("embedded") => {
                problem(
                    "coordinator.peer_url",
                    "only a type1 can embed its peer".into(),
                )
            }
            _ => {}
        }
        if let Some(url) = &self.coordinator.peer_issuer
            && production
            && url.scheme() != "https"
        {
            problem(
                "coordinator.peer_issuer",
                "must be https in production".into(),
            );
        }

        if production
            && self
                .coordinator
                .key_generator
                .is_some_and(|k| k != super::KeyGeneratorEvidence::SevGuest)
        {
            problem(
                "coordinator.key_generator",
                "a simulated or unattested key generator is for the dev profile only".into(),
            );
        }
        if production && !self.coordinator.attested_key_generation {
            problem(
                "coordinator.attested_key_generation",
                "handovers from an unattested key generator are for the dev profile only".into(),
            );
        }

        if production && self.admin.bootstrap_token == Some(true) {
            problem(
                "admin.bootstrap_token",
                "the bootstrap admin token is for the dev profile only; use the operator OIDC issuer".into(),
            );
        }

        if let Some(url) = &self.admin.oidc_issuer {
            if production && url.scheme() != "https" {
                problem("admin.oidc_issuer", "must be https in production".into());
            }
            if self.admin.oidc_audience.is_none() {
                problem(
                    "admin.oidc_audience",
                    "must be set with admin.oidc_issuer".into(),
                );
            }
        }
        if self.federation.token_ttl.is_zero()
            || self.federation.token_ttl > std::time::Duration::from_secs(3600)
        {
            problem(
                "federation.token_ttl",
                "must be between 1s and 1h (the signing-key rotation keeps retired keys for 1h)"
                    .into(),
            );
        }
        if self.federation.rate_limit_per_minute == 0 {
            problem(
                "federation.rate_limit_per_minute",
                "must be at least 1".into(),
            );
        }

        self.check_keys(&mut problem);

        if self.audit.witness_interval < std::time::Duration::from_secs(1) {
            problem("audit.witness_interval", "must be at least 1s".into());
        }

        if production && !self.attestation.extra_roots.is_empty() {
            problem(
                "attestation.extra_roots",
                "extra attestation roots (simulated attesters) are for the dev profile only".into(),
            );
        }

        let members = &self.governance.members;
        let mut member_names = std::collections::HashSet::new();
        for (i, member) in members.iter().enumerate() {
            if member.name.trim().is_empty() || !member_names.insert(member.name.as_str()) {
                problem(
                    &format!("governance.members[{i}].name"),
                    "must be non-empty and unique".into(),
                );
            }
            if let Err(e) = super::parse_member_key(&member.public_key) {
                problem(&format!("governance.members[{i}].public_key"), e);
            }
        }
        if let Some(m) = self.governance.threshold
            && (m == 0 || m as usize > members.len())
        {
            problem(
                "governance.threshold",
                format!(
                    "must be from 1 to the number of members ({})",
                    members.len()
                ),
            );
        }

        let mut names = std::collections::HashSet::new();
        for (i, issuer) in self.issuers.iter().enumerate() {
            if !names.insert(issuer.name.as_str()) {
                problem(
                    &format!("issuers[{i}].name"),
                    format!("duplicate issuer name `{}`", issuer.name),
                );
            }
            if let Some((field, message)) = issuer_problem(issuer, production) {
                problem(&format!("issuers[{i}].{field}"), message);
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The effective configuration as TOML with secrets (database
    /// passwords) replaced by `***`, for `config check`.
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.storage.url = Some(redact_url_password(&self.storage_url()));
        for cloud in [
            &mut shown.clouds.aws,
            &mut shown.clouds.gcp,
            &mut shown.clouds.azure,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(creds) = &mut cloud.static_credentials {
                let hide = |v: &mut Option<String>| {
                    if v.is_some() {
                        *v = Some("***".into());
                    }
                };
                hide(&mut creds.secret_access_key);
                hide(&mut creds.access_token);
            }
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

fn redact_url_password(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            // set_password only fails for URLs that cannot have one.
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::IssuerEntry;
    use super::*;

    fn production() -> Config {
        let mut c = Config::dev_default();
        c.profile = Profile::Production;
        c.coordinator.storage_kek =
            "gcp-kms://projects/p/locations/global/keyRings/r/cryptoKeys/storage".into();
        c.coordinator.peer_url = Some("https://coordinator-b.example.com".into());
        c.server.public_url = Some("https://coordinator-a.example.com".parse().expect("url"));
        c
    }

    fn keys(problems: Vec<ConfigProblem>) -> Vec<String> {
        problems.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn the_dev_default_and_a_clean_production_config_pass() {
        assert_eq!(Config::dev_default().check(), Ok(()));
        assert_eq!(production().check(), Ok(()));
    }

    #[test]
    fn production_refuses_every_dev_only_setting_one_line_each() {
        let mut c = production();
        c.coordinator.storage_kek = "local-kek://storage".into();
        c.coordinator.peer_url = Some("embedded".into());
        c.coordinator.key_generator = Some(super::super::KeyGeneratorEvidence::Simulated);
        c.coordinator.attested_key_generation = false;
        c.admin.bootstrap_token = Some(true);
        c.attestation.extra_roots = vec!["sim-ark.pem".into()];
        c.issuers.push(IssuerEntry {
            name: "local".into(),
            kind: super::super::IssuerKind::Oidc,
            issuer: "http://127.0.0.1:9999".parse().expect("url"),
            audience: "a".into(),
            algorithms: None,
            max_token_lifetime: None,
            jwks_uri: None,
            accept_as_bearer: false,
        });
        let problems = c.check().expect_err("refused");
        assert_eq!(
            keys(problems.clone()),
            [
                "coordinator.storage_kek",
                "coordinator.peer_url",
                "coordinator.key_generator",
                "coordinator.attested_key_generation",
                "admin.bootstrap_token",
                "attestation.extra_roots",
                "issuers[0].issuer",
            ]
        );
        for p in problems {
            assert!(!p.to_string().contains('\n'), "one line each: {p}");
        }
    }

    #[test]
    fn production_refuses_cloud_test_settings() {
        let mut c = production();
        let mut aws = super::super::CloudConfig::with_kek(
            "aws-kms://arn:aws:kms:us-east-1:111122223333:key/k",
        );
        aws.endpoint = Some("http://127.0.0.1:5000".parse().expect("url"));
        aws.sts_endpoint = Some("http://127.0.0.1:5000".into());
        aws.static_credentials = Some(super::super::StaticCredentials {
            access_key_id: Some("AKIA".into()),
            secret_access_key: Some("secret".into()),
            access_token: None,
        });
        c.clouds.aws = Some(aws);
        let mut gcp = super::super::CloudConfig::with_kek("local-kek://gcp");
        gcp.sts_url = Some("http://127.0.0.1:1".into());
        c.clouds.gcp = Some(gcp);
        let mut keys = keys(c.check().expect_err("refused"));
        keys.sort();
        assert_eq!(
            keys,
            [
                "clouds.aws.endpoint",
                "clouds.aws.static_credentials",
                "clouds.aws.sts_endpoint",
                "clouds.gcp.kek",
                "clouds.gcp.sts_url",
            ]
        );
        let mut dev = Config::dev_default();
        dev.clouds = c.clouds.clone();
        assert_eq!(dev.check(), Ok(()), "all allowed in dev");
        let shown = dev.redacted_toml();
        assert!(!shown.contains("secret\""), "{shown}");
    }

    #[test]
    fn production_does_not_enable_the_bootstrap_token_by_default() {
        assert!(!production().bootstrap_token_enabled());
        assert!(Config::dev_default().bootstrap_token_enabled());
    }

    #[test]
    fn dev_allows_http_only_for_loopback_issuers() {
        let mut c = Config::dev_default();
        for (url, ok) in [
            ("http://127.0.0.1:8080", true),
            ("http://localhost:8080", true),
            ("http://[::1]:8080", true),
            ("https://accounts.google.com", true),
            ("http://idp.example.com", false),
            ("ftp://idp.example.com", false),
        ] {
            c.issuers = vec![IssuerEntry {
                name: "i".into(),
                kind: super::super::IssuerKind::Oidc,
                issuer: url.parse().expect("url"),
                audience: "a".into(),
                algorithms: None,
                max_token_lifetime: None,
                jwks_uri: None,
                accept_as_bearer: false,
            }];
            assert_eq!(c.check().is_ok(), ok, "{url}");
        }
    }

    #[test]
    fn malformed_values_are_named() {
        let mut c = Config::dev_default();
        c.coordinator.storage_kek = "s3://bucket".into();
        c.storage.url = Some("mysql://db".into());
        c.server.tls_cert = Some("cert.pem".into());
        c.coordinator.peer_url = Some("not a url".into());
        assert_eq!(
            keys(c.check().expect_err("refused")),
            [
                "coordinator.storage_kek",
                "storage.url",
                "server.tls_cert",
                "coordinator.peer_url"
            ]
        );
    }

    #[test]
    fn config_check_output_hides_database_passwords() {
        let mut c = Config::dev_default();
        c.storage.url = Some("postgres://keyferry:hunter2@db:5432/keyferry".into());
        let shown = c.redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://keyferry:***@db:5432/keyferry"),
            "{shown}"
        );
    }
}
