#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs)]

#[cfg(feature = "gateway")]
#[cfg_attr(docsrs, doc(cfg(feature = "gateway")))]
pub mod affinity;
#[cfg(feature = "aggregator")]
#[cfg_attr(docsrs, doc(cfg(feature = "aggregator")))]
pub mod aggregate;
pub mod audit;
pub mod auth;
pub mod context;
pub mod error;
pub mod guard;
pub mod inspect;
pub mod limit;
pub mod observe;
pub mod optional;
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

#[doc = include_str!("docs/guide.md")]
pub mod guide {}

#[cfg(feature = "gateway")]
pub use affinity::AffinityRouter;
#[cfg(feature = "aggregator")]
pub use aggregate::Aggregator;
pub use audit::AuditLayer;
pub use auth::AuthLayer;
pub use context::{
    BindingKey, LimitNote, McpRequestSlot, PeerAddr, Principal, PublicUrl, Replica, RequestOrigin,
};
pub use error::EdgeBody;
pub use error::body;
pub use error::{Reason, RejectedBy, Rejection};
pub use guard::{GuardLayer, TrustedProxies};
pub use inspect::InspectLayer;
pub use limit::LimitLayer;
pub use optional::OptionalLayer;
pub use protocol::{Era, McpRequest, ProtocolVersion, SessionId};
pub use session::SessionLayer;
pub use sse::SseLayer;

use tower_layer::{Identity, Layer, Stack};

use guard::Guard;
use inspect::Inspect;

/// `McpEdge { slot: value, ..edge }` for a slot whose type changes: the other fields are moved
/// over by name.
macro_rules! replace_slot {
    ($edge:ident, $slot:ident: $value:expr; $($keep:ident),+) => {
        McpEdge { $slot: $value, $($keep: $edge.$keep),+ }
    };
}

/// The whole edge as one [`Layer`]: mcp-edge's layers stacked in the order they must run.
///
/// ```text
/// client ─▶ audit ─▶ guard ─▶ inspect ─▶ auth ─▶ limit ─▶ [your layers] ─▶ session ─▶ sse ─▶ your MCP service
/// ```
///
/// `McpEdge::builder()` starts with a loopback [`GuardLayer`] and a default [`InspectLayer`];
/// each other slot is empty until you fill it. Each slot takes its own layer type only
/// ([`auth`](McpEdge::auth) an [`AuthLayer`], [`sse`](McpEdge::sse) an [`SseLayer`], …), and
/// each optional slot has an `_opt` setter taking an `Option` of that layer, so a program
/// that decides at run time still builds one router. Layers of your own go after auth, where
/// the [`Principal`] is known ([`with_layer`](McpEdge::with_layer)). Every layer also works
/// alone, with `tower::ServiceBuilder` or axum's `Router::layer`. The [guide] says what
/// each layer reads and leaves in the extensions, and how to write a new one.
///
/// The type parameters are the layers in each slot ([`Identity`] while empty); you rarely
/// name them (the limit slot's comes last, though the layer runs right after auth, so the
/// names written before it existed still mean the same stack). A layer does not fit another layer's slot:
///
/// ```compile_fail
/// use mcp_edge::{McpEdge, SseLayer};
///
/// let edge = McpEdge::builder().auth(SseLayer::new()); // expected `AuthLayer<_, _>`
/// ```
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
///
/// Choosing at run time, with one router:
///
/// ```
/// use mcp_edge::auth::StaticTokens;
/// use mcp_edge::{AuthLayer, McpEdge, Principal, SseLayer};
///
/// let token = std::env::var("MCP_TOKEN").ok();
/// let auth = token.map(|token| {
///     AuthLayer::new(StaticTokens::new().token(token, Principal::new("operator")))
/// });
/// let edge = McpEdge::builder().auth_opt(auth).sse(SseLayer::new());
/// let app: axum::Router = axum::Router::new()
///     .route("/mcp", axum::routing::post(|| async { "your MCP service" }))
///     .layer(edge);
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct McpEdge<
    AuditL = Identity,
    AuthL = Identity,
    UserL = Identity,
    SessionL = Identity,
    SseL = Identity,
    LimitL = Identity,
> {
    audit: AuditL,
    guard: GuardLayer,
    inspect: InspectLayer,
    auth: AuthL,
    user: UserL,
    session: SessionL,
    sse: SseL,
    limit: LimitL,
}

