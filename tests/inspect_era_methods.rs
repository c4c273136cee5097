//! Methods the request's protocol era does not define go to the server unjudged: a 2026-07-28
//! `resources/subscribe` (removed by SEP-2575) gets, through the whole stack, the same answer
//! the bare rmcp server gives (404 with `-32601`, R43), not the edge's 400 for missing params.
//! This is the conformance suite's `sep-2575-http-server-method-not-found-404-resources-*`.

mod common;

use common::*;
use mcp_edge::McpEdge;
use mcp_edge::audit::{AuditEvent, AuditLayer};
use mcp_edge::session::SessionLayer;
use mcp_edge::sse::SseLayer;
use serde_json::{Value, json};

/// The example server's stack without auth: audit → guard → inspect → session → sse.
fn stacked() -> TestServer {
    let edge = McpEdge::builder()
        .audit(AuditLayer::new(|_: AuditEvent| {}))
        .session(SessionLayer::new())
        .sse(SseLayer::new());
    serve(rmcp_router().layer(edge))
}

fn modern_request(method: &str, uri: Option<&str>) -> Value {
    let mut params = json!({
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "conformance", "version": "0"},
        }
    });
    if let Some(uri) = uri {
        params["uri"] = json!(uri);
    }
    json!({"jsonrpc": "2.0", "id": 500, "method": method, "params": params})
}

/// HTTP status, JSON-RPC error code and id of the answer to `body`.
async fn answer(url: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value, Value) {
    let response = post_json(url, body, headers).await;
    let status = response.status().as_u16();
    let messages = response_messages(response).await;
    let last = messages.last().cloned().unwrap_or(Value::Null);
    (status, last["error"]["code"].clone(), last["id"].clone())
}

#[tokio::test]
async fn modern_resources_subscribe_gets_the_servers_own_answer_through_the_stack() {
    let bare = serve(rmcp_router());
    let stack = stacked();
    let uri = "test://watched-resource";
    for method in ["resources/subscribe", "resources/unsubscribe"] {
        let version = ("mcp-protocol-version", "2026-07-28");
        let cases = [
            // As the conformance suite sends it: no uri, so no Mcp-Name.
            (
                modern_request(method, None),
                vec![version, ("mcp-method", method)],
            ),
            (
                modern_request(method, Some(uri)),
                vec![version, ("mcp-method", method), ("mcp-name", uri)],
            ),
        ];
        for (body, headers) in &cases {
            let through = answer(&stack.url, body, headers).await;
            let direct = answer(&bare.url, body, headers).await;
            assert_eq!(through, direct, "{body}: stack vs bare");
            assert_eq!(through, (404, json!(-32601), json!(500)), "{body}");
        }
        // Whatever else the server makes of the method is its own call too (rmcp answers a
        // uri without Mcp-Name with its -32020): the stack gives the same.
        let body = modern_request(method, Some(uri));
        let headers = [version, ("mcp-method", method)];
        let through = answer(&stack.url, &body, &headers).await;
        assert_eq!(through, answer(&bare.url, &body, &headers).await, "{body}");
    }
}

#[tokio::test]
async fn modern_initialize_gets_the_servers_own_404_through_the_stack() {
    // 2026-07-28 removed `initialize`: the edge must not turn it back into a legacy handshake
    // (by dropping its MCP-Protocol-Version header, as it does for a legacy initialize).
    let bare = serve(rmcp_router());
    let stack = stacked();
    // As the conformance suite sends it: only the 2026-07-28 `_meta`.
    let body = modern_request("initialize", None);
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "initialize"),
    ];
    let through = answer(&stack.url, &body, &headers).await;
    let direct = answer(&bare.url, &body, &headers).await;
    assert_eq!(through, direct, "stack vs bare");
    assert_eq!(through, (404, json!(-32601), json!(500)));
}

#[tokio::test]
async fn legacy_resources_subscribe_still_needs_its_uri() {
    let stack = stacked();
    let session = raw_legacy_session(&stack.url).await;
    let response = post_json(
        &stack.url,
        &json!({"jsonrpc": "2.0", "id": 7, "method": "resources/subscribe", "params": {}}),
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON-RPC error body");
    assert_eq!(body["error"]["code"], -32602);
    assert_eq!(body["id"], 7);
}
