//! What audit knows of one request while it is in flight, and how it turns into events.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::response::Parts;
use http::{HeaderValue, Method, StatusCode, Version};

use super::cap::{REASON_CAP, cap};
use super::event::{AuditEvent, ClientAddr, Outcome};
use super::layer::Config;
use super::redact::{REDACTED, Secrets, detached};
use super::service::X_REQUEST_ID;
use super::sink::AuditSink;
use super::telemetry::Spans;
use crate::context::BindingKey;
use crate::context::LimitNote;
use crate::context::McpRequestSlot;
use crate::context::PinAlert;
use crate::context::Principal;
use crate::context::Replica;
use crate::context::RequestOrigin;
use crate::context::Routed;
use crate::error::Rejection;
use crate::protocol::ReadResponses;
use crate::protocol::header::MCP_SESSION_ID;
use crate::protocol::sse::{SseEventCounter, SseItem, SseParser};
use crate::protocol::{
    BodyKind, Era, McpMessage, McpRequest, MessageKind, RequestId, ResponseOutcome, SessionId,
    Target, body_kind,
};
use serde_json::value::RawValue;

/// How the exchange ended, from audit's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The body ended normally.
    Complete,
    /// The body (or the response future) was dropped before the end: the client went away.
    Dropped,
    /// The response body yielded an error.
    BodyError,
    /// The inner service returned an error instead of a response.
    ServiceError,
}

/// One JSON-RPC response seen on the way out.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) id: Option<RequestId>,
    pub(crate) outcome: ResponseOutcome,
    pub(crate) result: Option<Box<str>>,
}

/// What audit learns at the response head.
#[derive(Debug, Default)]
pub(crate) struct Head {
    status: Option<StatusCode>,
    time_to_head: Option<Duration>,
    mcp: Option<Arc<McpRequest>>,
    principal: Option<Principal>,
    session: Option<SessionId>,
    replica: Option<Replica>,
    routed: Option<Routed>,
    pin: Option<PinAlert>,
    limit: Option<LimitNote>,
    /// Only when a layer refused: out of line, so that a record (which lives as long as its
    /// stream) does not carry room for it.
    refused: Option<Box<Refused>>,
}

/// A refusal as audit records it.
#[derive(Debug)]
struct Refused {
    outcome: Outcome,
    /// The owner of a session refused to another principal (R32).
    session_owner: Option<BindingKey>,
}

impl Head {
    /// What one of several events (a batch's) carries: the shared values, cloned.
    fn shared(&self) -> Head {
        Head {
            status: self.status,
            time_to_head: self.time_to_head,
            mcp: self.mcp.clone(),
            principal: self.principal.clone(),
            session: self.session.clone(),
            replica: self.replica.clone(),
            routed: self.routed.clone(),
            pin: self.pin.clone(),
            limit: self.limit,
            refused: None,
        }
    }
}

/// The per-request state, from `call` to the last event.
pub(crate) struct Record<K> {
    pub(crate) sink: Arc<K>,
    pub(crate) config: Arc<Config>,
    pub(crate) start: Instant,
    /// The wall-clock start, in nanoseconds since the Unix epoch (see [`unix_nanos`]).
    pub(crate) started_at: u64,
    pub(crate) request_id: KeptId,
    pub(crate) peer: Option<SocketAddr>,
    /// The peer's address until a guard's [`RequestOrigin`] says who the client is.
    pub(crate) client: ClientAddr,
    pub(crate) method: Method,
    pub(crate) version: Version,
    pub(crate) secrets: Secrets,
    pub(crate) request_bytes: RequestBytes,
    pub(crate) head: Head,
    /// The messages' spans.
    pub(crate) spans: Spans,
}

/// The request id as a record keeps it: the header value, or (for a record that outlives its
/// request head) a copy inline when it fits, as a generated id always does.
#[derive(Debug)]
pub(crate) enum KeptId {
    Header(HeaderValue),
    Inline { bytes: [u8; 32], len: u8 },
}

impl KeptId {
    /// Lets go of the request head's buffer (see [`Secrets::detach`]).
    fn detach(&mut self) {
        let KeptId::Header(value) = self else { return };
        let text = value.as_bytes();
        *self = match u8::try_from(text.len()) {
            Ok(len) if text.len() <= 32 => {
                let mut bytes = [0; 32];
                bytes[..text.len()].copy_from_slice(text);
                KeptId::Inline { bytes, len }
            }
            _ => KeptId::Header(detached(value)),
        };
    }

