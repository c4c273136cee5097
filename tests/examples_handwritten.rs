//! `examples/handwritten.rs` as a user copies it: a hand-written axum MCP endpoint (no SDK)
//! behind the default stack, in both protocol eras, with `/healthz` outside the stack.

#[path = "../examples/handwritten.rs"]
#[allow(dead_code)]
mod handwritten;

mod common;

use serde_json::{Value, json};

use common::{http_client, post_json, serve};

const MODERN_META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

#[tokio::test]
async fn handwritten_endpoint_answers_both_eras_behind_the_stack() {
    let server = serve(handwritten::app());
    let mcp = format!("http://{}/mcp", server.addr);

    // 2025-11-25: initialize, then tools/list and an echo call.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}});
    let response = post_json(&mcp, &init, &[]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-11-25");

    let legacy = [("mcp-protocol-version", "2025-11-25")];
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let body: Value = post_json(&mcp, &list, &legacy).await.json().await.unwrap();
    assert_eq!(body["result"]["tools"][0]["name"], "echo");
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}}});
    let body: Value = post_json(&mcp, &call, &legacy).await.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "hi");

    // 2026-07-28: stateless, the version in every request.
    let meta: Value = serde_json::from_str(MODERN_META).unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "modern"}, "_meta": meta}});
    let modern = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ];
    let response = post_json(&mcp, &call, &modern).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "modern");

    // What the stack refuses never reaches the handler: malformed JSON gets a JSON-RPC 400.
    let response = common::post_raw(&mcp, b"{not json".to_vec(), &[]).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
}

#[tokio::test]
async fn health_probe_is_outside_the_stack_and_mcp_is_guarded() {
    let server = serve(handwritten::app());
    // A probe from a pod IP with its own Host: answered, not the guard's 403.
    let health = http_client()
        .get(format!("http://{}/healthz", server.addr))
        .header("host", "10.1.2.3:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The same foreign Host on /mcp: the guard refuses it (DNS rebinding protection).
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let mcp = format!("http://{}/mcp", server.addr);
    let response = post_json(&mcp, &init, &[("host", "evil.example")]).await;
    assert_eq!(response.status(), 403);
}
