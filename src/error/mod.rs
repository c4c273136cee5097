//! [`Rejection`]: every refusal mcp-edge makes, built in one place.
//!
//! A rejection knows which layer refused and why, the HTTP status, the JSON-RPC error code and
//! the headers the spec asks for (`WWW-Authenticate`, `Allow`, `Retry-After`). It becomes a
//! response with a JSON-RPC error body carrying the request's id when known (R43, R44), and
//! travels in that response's extensions so an outer audit layer can record it.
//!
//! Initialize POSTs are never refused with 400, 404 or 405 for reasons that are not about the
//! transport (R45): clients read those as "this server speaks the old transport". Layers
//! choose 401, 403, 413, 415, 429 or 503 for such refusals.
//!
//! Every refusal mcp-edge makes picks a [`Reason`], never a status or a JSON-RPC code: the
//! reason carries its defaults ([`Reason::status`], [`Reason::code`], [`Reason::message`]),
//! [`Rejection::of`] applies them, and named constructors such as
//! [`Rejection::body_too_large`] or [`Rejection::session_not_found`] add the detail a refusal
//! needs. [`Rejection::new`] stays public for your own layers that refuse with an answer of
//! their own.
//!
//! ```
//! use http::StatusCode;
//! use mcp_edge::{Reason, RejectedBy, Rejection};
//!
//! let rejection = Rejection::of(RejectedBy::Guard, Reason::OriginNotAllowed);
//! assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
//! assert_eq!(rejection.code(), -32600);
//! assert_eq!(rejection.message(), "Forbidden: Origin not allowed");
//!
//! let response = rejection.into_response::<http_body_util::Empty<bytes::Bytes>>();
//! assert_eq!(response.status(), StatusCode::FORBIDDEN);
//! assert!(response.extensions().get::<Rejection>().is_some());
//! ```

pub mod body;

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};

pub use self::body::EdgeBody;
pub(crate) use self::body::Polled;
use crate::context::BindingKey;
use crate::protocol::jsonrpc::code;
use crate::protocol::{ProtocolError, ProtocolErrorKind, RequestId};

/// The longest string JSON-RPC id a refusal echoes back (see [`Rejection::with_id`]).
pub const MAX_ECHOED_ID_BYTES: usize = 256;

/// The longest refusal message [`Rejection::with_message`] keeps, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// The layer that refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectedBy {
    /// [`GuardLayer`](crate::guard::GuardLayer): Origin, Host.
    Guard,
    /// [`InspectLayer`](crate::inspect::InspectLayer): body, media type, protocol rules.
    Inspect,
    /// The auth layer: tokens and scopes.
    Auth,
    /// The session layer.
    Session,
    /// The affinity router.
    Affinity,
    /// The upstream proxy.
    Proxy,
    /// The limit layer: rates, quotas, concurrency and stream caps.
    Limit,
    /// The SSE layers (resumption: [`ResumeLayer`](crate::sse::ResumeLayer)).
    Sse,
    /// The aggregator (feature `aggregator`): its own sessions and transport rules.
    Aggregate,
}

impl RejectedBy {
    /// `"guard"`, `"inspect"`, …
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectedBy::Guard => "guard",
            RejectedBy::Inspect => "inspect",
            RejectedBy::Auth => "auth",
            RejectedBy::Session => "session",
            RejectedBy::Affinity => "affinity",
            RejectedBy::Proxy => "proxy",
            RejectedBy::Limit => "limit",
            RejectedBy::Sse => "sse",
            RejectedBy::Aggregate => "aggregate",
        }
    }
}

/// `Display` as the machine-readable name.
macro_rules! display_as_str {
    ($($ty:ty),+) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

display_as_str!(RejectedBy, Reason);

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// `Origin` present and not allowed (403, R46).
    OriginNotAllowed,
    /// `Origin` absent where the policy requires one (403).
    OriginRequired,
    /// `Host` missing or not allowed (403, R48).
    HostNotAllowed,
    /// The body is larger than the limit (413).
    BodyTooLarge,
    /// The body could not be read (400).
    BodyUnreadable,
    /// The body did not arrive within its time budget or above its minimum rate (408).
    BodyTimeout,
    /// The `Content-Type` is not `application/json` (415).
    UnsupportedMediaType,
    /// The body has a `Content-Encoding` other than `identity` (415).
    UnsupportedContentEncoding,
    /// The HTTP method is not one the endpoint takes (405).
    MethodNotAllowed,
    /// A protocol rule was broken (400, see [`ProtocolErrorKind`]).
    Protocol(ProtocolErrorKind),
    /// No bearer token (401).
    MissingToken,
    /// The token was refused (401).
    InvalidToken,
    /// The token lacks a needed scope (403).
    InsufficientScope,
    /// The token verifier could not decide (e.g. no keys could be had) (503 or 401).
    VerifierUnavailable,
    /// `Mcp-Session-Id` is not a valid id (400).
    InvalidSessionId,
    /// A non-initialize request without `Mcp-Session-Id` (400, R26).
    SessionRequired,
    /// Unknown, expired or ended session (404, R27).
    SessionNotFound,
    /// The session belongs to another principal (404, R32, §L.13).
    SessionPrincipalMismatch,
    /// Too many sessions (429).
    SessionLimit,
    /// A shared store (e.g. Redis) failed (503).
    StoreUnavailable,
    /// No replica can take the request (503).
    NoReplica,
    /// The session's replica is gone (404, R28).
    ReplicaGone,
    /// The upstream could not be reached (502).
    UpstreamUnavailable,
    /// The upstream did not answer in time (504).
    UpstreamTimeout,
    /// A rate limit was reached (429 with `Retry-After`).
    RateLimited,
    /// A quota over a window is used up (429 with `Retry-After`).
    QuotaExceeded,
    /// Too many calls or streams of one caller are open at once (429 with `Retry-After`).
    ConcurrencyLimited,
    /// A `Last-Event-ID` that names no stream of this session and principal: not one the
    /// edge issued, sealed for another session, stream or principal, or forged (404, R18).
    EventIdUnknown,
    /// A `Last-Event-ID` of this session's stream whose following events are no longer held
    /// (past the event log's count or age): a replay would have a hole (404).
    EventsExpired,
}

