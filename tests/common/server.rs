//! Serving a tower HTTP service on a free 127.0.0.1 port.

use std::{error::Error as StdError, net::SocketAddr};

use axum::extract::ConnectInfo;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mcp_edge::guard::PeerAddr;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio::{net::TcpListener, task::JoinSet};
use tower::{Service, ServiceExt};

use super::tools::DemoTools;

/// Path the MCP endpoint is mounted at in [`rmcp_router`].
pub const MCP_PATH: &str = "/mcp";

/// The rmcp service of the demo tools, as its own type (for layering by hand).
pub type RmcpService = StreamableHttpService<DemoTools, LocalSessionManager>;

/// The rmcp server config the tests use, as `examples/server.rs` configures rmcp behind
/// mcp-edge: rmcp defaults (legacy sessions on, SSE responses, 15 s keep-alive, 2026-07-28
/// served statelessly) except that rmcp's loopback-only `Host` check is off (mcp-edge's guard
/// owns Host/Origin) and rmcp's 4 MiB body limit is lifted (the inspect layer bounds bodies,
/// so a test raising `max_body_bytes` is not cut short by rmcp). For a completely bare rmcp
/// server use `rmcp_router_with(StreamableHttpServerConfig::default())`.
pub fn rmcp_config() -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(usize::MAX)
}

/// The demo tool server as an rmcp `StreamableHttpService`, with [`rmcp_config`].
pub fn rmcp_service() -> RmcpService {
    rmcp_service_with(rmcp_config())
}

/// The demo tool server as an rmcp `StreamableHttpService` with the given config.
pub fn rmcp_service_with(config: StreamableHttpServerConfig) -> RmcpService {
    StreamableHttpService::new(|| Ok(DemoTools::new()), Default::default(), config)
}

/// An axum router with the demo tool server at `/mcp` ([`rmcp_config`]: rmcp's Host check off,
/// legacy sessions on, 2026-07-28 requests stateless as rmcp always serves them).
pub fn rmcp_router() -> axum::Router {
    rmcp_router_with(rmcp_config())
}

/// [`rmcp_router`] with a custom rmcp config (e.g. `StreamableHttpServerConfig::default()` for a
/// completely bare rmcp server, Host check included).
pub fn rmcp_router_with(config: StreamableHttpServerConfig) -> axum::Router {
    axum::Router::new().nest_service(MCP_PATH, rmcp_service_with(config))
}

/// A server running on a free 127.0.0.1 port. Dropping it stops accepting and closes every
/// open connection (SSE streams included) at once.
#[derive(Debug)]
pub struct TestServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// `http://127.0.0.1:PORT` (no path).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url_for(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server now: closes the listener and every open connection.
    pub fn stop(self) {}
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

/// Serves an axum router (e.g. [`rmcp_router`] wrapped in layers). Must be called inside a
/// tokio runtime.
pub fn serve(router: axum::Router) -> TestServer {
    serve_service(router)
}

/// Serves any tower HTTP service over HTTP/1.1 on a free 127.0.0.1 port, with TCP_NODELAY on
/// every accepted socket (as `examples/server.rs` does) and the peer address in the request
/// extensions twice: as `mcp_edge::guard::PeerAddr` (what the guard reads by default) and as
/// `axum::extract::ConnectInfo<SocketAddr>` (what `into_make_service_with_connect_info` gives
/// in production). Must be called inside a tokio
/// runtime.
pub fn serve_service<S, B>(svc: S) -> TestServer
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    serve_listener(std_listener, svc)
}

/// [`serve_service`] on a listener bound beforehand, for a service that must know its own
/// URL (e.g. a configured public URL). Must be called inside a tokio runtime.
pub fn serve_listener<S, B>(std_listener: std::net::TcpListener, svc: S) -> TestServer
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("local_addr");
    let listener = TcpListener::from_std(std_listener).expect("tokio listener");
    let task = tokio::spawn(accept_loop(listener, svc));
    TestServer {
        addr,
        url: format!("http://{addr}{MCP_PATH}"),
        task,
    }
}

async fn accept_loop<S, B>(listener: TcpListener, svc: S)
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => continue,
        };
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let svc = svc.clone();
        let hyper_svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(PeerAddr(peer));
            svc.clone().oneshot(req)
        });
        connections.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), hyper_svc)
                .await;
        });
    }
}
