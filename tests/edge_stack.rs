//! The whole `McpEdge` stack in front of a real rmcp server, reached by real rmcp clients in
//! both protocol eras.

mod common;

use common::*;
use mcp_edge::McpEdge;
use rmcp::model::ProtocolVersion;
use serde_json::json;

fn edge_server() -> TestServer {
    serve(rmcp_router().layer(McpEdge::builder()))
}

async fn round(client: &Client) {
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 3);
    let echoed = call_tool(client, "echo", json!({"text": "stacked"}))
        .await
        .expect("echo");
    assert_eq!(text_of(&echoed), "stacked");
    let (counted, progress) =
        call_tool_with_progress(client, "slow_count", json!({"n": 3, "delay_ms": 30}), 3).await;
    assert_eq!(text_of(&counted.expect("slow_count")), "counted to 3");
    assert_eq!(progress.len(), 3);
}

#[tokio::test]
async fn legacy_session_through_the_stack() {
    let server = edge_server();
    let client = legacy_client(&server.url).await;
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2025_11_25
    );
    round(&client).await;
    client.cancel().await.expect("DELETE");
}

#[tokio::test]
async fn modern_stateless_through_the_stack() {
    let server = edge_server();
    let client = modern_client(&server.url).await;
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );
    round(&client).await;
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn rebinding_host_is_refused_before_the_body_is_read() {
    let server = edge_server();
    // A body that inspect would refuse (bad JSON): the guard answers first.
    let response = post_raw(
        &server.url,
        b"{not json".to_vec(),
        &[("host", "evil.example.com")],
    )
    .await;
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(body["error"]["code"].is_i64());
}
