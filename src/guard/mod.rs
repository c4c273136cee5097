//! [`GuardLayer`]: `Host` and `Origin` allowlists, aware of trusted proxies; refusals before
//! any body is read.
//!
//! A web page can reach a server on `localhost` by rebinding its own name to 127.0.0.1 (DNS
//! rebinding) or by posting cross-origin. MCP servers MUST validate `Origin` (R46) and, de
//! facto, `Host` (R48). The guard refuses, with `403 Forbidden` and a JSON-RPC error body, a
//! request whose `Host` (or HTTP/2 `:authority`) is not on the allowlist, whose `Origin` is
//! present and not allowed, or (if you ask for it) that has no `Origin`.
//!
//! Behind a reverse proxy the `Host`, scheme and client address the server sees are the
//! proxy's. Name your proxies with [`TrustedProxies`] and the guard reads `Forwarded` /
//! `X-Forwarded-*` from them, and only from them. Every request it lets through carries a
//! [`RequestOrigin`] in its extensions: the [`PublicUrl`] of this server as the client sees
//! it (`https://…` behind TLS termination) and the client's IP. [`public_url`] reads it, e.g.
//! for the RFC 9728 `resource` of an MCP endpoint. The same `RequestOrigin` is put in the
//! response extensions, for layers outside the guard (audit); a refused request's response
//! carries the [`Rejection`](crate::Rejection) instead.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use mcp_edge::guard::{GuardLayer, PeerAddr, RequestOrigin, TrustedProxies};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(
//!         GuardLayer::new()
//!             .allow_hosts(["mcp.example.com"])
//!             .trusted_proxies(TrustedProxies::new(["10.0.0.0/8"])),
//!     )
//!     .service_fn(|request: Request<Full<Bytes>>| async move {
//!         let origin = request.extensions().get::<RequestOrigin>().unwrap();
//!         let resource = origin.public_url().join(request.uri().path());
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(resource))))
//!     });
//!
//! // From our TLS-terminating proxy at 10.0.0.5: the public URL is https.
//! let mut request = Request::post("/mcp")
//!     .header("host", "10.0.0.9:8080")
//!     .header("x-forwarded-host", "mcp.example.com")
//!     .header("x-forwarded-proto", "https")
//!     .body(Full::default())
//!     .unwrap();
//! request.extensions_mut().insert(PeerAddr("10.0.0.5:40000".parse().unwrap()));
//! let response = service.clone().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! // A rebinding page: wrong Host, refused before the inner service runs.
//! let request = Request::post("/mcp")
//!     .header("host", "evil.example.com")
//!     .body(Full::default())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! assert_eq!(response.headers()["content-type"], "application/json");
//! # }
//! ```
//!
//! # Configuration at a glance
//! - [`GuardLayer::loopback`] (the default): `Host` must be `localhost`, `127.0.0.1` or `[::1]`
//!   (any port); browser origins on those hosts are allowed.
//! - [`GuardLayer::new`]`.`[`allow_hosts`](GuardLayer::allow_hosts)`([...])`: a public name;
//!   [`allow_any_host`](GuardLayer::allow_any_host) when a proxy in front checks `Host`.
//! - [`allow_origins`](GuardLayer::allow_origins) for browser apps on other origins; the
//!   server's own origin is always allowed; [`require_origin`](GuardLayer::require_origin)
//!   to refuse requests without one.
//! - [`trusted_proxies`](GuardLayer::trusted_proxies) and, if the peer address is not in a
//!   [`PeerAddr`] extension, [`peer_addr_with`](GuardLayer::peer_addr_with) (see
//!   [`PeerAddrSource`] for axum's `ConnectInfo`), or [`peer_addrs`](GuardLayer::peer_addrs)
//!   with the one [`PeerAddrs`] you also give audit and the gateway. Proxies are believed through
//!   `X-Forwarded-*` by default; [`ProxyHeaders`] switches to RFC 7239 `Forwarded`.
//! - [`public_url`](GuardLayer::public_url) when you know the public URL: it wins over every
//!   header.

mod future;
mod host;
mod layer;
mod origin;

mod forwarded;

mod service;

pub use crate::context::{PeerAddr, PeerAddrSource, PeerAddrs};
pub use crate::context::{PublicUrl, RequestOrigin, public_url};
pub use crate::protocol::InvalidPattern;
pub use forwarded::{Cidr, ProxyHeaders, TrustedProxies};
pub use future::ResponseFuture;
pub use host::HostPattern;
pub use layer::GuardLayer;
pub use origin::OriginPattern;
pub use service::Guard;
