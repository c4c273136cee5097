//! [`Aggregator`]: the service, and how it answers each request.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use http::header::{ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tower_service::Service;

use super::body::RoutedBody;
use super::builder::AggregatorBuilder;
use super::cache::{Audience, Merged, Page};
use super::events::Events;
use super::merge;
use super::message::{self, Object, param_str, params_mut, to_bytes};
use super::names::Names;
use super::pin::Pins;
use super::relay::{Merge, MergedBody, Relay, Relayed, SUBSCRIPTION_ID, put_event};
use super::session::{Downstream, Lookup, Sessions, UpstreamSession};
use super::upstream::{Answer, UpstreamError, UpstreamState, drain, post};
use crate::context::{BindingKey, PinAlert, Principal, Routed};
use crate::error::{EdgeBody, Reason, RejectedBy, Rejection};
use crate::protocol::header::{
    MCP_METHOD, MCP_NAME, MCP_PARAM_PREFIX, MCP_PROTOCOL_VERSION, MCP_SESSION_ID, encode_value,
};
use crate::protocol::jsonrpc::{RequestId, code};
use crate::protocol::{
    BodyKind, Era, ListKind, McpRequest, ProtocolErrorKind, ProtocolVersion, Target, body_kind,
};
use crate::store::{ChangedTool, StoreError};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the aggregator answers: a JSON body it wrote, or an upstream's routed answer.
pub type AggregateResponse<R> = Response<EdgeBody<RoutedBody<R>>>;

/// The response future of [`Aggregator`]: one allocation per request (the aggregator's work
/// is several awaits deep: a session to open, upstreams to ask at once).
pub type ResponseFuture<R> =
    Pin<Box<dyn Future<Output = Result<AggregateResponse<R>, Infallible>> + Send>>;

/// One MCP server in front of many: see the [module docs](super).
///
/// `S` is the service that reaches each upstream (all upstreams share one type: use
/// `tower::util::BoxCloneSyncService` to mix types).
pub struct Aggregator<S> {
    pub(crate) shared: Arc<Shared<S>>,
}

impl<S> Clone for Aggregator<S> {
    fn clone(&self) -> Self {
        Aggregator {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> std::fmt::Debug for Aggregator<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("upstreams", &self.upstream_names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<S> Aggregator<S> {
    /// A builder with no upstreams.
    pub fn builder() -> AggregatorBuilder<S> {
        AggregatorBuilder::new()
    }

    /// The upstreams' names, in order.
    pub fn upstream_names(&self) -> impl Iterator<Item = &str> {
        self.shared.upstreams.iter().map(|u| &*u.name)
    }

    /// The tools whose definition changed since it was pinned, waiting for approval, as the
    /// pin store has them (every instance's findings when the store is shared).
    ///
    /// # Failure
    ///
    /// Fails when the pin store does (Redis down or slow: within its timeout).
    pub async fn changed_tools(&self) -> Result<Vec<ChangedTool>, StoreError> {
        self.shared.pins.changed().await
    }

    /// Pins the changed definition of `tool` (its name at upstream `upstream`, before any
    /// rename): it is shown and callable again, at once on this instance and, with a shared
    /// pin store, on the others at their next list of it from the upstream and, for calls,
    /// within their [`pin_sync_interval`](AggregatorBuilder::pin_sync_interval). Clients
    /// listening for list changes are told. False when no change was waiting.
    ///
    /// # Failure
    ///
    /// Fails when the pin store does; nothing was approved then, or (the answer lost) the
    /// approval was recorded and a retry answers false.
    pub async fn approve_tool(&self, upstream: &str, tool: &str) -> Result<bool, StoreError> {
        self.shared.pins.approve(upstream, tool).await
    }

    /// Drops the cached pages of list `kind` of upstream `upstream` (what a
    /// `notifications/…/list_changed` from it means; `ListKind::Resources` drops resource
    /// templates too). False when no upstream has that name.
    pub fn invalidate(&self, upstream: &str, kind: ListKind) -> bool {
        let Some(state) = self.shared.upstreams.iter().find(|u| &*u.name == upstream) else {
            return false;
        };
        state.lists.invalidate(kind);
        if kind == ListKind::Resources {
            state.lists.invalidate(ListKind::ResourceTemplates);
        }
        true
    }

    /// How many aggregator sessions (legacy clients) are open.
    pub fn open_sessions(&self) -> usize {
        self.shared.sessions.len()
    }
}

/// The aggregator's state, shared by its clones.
pub(crate) struct Shared<S> {
    pub(crate) upstreams: Box<[UpstreamState<S>]>,
    pub(crate) names: Names,
    pub(crate) sessions: Sessions,
    pub(crate) server_name: Cow<'static, str>,
    pub(crate) server_version: Cow<'static, str>,
    pub(crate) instructions: Option<Cow<'static, str>>,
    pub(crate) max_body_bytes: usize,
    pub(crate) next_id: AtomicI64,
    pub(crate) pins: Pins,
    /// What upstreams announce (list changes), for whoever keeps state about them.
    pub(crate) events: Events,
}

impl<S, R, B> Service<Request<B>> for Aggregator<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<R>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    R: Body<Data = Bytes> + Send + 'static,
    R::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = AggregateResponse<R>;
    type Error = Infallible;
    type Future = ResponseFuture<R>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each upstream call waits on its own service (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(shared.handle(request).await) })
    }
}

/// One client request, read.
struct Call<'a> {
    era: Era,
    version: ProtocolVersion,
    method: &'a str,
    id: Value,
    /// The message as the client sent it.
    body: &'a Bytes,
    /// The message parsed whole, when first needed (routed calls and lists from cache never
    /// need it: they read the few fields they use without a tree).
    parsed: OnceLock<Object>,
    /// The name or URI the request targets, as inspect read it.
    target: Option<&'a str>,
    session: Option<Arc<Downstream>>,
    headers: &'a HeaderMap,
    uri: Uri,
    principal: Option<&'a Principal>,
    /// Tools found changed since pinned while answering: `(upstream, names)`.
    pins_noticed: std::sync::Mutex<Vec<(usize, Vec<Box<str>>)>>,
}

impl Call<'_> {
    /// The client's message, parsed whole.
    fn message(&self) -> &Object {
        self.parsed.get_or_init(|| {
            // The body was read as one JSON object already (inspect, or `post`).
            serde_json::from_slice(self.body).unwrap_or_default()
        })
    }
}

/// What a list request asks for: where to continue, and whether it retries a request that
/// asked for input (R64: its result is never cached).
struct ListParams {
    cursor: Option<String>,
    retried: bool,
}

