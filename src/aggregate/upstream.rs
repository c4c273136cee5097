//! One upstream MCP server as the aggregator sees it: its configuration, what it said about
//! itself, and one exchange with it (a request out, its answer read back).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower_service::Service;

use super::cache::ListCache;
use super::credentials::Credentials;
use super::events::lists_changed_by;
use super::message::Object;
use super::names::ToolRules;
use crate::protocol::sse::{SseItem, SseParser};
use crate::protocol::{BodyKind, body_kind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The default time an upstream has to answer: 30 s for a response head, and as much again
/// for the rest of an answer the aggregator reads whole (lists, `initialize`).
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// One upstream MCP server: a name (its namespace) and a tower HTTP service that reaches it
/// (a [`proxy::HttpUpstream`](crate::proxy::HttpUpstream), or any `Service<Request<Full<Bytes>>>`
/// answering `Response<impl Body<Data = Bytes>>`, such as an in-process axum router).
#[derive(Debug, Clone)]
pub struct Upstream<S> {
    pub(crate) name: Arc<str>,
    pub(crate) service: S,
    pub(crate) timeout: Duration,
    pub(crate) tools: ToolRules,
    pub(crate) forward_authorization: bool,
    pub(crate) credentials: Credentials,
}

impl<S> Upstream<S> {
    /// An upstream named `name`: its tools appear as `{name}__{tool}`. A name is an ASCII
    /// letter, then letters, digits or `-`, at most 64 bytes
    /// ([`AggregatorBuilder::build`](super::AggregatorBuilder::build) checks it).
    pub fn new(name: impl Into<Arc<str>>, service: S) -> Self {
        Upstream {
            name: name.into(),
            service,
            timeout: DEFAULT_UPSTREAM_TIMEOUT,
            tools: ToolRules::default(),
            forward_authorization: false,
            credentials: Credentials::default(),
        }
    }

    /// Sends `value` as header `name` on every request to this upstream (its API key, a
    /// static bearer token: see [`env_secret`](super::env_secret) to take it from the
    /// environment). It is set after the client's forwarded `Authorization`, so it wins.
    pub fn header(mut self, name: http::HeaderName, mut value: http::HeaderValue) -> Self {
        value.set_sensitive(true);
        self.credentials.headers.retain(|(n, _)| *n != name);
        self.credentials.headers.push((name, value));
        self
    }

    /// Gets an OAuth 2.0 access token for this upstream from its authorization server (client
    /// credentials, or the client's token exchanged, RFC 8693), and sends it as
    /// `Authorization` on every request to it; cached until shortly before it expires.
    #[cfg(feature = "aggregator-oauth")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aggregator-oauth")))]
    pub fn oauth(mut self, client: super::OAuthClient) -> Self {
        self.credentials.oauth = Some(Arc::new(client));
        self
    }

    /// Sends the client's own `Authorization` header on to this upstream (default: never,
    /// R59). Only for an upstream that accepts the same tokens as the aggregator (and with an
    /// auth layer in front, its [`forward_token`](crate::AuthLayer::forward_token) on, since it
    /// removes the header otherwise). Credentials of the upstream's own belong on its service
    /// instead (for example [`HttpUpstreamBuilder::header`](crate::proxy::HttpUpstreamBuilder::header)).
    pub fn forward_authorization(mut self, forward: bool) -> Self {
        self.forward_authorization = forward;
        self
    }

    /// Shows only the tools whose own name matches `pattern` (a glob: `*` any run of
    /// characters, `?` one), or one of the other `include` patterns. Without any, every tool
    /// is shown. A tool not shown cannot be called through the aggregator either.
    pub fn include_tools(mut self, pattern: &str) -> Self {
        self.tools.include(pattern);
        self
    }

    /// Hides the tools whose own name matches `pattern` (a glob), whatever `include` says.
    pub fn exclude_tools(mut self, pattern: &str) -> Self {
        self.tools.exclude(pattern);
        self
    }

    /// Shows the tool `own` as `shown` (then namespaced: `{name}__{shown}`); calls to `shown`
    /// reach `own`, and `own` is no longer reachable under its own name.
    pub fn rename_tool(mut self, own: &str, shown: &str) -> Self {
        self.tools.rename(own, shown);
        self
    }

    /// How long this upstream has to answer (default [`DEFAULT_UPSTREAM_TIMEOUT`]): the
    /// response head of any request, and the whole of an answer the aggregator reads itself.
    /// A routed call's streamed body has no timeout (a long tool call keeps its stream).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The upstream's name (its namespace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The service that reaches it.
    pub fn service(&self) -> &S {
        &self.service
    }
}

/// What an upstream said about itself in `initialize` or `server/discover`.
#[derive(Debug, Default)]
pub(crate) struct UpstreamInfo {
    pub(crate) capabilities: Object,
    pub(crate) instructions: Option<String>,
}

/// An upstream and what the aggregator learned of it.
pub(crate) struct UpstreamState<S> {
    pub(crate) name: Arc<str>,
    pub(crate) service: S,
    pub(crate) timeout: Duration,
    pub(crate) tools: ToolRules,
    pub(crate) forward_authorization: bool,
    credentials: Credentials,
    pub(crate) info: Mutex<Option<Arc<UpstreamInfo>>>,
    /// Its list pages (shared with the aggregator's [`Events`](super::events::Events), which
    /// drops them when the upstream announces a change on any stream).
    pub(crate) lists: Arc<ListCache>,
}

impl<S> UpstreamState<S> {
    pub(crate) fn new(upstream: Upstream<S>, list_max_age: Option<Duration>) -> Self {
        UpstreamState {
            name: upstream.name,
            service: upstream.service,
            timeout: upstream.timeout,
            tools: upstream.tools,
            forward_authorization: upstream.forward_authorization,
            credentials: upstream.credentials,
            info: Mutex::new(None),
            lists: Arc::new(ListCache::new(list_max_age)),
        }
    }

    pub(crate) fn info(&self) -> Option<Arc<UpstreamInfo>> {
        self.info.lock().expect("info lock").clone()
    }

    pub(crate) fn learn(&self, result: &Object) {
        let info = UpstreamInfo {
            capabilities: result
                .get("capabilities")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            instructions: result
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        let mut known = self.info.lock().expect("info lock");
        if known
            .as_ref()
            .is_none_or(|known| known.capabilities != info.capabilities)
        {
            // Which lists it serves may differ now: merged answers are built again.
            self.lists.touch();
        }
        *known = Some(Arc::new(info));
    }

    /// `headers` with this upstream's credentials: the client's `Authorization` when this
    /// upstream is configured to get it ([`Upstream::forward_authorization`]; never otherwise,
    /// R59), then its static headers, then its OAuth token.
    pub(crate) async fn credentials(
        &self,
        mut headers: HeaderMap,
        client: &HeaderMap,
    ) -> Result<HeaderMap, UpstreamError> {
        if self.forward_authorization
            && let Some(value) = client.get(http::header::AUTHORIZATION)
        {
            headers.insert(http::header::AUTHORIZATION, value.clone());
        }
        self.credentials
            .apply(&mut headers, client)
            .await
            .map_err(UpstreamError::Credentials)?;
        Ok(headers)
    }

    /// Whether the upstream may serve `capability` (`"tools"`, `"prompts"`, …): yes when it
    /// declared it, or when nothing is known of it yet.
    pub(crate) fn may_have(&self, capability: &str) -> bool {
        self.info()
            .is_none_or(|info| info.capabilities.contains_key(capability))
    }

    /// Whether the upstream declared `listChanged` for `capability` (it promised to say when
    /// that list changes).
    pub(crate) fn announces_changes(&self, capability: &str) -> bool {
        self.info().is_some_and(|info| {
            info.capabilities
                .get(capability)
                .and_then(|c| c.get("listChanged"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
    }
}

/// Why an exchange with an upstream failed.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// No response head within the upstream's timeout, or no whole answer.
    Timeout,
    /// The service failed, or the connection broke while the answer was read.
    Unreachable(String),
    /// An HTTP status the aggregator cannot use (a gateway's 502, a 500, …).
    Status(StatusCode),
    /// The answer was not a JSON-RPC response to the request.
    Invalid(&'static str),
    /// The upstream answered with a JSON-RPC error where the aggregator needed a result.
    Refused(String),
    /// The upstream does not speak 2026-07-28.
    NotModern,
    /// Its credentials could not be had (the token endpoint failed).
    Credentials(String),
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Timeout => f.write_str("timed out"),
            UpstreamError::Unreachable(e) => write!(f, "unreachable ({e})"),
            UpstreamError::Status(s) => write!(f, "answered HTTP {}", s.as_u16()),
            UpstreamError::Invalid(what) => write!(f, "invalid answer ({what})"),
            UpstreamError::Refused(message) => write!(f, "refused ({message})"),
            UpstreamError::NotModern => f.write_str("does not support 2026-07-28"),
            UpstreamError::Credentials(e) => write!(f, "credentials failed: {e}"),
        }
    }
}

/// An upstream's answer to one request: the HTTP status and headers, and the JSON-RPC
/// response to the request.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) message: Object,
}

impl Answer {
    /// The `result`, or the upstream's JSON-RPC error as [`UpstreamError::Refused`].
    pub(crate) fn into_result(mut self) -> Result<Object, UpstreamError> {
        match self.message.remove("result") {
            Some(Value::Object(result)) => Ok(result),
            Some(_) => Err(UpstreamError::Invalid("result is not an object")),
            None => Err(UpstreamError::Refused(
                self.message
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("error without a message")
                    .chars()
                    .take(200)
                    .collect(),
            )),
        }
    }
}

impl<S, R> UpstreamState<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<R>> + Clone,
    S::Error: Into<BoxError>,
    R: Body<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    /// Sends one request and waits (at most the timeout) for the response head.
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<R>, UpstreamError> {
        let mut service = self.service.clone();
        let exchange = async move {
            std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
            service.call(request).await
        };
        let sent = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(UpstreamError::Timeout),
            Ok(Err(e)) => Err(UpstreamError::Unreachable(e.into().to_string())),
            Ok(Ok(response)) => Ok(response),
        };
        self.failed_if(sent)
    }

    /// A failed exchange takes the upstream's cached lists with it: it leaves merged lists
    /// until it answers again.
    fn failed_if<T>(&self, outcome: Result<T, UpstreamError>) -> Result<T, UpstreamError> {
        if let Err(UpstreamError::Timeout | UpstreamError::Unreachable(_)) = &outcome {
            self.lists.clear();
        }
        outcome
    }

    /// Reads the answer to request `id` from a response (JSON, or the SSE stream up to the
    /// response), within the timeout. Notifications on the way are dropped, except that a
    /// `list_changed` one drops the cached pages of its list.
    pub(crate) async fn read(
        &self,
        response: Response<R>,
        id: i64,
        limit: usize,
    ) -> Result<Answer, UpstreamError> {
        let read =
            tokio::time::timeout(self.timeout, read_answer(response, id, limit, &self.lists))
                .await
                .map_err(|_| UpstreamError::Timeout)
                .and_then(|answer| answer);
        self.failed_if(read)
    }
}

/// A POST to an upstream: `body` with the given headers.
pub(crate) fn post(uri: &Uri, headers: HeaderMap, body: Bytes) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers;
    request
}

