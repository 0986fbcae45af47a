//! `keyferry bench audit-log`: the transparency log in process: append
//! throughput with group commit (many concurrent appenders, as concurrent
//! requests are), then inclusion and consistency proof latency at the final
//! size.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::percentiles;
use crate::audit::{Audit, AuditEvent, EventKind, TransparencyLog};
use crate::storage::Store;

/// Runs the audit-log benchmark; prints a report (JSON with `json`).
pub async fn audit_log(
    storage_url: &str,
    entries: u64,
    concurrency: u64,
    json_out: bool,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(storage_url, 10).await?;
    let kek: Arc<dyn cloud_adapters::KeyWrapper> =
        Arc::new(cloud_adapters::LocalKek::open_or_create(dir.path(), "bench").await?);
    let clock: Arc<dyn idp::Clock> = Arc::new(idp::SystemClock);
    let log = TransparencyLog::open(store.clone(), kek, clock).await?;
    let start_size = u64::try_from(store.audit_size().await?).unwrap_or(0);

    let started = Instant::now();
    let per_worker = entries.div_ceil(concurrency.max(1));
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..per_worker {
                    let event = AuditEvent::new(
                        EventKind::KeysFetched,
                        "bench",
                        json!({"worker": w, "i": i}),
                    );
                    log.record(0, event).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    let append_secs = started.elapsed().as_secs_f64();
    let appended = per_worker * concurrency.max(1);
    let size = start_size + appended;

    let sth_started = Instant::now();
    let sth = log.sth().await?;
    let sth_ms = sth_started.elapsed().as_secs_f64() * 1e3;

    let mut inclusion = Vec::new();
    let mut consistency = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..1000 {
        // xorshift: cheap, reproducible sample points.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % size;
        let t = Instant::now();
        log.inclusion_proof(index, size).await?;
        inclusion.push(t.elapsed());
        let t = Instant::now();
        log.consistency_proof(index.max(1), size).await?;
        consistency.push(t.elapsed());
    }
    let (inc50, inc99) = percentiles(inclusion);
    let (con50, con99) = percentiles(consistency);
    let report = json!({
        "scenario": "audit-log",
        "storage": if storage_url.starts_with("sqlite") { "sqlite" } else { "postgres" },
        "appended": appended,
        "concurrency": concurrency,
        "treeSize": sth.tree_size,
        "appendsPerSecond": (appended as f64 / append_secs).round(),
        "signHeadMs": (sth_ms * 100.0).round() / 100.0,
        "inclusionProofMicros": {"p50": inc50.round(), "p99": inc99.round()},
        "consistencyProofMicros": {"p50": con50.round(), "p99": con99.round()},
    });
    if json_out {
        println!("{report}");
    } else {
        println!(
            "audit-log on {} ({} appended by {} concurrent writers, tree size {})",
            report["storage"], appended, concurrency, sth.tree_size
        );
        println!("  appends/s          {}", report["appendsPerSecond"]);
        println!("  sign tree head     {} ms", report["signHeadMs"]);
        println!(
            "  inclusion proof    p50 {} µs  p99 {} µs",
            inc50.round(),
            inc99.round()
        );
        println!(
            "  consistency proof  p50 {} µs  p99 {} µs",
            con50.round(),
            con99.round()
        );
    }
    store.close().await;
    Ok(())
}
