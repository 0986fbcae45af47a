//! The HTTP surface: one [`app`] that merges each feature's `router()` and
//! wraps them in the middleware every request passes through.
//!
//! Middleware, outermost first: request id (set, or kept from the client's
//! `x-request-id` when it is short and plain), a tracing span carrying that id (so every log line of the
//! request has it), metrics, error normalisation (framework-made errors such
//! as 404/405/413 become problem+json, or the Privacy Sandbox error body on
//! the key API's paths), panic catching, the request
//! deadline (408 when the client was slow, 503 when the broker was: see
//! `deadline`), and the body limit.

mod deadline;
mod extract;
mod health;
pub(crate) mod metrics;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use extract::{ApiJson, ApiQuery};
pub use health::KekProbes;
pub use metrics::{ConnectionMetrics, KmsMetrics, Metrics};

use crate::config::MetricsAccess;
use crate::error::Problem;
use crate::operator::{Operator, ReaderRole};
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: routes plus middleware, ready to serve.
pub fn app(state: AppState) -> Router {
    let server = &state.config.server;
    let (body_limit, timeout) = (server.body_limit, server.request_timeout);
    let metrics = state.metrics.clone();
    // Each `layer` wraps everything above it, so read the stack bottom-up:
    // the request id is set first, the body limit applied last.
    Router::new()
        .merge(health::router())
        .merge(crate::issuer::router())
        .merge(crate::federation::router())
        .merge(crate::admin::router())
        .merge(crate::lifecycle::router())
        .merge(crate::distribution::router())
        .merge(crate::governance::router())
        .merge(crate::audit::router())
        .merge(metrics_route(state.config.server.metrics))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(middleware::from_fn_with_state(timeout, deadline::deadline))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
            .into_response()
        }))
        .layer(middleware::from_fn(problem_for_framework_errors))
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::from_fn(drop_unusable_request_id))
}

/// `GET /metrics` on the main listener, as `server.metrics` says.
fn metrics_route(access: MetricsAccess) -> Router<AppState> {
    match access {
        MetricsAccess::Open => Router::new().route("/metrics", get(metrics::render)),
        MetricsAccess::Operator => Router::new().route("/metrics", get(metrics_for_operator)),
        MetricsAccess::Listener => Router::new(),
    }
}

/// `GET /metrics` with `server.metrics = "operator"`: for auditors and admins.
async fn metrics_for_operator(
    _reader: Operator<ReaderRole>,
    metrics: axum::extract::State<std::sync::Arc<Metrics>>,
) -> Response {
    metrics::render(metrics).await
}

/// The router of the separate metrics listener (`server.metrics_listen`):
/// `/metrics` and nothing else.
pub fn metrics_app(metrics: std::sync::Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .with_state(metrics)
}

/// Longest `x-request-id` kept from a client.
const MAX_REQUEST_ID: usize = 64;

/// Longest part of a request path written into log lines.
const MAX_LOGGED_PATH: usize = 256;

/// A client's `x-request-id` is kept only if it is short and plain
/// (`[A-Za-z0-9._:-]`, at most [`MAX_REQUEST_ID`]); otherwise it is
/// dropped and the broker makes one. The id goes into every log line of the
/// request and back in the response, so a long or odd one would multiply
/// into the logs (and could forge log structure).
async fn drop_unusable_request_id(mut req: Request, next: Next) -> Response {
    let usable = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(b))
    };
    let values = req.headers().get_all(REQUEST_ID);
    let keep = values.iter().count() == 1 && values.iter().all(usable);
    if !keep {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

/// The span every log line of a request is recorded in. Its fields come
/// from the client, so each is bounded: the request id by
/// [`drop_unusable_request_id`], the path cut at [`MAX_LOGGED_PATH`] bytes
/// (a URI path is ASCII), an unknown method logged as `other`.
fn request_span(req: &Request) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let path = req.uri().path();
    let (path, cut) = match path.get(..MAX_LOGGED_PATH) {
        Some(head) if head.len() < path.len() => (head, path.len()),
        _ => (path, 0),
    };
    let method = match req.method().as_str() {
        m if m.len() <= 16 => m,
        _ => "other",
    };
    if cut > 0 {
        tracing::info_span!("request", request_id = %id, method, path, path_len = cut)
    } else {
        tracing::info_span!("request", request_id = %id, method, path)
    }
}

async fn not_found() -> crate::Error {
    crate::Error::NotFound("no such route".into())
}

/// Errors made by the framework or middleware (405 from the router, 413
/// from the body limit, text rejections from axum's
/// extractors) carry no body or plain text. Rewrite them as problem+json so
/// that every error a client sees has the same shape. Responses that are
/// already JSON (ours, and the OAuth and Privacy Sandbox formats) pass
/// through untouched.
///
/// On the key API's paths every error is the Privacy Sandbox `ErrorResponse`
/// instead (docs/keys.md), the middleware's problem+json ones (a request
/// deadline, a panic) included, since the key fetchers read no other shape.
async fn problem_for_framework_errors(req: Request, next: Next) -> Response {
    let key_api = is_key_api(req.uri().path());
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if key_api && content_type != "application/json" {
        return key_api_error(response).await;
    }
    let is_json = content_type.starts_with("application/") && content_type.contains("json");
    if is_json {
        return response;
    }
    let (code, detail) = framework_error(status);
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut problem = Problem::new(status, code, detail).into_response();
    if let Some(allow) = allow {
        problem.headers_mut().insert(header::ALLOW, allow);
    }
    problem
}

/// The code and detail of an error the framework made with no body of ours.
fn framework_error(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "method not allowed for this route")
        }
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type")
        }
        s if s.is_client_error() => ("bad_request", "the request could not be processed"),
        _ => ("internal", "internal error"),
    }
}

/// The key endpoints (DESIGN §5.2–5.3), whose errors are `ErrorResponse`s;
/// not the peer's handover (`POST /v1alpha/encryptionKeys`), which answers
/// problem+json.
fn is_key_api(path: &str) -> bool {
    path.starts_with("/v1alpha/encryptionKeys/")
        || path.starts_with("/v1alpha/encryptionKeys:")
        || path == "/v1/encryptionKeys:release"
        || path == "/v1/attestation/challenge"
}

/// `response`, an error the framework or a middleware made on a key API
/// path, as an `ErrorResponse` with the same status and `Allow` and
/// `Retry-After`. A problem+json body lends its code (upper-cased, as the
/// key API's reasons are) and detail; a body of the framework's is named as
/// [`framework_error`] names it.
async fn key_api_error(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    // What is rewritten here is the broker's own small body; the limit only
    // keeps a mistake from reading a large one.
    let problem = axum::body::to_bytes(body, 64 * 1024)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    let member = |name| {
        problem
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(serde_json::Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let (code, detail) = match (member("code"), member("detail")) {
        (Some(code), Some(detail)) => (code, detail),
        _ => framework_error(status),
    };
    let body = wire::KeyApiErrorBody::new(status.as_u16(), &code.to_ascii_uppercase(), detail);
    let mut rewritten = (status, axum::Json(body)).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            rewritten.headers_mut().insert(name, value.clone());
        }
    }
    rewritten
}

/// `Cache-Control: no-store`, for responses that carry credentials.
pub fn no_store() -> (HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}
