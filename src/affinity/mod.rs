//! [`AffinityRouter`]: every legacy MCP session on the replica that created it, across many
//! gateway instances.
//!
//! A 2025-era MCP session lives in one replica's memory, so every request of that session
//! (POST, GET, `Last-Event-ID` resumption, DELETE) must reach that replica, whichever gateway
//! instance receives it; when the replica is gone the client must get the `404` that makes it
//! start over (R28), not a `502` or a wrong replica. The router is a [`Service`] over a
//! [`ReplicaSet`] of replica services (usually [`HttpUpstream`]s) that does exactly that.
//!
//! Session ids are minted by the replica after routing, so hashing the id before routing
//! cannot work (§L.12). Two strategies learn the id from the `initialize` answer instead:
//!
//! - [`Envelope`]: no shared state. The id the client sees is an encrypted, authenticated
//!   token ([`EnvelopeKeys`]) carrying the replica, the server's own id and the principal
//!   binding; it is rewritten on the way out and opened on the way in. Tampered, truncated,
//!   foreign-key, expired and other principals' ids answer 404. Rotate keys by listing the
//!   previous one.
//! - [`Table`]: the pin is kept in a [`SessionStore`](crate::store::SessionStore) (Redis for
//!   several gateways) with a local cache in front.
//!
//! New sessions and 2026-07-28 (stateless) requests go to the least-loaded replica: power of
//! two choices on in-flight requests, where an open SSE stream counts until its body ends.
//! A replica that refuses connections is ejected for a back-off period; with no replica
//! available the answer is `503` with a JSON-RPC body and `Retry-After`.
//!
//! The replica a request went to is put in the request extensions (for the replica service)
//! and the response extensions (for audit) as [`Replica`].
//!
//! [`HttpUpstream`]: https://docs.rs/mcp-edge/latest/mcp_edge/proxy/struct.HttpUpstream.html
//! [`Service`]: tower_service::Service
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use mcp_edge::Replica;
//! use mcp_edge::affinity::{AffinityRouter, Envelope, EnvelopeKeys, ReplicaSet, SessionKey};
//! use tower::ServiceExt;
//!
//! // A replica that issues the session id "s-<replica>" and echoes the id it receives.
//! fn replica(name: &'static str) -> tower::util::BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible> {
//!     tower::util::BoxCloneService::new(tower::service_fn(move |request: Request<Full<Bytes>>| async move {
//!         let seen = request.headers().get("mcp-session-id").cloned();
//!         let mut response = Response::new(Full::new(Bytes::from(name)));
//!         match seen {
//!             None => {
//!                 response.headers_mut().insert("mcp-session-id", format!("s-{name}").parse().unwrap());
//!             }
//!             Some(id) => assert_eq!(id, format!("s-{name}").as_str()),
//!         }
//!         Ok::<_, Infallible>(response)
//!     }))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let replicas = ReplicaSet::new();
//! replicas.add(Replica::new("a"), replica("a"));
//! replicas.add(Replica::new("b"), replica("b"));
//! let key = SessionKey::generate().unwrap();
//! let router = AffinityRouter::envelope(replicas.clone(), Envelope::new(EnvelopeKeys::new(&key)));
//!
//! // The first request creates a session somewhere; the client sees a sealed id.
//! let first = router.clone().oneshot(Request::post("/mcp").body(Full::default()).unwrap()).await.unwrap();
//! let sealed = first.headers()["mcp-session-id"].clone();
//! let home = first.extensions().get::<Replica>().unwrap().clone();
//! assert!(!sealed.to_str().unwrap().starts_with("s-"));
//!
//! // Every later request of the session reaches the same replica.
//! for _ in 0..10 {
//!     let request = Request::post("/mcp").header("mcp-session-id", sealed.clone()).body(Full::default()).unwrap();
//!     let response = router.clone().oneshot(request).await.unwrap();
//!     assert_eq!(response.extensions().get::<Replica>(), Some(&home));
//! }
//!
//! // Its replica removed: 404, so the client starts a new session (R28).
//! replicas.remove(home.id());
//! let request = Request::post("/mcp").header("mcp-session-id", sealed).body(Full::default()).unwrap();
//! let response = router.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 404);
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert!(body.starts_with(br#"{"jsonrpc":"2.0""#));
//! # }
//! ```

mod body;
mod envelope;
mod future;

mod router;
mod set;
mod table;

pub use crate::context::Replica;
pub use body::ReplicaBody;
pub use envelope::{
    EnvelopeKeys, KeyError, MAX_SEALED_SESSION_LEN, OpenError, SealError, SessionEnvelope,
    SessionKey,
};
pub use future::ResponseFuture;
pub use router::{AffinityRouter, Envelope, OnReplicaGone};
pub use set::{Backoff, ReplicaSet, ReplicaStatus};
pub use table::Table;
