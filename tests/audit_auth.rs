//! Audit with the real auth layer in the `McpEdge` stack (audit → guard → inspect → auth), a
//! real rmcp server and real rmcp clients: the principal on every event, 401 and 403
//! refusals named, and the token nowhere in the audit output.

#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use audit_fixtures::{Recorder, connect_info};
use mcp_edge::audit::{AuditEvent, AuditLayer, Outcome};
use mcp_edge::auth::{AuthLayer, ScopePolicy, StaticTokens};
use mcp_edge::protocol::Target;
use mcp_edge::{McpEdge, Principal, Reason, RejectedBy};
use serde_json::json;
use tower::ServiceBuilder;

const READER: &str = "tok-reader-SECRET-81f2";

fn serve(recorder: &Recorder) -> common::TestServer {
    let tokens = StaticTokens::new().token(
        READER,
        Principal::new("reader-sub")
            .with_issuer("https://as.test")
            .with_client_id("cli-1")
            .with_scopes(["mcp:tools"]),
    );
    let auth = AuthLayer::new(tokens).policy(ScopePolicy::new().tool("slow_*", ["mcp:slow"]));
    let edge = McpEdge::builder()
        .audit(AuditLayer::new(recorder.sink()).peer_addr(connect_info))
        .auth(auth);
    common::serve_service(
        ServiceBuilder::new()
            .layer(edge)
            .service(common::rmcp_service()),
    )
}

fn refusal(event: &AuditEvent) -> (RejectedBy, Reason) {
    match event.outcome() {
        Outcome::Refused { by, reason, .. } => (*by, *reason),
        other => panic!("expected a refusal, got {other:?}: {event:#?}"),
    }
}

#[tokio::test]
async fn principal_is_recorded_and_auth_refusals_are_named() {
    let recorder = Recorder::new();
    let server = serve(&recorder);

    // A real client with a token: its calls carry the principal.
    let client = common::modern_client_with_auth(&server.url, &common::bearer(READER)).await;
    common::call_tool(&client, "echo", json!({"text": "hi"}))
        .await
        .unwrap();
    // Lacking mcp:slow: 403 from the auth layer.
    assert!(
        common::call_tool(&client, "slow_count", json!({"n": 1}))
            .await
            .is_err()
    );
    client.cancel().await.unwrap();
    let events = recorder
        .wait_until(|e| {
            e.iter()
                .filter(|e| e.mcp_method() == Some("tools/call"))
                .count()
                == 2
        })
        .await;
    let echo = events
        .iter()
        .find(|e| e.target() == Some(&Target::Tool("echo".into())))
        .unwrap();
    assert_eq!(echo.outcome(), &Outcome::Success);
    let principal = echo.principal().expect("principal from the auth layer");
    assert_eq!(principal.subject(), "reader-sub");
    assert_eq!(principal.issuer(), Some("https://as.test"));
    assert_eq!(principal.client_id(), Some("cli-1"));
    let slow = events
        .iter()
        .find(|e| e.target() == Some(&Target::Tool("slow_count".into())))
        .unwrap();
    assert_eq!(slow.status().map(|s| s.as_u16()), Some(403));
    assert_eq!(refusal(slow), (RejectedBy::Auth, Reason::InsufficientScope));

    for event in &events {
        let line = serde_json::to_string(event).unwrap();
        assert!(!line.contains("SECRET"), "{line}");
    }

    // No token: 401 missing_token; a wrong token: 401 invalid_token.
    recorder.clear();
    let list = json!({"jsonrpc":"2.0","id":3,"method":"tools/list"});
    let response = common::post_json(&server.url, &list, &[]).await;
    assert_eq!(response.status(), 401);
    let _ = response.bytes().await;
    let wrong = common::bearer("tok-wrong-SECRET-0000");
    let response = common::post_json(&server.url, &list, &[("authorization", &wrong)]).await;
    assert_eq!(response.status(), 401);
    let _ = response.bytes().await;
    let events = recorder.exactly(2).await;
    assert_eq!(
        refusal(&events[0]),
        (RejectedBy::Auth, Reason::MissingToken)
    );
    assert_eq!(
        refusal(&events[1]),
        (RejectedBy::Auth, Reason::InvalidToken)
    );
    assert_eq!(events[1].mcp_method(), Some("tools/list"));
    for event in &events {
        let line = serde_json::to_string(event).unwrap();
        assert!(!line.contains("SECRET"), "{line}");
    }
}