impl Reason {
    /// A short machine-readable name, e.g. `"origin_not_allowed"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::OriginNotAllowed => "origin_not_allowed",
            Reason::OriginRequired => "origin_required",
            Reason::HostNotAllowed => "host_not_allowed",
            Reason::BodyTooLarge => "body_too_large",
            Reason::BodyUnreadable => "body_unreadable",
            Reason::BodyTimeout => "body_timeout",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::UnsupportedContentEncoding => "unsupported_content_encoding",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::Protocol(kind) => kind.as_str(),
            Reason::MissingToken => "missing_token",
            Reason::InvalidToken => "invalid_token",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::VerifierUnavailable => "verifier_unavailable",
            Reason::InvalidSessionId => "invalid_session_id",
            Reason::SessionRequired => "session_required",
            Reason::SessionNotFound => "session_not_found",
            Reason::SessionPrincipalMismatch => "session_principal_mismatch",
            Reason::SessionLimit => "session_limit",
            Reason::StoreUnavailable => "store_unavailable",
            Reason::NoReplica => "no_replica",
            Reason::ReplicaGone => "replica_gone",
            Reason::UpstreamUnavailable => "upstream_unavailable",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::RateLimited => "rate_limited",
            Reason::QuotaExceeded => "quota_exceeded",
            Reason::ConcurrencyLimited => "concurrency_limited",
            Reason::EventIdUnknown => "event_id_unknown",
            Reason::EventsExpired => "events_expired",
        }
    }
}

