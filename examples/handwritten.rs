//! An MCP endpoint written by hand in axum (no SDK) behind mcp-edge: the stack gives it what
//! SDKs do for themselves and more (Host/Origin checks, bodies bounded and parsed once, both
//! protocol eras classified, refusals with JSON-RPC bodies, SSE hygiene) and the handler reads
//! the parsed request from the extensions. `cargo run --example handwritten` (listens on
//! 127.0.0.1:8080, or `MCP_EDGE_BIND`). One file: copy it.

use std::sync::Arc;

use axum::extract::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mcp_edge::serve::Server;
use mcp_edge::{McpEdge, McpRequest, Principal};
use serde_json::{Value, json};

/// The protocol version this endpoint answers `initialize` with.
const VERSION: &str = "2025-11-25";

/// One JSON-RPC message in, one answer out. The inspect layer in front already refused
/// malformed JSON (400, `-32700`), oversized bodies (413), bad envelopes and unsupported
/// protocol versions, so the handler sees only well-formed requests.
async fn mcp(
    Extension(request): Extension<Arc<McpRequest>>,
    principal: Option<Extension<Principal>>,
    Json(body): Json<Value>,
) -> Response {
    let Some(id) = body.get("id").cloned() else {
        // A notification (`notifications/initialized`, `notifications/cancelled`, …).
        return StatusCode::ACCEPTED.into_response();
    };
    let result = match request.method().unwrap_or_default() {
        "initialize" => json!({
            "protocolVersion": VERSION,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "handwritten", "version": "0.1.0"}
        }),
        "ping" => json!({}),
        "tools/list" => json!({"tools": [{
            "name": "echo",
            "description": "Returns its `text` argument unchanged.",
            "inputSchema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"]
            }
        }]}),
        "tools/call" if body["params"]["name"] == "echo" => {
            let text = body["params"]["arguments"]["text"]
                .as_str()
                .unwrap_or_default();
            // The caller, when an auth layer is in the stack: `Extension<Principal>`.
            let who = principal.map_or("anonymous".to_owned(), |p| p.subject().to_owned());
            json!({"content": [{"type": "text", "text": text}], "_meta": {"caller": who}})
        }
        method => {
            let error = json!({"code": -32601, "message": format!("Method not found: {method}")});
            return Json(json!({"jsonrpc": "2.0", "id": id, "error": error})).into_response();
        }
    };
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

/// The app: `/mcp` behind the stack, `/healthz` outside it.
pub fn app() -> Router {
    let mcp = Router::new()
        .route("/mcp", post(mcp))
        // The default stack: a loopback Host/Origin guard, bodies read once, bounded and
        // parsed (add `.auth(..)`, `.session(..)`, `.sse(..)`, `.audit(..)` as you need).
        .layer(McpEdge::builder());
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(mcp)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::var("MCP_EDGE_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("MCP endpoint: http://{}/mcp", listener.local_addr()?);
    Server::new().serve(listener, app()).await
}
