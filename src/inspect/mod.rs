//! [`InspectLayer`]: classify every MCP request once, and read a POST body once, bounded.
//!
//! Every layer after this one needs to know what a request is: its era, its protocol version,
//! its JSON-RPC method, id and target. `InspectLayer` works that out once per request and
//! shares it as `Arc<McpRequest>` in the request extensions (for the layers and handlers
//! inside) and in the response extensions (for the layers outside, such as audit).
//!
//! For a POST it checks `Content-Type` (415), reads the body up to a limit (413 past it,
//! without reading the rest), parses the JSON-RPC envelope (400 with `-32700` / `-32600`),
//! checks `MCP-Protocol-Version` (400 with `-32022` for unknown versions, never on
//! `initialize`), and for 2026-07-28 requests checks `Mcp-Method` / `Mcp-Name` against the
//! body (400 with `-32020`). The inner service receives the body byte for byte as it was sent.
//! GET and DELETE bodies pass through untouched; other methods pass through unclassified.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use mcp_edge::inspect::InspectLayer;
//! use mcp_edge::protocol::McpRequest;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(InspectLayer::new().max_body_bytes(1 << 20))
//!     .service_fn(|request: Request<_>| async move {
//!         let mcp = request.extensions().get::<Arc<McpRequest>>().unwrap();
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
//!             mcp.method().unwrap_or_default().to_owned(),
//!         ))))
//!     });
//! let request = Request::post("/mcp")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert!(response.extensions().get::<Arc<McpRequest>>().is_some());
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::InspectLayer;
pub use service::Inspect;

/// The default body limit: 4 MiB, as rmcp's.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
