//! Audit through a real rmcp server and client, SSE responses: legacy sessions (2025-11-25)
//! and 2026-07-28 streams; outcomes read from the stream; a client leaving mid-stream.

#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use std::time::Duration;

use audit_fixtures::{Recorder, StandInLayer, connect_info, outcome_service};
use futures::StreamExt;
use http::{Method, StatusCode};
use mcp_edge::audit::{AuditEvent, AuditLayer, Outcome};
use mcp_edge::inspect::InspectLayer;
use mcp_edge::protocol::{Era, ProtocolVersion, Target};
use mcp_edge::{Principal, Replica};
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use serde_json::json;
use tower::ServiceBuilder;

fn serve_rmcp_demo(recorder: &Recorder) -> common::TestServer {
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()).peer_addr(connect_info))
        .layer(InspectLayer::new())
        .layer(StandInLayer::identity(
            Principal::new("bob").with_issuer("https://as.example"),
            Replica::new("r1"),
        ))
        .service(common::rmcp_service());
    common::serve_service(svc)
}

fn serve_outcomes(recorder: &Recorder) -> common::TestServer {
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()).peer_addr(connect_info))
        .layer(InspectLayer::new())
        .service(outcome_service(StreamableHttpServerConfig::default()));
    common::serve_service(svc)
}

fn of<'a>(events: &'a [AuditEvent], method: &str) -> Vec<&'a AuditEvent> {
    events
        .iter()
        .filter(|e| e.mcp_method() == Some(method))
        .collect()
}

fn tool<'a>(events: &'a [AuditEvent], name: &str) -> &'a AuditEvent {
    let found: Vec<_> = events
        .iter()
        .filter(|e| e.target() == Some(&Target::Tool(name.into())))
        .collect();
    assert_eq!(found.len(), 1, "one event for tool {name}: {events:#?}");
    found[0]
}

#[tokio::test]
async fn legacy_session_calls_over_sse_give_one_event_each_with_session_and_outcome() {
    let recorder = Recorder::new();
    let server = serve_rmcp_demo(&recorder);
    let client = common::legacy_client(&server.url).await;
    let echoed = common::call_tool(&client, "echo", json!({"text": "over sse"}))
        .await
        .unwrap();
    assert_eq!(common::text_of(&echoed), "over sse");
    let (counted, progress) =
        common::call_tool_with_progress(&client, "slow_count", json!({"n": 3, "delay_ms": 10}), 3)
            .await;
    assert_eq!(common::text_of(&counted.unwrap()), "counted to 3");
    assert_eq!(progress.len(), 3);
    client.cancel().await.unwrap();

    // initialize, notifications/initialized, GET stream, echo, slow_count, DELETE.
    let events = recorder
        .wait_until(|e| {
            e.iter().any(|e| e.http_method() == Method::DELETE)
                && e.iter().any(|e| e.http_method() == Method::GET)
        })
        .await;
    let init = of(&events, "initialize");
    assert_eq!(init.len(), 1, "{events:#?}");
    let init = init[0];
    assert_eq!(init.outcome(), &Outcome::Success);
    assert_eq!(init.era(), Some(Era::Legacy));
    assert_eq!(init.protocol_version(), Some(ProtocolVersion::V2025_11_25));
    let info = init.client_info().expect("clientInfo of initialize");
    assert_eq!(info.name.as_deref(), Some("mcp-edge-tests"));
    // Learned from the initialize response's Mcp-Session-Id.
    let session = init.session_id().expect("session id on initialize").clone();
    assert!(init.sse_events().is_some_and(|n| n >= 1));

    let initialized = of(&events, "notifications/initialized");
    assert_eq!(initialized.len(), 1);
    assert_eq!(initialized[0].outcome(), &Outcome::Accepted);
    assert_eq!(initialized[0].session_id(), Some(&session));

    let echo = tool(&events, "echo");
    assert_eq!(echo.outcome(), &Outcome::Success);
    assert_eq!(echo.session_id(), Some(&session));
    assert_eq!(echo.status(), Some(StatusCode::OK));
    assert_eq!(echo.principal().map(Principal::subject), Some("bob"));
    assert_eq!(echo.replica().map(Replica::id), Some("r1"));
    assert!(echo.sse_events().is_some_and(|n| n >= 1), "{echo:#?}");
    assert!(echo.peer_addr().is_some());
    assert!(echo.time_to_head().unwrap() <= echo.duration());

    let slow = tool(&events, "slow_count");
    assert_eq!(slow.outcome(), &Outcome::Success);
    // Three progress notifications and the response, at least.
    assert!(slow.sse_events().is_some_and(|n| n >= 4), "{slow:#?}");
    assert!(slow.response_bytes() > echo.response_bytes());

    let deletes: Vec<_> = events
        .iter()
        .filter(|e| e.http_method() == Method::DELETE)
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].session_id(), Some(&session));
    assert!(deletes[0].mcp_method().is_none());

    // The GET stream rmcp's client opened is recorded too, ended when the client closed.
    let gets: Vec<_> = events
        .iter()
        .filter(|e| e.http_method() == Method::GET)
        .collect();
    assert_eq!(gets.len(), 1, "{events:#?}");
    assert_eq!(gets[0].session_id(), Some(&session));
    assert!(gets[0].sse_events().is_some());
    assert!(matches!(
        gets[0].outcome(),
        Outcome::ClientGone | Outcome::Success
    ));

    // Every tools/call gave exactly one event.
    assert_eq!(of(&events, "tools/call").len(), 2);
}

