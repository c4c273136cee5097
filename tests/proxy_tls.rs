//! `HttpUpstream` toward `https://` upstreams (feature `proxy-tls`): a real rmcp server served
//! over TLS with a certificate from a CA made in the test, reached over one multiplexed HTTP/2
//! connection when it offers `h2` and over the HTTP/1.1 pool when it does not; tool calls in
//! both eras, SSE streamed frame by frame, an untrusted certificate answered with a prompt 502,
//! mutual TLS, a dead HTTP/2 connection replaced, and the aggregator over an https upstream.
#![cfg(feature = "proxy-tls")]

mod common;
#[path = "common/tls.rs"]
mod tls;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use mcp_edge::proxy::{HttpUpstream, HttpUpstreamBuilder, UpstreamTls};
use serde_json::{Value, json};
use tls::{ClientAuth, Offer, TestCa, TlsServer};
use tower::ServiceExt;

/// An upstream builder trusting only `ca`.
fn trusting(ca: &TestCa) -> HttpUpstreamBuilder {
    HttpUpstreamBuilder::new().tls(UpstreamTls::ca_pem(&ca.pem).unwrap())
}

/// The demo rmcp server over TLS, offering `offer`.
fn rmcp_over_tls(ca: &TestCa, offer: Offer) -> TlsServer {
    TlsServer::start(rmcp_service(), ca, offer, ClientAuth::None)
}

/// A plain-HTTP gateway on 127.0.0.1 forwarding to `url` through an `HttpUpstream`.
fn gateway(builder: HttpUpstreamBuilder, url: &str) -> TestServer {
    let upstream: HttpUpstream<Incoming> = builder.build(url).unwrap();
    serve_service(upstream)
}

/// A 2026-07-28 `tools/call` POST (stateless: no session needed), with a progress token.
fn modern_call(tool: &str, arguments: Value, id: u64) -> Request<Full<Bytes>> {
    let body = json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": {
            "progressToken": "p",
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }},
    });
    Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A legacy and a 2026-07-28 rmcp client each call `echo` through the gateway at `url`.
async fn echo_in_both_eras(url: &str) {
    for client in [legacy_client(url).await, modern_client(url).await] {
        let result = call_tool(&client, "echo", json!({"text": "over tls"}))
            .await
            .unwrap();
        assert_eq!(text_of(&result), "over tls");
        client.cancel().await.unwrap();
    }
}

/// Calls `slow_count` (4 progress notifications 200 ms apart) through `upstream` and checks
/// the SSE stream arrives as it is sent: the first progress event long before the result.
async fn sse_streams_through(upstream: &HttpUpstream<Full<Bytes>>) {
    let started = Instant::now();
    let request = modern_call("slow_count", json!({"n": 4, "delay_ms": 200}), 1);
    let response = upstream.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("text/event-stream")
    );
    let mut body = response.into_body();
    let mut text = String::new();
    let mut first_progress = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("stream not cut");
        if let Some(data) = frame.data_ref() {
            text.push_str(std::str::from_utf8(data).unwrap());
        }
        if first_progress.is_none() && text.contains("notifications/progress") {
            first_progress = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    assert_eq!(text.matches("notifications/progress").count(), 4, "{text}");
    assert!(text.contains("counted to 4"), "{text}");
    let first = first_progress.unwrap();
    assert!(
        total - first >= Duration::from_millis(400),
        "progress held back: first at {first:?}, end at {total:?}"
    );
}

async fn json_body(
    response: http::Response<impl http_body::Body<Error: std::fmt::Debug>>,
) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn both_eras_call_tools_over_one_multiplexed_h2_connection() {
    let ca = TestCa::new("mcp-edge test CA");
    let upstream = rmcp_over_tls(&ca, Offer::H2AndHttp1);
    let gateway = gateway(trusting(&ca), &upstream.url);
    echo_in_both_eras(&gateway.url).await;
    let seen = upstream.seen();
    // initialize, initialized, the GET stream, tools/call, DELETE; discover, tools/call.
    assert!(seen.len() >= 5, "{seen:?}");
    assert!(seen.iter().all(|v| *v == Version::HTTP_2), "{seen:?}");
    assert_eq!(
        upstream.accepted.load(Ordering::SeqCst),
        1,
        "one connection carried every request, the legacy GET stream alongside the calls"
    );
}