impl ListParams {
    /// Read without building a tree (usually a scan of the body finds none of them); from
    /// the parsed message when that does not work.
    fn of(call: &Call<'_>) -> ListParams {
        #[derive(serde::Deserialize)]
        struct Envelope<'a> {
            #[serde(default, borrow)]
            params: Option<&'a serde_json::value::RawValue>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Params<'a> {
            #[serde(default, borrow)]
            cursor: Option<&'a serde_json::value::RawValue>,
            #[serde(default, deserialize_with = "present")]
            input_responses: bool,
            #[serde(default, deserialize_with = "present")]
            request_state: bool,
        }
        fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| true)
        }
        use serde::Deserialize as _;
        // None of the three names in the body (and no `\u` escape that could spell one):
        // nothing to read. The usual first page costs a scan, not a parse.
        static NAMES: LazyLock<[memchr::memmem::Finder<'static>; 4]> = LazyLock::new(|| {
            [&b"cursor"[..], b"inputResponses", b"requestState", b"\\u"]
                .map(memchr::memmem::Finder::new)
        });
        if NAMES.iter().all(|name| name.find(call.body).is_none()) {
            return ListParams {
                cursor: None,
                retried: false,
            };
        }
        // `params` read as an object only (serde would read an array by position).
        let read = serde_json::from_slice::<Envelope<'_>>(call.body)
            .ok()
            .and_then(|envelope| match envelope.params {
                None => Some(None),
                Some(raw) if message::is_object(raw.get().as_bytes()) => {
                    serde_json::from_str::<Params<'_>>(raw.get()).ok().map(Some)
                }
                Some(raw) => (raw.get() == "null").then_some(None),
            });
        match read {
            Some(params) => ListParams {
                // A cursor that is not a string is no cursor (as `param_str` reads it).
                cursor: params
                    .as_ref()
                    .and_then(|p| p.cursor)
                    .and_then(|c| serde_json::from_str::<String>(c.get()).ok()),
                retried: params.is_some_and(|p| p.input_responses || p.request_state),
            },
            None => ListParams {
                cursor: param_str(call.message(), "cursor").map(str::to_owned),
                retried: retried(call.message()),
            },
        }
    }
}

/// Where a routed request names its target.
#[derive(Clone, Copy)]
enum Place {
    /// `params.name` (tools, prompts).
    Name,
    /// `params.uri` (resources).
    Uri,
    /// `params.ref.name` or `params.ref.uri` (completions).
    Ref,
}

impl Place {
    fn of(method: &str) -> Option<Place> {
        match method {
            "tools/call" | "prompts/get" => Some(Place::Name),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some(Place::Uri),
            "completion/complete" => Some(Place::Ref),
            _ => None,
        }
    }
}

