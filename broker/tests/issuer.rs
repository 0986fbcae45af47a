//! The broker as an OIDC issuer: documents, keys at rest, rotation, replicas.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cloud_adapters::{KeyWrapper, LocalKek};
use common::{Broker, Serve};
use idp::{Clock, IssuerKind, ManualClock, RotationPolicy, SigningKey};
use keyferry::issuer::Issuer;
use keyferry::storage::Store;

const URL: &str = "https://coordinator-a.example.com";

async fn kek(dir: &std::path::Path) -> Arc<dyn KeyWrapper> {
    Arc::new(LocalKek::open_or_create(dir, "storage").await.expect("kek"))
}

async fn open(store: &Store, kek: &Arc<dyn KeyWrapper>, clock: &ManualClock) -> Arc<Issuer> {
    Issuer::open(
        URL.into(),
        store.clone(),
        kek.clone(),
        Arc::new(clock.clone()),
        RotationPolicy::default(),
    )
    .await
    .expect("issuer")
}

fn kids(doc: &serde_json::Value) -> Vec<String> {
    let mut kids: Vec<String> = doc["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    kids.sort();
    kids
}

#[tokio::test]
async fn discovery_and_jwks_are_served_with_cache_headers() {
    let broker = Broker::builder()
        .serve(Serve::Server)
        .tweak(|config| {
            config.server.public_url = Some("http://127.0.0.1:18080".parse().expect("url"));
        })
        .start_sqlite()
        .await;
    let (base, client) = (&broker.base, &broker.client);

    let response = client
        .get(format!("{base}/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery");
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let doc: serde_json::Value = response.json().await.expect("json");
    assert_eq!(doc["issuer"], "http://127.0.0.1:18080");
    assert_eq!(
        doc["jwks_uri"],
        "http://127.0.0.1:18080/.well-known/jwks.json"
    );
    assert_eq!(doc["token_endpoint"], "http://127.0.0.1:18080/v1/token");
    assert_eq!(
        doc["response_types_supported"],
        serde_json::json!(["id_token"])
    );
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["ES256"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["urn:ietf:params:oauth:grant-type:token-exchange"])
    );

    let response = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let jwks: serde_json::Value = response.json().await.expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    // The current key and its pre-published successor.
    assert_eq!(keys.len(), 2, "{jwks}");
    for key in keys {
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["alg"], "ES256");
        assert_eq!(key["use"], "sig");
        assert!(key.get("d").is_none(), "private part published: {key}");
    }
}

async fn keys_are_stored_wrapped_and_survive_a_restart(store: &Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek = kek(dir.path()).await;
    let clock = ManualClock::starting_now();
    let first = open(store, &kek, &clock).await;
    let published = kids(&first.current().jwks_document(clock.now()));

    let rows = store.signing_keys().await.expect("rows");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.kek_uri, "local-kek://storage");
        let pkcs8 = kek
            .unwrap(&row.wrapped_key)
            .await
            .expect("unwraps with the storage KEK");
        let key = SigningKey::from_pkcs8(&pkcs8, SystemTime::now(), SystemTime::now(), None)
            .expect("PKCS#8");
        assert_eq!(key.kid(), row.kid);
        assert!(
            !row.wrapped_key
                .windows(pkcs8.len())
                .any(|w| w == pkcs8.as_slice()),
            "plaintext key at rest"
        );
    }

    let restarted = open(store, &kek, &clock).await;
    assert_eq!(
        kids(&restarted.current().jwks_document(clock.now())),
        published
    );
    assert_eq!(
        store.signing_keys().await.expect("rows").len(),
        2,
        "no new keys on restart"
    );
}

async fn tokens_signed_before_a_rotation_verify_until_they_expire(store: &Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek = kek(dir.path()).await;
    let clock = ManualClock::starting_now();
    let issuer = open(store, &kek, &clock).await;
    let claims: idp::AccessTokenClaims = idp::danger::UncheckedClaims {
        adtech: "acme".into(),
        client_id: "m-1".into(),
        audience: URL.into(),
        scopes: vec!["keys:read".into()],
        cloud: IssuerKind::Gcp,
        src_iss: "https://accounts.google.com".into(),
        src_sub: "123456789012345678901".into(),
        ttl: Duration::from_secs(3600),
    }
    .into();

    let mut signers = Vec::new();
    for _ in 0..3 {
        // Just before the pre-published successor takes over, a token is
        // signed that outlives the switch.
        let successor = issuer
            .current()
            .keys()
            .keys()
            .iter()
            .map(SigningKey::not_before)
            .filter(|t| *t > clock.now())
            .max()
            .expect("a pre-published successor");
        clock.set(successor - Duration::from_secs(60));
        issuer.refresh().await.expect("refresh");
        let token = issuer
            .current()
            .mint_access_token(clock.now(), &claims)
            .expect("mint");
        signers.push(token.kid().to_owned());

        clock.set(successor + Duration::from_secs(60));
        issuer.refresh().await.expect("refresh");
        let verifier = issuer.current().credential_verifier(clock.now());
        let verified = verifier
            .verify(token.as_str(), URL, "keys:read", clock.now())
            .expect("still verifies after the successor took over");
        assert_eq!(verified.adtech(), "acme");
        let next = issuer
            .current()
            .mint_access_token(clock.now(), &claims)
            .expect("mint");
        assert_ne!(next.kid(), token.kid(), "the successor signs now");

        clock.advance(Duration::from_secs(3600));
        issuer.refresh().await.expect("refresh");
        let verifier = issuer.current().credential_verifier(clock.now());
        assert!(
            verifier
                .verify(token.as_str(), URL, "keys:read", clock.now())
                .is_err(),
            "expired"
        );
    }
    signers.dedup();
    assert_eq!(signers.len(), 3, "each period had its own key");
    // Old keys are removed from storage once no token they signed can be live.
    assert!(store.signing_keys().await.expect("rows").len() <= 3);
}

async fn replicas_starting_together_agree_on_one_key_set(store: &Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let kek = kek(dir.path()).await;
    let clock = ManualClock::starting_now();
    let replicas = futures_join(store, &kek, &clock).await;
    let first = kids(&replicas[0].current().jwks_document(clock.now()));
    for replica in &replicas {
        replica.refresh().await.expect("refresh");
        assert_eq!(kids(&replica.current().jwks_document(clock.now())), first);
    }
    assert_eq!(store.signing_keys().await.expect("rows").len(), 2);
}

async fn futures_join(
    store: &Store,
    kek: &Arc<dyn KeyWrapper>,
    clock: &ManualClock,
) -> Vec<Arc<Issuer>> {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, kek, clock) = (store.clone(), kek.clone(), clock.clone());
            tokio::spawn(async move { open(&store, &kek, &clock).await })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("task"));
    }
    out
}

keyferry::on_both_backends!(
    keys_are_stored_wrapped_and_survive_a_restart,
    tokens_signed_before_a_rotation_verify_until_they_expire,
    replicas_starting_together_agree_on_one_key_set,
);
