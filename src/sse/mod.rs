//! [`SseLayer`]: `text/event-stream` responses that survive real proxies.
//!
//! The first thing that breaks when an MCP server goes to production is its SSE stream: a
//! reverse proxy buffers it (the client sees nothing until the tool finishes), an idle
//! timeout cuts a quiet GET stream, a CDN holds the headers until the first body byte, and a
//! rolling deploy either hangs on open streams or cuts them mid-event. `SseLayer` fixes all
//! of that for any server (rmcp, a hand-written axum handler, a proxied SDK) without touching
//! a byte of its events.
//!
//! For responses whose `Content-Type` is `text/event-stream` (decided from the response,
//! never the request, R7), and only for those:
//!
//! - **headers** (R16): `Cache-Control` gains `no-cache` and `no-transform` (merged into what
//!   the server set, one header, no duplicates), `X-Accel-Buffering: no` is set once, and
//!   `Content-Length` is removed;
//! - **frames** are forwarded one by one as the inner body yields them, the same `Bytes`,
//!   never split, merged, reordered, held or duplicated (R14). The layer only reads each
//!   frame with a [`SseScanner`](crate::protocol::sse::SseScanner) to know where events end;
//! - **heartbeats**: after [`heartbeat`](SseLayer::heartbeat) of quiet (default 15 s), a
//!   comment line ([`HEARTBEAT_COMMENT`]), written only at an event boundary so an event is
//!   never cut in two. Every frame resets the idle clock, including the server's own
//!   keep-alive comments, so a server that already sends them (rmcp does, every 15 s) gets
//!   no extra ones. No timer work while frames flow: each frame records an instant, and one
//!   `tokio::time::Sleep` per stream, armed only while the inner body is idle, is reset only
//!   when it fires. Presets for the usual intermediaries: [`SseLayer::behind`] with an
//!   [`Intermediary`];
//! - **first byte** (opt-in, [`SseLayer::first_byte`]): a comment as soon as the stream
//!   opens, for intermediaries that hold headers until a body byte (Heroku's router);
//! - **disconnect** (R12): the body owns the inner body and nothing else does, so when the
//!   client goes away and the server drops the response body, the inner body is dropped at
//!   once (under 2026-07-28 that cancels the request, as it must);
//! - **drain** ([`Drain`], [`SseLayer::max_stream_age`]): streams end at an event boundary
//!   on shutdown or past a maximum age; a 2025-11-25 stream whose events carry ids gets a
//!   `retry:` line first (R20), any other stream may finish for up to a grace period.
//!
//! # Protocol versions (§L.5)
//!
//! The layer reads the negotiated version from the `Arc<McpRequest>` that
//! [`InspectLayer`](crate::inspect::InspectLayer) put in the request extensions (or, when used
//! alone, from the `MCP-Protocol-Version` header). It writes `retry:` only for 2025-11-25
//! clients, and never injects an event with data (no priming events, no empty `data:`), which
//! older clients choke on; comments are safe for every client.
//!
//! # Compression
//!
//! tower-http's `CompressionLayer` stacked outside (tested with tower-http 0.7.1 and
//! async-compression 0.4.52): its default predicate skips `text/event-stream`, so events
//! pass untouched and one by one. A custom predicate that forgets `NotForContentType::SSE`
//! gzips the stream, yet each event still arrives as its own decodable chunk, because the
//! encoder flushes whenever the inner body has nothing ready; the cost is a `Vary` header and
//! a compressed stream some SSE clients cannot read, so keep `NotForContentType::SSE` in
//! custom predicates (`SizeAbove::new(256).and(NotForContentType::SSE)`). The layer's
//! `Cache-Control: no-transform` also tells CDNs and proxies not to compress or rewrite the
//! stream.
//!
//! # In the stack
//!
//! Innermost, next to the MCP service, so that it sees the server's own frames and the
//! layers outside it see the finished stream: `McpEdge::builder().sse(SseLayer::new())`, or
//! with `ServiceBuilder` after `InspectLayer` (which gives it the protocol version).
//!
//! # Runtime
//!
//! Heartbeats, maximum age and drain grace use `tokio::time`: streams must be polled inside a
//! Tokio runtime with the time driver enabled (as axum and hyper servers are).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use mcp_edge::sse::{Intermediary, SseLayer};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(SseLayer::new().behind(Intermediary::Nginx))
//!     .service_fn(|_: Request<Full<Bytes>>| async {
//!         let response = Response::builder()
//!             .header("content-type", "text/event-stream")
//!             .header("cache-control", "no-cache")
//!             .body(Full::new(Bytes::from_static(b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")))
//!             .unwrap();
//!         Ok::<_, std::convert::Infallible>(response)
//!     });
//! let response = service.oneshot(Request::new(Full::default())).await.unwrap();
//! assert_eq!(response.headers()["x-accel-buffering"], "no");
//! assert_eq!(response.headers()["cache-control"], "no-cache, no-transform");
//! assert!(response.headers().get("content-length").is_none());
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n");
//! # }
//! ```

mod body;
mod drain;
mod future;
mod layer;
pub mod resume;
mod service;

use std::time::Duration;

pub use body::SseBody;
pub use drain::Drain;
pub use future::ResponseFuture;
pub use layer::SseLayer;
pub use resume::ResumeLayer;
pub use service::Sse;

/// The default heartbeat interval: 15 s (rmcp's `sse_keep_alive`).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// The default grace period for draining streams that cannot be resumed: 30 s.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// The default `retry:` sent before closing a resumable stream: 3 s (rmcp's `sse_retry`).
pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// The heartbeat the layer writes: an SSE comment line and a blank line (which dispatches
/// nothing, since the layer writes it at an event boundary only).
pub const HEARTBEAT_COMMENT: &[u8] = b": keep-alive\n\n";

/// The first-byte comment ([`SseLayer::first_byte`]).
pub const FIRST_BYTE_COMMENT: &[u8] = b": stream open\n\n";

/// An intermediary with an idle limit on streamed responses, for [`SseLayer::behind`].
///
/// The figures are the vendors' documented defaults; if you changed yours, use
/// [`SseLayer::heartbeat`] with a value below it instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Intermediary {
    /// nginx `proxy_pass`: `proxy_read_timeout` defaults to 60 s, the longest wait between
    /// two reads from the upstream before nginx closes the connection.
    Nginx,
    /// AWS Application Load Balancer: the connection idle timeout defaults to 60 s
    /// (configurable from 1 to 4000 s).
    AwsAlb,
    /// Cloudflare: the proxy read timeout is 100 s (a 524 error past it; Enterprise plans may
    /// change it).
    Cloudflare,
    /// Heroku's router: the first byte within 30 s, then a rolling 55 s window between bytes.
    /// Turns the first-byte comment on.
    Heroku,
}

impl Intermediary {
    /// The intermediary's documented default idle limit.
    pub const fn idle_limit(self) -> Duration {
        match self {
            Intermediary::Nginx | Intermediary::AwsAlb => Duration::from_secs(60),
            Intermediary::Cloudflare => Duration::from_secs(100),
            Intermediary::Heroku => Duration::from_secs(55),
        }
    }

    /// The heartbeat interval used for it: half the idle limit, so that a heartbeat delayed
    /// by a slow event still lands in time.
    pub const fn heartbeat(self) -> Duration {
        Duration::from_millis(self.idle_limit().as_millis() as u64 / 2)
    }

    /// True when the intermediary needs a body byte early (Heroku: 30 s to first byte).
    pub const fn needs_first_byte(self) -> bool {
        matches!(self, Intermediary::Heroku)
    }
}
