//! mcp-edge with plain hyper (no axum): an rmcp `StreamableHttpService` wrapped in mcp-edge's
//! layers, served by `mcp_edge::serve::Server` (hyper's HTTP/1 with timeouts and a connection
//! cap). `cargo run --example hyper` (listens on 127.0.0.1:8080, or `MCP_EDGE_BIND`). One
//! file: copy it.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use mcp_edge::{EdgeBody, McpEdge, serve::Server};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use tower::{ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // rmcp's loopback-only Host check is off: mcp-edge's guard owns Host/Origin checks.
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    let rmcp = StreamableHttpService::new(
        || Ok(Hello::new()),
        LocalSessionManager::default().into(),
        config,
    );
    // mcp-edge in front: a loopback Host/Origin guard, the body read once, bounded and parsed.
    let mcp = ServiceBuilder::new()
        .layer(McpEdge::builder())
        .service(rmcp);

    // Only /mcp is the MCP endpoint; everything else is 404.
    // `Server` puts the peer address in every request as `mcp_edge::PeerAddr`, where the
    // guard (trusted proxies) reads it.
    let app = tower::service_fn(move |request: Request<Incoming>| {
        let mcp = mcp.clone();
        async move {
            if request.uri().path() == "/mcp" {
                mcp.oneshot(request).await
            } else {
                let mut not_found = Response::new(EdgeBody::empty());
                *not_found.status_mut() = StatusCode::NOT_FOUND;
                Ok(not_found)
            }
        }
    });

    let bind = std::env::var("MCP_EDGE_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("MCP endpoint: http://{}/mcp", listener.local_addr()?);
    // Instead of a bare accept loop, which has no timeouts: 10 s for a request head and
    // between keep-alive requests, at most 10,000 connections, TCP_NODELAY (small SSE frames
    // otherwise wait ~40 ms each on Nagle + delayed ACKs).
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