async fn read_answer<R>(
    response: Response<R>,
    id: i64,
    limit: usize,
    lists: &ListCache,
) -> Result<Answer, UpstreamError>
where
    R: Body<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let kind = body_kind(&parts.headers);
    let message = match kind {
        BodyKind::Sse => read_sse(body, id, limit, lists).await?,
        _ => {
            let bytes = collect(body, limit).await?;
            if !parts.status.is_success() && !parts.status.is_client_error() {
                return Err(UpstreamError::Status(parts.status));
            }
            match serde_json::from_slice::<Object>(&bytes) {
                Ok(message) if super::message::is_response(&message) => message,
                _ if !parts.status.is_success() => return Err(UpstreamError::Status(parts.status)),
                _ => return Err(UpstreamError::Invalid("not a JSON-RPC response")),
            }
        }
    };
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        message,
    })
}

/// Reads a whole body, at most `limit` bytes.
pub(crate) async fn collect<B>(body: B, limit: usize) -> Result<Bytes, UpstreamError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(UpstreamError::Unreachable(e.to_string())),
    }
}

async fn read_sse<B>(
    body: B,
    id: i64,
    limit: usize,
    lists: &ListCache,
) -> Result<Object, UpstreamError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut parser =
        SseParser::with_max_event_bytes(limit.max(crate::protocol::sse::MIN_MAX_EVENT_BYTES));
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| UpstreamError::Unreachable(e.into().to_string()))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        read += chunk.len();
        for item in parser.feed(&chunk) {
            let SseItem::Event(event) = item else {
                continue;
            };
            let Some(data) = event.data.filter(|d| !d.is_empty()) else {
                continue;
            };
            let Ok(message) = serde_json::from_slice::<Object>(&data) else {
                continue;
            };
            if super::message::is_response(&message)
                && message.get("id").and_then(Value::as_i64) == Some(id)
            {
                return Ok(message);
            }
            if let Some(method) = message.get("method").and_then(Value::as_str) {
                for kind in lists_changed_by(method) {
                    lists.invalidate(*kind);
                }
            }
        }
        if read > limit.saturating_mul(16) {
            return Err(UpstreamError::Invalid("stream too long before the answer"));
        }
    }
    Err(UpstreamError::Invalid("stream ended before the answer"))
}

/// Drains what is left of a response, so a pooled connection can be reused (bounded).
pub(crate) async fn drain<R>(response: Response<R>)
where
    R: Body<Data = Bytes>,
    R::Error: Into<BoxError>,
{
    let _ = collect(response.into_body(), 64 * 1024).await;
}
