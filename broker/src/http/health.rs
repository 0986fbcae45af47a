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
    let mut ready = true;
    let mut check = |name: &str, result: Result<(), String>| match result {
        Ok(()) => "ok".to_owned(),
        Err(detail) => {
            ready = false;
            tracing::warn!(check = name, %detail, "readiness check failed");
            "unavailable".to_owned()
        }
    };
    let body = json!({
        "checks": {
            "database": check("database", database.map_err(|e| e.to_string())),
            "storage_kek": check("storage_kek", storage_kek.map_err(|e| e.to_string())),
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = body;
    body["status"] = json!(if ready { "ready" } else { "not_ready" });
    (status, Json(body)).into_response()
}
