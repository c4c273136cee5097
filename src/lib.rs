#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs)]

pub mod affinity;
pub mod audit;
pub mod auth;
pub mod context;
pub mod error;
pub mod guard;
pub mod inspect;
pub mod protocol;
#[cfg(feature = "proxy")]
#[cfg_attr(docsrs, doc(cfg(feature = "proxy")))]
pub mod proxy;
#[cfg(feature = "serve")]
#[cfg_attr(docsrs, doc(cfg(feature = "serve")))]
pub mod serve;
pub mod session;
pub mod sse;
pub mod store;

pub use context::{
    BindingKey, McpRequestSlot, PeerAddr, Principal, PublicUrl, Replica, RequestOrigin,
};
pub use error::EdgeBody;
pub use error::body;
pub use error::{Reason, RejectedBy, Rejection};
pub use guard::{GuardLayer, TrustedProxies};
pub use protocol::{Era, McpRequest, ProtocolVersion, SessionId};
pub use sse::SseLayer;

use tower_layer::{Identity, Layer};

use guard::Guard;
use inspect::{Inspect, InspectLayer};

/// The whole edge as one [`Layer`]: mcp-edge's layers stacked in the order they must run.
///
/// ```text
/// client ─▶ audit ─▶ guard ─▶ inspect ─▶ auth ─▶ session ─▶ sse ─▶ your MCP service
/// ```
///
/// `McpEdge::builder()` starts with a loopback [`GuardLayer`] and a default [`InspectLayer`];
/// each other slot is empty until you fill it. Every layer also works alone, with
/// `tower::ServiceBuilder` or axum's `Router::layer`.
///
/// ```
/// use mcp_edge::{GuardLayer, McpEdge};
///
/// let edge = McpEdge::builder().guard(GuardLayer::new().allow_hosts(["mcp.example.com"]));
/// let app: axum::Router = axum::Router::new()
///     .route("/mcp", axum::routing::post(|| async { "your MCP service" }))
///     .layer(edge);
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct McpEdge<Audit = Identity, Auth = Identity, Session = Identity, Sse = Identity> {
    audit: Audit,
    guard: GuardLayer,
    inspect: InspectLayer,
    auth: Auth,
    session: Session,
    sse: Sse,
}

impl McpEdge {
    /// A loopback guard and a default inspect layer; no auth, session, SSE or audit layer yet.
    pub fn builder() -> Self {
        McpEdge {
            audit: Identity::new(),
            guard: GuardLayer::loopback(),
            inspect: InspectLayer::new(),
            auth: Identity::new(),
            session: Identity::new(),
            sse: Identity::new(),
        }
    }
}

impl Default for McpEdge {
    fn default() -> Self {
        McpEdge::builder()
    }
}

impl<Audit, Auth, Session, Sse> McpEdge<Audit, Auth, Session, Sse> {
    /// Replaces the guard (Host / Origin allowlists, trusted proxies).
    pub fn guard(mut self, guard: GuardLayer) -> Self {
        self.guard = guard;
        self
    }

    /// Replaces the inspect layer (body limit).
    pub fn inspect(mut self, inspect: InspectLayer) -> Self {
        self.inspect = inspect;
        self
    }

    /// Sets the layer that runs after inspect: token verification and scope policy.
    pub fn auth<L>(self, auth: L) -> McpEdge<Audit, L, Session, Sse> {
        McpEdge {
            audit: self.audit,
            guard: self.guard,
            inspect: self.inspect,
            auth,
            session: self.session,
            sse: self.sse,
        }
    }

    /// Sets the layer that runs after auth: legacy sessions.
    pub fn session<L>(self, session: L) -> McpEdge<Audit, Auth, L, Sse> {
        McpEdge {
            audit: self.audit,
            guard: self.guard,
            inspect: self.inspect,
            auth: self.auth,
            session,
            sse: self.sse,
        }
    }

    /// Sets the innermost layer: SSE flush-through and heartbeats.
    pub fn sse<L>(self, sse: L) -> McpEdge<Audit, Auth, Session, L> {
        McpEdge {
            audit: self.audit,
            guard: self.guard,
            inspect: self.inspect,
            auth: self.auth,
            session: self.session,
            sse,
        }
    }

    /// Sets the outermost layer: one audit event per MCP call, refusals included.
    pub fn audit<L>(self, audit: L) -> McpEdge<L, Auth, Session, Sse> {
        McpEdge {
            audit,
            guard: self.guard,
            inspect: self.inspect,
            auth: self.auth,
            session: self.session,
            sse: self.sse,
        }
    }
}

impl<S, Audit, Auth, Session, Sse> Layer<S> for McpEdge<Audit, Auth, Session, Sse>
where
    Sse: Layer<S>,
    Session: Layer<Sse::Service>,
    Auth: Layer<Session::Service>,
    Audit: Layer<Guard<Inspect<Auth::Service>>>,
{
    type Service = Audit::Service;

    fn layer(&self, service: S) -> Self::Service {
        let service = self.sse.layer(service);
        let service = self.session.layer(service);
        let service = self.auth.layer(service);
        let service = self.inspect.layer(service);
        let service = self.guard.layer(service);
        self.audit.layer(service)
    }
}
