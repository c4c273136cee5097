//! [`ResumeLayer`]: `Last-Event-ID` resumption for every legacy SSE stream, whatever the
//! server behind it does (R17–R22).
//!
//! A 2025-era client whose SSE stream breaks (a proxy's read timeout, a deploy, a flaky
//! network) reconnects with `GET` and `Last-Event-ID`, and must then receive every event it
//! missed, exactly once, in order, from that stream only. Most servers cannot do that: many
//! send no event ids, rmcp keeps its event cache in one process and does not check that an
//! id belongs to the session, and replaying another session's events is a known bug class
//! (R18). This layer gives every upstream that ability, across gateway instances when the
//! [`EventStore`] is shared (Redis).
//!
//! For legacy-era (2025-03-26 to 2025-11-25) `text/event-stream` responses to POSTs and GETs
//! (not to `initialize`):
//!
//! - **ids**: every event (every block with fields) gets an `id:` line written at its end:
//!   `<kind><stream>.<seal>.<seq>`. The stream name is unique per response; the seal is an
//!   HMAC under the layer's [key](ResumeLayer::key) over the stream, the session and the
//!   principal, so an id opens only that stream, for that session and principal (R17, R18).
//!   Events go on once complete (a client cannot use part of one), as the server's own
//!   `Bytes` sliced at event ends, then the id line. Comment-only blocks (keep-alives) pass
//!   as they are, unrecorded;
//! - **the server's own ids** are kept, mapped: an event that carries an `id` of the
//!   server's goes to the client written anew without it (strict parsers, rmcp's among them,
//!   refuse two `id` lines in one event), and its record in the log keeps the server's id
//!   next to ours (a leading `id:` line, left out of replays), so the mapping from our id to
//!   the server's lives in the shared log on every instance. A resume is answered from the
//!   log, never by the server: the log holds every event the server sent through the edge
//!   (a stream whose client left is read on, see below), so the server's own resumption
//!   would only repeat it, and a server whose ids are not bound to the session (rmcp's) is
//!   never handed a client's cursor. Where the log cannot answer (retention, a cut), the
//!   answer is the documented `404` below, not a fallback to the server;
//! - **priming** (R19): a 2025-11-25 client first gets an event with an id and empty data, so
//!   a stream cut before the server's first event can be resumed too (older clients choke on
//!   empty data and get none, §L.5);
//! - **recording**: each event is handed to a writer task per stream that appends batches to
//!   the [`EventStore`] off the body's path ([`EventStore::append_batch`]);
//! - **client gone** (R12): when the client leaves a POST stream before it ends, the layer
//!   keeps reading the server's body into the store, for at most
//!   [`drain_bytes`](ResumeLayer::drain_bytes) and [`drain_time`](ResumeLayer::drain_time),
//!   so a server with no resumability of its own becomes resumable. A GET stream ends with
//!   its client. With a [`drain`](ResumeLayer::drain) handle, these detached streams count
//!   as open streams of the drain, and once it starts they are recorded for at most the
//!   [grace](ResumeLayer::drain_grace) more: a stream that the SSE layer's drain ended at
//!   its client is recorded on meanwhile, so the client's resume on another instance (a
//!   shared Redis log) misses nothing, and a shutdown waits for it, within bounds;
//! - **resume**: a `GET` with `Last-Event-ID` is answered by the layer: the recorded events
//!   after that id, then the live tail as the original response goes on, until it ends (a
//!   POST stream); for a GET stream, the server is then asked for a fresh GET stream, which is
//!   recorded in turn;
//! - **DELETE**: when the server accepts a session's DELETE, the session's streams are
//!   dropped from the store.
//!
//! # Answers to a `Last-Event-ID`
//!
//! | cursor | answer |
//! |---|---|
//! | sealed by this key for this session and principal, events held | `200`, the events after it, then the live tail |
//! | the last event of a finished POST stream (nothing will ever follow) | `404` ([`Reason::EventsExpired`]): a `200` with nothing in it would only make the client come back |
//! | the last event of a GET stream that ended | `200`, then a fresh GET stream from the server |
//! | anything else: not one of ours, another session's, stream's or principal's, altered, or under another key | `404`, JSON-RPC `-32600` ([`Reason::EventIdUnknown`]) |
//! | ours, but events after it were dropped (count or age, [`EventLogLimits`]) | `404`, JSON-RPC `-32600` ([`Reason::EventsExpired`]), after waiting up to [`settle`](ResumeLayer::settle) in case the event is still on its way to the store |
//! | the store fails | `503`, JSON-RPC `-32603` ([`Reason::StoreUnavailable`]) |
//!
//! Never another stream's events. A replay that meets a hole (events dropped while it reads,
//! the store failing, or the mark left where a recording was cut: an event over
//! [`max_event_bytes`](ResumeLayer::max_event_bytes), the drain's bounds reached, the
//! server's stream failing) ends instead of going on past it; the client's next resume gets
//! the answer above.
//!
//! # Memory
//!
//! Per recorded stream: the parser (at most about four times the largest event held, 1 MiB by
//! default, while an event is incomplete), one incomplete event, the events handed to the
//! writer and not yet stored (at most 16 MiB, past which recording stops), and a writer task.
//! A stream whose client left adds the drain task and the server's body, for at most
//! [`drain_bytes`](ResumeLayer::drain_bytes) and [`drain_time`](ResumeLayer::drain_time).
//!
//! 2026-07-28 requests are untouched: there is no resumption in that era, and closing a stream
//! cancels its request (R12, R21).
//!
//! # In the stack
//!
//! Inside [`SseLayer`](super::SseLayer) (so its heartbeats are not recorded, and its drain
//! sees our ids and sends `retry:` before closing), and inside the session and auth layers,
//! whose [`SessionId`] and [`Principal`](crate::Principal) it reads from the request
//! extensions (without a session layer, from `Mcp-Session-Id`):
//!
//! ```text
//! … ─▶ session ─▶ SseLayer ─▶ ResumeLayer ─▶ your MCP service
//! ```
//!
//! Several gateway instances sharing a Redis [`EventStore`] must share the [key](ResumeLayer::key)
//! too, so that one instance opens the ids another sealed. The response body must be `Send`
//! and `'static` (to be read on after the client is gone).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::{BodyExt, Full};
//! use mcp_edge::sse::ResumeLayer;
//! use mcp_edge::store::MemoryEventStore;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(ResumeLayer::new(MemoryEventStore::new()))
//!     .service_fn(|_: Request<Full<Bytes>>| async {
//!         let response = Response::builder()
//!             .header("content-type", "text/event-stream")
//!             .body(Full::new(Bytes::from_static(b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")))
//!             .unwrap();
//!         Ok::<_, std::convert::Infallible>(response)
//!     });
//! let request = Request::post("/mcp")
//!     .header("mcp-protocol-version", "2025-06-18")
//!     .body(Full::default())
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! let text = std::str::from_utf8(&body).unwrap();
//! assert!(text.starts_with("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\nid: p"));
//! assert!(text.ends_with(".1\n\n")); // the stream's first event
//! // (A 2025-11-25 client would first get a priming event: an id and empty data.)
//! # }
//! ```
//!
//! [`EventStore`]: crate::store::EventStore
//! [`EventStore::append_batch`]: crate::store::EventStore::append_batch
//! [`EventLogLimits`]: crate::store::EventLogLimits
//! [`Reason::EventIdUnknown`]: crate::Reason::EventIdUnknown
//! [`Reason::EventsExpired`]: crate::Reason::EventsExpired
//! [`Reason::StoreUnavailable`]: crate::Reason::StoreUnavailable
//! [`SessionId`]: crate::SessionId

