//! The broker as a client sees it: a real server on a loopback port.

mod common;

use std::time::Duration;

use common::{Broker, Serve};
use serde_json::Value;

/// A dev broker on the production start path.
async fn start() -> Broker {
    Broker::builder().serve(Serve::Server).start_sqlite().await
}

fn client() -> reqwest::Client {
    test_support::install_crypto_provider();
    reqwest::Client::new()
}

/// The broker's `/metrics` body (open access).
async fn metrics_text(broker: &Broker) -> String {
    client()
        .get(format!("{}/metrics", broker.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json", "status {status}");
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status);
    (status, body)
}

#[tokio::test]
async fn a_fresh_dev_broker_is_ready_with_database_and_kek_checked() {
    let broker = start().await;
    let response = client()
        .get(format!("{}/readyz", broker.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["storage_kek"], "ok");
    let health = client()
        .get(format!("{}/healthz", broker.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let broker = start().await;
    broker.state.store.close().await;
    let response = client()
        .get(format!("{}/readyz", broker.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"], "unavailable");
    assert_eq!(body["checks"]["storage_kek"], "ok");
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let broker = start().await;
    let response = client()
        .get(format!("{}/v1/nothing-here", broker.base))
        .send()
        .await
        .expect("get");
    let (status, body) = problem(response).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem_with_allow() {
    let broker = start().await;
    let response = client()
        .delete(format!("{}/healthz", broker.base))
        .send()
        .await
        .expect("delete");
    let allow = response.headers().get("allow").cloned();
    let (status, body) = problem(response).await;
    assert_eq!(status, 405);
    assert_eq!(body["code"], "method_not_allowed");
    assert!(allow.is_some_and(|a| a.to_str().unwrap_or_default().contains("GET")));
}

#[tokio::test]
async fn a_one_mebibyte_body_is_a_413_problem() {
    let broker = start().await;
    for path in ["/healthz", "/v1/token", "/v1/anything"] {
        let response = client()
            .post(format!("{}{path}", broker.base))
            .header("content-type", "application/json")
            .body(vec![b'x'; 1024 * 1024])
            .send()
            .await
            .expect("post");
        let (status, body) = problem(response).await;
        assert_eq!(status, 413, "{path}");
        assert_eq!(body["code"], "payload_too_large");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_the_clients() {
    let broker = start().await;
    let generated = client()
        .get(format!("{}/healthz", broker.base))
        .send()
        .await
        .expect("get");
    let id = generated
        .headers()
        .get("x-request-id")
        .expect("generated id");
    assert_eq!(id.len(), 36, "a UUID");
    let kept = client()
        .get(format!("{}/healthz", broker.base))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("get");
    assert_eq!(kept.headers()["x-request-id"], "trace-me-123");
}

#[tokio::test]
async fn an_odd_or_long_request_id_is_replaced_by_the_brokers_own() {
    let broker = start().await;
    for odd in [
        "x".repeat(65),
        "has space".into(),
        "new\u{7f}line".into(),
        "{\"json\":1}".into(),
    ] {
        let Ok(value) = reqwest::header::HeaderValue::from_str(&odd) else {
            continue;
        };
        let answered = client()
            .get(format!("{}/healthz", broker.base))
            .header("x-request-id", value)
            .send()
            .await
            .expect("get");
        let id = answered.headers()["x-request-id"].to_str().expect("ascii");
        assert_eq!(id.len(), 36, "{odd:?} was replaced by a UUID, got {id}");
    }
}

#[tokio::test]
async fn made_up_methods_share_one_metric_label() {
    let broker = start().await;
    // Clients choose the method: each distinct one used to become a series
    // kept forever (4,000 of 60 KB took the RSS to 550 MB).
    let mut invented = Vec::new();
    for i in 0..50 {
        let name = format!("M{i}{}", "X".repeat(4096));
        let method = reqwest::Method::from_bytes(name.as_bytes()).expect("a token");
        client()
            .request(method, format!("{}/healthz", broker.base))
            .send()
            .await
            .expect("answered");
        invented.push(name);
    }
    let text = metrics_text(&broker).await;
    assert!(
        text.len() < 64 * 1024,
        "/metrics grew to {} bytes",
        text.len()
    );
    assert!(invented.iter().all(|m| !text.contains(&m[..8])));
    let counted: u64 = text
        .lines()
        .filter(|l| l.starts_with("keyferry_http_requests_total{method=\"other\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(counted, 50, "{text}");
}

/// Reads until the server closes the connection; `None` if it is still
/// open after `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + within),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn address(broker: &Broker) -> String {
    broker.base.trim_start_matches("http://").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_after_the_header_read_timeout() {
    use tokio::io::AsyncWriteExt;
    let broker = Broker::builder()
        .serve(Serve::Server)
        .tweak(|config| config.server.header_read_timeout = Duration::from_secs(1))
        .start_sqlite()
        .await;
    // A slowloris client: a request line, then a header byte every 200 ms.
    let mut slow = tokio::net::TcpStream::connect(address(&broker))
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let trickle = tokio::spawn({
        let mut writer = tokio::net::TcpStream::connect(address(&broker))
            .await
            .expect("connect");
        async move {
            writer
                .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
                .await
                .ok()?;
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                writer.write_all(b"a").await.ok()?;
            }
            Some(())
        }
    });
    let closed = closed_within(&mut slow, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "a connection that never finished its head is open after 5 s"
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), trickle)
            .await
            .expect("the trickle ends")
            .expect("task"),
        None,
        "the trickling client's writes start failing once the server closes"
    );
    // A connection that sends nothing at all, and one idle after a response.
    let mut idle = tokio::net::TcpStream::connect(address(&broker))
        .await
        .expect("connect");
    assert!(
        closed_within(&mut idle, Duration::from_secs(5))
            .await
            .is_some()
    );
    let mut kept_alive = tokio::net::TcpStream::connect(address(&broker))
        .await
        .expect("connect");
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut response = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut kept_alive, &mut response)
        .await
        .expect("answer");
    assert_eq!(&response, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut kept_alive, Duration::from_secs(5))
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_on_arrival() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = Broker::builder()
        .serve(Serve::Server)
        .tweak(|config| {
            config.server.max_connections = 3;
            config.server.header_read_timeout = Duration::from_secs(60);
        })
        .start_sqlite()
        .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            tokio::net::TcpStream::connect(address(&broker))
                .await
                .expect("connect"),
        );
    }
    // Let the server admit the three before the fourth arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fourth = tokio::net::TcpStream::connect(address(&broker))
        .await
        .expect("connect");
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2))
            .await
            .is_some(),
        "the fourth connection was served"
    );
    // The held connections go: their slots serve the next client. All of
    // them, not one: the harness's pooled client may hold a slot of its own,
    // and then the third held connection was itself refused and dropping it
    // frees nothing.
    held.clear();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut next = tokio::net::TcpStream::connect(address(&broker))
        .await
        .expect("connect");
    next.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    next.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let value = |name: &str| -> u64 {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {answer}"))
    };
    // The harness's own client may hold a connection too: at least the
    // fourth was refused, and never more than three were open.
    assert!(
        value("keyferry_http_connections_refused_total ") >= 1,
        "{answer}"
    );
    assert!(value("keyferry_http_connections_open ") <= 3, "{answer}");
}

#[tokio::test]
async fn metrics_can_require_an_operator_token() {
    let broker = Broker::builder()
        .serve(Serve::Server)
        .tweak(|c| c.server.metrics = keyferry::config::MetricsAccess::Operator)
        .start_sqlite()
        .await;
    let url = format!("{}/metrics", broker.base);
    let anonymous = client().get(&url).send().await.expect("get");
    assert_eq!(anonymous.status(), 401);
    let read = client()
        .get(&url)
        .bearer_auth(broker.admin_token())
        .send()
        .await
        .expect("get");
    assert_eq!(read.status(), 200);
    assert!(
        read.text()
            .await
            .expect("text")
            .contains("keyferry_http_requests_total")
    );
}

#[tokio::test]
async fn metrics_can_be_served_on_their_own_listener_only() {
    let port = test_support::free_port();
    let broker = Broker::builder()
        .serve(Serve::Server)
        .tweak(move |c| {
            c.server.metrics = keyferry::config::MetricsAccess::Listener;
            c.server.metrics_listen = Some(format!("127.0.0.1:{port}").parse().expect("addr"));
        })
        .start_sqlite()
        .await;
    let main = client()
        .get(format!("{}/metrics", broker.base))
        .send()
        .await
        .expect("get");
    assert_eq!(main.status(), 404);
    let separate = client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("the metrics listener answers");
    assert_eq!(separate.status(), 200);
    let text = separate.text().await.expect("text");
    assert!(text.contains("keyferry_http_requests_total"), "{text}");
    // Nothing else is served there.
    let other = client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .expect("get");
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let broker = start().await;
    for _ in 0..3 {
        client()
            .get(format!("{}/healthz", broker.base))
            .send()
            .await
            .expect("get");
    }
    client()
        .get(format!("{}/v1/missing/42", broker.base))
        .send()
        .await
        .expect("get");
    let text = metrics_text(&broker).await;
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.starts_with(needle))
            .map(str::to_owned)
    };
    let healthz =
        line("keyferry_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}")
            .unwrap_or_else(|| panic!("no healthz counter in\n{text}"));
    assert!(healthz.ends_with(" 3"), "{healthz}");
    // Unmatched paths share one label, so scanners cannot blow up cardinality.
    assert!(
        line("keyferry_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}")
            .is_some()
    );
    assert!(text.contains("keyferry_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn graceful_shutdown_stops_the_server() {
    let mut broker = start().await;
    client()
        .get(format!("{}/healthz", broker.base))
        .send()
        .await
        .expect("up");
    let serving = broker.graceful_shutdown(Some(Duration::from_secs(1)));
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("server stopped")
        .expect("task");
    assert!(
        client()
            .get(format!("{}/healthz", broker.base))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn tls_is_served_when_a_certificate_is_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("cert");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let broker = Broker::builder()
        .data_dir(dir.path())
        .serve(Serve::Server)
        .tweak(|config| {
            config.server.tls_cert = Some(cert_path);
            config.server.tls_key = Some(key_path);
        })
        .start_sqlite()
        .await;
    assert!(broker.base.starts_with("https://"));
    test_support::install_crypto_provider();
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem")])
        .build()
        .expect("client");
    let response = trusting
        .get(format!("{}/readyz", broker.base))
        .send()
        .await
        .expect("https");
    assert_eq!(response.status(), 200);
    // Plain HTTP to a TLS port gets no answer.
    let plain = broker.base.replace("https://", "http://");
    assert!(
        client()
            .get(format!("{plain}/readyz"))
            .send()
            .await
            .is_err()
    );
}

/// What the Privacy Sandbox public-key clients read (`public_key_client_utils.cc`): the
/// header names `date` and `cache-control` in lower case, `max-age=(\d+)` in the latter,
/// over HTTP/1.1 and over HTTP/2 (their HTTP client speaks HTTP/2 only).
#[tokio::test]
async fn public_keys_carry_the_headers_the_privacy_sandbox_clients_read_over_both_http_versions() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let broker = start().await;
    let path = "/.well-known/aggregation-service/v1/public-keys";
    let addr = broker.base.trim_start_matches("http://").to_owned();
    let max_age = |value: &str| {
        value
            .split(',')
            .filter_map(|d| d.trim().strip_prefix("max-age="))
            .find_map(|n| n.parse::<u64>().ok())
    };

    // HTTP/1.1, read as bytes: the names exactly as written on the wire.
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.expect("read");
    let head = answer.split("\r\n\r\n").next().expect("head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_owned)
    };
    assert!(header("date").is_some(), "lower-case date: {head}");
    let cache_control = header("cache-control").expect("lower-case cache-control");
    assert!(max_age(&cache_control).is_some(), "{cache_control}");

    // HTTP/2 with prior knowledge, as over plain TCP (TLS offers h2 by ALPN).
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut send, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let request = http::Request::get(format!("http://{addr}{path}"))
        .body(())
        .expect("request");
    let (response, _) = send.send_request(request, true).expect("send");
    let response = response.await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let headers = response.headers();
    assert!(headers.contains_key("date"));
    let cache_control = headers["cache-control"].to_str().expect("ascii");
    assert!(max_age(cache_control).is_some(), "{cache_control}");
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("chunk");
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let keys: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert!(keys["keys"].is_array(), "{keys}");
}
