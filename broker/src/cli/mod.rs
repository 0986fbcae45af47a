//! The `keyferry` command line. Exit codes: 0 success, 1 a refused or
//! failed check, 2 bad usage or configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, ConfigError, Overrides};

mod attest;
mod audit;
mod client;
mod gov;
mod keys;
mod login;
mod manifest;
mod onboard;

/// Keyferry: federated cross-cloud identity and key-wrap broker.
#[derive(Debug, Parser)]
#[command(name = "keyferry", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker. Without --config: dev profile on 127.0.0.1:8080,
    /// SQLite and a local KEK under ./keyferry-data.
    Serve {
        /// Configuration file (keyferry.toml).
        #[arg(long, env = "KEYFERRY_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Data directory for the default SQLite file and local KEKs.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Sign in as an operator (device authorization grant at the operator
    /// OIDC issuer); the admin commands use the cached token.
    Login(login::LoginArgs),
    /// Onboard issuers, ad techs and their workload identities (admin API).
    Onboard(onboard::OnboardArgs),
    /// List, rotate and revoke keys (admin API).
    Keys(keys::KeysArgs),
    /// Verify, export and read the audit transparency log.
    Audit(audit::AuditArgs),
    /// Run two coordinators, an ad tech and a simulated SNP workload on loopback, and show each step.
    Demo,
    /// What a confidential workload runs: fetch, recombine and hold its keys.
    Workload {
        #[command(subcommand)]
        command: WorkloadCommand,
    },
    /// Verify SEV-SNP evidence offline and print its claims.
    Attest(attest::AttestArgs),
    /// Governance of release policies: propose, approve, list, show.
    Gov(gov::GovArgs),
    /// Measure performance (not a test).
    Bench {
        #[command(subcommand)]
        scenario: BenchScenario,
    },
}

/// The options of the request scenarios.
#[derive(Debug, clap::Args)]
struct HttpBench {
    /// A running broker (public-keys only); default: one started here on loopback.
    #[arg(long)]
    target: Option<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum BenchScenario {
    /// Audit log: group-committed appends, then proof latency at that size.
    /// `POST /v1/token` under load.
    TokenExchange(HttpBench),
    /// `GET /v1alpha/publicKeys` under load.
    PublicKeys(HttpBench),
    /// `GET /v1alpha/encryptionKeys:recent` under load.
    RecentKeys(HttpBench),
    /// Challenge and attested release under load.
    AttestedRelease(HttpBench),
    AuditLog {
        /// Entries to append.
        #[arg(long, default_value_t = 100_000)]
        entries: u64,
        /// Concurrent appenders.
        #[arg(long, default_value_t = 64)]
        concurrency: u64,
        /// Database (default: a temporary SQLite file).
        #[arg(long)]
        storage_url: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum WorkloadCommand {
    /// Fetch the keys once from both coordinators and print a summary (no
    /// key material).
    Fetch {
        /// The workload configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Write each key's Tink keysets here (dev profile only; for
        /// interoperability tests).
        #[arg(long)]
        export_keyset: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print it, secrets redacted.
    Check {
        /// Configuration file (keyferry.toml).
        #[arg(long, env = "KEYFERRY_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Runs `body` on a fresh runtime; an error is printed and exits 1.
fn run_async<F, Fut>(body: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyferry: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a `bench` scenario.
fn run_bench(scenario: BenchScenario) -> ExitCode {
    let (kind, args) = match scenario {
        BenchScenario::TokenExchange(a) => (crate::bench::Scenario::TokenExchange, a),
        BenchScenario::PublicKeys(a) => (crate::bench::Scenario::PublicKeys, a),
        BenchScenario::RecentKeys(a) => (crate::bench::Scenario::RecentKeys, a),
        BenchScenario::AttestedRelease(a) => (crate::bench::Scenario::AttestedRelease, a),
        BenchScenario::AuditLog {
            entries,
            concurrency,
            storage_url,
            json,
        } => {
            return run_async(|| async move {
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                let url = storage_url
                    .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
                crate::bench::audit_log(&url, entries, concurrency, json)
                    .await
                    .map_err(|e| format!("bench: {e:#}"))
            });
        }
    };
    run_async(|| async move {
        crate::bench::run_scenario(
            kind,
            args.target,
            args.concurrency.max(1),
            std::time::Duration::from_secs(args.duration.max(1)),
            args.json,
        )
        .await
        .map_err(|e| format!("bench: {e:#}"))
    })
}

fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(2)
}

impl Cli {
    /// Runs the chosen command.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Serve {
                config,
                listen,
                data_dir,
            } => {
                let overrides = Overrides { listen, data_dir };
                let config = match config::load(config.as_deref(), &overrides) {
                    Ok(c) => c,
                    Err(e) => return config_failure(&e),
                };
                crate::telemetry::init();
                let runtime = match tokio::runtime::Runtime::new() {
                    Ok(rt) => rt,
                    Err(e) => {
                        eprintln!("cannot start the async runtime: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                match runtime.block_on(crate::server::serve(config)) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("keyferry: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
            Command::Config {
                command: ConfigCommand::Check { config },
            } => match config::load(config.as_deref(), &Overrides::default()) {
                Ok(c) => {
                    print!("{}", c.redacted_toml());
                    eprintln!("configuration OK");
                    ExitCode::SUCCESS
                }
                Err(e) => config_failure(&e),
            },
            Command::Login(args) => login::run(args),
            Command::Onboard(args) => onboard::run(args),
            Command::Keys(args) => keys::run(args),
            Command::Audit(args) => audit::run(args),
            Command::Gov(args) => gov::run(args),
            Command::Attest(args) => attest::run(args),
            Command::Demo => run_async(|| async {
                let mut out = std::io::stdout();
                crate::demo::run(&mut out)
                    .await
                    .map_err(|e| format!("demo failed: {e:#}"))
            }),
            Command::Workload {
                command:
                    WorkloadCommand::Fetch {
                        config,
                        export_keyset,
                    },
            } => run_async(|| async move {
                crate::server::install_crypto_provider();
                let mut out = std::io::stdout();
                workload::run_fetch(&config, export_keyset.as_deref(), &mut out)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }),
            Command::Bench { scenario } => run_bench(scenario),
        }
    }
}
