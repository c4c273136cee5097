//! Audit through a real rmcp server and client, JSON responses (2026-07-28, and stateless
//! legacy): one event per call with every field right; outcomes told apart.

#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use std::time::Duration;

use audit_fixtures::{Recorder, StandInLayer, connect_info, outcome_service};
use http::StatusCode;
use mcp_edge::audit::{AuditEvent, AuditLayer, Outcome};
use mcp_edge::inspect::InspectLayer;
use mcp_edge::protocol::{Era, ProtocolVersion, RequestId, Target};
use mcp_edge::{Principal, Replica};
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use serde_json::json;
use tower::ServiceBuilder;

fn alice() -> Principal {
    Principal::new("alice")
        .with_issuer("https://as.example")
        .with_client_id("https://client.example/meta.json")
}

fn serve_json(recorder: &Recorder) -> common::TestServer {
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()).peer_addr(connect_info))
        .layer(InspectLayer::new())
        .layer(StandInLayer::identity(alice(), Replica::new("replica-a")))
        .service(outcome_service(
            StreamableHttpServerConfig::default()
                .with_json_response(true)
                .with_legacy_session_mode(false),
        ));
    common::serve_service(svc)
}

fn find<'a>(events: &'a [AuditEvent], method: &str, tool: Option<&str>) -> &'a AuditEvent {
    let matching: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| e.mcp_method() == Some(method))
        .filter(|e| tool.is_none_or(|t| e.target().map(Target::name) == Some(t)))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "exactly one event for {method} {tool:?}: {events:#?}"
    );
    matching[0]
}

fn assert_common(event: &AuditEvent, server: &common::TestServer) {
    assert_eq!(event.http_method(), http::Method::POST);
    assert_eq!(event.status(), Some(StatusCode::OK));
    assert_eq!(event.era(), Some(Era::Modern));
    assert_eq!(event.protocol_version(), Some(ProtocolVersion::V2026_07_28));
    // 2026-07-28 has no sessions: mcp.session.id MUST NOT be set.
    assert!(event.session_id().is_none());
    let principal = event.principal().expect("principal recorded");
    assert_eq!(principal.subject(), "alice");
    assert_eq!(principal.issuer(), Some("https://as.example"));
    assert_eq!(event.replica().map(Replica::id), Some("replica-a"));
    let peer = event.peer_addr().expect("peer address recorded");
    assert!(peer.ip().is_loopback());
    assert_ne!(peer.port(), server.addr.port());
    assert_eq!(event.request_id().len(), 32, "generated request id");
    assert!(event.request_bytes() > 0);
    assert!(event.response_bytes() > 0);
    assert!(event.sse_events().is_none(), "a JSON response");
    let head = event.time_to_head().expect("a response head");
    assert!(head <= event.duration());
    assert!(event.duration() < Duration::from_secs(10));
    assert!(
        event.start_time() <= std::time::SystemTime::now(),
        "start time is in the past"
    );
}