fn json_reply<R>(status: StatusCode, body: Bytes) -> AggregateResponse<R> {
    let mut response = Response::new(EdgeBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A 200 JSON answer written in parts (see [`RoutedBody::parts`]).
fn parts_reply<R>(parts: [Bytes; 3]) -> AggregateResponse<R> {
    let mut response = Response::new(EdgeBody::new(RoutedBody::parts(parts)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn empty_reply<R>(status: StatusCode) -> AggregateResponse<R> {
    let mut response = Response::new(EdgeBody::empty());
    *response.status_mut() = status;
    response
}

/// A stream the aggregator merged: `text/event-stream`, never cached.
fn sse_reply<R>(body: MergedBody) -> AggregateResponse<R> {
    let mut response = Response::new(EdgeBody::new(RoutedBody::merged(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The headers of every request to an upstream.
fn base_headers() -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(8);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers
}

/// Trace context goes on to upstreams (R69).
const TRACE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
    HeaderName::from_static("baggage"),
];

fn copy_trace(from: &HeaderMap, to: &mut HeaderMap) {
    for name in &TRACE_HEADERS {
        if let Some(value) = from.get(name) {
            to.insert(name, value.clone());
        }
    }
}

/// The headers of a request inside an upstream session.
fn legacy_headers(session: &UpstreamSession, client: &HeaderMap) -> HeaderMap {
    let mut headers = base_headers();
    headers.insert(
        MCP_PROTOCOL_VERSION,
        HeaderValue::from_static(session.version.as_str()),
    );
    if let Some(id) = &session.id {
        headers.insert(MCP_SESSION_ID, id.clone());
    }
    copy_trace(client, &mut headers);
    headers
}

/// The capability an upstream declares for a list.
fn capability_of(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Tools => "tools",
        ListKind::Prompts => "prompts",
        ListKind::Resources | ListKind::ResourceTemplates => "resources",
        ListKind::Tasks => "tasks",
    }
}

impl<S, R> Shared<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<R>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    R: Body<Data = Bytes> + Send + 'static,
    R::Error: Into<BoxError>,
{
    fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn index_of(&self, namespace: &str) -> Option<usize> {
        self.upstreams.iter().position(|u| &*u.name == namespace)
    }

    async fn handle<B>(self: Arc<Self>, request: Request<B>) -> AggregateResponse<R>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        match parts.method {
            http::Method::POST => self.post(&parts, body).await,
            http::Method::DELETE => self.delete(&parts).await,
            http::Method::GET if parts.headers.contains_key(MCP_SESSION_ID) => {
                self.get(&parts).await
            }
            // Without a session there is no stream to offer (R8; 2026-07-28 has none, R1).
            _ => Rejection::of(RejectedBy::Aggregate, Reason::MethodNotAllowed)
                .with_header(ALLOW, HeaderValue::from_static("GET, POST, DELETE"))
                .into_response(),
        }
    }

    async fn post<B>(self: &Arc<Self>, parts: &Parts, body: B) -> AggregateResponse<R>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let limited = http_body_util::Limited::new(body, self.max_body_bytes);
        let bytes = match limited.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Rejection::body_too_large(self.max_body_bytes).into_response();
            }
            Err(_) => {
                return Rejection::of(RejectedBy::Aggregate, Reason::BodyUnreadable)
                    .into_response();
            }
        };
        let mcp = match parts.extensions.get::<Arc<McpRequest>>() {
            Some(mcp) if mcp.body().is_some() => Arc::clone(mcp),
            _ => match McpRequest::classify(&parts.method, &parts.headers, Some(&bytes)) {
                Ok(mcp) => Arc::new(mcp),
                Err(e) => return Rejection::protocol(&e).into_response(),
            },
        };
        let batch = || {
            Rejection::new(
                RejectedBy::Aggregate,
                Reason::Protocol(ProtocolErrorKind::BatchNotAllowed),
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "Bad Request: the aggregator takes one JSON-RPC message per POST",
            )
            .into_response()
        };
        let Some(single) = mcp.message().filter(|_| !mcp.is_batch()) else {
            return batch();
        };
        let method = single.method();
        // Routed calls and lists read the few fields they need without a tree; anything
        // else is parsed whole now.
        let parsed = OnceLock::new();
        let light = method
            .is_some_and(|m| Place::of(m).is_some() || ListKind::for_method(m).is_some())
            && single.id().is_some();
        if !light {
            match serde_json::from_slice::<Object>(&bytes) {
                Ok(message) => {
                    let _ = parsed.set(message);
                }
                Err(_) => return batch(),
            }
        }
        let session = if mcp.era() == Era::Legacy && method != Some("initialize") {
            match self.session(parts, &mcp) {
                Ok(session) => Some(session),
                Err(refused) => return refused.into_response(),
            }
        } else {
            None
        };
        let Some(method) = method else {
            // The client's answer to a request an upstream sent it.
            if let (Some(session), Some(message)) = (&session, parsed.into_inner()) {
                self.relay_answer(session, message, &parts.headers).await;
            }
            return empty_reply(StatusCode::ACCEPTED);
        };
        let Some(id) = single.id() else {
            if let (Some(session), Some(message)) = (&session, parsed.into_inner()) {
                self.relay_notification(session, method, message, &parts.headers)
                    .await;
            }
            return empty_reply(StatusCode::ACCEPTED);
        };
        let call = Call {
            era: mcp.era(),
            version: session.as_ref().map_or(mcp.version(), |s| s.version),
            method,
            id: match id {
                RequestId::Number(n) => Value::from(*n),
                RequestId::String(s) => Value::String(s.to_string()),
            },
            body: &bytes,
            parsed,
            target: single.target().map(Target::name),
            session,
            headers: &parts.headers,
            uri: origin_form(&parts.uri),
            principal: parts.extensions.get::<Principal>(),
            pins_noticed: std::sync::Mutex::default(),
        };
        self.dispatch(call).await
    }

    /// The client's session, or the refusal (400 without one, 404 unknown, R26, R27).
    fn session(
        self: &Arc<Self>,
        parts: &Parts,
        mcp: &McpRequest,
    ) -> Result<Arc<Downstream>, Rejection> {
        let id = mcp.id().cloned();
        let Some(value) = parts.headers.get(MCP_SESSION_ID) else {
            return Err(Rejection::session_required(RejectedBy::Aggregate, id));
        };
        self.lookup(value, parts.extensions.get::<Principal>())
            .map_err(|rejection| rejection.with_id(id))
    }

    /// The session a header names, if `principal` may use it.
    fn lookup(
        self: &Arc<Self>,
        value: &HeaderValue,
        principal: Option<&Principal>,
    ) -> Result<Arc<Downstream>, Rejection> {
        match self.sessions.get(value.to_str().unwrap_or_default()) {
            Lookup::Found(session) if BindingKey::admits(session.owner.as_ref(), principal) => {
                Ok(session)
            }
            Lookup::Found(_) => Err(Rejection::session_foreign(RejectedBy::Aggregate, None)),
            Lookup::Expired(session) => {
                self.end_later(session);
                Err(Rejection::session_not_found(RejectedBy::Aggregate, None))
            }
            Lookup::Unknown => Err(Rejection::session_not_found(RejectedBy::Aggregate, None)),
        }
    }

    async fn dispatch(self: &Arc<Self>, call: Call<'_>) -> AggregateResponse<R> {
        match (call.era, call.method) {
            (Era::Legacy, "initialize") => return self.initialize(call).await,
            (Era::Modern, "server/discover") => return self.discover(call).await,
            (Era::Modern, "subscriptions/listen") => return self.listen(call),
            (_, "ping") => return json_reply(StatusCode::OK, message::result(&call.id, json!({}))),
            (_, "logging/setLevel") => return self.broadcast(call, "logging").await,
            (_, "tools/list" | "tools/call") => self.pins.sync_if_due().await,
            _ => {}
        }
        if let Some(place) = Place::of(call.method) {
            return self.route(call, place).await;
        }
        match ListKind::for_method(call.method) {
            Some(kind) if kind != ListKind::Tasks => self.list(call, kind).await,
            _ => {
                // R43: 2026-07-28 answers an unknown method with 404.
                let status = match call.era {
                    Era::Modern => StatusCode::NOT_FOUND,
                    Era::Legacy => StatusCode::OK,
                };
                json_reply(
                    status,
                    message::error(&call.id, code::METHOD_NOT_FOUND, "Method not found", None),
                )
            }
        }
    }

    /// Legacy `initialize`: a new aggregator session, answered with the merged capabilities.
    /// Upstreams not yet known are asked now, through this session's own upstream sessions;
    /// the others' sessions open when first needed.
    async fn initialize(self: &Arc<Self>, call: Call<'_>) -> AggregateResponse<R> {
        let params = call.message().get("params").and_then(Value::as_object);
        let version = params
            .and_then(|p| p.get("protocolVersion"))
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<ProtocolVersion>().ok())
            .filter(|v| v.era() == Era::Legacy && *v >= ProtocolVersion::V2025_03_26)
            .unwrap_or(ProtocolVersion::V2025_11_25);
        let mut client = Object::new();
        for field in ["capabilities", "clientInfo"] {
            let value = params.and_then(|p| p.get(field)).cloned();
            client.insert(field.into(), value.unwrap_or_else(|| json!({})));
        }
        let owner = call.principal.map(BindingKey::of);
        let (session, expired) = self.sessions.create(
            version,
            client,
            owner,
            call.uri.clone(),
            self.upstreams.len(),
        );
        for old in expired {
            self.end_later(old);
        }
        let unknown = (0..self.upstreams.len()).filter(|&i| self.upstreams[i].info().is_none());
        join_all(unknown.map(|i| {
            let session = &session;
            async move {
                if let Err(e) = self.upstream_session(session, i, call.headers).await {
                    tracing::warn!(upstream = %self.upstreams[i].name, error = %e, "aggregate: upstream initialize failed");
                }
            }
        }))
        .await;
        let result = json!({
            "protocolVersion": version.as_str(),
            "capabilities": self.capabilities(),
            "serverInfo": self.server_info(),
        });
        let mut result = result;
        if let Some(text) = self.instructions() {
            result["instructions"] = Value::String(text);
        }
        let mut reply = json_reply(StatusCode::OK, message::result(&call.id, result));
        if let Ok(value) = HeaderValue::from_str(&session.id) {
            reply.headers_mut().insert(MCP_SESSION_ID, value);
        }
        reply
    }

    /// 2026-07-28 `server/discover`: every upstream asked, the answers merged.
    async fn discover(self: &Arc<Self>, call: Call<'_>) -> AggregateResponse<R> {
        let call = &call;
        join_all((0..self.upstreams.len()).map(|i| async move {
            let upstream = &self.upstreams[i];
            let found = self
                .forward(i, call, call.message().clone(), None)
                .await
                .and_then(Answer::into_result)
                .and_then(|result| {
                    let modern = result
                        .get("supportedVersions")
                        .and_then(Value::as_array)
                        .is_some_and(|v| v.iter().any(|v| v == ProtocolVersion::V2026_07_28.as_str()));
                    if modern { Ok(result) } else { Err(UpstreamError::NotModern) }
                });
            match found {
                Ok(result) => upstream.learn(&result),
                Err(e) => tracing::warn!(upstream = %upstream.name, error = %e, "aggregate: upstream discover failed"),
            }
        }))
        .await;
        let supported: Vec<&str> = ProtocolVersion::ALL
            .iter()
            .filter(|v| **v >= ProtocolVersion::V2025_03_26)
            .map(|v| v.as_str())
            .collect();
        let mut result = json!({
            "resultType": "complete",
            "supportedVersions": supported,
            "capabilities": self.capabilities(),
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": { "io.modelcontextprotocol/serverInfo": self.server_info() },
        });
        if let Some(text) = self.instructions() {
            result["instructions"] = Value::String(text);
        }
        json_reply(StatusCode::OK, message::result(&call.id, result))
    }

    fn server_info(&self) -> Value {
        json!({ "name": self.server_name, "version": self.server_version })
    }

    /// The union of what the upstreams declared; `tools` always (an upstream that is down now
    /// may bring tools back).
    fn capabilities(&self) -> Value {
        let infos: Vec<_> = self.upstreams.iter().filter_map(|u| u.info()).collect();
        let mut merged = merge::capabilities(infos.iter().map(|i| &i.capabilities));
        let tools = merged.entry("tools").or_insert_with(|| json!({}));
        if self.pins.hides() {
            // Pins may hide and show tools again: the client is told (`list_changed`).
            tools["listChanged"] = Value::Bool(true);
        }
        Value::Object(merged)
    }

    fn instructions(&self) -> Option<String> {
        let infos: Vec<_> = self
            .upstreams
            .iter()
            .filter_map(|u| Some((&*u.name, u.info()?)))
            .collect();
        merge::instructions(
            self.instructions.as_deref(),
            infos
                .iter()
                .filter_map(|(name, info)| Some((*name, info.instructions.as_deref()?))),
            &self.names,
        )
    }

    /// A list method: every upstream's page (or those the cursor continues), merged; each
    /// page from the upstream's list cache when fresh there (see `cache.rs`), and the merged
    /// answer itself from the merged cache while none of its pages changed.
    async fn list(self: &Arc<Self>, call: Call<'_>, kind: ListKind) -> AggregateResponse<R> {
        let ListParams { cursor, retried } = ListParams::of(&call);
        let caches = self.events.caches();
        let now = tokio::time::Instant::now();
        let modern = call.era == Era::Modern;
        if !retried
            && let Some(merged) = self.events.merged().get(
                caches,
                kind,
                call.version,
                cursor.as_deref(),
                || self.merged_audience(&call),
                now,
            )
        {
            return parts_reply(merge::merged_answer(
                &call.id,
                &merged,
                modern.then_some(now),
            ));
        }
        // Each upstream's change count before its page is read: a merged answer kept below
        // goes stale with any change after this.
        let seen: Box<[u64]> = caches.iter().map(|cache| cache.changes(kind)).collect();
        let targets: Vec<(usize, Option<String>)> = match cursor.as_deref() {
            None => (0..self.upstreams.len())
                .filter(|&i| self.upstreams[i].may_have(capability_of(kind)))
                .map(|i| (i, None))
                .collect(),
            Some(cursor) => match merge::decode_cursor(cursor) {
                Some(next) => next
                    .into_iter()
                    .filter_map(|(name, cursor)| Some((self.index_of(&name)?, Some(cursor))))
                    .collect(),
                None => {
                    return json_reply(
                        StatusCode::OK,
                        message::error(&call.id, code::INVALID_PARAMS, "Invalid cursor", None),
                    );
                }
            },
        };
        let call = &call;
        // Every page from cache: no upstream to wait for.
        let cached: Option<Vec<_>> = targets
            .iter()
            .map(|(i, cursor)| {
                let page = self.cached_page(*i, call, kind, cursor.as_deref(), retried)?;
                Some((*i, Ok(page)))
            })
            .collect();
        let from_cache = cached.is_some();
        let pages = match cached {
            Some(pages) => pages,
            None => {
                join_all(targets.into_iter().map(|(i, cursor)| async move {
                    (i, self.page(i, call, kind, cursor, retried).await)
                }))
                .await
            }
        };
        let now = tokio::time::Instant::now();
        let mut hints = merge::Hints {
            ttl: Duration::MAX,
            public: true,
        };
        let mut next = Vec::new();
        let mut merged = Vec::with_capacity(pages.len());
        for (i, page) in pages {
            let name = &*self.upstreams[i].name;
            match page {
                Ok(page) => {
                    hints.ttl = hints.ttl.min(page.fresh_for(now));
                    hints.public &= page.public;
                    if let Some(cursor) = &page.next {
                        next.push((name.to_owned(), cursor.clone()));
                    }
                    merged.push(page);
                }
                Err(e) => {
                    tracing::warn!(upstream = name, error = %e, method = kind.method(), "aggregate: upstream left out of the list");
                }
            }
        }
        if merged.is_empty() {
            hints.ttl = Duration::ZERO;
            hints.public = false;
        }
        let next_cursor = merge::encode_cursor(&next);
        let body = merge::merged_body(kind, &merged, next_cursor.as_deref());
        // Pages all read from cache (so all kept, none retried): the merged answer is kept too.
        let expires = merged.iter().filter_map(|page| page.expires).min();
        if from_cache
            && !retried
            && let Some(expires) = expires
        {
            let kept = Arc::new(Merged::new(body, hints.public, expires, seen));
            let audience = if kept.public {
                Audience::Public
            } else {
                self.merged_audience(call)
            };
            self.events.merged().put(
                caches,
                kind,
                call.version,
                cursor.as_deref(),
                audience,
                Arc::clone(&kept),
                now,
            );
            return parts_reply(merge::merged_answer(&call.id, &kept, modern.then_some(now)));
        }
        let hints = modern.then_some(hints);
        let mut reply = json_reply(StatusCode::OK, merge::answer(&call.id, &body, hints));
        let noticed = std::mem::take(&mut *call.pins_noticed.lock().expect("pins noticed"));
        if !noticed.is_empty() {
            let tools = noticed.iter().flat_map(|(i, tools)| {
                let upstream = &*self.upstreams[*i].name;
                tools.iter().map(move |tool| (upstream, &**tool))
            });
            reply
                .extensions_mut()
                .insert(PinAlert::new(tools, self.pins.hides()));
        }
        reply
    }

    /// The authorization context of a merged answer that is not public: the principal, and
    /// the client's token when any upstream gets it (so it covers every page's context).
    fn merged_audience(&self, call: &Call<'_>) -> Audience {
        let with_token = self.upstreams.iter().any(|u| u.forward_authorization);
        Audience::private(call.principal, call.headers, with_token)
    }

    /// Upstream `index`'s page of list `kind` at `cursor`, when its cache has it fresh for this
    /// client's authorization context (never for a retried request).
    fn cached_page(
        &self,
        index: usize,
        call: &Call<'_>,
        kind: ListKind,
        cursor: Option<&str>,
        retried: bool,
    ) -> Option<Arc<Page>> {
        if retried {
            return None;
        }
        let lists = &self.upstreams[index].lists;
        lists
            .get_public(kind, call.version, cursor)
            .or_else(|| lists.get(kind, call.version, cursor, &self.audience(index, call)))
    }

    /// The authorization context a private page of upstream `index` belongs to.
    fn audience(&self, index: usize, call: &Call<'_>) -> Audience {
        let with_token = self.upstreams[index].forward_authorization;
        Audience::private(call.principal, call.headers, with_token)
    }

    /// Upstream `index`'s page of list `kind` at `cursor`: from its cache when fresh there for
    /// this client's authorization context, otherwise asked (and kept when it may be).
    async fn page(
        self: &Arc<Self>,
        index: usize,
        call: &Call<'_>,
        kind: ListKind,
        cursor: Option<String>,
        retried: bool,
    ) -> Result<Arc<Page>, UpstreamError> {
        if let Some(page) = self.cached_page(index, call, kind, cursor.as_deref(), retried) {
            return Ok(page);
        }
        let upstream = &self.upstreams[index];
        let lists = &upstream.lists;
        let audience = self.audience(index, call);
        let generation = lists.generation(kind);
        let mut request = call.message().clone();
        let params = params_mut(&mut request);
        match &cursor {
            Some(cursor) => params.insert("cursor".into(), Value::String(cursor.clone())),
            None => params.remove("cursor"),
        };
        let mut result = self
            .forward(index, call, request, None)
            .await
            .and_then(Answer::into_result)?;
        let items = match result.remove(kind.result_field()) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let complete = result.get("resultType").is_none_or(|t| t == "complete");
        let ttl = result
            .get("ttlMs")
            .and_then(Value::as_i64)
            .map(|ms| Duration::from_millis(ms.max(0).unsigned_abs()));
        let max_age = lists.max_age(ttl, upstream.announces_changes(capability_of(kind)));
        let public = result.get("cacheScope").is_some_and(|s| s == "public");
        let checked = match kind {
            ListKind::Tools => self.pins.check(index, &items).await,
            _ => Ok(Default::default()),
        };
        let Ok(checked) = checked else {
            // The pins could not be checked and the policy hides changes: nothing of this
            // page is shown (fail closed), nor kept.
            return Ok(Arc::new(Page {
                entries: Bytes::new(),
                next: None,
                public: false,
                expires: None,
            }));
        };
        if !checked.changed.is_empty() {
            let mut noticed = call.pins_noticed.lock().expect("pins noticed");
            noticed.push((index, checked.changed));
        }
        let page = Arc::new(Page {
            entries: merge::write_entries(
                kind,
                &self.names,
                &upstream.name,
                &upstream.tools,
                &checked.hidden,
                items,
            ),
            next: result
                .get("nextCursor")
                .and_then(Value::as_str)
                .map(str::to_owned),
            public,
            expires: (!retried && complete && !max_age.is_zero())
                .then(|| tokio::time::Instant::now().checked_add(max_age))
                .flatten(),
        });
        let audience = if public { Audience::Public } else { audience };
        lists.put(
            kind,
            call.version,
            cursor.as_deref(),
            audience,
            Arc::clone(&page),
            generation,
        );
        Ok(page)
    }

    /// A request every upstream with `capability` gets (`logging/setLevel`); answered `{}`.
    async fn broadcast(self: &Arc<Self>, call: Call<'_>, capability: &str) -> AggregateResponse<R> {
        let call = &call;
        join_all(
            (0..self.upstreams.len())
                .filter(|&i| self.upstreams[i].may_have(capability))
                .map(|i| async move {
                    if let Err(e) = self.forward(i, call, call.message().clone(), None).await {
                        tracing::warn!(upstream = %self.upstreams[i].name, error = %e, "aggregate: broadcast failed");
                    }
                }),
        )
        .await;
        json_reply(StatusCode::OK, message::result(&call.id, json!({})))
    }

    /// A request for one upstream's tool, prompt or resource: sent with the upstream's own
    /// name, its answer streamed back with the client's id.
    async fn route(self: &Arc<Self>, call: Call<'_>, place: Place) -> AggregateResponse<R> {
        let Some((index, own)) = self.resolve(&call, place) else {
            return json_reply(
                StatusCode::OK,
                message::error(
                    &call.id,
                    code::INVALID_PARAMS,
                    "Unknown name: no upstream has that namespace",
                    None,
                ),
            );
        };
        if call.method == "tools/call" && !self.pins.callable(index, &own) {
            // A changed definition hidden by the pin policy is not callable either.
            let upstream = &self.upstreams[index].name;
            let mut reply = json_reply(
                StatusCode::OK,
                message::error(
                    &call.id,
                    code::INVALID_PARAMS,
                    "Tool definition changed since it was pinned: hidden until approved",
                    Some(json!({ "upstream": &**upstream, "tool": own })),
                ),
            );
            let alert = PinAlert::new([(&**upstream, own.as_str())], true);
            // It went nowhere: no `Routed`; the alert names the upstream.
            reply.extensions_mut().insert(alert);
            return reply;
        }
        let mut reply = self.route_to(index, own, call, place).await;
        // Audit and other outer layers learn the upstream (the namespaced name is the client's).
        reply
            .extensions_mut()
            .insert(Routed::new(Arc::clone(&self.upstreams[index].name)));
        reply
    }

    /// Sends a routed request to upstream `index`, where it is named `own`.
    async fn route_to(
        self: &Arc<Self>,
        index: usize,
        own: String,
        call: Call<'_>,
        place: Place,
    ) -> AggregateResponse<R> {
        let mcp_name = matches!(place, Place::Name | Place::Uri).then_some(own.as_str());
        let upstream = &self.upstreams[index];
        let upstream_id = self.next_id();
        // The client's message with only its id and target name replaced; edited as a tree
        // when it does not read that way (and for completions, whose name is deeper).
        let field = match place {
            Place::Name => Some("name"),
            Place::Uri => Some("uri"),
            Place::Ref => None,
        };
        let spliced =
            field.and_then(|field| message::splice_request(call.body, field, upstream_id, &own));
        let body = spliced.unwrap_or_else(|| {
            let mut request = call.message().clone();
            write_place(&mut request, place, own.clone());
            request.insert("id".into(), Value::from(upstream_id));
            to_bytes(&request)
        });
        // Findable by the client's id (for `notifications/cancelled`) until answered.
        let tracked = call
            .session
            .as_ref()
            .map(|session| Relay::track(session, &call.id, index, upstream_id));
        let response = match self.exchange(index, &call, body, mcp_name).await {
            Ok(response) => response,
            Err(e) => {
                return json_reply(
                    StatusCode::OK,
                    message::upstream_error(&call.id, &upstream.name, &e),
                );
            }
        };
        let status = response.status();
        if !status.is_success() {
            // An error answer (JSON-RPC when the upstream wrote one): passed on with the
            // client's id, as a 200 so one upstream never fails the endpoint.
            let body = match upstream
                .read(response, upstream_id, self.max_body_bytes)
                .await
            {
                Ok(mut answer) => {
                    answer.message.insert("id".into(), call.id.clone());
                    to_bytes(&answer.message)
                }
                Err(e) => message::upstream_error(&call.id, &upstream.name, &e),
            };
            return json_reply(StatusCode::OK, body);
        }
        let (parts, body) = response.into_parts();
        let relayed = self.relayed(index, Some((upstream_id, call.id)), call.session);
        let routed = match body_kind(&parts.headers) {
            BodyKind::Sse => RoutedBody::sse(body, relayed, tracked),
            _ => RoutedBody::json(body, relayed, self.max_body_bytes),
        };
        let mut reply = Response::new(EdgeBody::new(routed));
        if let Some(content_type) = parts.headers.get(CONTENT_TYPE) {
            reply
                .headers_mut()
                .insert(CONTENT_TYPE, content_type.clone());
        }
        if let Some(cache) = parts.headers.get(CACHE_CONTROL) {
            reply.headers_mut().insert(CACHE_CONTROL, cache.clone());
        }
        reply
    }

    /// The upstream a routed request is for, and the name (or URI) it knows the target by.
    fn resolve(&self, call: &Call<'_>, place: Place) -> Option<(usize, String)> {
        let (field, value) = match (place, call.target) {
            // As inspect read `params.name` / `params.uri`.
            (Place::Name, Some(name)) => ("name", name),
            (Place::Uri, Some(uri)) => ("uri", uri),
            _ => {
                let params = call.message().get("params")?;
                let (field, value) = match place {
                    Place::Name => ("name", params.get("name")?),
                    Place::Uri => ("uri", params.get("uri")?),
                    Place::Ref => {
                        let reference = params.get("ref")?;
                        match reference.get("type")?.as_str()? {
                            "ref/prompt" => ("name", reference.get("name")?),
                            "ref/resource" => ("uri", reference.get("uri")?),
                            _ => return None,
                        }
                    }
                };
                (field, value.as_str()?)
            }
        };
        let (namespace, own) = match field {
            "uri" => self.names.split_uri(value)?,
            _ => self.names.split(value)?,
        };
        let index = self.index_of(namespace)?;
        let own = match call.method {
            "tools/call" => self.upstreams[index].tools.own(own)?,
            _ => own,
        };
        Some((index, own.to_owned()))
    }

    /// Sends a request to upstream `index` and reads its whole answer.
    async fn forward(
        self: &Arc<Self>,
        index: usize,
        call: &Call<'_>,
        mut request: Object,
        mcp_name: Option<&str>,
    ) -> Result<Answer, UpstreamError> {
        let id = self.next_id();
        request.insert("id".into(), Value::from(id));
        let response = self
            .exchange(index, call, to_bytes(&request), mcp_name)
            .await?;
        self.upstreams[index]
            .read(response, id, self.max_body_bytes)
            .await
    }

    /// Sends a request (`body`, already under a fresh id) to upstream `index`: inside this
    /// client's upstream session (legacy; opened now if needed, and opened again once if the
    /// upstream forgot it, which never ran the request), or with the 2026-07-28 headers
    /// (modern). Returns the response head.
    async fn exchange(
        self: &Arc<Self>,
        index: usize,
        call: &Call<'_>,
        body: Bytes,
        mcp_name: Option<&str>,
    ) -> Result<Response<R>, UpstreamError> {
        let upstream = &self.upstreams[index];
        let mut retried = false;
        loop {
            let body = body.clone();
            let (headers, session) = match &call.session {
                Some(downstream) => {
                    let session = self
                        .upstream_session(downstream, index, call.headers)
                        .await?;
                    (legacy_headers(&session, call.headers), Some(session))
                }
                None => (self.modern_headers(call, mcp_name), None),
            };
            let headers = upstream.credentials(headers, call.headers).await?;
            let response = upstream.send(post(&call.uri, headers, body)).await?;
            let forgotten = response.status() == StatusCode::NOT_FOUND
                && session.as_ref().is_some_and(|s| s.id.is_some());
            if forgotten && !retried {
                // The upstream ended its session (R27): it did not run the request, so a new
                // session may carry it once.
                drain(response).await;
                if let (Some(downstream), Some(stale)) = (&call.session, session) {
                    let mut slot = downstream.upstreams[index].lock().await;
                    if slot.as_ref().is_some_and(|s| s.id == stale.id) {
                        *slot = None;
                    }
                }
                retried = true;
                continue;
            }
            return Ok(response);
        }
    }

    /// The 2026-07-28 headers for a request on behalf of `call` (R36, R38).
    fn modern_headers(&self, call: &Call<'_>, mcp_name: Option<&str>) -> HeaderMap {
        let mut headers = base_headers();
        headers.insert(
            MCP_PROTOCOL_VERSION,
            HeaderValue::from_static(call.version.as_str()),
        );
        if let Ok(method) = HeaderValue::from_str(call.method) {
            headers.insert(MCP_METHOD, method);
        }
        if let Some(name) = mcp_name
            && let Ok(value) = HeaderValue::from_str(&encode_value(name))
        {
            headers.insert(MCP_NAME, value);
        }
        if call.method == "tools/call" {
            // Mirrored arguments (R40): the arguments go on unchanged, so do their headers.
            for (name, value) in call.headers {
                if name.as_str().starts_with(MCP_PARAM_PREFIX) {
                    headers.append(name, value.clone());
                }
            }
        }
        copy_trace(call.headers, &mut headers);
        headers
    }

    /// This client's session with upstream `index`, opened now if it has none (and, when
    /// the client's GET stream is open, its GET stream with it).
    async fn upstream_session(
        self: &Arc<Self>,
        downstream: &Arc<Downstream>,
        index: usize,
        client: &HeaderMap,
    ) -> Result<UpstreamSession, UpstreamError> {
        let mut slot = downstream.upstreams[index].lock().await;
        if let Some(session) = slot.as_ref() {
            return Ok(session.clone());
        }
        let session = self.open_session(downstream, index, client).await?;
        *slot = Some(session.clone());
        if let Some(merge) = downstream.relay.listener() {
            self.stream_upstream(downstream, index, &session, &merge, client);
        }
        Ok(session)
    }

    /// `initialize` and `notifications/initialized` with upstream `index`, on behalf of the
    /// client: its capabilities and client info, its protocol version (the upstream may
    /// choose another legacy version: that one is used with it).
    async fn open_session(
        &self,
        downstream: &Downstream,
        index: usize,
        client: &HeaderMap,
    ) -> Result<UpstreamSession, UpstreamError> {
        let upstream = &self.upstreams[index];
        let id = self.next_id();
        let mut params = downstream.client.clone();
        params.insert("protocolVersion".into(), json!(downstream.version.as_str()));
        let body = to_bytes(&json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize", "params": params,
        }));
        let headers = upstream.credentials(base_headers(), client).await?;
        let response = upstream.send(post(&downstream.uri, headers, body)).await?;
        let answer = upstream.read(response, id, self.max_body_bytes).await?;
        if !answer.status.is_success() {
            return Err(UpstreamError::Status(answer.status));
        }
        let session_id = answer.headers.get(MCP_SESSION_ID).cloned();
        let result = answer.into_result()?;
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<ProtocolVersion>().ok())
            .filter(|v| v.era() == Era::Legacy)
            .ok_or(UpstreamError::Invalid(
                "no legacy protocolVersion in its initialize result",
            ))?;
        upstream.learn(&result);
        let session = UpstreamSession {
            id: session_id,
            version,
        };
        let initialized =
            Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        let headers = upstream
            .credentials(legacy_headers(&session, client), client)
            .await?;
        let response = upstream
            .send(post(&downstream.uri, headers, initialized))
            .await?;
        let status = response.status();
        drain(response).await;
        if !status.is_success() {
            return Err(UpstreamError::Status(status));
        }
        Ok(session)
    }

    /// Legacy GET: the client's stream of what its upstream sessions send on their own GET
    /// streams (requests for the client, logging, `list_changed`), merged. The upstream
    /// sessions open now have their GET stream opened now; one opened later, then. It ends
    /// when the client leaves, opens another, or its session ends.
    async fn get(self: &Arc<Self>, parts: &Parts) -> AggregateResponse<R> {
        let value = parts
            .headers
            .get(MCP_SESSION_ID)
            .expect("checked by the caller");
        let session = match self.lookup(value, parts.extensions.get::<Principal>()) {
            Ok(session) => session,
            Err(refused) => return refused.into_response(),
        };
        let (merge, body) = session.relay.listen();
        for index in 0..self.upstreams.len() {
            let slot = session.upstreams[index].lock().await;
            if let Some(upstream) = slot.as_ref() {
                self.stream_upstream(&session, index, upstream, &merge, &parts.headers);
            }
        }
        self.pins.listen(&merge, None);
        sse_reply(body)
    }

    /// Opens upstream `index`'s GET stream in `session` and feeds it into `merge` (once per
    /// upstream), reopened when it ends (see [`Shared::spawn_stream`]). An upstream that
    /// offers none (405) adds nothing.
    fn stream_upstream(
        self: &Arc<Self>,
        session: &Arc<Downstream>,
        index: usize,
        upstream: &UpstreamSession,
        merge: &Arc<Merge>,
        client: &HeaderMap,
    ) {
        if upstream.id.is_none() {
            return; // no session upstream: nothing of this client's to stream
        }
        let relayed = self.relayed(index, None, Some(Arc::clone(session)));
        let opener = Opener::Get(Arc::clone(session));
        self.spawn_stream(merge, index, opener, client.clone(), relayed);
    }

    /// Opens upstream `index`'s stream (as `opener` says) on a task tied to `merge`, and
    /// passes what it sends on to the merge as `relayed` says. The upstream's credentials are
    /// added on the task (an OAuth token may have to be fetched first); `client` is the
    /// client's headers, for an upstream configured to receive the client's token.
    ///
    /// While the client's stream lives, an upstream stream that ends or breaks is opened
    /// again: after the upstream's `retry:` when it gave one (R20), otherwise after a backoff
    /// that doubles from [`REOPEN_MIN`] to [`REOPEN_MAX`] (reset by a stream that lasted). A
    /// legacy GET stream resumes with `Last-Event-ID` when the upstream gave event ids (a
    /// resume that brings nothing back is followed by a fresh stream); a listen stream is
    /// sent again under a fresh id (2026-07-28 has no resumption, R21). It stops for good when
    /// the upstream refuses the stream (a 4xx: no GET stream, the session ended, the method
    /// unknown), or when the upstream session is gone; a new upstream session opens its own.
    fn spawn_stream(
        self: &Arc<Self>,
        merge: &Arc<Merge>,
        index: usize,
        opener: Opener,
        client: HeaderMap,
        mut relayed: Relayed,
    ) {
        let shared = Arc::clone(self);
        let owner = Arc::downgrade(merge);
        merge.start(index, move |sender| {
            tokio::spawn(async move {
                let upstream = &shared.upstreams[index];
                let mut backoff = REOPEN_MIN;
                let mut resume: Option<(HeaderValue, HeaderValue)> = None;
                loop {
                    let Some((request, session)) =
                        shared.open_request(&opener, index, &mut relayed, resume.take()).await
                    else {
                        break;
                    };
                    let mut request = request;
                    let headers = std::mem::take(request.headers_mut());
                    match upstream.credentials(headers, &client).await {
                        Ok(headers) => *request.headers_mut() = headers,
                        Err(e) => {
                            tracing::debug!(upstream = %upstream.name, error = %e, "aggregate: upstream stream not opened");
                            break;
                        }
                    }
                    let resuming = request.headers().contains_key(LAST_EVENT_ID);
                    let mut wait = backoff;
                    match upstream.send(request).await {
                        Ok(response)
                            if response.status().is_success()
                                && body_kind(response.headers()) == BodyKind::Sse =>
                        {
                            let opened = tokio::time::Instant::now();
                            let ended = relayed.pump(response.into_body(), &sender).await;
                            if ended.client_gone {
                                break;
                            }
                            if opened.elapsed() >= REOPEN_MAX {
                                backoff = REOPEN_MIN;
                            }
                            // Resume after the last event id, unless a resume just brought
                            // nothing back (the upstream could not resume: start afresh).
                            resume = session
                                .filter(|_| ended.events || !resuming)
                                .zip(HeaderValue::from_maybe_shared(ended.last_event_id).ok())
                                .filter(|(_, id)| !id.is_empty());
                            if let Some(retry) = ended.retry {
                                wait = Duration::from_millis(retry);
                            }
                            tracing::debug!(upstream = %upstream.name, "aggregate: upstream stream ended, reopening");
                        }
                        Ok(response) => {
                            let status = response.status();
                            drain(response).await;
                            if status.is_client_error() {
                                tracing::debug!(upstream = %upstream.name, status = status.as_u16(), "aggregate: upstream stream refused");
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(upstream = %upstream.name, error = %e, "aggregate: upstream stream not opened");
                        }
                    }
                    if sender.is_closed() {
                        break;
                    }
                    tokio::time::sleep(wait.clamp(REOPEN_MIN, REOPEN_MAX)).await;
                    backoff = (backoff * 2).min(REOPEN_MAX);
                }
                if let Some(merge) = owner.upgrade() {
                    merge.finished(index);
                }
            })
            .abort_handle()
        });
    }

    /// The request that (re)opens a stream, and for a legacy GET stream the upstream session
    /// it is in; `None` when there is nothing to open any more (the upstream session ended).
    /// `resume`: the session and the last event id seen on the stream before.
    async fn open_request(
        &self,
        opener: &Opener,
        index: usize,
        relayed: &mut Relayed,
        resume: Option<(HeaderValue, HeaderValue)>,
    ) -> Option<(Request<Full<Bytes>>, Option<HeaderValue>)> {
        match opener {
            Opener::Get(downstream) => {
                // The session's current upstream session (it may have been replaced).
                let session = downstream.upstreams[index].lock().await.clone()?;
                let id = session.id.clone()?;
                let none = HeaderMap::new();
                let mut headers = legacy_headers(&session, &none);
                headers.remove(CONTENT_TYPE);
                headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
                if let Some((_, last)) = resume.filter(|(of, _)| *of == id) {
                    headers.insert(LAST_EVENT_ID, last);
                }
                let mut request = Request::new(Full::new(Bytes::new()));
                *request.method_mut() = http::Method::GET;
                *request.uri_mut() = downstream.uri.clone();
                *request.headers_mut() = headers;
                Some((request, Some(id)))
            }
            Opener::Listen {
                uri,
                headers,
                request,
            } => {
                let id = self.next_id();
                let client = relayed.answer.as_ref().map(|(_, client)| client.clone());
                relayed.answer = client.map(|client| (id, client));
                let mut request = request.clone();
                request.insert("id".into(), Value::from(id));
                Some((post(uri, headers.clone(), to_bytes(&request)), None))
            }
        }
    }

    /// How upstream `upstream`'s messages for this client are rewritten (see [`Relayed`]).
    fn relayed(
        &self,
        upstream: usize,
        answer: Option<(i64, Value)>,
        session: Option<Arc<Downstream>>,
    ) -> Relayed {
        Relayed {
            upstream,
            answer,
            session,
            events: self.events.clone(),
            listen: false,
        }
    }

    /// 2026-07-28 `subscriptions/listen` (R15): acknowledged at once with the list changes the
    /// client asked for (resource subscriptions are not relayed), then every upstream's own
    /// listen stream for those, merged, each notification tagged with the client's id.
    fn listen(self: &Arc<Self>, call: Call<'_>) -> AggregateResponse<R> {
        let requested = call
            .message()
            .get("params")
            .and_then(|p| p.get("notifications"))
            .and_then(Value::as_object);
        let mut honoured = Object::new();
        for flag in [
            "toolsListChanged",
            "promptsListChanged",
            "resourcesListChanged",
        ] {
            if requested.and_then(|r| r.get(flag)) == Some(&Value::Bool(true)) {
                honoured.insert(flag.into(), Value::Bool(true));
            }
        }
        let (merge, body) = Merge::new();
        let ack = json!({
            "jsonrpc": "2.0",
            "method": "notifications/subscriptions/acknowledged",
            "params": { "notifications": honoured, "_meta": { SUBSCRIPTION_ID: call.id } },
        });
        let mut first = bytes::BytesMut::new();
        put_event(&mut first, &to_bytes(&ack));
        if let Some(sender) = merge.sender() {
            // A new channel has room: the acknowledgement goes first (R15).
            let _ = sender.try_send(first.freeze());
        }
        if honoured.contains_key("toolsListChanged") {
            self.pins.listen(&merge, Some(call.id.clone()));
        }
        if !honoured.is_empty() {
            let mut request = call.message().clone();
            params_mut(&mut request).insert("notifications".into(), Value::Object(honoured));
            for index in 0..self.upstreams.len() {
                // Each opening sends it under a fresh id (see `open_request`).
                let opener = Opener::Listen {
                    uri: call.uri.clone(),
                    headers: self.modern_headers(&call, None),
                    request: request.clone(),
                };
                let mut relayed = self.relayed(index, Some((0, call.id.clone())), None);
                relayed.listen = true;
                let client = call.headers.clone();
                self.spawn_stream(&merge, index, opener, client, relayed);
            }
        }
        sse_reply(body)
    }

    /// The client answered a request an upstream sent it: the answer goes to that upstream
    /// session with the upstream's own id. An answer to nothing relayed is dropped.
    async fn relay_answer(&self, session: &Downstream, mut message: Object, client: &HeaderMap) {
        let asked = message.get("id").and_then(|id| session.relay.answered(id));
        let Some((index, own)) = asked else {
            tracing::debug!("aggregate: an answer to no relayed request, dropped");
            return;
        };
        message.insert("id".into(), own);
        self.tell(session, index, &message, client).await;
    }

    /// A client notification: `notifications/cancelled` reaches the upstream running the call
    /// (with the id it knows), `notifications/roots/list_changed` every upstream session.
    /// Others stop here (`notifications/initialized`: each upstream session got its own).
    async fn relay_notification(
        &self,
        session: &Downstream,
        method: &str,
        mut message: Object,
        client: &HeaderMap,
    ) {
        match method {
            "notifications/cancelled" => {
                let params = params_mut(&mut message);
                let call = params
                    .get("requestId")
                    .and_then(|id| session.relay.call(id));
                if let Some((index, own)) = call {
                    params.insert("requestId".into(), Value::from(own));
                    self.tell(session, index, &message, client).await;
                }
            }
            "notifications/roots/list_changed" => {
                let message = &message;
                join_all((0..self.upstreams.len()).map(|i| self.tell(session, i, message, client)))
                    .await;
            }
            _ => {}
        }
    }

    /// POSTs one message that expects no answer (a notification, or the client's answer) to
    /// upstream `index` in the client's session with it, if there is one.
    async fn tell(&self, session: &Downstream, index: usize, message: &Object, client: &HeaderMap) {
        let Some(upstream_session) = session.upstreams[index].lock().await.clone() else {
            return;
        };
        let upstream = &self.upstreams[index];
        let headers = match upstream
            .credentials(legacy_headers(&upstream_session, client), client)
            .await
        {
            Ok(headers) => headers,
            Err(e) => {
                tracing::warn!(upstream = %upstream.name, error = %e, "aggregate: relaying to the upstream failed");
                return;
            }
        };
        match upstream
            .send(post(&session.uri, headers, to_bytes(message)))
            .await
        {
            Ok(response) => drain(response).await,
            Err(e) => {
                tracing::warn!(upstream = %upstream.name, error = %e, "aggregate: relaying to the upstream failed");
            }
        }
    }

    /// DELETE: the client's session ends, and its upstream sessions with it (R29).
    async fn delete(self: &Arc<Self>, parts: &Parts) -> AggregateResponse<R> {
        let Some(value) = parts.headers.get(MCP_SESSION_ID) else {
            return Rejection::session_required(RejectedBy::Aggregate, None).into_response();
        };
        let session = match self.lookup(value, parts.extensions.get::<Principal>()) {
            Ok(session) => session,
            Err(refused) => return refused.into_response(),
        };
        self.sessions.remove(&session.id);
        self.end_sessions(&session).await;
        empty_reply(StatusCode::OK)
    }

    /// Ends an expired session's upstream sessions in the background.
    fn end_later(self: &Arc<Self>, session: Arc<Downstream>) {
        let shared = Arc::clone(self);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { shared.end_sessions(&session).await });
        }
    }

    /// Ends the client's GET stream and DELETEs every upstream session it opened.
    async fn end_sessions(&self, downstream: &Downstream) {
        downstream.relay.close();
        join_all((0..self.upstreams.len()).map(|i| async move {
            let Some(session) = downstream.upstreams[i].lock().await.take() else {
                return;
            };
            if session.id.is_none() {
                return;
            }
            let mut request = Request::new(Full::new(Bytes::new()));
            *request.method_mut() = http::Method::DELETE;
            *request.uri_mut() = downstream.uri.clone();
            let none = HeaderMap::new();
            // The upstream's own credentials (a token exchange has no client token here).
            *request.headers_mut() = match self.upstreams[i]
                .credentials(legacy_headers(&session, &none), &none)
                .await
            {
                Ok(headers) => headers,
                Err(_) => legacy_headers(&session, &none),
            };
            match self.upstreams[i].send(request).await {
                Ok(response) => drain(response).await,
                Err(e) => tracing::debug!(upstream = %self.upstreams[i].name, error = %e, "aggregate: upstream DELETE failed"),
            }
        }))
        .await;
    }
}