#[tokio::test]
async fn sse_streams_frame_by_frame_over_h2_and_over_http1() {
    let ca = TestCa::new("mcp-edge test CA");
    for offer in [Offer::H2AndHttp1, Offer::Http1Only] {
        let upstream = rmcp_over_tls(&ca, offer);
        let client: HttpUpstream<Full<Bytes>> = trusting(&ca).build(&upstream.url).unwrap();
        sse_streams_through(&client).await;
        let expected = match offer {
            Offer::H2AndHttp1 => Version::HTTP_2,
            Offer::Http1Only => Version::HTTP_11,
        };
        assert_eq!(upstream.seen(), [expected], "{offer:?}");
    }
}

#[tokio::test]
async fn an_http1_only_upstream_is_served_by_the_keep_alive_pool_over_tls() {
    let ca = TestCa::new("mcp-edge test CA");
    let upstream = rmcp_over_tls(&ca, Offer::Http1Only);
    let gateway = gateway(trusting(&ca), &upstream.url);
    echo_in_both_eras(&gateway.url).await;
    echo_in_both_eras(&gateway.url).await;
    let seen = upstream.seen();
    assert!(seen.len() >= 10, "{seen:?}");
    assert!(seen.iter().all(|v| *v == Version::HTTP_11), "{seen:?}");
    // Connections are reused: the legacy GET stream holds one, the calls share the others.
    let accepted = upstream.accepted.load(Ordering::SeqCst);
    assert!(
        accepted <= 4,
        "{accepted} connections for {} requests",
        seen.len()
    );
}

#[tokio::test]
async fn http2_off_speaks_http1_to_an_h2_upstream() {
    let ca = TestCa::new("mcp-edge test CA");
    let upstream = rmcp_over_tls(&ca, Offer::H2AndHttp1);
    let tls = UpstreamTls::ca_pem(&ca.pem).unwrap().http2(false);
    let client: HttpUpstream<Full<Bytes>> = HttpUpstreamBuilder::new()
        .tls(tls)
        .build(&upstream.url)
        .unwrap();
    let response = client
        .clone()
        .oneshot(modern_call("echo", json!({"text": "h1"}), 3))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(upstream.seen(), [Version::HTTP_11]);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_prompt_502_with_a_jsonrpc_body() {
    let ca = TestCa::new("mcp-edge test CA");
    let upstream = rmcp_over_tls(&ca, Offer::H2AndHttp1);
    let other = TestCa::new("some other CA");
    let client: HttpUpstream<Full<Bytes>> = trusting(&other).build(&upstream.url).unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let response = client
            .clone()
            .oneshot(modern_call("echo", json!({"text": "x"}), 7))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "no hang");
        assert_eq!(response.status(), 502);
        let body = json_body(response).await;
        assert_eq!(body["jsonrpc"], "2.0");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("TLS handshake"), "{body}");
    }
    assert!(upstream.seen().is_empty());

    // The system's roots (the default) do not know the test CA either.
    match HttpUpstream::<Full<Bytes>>::new(&upstream.url) {
        Ok(client) => {
            let response = client
                .oneshot(modern_call("echo", json!({"text": "x"}), 8))
                .await
                .unwrap();
            assert_eq!(response.status(), 502);
        }
        // A machine without a CA bundle: said so when building.
        Err(error) => assert!(error.to_string().contains("system root"), "{error}"),
    }
}

#[tokio::test]
async fn the_connect_timeout_covers_a_tls_handshake_that_never_ends() {
    // Accepts TCP connections and never answers the ClientHello.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/mcp", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let ca = TestCa::new("mcp-edge test CA");
    let client: HttpUpstream<Full<Bytes>> = trusting(&ca)
        .connect_timeout(Duration::from_millis(300))
        .build(&url)
        .unwrap();
    let started = Instant::now();
    let calls = (0..3).map(|id| {
        client
            .clone()
            .oneshot(modern_call("echo", json!({"text": "x"}), id))
    });
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), 502);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}: every request waited at most one connect timeout"
    );
    held.abort();
}

