//! Audit events for the real session and auth layers' refusals, through the full `McpEdge`
//! stack in front of a real rmcp server: each names the layer and the reason, and neither the
//! events nor the JSON-lines file ever hold a token.

mod common;
#[path = "common/edge.rs"]
mod edge;

use common::*;
use edge::*;
use http::{Method, StatusCode};
use mcp_edge::audit::AuditEvent;
use mcp_edge::{Reason, RejectedBy};
use serde_json::json;

const LEGACY: (&str, &str) = ("mcp-protocol-version", "2025-11-25");

fn list(id: i64) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
}

async fn refused_with(response: reqwest::Response, status: u16, code: i64, id: Option<i64>) {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.expect("JSON-RPC body");
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], code);
    match id {
        Some(id) => assert_eq!(body["id"], id),
        None => assert!(body.get("id").is_none()),
    }
}

fn by_id(events: &[AuditEvent], id: i64) -> &AuditEvent {
    let id = id.to_string();
    let found: Vec<_> = events
        .iter()
        .filter(|e| e.jsonrpc_id().is_some_and(|i| i.to_string() == id))
        .collect();
    assert_eq!(found.len(), 1, "one event for id {id}: {events:#?}");
    found[0]
}

fn line_for(lines: &[serde_json::Value], id: i64) -> &serde_json::Value {
    let id = id.to_string();
    let found: Vec<_> = lines
        .iter()
        .filter(|l| l["jsonrpc.request.id"] == id.as_str())
        .collect();
    assert_eq!(found.len(), 1, "one line for id {id}");
    found[0]
}

#[tokio::test]
async fn session_and_auth_refusals_give_events_naming_layer_and_reason_and_no_token() {
    let stack = EdgeStack::start().await;
    let alice = bearer(ALICE_TOKEN);
    let alice = ("authorization", alice.as_str());

    // 400: a legacy request without a session id (R26).
    let response = post_json(&stack.url, &list(51), &[alice, LEGACY]).await;
    refused_with(response, 400, -32000, Some(51)).await;
    // 400 for the GET stream too.
    let response = http_client()
        .get(&stack.url)
        .header("accept", "text/event-stream")
        .header(alice.0, alice.1)
        .header(LEGACY.0, LEGACY.1)
        .send()
        .await
        .unwrap();
    refused_with(response, 400, -32000, None).await;
    // 404: a session the edge never issued (R27).
    let unknown = ("mcp-session-id", "no-such-session");
    let response = post_json(&stack.url, &list(52), &[alice, LEGACY, unknown]).await;
    refused_with(response, 404, -32001, Some(52)).await;
    // 401 without a token, 401 with a wrong one.
    let response = post_json(&stack.url, &list(53), &[LEGACY, unknown]).await;
    refused_with(response, 401, -32600, Some(53)).await;
    let wrong = bearer(WRONG_TOKEN);
    let response = post_json(
        &stack.url,
        &list(54),
        &[("authorization", wrong.as_str()), LEGACY],
    )
    .await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    refused_with(response, 401, -32600, Some(54)).await;
    // 403: bob's valid token lacks the scope slow_count needs; a real modern client.
    let bob = modern_client_with_auth(&stack.url, &bearer(BOB_TOKEN)).await;
    let refused = call_tool(&bob, "slow_count", json!({"n": 1})).await;
    assert!(refused.is_err());
    bob.cancel().await.unwrap();
    let finished = stack.finish().await;
    let events = &finished.events;

    let missing = by_id(events, 51);
    assert_eq!(
        refusal(missing),
        (RejectedBy::Session, Reason::SessionRequired, -32000)
    );
    assert_eq!(missing.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(missing.mcp_method(), Some("tools/list"));
    assert_eq!(subject(missing), Some("alice"), "auth ran first");
    assert_eq!(session(missing), None);
    let get: Vec<_> = events
        .iter()
        .filter(|e| e.http_method() == Method::GET)
        .collect();
    assert_eq!(get.len(), 1, "{events:#?}");
    assert_eq!(
        refusal(get[0]),
        (RejectedBy::Session, Reason::SessionRequired, -32000)
    );
    assert_eq!(subject(get[0]), Some("alice"));

    let unknown = by_id(events, 52);
    assert_eq!(
        refusal(unknown),
        (RejectedBy::Session, Reason::SessionNotFound, -32001)
    );
    assert_eq!(unknown.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(session(unknown), Some("no-such-session"));
    assert_eq!(subject(unknown), Some("alice"));

    let anonymous = by_id(events, 53);
    assert_eq!(
        refusal(anonymous),
        (RejectedBy::Auth, Reason::MissingToken, -32600)
    );
    assert_eq!(anonymous.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(anonymous.principal().is_none());
    let invalid = by_id(events, 54);
    assert_eq!(
        refusal(invalid),
        (RejectedBy::Auth, Reason::InvalidToken, -32600)
    );
    assert!(invalid.principal().is_none());

    let scope: Vec<_> = events
        .iter()
        .filter(|e| tool(e) == Some("slow_count"))
        .collect();
    assert_eq!(scope.len(), 1, "{events:#?}");
    assert_eq!(
        refusal(scope[0]),
        (RejectedBy::Auth, Reason::InsufficientScope, -32600)
    );
    assert_eq!(scope[0].status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(
        subject(scope[0]),
        Some("bob"),
        "the 403 names who was refused"
    );
    assert_eq!(session(scope[0]), None);

    // The JSON-lines file says the same, one line per event.
    assert_eq!(finished.lines.len(), events.len());
    let lines: Vec<serde_json::Value> = finished
        .lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    for (id, by, reason, status) in [
        (51, "session", "session_required", 400),
        (52, "session", "session_not_found", 404),
        (53, "auth", "missing_token", 401),
        (54, "auth", "invalid_token", 401),
    ] {
        let line = line_for(&lines, id);
        assert_eq!(line["mcp_edge.outcome"], "refused", "{line}");
        assert_eq!(line["mcp_edge.refused_by"], by, "{line}");
        assert_eq!(line["mcp_edge.refusal.reason"], reason, "{line}");
        assert_eq!(line["http.response.status_code"], status, "{line}");
    }
    assert!(lines.iter().any(|l| {
        l["mcp_edge.refusal.reason"] == "insufficient_scope"
            && l["mcp_edge.principal.subject"] == "bob"
    }));
    assert_no_token_anywhere(&finished);
}
