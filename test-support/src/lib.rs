//! Keyferry's test harness shared across crates (a dev-dependency only, never
//! published). Each helper starts a real third-party emulator as a child
//! process and is killed with it.
//!
//! # Layout
//! - `idp`: [`NodeIdp`], the npm `oauth2-mock-server` in `tests/idp-server/`
//!   as a workload or operator OIDC issuer.
//! - `operator_idp`: [`OperatorIdp`], the npm `oidc-provider` in
//!   `tests/operator-idp/`, the device-grant issuer of `keyferry login`.
//! - `node`: the stdin/stdout driver both npm servers share.
//! - `moto`: [`Moto`], the AWS KMS and STS emulator from the repository's
//!   `.venv`.
//! - `fault`: [`FaultProxy`], a TCP proxy in front of any of them (or the
//!   database, or the peer coordinator) that refuses, hangs, answers 503 or
//!   goes slow on demand.
//! - [`install_crypto_provider`]: the one rustls provider of a test process.
//!
//! A missing emulator skips the calling test with a printed reason (the
//! starters return `None`), except under `CI=true`, where a missing
//! prerequisite is a broken set-up and fails the test.

mod fault;
mod idp;
mod moto;
mod node;
mod operator_idp;

pub use fault::{Fault, FaultProxy};
pub use idp::NodeIdp;
pub use moto::{Moto, free_port, venv};
pub use operator_idp::OperatorIdp;

/// The repository root: this crate's parent directory, wherever the calling
/// crate lives.
const REPOSITORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Installs rustls's aws-lc-rs provider as the process default, once; later
/// calls do nothing. Both ring and aws-lc-rs are compiled in through
/// dependencies and rustls refuses to guess, so call this before building
/// any TLS configuration or client.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