mod body;
mod cursor;
mod future;
#[cfg(feature = "rmcp")]
mod rmcp;
mod service;
mod track;

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::Drain;
use crate::store::EventStore;
use cursor::Sealer;

pub use body::ResumeBody;
pub use future::ResponseFuture;
#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub use rmcp::RmcpSetup;
pub use service::Resume;

/// The default bound on what the layer reads of a POST stream after its client left: 8 MiB.
pub const DEFAULT_DRAIN_BYTES: usize = 8 << 20;
/// The default bound on how long it reads it: 5 minutes (the default event log age).
pub const DEFAULT_DRAIN_TIME: Duration = Duration::from_secs(300);

/// Records legacy SSE streams and answers `Last-Event-ID`; see the [module docs](self).
///
/// Plain configuration: cheap to clone (the store and key are shared).
#[derive(Clone)]
pub struct ResumeLayer {
    store: Arc<dyn EventStore>,
    key: Option<[u8; 32]>,
    settings: Settings,
    /// Built on first use so that every service of this layer shares one key.
    config: Arc<std::sync::OnceLock<Arc<Config>>>,
}

impl std::fmt::Debug for ResumeLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeLayer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What every stream of a layer shares.
struct Config {
    store: Arc<dyn EventStore>,
    sealer: Sealer,
    settings: Settings,
}

