//! [`HttpUpstream`] (feature `proxy`): forward requests to one replica over HTTP/1.1, or
//! (feature `proxy-tls`) over HTTPS with HTTP/2 when the upstream offers it.
//!
//! A gateway in front of MCP replicas needs a client that is a good citizen of streaming:
//! bodies flow both ways as they come (an SSE stream stays open for hours and each event
//! goes out at once), and failures become JSON-RPC answers rather than dropped connections.
//! `HttpUpstream` is a [`Service`] over a pool of hyper HTTP/1.1 keep-alive connections per
//! upstream address:
//!
//! - request and response bodies are streamed, never buffered;
//! - a connection goes back to the pool when its response body has been read to its end,
//!   most recently used first; idle ones close after the idle timeout, and at most
//!   [`pool_max_idle`](HttpUpstreamBuilder::pool_max_idle) are kept per address. A request a
//!   pooled connection refused before writing any of it (the upstream had just closed it) is
//!   sent on another connection; one already written is never sent again (a POST is not
//!   idempotent) and answers `502`;
//! - per request: no task spawned and one allocation for the response future;
//! - hop-by-hop headers (`Connection` and those it names, `Keep-Alive`, `TE`, `Trailer`,
//!   `Transfer-Encoding`, `Upgrade`, `Proxy-*`) are dropped both ways; `Forwarded` and
//!   `X-Forwarded-For` / `-Host` / `-Proto` are added;
//! - a connect timeout and a response-head timeout, and none on the body, so an SSE
//!   stream is never cut by the gateway (R12);
//! - `TCP_NODELAY` on upstream connections: small SSE frames would otherwise wait about 40 ms
//!   each on Nagle's algorithm and delayed ACKs;
//! - connection failures answer `502` and a late head `504`, each with a JSON-RPC error body
//!   and the [`Rejection`](crate::Rejection) in the response extensions, which is how the
//!   [`AffinityRouter`](crate::affinity::AffinityRouter) knows to eject the replica.
//!
//! # `https://` upstreams (feature `proxy-tls`)
//!
//! Remote MCP servers are reached over TLS: rustls with the ring provider, the server's
//! certificate checked against the system's root certificates (read once, through
//! `rustls-native-certs`) or against a CA you give ([`UpstreamTls`], instead of or besides the
//! system's), with a client certificate when the upstream wants mutual TLS. Without the
//! feature an `https://` URL is refused when the upstream is built, saying so.
//!
//! - The handshake offers HTTP/2 and HTTP/1.1 (ALPN `h2`, `http/1.1`). When the upstream picks
//!   `h2`, every request goes over one multiplexed connection (at most as many at once as the
//!   upstream's `SETTINGS_MAX_CONCURRENT_STREAMS`, 200 for a hyper server; more wait for a
//!   stream: for an upstream holding many long streams at once, `UpstreamTls::http2(false)`).
//!   It is pinged every 30 s, idle or not, and a new one is made when it dies; only one is
//!   made at a time. When the upstream picks `http/1.1`, the keep-alive pool above runs over
//!   TLS, exactly as for `http://`.
//! - The connect timeout covers the TCP connection and the TLS handshake (and, for HTTP/2, the
//!   wait for a connection another request is making). A failed handshake (an untrusted or
//!   expired certificate, one for another name) answers `502` with a JSON-RPC error saying the
//!   TLS handshake failed, and logs rustls' reason.
//! - The response-head timeout applies per request on HTTP/2 too; dropping a response resets
//!   its stream only. SSE bodies stream frame by frame over both protocols.
//! - The plain `http://` path is unchanged: the connection kinds are an enum, nothing is boxed
//!   for them.
//!
//! ```no_run
//! # #[cfg(feature = "proxy-tls")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_edge::proxy::{HttpUpstream, HttpUpstreamBuilder, UpstreamTls};
//! type Body = http_body_util::Full<bytes::Bytes>;
//!
//! // The system's roots, HTTP/2 if the server offers it.
//! let public: HttpUpstream<Body> = HttpUpstream::new("https://mcp.example.com/mcp")?;
//! // A server with a certificate from our own CA, which wants our client certificate.
//! let tls = UpstreamTls::ca_file("/etc/mcp/ca.pem")?
//!     .client_cert_files("/etc/mcp/gateway.pem", "/etc/mcp/gateway.key")?;
//! let internal: HttpUpstream<Body> = HttpUpstreamBuilder::new()
//!     .tls(tls)
//!     .build("https://tools.internal:8443/mcp")?;
//! # let _ = (public, internal); Ok(()) }
//! # #[cfg(not(feature = "proxy-tls"))]
//! # fn main() {}
//! ```
//!
//! [`Service`]: tower_service::Service
//!
//! ```no_run
//! use std::time::Duration;
//! use mcp_edge::proxy::{HttpUpstream, HttpUpstreamBuilder};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream: HttpUpstream<http_body_util::Full<bytes::Bytes>> = HttpUpstreamBuilder::new()
//!     .connect_timeout(Duration::from_secs(1))
//!     .response_head_timeout(Duration::from_secs(30))
//!     .build("http://127.0.0.1:3001/mcp")
//!     .unwrap();
//! let request = http::Request::post("/mcp")
//!     .header("content-type", "application/json")
//!     .body(http_body_util::Full::new(bytes::Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)))
//!     .unwrap();
//! let response = upstream.oneshot(request).await.unwrap();
//! println!("{}", response.status());
//! # }
//! ```

mod connect;
mod future;
#[cfg(feature = "proxy-tls")]
mod h2;
mod pool;
#[cfg(feature = "proxy-tls")]
mod tls;
mod upstream;

pub use future::ResponseFuture;
#[cfg(feature = "proxy-tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "proxy-tls")))]
pub use tls::{TlsConfigError, UpstreamTls};
pub use upstream::{HttpUpstream, HttpUpstreamBuilder, InvalidUpstreamUrl};