    fn value(&self) -> HeaderValue {
        match self {
            KeptId::Header(value) => value.clone(),
            KeptId::Inline { bytes, len } => HeaderValue::from_bytes(&bytes[..usize::from(*len)])
                .expect("copied from a header value"),
        }
    }
}

/// `time` in nanoseconds since the Unix epoch (0 before it); a `u64` lasts until 2554.
pub(crate) fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What audit holds only until the response head (the response future keeps it, so that a
/// record, which lives as long as its stream, does not).
#[derive(Debug)]
pub(crate) struct BeforeHead {
    /// The request's `Mcp-Session-Id`, parsed only when no inner layer named the session.
    pub(crate) session_header: Option<HeaderValue>,
    /// Filled by inspect once it has classified the request (see [`McpRequestSlot`]).
    pub(crate) mcp_slot: McpRequestSlot,
}

/// The request body's size: counted by the [`CountingBody`](super::CountingBody) while it
/// lives, then read once.
#[derive(Debug)]
pub(crate) enum RequestBytes {
    Counting(Arc<AtomicU64>),
    Counted(u64),
}

impl RequestBytes {
    fn get(&self) -> u64 {
        match self {
            RequestBytes::Counting(count) => count.load(Ordering::Relaxed),
            RequestBytes::Counted(n) => *n,
        }
    }

    /// Lets go of the counter once the request body is gone (nothing can add to it then).
    fn settle(&mut self) {
        if let RequestBytes::Counting(count) = self
            && Arc::strong_count(count) == 1
        {
            *self = RequestBytes::Counted(count.load(Ordering::Relaxed));
        }
    }
}

/// How the response body is watched for the outcome.
#[derive(Debug)]
pub(crate) enum Watch {
    /// Nothing to learn from the body.
    Nothing,
    /// A bounded copy of a JSON body, parsed at the end.
    Json(JsonCopy),
    /// An SSE stream that answers requests, its events read as they pass.
    Sse(Box<SseWatch>),
    /// An SSE stream that answers nothing (a GET stream): its events are only counted.
    Count(SseEventCounter),
}

/// Reads the events of an SSE response as they pass, until every request of the POST has
/// its response; then only counts events.
#[derive(Debug)]
pub(crate) struct SseWatch {
    parser: SseParser,
    events: u64,
    /// Requests of the POST still waiting for their response.
    pending: usize,
    read: ReadResponses,
    seen: Vec<Seen>,
}

/// A bounded copy of a JSON body: one chunk kept as is (zero-copy), more joined.
#[derive(Debug, Default)]
pub(crate) enum JsonCopy {
    #[default]
    Empty,
    One(Bytes),
    Joined(Vec<u8>),
    /// Longer than the inspection limit: nothing kept.
    Truncated,
}

impl JsonCopy {
    pub(crate) fn push(&mut self, chunk: &Bytes, limit: usize) {
        let len = match self {
            JsonCopy::Truncated => return,
            _ if chunk.is_empty() => return,
            JsonCopy::Empty => 0,
            JsonCopy::One(first) => first.len(),
            JsonCopy::Joined(joined) => joined.len(),
        };
        if len + chunk.len() > limit {
            *self = JsonCopy::Truncated;
            return;
        }
        match self {
            JsonCopy::Empty => *self = JsonCopy::One(chunk.clone()),
            JsonCopy::One(first) => {
                let mut joined = Vec::with_capacity(len + chunk.len());
                joined.extend_from_slice(first);
                joined.extend_from_slice(chunk);
                *self = JsonCopy::Joined(joined);
            }
            JsonCopy::Joined(joined) => joined.extend_from_slice(chunk),
            JsonCopy::Truncated => {}
        }
    }

    fn truncated(&self) -> bool {
        matches!(self, JsonCopy::Truncated)
    }

    fn bytes(&self) -> &[u8] {
        match self {
            JsonCopy::One(first) => first,
            JsonCopy::Joined(joined) => joined,
            JsonCopy::Empty | JsonCopy::Truncated => &[],
        }
    }
}

impl Watch {
    /// Feeds one data frame.
    pub(crate) fn observe<K>(&mut self, data: &Bytes, record: &Record<K>) {
        match self {
            Watch::Nothing => {}
            Watch::Json(copy) => copy.push(data, record.config.inspect_bytes),
            Watch::Sse(watch) => watch.observe(data, record),
            Watch::Count(counter) => counter.feed(data),
        }
    }
}

impl SseWatch {
    fn new(mcp: Option<&McpRequest>, limit: usize, read: ReadResponses) -> Self {
        let pending = mcp.map_or(0, |m| {
            m.messages()
                .iter()
                .filter(|m| m.kind() == MessageKind::Request)
                .count()
        });
        SseWatch {
            parser: SseParser::with_max_event_bytes(limit),
            events: 0,
            pending,
            read,
            seen: Vec::new(),
        }
    }

    fn observe<K>(&mut self, data: &Bytes, record: &Record<K>) {
        let SseWatch {
            parser,
            events,
            pending,
            read,
            seen,
        } = self;
        for item in parser.feed(data) {
            let SseItem::Event(event) = item else {
                continue;
            };
            *events += 1;
            if *pending == 0 || event.truncated {
                continue;
            }
            let Some(data) = event.data.as_deref().filter(|d| !d.is_empty()) else {
                continue;
            };
            let Some(messages) = read.parse_bytes(data) else {
                continue;
            };
            for message in messages {
                let wanted = match &message.id {
                    None => true,
                    Some(id) => {
                        record.head.mcp.as_ref().is_some_and(|m| {
                            m.messages()
                                .iter()
                                .any(|r| r.kind() == MessageKind::Request && r.id() == Some(id))
                        }) && !seen.iter().any(|s| s.id.as_ref() == Some(id))
                    }
                };
                if !wanted {
                    continue;
                }
                if message.id.is_some() {
                    *pending -= 1;
                }
                let result = record.capture_result(message.result);
                seen.push(Seen {
                    id: message.id,
                    outcome: message.outcome,
                    result,
                });
            }
        }
    }
}

fn is_tool_call(mcp: &McpRequest) -> bool {
    mcp.messages()
        .iter()
        .any(|m| matches!(m.target(), Some(Target::Tool(_))))
}

impl<K> Record<K> {
    /// The captured (redacted, capped) tool result, when capture of results is on.
    fn capture_result(&self, raw: Option<&RawValue>) -> Option<Box<str>> {
        let capture = self.config.capture.as_ref()?;
        capture.render(raw?.get(), &self.secrets)
    }

    /// Copies every request header value the record holds (see [`Secrets::detach`]).
    fn detach_from_request(&mut self) {
        self.request_id.detach();
        self.secrets.detach();
    }

    /// What to read from the responses: `isError` for tool calls, the raw result only when
    /// results are captured.
    fn read_responses(&self) -> ReadResponses {
        let tool_call = self.head.mcp.as_deref().is_some_and(is_tool_call);
        ReadResponses {
            tool_call,
            keep_result: tool_call && self.config.capture.as_ref().is_some_and(|c| c.results),
        }
    }
}

impl<K: AuditSink> Record<K> {
    /// Reads what the inner layers left in the response, and decides how to watch the body.
    pub(crate) fn on_head(&mut self, parts: &mut Parts, before: BeforeHead) -> Watch {
        self.head.status = Some(parts.status);
        self.head.time_to_head = Some(self.start.elapsed());
        self.request_bytes.settle();
        let ext = &parts.extensions;
        self.head.mcp = ext
            .get::<Arc<McpRequest>>()
            .or_else(|| before.mcp_slot.get())
            .cloned();
        self.spans.on_request(self.head.mcp.as_deref());
        self.head.principal = ext.get::<Principal>().cloned();
        self.head.replica = ext.get::<Replica>().cloned();
        self.head.routed = ext.get::<Routed>().cloned();
        self.head.pin = ext.get::<PinAlert>().cloned();
        self.head.limit = ext.get::<LimitNote>().copied();
        if let Some(origin) = ext.get::<RequestOrigin>() {
            self.client = ClientAddr::of_origin(origin);
        }
        self.head.refused = ext.get::<Rejection>().map(|r| {
            Box::new(Refused {
                outcome: Outcome::Refused {
                    by: r.rejected_by(),
                    reason: r.reason(),
                    code: r.code(),
                    message: cap(&self.secrets.scrub(r.message()), REASON_CAP).into(),
                },
                session_owner: r.owner().cloned(),
            })
        });
        let modern = self
            .head
            .mcp
            .as_ref()
            .is_some_and(|m| m.era() == Era::Modern);
        if !modern {
            self.head.session = ext
                .get::<SessionId>()
                .cloned()
                .or_else(|| {
                    before
                        .session_header
                        .and_then(|v| SessionId::from_header(&v).ok())
                })
                .or_else(|| {
                    parts
                        .headers
                        .get(MCP_SESSION_ID)
                        .and_then(|v| SessionId::from_header(v).ok())
                });
        }
        if self
            .head
            .session
            .as_ref()
            .is_some_and(|s| self.secrets.taints(s.as_str()))
        {
            self.head.session =
                Some(SessionId::from_bytes(REDACTED.as_bytes()).expect("visible ASCII"));
        }
        if self.config.echo_request_id
            && let http::header::Entry::Vacant(entry) = parts.headers.entry(X_REQUEST_ID)
        {
            entry.insert(self.request_id.value());
        }
        if self.head.refused.is_some() || parts.status == StatusCode::ACCEPTED {
            return Watch::Nothing;
        }
        match body_kind(&parts.headers) {
            BodyKind::Sse => {
                let messages = self.head.mcp.as_ref().map_or(&[][..], |m| m.messages());
                if !messages.iter().any(|m| m.kind() == MessageKind::Request) {
                    // No answer to wait for (a GET stream): count the events, nothing more.
                    if messages.is_empty() {
                        // Nothing left to scrub: no message, and no answer to read.
                        self.secrets = Secrets::default();
                    }
                    self.detach_from_request();
                    return Watch::Count(SseEventCounter::new());
                }
                // A stream may stay open for hours: let go of the request head's buffer.
                self.detach_from_request();
                return Watch::Sse(Box::new(SseWatch::new(
                    self.head.mcp.as_deref(),
                    self.config.inspect_bytes,
                    self.read_responses(),
                )));
            }
            BodyKind::Json => {
                let expects_answer = self.head.mcp.as_ref().is_none_or(|m| {
                    m.messages().is_empty()
                        || m.messages()
                            .iter()
                            .any(|m| m.kind() == MessageKind::Request)
                });
                if expects_answer || !parts.status.is_success() {
                    return Watch::Json(JsonCopy::Empty);
                }
            }
            BodyKind::Other => {}
        }
        Watch::Nothing
    }

    /// No head came back (the client left first, or the service failed): emits the events
    /// with what inspect classified.
    pub(crate) fn finish_without_head(mut self: Box<Self>, before: BeforeHead, end: End) {
        self.head.mcp = before.mcp_slot.get().cloned();
        self.finish(end, Watch::Nothing, 0);
    }

    /// Emits one event per MCP message.
    pub(crate) fn finish(mut self: Box<Self>, end: End, watch: Watch, response_bytes: u64) {
        let duration = self.start.elapsed();
        let read = self.read_responses();
        let mut truncated = false;
        let mut sse = false;
        let (mut seen, sse_events) = match watch {
            Watch::Nothing => (Vec::new(), None),
            Watch::Sse(watch) => {
                sse = true;
                (watch.seen, Some(watch.events))
            }
            Watch::Count(counter) => {
                sse = true;
                (Vec::new(), Some(counter.events()))
            }
            Watch::Json(copy) => {
                truncated = copy.truncated();
                let parsed = (!truncated && end == End::Complete)
                    .then(|| read.parse_bytes(copy.bytes()))
                    .flatten();
                // Collected in place: the parsed list's allocation is reused.
                let seen = parsed
                    .unwrap_or_default()
                    .into_iter()
                    .map(|message| Seen {
                        result: self.capture_result(message.result),
                        id: message.id,
                        outcome: message.outcome,
                    })
                    .collect();
                (seen, None)
            }
        };
        let request_bytes = self.request_bytes.get();
        let count = self.head.mcp.as_ref().map_or(0, |m| m.messages().len());
        let last = count.max(1) - 1;
        for index in 0..=last {
            let message = self.head.mcp.as_ref().and_then(|m| m.messages().get(index));
            let (outcome, result) = self.outcome_for(message, &mut seen, end, truncated, sse);
            let arguments = match (&self.config.capture, message) {
                (Some(capture), Some(m)) if capture.arguments => m
                    .arguments()
                    .filter(|_| matches!(m.target(), Some(Target::Tool(_))))
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|a| capture.render(a, &self.secrets)),
                _ => None,
            };
            let scrubbed = message.and_then(|m| self.secrets.scrub_message(m));
            let session_owner = self
                .head
                .refused
                .as_ref()
                .and_then(|r| r.session_owner.clone());
            // The last event takes what the record holds; the others share it.
            let head = if index == last {
                std::mem::take(&mut self.head)
            } else {
                self.head.shared()
            };
            let event = AuditEvent {
                start: UNIX_EPOCH + Duration::from_nanos(self.started_at),
                time_to_head: head.time_to_head,
                duration,
                request_id: self.request_id.value(),
                peer: self.peer,
                client: self.client,
                http_method: self.method.clone(),
                http_version: self.version,
                status: head.status,
                mcp: head.mcp,
                index,
                session: head.session,
                principal: head.principal,
                session_owner,
                replica: head.replica,
                routed: head.routed,
                pin: head.pin,
                limit: head.limit,
                request_bytes,
                response_bytes,
                sse_events,
                outcome,
                arguments,
                result,
                scrubbed,
            };
            self.spans.finish(&event, &self.config);
            self.sink.emit(event);
        }
    }

    fn outcome_for(
        &self,
        message: Option<&McpMessage>,
        seen: &mut [Seen],
        end: End,
        truncated: bool,
        sse: bool,
    ) -> (Outcome, Option<Box<str>>) {
        if let Some(refused) = &self.head.refused {
            return (refused.outcome.clone(), None);
        }
        if end == End::ServiceError {
            return (
                Outcome::UpstreamFailure {
                    detail: "the service returned an error".into(),
                },
                None,
            );
        }
        let status = self.head.status.unwrap_or(StatusCode::OK);
        let wants_answer = message.is_none_or(|m| m.kind() == MessageKind::Request);
        let position = if wants_answer {
            let id = message.and_then(McpMessage::id);
            seen.iter()
                .position(|s| id.is_some() && s.id.as_ref() == id)
                .or_else(|| {
                    // An id-less error answers every request; without a message, any
                    // response is the answer.
                    seen.iter()
                        .position(|s| s.id.is_none() || message.is_none())
                })
        } else {
            // A notification or client response has no answer of its own, but an id-less
            // error (the whole body refused by the server) is about it too.
            seen.iter().position(|s| s.id.is_none())
        };
        if let Some(seen) = position.map(|i| &mut seen[i]) {
            let result = seen.result.take();
            return (self.outcome_of_response(&seen.outcome), result);
        }
        let outcome = match end {
            End::BodyError => Outcome::UpstreamFailure {
                detail: "the response body failed".into(),
            },
            End::Dropped if self.head.status.is_none() || wants_answer => Outcome::ClientGone,
            _ if status.is_server_error() => Outcome::UpstreamFailure {
                detail: format!("the service answered {status}").into(),
            },
            _ if status.is_client_error() => Outcome::HttpError,
            _ if !wants_answer => {
                if status == StatusCode::ACCEPTED {
                    Outcome::Accepted
                } else {
                    Outcome::Success
                }
            }
            _ if message.is_none() => Outcome::Success,
            _ if truncated => Outcome::Unknown {
                detail: "the response is larger than the inspection limit",
            },
            _ if sse => Outcome::Unknown {
                detail: "the stream ended before the response (the client may poll for it)",
            },
            _ => Outcome::Unknown {
                detail: "no JSON-RPC response for this request was seen",
            },
        };
        (outcome, None)
    }

    fn outcome_of_response(&self, outcome: &ResponseOutcome) -> Outcome {
        match outcome {
            ResponseOutcome::Result { is_error: false } => Outcome::Success,
            ResponseOutcome::Result { is_error: true } => Outcome::ToolError,
            ResponseOutcome::Error { code, message } => Outcome::JsonRpcError {
                code: *code,
                message: cap(&self.secrets.scrub(message), REASON_CAP).into(),
            },
        }
    }
}
