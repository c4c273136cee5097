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
//! A replica that fails is ejected for a back-off period (no new work); with no replica
//! available the answer is `503` with a JSON-RPC body and `Retry-After`.
//!
//! # When a replica dies
//!
//! A legacy session lives in its replica's memory: when that replica is dead the session is
//! gone, and the answer that makes the client start over on a live replica is `404` (R27,
//! R28), not a `502` or `503` that it would retry against the same dead session. The router
//! answers 404 as soon as it has *proof* that the replica is down, and only then:
//!
//! | what happens to the session's replica | the session's next request |
//! |---|---|
//! | its connection is refused (nothing listens: the process died or stopped) | `404` `-32001` at once, from that very request (nothing was sent); the table pin removed; the replica marked down |
//! | marked down (a refused connection, or a failed probe of [`ReplicaSet::health_check`], or [`ReplicaSet::mark_down`]) and still ejected | `404` at once, without trying it |
//! | removed from the [`ReplicaSet`] | `404` (as before) |
//! | a connect timeout or another connect error (unreachable host) | `502` with a JSON-RPC error; the replica ejected as *suspect*: no new sessions, but its sessions still try it (a blip proves nothing, and the session lives nowhere else) |
//! | the connection lost after the request reached it, before a response head (a POST whose call may have run) | `502` with the request's id and a JSON-RPC error, never `404`: the client must not believe the call was refused; the replica suspect, as above |
//! | the connection lost after the response head (an open SSE stream, a GET stream) | the stream ends; the client's next request carries the session and gets `404` as above |
//! | it comes back on the same address (health probe or back-off over, then a response) | it takes new sessions again; sessions it lost answer the replica's own `404`, and the table pin goes |
//!
//! No retry on a refused connection: a refusal is the kernel saying nothing listens, and a
//! replica that restarts without a shared session store lost the session anyway. A replica
//! that restarts *with* a shared session store (rmcp restoring sessions) keeps its sessions
//! working once it is up: the 404s fall only in the window where it refuses connections,
//! and [`OnReplicaGone::Reassign`] moves its sessions to a replica that can restore them
//! instead of answering 404 at all.
//!
//! New sessions and 2026-07-28 requests never get 404: one that finds its replica dead gets
//! a `502` (nothing was sent: safe to retry) and the replica is ejected, so the next ones go
//! to a live replica. With [`ReplicaSet::health_check`] running, a dead replica is usually
//! marked down before any request finds it.
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
mod health;
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
pub use health::HealthCheck;
pub use router::{AffinityRouter, Envelope, OnReplicaGone};
pub use set::{Backoff, ReplicaSet, ReplicaStatus};
pub use table::Table;
