//! You already have an axum app serving an rmcp `StreamableHttpService`; add mcp-edge in front
//! of the MCP endpoint only, with the health probe outside it. `cargo run --example wrap_axum`
//! (listens on 127.0.0.1:8080, or `MCP_EDGE_BIND`). One file: copy it.

use axum::{Router, routing::get};
use mcp_edge::McpEdge;
use mcp_edge::serve::Server;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Your rmcp service, as before, except: rmcp's loopback-only Host check is off, because
    // mcp-edge's guard owns Host/Origin checks (and knows about trusted proxies).
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    let mcp = StreamableHttpService::new(
        || Ok(Hello::new()),
        LocalSessionManager::default().into(),
        config,
    );

    // The new lines: mcp-edge in front of /mcp only. The default guard accepts loopback Host
    // names only (`.guard(GuardLayer::new().allow_hosts([..]))` for yours); inspect bounds
    // and parses each body once.
    let mcp = Router::new()
        .nest_service("/mcp", mcp)
        .layer(McpEdge::builder());
    // Health probes come from a pod IP or a load balancer with their own Host: keep them
    // outside the stack, or the guard answers them 403.
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(mcp);

    let bind = std::env::var("MCP_EDGE_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("MCP endpoint: http://{}/mcp", listener.local_addr()?);
    // Instead of `axum::serve`, which has no timeouts: 10 s for a request head and between
    // keep-alive requests, at most 10,000 connections, TCP_NODELAY (small SSE frames otherwise
    // wait ~40 ms each on Nagle + delayed ACKs), the peer address as `mcp_edge::PeerAddr`.
    Server::new().serve(listener, app).await
}

/// Your MCP server: one tool, as in rmcp's own examples.
#[derive(Clone)]
struct Hello {
    tool_router: ToolRouter<Self>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[tool_router]
impl Hello {
    fn new() -> Self {
        Hello {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Returns its `text` argument unchanged.")]
    async fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Hello {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}
