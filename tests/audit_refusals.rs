//! Refusals give audit events naming the layer and the reason: inspect's real 400 / 413 /
//! 415, and stand-ins (until the guard, auth and session layers are merged) for Origin 403,
//! 401, 403 scope and 404 session, each built with `mcp_edge::Rejection` as the real layers do.

#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use audit_fixtures::{Recorder, StandInLayer, connect_info};
use http::{HeaderMap, HeaderValue, StatusCode};
use mcp_edge::audit::{AuditEvent, AuditLayer, Outcome};
use mcp_edge::inspect::InspectLayer;
use mcp_edge::protocol::jsonrpc::code;
use mcp_edge::protocol::{ProtocolErrorKind, RequestId};
use mcp_edge::{Reason, RejectedBy, Rejection};
use serde_json::json;
use tower::ServiceBuilder;

fn guard_stand_in(headers: &HeaderMap) -> Option<Rejection> {
    let origin = headers.get("origin")?;
    (origin != "http://localhost").then(|| {
        Rejection::new(
            RejectedBy::Guard,
            Reason::OriginNotAllowed,
            StatusCode::FORBIDDEN,
            code::INVALID_REQUEST,
            "Forbidden: Origin not allowed",
        )
    })
}

fn auth_and_session_stand_in(headers: &HeaderMap) -> Option<Rejection> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    match auth {
        None => Some(
            Rejection::new(
                RejectedBy::Auth,
                Reason::MissingToken,
                StatusCode::UNAUTHORIZED,
                code::INVALID_REQUEST,
                "Unauthorized",
            )
            .with_header(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer resource_metadata=\"http://x/.well-known\""),
            ),
        ),
        Some("Bearer reader-token") => Some(Rejection::new(
            RejectedBy::Auth,
            Reason::InsufficientScope,
            StatusCode::FORBIDDEN,
            code::INVALID_REQUEST,
            "Forbidden: insufficient scope",
        )),
        Some(_) if headers.get("mcp-session-id").is_some_and(|v| v == "gone") => {
            Some(Rejection::new(
                RejectedBy::Session,
                Reason::SessionNotFound,
                StatusCode::NOT_FOUND,
                code::LEGACY_SESSION_NOT_FOUND,
                "Session not found",
            ))
        }
        Some(_) => None,
    }
}

fn serve(recorder: &Recorder) -> common::TestServer {
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(recorder.sink()).peer_addr(connect_info))
        .layer(StandInLayer::refusing(guard_stand_in))
        .layer(InspectLayer::new().max_body_bytes(1024))
        .layer(StandInLayer::refusing(auth_and_session_stand_in))
        .service(common::rmcp_service());
    common::serve_service(svc)
}

fn refused(event: &AuditEvent) -> (RejectedBy, Reason, i64) {
    match event.outcome() {
        Outcome::Refused {
            by, reason, code, ..
        } => (*by, *reason, *code),
        other => panic!("expected a refusal, got {other:?} in {event:#?}"),
    }
}

async fn one_event(recorder: &Recorder, response: reqwest::Response) -> (StatusCode, AuditEvent) {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
    let _ = response.bytes().await;
    let mut events = recorder.exactly(1).await;
    recorder.clear();
    (status, events.remove(0))
}

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":5,"method":"tools/list"}"#;
const BEARER: (&str, &str) = ("authorization", "Bearer good-token");

#[tokio::test]
async fn inspect_refusals_name_inspect_and_the_reason() {
    let recorder = Recorder::new();
    let server = serve(&recorder);

    // 415: not JSON.
    let response = common::http_client()
        .post(&server.url)
        .header("content-type", "text/plain")
        .header("authorization", "Bearer good-token")
        .body("hello")
        .send()
        .await
        .unwrap();
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 415);
    assert_eq!(event.status(), Some(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    assert_eq!(
        refused(&event),
        (RejectedBy::Inspect, Reason::UnsupportedMediaType, -32600)
    );
    assert!(event.mcp_method().is_none(), "the body was never read");
    assert_eq!(event.request_bytes(), 0);

    // 413: over the limit (1 KiB here).
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(4096)
    );
    let response = common::post_raw(&server.url, big.into_bytes(), &[BEARER]).await;
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 413);
    assert_eq!(
        refused(&event),
        (RejectedBy::Inspect, Reason::BodyTooLarge, -32600)
    );

    // 400: not JSON-RPC.
    let response = common::post_raw(&server.url, b"{not json".to_vec(), &[BEARER]).await;
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 400);
    assert_eq!(
        refused(&event),
        (
            RejectedBy::Inspect,
            Reason::Protocol(ProtocolErrorKind::Parse),
            -32700
        )
    );
    assert_eq!(event.error_type().as_deref(), Some("-32700"));
    assert!(event.request_bytes() > 0);

    // 400: unsupported protocol version.
    let response = common::post_raw(
        &server.url,
        TOOLS_LIST.as_bytes().to_vec(),
        &[BEARER, ("mcp-protocol-version", "1999-01-01")],
    )
    .await;
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 400);
    assert_eq!(
        refused(&event),
        (
            RejectedBy::Inspect,
            Reason::Protocol(ProtocolErrorKind::UnsupportedVersion),
            -32022
        )
    );
    let line = serde_json::to_value(&event).unwrap();
    assert_eq!(line["mcp_edge.refused_by"], "inspect");
    assert_eq!(
        line["mcp_edge.refusal.reason"],
        "unsupported_protocol_version"
    );
    assert_eq!(line["http.response.status_code"], 400);
}

