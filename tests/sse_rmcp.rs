//! Real rmcp clients of both eras through InspectLayer + SseLayer (with a heartbeat short
//! enough to land between progress notifications): results and every progress notification
//! arrive unchanged; rmcp's own keep-alives and headers are not doubled.

mod common;

use std::time::Duration;

use common::*;
use mcp_edge::McpEdge;
use mcp_edge::inspect::InspectLayer;
use mcp_edge::sse::SseLayer;
use serde_json::json;
use tower::ServiceBuilder;

fn app() -> axum::Router {
    let service = ServiceBuilder::new()
        .layer(InspectLayer::new())
        .layer(SseLayer::new().heartbeat(Duration::from_millis(50)))
        .service(rmcp_service());
    axum::Router::new().nest_service(MCP_PATH, service)
}

async fn slow_count_through_the_layer(client: &Client) {
    let (result, progress) =
        call_tool_with_progress(client, "slow_count", json!({"n": 4, "delay_ms": 200}), 4).await;
    assert_eq!(text_of(&result.unwrap()), "counted to 4");
    let values: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert_eq!(values, vec![1.0, 2.0, 3.0, 4.0], "each once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_rmcp_client_gets_every_event_through_sse_layer() {
    let server = serve(app());
    let client = legacy_client(&server.url).await;
    slow_count_through_the_layer(&client).await;
    let echoed = call_tool(&client, "echo", json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(text_of(&echoed), "hi");
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_rmcp_client_gets_every_event_through_sse_layer() {
    let server = serve(app());
    let client = modern_client(&server.url).await;
    slow_count_through_the_layer(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_layer_in_the_mcp_edge_builder_serves_both_eras() {
    let edge = McpEdge::builder().sse(SseLayer::new().heartbeat(Duration::from_millis(50)));
    let server = serve(rmcp_router().layer(edge));
    let legacy = legacy_client(&server.url).await;
    slow_count_through_the_layer(&legacy).await;
    legacy.cancel().await.unwrap();
    let modern = modern_client(&server.url).await;
    slow_count_through_the_layer(&modern).await;
    modern.cancel().await.unwrap();

    // rmcp's own anti-buffering headers and the layer's are merged, once each.
    let response = post_json(&server.url, &initialize_body("2025-11-25"), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(
        response
            .headers()
            .get_all("x-accel-buffering")
            .iter()
            .count(),
        1
    );
    assert_eq!(
        response.headers()["cache-control"],
        "no-cache, no-transform"
    );
}