impl McpEdge {
    /// A loopback guard and a default inspect layer; no audit, auth, limit, user, session or
    /// SSE layer yet.
    pub fn builder() -> Self {
        McpEdge {
            audit: Identity::new(),
            guard: GuardLayer::loopback(),
            inspect: InspectLayer::new(),
            auth: Identity::new(),
            limit: Identity::new(),
            user: Identity::new(),
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

impl<AuditL, AuthL, UserL, SessionL, SseL, LimitL>
    McpEdge<AuditL, AuthL, UserL, SessionL, SseL, LimitL>
{
    /// Replaces the guard (Host / Origin allowlists, trusted proxies).
    pub fn guard(self, guard: GuardLayer) -> Self {
        McpEdge { guard, ..self }
    }

    /// Replaces the inspect layer (body limit).
    pub fn inspect(self, inspect: InspectLayer) -> Self {
        McpEdge { inspect, ..self }
    }

    /// Sets the outermost layer: one audit event per MCP call, refusals included.
    pub fn audit<K>(
        self,
        audit: AuditLayer<K>,
    ) -> McpEdge<AuditLayer<K>, AuthL, UserL, SessionL, SseL, LimitL> {
        self.audit_slot(audit)
    }

    /// [`audit`](McpEdge::audit) when `Some`, no audit layer when `None`: one stack type
    /// either way.
    pub fn audit_opt<K>(
        self,
        audit: Option<AuditLayer<K>>,
    ) -> McpEdge<OptionalLayer<AuditLayer<K>>, AuthL, UserL, SessionL, SseL, LimitL> {
        self.audit_slot(OptionalLayer::new(audit))
    }

    /// Sets the layer that runs after inspect: token verification and scope policy. It puts
    /// the [`Principal`] in the request extensions for the layers inside it.
    pub fn auth<V, P>(
        self,
        auth: AuthLayer<V, P>,
    ) -> McpEdge<AuditL, AuthLayer<V, P>, UserL, SessionL, SseL, LimitL> {
        self.auth_slot(auth)
    }

    /// [`auth`](McpEdge::auth) when `Some`, an open endpoint when `None`: one stack type
    /// either way, so a program that reads `--token` at start-up builds one router.
    pub fn auth_opt<V, P>(
        self,
        auth: Option<AuthLayer<V, P>>,
    ) -> McpEdge<AuditL, OptionalLayer<AuthLayer<V, P>>, UserL, SessionL, SseL, LimitL> {
        self.auth_slot(OptionalLayer::new(auth))
    }

    /// Sets the layer that runs right after auth, before your layers: rate limits, quotas,
    /// concurrency and stream caps per principal and per tool (see [`limit`]).
    pub fn limit(
        self,
        limit: LimitLayer,
    ) -> McpEdge<AuditL, AuthL, UserL, SessionL, SseL, LimitLayer> {
        self.limit_slot(limit)
    }

    /// [`limit`](McpEdge::limit) when `Some`, no limits when `None`: one stack type either
    /// way, so a program that reads `--limit` at start-up builds one router.
    pub fn limit_opt(
        self,
        limit: Option<LimitLayer>,
    ) -> McpEdge<AuditL, AuthL, UserL, SessionL, SseL, OptionalLayer<LimitLayer>> {
        self.limit_slot(OptionalLayer::new(limit))
    }

    /// Adds a layer of your own after auth (and limit) and before session: there the request
    /// has been classified (`Arc<McpRequest>`) and, with an auth layer, its [`Principal`] is
    /// known (both in the request extensions). Call it again to stack more; the first one added
    /// runs first, as with `tower::ServiceBuilder`.
    ///
    /// The layer's service sees the request body as inspect left it
    /// ([`EdgeBody`], already read and bounded) and must answer with an `http::Response`
    /// whose body yields `Bytes`. To refuse, answer with a [`Rejection`]'s response
    /// ([`Rejection::into_response`]) so the audit layer records who refused and why.
    ///
    /// ```
    /// use http::Request;
    /// use mcp_edge::auth::StaticTokens;
    /// use mcp_edge::{AuthLayer, McpEdge, Principal};
    /// use tower::util::MapRequestLayer;
    ///
    /// let tokens = StaticTokens::new().token("s3cret", Principal::new("alice"));
    /// let edge = McpEdge::builder()
    ///     .auth(AuthLayer::new(tokens))
    ///     .with_layer(MapRequestLayer::new(|request: Request<_>| {
    ///         let who = request.extensions().get::<Principal>().map(Principal::subject);
    ///         tracing::info!(?who, "MCP call");
    ///         request
    ///     }));
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/mcp", axum::routing::post(|| async { "your MCP service" }))
    ///     .layer(edge);
    /// # let _ = app;
    /// ```
    ///
    /// A layer that refuses, holds state or waits is a `Layer` and `Service` pair of your own;
    /// the [guide] shows one. axum's `middleware::from_fn` takes `Request<axum::body::Body>`
    /// only, so it fits outside the edge (`Router::layer`), not in this slot.
    pub fn with_layer<L>(
        self,
        layer: L,
    ) -> McpEdge<AuditL, AuthL, Stack<L, UserL>, SessionL, SseL, LimitL> {
        replace_slot!(self, user: Stack::new(layer, self.user); audit, guard, inspect, auth, limit, session, sse)
    }

    /// Sets the layer that runs after your layers: legacy sessions (it puts the
    /// [`SessionId`] in the request and response extensions).
    pub fn session(
        self,
        session: SessionLayer,
    ) -> McpEdge<AuditL, AuthL, UserL, SessionLayer, SseL, LimitL> {
        self.session_slot(session)
    }

    /// [`session`](McpEdge::session) when `Some`, no session layer when `None`.
    pub fn session_opt(
        self,
        session: Option<SessionLayer>,
    ) -> McpEdge<AuditL, AuthL, UserL, OptionalLayer<SessionLayer>, SseL, LimitL> {
        self.session_slot(OptionalLayer::new(session))
    }

    /// Sets the innermost layer: SSE flush-through, heartbeats and drain.
    pub fn sse(self, sse: SseLayer) -> McpEdge<AuditL, AuthL, UserL, SessionL, SseLayer, LimitL> {
        self.sse_slot(sse)
    }

    /// [`sse`](McpEdge::sse) when `Some`, no SSE layer when `None`.
    pub fn sse_opt(
        self,
        sse: Option<SseLayer>,
    ) -> McpEdge<AuditL, AuthL, UserL, SessionL, OptionalLayer<SseLayer>, LimitL> {
        self.sse_slot(OptionalLayer::new(sse))
    }

    // One private setter per slot whose type changes (struct update syntax cannot change a
    // type parameter on stable Rust); the public setters above only choose what goes in.

    fn audit_slot<X>(self, audit: X) -> McpEdge<X, AuthL, UserL, SessionL, SseL, LimitL> {
        replace_slot!(self, audit: audit; guard, inspect, auth, limit, user, session, sse)
    }

    fn auth_slot<X>(self, auth: X) -> McpEdge<AuditL, X, UserL, SessionL, SseL, LimitL> {
        replace_slot!(self, auth: auth; audit, guard, inspect, limit, user, session, sse)
    }

    fn limit_slot<X>(self, limit: X) -> McpEdge<AuditL, AuthL, UserL, SessionL, SseL, X> {
        replace_slot!(self, limit: limit; audit, guard, inspect, auth, user, session, sse)
    }

    fn session_slot<X>(self, session: X) -> McpEdge<AuditL, AuthL, UserL, X, SseL, LimitL> {
        replace_slot!(self, session: session; audit, guard, inspect, auth, limit, user, sse)
    }

    fn sse_slot<X>(self, sse: X) -> McpEdge<AuditL, AuthL, UserL, SessionL, X, LimitL> {
        replace_slot!(self, sse: sse; audit, guard, inspect, auth, limit, user, session)
    }
}

impl<S, AuditL, AuthL, UserL, SessionL, SseL, LimitL> Layer<S>
    for McpEdge<AuditL, AuthL, UserL, SessionL, SseL, LimitL>
where
    SseL: Layer<S>,
    SessionL: Layer<SseL::Service>,
    UserL: Layer<SessionL::Service>,
    LimitL: Layer<UserL::Service>,
    AuthL: Layer<LimitL::Service>,
    AuditL: Layer<Guard<Inspect<AuthL::Service>>>,
{
    type Service = AuditL::Service;

    fn layer(&self, service: S) -> Self::Service {
        let service = self.sse.layer(service);
        let service = self.session.layer(service);
        let service = self.user.layer(service);
        let service = self.limit.layer(service);
        let service = self.auth.layer(service);
        let service = self.inspect.layer(service);
        let service = self.guard.layer(service);
        self.audit.layer(service)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::Full;
    use tower::util::MapRequestLayer;
    use tower::{ServiceExt, service_fn};
    use tower_service::Service;

    use super::*;
    use crate::auth::StaticTokens;

    type Log = Arc<Mutex<Vec<String>>>;

    /// The request a user layer sees here.
    type UserRequest = Request<EdgeBody<Full<Bytes>>>;

    /// A user layer: notes its name, the principal and the method it sees.
    fn note(
        name: &'static str,
        log: &Log,
    ) -> MapRequestLayer<impl Fn(UserRequest) -> UserRequest + Clone> {
        let log = Arc::clone(log);
        MapRequestLayer::new(move |request: UserRequest| {
            let principal = request
                .extensions()
                .get::<Principal>()
                .map(Principal::subject);
            let method = request
                .extensions()
                .get::<Arc<McpRequest>>()
                .map(|m| m.method());
            log.lock().unwrap().push(format!(
                "{name} {} {}",
                principal.unwrap_or("-"),
                method.flatten().unwrap_or("-")
            ));
            request
        })
    }

    type Inner = tower::util::ServiceFn<
        fn(
            Request<EdgeBody<Full<Bytes>>>,
        ) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
    >;

    fn mcp_service() -> Inner {
        service_fn(|_| std::future::ready(Ok(Response::new(Full::new(Bytes::from("{}"))))))
    }

    fn initialize(token: Option<&str>) -> Request<Full<Bytes>> {
        let mut request = Request::post("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
        request.body(Full::new(Bytes::from(body))).unwrap()
    }

    /// The status of an `initialize` with `token` (if any) through `service`.
    async fn status<S, B>(service: &S, token: Option<&str>) -> StatusCode
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
        S::Error: std::fmt::Debug,
    {
        service
            .clone()
            .oneshot(initialize(token))
            .await
            .unwrap()
            .status()
    }

    fn auth() -> AuthLayer<StaticTokens> {
        AuthLayer::new(StaticTokens::new().token("t0ken", Principal::new("alice")))
    }

    #[tokio::test]
    async fn user_layers_run_after_auth_in_the_order_added_and_see_the_principal() {
        let log = Log::default();
        let edge = McpEdge::builder()
            .auth(auth())
            .with_layer(note("first", &log))
            .with_layer(note("second", &log));
        let service = edge.layer(mcp_service());

        assert_eq!(status(&service, Some("t0ken")).await, StatusCode::OK);
        assert_eq!(
            *log.lock().unwrap(),
            ["first alice initialize", "second alice initialize"]
        );

        // Refused by auth: the user layers never see it.
        assert_eq!(status(&service, None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(log.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn limit_runs_after_auth_and_before_user_layers() {
        let log = Log::default();
        let limit = limit::LimitLayer::per_principal(1, std::time::Duration::from_secs(60));
        let edges = [Some(limit), None].map(|limit| {
            McpEdge::builder()
                .auth(auth())
                .limit_opt(limit)
                .with_layer(note("user", &log))
                .layer(mcp_service())
        });
        let [on, off] = edges;
        // Refused by auth first: no budget spent.
        assert_eq!(status(&on, None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(&on, Some("t0ken")).await, StatusCode::OK);
        // An initialize over the limit: 429 (R45), and the user layer never sees it.
        let response = on.oneshot(initialize(Some("t0ken"))).await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let rejection = response.extensions().get::<Rejection>().unwrap();
        assert_eq!(rejection.rejected_by(), RejectedBy::Limit);
        assert_eq!(log.lock().unwrap().len(), 1);
        for _ in 0..3 {
            assert_eq!(status(&off, Some("t0ken")).await, StatusCode::OK);
        }
    }

    #[tokio::test]
    async fn auth_opt_gives_one_stack_type_whether_auth_is_on_or_off() {
        let log = Log::default();
        // One array: the same type with auth and without.
        let edges = [Some(auth()), None].map(|auth| {
            McpEdge::builder()
                .auth_opt(auth)
                .with_layer(note("user", &log))
                .sse_opt(None)
                .session_opt(Some(SessionLayer::new()))
                .layer(mcp_service())
        });
        let [on, off] = edges;
        assert_eq!(status(&on, None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(&on, Some("t0ken")).await, StatusCode::OK);
        assert_eq!(status(&off, None).await, StatusCode::OK);
        assert_eq!(
            *log.lock().unwrap(),
            ["user alice initialize", "user - initialize"]
        );
    }

    #[tokio::test]
    async fn audit_opt_on_or_off_in_front_of_one_axum_router() {
        let (sink, mut events) = crate::audit::ChannelSink::new(8);
        let routers = [Some(AuditLayer::new(sink)), None].map(|audit| {
            axum::Router::new()
                .route("/mcp", axum::routing::post(|| async { "{}" }))
                .layer(McpEdge::builder().audit_opt(audit))
        });
        for router in routers {
            assert_eq!(status(&router, None).await, StatusCode::OK);
        }
        // One event: from the router with audit on.
        let event = events.recv().await.unwrap();
        assert_eq!(event.status(), Some(StatusCode::OK));
        assert!(events.recv().await.is_none());
    }
}