#[tokio::test]
async fn every_modern_json_call_gives_exactly_one_event_with_every_field() {
    let recorder = Recorder::new();
    let server = serve_json(&recorder);
    let client = common::modern_client(&server.url).await;
    let discover_events = recorder.wait_until(|e| !e.is_empty()).await.len();

    let echoed = common::call_tool(&client, "echo", json!({"text": "hello"}))
        .await
        .unwrap();
    assert_eq!(common::text_of(&echoed), "hello");
    let tool_error = common::call_tool(&client, "fail", json!({"text": "x"}))
        .await
        .unwrap();
    assert_eq!(tool_error.is_error, Some(true));
    let protocol_error = common::call_tool(&client, "broken", json!({})).await;
    assert!(protocol_error.is_err());
    client.cancel().await.unwrap();

    let events = recorder.exactly(discover_events + 3).await;
    let discover = &events[0];
    assert_eq!(discover.mcp_method(), Some("server/discover"));
    assert_eq!(discover.outcome(), &Outcome::Success);

    let echo = find(&events, "tools/call", Some("echo"));
    assert_common(echo, &server);
    assert_eq!(echo.outcome(), &Outcome::Success);
    assert!(matches!(echo.jsonrpc_id(), Some(RequestId::Number(_))));
    assert_eq!(echo.target(), Some(&Target::Tool("echo".into())));
    assert!(echo.arguments().is_none(), "arguments are off by default");
    assert!(echo.result().is_none(), "results are off by default");

    let fail = find(&events, "tools/call", Some("fail"));
    assert_common(fail, &server);
    assert_eq!(fail.outcome(), &Outcome::ToolError);
    assert_eq!(fail.error_type().as_deref(), Some("tool_error"));

    let broken = find(&events, "tools/call", Some("broken"));
    assert_common(broken, &server);
    match broken.outcome() {
        Outcome::JsonRpcError { code, message } => {
            assert_eq!(*code, -32603);
            assert_eq!(&**message, "the tool is broken");
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    assert_eq!(broken.error_type().as_deref(), Some("-32603"));

    // Distinct request ids, and the JSON form uses the OpenTelemetry names.
    let mut ids: Vec<&str> = events.iter().map(AuditEvent::request_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len());
    let line = serde_json::to_value(fail).unwrap();
    assert_eq!(line["mcp.method.name"], "tools/call");
    assert_eq!(line["gen_ai.tool.name"], "fail");
    assert_eq!(line["gen_ai.operation.name"], "execute_tool");
    assert_eq!(line["error.type"], "tool_error");
    assert_eq!(line["mcp.protocol.version"], "2026-07-28");
    assert_eq!(line["mcp_edge.principal.subject"], "alice");
    assert_eq!(line["mcp_edge.replica"], "replica-a");
    assert_eq!(line["client.address"], "127.0.0.1");
    assert_eq!(line["http.response.status_code"], 200);
    assert!(line.get("mcp.session.id").is_none());
    let broken_line = serde_json::to_value(broken).unwrap();
    assert_eq!(broken_line["rpc.response.status_code"], "-32603");
}

#[tokio::test]
async fn client_request_id_is_kept_and_echoed() {
    let recorder = Recorder::new();
    let server = serve_json(&recorder);
    let body = json!({"jsonrpc":"2.0","id":"abc","method":"tools/list"});
    let response = common::post_json(
        &server.url,
        &body,
        &[
            ("x-request-id", "req-42"),
            ("mcp-protocol-version", "2025-06-18"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "req-42");
    let _ = response.bytes().await;
    let events = recorder.exactly(1).await;
    assert_eq!(events[0].request_id(), "req-42");
    assert_eq!(events[0].jsonrpc_id(), Some(&RequestId::from("abc")));
    assert_eq!(events[0].era(), Some(Era::Legacy));
    assert_eq!(
        events[0].protocol_version(),
        Some(ProtocolVersion::V2025_06_18)
    );
    assert_eq!(events[0].outcome(), &Outcome::Success);
}

#[tokio::test]
async fn unknown_method_is_a_jsonrpc_error_not_a_success() {
    let recorder = Recorder::new();
    let server = serve_json(&recorder);
    let body = json!({"jsonrpc":"2.0","id":9,"method":"no/such/method"});
    let response = common::post_json(
        &server.url,
        &body,
        &[("mcp-protocol-version", "2025-06-18")],
    )
    .await;
    let status = response.status();
    let _ = response.bytes().await;
    let events = recorder.exactly(1).await;
    assert_eq!(events[0].mcp_method(), Some("no/such/method"));
    assert_eq!(
        events[0].status().map(|s| s.as_u16()),
        Some(status.as_u16())
    );
    assert_eq!(events[0].outcome().code(), Some(-32601), "{events:#?}");
}

#[tokio::test]
async fn notifications_answered_202_are_recorded_as_accepted() {
    let recorder = Recorder::new();
    let server = serve_json(&recorder);
    let body = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    let response = common::post_json(
        &server.url,
        &body,
        &[("mcp-protocol-version", "2025-06-18")],
    )
    .await;
    assert_eq!(response.status(), 202);
    let _ = response.bytes().await;
    let events = recorder.exactly(1).await;
    assert_eq!(events[0].mcp_method(), Some("notifications/initialized"));
    assert_eq!(events[0].status(), Some(StatusCode::ACCEPTED));
    assert_eq!(events[0].outcome(), &Outcome::Accepted);
    assert!(events[0].jsonrpc_id().is_none());
}
