//! Outcomes no rmcp server produces on demand, with in-process services: a 2025-03-26 batch
//! answered with a JSON array, responses larger than the inspection limit, a failing service,
//! a failing body, a 5xx, and a client gone before the response head.

#[path = "common/audit.rs"]
mod audit_fixtures;

use std::convert::Infallible;
use std::time::Duration;

use audit_fixtures::Recorder;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use mcp_edge::EdgeBody;
use mcp_edge::audit::{AuditLayer, CountingBody, Outcome};
use mcp_edge::inspect::InspectLayer;
use mcp_edge::protocol::RequestId;
use tower::{ServiceBuilder, ServiceExt};

type Inner = Request<EdgeBody<CountingBody<Full<Bytes>>>>;

fn post(body: &'static str) -> Request<Full<Bytes>> {
    Request::post("/mcp")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

#[tokio::test]
async fn a_batch_answered_with_an_array_gets_each_message_its_own_outcome() {
    let recorder = Recorder::new();
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()))
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            Ok::<_, Infallible>(json(
                StatusCode::OK,
                r#"[{"jsonrpc":"2.0","id":"b","error":{"code":-32601,"message":"no"}},
                    {"jsonrpc":"2.0","id":"a","result":{"content":[],"isError":true}}]"#
                    .into(),
            ))
        });
    let response = service
        .oneshot(post(
            r#"[{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"t"}},
                {"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"z"}},
                {"jsonrpc":"2.0","id":"b","method":"nope"}]"#,
        ))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    let events = recorder.exactly(3).await;
    assert_eq!(events[0].jsonrpc_id(), Some(&RequestId::from("a")));
    assert_eq!(events[0].outcome(), &Outcome::ToolError);
    assert_eq!(events[1].mcp_method(), Some("notifications/cancelled"));
    assert_eq!(events[1].outcome(), &Outcome::Success);
    assert_eq!(events[2].outcome().code(), Some(-32601));
    assert_eq!(events[2].batch_position(), Some((2, 3)));
}

#[tokio::test]
async fn a_response_past_the_inspection_limit_passes_whole_and_is_unknown() {
    let recorder = Recorder::new();
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"result":{{"content":[{{"type":"text","text":"{}"}}]}}}}"#,
        "x".repeat(10_000)
    );
    let expected = big.len();
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()).inspect_bytes(1024))
        .layer(InspectLayer::new())
        .service_fn(move |_: Inner| {
            let big = big.clone();
            async move { Ok::<_, Infallible>(json(StatusCode::OK, big)) }
        });
    let response = service
        .oneshot(post(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
        ))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), expected, "the client gets every byte");
    let events = recorder.exactly(1).await;
    assert!(matches!(events[0].outcome(), Outcome::Unknown { .. }));
    assert_eq!(events[0].response_bytes(), expected as u64);
}

#[tokio::test]
async fn service_errors_body_errors_and_5xx_are_upstream_failures() {
    let recorder = Recorder::new();
    let failing = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()))
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async { Err::<Response<Full<Bytes>>, _>("upstream down") });
    assert!(
        failing
            .oneshot(post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#))
            .await
            .is_err()
    );
    let events = recorder.exactly(1).await;
    assert!(matches!(
        events[0].outcome(),
        Outcome::UpstreamFailure { .. }
    ));
    assert!(events[0].status().is_none());
    recorder.clear();

    let broken_body = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()))
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            let chunks: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = vec![
                Ok(http_body::Frame::data(Bytes::from_static(
                    b"event: message\n",
                ))),
                Err(std::io::Error::other("reset")),
            ];
            let mut response = Response::new(StreamBody::new(futures::stream::iter(chunks)));
            response
                .headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            Ok::<_, Infallible>(response)
        });
    let response = broken_body
        .oneshot(post(r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#))
        .await
        .unwrap();
    assert!(response.into_body().collect().await.is_err());
    let events = recorder.exactly(1).await;
    assert!(matches!(
        events[0].outcome(),
        Outcome::UpstreamFailure { .. }
    ));
    recorder.clear();

    let bad_gateway = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()))
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            let mut response = Response::new(Full::new(Bytes::from_static(b"bad gateway")));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            Ok::<_, Infallible>(response)
        });
    let response = bad_gateway
        .oneshot(post(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    let events = recorder.exactly(1).await;
    assert!(matches!(
        events[0].outcome(),
        Outcome::UpstreamFailure { .. }
    ));
    assert_eq!(events[0].status(), Some(StatusCode::BAD_GATEWAY));
}

#[tokio::test]
async fn a_client_gone_before_the_response_head_is_recorded() {
    let recorder = Recorder::new();
    let slow = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()))
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, Infallible>(json(StatusCode::OK, String::new()))
        });
    let call = slow.oneshot(post(r#"{"jsonrpc":"2.0","id":4,"method":"tools/list"}"#));
    // The client hangs up after 50 ms: the future is dropped.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), call)
            .await
            .is_err()
    );
    let events = recorder.exactly(1).await;
    assert_eq!(events[0].outcome(), &Outcome::ClientGone);
    assert!(events[0].status().is_none());
    // Inspect's response never came back, but it filled audit's `McpRequestSlot`.
    assert_eq!(events[0].mcp_method(), Some("tools/list"));
    assert_eq!(events[0].jsonrpc_id(), Some(&RequestId::from(4)));
}

#[tokio::test]
async fn w3c_trace_context_from_meta_is_recorded() {
    let recorder = Recorder::new();
    let service = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()))
        .layer(InspectLayer::new())
        .service_fn(|_: Inner| async {
            Ok::<_, Infallible>(json(
                StatusCode::OK,
                r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#.into(),
            ))
        });
    let response = service
        .oneshot(post(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"vendor=1"}}}"#,
        ))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    let events = recorder.exactly(1).await;
    assert_eq!(
        events[0].traceparent(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    let line = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(line["tracestate"], "vendor=1");
    assert_eq!(line["mcp.method.name"], "tools/list");
    assert_eq!(line["mcp_edge.outcome"], "success");
}
