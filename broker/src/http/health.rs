//! Liveness and readiness.
//!
//! `/healthz` says the process serves HTTP. `/readyz` says it can do its
//! job: the database answers and the storage KEK wraps and unwraps, and
//! each workload cloud's KEK wraps. Load balancers route only to ready
//! replicas.
//!
//! `/readyz` is unauthenticated and probed every few seconds by every load
//! balancer, while a KEK probe is a billed, rate-limited call to a cloud
//! KMS: [`KekProbes`] keeps the KEKs' last results for
//! `server.readiness_kek_interval` and runs one round of probes at a time,
//! whatever the number of callers. The database is pinged on every call.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cloud_adapters::{Cloud, KeyWrapper};
use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::state::AppState;

/// A failed probe is retried sooner than a good one is repeated: readiness
/// should come back soon after the KMS does.
const FAILED_PROBE_REUSE: Duration = Duration::from_secs(5);

/// Each KEK's last probe result, shared by every `/readyz` caller.
pub struct KekProbes {
    storage_kek: Arc<dyn KeyWrapper>,
    cloud_keks: Vec<(Cloud, Arc<dyn KeyWrapper>)>,
    interval: Duration,
    last: Mutex<Option<(Instant, Arc<KekResults>)>>,
}

/// One round of probes: the storage KEK's, then each cloud's by name.
#[derive(Debug)]
struct KekResults {
    storage_kek: Result<(), String>,
    clouds: Vec<(&'static str, Result<(), String>)>,
}

impl KekResults {
    fn all_ok(&self) -> bool {
        self.storage_kek.is_ok() && self.clouds.iter().all(|(_, r)| r.is_ok())
    }
}

impl std::fmt::Debug for KekProbes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KekProbes")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl KekProbes {
    /// Probes `storage_kek` (wrap and unwrap) and each cloud KEK (wrap
    /// only: the coordinator holds no Decrypt permission on them), keeping
    /// good results for `interval`.
    pub fn new(
        storage_kek: Arc<dyn KeyWrapper>,
        cloud_keks: Vec<(Cloud, Arc<dyn KeyWrapper>)>,
        interval: Duration,
    ) -> Self {
        Self {
            storage_kek,
            cloud_keks,
            interval,
            last: Mutex::new(None),
        }
    }

    /// The current results: the kept ones while fresh, else a new round.
    /// Callers that arrive during a round wait for it and share it.
    async fn results(&self) -> Arc<KekResults> {
        let mut last = self.last.lock().await;
        if let Some((at, results)) = last.as_ref() {
            let reuse = if results.all_ok() {
                self.interval
            } else {
                self.interval.min(FAILED_PROBE_REUSE)
            };
            if at.elapsed() < reuse {
                return results.clone();
            }
        }
        let results = Arc::new(self.probe().await);
        *last = Some((Instant::now(), results.clone()));
        results
    }

    async fn probe(&self) -> KekResults {
        let storage_kek = self.storage_kek.probe().await.map_err(|e| e.to_string());
        // One after another: there are at most three.
        let mut clouds = Vec::with_capacity(self.cloud_keks.len());
        for (cloud, kek) in &self.cloud_keks {
            clouds.push((
                cloud.as_str(),
                kek.probe_wrap().await.map_err(|e| e.to_string()),
            ));
        }
        KekResults {
            storage_kek,
            clouds,
        }
    }
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let (database, keks) = tokio::join!(state.store.ping(), state.kek_probes.results());
    let mut ready = true;
    let mut check = |name: &str, result: &Result<(), String>| match result {
        Ok(()) => "ok".to_owned(),
        Err(detail) => {
            ready = false;
            tracing::warn!(check = name, %detail, "readiness check failed");
            "unavailable".to_owned()
        }
    };
    let mut checks = serde_json::Map::new();
    checks.insert(
        "database".into(),
        json!(check("database", &database.map_err(|e| e.to_string()))),
    );
    checks.insert(
        "storage_kek".into(),
        json!(check("storage_kek", &keks.storage_kek)),
    );
    for (name, result) in &keks.clouds {
        let key = format!("kek_{name}");
        let status = check(&key, result);
        checks.insert(key, json!(status));
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": checks,
    });
    (status, Json(body)).into_response()
}