impl Reason {
    /// The HTTP status this refusal answers with.
    ///
    /// Statuses that a client reads as "old transport" on an `initialize` POST (400, 404, 405)
    /// are used only for transport reasons (R45).
    pub const fn status(self) -> StatusCode {
        match self {
            Reason::OriginNotAllowed
            | Reason::OriginRequired
            | Reason::HostNotAllowed
            | Reason::InsufficientScope => StatusCode::FORBIDDEN,
            Reason::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Reason::BodyUnreadable
            | Reason::Protocol(_)
            | Reason::InvalidSessionId
            | Reason::SessionRequired => StatusCode::BAD_REQUEST,
            Reason::UnsupportedMediaType | Reason::UnsupportedContentEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Reason::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Reason::MissingToken | Reason::InvalidToken | Reason::VerifierUnavailable => {
                StatusCode::UNAUTHORIZED
            }
            Reason::SessionNotFound
            | Reason::SessionPrincipalMismatch
            | Reason::ReplicaGone
            | Reason::EventIdUnknown
            | Reason::EventsExpired => StatusCode::NOT_FOUND,
            Reason::SessionLimit
            | Reason::RateLimited
            | Reason::QuotaExceeded
            | Reason::ConcurrencyLimited => StatusCode::TOO_MANY_REQUESTS,
            Reason::StoreUnavailable | Reason::NoReplica => StatusCode::SERVICE_UNAVAILABLE,
            Reason::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Reason::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The JSON-RPC error code of the body (R70; the legacy `-32000`/`-32001` only where the
    /// SDKs' de facto bodies use them, R26, R27).
    pub const fn code(self) -> i64 {
        match self {
            Reason::Protocol(kind) => match kind {
                ProtocolErrorKind::Parse => code::PARSE_ERROR,
                ProtocolErrorKind::InvalidMessage
                | ProtocolErrorKind::BatchNotAllowed
                | ProtocolErrorKind::AmbiguousKey => code::INVALID_REQUEST,
                ProtocolErrorKind::ConflictingHeader => code::LEGACY_BAD_REQUEST,
                ProtocolErrorKind::InvalidParams | ProtocolErrorKind::MissingMeta => {
                    code::INVALID_PARAMS
                }
                ProtocolErrorKind::HeaderMismatch => code::HEADER_MISMATCH,
                ProtocolErrorKind::UnsupportedVersion => code::UNSUPPORTED_PROTOCOL_VERSION,
            },
            Reason::InvalidSessionId | Reason::SessionRequired | Reason::SessionLimit => {
                code::LEGACY_BAD_REQUEST
            }
            Reason::SessionNotFound | Reason::SessionPrincipalMismatch | Reason::ReplicaGone => {
                code::LEGACY_SESSION_NOT_FOUND
            }
            Reason::StoreUnavailable
            | Reason::NoReplica
            | Reason::UpstreamUnavailable
            | Reason::UpstreamTimeout => code::INTERNAL_ERROR,
            _ => code::INVALID_REQUEST,
        }
    }

    /// The default human-readable message.
    pub const fn message(self) -> &'static str {
        match self {
            Reason::OriginNotAllowed => "Forbidden: Origin not allowed",
            Reason::OriginRequired => "Forbidden: Origin header required",
            Reason::HostNotAllowed => "Forbidden: Host header is not allowed",
            Reason::BodyTooLarge => "Payload Too Large",
            Reason::BodyUnreadable => "Bad Request: the request body could not be read",
            Reason::BodyTimeout => "Request Timeout: the request body was not received in time",
            Reason::UnsupportedMediaType => {
                "Unsupported Media Type: Content-Type must be application/json"
            }
            Reason::UnsupportedContentEncoding => {
                "Unsupported Media Type: Content-Encoding must be identity"
            }
            Reason::MethodNotAllowed => "Method Not Allowed",
            Reason::Protocol(_) => "Bad Request",
            Reason::MissingToken => "Unauthorized: a bearer token is required",
            Reason::InvalidToken => "Unauthorized: invalid token",
            Reason::InsufficientScope => "Forbidden: insufficient scope",
            Reason::VerifierUnavailable => "Unauthorized: the token could not be verified",
            Reason::InvalidSessionId => "Bad Request: invalid Mcp-Session-Id",
            Reason::SessionRequired => "Bad Request: Mcp-Session-Id header is required",
            Reason::SessionNotFound | Reason::SessionPrincipalMismatch => "Session not found",
            Reason::ReplicaGone => "Session not found: its replica is gone; start a new session",
            Reason::SessionLimit => "Too Many Requests: session limit reached",
            Reason::StoreUnavailable => "Service Unavailable: the session store is unavailable",
            Reason::NoReplica => "Service Unavailable: no replica can take the request",
            Reason::UpstreamUnavailable => "Bad Gateway: the upstream could not be reached",
            Reason::UpstreamTimeout => "Gateway Timeout: the upstream did not answer in time",
            Reason::RateLimited => "Too Many Requests: rate limit reached",
            Reason::QuotaExceeded => "Too Many Requests: quota used up",
            Reason::ConcurrencyLimited => "Too Many Requests: too many calls or streams open",
            Reason::EventIdUnknown => "Not Found: unknown Last-Event-ID",
            Reason::EventsExpired => {
                "Not Found: the events after this Last-Event-ID are no longer held"
            }
        }
    }
}

/// One refusal: who, why, and the exact answer.
///
/// Built from a [`Reason`] with [`Rejection::of`] or a named constructor; the builder methods
/// add what only the call site knows (the request id, a challenge header).
///
/// ```
/// use http::StatusCode;
/// use mcp_edge::{Reason, RejectedBy, Rejection};
///
/// let rejection = Rejection::of(RejectedBy::Inspect, Reason::UnsupportedMediaType)
///     .with_id(Some(7.into()));
/// let response = rejection.into_response::<http_body_util::Empty<bytes::Bytes>>();
/// assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
/// let seen = response.extensions().get::<Rejection>().unwrap();
/// assert_eq!(seen.reason(), Reason::UnsupportedMediaType);
/// ```
#[derive(Debug, Clone)]
pub struct Rejection {
    // Boxed: refusals are rare, and a small `Rejection` keeps every layer's future small.
    inner: Box<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    by: RejectedBy,
    reason: Reason,
    status: StatusCode,
    code: i64,
    message: Cow<'static, str>,
    id: Option<RequestId>,
    data: Option<serde_json::Value>,
    headers: HeaderMap,
    /// Audit-only: the principal a refused foreign session is bound to. Never in the body.
    owner: Option<BindingKey>,
}

impl Rejection {
    /// A rejection with a status, a JSON-RPC code and a message of your choosing: the
    /// low-level escape hatch for your own layers.
    ///
    /// mcp-edge itself never calls it outside this module: its refusals use [`Rejection::of`]
    /// or a named constructor, so that a reason always answers the same way (R45).
    ///
    /// ```
    /// use http::StatusCode;
    /// use mcp_edge::{Reason, RejectedBy, Rejection};
    ///
    /// // A layer of yours, after auth, that refuses a suspended tenant.
    /// let rejection = Rejection::new(
    ///     RejectedBy::Auth,
    ///     Reason::InsufficientScope,
    ///     StatusCode::FORBIDDEN,
    ///     -32000,
    ///     "Forbidden: this tenant is suspended",
    /// );
    /// assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
    /// ```
    pub fn new(
        by: RejectedBy,
        reason: Reason,
        status: StatusCode,
        code: i64,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Rejection {
            inner: Box::new(Inner {
                by,
                reason,
                status,
                code,
                message: message.into(),
                id: None,
                data: None,
                headers: HeaderMap::new(),
                owner: None,
            }),
        }
    }

    /// A refusal with the reason's own status, code and message ([`Reason::status`],
    /// [`Reason::code`], [`Reason::message`]): what every call site should use.
    pub fn of(by: RejectedBy, reason: Reason) -> Self {
        Rejection::new(by, reason, reason.status(), reason.code(), reason.message())
    }

    /// Replaces the message (for a detail the reason alone does not say). A message longer
    /// than [`MAX_MESSAGE_BYTES`] is cut (on a char boundary) and ends in `…`: a detail that
    /// repeats something the client sent never makes the body grow with it.
    pub fn with_message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            let mut cut = message.into_owned();
            cut.truncate(end);
            cut.push('…');
            message = Cow::Owned(cut);
        }
        self.inner.message = message;
        self
    }

