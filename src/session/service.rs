use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::future::{Check, Ctx, Plan, ResponseFuture};
use super::layer::{Config, SessionLayer, SessionMode};
use crate::context::{BindingKey, Principal};
use crate::error::EdgeBody;
use crate::error::{RejectedBy, Rejection};
use crate::protocol::{Era, McpRequest};
use crate::store::{Presented, StoreFuture};

/// The service built by [`SessionLayer`].
#[derive(Clone)]
pub struct Session<S> {
    pub(super) inner: S,
    pub(super) config: Arc<Config>,
}

impl<S> Session<S> {
    /// Wraps `inner` with a default [`SessionLayer`].
    pub fn new(inner: S) -> Self {
        SessionLayer::new().layer(inner)
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("inner", &self.inner)
            .field("mode", &self.config.mode)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Session<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
{
    type Response = Response<EdgeBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let legacy = request
            .extensions()
            .get::<Arc<McpRequest>>()
            .filter(|mcp| mcp.era() == Era::Legacy)
            .cloned();
        // Modern requests (R31) and requests the inspect layer did not classify pass
        // untouched.
        let Some(mcp) = legacy else {
            return ResponseFuture::calling(self.inner.call(request), None);
        };
        let config = &self.config;
        let enforce = config.mode == SessionMode::Enforce;
        let principal = request.extensions().get::<Principal>().cloned();
        let rpc_id = mcp.id().cloned();

        let (check, plan): (Option<StoreFuture<Check>>, Plan) = if mcp.is_initialize() {
            // The session header of an initialize is not looked at: a client starting over
            // may still send its old id (R28), and a refusal here must not be 400/404 (R45).
            // Caps hold in every mode: they are the edge's own rule, not something the
            // server knows better.
            let check =
                (config.max_total.is_some() || config.max_per_principal.is_some()).then(|| {
                    let key = principal.as_ref().map(BindingKey::of);
                    let key = key.as_ref().map(BindingKey::as_str);
                    config.resolver.store().count(key).map(Check::Count)
                });
            let plan = Plan::Initialize {
                principal,
                version: mcp.version(),
                client_info: mcp.message().and_then(|m| m.client_info()).cloned(),
            };
            (check, plan)
        } else {
            let id = match Presented::of(&request) {
                Presented::Id(id) => id,
                _ if !enforce => return ResponseFuture::calling(self.inner.call(request), None),
                Presented::Absent => {
                    return ResponseFuture::rejected(Rejection::session_required(
                        RejectedBy::Session,
                        rpc_id,
                    ));
                }
                Presented::Invalid => {
                    return ResponseFuture::rejected(
                        Rejection::invalid_session_id(RejectedBy::Session, rpc_id)
                            .with_message(INVALID_HEADER),
                    );
                }
            };
            request.extensions_mut().insert(id.clone());
            // Read once, by inspect.
            let header_version = mcp.header_version();
            // Judged in the store's own step: a foreign request never refreshes the owner's
            // idle deadline.
            let check = config
                .resolver
                .touch_as(&id, principal.as_ref())
                .map(Check::Record);
            let plan = Plan::Existing {
                id,
                principal,
                delete: request.method() == Method::DELETE,
                header_version,
                record: None,
            };
            (Some(check), plan)
        };

        let mut ctx = Ctx {
            config: Arc::clone(config),
            rpc_id,
            plan,
        };
        let Some(check) = check else {
            return ResponseFuture::calling(self.inner.call(request), Some(ctx));
        };
        match check.into_ready() {
            // A memory store answered on the spot: decide now, no state to keep.
            Ok(answer) => match ctx.decide(answer) {
                None => ResponseFuture::calling(self.inner.call(request), Some(ctx)),
                Some(rejection) => ResponseFuture::rejected(rejection),
            },
            Err(check) => {
                // The inner service is called after an await: take the one driven to
                // readiness and leave a clone in its place.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::checking(check, inner, request, ctx)
            }
        }
    }
}

/// The message of an invalid `Mcp-Session-Id` refusal from this layer (the router's says
/// "Bad Request: invalid Mcp-Session-Id", the default).
const INVALID_HEADER: &str = "Bad Request: invalid Mcp-Session-Id header";

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use tower::{ServiceBuilder, ServiceExt};