#[tokio::test]
async fn origin_refusal_before_any_body_is_recorded_with_what_is_known() {
    let recorder = Recorder::new();
    let server = serve(&recorder);
    let response = common::post_raw(
        &server.url,
        TOOLS_LIST.as_bytes().to_vec(),
        &[
            BEARER,
            ("origin", "https://evil.example"),
            ("x-request-id", "r-1"),
        ],
    )
    .await;
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 403);
    assert_eq!(
        refused(&event),
        (RejectedBy::Guard, Reason::OriginNotAllowed, -32600)
    );
    assert_eq!(event.request_id(), "r-1");
    assert!(event.request().is_none(), "inspect never ran");
    assert!(event.peer_addr().is_some());
    assert_eq!(event.request_bytes(), 0);
    assert!(event.response_bytes() > 0);
}

#[tokio::test]
async fn auth_and_session_refusals_carry_the_mcp_method_and_id() {
    let recorder = Recorder::new();
    let server = serve(&recorder);

    let response = common::post_raw(&server.url, TOOLS_LIST.as_bytes().to_vec(), &[]).await;
    assert!(response.headers().contains_key("www-authenticate"));
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 401);
    assert_eq!(
        refused(&event),
        (RejectedBy::Auth, Reason::MissingToken, -32600)
    );
    assert_eq!(event.mcp_method(), Some("tools/list"));
    assert_eq!(event.jsonrpc_id(), Some(&RequestId::from(5)));

    let response = common::post_raw(
        &server.url,
        TOOLS_LIST.as_bytes().to_vec(),
        &[("authorization", "Bearer reader-token")],
    )
    .await;
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 403);
    assert_eq!(
        refused(&event),
        (RejectedBy::Auth, Reason::InsufficientScope, -32600)
    );

    let response = common::post_raw(
        &server.url,
        TOOLS_LIST.as_bytes().to_vec(),
        &[
            BEARER,
            ("mcp-session-id", "gone"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 404);
    assert_eq!(
        refused(&event),
        (RejectedBy::Session, Reason::SessionNotFound, -32001)
    );
    // The session the client asked for is recorded, even though it is unknown.
    assert_eq!(event.session_id().map(|s| s.as_str()), Some("gone"));
    assert_eq!(event.mcp_method(), Some("tools/list"));
}

#[tokio::test]
async fn a_batch_gives_one_event_per_message() {
    let recorder = Recorder::new();
    let server = serve(&recorder);
    // A 2025-03-26 batch (no version header: 2025-03-26 assumed) refused by the 401 stand-in:
    // every message is recorded, each with its own method and id.
    let batch = json!([
        {"jsonrpc":"2.0","id":1,"method":"tools/list"},
        {"jsonrpc":"2.0","method":"notifications/initialized"},
        {"jsonrpc":"2.0","id":2,"method":"prompts/list"}
    ]);
    let response = common::post_json(&server.url, &batch, &[]).await;
    assert_eq!(response.status(), 401);
    let _ = response.bytes().await;
    let events = recorder.exactly(3).await;
    let methods: Vec<_> = events.iter().map(|e| e.mcp_method().unwrap()).collect();
    assert_eq!(
        methods,
        ["tools/list", "notifications/initialized", "prompts/list"]
    );
    assert_eq!(events[0].batch_position(), Some((0, 3)));
    assert_eq!(events[2].batch_position(), Some((2, 3)));
    assert_eq!(events[2].jsonrpc_id(), Some(&RequestId::from(2)));
    assert!(
        events
            .iter()
            .all(|e| matches!(e.outcome(), Outcome::Refused { .. }))
    );
    assert!(
        events
            .iter()
            .all(|e| e.request_id() == events[0].request_id())
    );
}

#[tokio::test]
async fn real_guard_refusals_through_mcp_edge_name_the_guard() {
    let recorder = Recorder::new();
    let edge = mcp_edge::McpEdge::builder().audit(AuditLayer::new(recorder.sink()));
    let server = common::serve(common::rmcp_router().layer(edge));

    let response = common::post_raw(
        &server.url,
        TOOLS_LIST.as_bytes().to_vec(),
        &[("origin", "https://evil.example")],
    )
    .await;
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 403);
    assert_eq!(
        refused(&event),
        (
            RejectedBy::Guard,
            Reason::OriginNotAllowed,
            event.outcome().code().unwrap()
        )
    );
    assert!(
        event.request().is_none(),
        "the guard refuses before inspect runs"
    );

    let response = common::post_raw(
        &server.url,
        b"{not json".to_vec(),
        &[("host", "evil.example.com")],
    )
    .await;
    let (status, event) = one_event(&recorder, response).await;
    assert_eq!(status, 403);
    let (by, reason, _) = refused(&event);
    assert_eq!((by, reason), (RejectedBy::Guard, Reason::HostNotAllowed));

    // And a call that passes the whole stack is a success.
    let client = common::modern_client(&server.url).await;
    common::call_tool(&client, "echo", json!({"text": "ok"}))
        .await
        .unwrap();
    let events = recorder
        .wait_until(|e| e.iter().any(|e| e.mcp_method() == Some("tools/call")))
        .await;
    let call = events
        .iter()
        .find(|e| e.mcp_method() == Some("tools/call"))
        .unwrap();
    assert_eq!(call.outcome(), &Outcome::Success);
    client.cancel().await.unwrap();
}