    /// Replaces the HTTP status, for the few reasons whose status depends on the request (a
    /// session limit per principal is a 429, one for the whole edge a 503). Keep R45 in mind:
    /// never 400, 404 or 405 for a refusal an `initialize` can meet for a non-transport reason.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.inner.status = status;
        self
    }

    /// Replaces the JSON-RPC code.
    pub fn with_code(mut self, code: i64) -> Self {
        self.inner.code = code;
        self
    }

    /// The session is unknown, expired or ended: 404 with `-32001` "Session not found" (R27),
    /// which makes the client start over with a new `initialize` (R28).
    pub fn session_not_found(by: RejectedBy, id: Option<RequestId>) -> Self {
        Rejection::of(by, Reason::SessionNotFound).with_id(id)
    }

    /// The session belongs to another principal: answered exactly as an unknown session, so
    /// nothing tells the caller that it exists (R32, SPEC §L.13).
    pub fn session_foreign(by: RejectedBy, id: Option<RequestId>) -> Self {
        Rejection::of(by, Reason::SessionPrincipalMismatch).with_id(id)
    }

    /// Records, for audit only, the principal the refused session is bound to: the response
    /// body and headers stay those of an unknown session (R32, §L.13), so the caller learns
    /// nothing of the owner, while the audit record names both principals.
    pub fn with_owner(mut self, owner: BindingKey) -> Self {
        self.inner.owner = Some(owner);
        self
    }

    /// The owner of a refused foreign session ([`Rejection::with_owner`]); never sent.
    pub fn owner(&self) -> Option<&BindingKey> {
        self.inner.owner.as_ref()
    }

    /// The session's replica is gone: 404, so the client re-initializes (R28).
    pub fn replica_gone(by: RejectedBy, id: Option<RequestId>) -> Self {
        Rejection::of(by, Reason::ReplicaGone).with_id(id)
    }

    /// A non-initialize legacy request without `Mcp-Session-Id`: 400 (R26).
    pub fn session_required(by: RejectedBy, id: Option<RequestId>) -> Self {
        Rejection::of(by, Reason::SessionRequired).with_id(id)
    }

    /// An `Mcp-Session-Id` that is not a valid id: 400 (R24).
    pub fn invalid_session_id(by: RejectedBy, id: Option<RequestId>) -> Self {
        Rejection::of(by, Reason::InvalidSessionId).with_id(id)
    }

    /// The store (e.g. Redis) failed: 503 with `Retry-After`.
    pub fn store_unavailable(by: RejectedBy, id: Option<RequestId>) -> Self {
        Rejection::of(by, Reason::StoreUnavailable)
            .with_id(id)
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// A limit was reached: 429 with `Retry-After` (whole seconds, rounded up, at least 1)
    /// and `error.data` `{"retryAfter": <seconds>, "retryAfterMs": <milliseconds>}`; the
    /// JSON-RPC code is `-32600` (R70: a middleware's own refusal stays out of the reserved
    /// range). 429 is allowed on an `initialize` (R45). `reason` is one of
    /// [`Reason::RateLimited`], [`Reason::QuotaExceeded`] or [`Reason::ConcurrencyLimited`];
    /// add the rule with [`Rejection::with_limit_rule`].
    pub fn limited(
        by: RejectedBy,
        reason: Reason,
        id: Option<RequestId>,
        retry_after: std::time::Duration,
    ) -> Self {
        let millis = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
        let secs = millis.div_ceil(1000).max(1);
        Rejection::of(by, reason)
            .with_id(id)
            .with_header(http::header::RETRY_AFTER, HeaderValue::from(secs))
            .with_data(serde_json::json!({ "retryAfter": secs, "retryAfterMs": millis }))
    }

    /// A rate limit was reached: [`Rejection::limited`] with [`Reason::RateLimited`].
    pub fn rate_limited(
        by: RejectedBy,
        id: Option<RequestId>,
        retry_after: std::time::Duration,
    ) -> Self {
        Rejection::limited(by, Reason::RateLimited, id, retry_after)
    }

    /// Names the limit rule that refused, and the key it counted under (`principal=alice`,
    /// `ip=203.0.113.7`, …): `error.data.rule` gets the rule, and the message ends with both,
    /// so the audit record (which keeps the message) says which budget ran out for whom. The
    /// key names the caller's own identity only, never another caller's. Both are cut to 128
    /// bytes.
    pub fn with_limit_rule(mut self, rule: &str, key: &str) -> Self {
        let rule = cut(rule, 128);
        let key = cut(key, 128);
        let message = format!("{} (rule `{rule}`, key {key})", self.message());
        if let Some(serde_json::Value::Object(data)) = &mut self.inner.data {
            data.insert("rule".into(), rule.into());
        } else {
            self.inner.data = Some(serde_json::json!({ "rule": rule }));
        }
        self.with_message(message)
    }

    /// A POST body larger than the inspect layer's limit: 413 with the limit in the message.
    pub fn body_too_large(limit: usize) -> Self {
        Rejection::of(RejectedBy::Inspect, Reason::BodyTooLarge)
            .with_message(format!("Payload Too Large: the body exceeds {limit} bytes"))
    }

    /// A POST body that did not arrive within the inspect layer's time budget, or fell below
    /// its minimum rate: 408 with `Connection: close`, since the rest of the body is never
    /// read. 408 is allowed on an `initialize` (R45): clients read it as "try again".
    pub fn body_timeout() -> Self {
        Rejection::of(RejectedBy::Inspect, Reason::BodyTimeout)
            .with_header(http::header::CONNECTION, HeaderValue::from_static("close"))
    }

    /// No usable bearer token: 401 (the auth layer adds the `WWW-Authenticate` challenge).
    pub fn missing_token() -> Self {
        Rejection::of(RejectedBy::Auth, Reason::MissingToken)
    }

    /// The token, or the way it was sent, was refused: 401 with `"Unauthorized: {description}"`.
    pub fn invalid_token(description: impl fmt::Display) -> Self {
        Rejection::of(RejectedBy::Auth, Reason::InvalidToken)
            .with_message(format!("Unauthorized: {description}"))
    }

    /// The verifier could not decide (no keys could be had, the introspection endpoint did not
    /// answer): still a 401, never a 5xx, so a client re-authenticates rather than giving up.
    pub fn verifier_unavailable(description: impl fmt::Display) -> Self {
        Rejection::of(RejectedBy::Auth, Reason::VerifierUnavailable)
            .with_message(format!("Unauthorized: {description}"))
    }

    /// The token lacks a scope the call needs: 403 with the needed scopes in
    /// `error.data.requiredScopes`.
    pub fn insufficient_scope<S: AsRef<str>>(needed: &[S]) -> Self {
        let needed = needed
            .iter()
            .map(|scope| serde_json::Value::from(scope.as_ref()))
            .collect::<Vec<_>>();
        Rejection::of(RejectedBy::Auth, Reason::InsufficientScope)
            .with_data(serde_json::json!({ "requiredScopes": needed }))
    }

    /// The auth layer could not tell which scopes a request needs because the request was
    /// never classified (the inspect layer is missing in front of it): 403 with `-32603`, a
    /// misconfiguration rather than the client's fault.
    pub fn unauthorizable() -> Self {
        Rejection::of(RejectedBy::Auth, Reason::InsufficientScope)
            .with_code(code::INTERNAL_ERROR)
            .with_message(
                "Forbidden: the request could not be authorized \
                 (InspectLayer must run before AuthLayer)",
            )
    }

    /// The upstream could not be reached (connect failed): 502.
    pub fn upstream_unavailable(by: RejectedBy, id: Option<RequestId>) -> Self {
        Rejection::of(by, Reason::UpstreamUnavailable).with_id(id)
    }

    /// The upstream connection failed after it was made: 502.
    pub fn upstream_connection_failed(by: RejectedBy, id: Option<RequestId>) -> Self {
        Rejection::upstream_unavailable(by, id)
            .with_message("Bad Gateway: the upstream connection failed")
    }

    /// The upstream did not answer in time: 504.
    pub fn upstream_timeout(by: RejectedBy, id: Option<RequestId>) -> Self {
        Rejection::of(by, Reason::UpstreamTimeout).with_id(id)
    }

    /// A protocol rule broken, found by the inspect layer: 400 with the rule's code.
    pub fn protocol(err: &ProtocolError) -> Self {
        let mut rejection = Rejection::of(RejectedBy::Inspect, Reason::Protocol(err.kind()))
            .with_code(err.code())
            .with_message(err.message().to_owned())
            .with_id(err.id().cloned());
        rejection.inner.data = err.data().cloned();
        rejection
    }

    /// Sets the JSON-RPC id the error answers. A string id longer than
    /// [`MAX_ECHOED_ID_BYTES`] is left out (as an unknown id is): a refusal never echoes an
    /// unbounded client value, and no client that means well sends such an id.
    pub fn with_id(mut self, id: Option<RequestId>) -> Self {
        self.inner.id = id.filter(|id| match id {
            RequestId::String(s) => s.len() <= MAX_ECHOED_ID_BYTES,
            RequestId::Number(_) => true,
        });
        self
    }

    /// Sets `error.data`.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.inner.data = Some(data);
        self
    }

    /// Adds a response header (`WWW-Authenticate`, `Allow`, `Retry-After`, …).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers.append(name, value);
        self
    }

    /// The layer that refused.
    pub fn rejected_by(&self) -> RejectedBy {
        self.inner.by
    }
    /// Why.
    pub fn reason(&self) -> Reason {
        self.inner.reason
    }
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.inner.status
    }
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        self.inner.code
    }
    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }
    /// The JSON-RPC id the error answers, when known.
    pub fn id(&self) -> Option<&RequestId> {
        self.inner.id.as_ref()
    }
    /// `error.data`.
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.inner.data.as_ref()
    }
    /// The extra headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The JSON-RPC error body: `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…}}`.
    /// `id` is omitted when unknown, as the 2025-11-25 and 2026-07-28 schemas allow.
    pub fn body_bytes(&self) -> Bytes {
        error_body(
            self.inner.id.as_ref(),
            self.inner.code,
            &self.inner.message,
            self.inner.data.as_ref(),
        )
    }

    /// The response: status, headers, JSON-RPC body, and the rejection itself in the
    /// response extensions.
    pub fn into_response<B>(self) -> Response<EdgeBody<B>> {
        crate::observe::metrics::refused(self.inner.by.as_str(), self.inner.reason.as_str());
        let mut response = Response::new(EdgeBody::full(self.body_bytes()));
        *response.status_mut() = self.inner.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &self.inner.headers {
            headers.append(name, value.clone());
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// `s` cut to at most `max` bytes on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A JSON-RPC error message, `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…}}`,
/// with `id` omitted when unknown: the one writer of error bodies, for refusals
/// ([`Rejection::body_bytes`]) and for errors a layer puts in place of a result mid-response.
pub(crate) fn error_body(
    id: Option<&RequestId>,
    code: i64,
    message: &str,
    data: Option<&serde_json::Value>,
) -> Bytes {
    #[derive(serde::Serialize)]
    struct ErrorObject<'a> {
        code: i64,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<&'a serde_json::Value>,
    }
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        jsonrpc: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RequestId>,
        error: ErrorObject<'a>,
    }
    let envelope = Envelope {
        jsonrpc: "2.0",
        id,
        error: ErrorObject {
            code,
            message,
            data,
        },
    };
    // Serializing plain strings and numbers cannot fail.
    serde_json::to_vec(&envelope)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(FALLBACK_BODY))
}