#[tokio::test]
async fn a_client_certificate_is_presented_when_the_upstream_asks() {
    let ca = TestCa::new("mcp-edge test CA");
    let upstream = TlsServer::start(
        rmcp_service(),
        &ca,
        Offer::H2AndHttp1,
        ClientAuth::Required(ca.roots()),
    );
    let without: HttpUpstream<Full<Bytes>> = trusting(&ca).build(&upstream.url).unwrap();
    let response = without
        .oneshot(modern_call("echo", json!({"text": "x"}), 1))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);

    let issued = ca.client_cert();
    let tls = UpstreamTls::ca_pem(&ca.pem)
        .unwrap()
        .client_cert_pem(&issued.cert_pem, &issued.key_pem)
        .unwrap();
    let with: HttpUpstream<Full<Bytes>> = HttpUpstreamBuilder::new()
        .tls(tls)
        .build(&upstream.url)
        .unwrap();
    let response = with
        .oneshot(modern_call("echo", json!({"text": "mtls"}), 2))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("mtls"));
    assert_eq!(upstream.seen(), [Version::HTTP_2]);

    // A key that is not the certificate's is refused when configured.
    let stranger = ca.client_cert();
    let error = UpstreamTls::ca_pem(&ca.pem)
        .unwrap()
        .client_cert_pem(&issued.cert_pem, &stranger.key_pem)
        .unwrap_err();
    assert!(error.to_string().contains("client certificate"), "{error}");
}

#[tokio::test]
async fn a_dead_h2_connection_is_replaced_by_the_next_request() {
    let ca = TestCa::new("mcp-edge test CA");
    let upstream = rmcp_over_tls(&ca, Offer::H2AndHttp1);
    let client: HttpUpstream<Full<Bytes>> = trusting(&ca).build(&upstream.url).unwrap();
    let call = |id| {
        client
            .clone()
            .oneshot(modern_call("echo", json!({"text": "again"}), id))
    };
    assert_eq!(call(1).await.unwrap().status(), 200);
    assert_eq!(call(2).await.unwrap().status(), 200);
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
    upstream.drop_connections();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(call(3).await.unwrap().status(), 200);
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(upstream.seen(), [Version::HTTP_2; 3]);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_h2_connection() {
    let ca = TestCa::new("mcp-edge test CA");
    let upstream = rmcp_over_tls(&ca, Offer::H2AndHttp1);
    let client: HttpUpstream<Full<Bytes>> = trusting(&ca).build(&upstream.url).unwrap();
    let calls = (0..20).map(|id| {
        client
            .clone()
            .oneshot(modern_call("echo", json!({"text": "burst"}), id))
    });
    for response in futures::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(upstream.seen().len(), 20);
}

#[tokio::test]
async fn an_https_url_naming_a_host_is_checked_against_that_name() {
    // Built for a name the certificate carries: `localhost` resolves to 127.0.0.1 (or ::1,
    // where nothing listens, then 127.0.0.1).
    let ca = TestCa::new("mcp-edge test CA");
    let upstream = rmcp_over_tls(&ca, Offer::H2AndHttp1);
    let url = format!("https://localhost:{}/mcp", upstream.addr.port());
    let client: HttpUpstream<Full<Bytes>> = trusting(&ca).build(&url).unwrap();
    let response = client
        .oneshot(modern_call("echo", json!({"text": "by name"}), 1))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[cfg(feature = "aggregator")]
#[tokio::test]
async fn the_aggregator_reaches_an_https_upstream() {
    use mcp_edge::aggregate::{Aggregator, Upstream};

    let ca = TestCa::new("mcp-edge test CA");
    let upstream = rmcp_over_tls(&ca, Offer::H2AndHttp1);
    let alpha: HttpUpstream<Full<Bytes>> = trusting(&ca).build(&upstream.url).unwrap();
    // A server whose certificate the aggregator does not trust: it drops out, alone.
    let untrusted = rmcp_over_tls(&TestCa::new("some other CA"), Offer::H2AndHttp1);
    let beta: HttpUpstream<Full<Bytes>> = trusting(&ca).build(&untrusted.url).unwrap();
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("alpha", alpha))
        .upstream(Upstream::new("beta", beta))
        .build()
        .unwrap();
    let gateway = serve_service(aggregator);
    for client in [
        legacy_client(&gateway.url).await,
        modern_client(&gateway.url).await,
    ] {
        let tools = client.list_all_tools().await.unwrap();
        assert!(
            tools.iter().any(|tool| tool.name == "alpha__echo"),
            "{tools:?}"
        );
        assert!(
            !tools.iter().any(|tool| tool.name.starts_with("beta__")),
            "{tools:?}"
        );
        let result = call_tool(&client, "alpha__echo", json!({"text": "aggregated"}))
            .await
            .unwrap();
        assert_eq!(text_of(&result), "aggregated");
        client.cancel().await.unwrap();
    }
    let seen = upstream.seen();
    assert!(seen.iter().all(|v| *v == Version::HTTP_2), "{seen:?}");
    assert_eq!(upstream.accepted.load(Ordering::SeqCst), 1);
    assert!(untrusted.seen().is_empty());
}
