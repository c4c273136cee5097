//! [`Server`]: serve a tower service over HTTP/1 with a budget for every phase hyper owns.
//!
//! `axum::serve` and a bare hyper accept loop have no timeouts: a client that connects and
//! says nothing, or sends half a request head, holds a socket and a task for as long as it
//! likes, and a few hundred of them exhaust the process's file descriptors so that every
//! other client is refused. [`Server`] is the accept loop with the budgets a production server
//! needs; the body of a POST is bounded by the inspect layer
//! ([`InspectLayer::body_timeout`](crate::inspect::InspectLayer::body_timeout)), which can
//! still answer with a `408` and a JSON-RPC error body.
//!
//! | phase | budget | default | on expiry |
//! |---|---|---|---|
//! | request head | [`Server::header_read_timeout`] | 10 s | connection closed |
//! | idle between keep-alive requests | the same budget (see below) | 10 s | connection closed |
//! | POST body | [`InspectLayer`](crate::inspect::InspectLayer): total and minimum rate | 10 s, 1 KiB/s after 2 s | `408`, connection closed |
//! | concurrent connections | [`Server::max_connections`] | 10,000 | accepting waits for a free slot |
//!
//! hyper (1.12) starts the head timer as soon as a connection waits for a request head: on a
//! fresh connection right after accept, and on a kept-alive one right after the previous
//! response. So the head budget is also the keep-alive idle timeout, and a connection that
//! never sends anything is closed after it too.
//!
//! Over [`Server::max_connections`], the server stops accepting until a connection ends;
//! new clients wait in the kernel's listen backlog instead of being refused. Keep the cap
//! below the process's open-file limit (`ulimit -n`, `LimitNOFILE=` in a systemd unit), with
//! room for upstream connections, log files and Redis: with the default cap, raise the limit
//! to 16,384 or more. Should accepting fail anyway (`EMFILE`, "Too many open files"), the loop
//! logs the first failure, pauses briefly instead of spinning, and keeps serving the
//! connections it has.
//!
//! Every request carries the peer's [`PeerAddr`] in its extensions, where
//! the guard (trusted proxies) and the audit layer find it. Sockets get `TCP_NODELAY`: MCP
//! streams many small SSE frames, and with Nagle's algorithm each waits for the client's
//! delayed ACK (~40 ms).
//!
//! It speaks HTTP/1.1 only (MCP clients and reverse proxies talk HTTP/1.1 to an MCP server).
//! Any `tower::Service<Request<hyper::body::Incoming>>` that is `Clone` works, axum's
//! `Router` included:
//!
//! ```
//! use std::time::Duration;
//! use mcp_edge::McpEdge;
//! use mcp_edge::serve::Server;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let app = axum::Router::new()
//!     .route("/mcp", axum::routing::post(|| async { "your MCP service" }))
//!     .layer(McpEdge::builder());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let shutdown = async {};
//! // let shutdown = async { tokio::signal::ctrl_c().await.unwrap() };
//! Server::new()
//!     .header_read_timeout(Duration::from_secs(10))
//!     .max_connections(10_000)
//!     .serve_with_shutdown(listener, app, shutdown)
//!     .await
//! # }
//! ```
//!
//! # Shutdown
//! When the signal given to [`Server::serve_with_shutdown`] resolves, the server stops
//! accepting, closes idle connections, lets the requests in flight finish, and returns once
//! every connection has ended. Open SSE streams count as in flight: end them first with
//! [`sse::Drain`](crate::sse::Drain), or bound the wait yourself (`tokio::time::timeout`).
//!
//! # Runtime
//! Needs a tokio runtime with the time driver; connections are spawned with `tokio::spawn`.

mod peer;

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_service::Service;

use self::peer::WithPeerAddr;
use crate::context::PeerAddr;

/// The default budget for a request head, and for the idle time before it: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default cap on concurrent connections: 10,000.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// How long the accept loop pauses after an accept error such as `EMFILE`.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

