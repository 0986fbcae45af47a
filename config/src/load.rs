use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::{Config, ConfigProblem};

/// Values from command-line flags, which win over file and environment.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
}

/// Why the configuration cannot be used. Every variant is a usage error:
/// the binary exits 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file is not there.
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    /// A key is unknown, missing or of the wrong type; figment's message
    /// names the key and the file or variable it came from.
    #[error("{0}")]
    Parse(String),
    /// Keys that parse but break a rule; one line each.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigProblem>),
}

/// Loads, merges and checks the configuration.
///
/// Without a file the base is the dev profile's defaults (what a bare
/// `keyferry serve` runs with); with a file, the file must name its profile.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let mut figment = match file {
        Some(path) if !path.is_file() => return Err(ConfigError::Missing(path.to_owned())),
        Some(path) => Figment::new().merge(Toml::file(path)),
        None => Figment::from(Serialized::defaults(Config::dev_default())),
    };
    figment = figment.merge(environment());
    if let Some(listen) = overrides.listen {
        figment = figment.merge(Serialized::default("server.listen", listen));
    }
    if let Some(dir) = &overrides.data_dir {
        figment = figment.merge(Serialized::default("data_dir", dir));
    }
    extract(figment)
}

/// One file's text alone, without environment or flags: the same extraction
/// and checks as [`load`], for callers that hold the text (the fuzz target).
pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
    extract(Figment::new().merge(Toml::string(text)))
}

fn extract(figment: Figment) -> Result<Config, ConfigError> {
    let config: Config = figment
        .extract()
        .map_err(|e| ConfigError::Parse(describe(e)))?;
    config.check().map_err(ConfigError::Invalid)?;
    Ok(config)
}

/// `KEYFERRY_<SECTION>__<KEY>` variables, plus `KEYFERRY_PROFILE` and
/// `KEYFERRY_DATA_DIR` for the top-level keys. Variables without `__`
/// (`KEYFERRY_SERVER`, `KEYFERRY_TOKEN`, used by the CLI clients) are not
/// configuration and are left alone.
fn environment() -> Env {
    Env::prefixed("KEYFERRY_")
        .filter(|key| key.as_str().contains("__") || key == "profile" || key == "data_dir")
        .split("__")
}

/// Figment's errors already name the key ("for key `server.listen`") and the
/// source; join them one per line.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| format!("configuration error: {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
// figment's `Jail` closures must return `figment::Error`, which is large.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("keyferry.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn no_file_means_the_dev_profile_on_loopback() {
        figment::Jail::expect_with(|_| {
            let config = load(None, &Overrides::default()).expect("defaults load");
            assert!(config.is_dev());
            assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
            assert_eq!(config.storage_url(), "sqlite://./keyferry-data/keyferry.db");
            assert_eq!(config.coordinator.peer_url.as_deref(), Some("embedded"));
            assert!(config.bootstrap_token_enabled());
            Ok(())
        });
    }

    #[test]
    fn flags_beat_environment_which_beats_the_file() {
        figment::Jail::expect_with(|jail| {
            let file = write(
                jail.directory(),
                "profile = \"dev\"\n[server]\nlisten = \"127.0.0.1:9000\"\nbody_limit = 1000\n[coordinator]\npeer_url = \"embedded\"\n",
            );
            jail.set_env("KEYFERRY_SERVER__BODY_LIMIT", "2000");
            jail.set_env("KEYFERRY_SERVER__LISTEN", "127.0.0.1:9001");
            // Client-side variables are not configuration and must not break loading.
            jail.set_env("KEYFERRY_SERVER", "http://127.0.0.1:8080");
            jail.set_env("KEYFERRY_TOKEN", "not-a-config-key");
            let overrides = Overrides {
                listen: Some("127.0.0.1:9002".parse().expect("addr")),
                data_dir: Some("/tmp/kf".into()),
            };
            let config = load(Some(&file), &overrides).expect("loads");
            assert_eq!(config.server.body_limit, 2000);
            assert_eq!(config.server.listen.to_string(), "127.0.0.1:9002");
            assert_eq!(config.storage_url(), "sqlite:///tmp/kf/keyferry.db");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        figment::Jail::expect_with(|jail| {
            let file = write(
                jail.directory(),
                "profile = \"dev\"\n[server]\nlisen = \"127.0.0.1:1\"\n",
            );
            let err = load(Some(&file), &Overrides::default()).expect_err("refused");
            let msg = err.to_string();
            assert!(msg.contains("lisen") && msg.contains("server"), "{msg}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_environment_key_is_refused_by_name() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KEYFERRY_STORAGE__URLL", "sqlite://x");
            let err = load(None, &Overrides::default()).expect_err("refused");
            assert!(err.to_string().contains("urll"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_file_must_name_its_profile() {
        figment::Jail::expect_with(|jail| {
            let file = write(jail.directory(), "[server]\nlisten = \"127.0.0.1:9000\"\n");
            let err = load(Some(&file), &Overrides::default()).expect_err("refused");
            assert!(err.to_string().contains("profile"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_malformed_url_is_refused_by_key() {
        figment::Jail::expect_with(|jail| {
            let file = write(
                jail.directory(),
                "profile = \"dev\"\n[server]\npublic_url = \"not a url\"\n",
            );
            let err = load(Some(&file), &Overrides::default()).expect_err("refused");
            assert!(err.to_string().contains("server.public_url"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_is_reported() {
        let err = load(
            Some(Path::new("/nonexistent/keyferry.toml")),
            &Overrides::default(),
        )
        .expect_err("refused");
        assert!(matches!(err, ConfigError::Missing(_)));
    }

    #[test]
    fn text_alone_is_checked_like_a_file_and_ignores_the_environment() {
        figment::Jail::expect_with(|jail| {
            let text = "profile = \"dev\"\n[server]\nlisten = \"127.0.0.1:9000\"\n[coordinator]\npeer_url = \"embedded\"\n";
            jail.set_env("KEYFERRY_SERVER__LISTEN", "127.0.0.1:9100");
            let file = write(jail.directory(), text);
            let from_file = load(Some(&file), &Overrides::default()).expect("file loads");
            assert_eq!(from_file.server.listen.to_string(), "127.0.0.1:9100");
            let from_text = from_toml(text).expect("text loads");
            assert_eq!(from_text.server.listen.to_string(), "127.0.0.1:9000");

            let err = from_toml("profile = \"production\"\n").expect_err("refused");
            assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
            let err = from_toml("profile = \"dev\"\nlisten = 1\n").expect_err("refused");
            assert!(err.to_string().contains("listen"), "{err}");
            Ok(())
        });
    }
}
