//! Prometheus metrics: request counts and latencies by route.
//!
//! Each broker instance owns a [`Metrics`] registry (no process-global
//! recorder), so tests can run several brokers in one process and read each
//! one's numbers.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KmsLabels {
    kek: &'static str,
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KmsErrorLabels {
    kek: &'static str,
    op: &'static str,
    kind: &'static str,
}

/// The broker's metric registry and the handles the middleware updates.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    token_decisions: Family<DecisionLabels, Counter>,
    kms: KmsMetrics,
    attestation_failures: Family<ReasonLabels, Counter>,
    connections: ConnectionMetrics,
}

/// Open and refused connections (`server.max_connections`). Cloning shares
/// the same series.
#[derive(Clone, Debug, Default)]
pub struct ConnectionMetrics {
    /// Connections being served now.
    pub open: Gauge,
    /// Connections closed on arrival because the limit was reached.
    pub refused: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// KMS call latency and errors by KEK (`storage`, `aws`, `gcp`, `azure`)
/// and operation (`wrap`, `unwrap`). Cloning shares the same series.
#[derive(Clone, Debug)]
pub struct KmsMetrics {
    latency: Family<KmsLabels, Histogram>,
    errors: Family<KmsErrorLabels, Counter>,
}

impl KmsMetrics {
    /// Records one KMS call: its latency, and its error kind if it failed.
    pub fn observe(
        &self,
        kek: &'static str,
        op: &'static str,
        elapsed: std::time::Duration,
        error: Option<&'static str>,
    ) {
        self.latency
            .get_or_create(&KmsLabels { kek, op })
            .observe(elapsed.as_secs_f64());
        if let Some(kind) = error {
            self.errors
                .get_or_create(&KmsErrorLabels { kek, op, kind })
                .inc();
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the HTTP metrics registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("keyferry");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        // 0.5 ms .. ~8 s
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route",
            latency.clone(),
        );
        let token_decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "token_decisions",
            "Token exchange decisions by outcome and reason",
            token_decisions.clone(),
        );
        // 1 ms .. ~16 s: a KMS call crosses the internet and may retry.
        let kms_latency = Family::<KmsLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "kms_call_duration_seconds",
            "KMS wrap/unwrap latency by KEK and operation, retries included",
            kms_latency.clone(),
        );
        let kms_errors = Family::<KmsErrorLabels, Counter>::default();
        registry.register(
            "kms_errors",
            "Failed KMS calls by KEK, operation and error kind",
            kms_errors.clone(),
        );
        let attestation_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "attestation_failures",
            "Refused attested releases by reason",
            attestation_failures.clone(),
        );
        let connections = ConnectionMetrics::default();
        registry.register(
            "http_connections_open",
            "Connections being served",
            connections.open.clone(),
        );
        registry.register(
            "http_connections_refused",
            "Connections closed on arrival: server.max_connections were open",
            connections.refused.clone(),
        );
        Metrics {
            attestation_failures,
            connections,
            registry,
            requests,
            latency,
            token_decisions,
            kms: KmsMetrics {
                latency: kms_latency,
                errors: kms_errors,
            },
        }
    }

    /// Counts one refused attested release by its reason code.
    pub fn attestation_failure(&self, reason: &'static str) {
        self.attestation_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The connection metrics, for the server's connection limit.
    pub fn connections(&self) -> ConnectionMetrics {
        self.connections.clone()
    }

    /// The KMS call metrics, for [`crate::kek::MeteredKek`].
    pub fn kms(&self) -> KmsMetrics {
        self.kms.clone()
    }

    /// The registry, for other modules to register their metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Counts one token-exchange decision (`allow`/`deny`) and its reason.
    pub fn token_decision(&self, decision: &'static str, reason: &'static str) {
        self.token_decisions
            .get_or_create(&DecisionLabels { decision, reason })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Middleware: counts every request and observes its latency.
///
/// Every label has a fixed set of values, whatever the client sends: each
/// new label set is a series kept for the life of the process (memory, and
/// bytes in every `/metrics` answer), so a label copied from the request
/// would let anyone grow the broker without bound. The route is the
/// matched pattern (`/v1/admin/adtechs/{id}`), or `unmatched`, never the
/// raw path; the method is one of [`method_label`]'s; the status is a
/// number below 1000.
pub(crate) async fn track(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    metrics
        .latency
        .get_or_create(&LatencyLabels {
            method,
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The methods HTTP defines (RFC 9110 §9, and PATCH) by name; any other
/// (clients may invent them) is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// `GET /metrics`
pub(crate) async fn render(State(metrics): State<Arc<Metrics>>) -> Response {
    let mut response = metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