type BoxError = Box<dyn StdError + Send + Sync>;

/// A tower service [`Server`] can serve, with responses of body `B`: `Clone` and `Send`, for
/// `Request<hyper::body::Incoming>`, with a `Send` future and an error that converts to a
/// boxed error. axum's `Router` is one. Implemented for every such service: there is nothing
/// to implement.
pub trait Servable<B>:
    Service<
        Request<Incoming>,
        Response = Response<B>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> Servable<B> for S
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
}

/// An HTTP/1.1 accept loop with timeouts and a connection cap; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Server {
    header_read_timeout: Option<Duration>,
    max_connections: usize,
    keep_alive: bool,
    nodelay: bool,
}

impl Server {
    /// A server with the defaults: 10 s for a request head (and for the idle time before
    /// it), at most 10,000 connections, keep-alive on, `TCP_NODELAY` on.
    pub fn new() -> Self {
        Server {
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            keep_alive: true,
            nodelay: true,
        }
    }

    /// Sets the time a client has to send a whole request head, counted from the moment the
    /// connection waits for one: right after accept, and right after the previous response on
    /// a kept-alive connection (so it is also the keep-alive idle timeout). Past it, the
    /// connection is closed. `None` removes the budget, which lets any client hold a socket
    /// for ever.
    pub fn header_read_timeout(mut self, budget: impl Into<Option<Duration>>) -> Self {
        self.header_read_timeout = budget.into();
        self
    }

    /// Sets the most connections served at once (at least 1). Past it, the server stops
    /// accepting until a connection ends. Keep it below the open-file limit (`ulimit -n`).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// Whether a connection may carry more than one request (default `true`).
    pub fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Whether accepted sockets get `TCP_NODELAY` (default `true`).
    pub fn tcp_nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// Serves `service` on every connection accepted from `listener`, until the process
    /// ends. Accept errors are logged and retried, never returned.
    pub async fn serve<S, B>(self, listener: TcpListener, service: S) -> io::Result<()>
    where
        S: Servable<B>,
        B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
    {
        self.serve_with_shutdown(listener, service, std::future::pending())
            .await
    }

    /// Serves `service` until `signal` resolves, then shuts down gracefully: no new
    /// connections, idle ones closed, requests in flight finished (see
    /// [Shutdown](self#shutdown)).
    pub async fn serve_with_shutdown<S, B, F>(
        self,
        listener: TcpListener,
        service: S,
        signal: F,
    ) -> io::Result<()>
    where
        S: Servable<B>,
        B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
        F: Future<Output = ()> + Send,
    {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(self.keep_alive);
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let graceful = GracefulShutdown::new();
        let mut failing = false;
        tokio::pin!(signal);
        loop {
            let slot = tokio::select! {
                biased;
                () = &mut signal => break,
                slot = Arc::clone(&slots).acquire_owned() => slot.expect("never closed"),
            };
            let accepted = tokio::select! {
                biased;
                () = &mut signal => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => {
                    failing = false;
                    accepted
                }
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "accept failed; pausing before the next accept");
                    }
                    failing = true;
                    tokio::select! {
                        () = &mut signal => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    }
                }
            };
            if self.nodelay
                && let Err(error) = tcp.set_nodelay(true)
            {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
            let service = TowerToHyperService::new(WithPeerAddr {
                inner: service.clone(),
                peer: PeerAddr(peer),
            });
            let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                drop(slot);
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

/// Serves `service` on `listener` with [`Server::new`]'s defaults, until the process ends.
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let app = axum::Router::new().route("/mcp", axum::routing::post(|| async { "MCP" }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// mcp_edge::serve::serve(listener, app).await
/// # }
/// ```
pub async fn serve<S, B>(listener: TcpListener, service: S) -> io::Result<()>
where
    S: Servable<B>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    Server::new().serve(listener, service).await
}

/// Errors about one connection that never became ours: accept the next one at once.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