    use http::StatusCode;

    use super::*;
    use crate::context::Replica;
    use crate::error::Reason;
    use crate::inspect::InspectLayer;
    use crate::protocol::{ProtocolVersion, SessionId};
    use crate::store::{MemorySessionStore, SessionRecord, SessionStore, StoreError};

    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"1.0"}}}"#;
    const LIST: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;

    /// A stand-in MCP server: numbered session ids on initialize, 404 when asked to
    /// (`x-forget`), 405 on DELETE when asked to (`x-no-delete`), an SSE initialize response
    /// when asked to (`x-sse`), and it reports whether it saw a `SessionId` extension.
    #[derive(Clone, Default)]
    struct Server {
        next: Arc<AtomicUsize>,
    }

    impl Server {
        fn service(
            &self,
        ) -> impl Service<
            Request<crate::error::EdgeBody<Full<Bytes>>>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
            Future = impl Send,
        > + Clone
        + Send
        + 'static {
            let next = Arc::clone(&self.next);
            tower::service_fn(
                move |request: Request<crate::error::EdgeBody<Full<Bytes>>>| {
                    let next = Arc::clone(&next);
                    async move {
                        let mcp = request.extensions().get::<Arc<McpRequest>>().cloned();
                        let seen = request.extensions().get::<SessionId>().cloned();
                        let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
                        if let Some(seen) = seen {
                            response
                                .headers_mut()
                                .insert("x-seen-session", seen.to_header_value());
                        }
                        if request.headers().contains_key("x-forget") {
                            *response.status_mut() = StatusCode::NOT_FOUND;
                        } else if request.method() == Method::DELETE
                            && request.headers().contains_key("x-no-delete")
                        {
                            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                        } else if mcp.is_some_and(|m| m.is_initialize() && m.era() == Era::Legacy) {
                            let n = next.fetch_add(1, Ordering::SeqCst);
                            response
                                .headers_mut()
                                .insert("Mcp-Session-Id", format!("sess-{n}").parse().unwrap());
                            if request.headers().contains_key("x-sse") {
                                response
                                    .headers_mut()
                                    .insert("content-type", "text/event-stream".parse().unwrap());
                            }
                            if request.headers().contains_key("x-replica") {
                                response.extensions_mut().insert(Replica::new("r7"));
                            }
                        }
                        Ok::<_, Infallible>(response)
                    }
                },
            )
        }
    }

    struct Harness<St> {
        store: St,
        layer: SessionLayer,
        server: Server,
    }

    impl Harness<MemorySessionStore> {
        fn new(mode: SessionMode) -> Self {
            Harness::configured(mode, |layer| layer)
        }

        /// A harness whose layer (over a memory store, in `mode`) `configure` sets up.
        fn configured(
            mode: SessionMode,
            configure: impl FnOnce(SessionLayer) -> SessionLayer,
        ) -> Self {
            let store = MemorySessionStore::new();
            Harness {
                layer: configure(SessionLayer::with_store(store.clone()).mode(mode)),
                store,
                server: Server::default(),
            }
        }
    }

    impl Harness<()> {
        /// A harness around `layer`, whose store the tests do not read.
        fn without_store(layer: SessionLayer) -> Self {
            Harness {
                store: (),
                layer,
                server: Server::default(),
            }
        }
    }

    impl<St> Harness<St> {
        async fn send(&self, request: Request<Full<Bytes>>) -> Response<Bytes> {
            let service = ServiceBuilder::new()
                .layer(InspectLayer::new())
                .layer(self.layer.clone())
                .service(self.server.service());
            let response = service.oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            Response::from_parts(parts, bytes)
        }

        async fn status(&self, request: Request<Full<Bytes>>) -> StatusCode {
            self.send(request).await.status()
        }

        /// The status of a `tools/list` in session `id`.
        async fn list(&self, id: &str) -> StatusCode {
            self.status(post(Some(id), LIST, None)).await
        }

        async fn initialize(&self, principal: Option<&Principal>) -> SessionId {
            let response = self.send(post(None, INIT, principal)).await;
            assert_eq!(response.status(), StatusCode::OK);
            let id = response.extensions().get::<SessionId>().cloned().unwrap();
            assert_eq!(response.headers()["mcp-session-id"], id.as_str());
            id
        }
    }

    fn post(
        session: Option<&str>,
        body: &'static str,
        principal: Option<&Principal>,
    ) -> Request<Full<Bytes>> {
        let mut builder = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(id) = session {
            builder = builder.header("mcp-session-id", id);
        }
        let mut request = builder
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        if let Some(p) = principal {
            request.extensions_mut().insert(p.clone());
        }
        request
    }

    /// `request` with one more header.
    fn with(
        mut request: Request<Full<Bytes>>,
        name: &'static str,
        value: &'static str,
    ) -> Request<Full<Bytes>> {
        request
            .headers_mut()
            .insert(name, http::HeaderValue::from_static(value));
        request
    }

    fn bodyless(
        method: Method,
        session: &str,
        principal: Option<&Principal>,
    ) -> Request<Full<Bytes>> {
        let mut request = Request::builder()
            .method(method)
            .uri("/mcp")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Some(p) = principal {
            request.extensions_mut().insert(p.clone());
        }
        request
    }

    fn json(response: &Response<Bytes>) -> serde_json::Value {
        serde_json::from_slice(response.body()).unwrap()
    }

    fn reason(response: &Response<Bytes>) -> Reason {
        response.extensions().get::<Rejection>().unwrap().reason()
    }

    #[tokio::test]
    async fn missing_session_id_gets_400_with_jsonrpc_body() {
        let h = Harness::new(SessionMode::Enforce);
        let response = h.send(post(None, LIST, None)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(reason(&response), Reason::SessionRequired);
        let body = json(&response);
        assert_eq!(body["error"]["code"], -32000);
        assert_eq!(body["id"], 7);
    }

    #[tokio::test]
    async fn invalid_or_repeated_session_id_gets_400() {
        let h = Harness::new(SessionMode::Enforce);
        let mut request = post(None, LIST, None);
        request.headers_mut().insert(
            "mcp-session-id",
            http::HeaderValue::from_bytes(b"a b").unwrap(),
        );
        let response = h.send(request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(reason(&response), Reason::InvalidSessionId);

        let id = h.initialize(None).await;
        let mut request = post(Some(id.as_str()), LIST, None);
        request
            .headers_mut()
            .append("mcp-session-id", "other".parse().unwrap());
        let response = h.send(request).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(json(&response)["error"]["code"], -32000);
    }

    #[tokio::test]
    async fn unknown_session_gets_404_and_jsonrpc_body() {
        let h = Harness::new(SessionMode::Enforce);
        let response = h.send(post(Some("nope"), LIST, None)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(reason(&response), Reason::SessionNotFound);
        let body = json(&response);
        assert_eq!(body["error"]["code"], -32001);
        assert_eq!(body["error"]["message"], "Session not found");
        assert_eq!(body["id"], 7);
        let response = h.send(bodyless(Method::GET, "nope", None)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn known_session_passes_with_id_in_request_and_response_extensions() {
        let h = Harness::new(SessionMode::Enforce);
        let id = h.initialize(None).await;
        let record = h.store.get(&id).await.unwrap().unwrap();
        assert_eq!(record.protocol_version(), ProtocolVersion::V2025_11_25);
        assert_eq!(record.client_info().unwrap().name.as_deref(), Some("probe"));
        let response = h.send(post(Some(id.as_str()), LIST, None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-seen-session"], id.as_str());
        assert_eq!(response.extensions().get::<SessionId>(), Some(&id));
        let response = h.send(bodyless(Method::GET, id.as_str(), None)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn session_is_learned_from_an_sse_initialize_response_with_its_replica() {
        let h = Harness::new(SessionMode::Enforce);
        let request = with(with(post(None, INIT, None), "x-sse", "1"), "x-replica", "1");
        let response = h.send(request).await;
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let id = response.extensions().get::<SessionId>().unwrap();
        let record = h.store.get(id).await.unwrap().unwrap();
        assert_eq!(record.replica(), Some(&Replica::new("r7")));
    }

    #[tokio::test]
    async fn session_of_another_principal_gets_404() {
        let h = Harness::new(SessionMode::Enforce);
        let alice = Principal::new("alice").with_issuer("https://as.example");
        let mallory = Principal::new("mallory").with_issuer("https://as.example");
        let id = h.initialize(Some(&alice)).await;
        let response = h.send(post(Some(id.as_str()), LIST, Some(&mallory))).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(reason(&response), Reason::SessionPrincipalMismatch);
        assert_eq!(json(&response)["error"]["code"], -32001);
        // No principal at all is not the owner either.
        let response = h.send(post(Some(id.as_str()), LIST, None)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = h
            .send(bodyless(Method::DELETE, id.as_str(), Some(&mallory)))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        // The owner still gets through: the foreign attempts ended nothing.
        let response = h.send(post(Some(id.as_str()), LIST, Some(&alice))).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn delete_ends_the_session_once_the_server_accepts() {
        let h = Harness::new(SessionMode::Enforce);
        let id = h.initialize(None).await;
        let refused = with(
            bodyless(Method::DELETE, id.as_str(), None),
            "x-no-delete",
            "1",
        );
        assert_eq!(h.status(refused).await, StatusCode::METHOD_NOT_ALLOWED);
        assert!(h.store.get(&id).await.unwrap().is_some());
        let response = h.send(bodyless(Method::DELETE, id.as_str(), None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(h.store.get(&id).await.unwrap().is_none());
        let response = h.send(post(Some(id.as_str()), LIST, None)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn server_404_removes_the_record() {
        let h = Harness::new(SessionMode::Enforce);
        let id = h.initialize(None).await;
        let request = with(post(Some(id.as_str()), LIST, None), "x-forget", "1");
        assert_eq!(h.status(request).await, StatusCode::NOT_FOUND);
        assert!(h.store.get(&id).await.unwrap().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_session_expires_after_its_ttl() {
        let h = Harness::configured(SessionMode::Enforce, |layer| {
            layer.idle_ttl(Duration::from_secs(60))
        });
        let id = h.initialize(None).await;
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(h.list(id.as_str()).await, StatusCode::OK);
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(h.list(id.as_str()).await, StatusCode::OK);
        tokio::time::advance(Duration::from_secs(61)).await;
        let response = h.send(post(Some(id.as_str()), LIST, None)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(json(&response)["error"]["code"], -32001);
    }

    #[tokio::test(start_paused = true)]
    async fn busy_session_ends_at_its_absolute_lifetime() {
        let h = Harness::configured(SessionMode::Enforce, |layer| {
            layer
                .idle_ttl(Duration::from_secs(60))
                .max_lifetime(Duration::from_secs(100))
        });
        let id = h.initialize(None).await;
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(30)).await;
            assert_eq!(h.list(id.as_str()).await, StatusCode::OK);
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(h.list(id.as_str()).await, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn caps_refuse_initialize_with_429_or_503_never_400_404_405() {
        let alice = Principal::new("alice");
        let bob = Principal::new("bob");
        // Caps hold in every mode, the default (observe) included.
        for mode in [SessionMode::Observe, SessionMode::Enforce] {
            let h = Harness::configured(mode, |layer| {
                layer.max_sessions_per_principal(2).max_sessions(3)
            });
            let first = h.initialize(Some(&alice)).await;
            h.initialize(Some(&alice)).await;
            let response = h.send(post(None, INIT, Some(&alice))).await;
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(reason(&response), Reason::SessionLimit);
            assert_eq!(response.headers()["retry-after"], "1");
            assert_eq!(json(&response)["id"], 1);
            h.initialize(Some(&bob)).await;
            let response = h.send(post(None, INIT, Some(&bob))).await;
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(reason(&response), Reason::SessionLimit);
            assert!(json(&response)["error"]["code"].is_i64());
            // Ending a session frees a slot.
            h.send(bodyless(Method::DELETE, first.as_str(), Some(&alice)))
                .await;
            h.initialize(Some(&alice)).await;
        }
    }

    #[tokio::test]
    async fn observe_mode_records_but_never_refuses() {
        let h = Harness::new(SessionMode::Observe);
        let alice = Principal::new("alice");
        assert_eq!(h.status(post(None, LIST, None)).await, StatusCode::OK);
        let mut invalid = post(None, LIST, None);
        invalid.headers_mut().insert(
            "mcp-session-id",
            http::HeaderValue::from_bytes(b"a b").unwrap(),
        );
        assert_eq!(h.status(invalid).await, StatusCode::OK);
        let id = h.initialize(Some(&alice)).await;
        assert!(h.store.get(&id).await.unwrap().is_some());
        // Binding holds in every mode (R32): another principal's request is refused.
        let response = h
            .send(post(Some(id.as_str()), LIST, Some(&Principal::new("bob"))))
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(reason(&response), Reason::SessionPrincipalMismatch);
        // A session the edge never saw is adopted, not refused.
        let response = h.send(post(Some("from-elsewhere"), LIST, None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-seen-session"], "from-elsewhere");
        assert!(
            h.store
                .get(&"from-elsewhere".parse().unwrap())
                .await
                .unwrap()
                .is_some()
        );
        // A DELETE without the owner's principal is refused; the owner's ends the record.
        let response = h.send(bodyless(Method::DELETE, id.as_str(), None)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(h.store.get(&id).await.unwrap().is_some());
        h.send(bodyless(Method::DELETE, id.as_str(), Some(&alice)))
            .await;
        assert!(h.store.get(&id).await.unwrap().is_none());
        // A DELETE of an id the store never recorded or has ended: 404 (R27).
        for gone in [id.as_str(), "never-seen"] {
            let response = h.send(bodyless(Method::DELETE, gone, None)).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            assert_eq!(json(&response)["error"]["code"], -32001);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_foreign_request_never_refreshes_the_owners_idle_timer() {
        for mode in [SessionMode::Observe, SessionMode::Enforce] {
            let h = Harness::configured(mode, |layer| layer.idle_ttl(Duration::from_secs(60)));
            let alice = Principal::new("alice").with_issuer("i");
            let bob = Principal::new("bob").with_issuer("i");
            let id = h.initialize(Some(&alice)).await;
            for _ in 0..2 {
                tokio::time::advance(Duration::from_secs(25)).await;
                let response = h.send(post(Some(id.as_str()), LIST, Some(&bob))).await;
                assert_eq!(response.status(), StatusCode::NOT_FOUND);
                let rejection = response.extensions().get::<Rejection>().unwrap();
                assert_eq!(rejection.owner().map(|o| o.subject()), Some("alice"));
            }
            tokio::time::advance(Duration::from_secs(15)).await;
            // 65 s after Alice's last request: expired, whatever Bob did.
            assert!(h.store.get(&id).await.unwrap().is_none(), "{mode:?}");
        }
    }

    #[tokio::test]
    async fn concurrent_initializes_never_overshoot_the_caps() {
        let alice = Principal::new("alice");
        for mode in [SessionMode::Observe, SessionMode::Enforce] {
            let h = Harness::configured(mode, |layer| {
                layer.max_sessions(5).max_sessions_per_principal(3)
            });
            let sends = (0..20).map(|i| {
                let who = if i % 2 == 0 { Some(&alice) } else { None };
                h.send(post(None, INIT, who))
            });
            let statuses: Vec<StatusCode> = futures::future::join_all(sends)
                .await
                .iter()
                .map(|r| r.status())
                .collect();
            let ok = statuses.iter().filter(|s| s.is_success()).count();
            assert_eq!(ok, 5, "{statuses:?}");
            assert_eq!(h.store.len(), 5);
            assert!(
                h.store
                    .count(Some(BindingKey::of(&alice).as_str()))
                    .await
                    .unwrap()
                    .principal
                    <= 3
            );
        }
    }

    #[tokio::test]
    async fn modern_requests_pass_untouched() {
        let h = Harness::new(SessionMode::Enforce);
        let modern = r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        for session in [None, Some("whatever")] {
            let request = with(
                with(
                    post(session, modern, None),
                    "mcp-protocol-version",
                    "2026-07-28",
                ),
                "mcp-method",
                "tools/list",
            );
            let response = h.send(request).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert!(response.headers().get("x-seen-session").is_none());
            assert!(response.extensions().get::<SessionId>().is_none());
        }
        assert!(h.store.is_empty());
    }

    #[tokio::test]
    async fn the_version_the_client_then_speaks_is_recorded() {
        let h = Harness::new(SessionMode::Enforce);
        let id = h.initialize(None).await;
        let request = with(
            post(Some(id.as_str()), LIST, None),
            "mcp-protocol-version",
            "2025-06-18",
        );
        assert_eq!(h.status(request).await, StatusCode::OK);
        let record = h.store.get(&id).await.unwrap().unwrap();
        assert_eq!(record.protocol_version(), ProtocolVersion::V2025_06_18);
    }

    /// A store whose backend is down: every call fails (as a Redis store does when Redis is
    /// unreachable; the real thing is tested in tests/session_redis.rs).
    struct DownStore;

    impl SessionStore for DownStore {
        fn get(&self, _: &SessionId) -> StoreFuture<Option<SessionRecord>> {
            StoreFuture::boxed(async { Err(StoreError::timeout()) })
        }
        fn touch(&self, _: &SessionId) -> StoreFuture<Option<SessionRecord>> {
            StoreFuture::boxed(async { Err(StoreError::timeout()) })
        }
        fn insert(&self, _: SessionRecord) -> StoreFuture<()> {
            StoreFuture::boxed(async { Err(StoreError::timeout()) })
        }
        fn touch_as(
            &self,
            _: &SessionId,
            _: Option<&Principal>,
        ) -> StoreFuture<Option<SessionRecord>> {
            StoreFuture::boxed(async { Err(StoreError::timeout()) })
        }
        fn insert_within(
            &self,
            _: SessionRecord,
            _: crate::store::SessionCaps,
        ) -> StoreFuture<crate::store::Capped> {
            StoreFuture::boxed(async { Err(StoreError::timeout()) })
        }
        fn remove(&self, _: &SessionId) -> StoreFuture<bool> {
            StoreFuture::boxed(async { Err(StoreError::timeout()) })
        }
        fn set_replica(&self, _: &SessionId, _: Option<Replica>) -> StoreFuture<bool> {
            StoreFuture::boxed(async { Err(StoreError::timeout()) })
        }
        fn count(&self, _: Option<&str>) -> StoreFuture<crate::store::SessionCount> {
            StoreFuture::boxed(async { Err(StoreError::timeout()) })
        }
    }

    #[tokio::test]
    async fn store_failure_gets_503_in_enforce_and_passes_in_observe() {
        let h = Harness::without_store(
            SessionLayer::with_store(DownStore)
                .enforce()
                .max_sessions(10),
        );
        let response = h.send(post(Some("s"), LIST, None)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reason(&response), Reason::StoreUnavailable);
        assert_eq!(json(&response)["id"], 7);
        let response = h.send(post(None, INIT, None)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let h = Harness::without_store(SessionLayer::with_store(DownStore).enforce());
        // Without caps, the initialize reaches the server, but the session cannot be
        // recorded: enforce mode answers 503 rather than 404 the client's next request.
        let response = h.send(post(None, INIT, None)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let h = Harness::without_store(SessionLayer::with_store(DownStore).observe());
        assert_eq!(h.status(post(None, INIT, None)).await, StatusCode::OK);
        assert_eq!(h.list("s").await, StatusCode::OK);
    }
}
