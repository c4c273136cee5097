//! `HttpUpstream` against real upstream servers over TCP: bodies stream both ways frame by
//! frame, hop-by-hop headers are dropped, forwarding headers added, a slow response head is
//! a 504 while a long SSE body is never cut, and an unreachable upstream is a 502.
#![cfg(feature = "proxy")]

mod common;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::Body as AxumBody;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use bytes::Bytes;
use common::*;
use futures::StreamExt;
use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use mcp_edge::Rejection;
use mcp_edge::proxy::{HttpUpstream, HttpUpstreamBuilder};

/// Serves `router` and a proxy to it built with `builder`; returns (upstream, proxy).
fn proxied(router: axum::Router, builder: HttpUpstreamBuilder) -> (TestServer, TestServer) {
    let upstream = serve(router);
    let proxy: HttpUpstream<Incoming> = builder
        .peer_addr_with(|ext| ext.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0))
        .build(&upstream.url)
        .unwrap();
    (upstream, serve_service(proxy))
}

fn headers_json(headers: &HeaderMap) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (name, value) in headers {
        map.insert(
            name.as_str().to_owned(),
            serde_json::Value::String(value.to_str().unwrap_or_default().to_owned()),
        );
    }
    serde_json::Value::Object(map)
}

#[tokio::test]
async fn hop_by_hop_headers_are_dropped_and_forwarding_headers_added() {
    let router = axum::Router::new().route(
        "/mcp",
        post(|headers: HeaderMap| async move {
            let mut response =
                axum::response::IntoResponse::into_response(axum::Json(headers_json(&headers)));
            response
                .headers_mut()
                .insert("connection", "x-upstream-secret".parse().unwrap());
            response
                .headers_mut()
                .insert("x-upstream-secret", "1".parse().unwrap());
            response
                .headers_mut()
                .insert("keep-alive", "timeout=5".parse().unwrap());
            response
        }),
    );
    let (upstream, proxy) = proxied(router, HttpUpstreamBuilder::new());
    let response = http_client()
        .post(&proxy.url)
        .header("content-type", "application/json")
        .header("connection", "x-client-private")
        .header("x-client-private", "secret")
        .header("te", "trailers")
        .header("proxy-authorization", "Basic abc")
        .header("x-forwarded-for", "6.6.6.6")
        .header("mcp-session-id", "kept")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-upstream-secret").is_none());
    assert!(response.headers().get("keep-alive").is_none());
    let seen: serde_json::Value = response.json().await.unwrap();
    for dropped in ["x-client-private", "te", "proxy-authorization"] {
        assert!(seen.get(dropped).is_none(), "{dropped} forwarded: {seen}");
    }
    assert_eq!(seen["mcp-session-id"], "kept");
    assert_eq!(seen["host"], upstream.addr.to_string());
    assert_eq!(seen["x-forwarded-host"], proxy.addr.to_string());
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(
        seen["x-forwarded-for"], "127.0.0.1",
        "the client's spoof replaced"
    );
    let forwarded = seen["forwarded"].as_str().unwrap();
    assert!(forwarded.starts_with("for=\"127.0.0.1:"), "{forwarded}");
    assert!(forwarded.ends_with(&format!(";host=\"{}\";proto=http", proxy.addr)));
}

#[tokio::test]
async fn sse_frames_stream_through_one_by_one_and_outlive_the_head_timeout() {
    // An upstream that sends one event every 150 ms for 1.2 s.
    let router = axum::Router::new().route(
        "/mcp",
        get(|| async {
            let events = futures::stream::unfold(0u32, |n| async move {
                if n == 8 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
                Some((
                    Ok::<_, Infallible>(Bytes::from(format!("id: {n}\ndata: {n}\n\n"))),
                    n + 1,
                ))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(AxumBody::from_stream(events))
                .unwrap()
        }),
    );
    let (_upstream, proxy) = proxied(
        router,
        HttpUpstreamBuilder::new().response_head_timeout(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let response = http_client()
        .get(&proxy.url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("stream not cut");
        arrivals.push(started.elapsed());
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(text.matches("data: ").count(), 8, "{text}");
    assert!(started.elapsed() > Duration::from_millis(1000));
    // Frames arrived spread over the stream's life, not all at the end.
    assert!(arrivals.len() >= 6, "{arrivals:?}");
    assert!(
        arrivals[0] < Duration::from_millis(600),
        "first event came at once: {arrivals:?}"
    );
}

#[tokio::test]
async fn request_bodies_stream_to_the_upstream_without_buffering() {
    // The upstream answers with the size of the first chunk it saw, as soon as it sees it,
    // while the client is still sending.
    let router = axum::Router::new().route(
        "/mcp",
        post(|request: Request<AxumBody>| async move {
            let mut body = request.into_body().into_data_stream();
            let first = body.next().await.unwrap().unwrap();
            format!("first chunk {}", first.len())
        }),
    );
    let (_upstream, proxy) = proxied(router, HttpUpstreamBuilder::new());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(1);
    tx.send(Ok(Bytes::from_static(b"{\"part\":1")))
        .await
        .unwrap();
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        http_client()
            .post(&proxy.url)
            .header("content-type", "application/json")
            .body(body)
            .send(),
    )
    .await
    .expect("answered before the request body ended")
    .unwrap();
    assert_eq!(response.text().await.unwrap(), "first chunk 9");
    drop(tx);
}

#[tokio::test]
async fn a_late_response_head_is_504_with_jsonrpc_body() {
    let router = axum::Router::new().route(
        "/mcp",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            "too late"
        }),
    );
    let (_upstream, proxy) = proxied(
        router,
        HttpUpstreamBuilder::new().response_head_timeout(Duration::from_millis(200)),
    );
    let started = Instant::now();
    let response = post_json(
        &proxy.url,
        &serde_json::json!({"jsonrpc":"2.0","id":9,"method":"ping"}),
        &[],
    )
    .await;
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(2));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32603);
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_with_jsonrpc_body_and_rejection() {
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let upstream: HttpUpstream<http_body_util::Full<Bytes>> = HttpUpstream::new(&url).unwrap();
    let request = Request::post("/mcp")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = tower::ServiceExt::oneshot(upstream, request).await.unwrap();
    assert_eq!(response.status(), 502);
    let rejection = response.extensions().get::<Rejection>().unwrap();
    assert_eq!(rejection.reason().as_str(), "upstream_unavailable");
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], -32603);
    // https:// needs the `proxy-tls` feature (tests/proxy_tls.rs); other schemes never work.
    #[cfg(not(feature = "proxy-tls"))]
    assert!(HttpUpstream::<Incoming>::new("https://example.com/mcp").is_err());
    assert!(HttpUpstream::<Incoming>::new("ftp://example.com/mcp").is_err());
}

#[tokio::test]
async fn an_rmcp_server_works_through_the_proxy_in_both_eras() {
    let upstream = serve(rmcp_router());
    let proxy: HttpUpstream<Incoming> = HttpUpstream::new(&upstream.url).unwrap();
    let proxy = serve_service(proxy);
    let legacy = legacy_client(&proxy.url).await;
    let (counted, progress) = call_tool_with_progress(
        &legacy,
        "slow_count",
        serde_json::json!({"n": 3, "delay_ms": 10}),
        3,
    )
    .await;
    assert_eq!(text_of(&counted.unwrap()), "counted to 3");
    assert_eq!(progress.len(), 3);
    legacy.cancel().await.unwrap();
    let modern = modern_client(&proxy.url).await;
    let echoed = call_tool(&modern, "echo", serde_json::json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "hi");
}
