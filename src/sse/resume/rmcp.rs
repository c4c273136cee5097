//! [`RmcpSetup`]: an rmcp Streamable HTTP server configured to sit behind the edge (feature
//! `rmcp`).

use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{EventStore, SessionStore};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::store::{SessionBoundResume, SessionRecord};

/// The edge's default body limit (`inspect::DEFAULT_MAX_BODY_BYTES`; a unit test keeps them
/// equal).
const EDGE_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// An rmcp server configuration that fits behind mcp-edge, so the combination cannot be got
/// wrong:
///
/// - rmcp's own `Host` check (loopback names only) is off: the guard layer owns `Host` and
///   `Origin`, aware of trusted proxies and public names; left on, rmcp refuses every request
///   behind a proxy or on a public name.
/// - rmcp's body limit is the edge's (4 MiB by default, [`max_body_bytes`](Self::max_body_bytes)
///   for both), so the inspect layer's 413 with a JSON-RPC body is the one clients see.
/// - rmcp drops an idle session after the edge's idle TTL (30 minutes by default, the session
///   layer's; [`idle_ttl`](Self::idle_ttl) for both), not its own 5 minutes, so a session the
///   edge still knows is still alive in rmcp.
/// - rmcp's event ids are sealed to their session ([`SessionBoundResume`]): an id handed to
///   one session never replays another's events. With an [`event_store`](Self::event_store)
///   (a `RedisEventStore` shared by every replica, feature `redis`), streams resume on any
///   replica that shares it and the same [`resume_key`](Self::resume_key).
/// - With a [`session_store`](Self::session_store) (a
///   `RedisSessionStore`), rmcp servers on several
///   replicas restore each other's sessions.
///
/// ```
/// use std::time::Duration;
/// use mcp_edge::sse::resume::RmcpSetup;
/// # #[derive(Clone)] struct MyServer;
/// # impl rmcp::ServerHandler for MyServer {}
///
/// // With Redis: `.session_store(redis_sessions).event_store(redis_events)`.
/// let setup = RmcpSetup::new().idle_ttl(Duration::from_secs(30 * 60));
/// let mcp = setup.service(|| Ok(MyServer));
/// let app = axum::Router::new()
///     .nest_service("/mcp", mcp)
///     .layer(mcp_edge::McpEdge::builder());
/// # let _: axum::Router = app;
/// ```
///
/// [`config`](Self::config) and [`session_manager`](Self::session_manager) give the parts,
/// to add your own settings (a cancellation token for graceful shutdown) before
/// `StreamableHttpService::new`.
#[derive(Clone)]
pub struct RmcpSetup {
    max_body_bytes: usize,
    idle_ttl: Duration,
    session_store: Option<Arc<dyn SessionStore>>,
    event_store: Option<Arc<dyn EventStore>>,
    resume_key: Option<[u8; 32]>,
}

impl std::fmt::Debug for RmcpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RmcpSetup")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("idle_ttl", &self.idle_ttl)
            .field("session_store", &self.session_store.is_some())
            .field("event_store", &self.event_store.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for RmcpSetup {
    fn default() -> Self {
        RmcpSetup::new()
    }
}

impl RmcpSetup {
    /// The edge's defaults: 4 MiB bodies, 30 minutes idle, rmcp's in-memory event cache with
    /// sealed ids under a key drawn for this process.
    pub fn new() -> Self {
        RmcpSetup {
            max_body_bytes: EDGE_MAX_BODY_BYTES,
            idle_ttl: SessionRecord::DEFAULT_IDLE_TTL,
            session_store: None,
            event_store: None,
            resume_key: None,
        }
    }

    /// rmcp's body limit: give the same number to `InspectLayer::max_body_bytes`.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// How long rmcp keeps an idle session: give the same duration to
    /// `SessionLayer::idle_ttl`.
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }

    /// Where rmcp keeps session state, so replicas restore each other's sessions.
    pub fn session_store(mut self, store: impl SessionStore + 'static) -> Self {
        self.session_store = Some(Arc::new(store));
        self
    }

    /// Where rmcp keeps its SSE events for `Last-Event-ID` resumption.
    pub fn event_store(mut self, store: impl EventStore + 'static) -> Self {
        self.event_store = Some(Arc::new(store));
        self
    }

    /// The key sealing event ids to their session: the same on every replica sharing the
    /// event store (else one drawn for this process).
    pub fn resume_key(mut self, key: [u8; 32]) -> Self {
        self.resume_key = Some(key);
        self
    }

    /// rmcp's server configuration: Host check off, the body limit, the session store.
    pub fn config(&self) -> StreamableHttpServerConfig {
        let mut config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_max_request_body_bytes(self.max_body_bytes);
        config.session_store = self.session_store.clone();
        config
    }

    /// rmcp's session manager: the idle TTL, the event store, ids sealed to their session.
    pub fn session_manager(&self) -> SessionBoundResume<LocalSessionManager> {
        let mut manager = LocalSessionManager::default();
        manager.session_config.keep_alive = Some(self.idle_ttl);
        if let Some(store) = &self.event_store {
            manager = manager.with_event_store(Arc::clone(store));
        }
        match self.resume_key {
            Some(key) => SessionBoundResume::with_key(manager, key),
            None => SessionBoundResume::new(manager),
        }
    }

    /// The rmcp service for `factory`'s server, with [`config`](Self::config) and
    /// [`session_manager`](Self::session_manager).
    pub fn service<S, F>(
        &self,
        factory: F,
    ) -> StreamableHttpService<S, SessionBoundResume<LocalSessionManager>>
    where
        S: rmcp::ServerHandler + Send + 'static,
        F: Fn() -> Result<S, std::io::Error> + Send + Sync + 'static,
    {
        StreamableHttpService::new(factory, Arc::new(self.session_manager()), self.config())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_edges() {
        assert_eq!(EDGE_MAX_BODY_BYTES, crate::inspect::DEFAULT_MAX_BODY_BYTES);
        let setup = RmcpSetup::new()
            .max_body_bytes(1024)
            .idle_ttl(Duration::from_secs(60));
        let config = setup.config();
        assert!(config.allowed_hosts.is_empty(), "rmcp's Host check is off");
        assert_eq!(config.max_request_body_bytes, 1024);
        let manager = setup.session_manager();
        let _ = manager;
    }
}