/// The layer's settings, as its streams read them.
#[derive(Debug, Clone)]
struct Settings {
    drain_bytes: usize,
    drain_time: Duration,
    settle: Duration,
    max_event_bytes: usize,
    max_queued_bytes: usize,
    drain: Option<Drain>,
    drain_grace: Duration,
}

impl ResumeLayer {
    /// Records into `store` (a [`MemoryEventStore`](crate::store::MemoryEventStore) for one
    /// instance, a `RedisEventStore` shared by several), sealing ids with a key drawn for
    /// this layer; POST streams read on after their client left for up to 8 MiB and 5 min.
    pub fn new(store: impl EventStore) -> Self {
        Self::with_store(Arc::new(store))
    }

    /// As [`new`](Self::new), with a store already shared.
    pub fn with_store(store: Arc<dyn EventStore>) -> Self {
        ResumeLayer {
            store,
            key: None,
            settings: Settings {
                drain_bytes: DEFAULT_DRAIN_BYTES,
                drain_time: DEFAULT_DRAIN_TIME,
                settle: Duration::from_millis(500),
                max_event_bytes: crate::protocol::sse::DEFAULT_MAX_EVENT_BYTES,
                max_queued_bytes: 16 << 20,
                drain: None,
                drain_grace: super::DEFAULT_GRACE,
            },
            config: Arc::default(),
        }
    }

    /// Seals ids with `key` instead of a random one: every gateway instance sharing an event
    /// store must use the same key (derive it from a secret of at least 32 random bytes).
    pub fn key(self, key: [u8; 32]) -> Self {
        self.set(|layer| layer.key = Some(key))
    }

    /// How many bytes of a POST stream the layer reads on after its client left (default
    /// 8 MiB; 0 turns the drain off, and the server's body is dropped with the client).
    pub fn drain_bytes(self, bytes: usize) -> Self {
        self.set(|layer| layer.settings.drain_bytes = bytes)
    }

    /// How long the layer reads on a POST stream after its client left (default 5 min).
    pub fn drain_time(self, time: Duration) -> Self {
        self.set(|layer| layer.settings.drain_time = time)
    }

    /// How long a resume waits for a cursor's event to reach the store before answering
    /// [`Reason::EventsExpired`](crate::Reason::EventsExpired) (default 500 ms): the client
    /// may see an event before the store has it.
    pub fn settle(self, settle: Duration) -> Self {
        self.set(|layer| layer.settings.settle = settle)
    }

    /// The largest event recorded (default 1 MiB): past it, recording of that stream stops
    /// (a resume past that point is answered as expired), the stream itself goes on.
    pub fn max_event_bytes(self, bytes: usize) -> Self {
        self.set(|layer| layer.settings.max_event_bytes = bytes)
    }

    /// Attaches the streams read on after their client left to `drain` (the handle given to
    /// the [`SseLayer`](super::SseLayer) outside): they count in
    /// [`Drain::open_streams`] and [`Drain::wait_idle`] waits for them, so a shutdown does not
    /// lose the events they are still recording. Once the drain starts, each is recorded for
    /// at most [`drain_grace`](Self::drain_grace) more, then cut (the log marks the cut, so a
    /// resume on another instance ends there instead of waiting). A stream the drain ended
    /// at the client is read on the same way: its client resumes elsewhere, from the shared
    /// log, without losing what the server sent meanwhile.
    pub fn drain(self, drain: Drain) -> Self {
        self.set(|layer| layer.settings.drain = Some(drain))
    }

    /// How long a stream read on after its client left is still recorded once the
    /// [drain](Self::drain) starts (default 30 s, as the SSE layer's grace).
    pub fn drain_grace(self, grace: Duration) -> Self {
        self.set(|layer| layer.settings.drain_grace = grace)
    }

    /// Applies one setting; the config the services share is built again with it.
    fn set(mut self, apply: impl FnOnce(&mut Self)) -> Self {
        apply(&mut self);
        self.config = Arc::default();
        self
    }

    fn shared(&self) -> Arc<Config> {
        Arc::clone(self.config.get_or_init(|| {
            Arc::new(Config {
                store: Arc::clone(&self.store),
                sealer: Sealer::new(self.key.unwrap_or_else(Sealer::random_key)),
                settings: self.settings.clone(),
            })
        }))
    }
}

impl<S> Layer<S> for ResumeLayer {
    type Service = Resume<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Resume {
            inner,
            config: self.shared(),
        }
    }
}
