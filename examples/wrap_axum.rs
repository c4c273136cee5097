//! You already have an axum app serving an rmcp `StreamableHttpService`; add mcp-edge in front
//! of the MCP endpoint. `cargo run --example wrap_axum` (listens on 127.0.0.1:8080, or
//! `MCP_EDGE_BIND`).

#[path = "common/tools.rs"]
mod tools;

use axum::{Router, routing::get};
use mcp_edge::McpEdge;
use mcp_edge::serve::Server;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Your rmcp service, as before, except: rmcp's loopback-only Host check is off, because
    // mcp-edge's guard owns Host/Origin checks (and knows about trusted proxies).
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    let mcp = StreamableHttpService::new(
        || Ok(tools::DemoTools::new()),
        LocalSessionManager::default().into(),
        config,
    );

    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest_service("/mcp", mcp)
        // The new line: mcp-edge in front. The default guard accepts loopback Host names only
        // (`.guard(GuardLayer::new().allow_hosts([..]))` for yours); inspect bounds and parses
        // each body once.
        .layer(McpEdge::builder());

    let bind = std::env::var("MCP_EDGE_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("MCP endpoint: http://{}/mcp", listener.local_addr()?);
    // Instead of `axum::serve`, which has no timeouts: 10 s for a request head and between
    // keep-alive requests, at most 10,000 connections, TCP_NODELAY (small SSE frames otherwise
    // wait ~40 ms each on Nagle + delayed ACKs), the peer address as `mcp_edge::PeerAddr`.
    Server::new().serve(listener, app).await
}
