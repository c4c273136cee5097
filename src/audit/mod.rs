//! [`AuditLayer`]: one structured [`AuditEvent`] per MCP message, for every call and every
//! refusal, without holding back a byte.
//!
//! Operators must answer "who called which tool, with what outcome, when". Put `AuditLayer`
//! outermost: it notes the start time, peer and request id (`x-request-id`, generated when
//! absent), lets the request through, and reads what the inner layers left in the response
//! extensions: the classified [`McpRequest`](crate::McpRequest) (inspect), the
//! [`Principal`](crate::Principal) (auth), the [`SessionId`](crate::SessionId) (session),
//! the [`Replica`](crate::Replica) (affinity) and, when a layer refused, the
//! [`Rejection`](crate::Rejection). The outcome comes from the response itself: a bounded copy
//! of a JSON body (64 KiB by default) parsed when it ends, or, for an SSE stream, the events
//! read as they pass until the JSON-RPC response whose id matches. Frames reach the client the
//! moment they arrive either way. A 2025-03-26 batch gives one event per message.
//!
//! Events go to an [`AuditSink`]: [`TracingSink`], [`JsonLinesSink`] (a file, optionally
//! hash-chained, see [`chain`], with signed checkpoints, see [`checkpoint`]), [`ChannelSink`],
//! or any closure. Emitting never blocks:
//! queued sinks drop and count when full. Nothing sensitive is recorded by default (R60): no
//! header values at all, and tool arguments and results only on request ([`Capture`]).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use mcp_edge::audit::{AuditEvent, AuditLayer, Outcome};
//! use mcp_edge::inspect::InspectLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let events = Arc::new(Mutex::new(Vec::<AuditEvent>::new()));
//! let seen = events.clone();
//! let service = ServiceBuilder::new()
//!     .layer(AuditLayer::new(move |event| seen.lock().unwrap().push(event)))
//!     .layer(InspectLayer::new())
//!     .service_fn(|_request: Request<_>| async {
//!         let mut response = Response::new(Full::new(Bytes::from_static(
//!             br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#,
//!         )));
//!         response.headers_mut().insert("content-type", "application/json".parse().unwrap());
//!         Ok::<_, std::convert::Infallible>(response)
//!     });
//! let request = Request::post("/mcp")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from_static(
//!         br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy"}}"#,
//!     )))
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! response.into_body().collect().await.unwrap(); // the event is emitted at the body's end
//!
//! let events = events.lock().unwrap();
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].mcp_method(), Some("tools/call"));
//! assert_eq!(events[0].target().unwrap().name(), "deploy");
//! assert_eq!(events[0].outcome(), &Outcome::ToolError);
//! # }
//! ```
//!
//! # Stacking
//! Audit must be outside every layer whose refusals it should record, and outside inspect to
//! know MCP methods: `audit → guard → inspect → auth → session → sse → service`. Without an
//! inspect layer inside, events carry HTTP facts and outcomes only.

mod body;
mod cap;
pub mod chain;
pub mod checkpoint;
mod event;
mod future;
mod json_lines;
mod layer;
mod record;
mod redact;
mod service;
mod sink;
mod telemetry;

pub use body::{AuditBody, CountingBody};
pub use event::{AuditEvent, Outcome};
pub use future::ResponseFuture;
pub use json_lines::{
    DEFAULT_FLUSH_INTERVAL, DEFAULT_QUEUE, DEFAULT_QUEUE_BYTES, JsonLinesSink, JsonLinesSinkBuilder,
};
pub use layer::{AuditLayer, DEFAULT_INSPECT_BYTES};
pub use redact::{Capture, DEFAULT_CAPTURE_BYTES, REDACTED};
pub use service::{Audit, X_REQUEST_ID};
pub use sink::{AuditSink, Both, ChannelSink, TracingSink};
