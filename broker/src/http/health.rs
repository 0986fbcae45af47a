//! Liveness and readiness.
//!
//! `/healthz` says the process serves HTTP. `/readyz` says it can do its
//! job: the database answers and the storage KEK wraps and unwraps. Load
//! balancers route only to ready replicas.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let (database, storage_kek) = tokio::join!(state.store.ping(), state.storage_kek.probe());
    let clouds = probe_cloud_keks(&state).await;
    let mut ready = true;
    let mut check = |name: &str, result: Result<(), String>| match result {
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
        json!(check("database", database.map_err(|e| e.to_string()))),
    );
    checks.insert(
        "storage_kek".into(),
        json!(check("storage_kek", storage_kek.map_err(|e| e.to_string()))),
    );
    for (name, result) in clouds {
        let key = format!("kek_{name}");
        let status = check(&key, result);
        checks.insert(key, json!(status));
    }
    let body = json!({ "checks": checks });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = body;
    body["status"] = json!(if ready { "ready" } else { "not_ready" });
    (status, Json(body)).into_response()
}

/// Probes every workload cloud's KEK, one after another (there are at
/// most three), with an encryption only: the coordinator holds no Decrypt
/// permission on them.
async fn probe_cloud_keks(state: &AppState) -> Vec<(&'static str, Result<(), String>)> {
    let probes = state.cloud_keks.iter().map(|(name, kek)| {
        let kek = kek.clone();
        let name = name.as_str();
        async move { (name, kek.probe_wrap().await.map_err(|e| e.to_string())) }
    });
    let mut out = Vec::new();
    for probe in probes {
        out.push(probe.await);
    }
    out
}