const FALLBACK_BODY: &[u8] =
    br#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"}}"#;

impl From<&ProtocolError> for Rejection {
    fn from(err: &ProtocolError) -> Self {
        Rejection::protocol(err)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} refused ({}, {}): {}",
            self.inner.by, self.inner.status, self.inner.reason, self.inner.message
        )
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::jsonrpc::code;
    use http_body_util::{BodyExt, Empty};

    #[tokio::test]
    async fn response_has_status_headers_body_and_extension() {
        let rejection = Rejection::new(
            RejectedBy::Auth,
            Reason::MissingToken,
            StatusCode::UNAUTHORIZED,
            code::INVALID_REQUEST,
            "Unauthorized",
        )
        .with_id(Some(RequestId::from(3)))
        .with_header(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
        let response = rejection.into_response::<Empty<Bytes>>();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_eq!(response.headers()["content-type"], "application/json");
        let seen = response.extensions().get::<Rejection>().unwrap();
        assert_eq!(seen.reason(), Reason::MissingToken);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"jsonrpc":"2.0","id":3,"error":{"code":-32600,"message":"Unauthorized"}})
        );
    }

    #[test]
    fn reasons_carry_their_answer() {
        let r = Rejection::session_not_found(RejectedBy::Session, Some(RequestId::from(1)));
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.code(), code::LEGACY_SESSION_NOT_FOUND);
        assert_eq!(r.message(), "Session not found");
        let foreign = Rejection::session_foreign(RejectedBy::Affinity, None);
        assert_eq!(
            foreign.body_bytes(),
            Rejection::session_not_found(RejectedBy::Session, None).body_bytes()
        );
        // The owner goes to audit, never into the answer.
        let alice = BindingKey::of(&crate::context::Principal::new("alice").with_issuer("i"));
        let owned = Rejection::session_foreign(RejectedBy::Session, None).with_owner(alice);
        assert_eq!(owned.owner().map(BindingKey::subject), Some("alice"));
        assert_eq!(
            owned.body_bytes(),
            Rejection::session_not_found(RejectedBy::Session, None).body_bytes()
        );
        let response = owned.into_response::<http_body_util::Empty<Bytes>>();
        assert!(
            response
                .headers()
                .values()
                .all(|v| !v.as_bytes().windows(5).any(|w| w == b"alice"))
        );
        for reason in [
            Reason::MissingToken,
            Reason::InsufficientScope,
            Reason::SessionLimit,
            Reason::BodyTooLarge,
        ] {
            // R45: none of the reasons an initialize can meet for non-transport causes is 400/404/405.
            assert!(
                !matches!(reason.status().as_u16(), 400 | 404 | 405),
                "{reason}"
            );
        }
    }

    #[test]
    fn an_oversized_string_id_is_not_echoed() {
        let long = RequestId::from("x".repeat(MAX_ECHOED_ID_BYTES + 1).as_str());
        let r = Rejection::of(RejectedBy::Auth, Reason::MissingToken).with_id(Some(long));
        assert!(r.id().is_none());
        assert!(r.body_bytes().len() < 200);
        let fits = RequestId::from("x".repeat(MAX_ECHOED_ID_BYTES).as_str());
        let r = Rejection::of(RejectedBy::Auth, Reason::MissingToken).with_id(Some(fits.clone()));
        assert_eq!(r.id(), Some(&fits));
    }

    #[test]
    fn unknown_id_is_omitted() {
        let body = Rejection::new(
            RejectedBy::Inspect,
            Reason::BodyTooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            code::INVALID_REQUEST,
            "too large",
        )
        .body_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(json.get("id").is_none());
    }

    /// Every reason, each once (checked against [`position`]).
    const ALL_REASONS: [Reason; 37] = [
        Reason::OriginNotAllowed,
        Reason::OriginRequired,
        Reason::HostNotAllowed,
        Reason::BodyTooLarge,
        Reason::BodyUnreadable,
        Reason::UnsupportedMediaType,
        Reason::MethodNotAllowed,
        Reason::Protocol(ProtocolErrorKind::Parse),
        Reason::Protocol(ProtocolErrorKind::InvalidMessage),
        Reason::Protocol(ProtocolErrorKind::InvalidParams),
        Reason::Protocol(ProtocolErrorKind::BatchNotAllowed),
        Reason::Protocol(ProtocolErrorKind::HeaderMismatch),
        Reason::Protocol(ProtocolErrorKind::UnsupportedVersion),
        Reason::Protocol(ProtocolErrorKind::MissingMeta),
        Reason::Protocol(ProtocolErrorKind::AmbiguousKey),
        Reason::Protocol(ProtocolErrorKind::ConflictingHeader),
        Reason::MissingToken,
        Reason::InvalidToken,
        Reason::InsufficientScope,
        Reason::VerifierUnavailable,
        Reason::InvalidSessionId,
        Reason::SessionRequired,
        Reason::SessionNotFound,
        Reason::SessionPrincipalMismatch,
        Reason::SessionLimit,
        Reason::StoreUnavailable,
        Reason::NoReplica,
        Reason::ReplicaGone,
        Reason::UpstreamUnavailable,
        Reason::UpstreamTimeout,
        Reason::UnsupportedContentEncoding,
        Reason::BodyTimeout,
        Reason::RateLimited,
        Reason::QuotaExceeded,
        Reason::ConcurrencyLimited,
        Reason::EventIdUnknown,
        Reason::EventsExpired,
    ];

    /// The place of a reason in [`ALL_REASONS`]: an exhaustive match, so a new variant does
    /// not compile until it is listed.
    fn position(reason: Reason) -> usize {
        match reason {
            Reason::OriginNotAllowed => 0,
            Reason::OriginRequired => 1,
            Reason::HostNotAllowed => 2,
            Reason::BodyTooLarge => 3,
            Reason::BodyUnreadable => 4,
            Reason::UnsupportedMediaType => 5,
            Reason::MethodNotAllowed => 6,
            Reason::Protocol(kind) => match kind {
                ProtocolErrorKind::Parse => 7,
                ProtocolErrorKind::InvalidMessage => 8,
                ProtocolErrorKind::InvalidParams => 9,
                ProtocolErrorKind::BatchNotAllowed => 10,
                ProtocolErrorKind::HeaderMismatch => 11,
                ProtocolErrorKind::UnsupportedVersion => 12,
                ProtocolErrorKind::MissingMeta => 13,
                ProtocolErrorKind::AmbiguousKey => 14,
                ProtocolErrorKind::ConflictingHeader => 15,
            },
            Reason::MissingToken => 16,
            Reason::InvalidToken => 17,
            Reason::InsufficientScope => 18,
            Reason::VerifierUnavailable => 19,
            Reason::InvalidSessionId => 20,
            Reason::SessionRequired => 21,
            Reason::SessionNotFound => 22,
            Reason::SessionPrincipalMismatch => 23,
            Reason::SessionLimit => 24,
            Reason::StoreUnavailable => 25,
            Reason::NoReplica => 26,
            Reason::ReplicaGone => 27,
            Reason::UpstreamUnavailable => 28,
            Reason::UpstreamTimeout => 29,
            Reason::UnsupportedContentEncoding => 30,
            Reason::BodyTimeout => 31,
            Reason::RateLimited => 32,
            Reason::QuotaExceeded => 33,
            Reason::ConcurrencyLimited => 34,
            Reason::EventIdUnknown => 35,
            Reason::EventsExpired => 36,
        }
    }

    /// Whether a well-formed `initialize` POST can be refused for this reason. The others are
    /// transport faults (an unreadable or malformed body, a wrong method), where 400/405 is
    /// right, or never meet an initialize (the session and affinity layers ignore its
    /// `Mcp-Session-Id`, R28).
    fn meets_sound_initialize(reason: Reason) -> bool {
        match reason {
            Reason::OriginNotAllowed
            | Reason::OriginRequired
            | Reason::HostNotAllowed
            | Reason::BodyTooLarge
            | Reason::UnsupportedMediaType
            | Reason::MissingToken
            | Reason::InvalidToken
            | Reason::InsufficientScope
            | Reason::VerifierUnavailable
            | Reason::SessionLimit
            | Reason::StoreUnavailable
            | Reason::NoReplica
            | Reason::UpstreamUnavailable
            | Reason::UpstreamTimeout
            | Reason::UnsupportedContentEncoding
            | Reason::BodyTimeout
            | Reason::RateLimited
            | Reason::QuotaExceeded
            | Reason::ConcurrencyLimited => true,
            Reason::BodyUnreadable | Reason::MethodNotAllowed | Reason::Protocol(_) => false,
            Reason::InvalidSessionId
            | Reason::SessionRequired
            | Reason::SessionNotFound
            | Reason::SessionPrincipalMismatch
            | Reason::ReplicaGone => false,
            // Only GET carries Last-Event-ID.
            Reason::EventIdUnknown | Reason::EventsExpired => false,
        }
    }

    #[test]
    fn every_reason_is_listed_once() {
        for (i, reason) in ALL_REASONS.iter().enumerate() {
            assert_eq!(position(*reason), i, "{reason}");
        }
    }

    #[test]
    fn default_status_of_every_reason_respects_r45_on_initialize() {
        for reason in ALL_REASONS {
            let status = reason.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{reason}: {status}"
            );
            if meets_sound_initialize(reason) {
                assert!(
                    !matches!(status.as_u16(), 400 | 404 | 405),
                    "{reason} can refuse an initialize, yet answers {status} (R45)"
                );
            }
            assert!(reason.code() < 0, "{reason}");
            assert!(!reason.message().is_empty(), "{reason}");
            let rejection = Rejection::of(RejectedBy::Guard, reason);
            assert_eq!(
                (rejection.status(), rejection.code(), rejection.message()),
                (status, reason.code(), reason.message()),
            );
        }
    }

    /// The answer of one refusal: who, why, status, JSON-RPC code and message.
    fn answer(r: &Rejection) -> String {
        let (by, reason, status, code) = (r.rejected_by(), r.reason(), r.status(), r.code());
        format!("{by} {reason} {} {code} {}", status.as_u16(), r.message())
    }

    #[test]
    fn named_constructors_give_their_answers() {
        use RejectedBy::{Affinity, Proxy, Session};
        let answers: Vec<String> = [
            Rejection::session_not_found(Session, None),
            Rejection::session_foreign(Affinity, None),
            Rejection::replica_gone(Affinity, None),
            Rejection::session_required(Session, None),
            Rejection::invalid_session_id(Session, None),
            Rejection::store_unavailable(Session, None),
            Rejection::body_too_large(1000),
            Rejection::body_timeout(),
            Rejection::missing_token(),
            Rejection::invalid_token("unknown token"),
            // A verifier that cannot decide answers 401, never 5xx.
            Rejection::verifier_unavailable("no signing keys"),
            Rejection::unauthorizable(),
            Rejection::upstream_unavailable(Proxy, None),
            Rejection::upstream_connection_failed(Proxy, None),
            Rejection::upstream_timeout(Proxy, None),
        ]
        .iter()
        .map(answer)
        .collect();
        let expected = "\
session session_not_found 404 -32001 Session not found
affinity session_principal_mismatch 404 -32001 Session not found
affinity replica_gone 404 -32001 Session not found: its replica is gone; start a new session
session session_required 400 -32000 Bad Request: Mcp-Session-Id header is required
session invalid_session_id 400 -32000 Bad Request: invalid Mcp-Session-Id
session store_unavailable 503 -32603 Service Unavailable: the session store is unavailable
inspect body_too_large 413 -32600 Payload Too Large: the body exceeds 1000 bytes
inspect body_timeout 408 -32600 Request Timeout: the request body was not received in time
auth missing_token 401 -32600 Unauthorized: a bearer token is required
auth invalid_token 401 -32600 Unauthorized: unknown token
auth verifier_unavailable 401 -32600 Unauthorized: no signing keys
auth insufficient_scope 403 -32603 Forbidden: the request could not be authorized (InspectLayer must run before AuthLayer)
proxy upstream_unavailable 502 -32603 Bad Gateway: the upstream could not be reached
proxy upstream_unavailable 502 -32603 Bad Gateway: the upstream connection failed
proxy upstream_timeout 504 -32603 Gateway Timeout: the upstream did not answer in time";
        assert_eq!(answers.join("\n"), expected);
    }

    #[test]
    fn constructors_keep_the_id_and_add_the_headers_of_their_reason() {
        let id = Some(RequestId::from(4));
        let not_found = Rejection::session_not_found(RejectedBy::Session, id.clone());
        assert_eq!(not_found.id(), id.as_ref());
        assert!(not_found.headers().is_empty());
        let unavailable = Rejection::store_unavailable(RejectedBy::Session, id.clone());
        assert_eq!(unavailable.id(), id.as_ref());
        assert_eq!(unavailable.headers()["retry-after"], "1");
        let upstream = Rejection::upstream_unavailable(RejectedBy::Proxy, id.clone());
        assert_eq!(upstream.id(), id.as_ref());
        let timeout = Rejection::body_timeout();
        assert_eq!(timeout.headers()[http::header::CONNECTION], "close");
    }

    #[test]
    fn protocol_keeps_the_rules_code_message_id_and_data() {
        let err = crate::protocol::McpRequest::classify(
            &http::Method::POST,
            &HeaderMap::new(),
            Some(&Bytes::from_static(b"{")),
        )
        .unwrap_err();
        let r = Rejection::protocol(&err);
        let parse = Reason::Protocol(ProtocolErrorKind::Parse);
        let expected = format!(
            "inspect {parse} 400 {} {}",
            code::PARSE_ERROR,
            err.message()
        );
        assert_eq!(answer(&r), expected);
        assert_eq!(r.id(), err.id());
        assert_eq!(r.data(), err.data());
    }

    #[test]
    fn rate_limited_is_429_with_retry_after_and_data() {
        let r = Rejection::rate_limited(
            RejectedBy::Limit,
            Some(RequestId::from(3)),
            std::time::Duration::from_millis(1500),
        )
        .with_limit_rule(
            "tools/call:deploy_*=10/min per principal",
            "principal=alice",
        );
        assert_eq!(
            answer(&r),
            "limit rate_limited 429 -32600 Too Many Requests: rate limit reached \
             (rule `tools/call:deploy_*=10/min per principal`, key principal=alice)",
        );
        assert_eq!(r.headers()["retry-after"], "2");
        assert_eq!(
            r.data(),
            Some(&serde_json::json!({
                "retryAfter": 2,
                "retryAfterMs": 1500,
                "rule": "tools/call:deploy_*=10/min per principal",
            }))
        );
        assert_eq!(r.id(), Some(&RequestId::from(3)));
        // Never less than one second in the header, however close the next slot is.
        let r = Rejection::limited(
            RejectedBy::Limit,
            Reason::ConcurrencyLimited,
            None,
            std::time::Duration::ZERO,
        );
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn insufficient_scope_is_403_listing_the_scopes() {
        let needed: Vec<Box<str>> = vec!["tools:call".into(), "admin".into()];
        let r = Rejection::insufficient_scope(&needed);
        assert_eq!(
            answer(&r),
            "auth insufficient_scope 403 -32600 Forbidden: insufficient scope"
        );
        assert_eq!(
            r.data(),
            Some(&serde_json::json!({"requiredScopes": ["tools:call", "admin"]}))
        );
    }

    #[test]
    fn error_body_is_the_rejection_body() {
        let id = RequestId::from(9);
        assert_eq!(
            &error_body(Some(&id), -32603, "Internal error: x", None)[..],
            br#"{"jsonrpc":"2.0","id":9,"error":{"code":-32603,"message":"Internal error: x"}}"#
        );
        let r = Rejection::of(RejectedBy::Auth, Reason::InsufficientScope)
            .with_id(Some(id.clone()))
            .with_data(serde_json::json!({"requiredScopes": ["a"]}));
        assert_eq!(
            r.body_bytes(),
            error_body(Some(&id), r.code(), r.message(), r.data())
        );
    }
}
