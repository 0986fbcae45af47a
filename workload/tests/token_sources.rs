//! Token sources against a tiny local HTTP server standing in for the GCP metadata server and
//! Azure IMDS (a test double: it answers only the two documented endpoints, and only when the
//! required metadata header is present, as the real servers do).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use url::Url;
use workload::{
    AzureImdsTokenSource, FileTokenSource, GcpMetadataTokenSource, TokenSource, WorkloadError,
};

/// Each request's endpoint and query parameters, in arrival order.
type Requests = Vec<(String, HashMap<String, String>)>;

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Requests>>);

async fn gcp_identity(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    seen.0
        .lock()
        .expect("lock")
        .push(("gcp".into(), query.clone()));
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor:Google header",
        )
            .into_response();
    }
    format!(
        "gcp-jwt-for-{}",
        query.get("audience").cloned().unwrap_or_default()
    )
    .into_response()
}

async fn azure_token(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    seen.0
        .lock()
        .expect("lock")
        .push(("azure".into(), query.clone()));
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "invalid_request", "error_description": "Required metadata header not specified"})),
        )
            .into_response();
    }
    axum::Json(serde_json::json!({
        "access_token": format!("azure-jwt-for-{}", query.get("resource").cloned().unwrap_or_default()),
        "expires_in": "3599",
        "token_type": "Bearer",
    }))
    .into_response()
}

async fn serve() -> (Url, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/computeMetadata/v1/instance/service-accounts/default/identity",
            get(gcp_identity),
        )
        .route("/metadata/identity/oauth2/token", get(azure_token))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (Url::parse(&format!("http://{addr}")).expect("url"), seen)
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn gcp_metadata_sends_the_flavor_header_audience_and_full_format() {
    let (base, seen) = serve().await;
    let source = GcpMetadataTokenSource::new(base, TIMEOUT).expect("source");
    let token = source
        .token("https://coordinator-a.example.com")
        .await
        .expect("token");
    assert_eq!(
        token.expose(),
        "gcp-jwt-for-https://coordinator-a.example.com"
    );
    let seen = seen.0.lock().expect("lock");
    let (_, query) = &seen[0];
    assert_eq!(query["audience"], "https://coordinator-a.example.com");
    assert_eq!(query["format"], "full");
    assert!(
        !format!("{token:?}").contains("gcp-jwt"),
        "Debug must not print the token"
    );
}

#[tokio::test]
async fn azure_imds_sends_the_metadata_header_api_version_resource_and_client_id() {
    let (base, seen) = serve().await;
    let source = AzureImdsTokenSource::new(
        base,
        Some("11111111-2222-3333-4444-555555555555".into()),
        TIMEOUT,
    )
    .expect("source");
    let token = source.token("api://keyferry-a").await.expect("token");
    assert_eq!(token.expose(), "azure-jwt-for-api://keyferry-a");
    let seen = seen.0.lock().expect("lock");
    let (_, query) = &seen[0];
    assert_eq!(query["api-version"], "2018-02-01");
    assert_eq!(query["resource"], "api://keyferry-a");
    assert_eq!(query["client_id"], "11111111-2222-3333-4444-555555555555");
}

#[tokio::test]
async fn a_metadata_error_is_reported_without_the_body() {
    let (base, _) = serve().await;
    // A base URL with a path that does not exist on the double: 404.
    let source =
        GcpMetadataTokenSource::new(base.join("nowhere/").expect("url"), TIMEOUT).expect("source");
    let err = source.token("aud").await.expect_err("refused");
    assert!(
        matches!(
            err,
            WorkloadError::Token {
                source_kind: "gcp-metadata",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn the_file_source_rereads_the_file_on_each_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("token");
    std::fs::write(&path, "first-token\n").expect("write");
    let source = FileTokenSource::new(path.clone());
    assert_eq!(
        source.token("ignored").await.expect("token").expose(),
        "first-token"
    );
    std::fs::write(&path, "rotated-token").expect("write");
    assert_eq!(
        source.token("ignored").await.expect("token").expose(),
        "rotated-token"
    );
    std::fs::write(&path, "  \n").expect("write");
    assert!(
        source.token("ignored").await.is_err(),
        "an empty token is refused"
    );
}