#[tokio::test]
async fn outcomes_are_told_apart_over_sse() {
    let recorder = Recorder::new();
    let server = serve_outcomes(&recorder);
    let client = common::legacy_client(&server.url).await;
    let fail = common::call_tool(&client, "fail", json!({"text": "x"}))
        .await
        .unwrap();
    assert_eq!(fail.is_error, Some(true));
    assert!(
        common::call_tool(&client, "broken", json!({}))
            .await
            .is_err()
    );
    let ok = common::call_tool(&client, "echo", json!({"text": "y"}))
        .await
        .unwrap();
    assert_eq!(common::text_of(&ok), "y");
    let events = recorder
        .wait_until(|e| of(e, "tools/call").len() >= 3)
        .await;
    assert_eq!(tool(&events, "fail").outcome(), &Outcome::ToolError);
    assert_eq!(tool(&events, "echo").outcome(), &Outcome::Success);
    match tool(&events, "broken").outcome() {
        Outcome::JsonRpcError { code, message } => {
            assert_eq!(*code, -32603);
            assert_eq!(&**message, "the tool is broken");
        }
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn modern_stream_with_progress_is_read_to_its_response() {
    let recorder = Recorder::new();
    let server = serve_rmcp_demo(&recorder);
    let client = common::modern_client(&server.url).await;
    let (counted, _) =
        common::call_tool_with_progress(&client, "slow_count", json!({"n": 2, "delay_ms": 5}), 2)
            .await;
    assert_eq!(common::text_of(&counted.unwrap()), "counted to 2");
    let events = recorder
        .wait_until(|e| of(e, "tools/call").len() == 1)
        .await;
    let slow = tool(&events, "slow_count");
    assert_eq!(slow.era(), Some(Era::Modern));
    assert!(slow.session_id().is_none());
    assert_eq!(slow.outcome(), &Outcome::Success);
    assert!(slow.sse_events().is_some_and(|n| n >= 3), "{slow:#?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn client_that_leaves_mid_stream_is_recorded_as_gone() {
    let recorder = Recorder::new();
    let server = serve_rmcp_demo(&recorder);
    let session = common::raw_legacy_session(&server.url).await;
    recorder
        .wait_until(|e| of(e, "notifications/initialized").len() == 1)
        .await;
    let body = json!({
        "jsonrpc": "2.0", "id": 77, "method": "tools/call",
        "params": {"name": "slow_count", "arguments": {"n": 1000, "delay_ms": 20},
                   "_meta": {"progressToken": "p"}}
    });
    let response = common::post_json(
        &server.url,
        &body,
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    // Read until a progress notification has arrived, then hang up.
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("notifications/progress") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("progress in time")
            .expect("stream open")
            .expect("chunk");
        seen.extend_from_slice(&chunk);
    }
    drop(stream);

    let events = recorder
        .wait_until(|e| {
            e.iter()
                .any(|e| e.jsonrpc_id().is_some_and(|id| id.to_string() == "77"))
        })
        .await;
    let gone = events
        .iter()
        .find(|e| e.jsonrpc_id().is_some_and(|id| id.to_string() == "77"))
        .unwrap();
    assert_eq!(gone.outcome(), &Outcome::ClientGone, "{gone:#?}");
    assert_eq!(gone.error_type().as_deref(), Some("client_gone"));
    assert!(gone.sse_events().is_some_and(|n| n >= 1));
    assert!(gone.response_bytes() > 0);
    assert_eq!(
        gone.session_id().map(|s| s.as_str()),
        Some(session.as_str())
    );
}
