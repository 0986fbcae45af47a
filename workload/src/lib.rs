//! The Keyferry workload library: what a confidential workload runs to get its HPKE private
//! keys from the two split-trust coordinators (DESIGN §1, §5.3) and decrypt with them.
//!
//! A fetch trades the workload cloud's identity token at both coordinators, proves the TEE
//! with SNP evidence bound to each coordinator's nonce and a fresh TEE key, receives each
//! coordinator's split sealed to that key, unwraps it with the workload cloud's KMS where
//! needed, XORs the two splits and checks the result against the published public key and
//! both coordinators' signatures. Keys live in memory only; splits, tokens and credentials
//! are wiped after use and never logged.
//!
//! # Layout
//! - `config`: [`Config`], the `keyferry workload fetch --config FILE` TOML, and its
//!   production-versus-dev rules.
//! - `token`: [`TokenSource`] and its implementations (file, GCP metadata, Azure IMDS, AWS
//!   STS `GetWebIdentityToken`).
//! - `evidence`: [`EvidenceSource`], [`SevGuest`] (`/dev/sev-guest`) and [`Simulated`]
//!   (dev only).
//! - `client`: the HTTP calls to one coordinator, in the `wire` crate's documents.
//! - `check`: the format, agreement, signature and recombination checks.
//! - `kms`: unwrapping `cloud-kms` splits through cloud-adapters.
//! - `fetch`: [`Fetcher`] and [`fetch_once`]: both coordinators in parallel, all or nothing.
//! - `keyset`: [`KeySet`], [`HeldKey`] and the injectable [`Clock`].
//! - `refresh`: [`WorkloadKeys`], the background-refreshed set.
//! - `lookup`: one key fetched by id when a report names a key the set lacks: single
//!   flight, negative cache, a budget per minute.
//! - `export`: [`export_keyset`] (dev only).
//! - `error`: [`WorkloadError`], the one error type.
//!
//! For the CLI: [`run_fetch`] loads a config, fetches, optionally exports, and prints a
//! JSON summary.

mod check;
mod client;
mod config;
mod error;
mod evidence;
mod export;
mod fetch;
mod keyset;
mod kms;
mod lookup;
mod refresh;
mod token;

use std::io::Write;
use std::path::Path;

pub use config::{
    Cloud, Config, CoordinatorConfig, Coordinators, DEFAULT_REFRESH_INTERVAL, EvidenceConfig,
    KmsOverrides, Profile, Secret, StaticKmsCredentials, TokenSourceConfig,
};
pub use error::{CoordinatorReason, KeyProblem, Role, Step, WorkloadError};
pub use evidence::{EvidenceSource, SevGuest, Simulated, evidence_source};
pub use export::export_keyset;
pub use fetch::{Fetcher, fetch_once};
pub use keyset::{Clock, HeldKey, KeySet, ManualClock, SystemClock};
pub use lookup::{LOOKUPS_PER_MINUTE, MAX_KEY_ID, MAX_MISSING, MISSING_FOR};
pub use refresh::{KeySource, RETRY_AFTER_FAILURE, WorkloadKeys, jittered};
pub use token::{
    AwsStsTokenSource, AzureImdsTokenSource, FileTokenSource, GcpMetadataTokenSource, SubjectToken,
    TokenSource, token_source,
};
/// The coordinator API documents, shared with the broker (the `wire` crate).
pub use wire::{EncryptionKey, KEY_TYPE, KeyData};

/// Installs aws-lc-rs as rustls' process-wide provider if none is. Several crypto backends
/// are compiled into the binary (the cloud SDKs bring their own), and rustls refuses to
/// guess between them.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// `keyferry workload fetch --config FILE [--export-keyset DIR]`: loads the config, fetches
/// once, exports in dev if asked, and writes a one-line JSON summary (key ids and times,
/// never material) to `out`.
pub async fn run_fetch(
    config_path: &Path,
    export_dir: Option<&Path>,
    out: &mut (dyn Write + Send),
) -> Result<KeySet, WorkloadError> {
    let config = Config::load(config_path)?;
    // Refused before fetching, so a production run never gets as far as holding keys.
    if export_dir.is_some() && !config.is_dev() {
        return Err(WorkloadError::DevOnly("--export-keyset"));
    }
    let keys = fetch_once(&config).await?;
    let mut summary = keys.summary();
    if let Some(dir) = export_dir {
        let written = export_keyset(&keys, dir, config.profile)?;
        summary["exported"] = serde_json::json!(
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        );
    }
    writeln!(out, "{summary}").map_err(WorkloadError::Output)?;
    Ok(keys)
}
