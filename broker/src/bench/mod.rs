//! `keyferry bench …`: measurements, not tests (DESIGN §10).
//!
//! # Layout
//! - `audit_log`: the transparency log in process (`bench audit-log`).
//! - `http`: the request scenarios (`token-exchange`, `public-keys`,
//!   `recent-keys`, `attested-release`) against a broker on loopback, each
//!   next to the crypto-bound ceiling of the same work measured in the same
//!   run on the same machine.
//! - `fixture`: the loopback broker, issuer, ad tech and simulated attester
//!   those scenarios need.

mod audit_log;
mod fixture;
mod http;

use std::time::Duration;

pub use audit_log::audit_log;
pub use http::{Scenario, run_scenario};

/// Latency percentiles (p50, p99) of a sample, in microseconds.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    (at(0.50), at(0.99))
}
