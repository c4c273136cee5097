//! [`SessionLayer`]: legacy MCP sessions, known, bound to their principal, and expired at
//! the edge.
//!
//! MCP 2025-03-26 to 2025-11-25 sessions (`Mcp-Session-Id`, R23–R32) live in one server's
//! memory; this layer keeps a record of each in a [`SessionStore`](crate::store::SessionStore)
//! so the edge can check every request against it, bind it to the principal that opened it,
//! expire it, and share it between gateway instances (with the Redis store). Modern
//! (2026-07-28) requests are stateless and pass untouched (R31).
//!
//! It learns a session from the `Mcp-Session-Id` header of the `initialize` response (JSON or
//! SSE: the header comes with the response head) and records the principal's issuer and
//! subject (when an auth layer put a [`Principal`](crate::Principal) in the request
//! extensions), the protocol version (the one the client then speaks), its `clientInfo`, the
//! [`Replica`](crate::Replica) an affinity router answered from, and its times. It puts the
//! [`SessionId`](crate::SessionId) in the request extensions (for the layers and handlers
//! inside) and the response extensions (for audit).
//!
//! Two [`SessionMode`]s:
//! - **Observe** (default): the server stays the authority for what only it can know.
//!   Sessions the server knows and the edge does not are adopted, and a missing or invalid
//!   header passes. What the edge does know holds here too: a session presented by another
//!   principal → `404` (R32, §L.13); a `DELETE` of a session the store never recorded or has
//!   ended → `404` (R27); the session caps, when set.
//! - **Enforce**: the edge is the authority. A non-initialize request without the header →
//!   `400` (R26); an invalid header → `400`; an unknown, expired or ended session → `404`
//!   (R27); idle TTL and absolute lifetime; store failures → `503`.
//!
//! In both modes the caps per principal (`429`) and in total (`503`) refuse an `initialize`,
//! never with 400/404/405 there (R45), and every refusal has a JSON-RPC error body.
//!
//! In both modes a `DELETE` the server accepts (2xx) ends the record, and so does a `404`
//! from the server for a session.
//!
//! Place it inside [`InspectLayer`](crate::inspect::InspectLayer) (it reads the
//! `Arc<McpRequest>` inspect puts in the extensions; unclassified requests pass untouched)
//! and inside the auth layer (for the principal binding).
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use mcp_edge::inspect::InspectLayer;
//! use mcp_edge::session::SessionLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(InspectLayer::new())
//!     .layer(SessionLayer::new().enforce())
//!     .service_fn(|_request: Request<_>| async {
//!         // A server that hands out session "s1" on every initialize.
//!         let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
//!         response.headers_mut().insert("mcp-session-id", "s1".parse().unwrap());
//!         Ok::<_, std::convert::Infallible>(response)
//!     });
//!
//! let post = |session: Option<&str>, body: &'static str| {
//!     let mut request = Request::post("/mcp")
//!         .header("content-type", "application/json")
//!         .header("accept", "application/json, text/event-stream");
//!     if let Some(id) = session {
//!         request = request.header("mcp-session-id", id);
//!     }
//!     request.body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
//! };
//! let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#;
//! let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
//!
//! let response = service.clone().oneshot(post(None, init)).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! let response = service.clone().oneshot(post(Some("s1"), list)).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! let response = service.clone().oneshot(post(Some("s2"), list)).await.unwrap();
//! assert_eq!(response.status(), StatusCode::NOT_FOUND);
//! let response = service.clone().oneshot(post(None, list)).await.unwrap();
//! assert_eq!(response.status(), StatusCode::BAD_REQUEST);
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{SessionLayer, SessionMode};
pub use service::Session;
