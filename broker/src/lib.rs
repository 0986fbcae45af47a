//! The Keyferry broker: the `keyferry` server and its command line.
//!
//! # Layout
//! - `config`: `keyferry.toml` + environment + flags, and the profile rules.
//! - `storage`: the [`Store`](storage::Store) over SQLite or PostgreSQL.
//! - `http`: the router, the middleware every request passes, health and
//!   metrics endpoints.
//! - `issuer`: the broker's own OIDC issuer: signing keys (wrapped, rotated
//!   under a database lock), discovery and JWKS.
//! - `federation`: trusted issuers, `POST /v1/token` (RFC 8693), and the
//!   `Caller` extractor for the credentials it issues.
//! - `operator`: operator authentication, the `Operator<Role>` extractor.
//! - `rate_limit`: per-identity limits, in memory or shared in the database.
//! - `admin`: the onboarding handlers.
//! - `governance`: M-of-N approval of release policies and membership.
//! - `audit`: the `Audit` interface every audited decision goes through.
//! - `lifecycle`: key generation, splits, the Type-1 → Type-2 handover,
//!   public key endpoints and key administration.
//! - `distribution`: the Privacy Sandbox key endpoints and attested
//!   release: who may have which key's split, in which form.
//! - `kek`: opening the workload clouds' KEKs, with the broker's own
//!   identity for outbound federation.
//! - `error`: [`Error`], the one error type, and its problem+json rendering.
//! - `bearer`: the one reader of `Authorization: Bearer` headers.
//! - `state`: [`AppState`], what handlers share.
//! - `secrets`: coordinator secrets, wrapped by the storage KEK at rest.
//! - `server`: start, serve (plain or TLS), graceful shutdown.
//! - `telemetry`: structured JSON logs.
//! - `time`: Unix-millisecond time, the lowest layer (names no other module).
//! - `files`: secret files, mode 0600, written atomically (low layer too).
//! - `bench`: `keyferry bench` measurements.
//! - `demo`: `keyferry demo`, the whole flow on loopback in one process.
//! - `cli`: the `keyferry` subcommands; `main.rs` only calls it.
//! - `testing`: throwaway databases for tests (hidden from docs).

pub mod admin;
pub mod audit;
pub mod bearer;
pub mod bench;
pub mod cli;
pub use keyferry_config as config;
pub mod demo;
pub mod distribution;
mod error;
pub mod federation;
mod files;
pub mod governance;
pub mod http;
pub mod issuer;
pub mod kek;
pub mod lifecycle;
pub mod operator;
mod rate_limit;
pub mod secrets;
pub mod server;
mod state;
pub mod storage;
pub mod telemetry;
#[doc(hidden)]
pub mod testing;
pub mod time;

pub use error::{Error, Problem};
pub use state::AppState;
