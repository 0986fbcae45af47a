//! The `Caller<Scope>` extractor every workload endpoint takes, driven with
//! `oneshot` on a moved clock.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use idp::{AccessTokenClaims, Clock, IssuerKind, ManualClock, RotationPolicy};
use keyferry::federation::{Caller, KeysRead};
use keyferry::issuer::Issuer;
use tower::ServiceExt;

/// Just the broker's issuer: the extractor is generic over the router's
/// state and needs nothing else (no broker is built).
async fn open_issuer(clock: &ManualClock) -> (Arc<Issuer>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/kf.db", dir.path().display());
    let store = keyferry::storage::Store::connect(&db, 2)
        .await
        .expect("store");
    let kek = Arc::new(
        cloud_adapters::LocalKek::open_or_create(&dir.path().join("keks"), "storage")
            .await
            .expect("kek"),
    );
    let issuer = Issuer::open(
        "http://127.0.0.1:8080".into(),
        store,
        kek,
        Arc::new(clock.clone()),
        RotationPolicy::default(),
    )
    .await
    .expect("issuer");
    (issuer, dir)
}

fn app(issuer: Arc<Issuer>) -> Router {
    Router::new()
        .route(
            "/protected",
            get(|caller: Caller<KeysRead>| async move { caller.credential.adtech().to_owned() }),
        )
        .with_state(issuer)
}

fn claims(audience: &str, scopes: &[&str]) -> AccessTokenClaims {
    idp::danger::UncheckedClaims {
        adtech: "acme".into(),
        client_id: "m-1".into(),
        audience: audience.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        cloud: IssuerKind::Gcp,
        src_iss: "https://accounts.google.com".into(),
        src_sub: "112233445566778899001".into(),
        ttl: Duration::from_secs(3600),
    }
    .into()
}

async fn call(app: &Router, token: Option<&str>) -> (StatusCode, String, serde_json::Value) {
    let mut request = Request::get("/protected");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("call");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::String(
        String::from_utf8_lossy(&body).into(),
    ));
    (status, challenge, json)
}

#[tokio::test]
async fn only_a_live_credential_with_the_scope_reaches_the_handler() {
    let clock = ManualClock::starting_now();
    let (broker_issuer, _dir) = open_issuer(&clock).await;
    let issuer = broker_issuer.current();
    let audience = issuer.issuer().to_owned();
    let app = app(broker_issuer.clone());

    let good = issuer
        .mint_access_token(clock.now(), &claims(&audience, &["keys:read"]))
        .expect("mint");
    let (status, _, body) = call(&app, Some(good.as_str())).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, Some("acme")));

    let (status, challenge, body) = call(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge, "Bearer error=\"invalid_token\"");
    assert_eq!(body["details"][0]["reason"], "UNAUTHENTICATED");
    assert_eq!(body["code"], 16, "UNAUTHENTICATED: {body}");

    let release_only = issuer
        .mint_access_token(clock.now(), &claims(&audience, &["keys:release"]))
        .expect("mint");
    let (status, challenge, body) = call(&app, Some(release_only.as_str())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(challenge, "Bearer error=\"insufficient_scope\"");
    assert_eq!(body["details"][0]["reason"], "PERMISSION_DENIED");

    let elsewhere = issuer
        .mint_access_token(
            clock.now(),
            &claims("https://other.example", &["keys:read"]),
        )
        .expect("mint");
    assert_eq!(
        call(&app, Some(elsewhere.as_str())).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, Some("garbage")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let mut tampered = good.as_str().to_owned();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert_eq!(
        call(&app, Some(&tampered)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // A credential from another broker (another key, same claims) is refused.
    let other_clock = ManualClock::starting_now();
    let (other, _other_dir) = open_issuer(&other_clock).await;
    let foreign = other
        .current()
        .mint_access_token(other_clock.now(), &claims(&audience, &["keys:read"]))
        .expect("mint");
    assert_eq!(
        call(&app, Some(foreign.as_str())).await.0,
        StatusCode::UNAUTHORIZED
    );

    clock.advance(Duration::from_secs(3600 + 120));
    let (status, _, body) = call(&app, Some(good.as_str())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}
