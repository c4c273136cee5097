//! Bounded audit through real sockets and the full `McpEdge` stack: a client cannot make one
//! request write megabytes to the audit log, nor get a huge header value echoed back.

mod common;
#[path = "common/edge.rs"]
mod edge;

use common::*;
use edge::*;
use serde_json::json;

const LEGACY: (&str, &str) = ("mcp-protocol-version", "2025-11-25");

#[tokio::test]
async fn a_3_mib_id_without_a_token_gives_401_and_a_small_audit_line() {
    let stack = EdgeStack::start().await;
    let id = "x".repeat(3 * 1024 * 1024);
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});
    let response = post_json(&stack.url, &body, &[LEGACY]).await;
    assert_eq!(response.status(), 401);
    // The refusal does not echo the 3 MiB id back (it is left out, as an unknown id is).
    let answer = response.bytes().await.unwrap();
    assert!(answer.len() < 1024, "401 body of {} bytes", answer.len());
    let finished = stack.finish().await;
    assert_eq!(finished.lines.len(), 1, "{:?}", finished.lines.len());
    let line = &finished.lines[0];
    assert!(line.len() < 4 * 1024, "audit line of {} bytes", line.len());
    let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
    let recorded = parsed["jsonrpc.request.id"].as_str().unwrap();
    assert!(
        recorded.starts_with(&"x".repeat(256)),
        "the id's beginning is kept: {recorded}"
    );
    assert!(
        recorded.ends_with(&format!("…[truncated, {} bytes]", id.len())),
        "{recorded}"
    );
    assert_eq!(parsed["mcp_edge.refused_by"], "auth");
}

#[tokio::test]
async fn a_60_kb_mcp_name_gives_a_small_400_body_and_audit_line() {
    let stack = EdgeStack::start().await;
    let name = "n".repeat(60 * 1024);
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "hi"}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        }}
    });
    let response = post_json(
        &stack.url,
        &body,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", &name),
            ("authorization", &format!("Bearer {ALICE_TOKEN}")),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(
        text.len() < 1024,
        "400 body of {} bytes: {text}",
        text.len()
    );
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    let message = parsed["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Mcp-Name header `nnnn"), "{message}");
    assert!(
        message.contains("…` does not match body value `echo`"),
        "{message}"
    );
    let finished = stack.finish().await;
    assert_eq!(finished.lines.len(), 1);
    let line = &finished.lines[0];
    assert!(line.len() < 4 * 1024, "audit line of {} bytes", line.len());
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(event["mcp_edge.refused_by"], "inspect");
}