/// The shortest wait before an upstream stream merged into a client's is opened again.
const REOPEN_MIN: Duration = Duration::from_millis(100);

/// The longest wait before an upstream stream is opened again (the backoff's bound, and the
/// most of an upstream's `retry:` honoured).
const REOPEN_MAX: Duration = Duration::from_secs(30);

/// `Last-Event-ID`.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// How an upstream stream merged into a client's stream is (re)opened.
enum Opener {
    /// The GET stream of the client's session (legacy), in its current upstream session.
    Get(Arc<Downstream>),
    /// `subscriptions/listen` (2026-07-28): the request, sent under a fresh id each time.
    Listen {
        uri: Uri,
        headers: HeaderMap,
        request: Object,
    },
}

/// Whether a request retries one that asked for input (R64: its result is never cached).
fn retried(message: &Object) -> bool {
    let params = message.get("params");
    ["inputResponses", "requestState"]
        .iter()
        .any(|field| params.and_then(|p| p.get(field)).is_some())
}

/// The request target in origin form (`/path?query`), as upstream requests carry it.
fn origin_form(uri: &Uri) -> Uri {
    uri.path_and_query()
        .cloned()
        .map_or_else(|| Uri::from_static("/"), Uri::from)
}

/// Writes the upstream's own name back where the request names its target.
fn write_place(message: &mut Object, place: Place, own: String) {
    let params = params_mut(message);
    match place {
        Place::Name => {
            params.insert("name".into(), Value::String(own));
        }
        Place::Uri => {
            params.insert("uri".into(), Value::String(own));
        }
        Place::Ref => {
            if let Some(reference) = params.get_mut("ref").and_then(Value::as_object_mut) {
                let field = if reference.contains_key("uri") {
                    "uri"
                } else {
                    "name"
                };
                reference.insert(field.into(), Value::String(own));
            }
        }
    }
}
