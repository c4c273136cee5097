//! [`AuditEvent`]: one record per MCP message, named after the OpenTelemetry MCP conventions.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, StatusCode, Version};
use serde::ser::{Serialize, SerializeMap, Serializer};

use super::cap::{Capped, NAME_CAP, REASON_CAP, TRACE_CAP, cap, cap_display};
use crate::context::BindingKey;
use crate::context::LimitNote;
use crate::context::PinAlert;
use crate::context::Principal;
use crate::context::RequestOrigin;
use crate::context::{Replica, Routed};
use crate::error::{Reason, RejectedBy};
use crate::protocol::{
    ClientInfo, Era, McpMessage, McpRequest, ProtocolVersion, RequestId, SessionId, Target,
};

/// How one MCP message ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A JSON-RPC `result` (and, for `tools/call`, not `isError`); or a GET / DELETE that
    /// ended normally.
    Success,
    /// A notification or client response answered `202 Accepted` (R6).
    Accepted,
    /// A JSON-RPC `error` from the server.
    JsonRpcError {
        /// `error.code`.
        code: i64,
        /// `error.message` (secrets scrubbed).
        message: Box<str>,
    },
    /// `CallToolResult.isError: true`: the tool ran and failed (HTTP 200, R70).
    ToolError,
    /// An mcp-edge layer refused the request.
    Refused {
        /// The layer.
        by: RejectedBy,
        /// Why.
        reason: Reason,
        /// The JSON-RPC code of the error body.
        code: i64,
        /// The error body's message.
        message: Box<str>,
    },
    /// The service behind failed: it returned an error, its body failed, or it answered 5xx
    /// without a JSON-RPC error.
    UpstreamFailure {
        /// What failed.
        detail: Cow<'static, str>,
    },
    /// The server answered with an HTTP error status (4xx) and no JSON-RPC error the edge
    /// could read.
    HttpError,
    /// The client went away (dropped the response or the stream) before the outcome was sent.
    ClientGone,
    /// The response ended but its outcome could not be told (larger than the inspection
    /// limit, or a stream closed before the response: the client may poll for it, R20).
    Unknown {
        /// Why it is unknown.
        detail: &'static str,
    },
}

impl Outcome {
    /// `"success"`, `"accepted"`, `"jsonrpc_error"`, `"tool_error"`, `"refused"`,
    /// `"upstream_failure"`, `"http_error"`, `"client_gone"` or `"unknown"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Accepted => "accepted",
            Outcome::JsonRpcError { .. } => "jsonrpc_error",
            Outcome::ToolError => "tool_error",
            Outcome::Refused { .. } => "refused",
            Outcome::UpstreamFailure { .. } => "upstream_failure",
            Outcome::HttpError => "http_error",
            Outcome::ClientGone => "client_gone",
            Outcome::Unknown { .. } => "unknown",
        }
    }

    /// Whether the outcome is a success (`Success` or `Accepted`).
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success | Outcome::Accepted)
    }

    /// The JSON-RPC error code, for JSON-RPC errors and refusals (`rpc.response.status_code`).
    pub fn code(&self) -> Option<i64> {
        match self {
            Outcome::JsonRpcError { code, .. } | Outcome::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit record: who sent which MCP message, where it went, and how it ended.
///
/// One event per MCP message: a 2025-03-26 batch gives one per message, a GET stream or a
/// DELETE gives one, and a request refused before its body was read gives one with what was
/// known. Serialized (for [`JsonLinesSink`](super::JsonLinesSink)) as a flat JSON object
/// whose keys follow the OpenTelemetry MCP conventions where one exists (`mcp.method.name`,
/// `mcp.session.id`, `gen_ai.tool.name`, `jsonrpc.request.id`, `rpc.response.status_code`,
/// `error.type`, …) and sit under `mcp_edge.` otherwise. Absent values are left out.
///
/// Never holds `Authorization`, cookies, `DPoP` or `Mcp-Param-*` values.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub(crate) start: SystemTime,
    pub(crate) time_to_head: Option<Duration>,
    pub(crate) duration: Duration,
    pub(crate) request_id: HeaderValue,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) client: ClientAddr,
    pub(crate) http_method: Method,
    pub(crate) http_version: Version,
    pub(crate) status: Option<StatusCode>,
    pub(crate) mcp: Option<Arc<McpRequest>>,
    pub(crate) index: usize,
    pub(crate) session: Option<SessionId>,
    pub(crate) principal: Option<Principal>,
    /// The owner of a session refused to another principal (R32).
    pub(crate) session_owner: Option<BindingKey>,
    pub(crate) replica: Option<Replica>,
    pub(crate) routed: Option<Routed>,
    pub(crate) pin: Option<PinAlert>,
    pub(crate) limit: Option<LimitNote>,
    pub(crate) request_bytes: u64,
    pub(crate) response_bytes: u64,
    pub(crate) sse_events: Option<u64>,
    pub(crate) outcome: Outcome,
    pub(crate) arguments: Option<Box<str>>,
    pub(crate) result: Option<Box<str>>,
    pub(crate) scrubbed: Option<Box<Scrubbed>>,
}

/// Client-sent values of the message that held a secret of the request (a token used as a
/// tool name, say), replaced by their scrubbed form. Rare, so boxed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scrubbed {
    pub(crate) method: Option<Box<str>>,
    pub(crate) id: Option<RequestId>,
    pub(crate) target: Option<Target>,
    pub(crate) client_info: Option<ClientInfo>,
    /// `traceparent` / `tracestate` are left out.
    pub(crate) trace_context: bool,
}

/// Who the client is, as far as audit knows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientAddr {
    pub(crate) ip: Option<IpAddr>,
    /// A trusted proxy stands between: the peer is not the client.
    pub(crate) forwarded: bool,
}

impl ClientAddr {
    /// No guard ran: the peer is the client.
    pub(crate) fn of_peer(peer: Option<SocketAddr>) -> Self {
        ClientAddr {
            ip: peer.map(|p| p.ip()),
            forwarded: false,
        }
    }

    /// What a guard derived.
    pub(crate) fn of_origin(origin: &RequestOrigin) -> Self {
        ClientAddr {
            ip: origin.client_ip(),
            forwarded: origin.is_forwarded(),
        }
    }
}

impl AuditEvent {
    /// When the request arrived at the audit layer.
    pub fn start_time(&self) -> SystemTime {
        self.start
    }
    /// From arrival to the response head; `None` when no response was produced.
    pub fn time_to_head(&self) -> Option<Duration> {
        self.time_to_head
    }
    /// From arrival to the end of the response body (for a stream, its whole life).
    pub fn duration(&self) -> Duration {
        self.duration
    }
    /// The request id: the `x-request-id` header when the client sent a usable one, else
    /// generated (and then set on the request and the response).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }
    /// The peer address, when the server provides it (see
    /// [`AuditLayer::peer_addr`](super::AuditLayer::peer_addr)): behind a proxy, the proxy's.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }
    /// The client's address (`client.address`): when a [`Guard`](crate::guard::Guard) ran,
    /// the one it derived ([`RequestOrigin::client_ip`], so behind a trusted proxy the
    /// forwarded client, and `None` when that proxy did not say); else the peer's.
    pub fn client_addr(&self) -> Option<IpAddr> {
        self.client.ip
    }
    /// The client's port: the peer's, unless a trusted proxy stands between (then unknown).
    pub(crate) fn client_port(&self) -> Option<u16> {
        if self.client.forwarded {
            None
        } else {
            self.peer.map(|p| p.port())
        }
    }
    /// The peer, when it is a trusted proxy rather than the client (`network.peer.*`).
    pub(crate) fn proxy_peer(&self) -> Option<SocketAddr> {
        self.peer.filter(|_| self.client.forwarded)
    }
    /// The HTTP method.
    pub fn http_method(&self) -> &Method {
        &self.http_method
    }
    /// The HTTP version.
    pub fn http_version(&self) -> Version {
        self.http_version
    }
    /// The response status; `None` when no response was produced.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }
    /// The classified request, when the inspect layer ran.
    pub fn request(&self) -> Option<&McpRequest> {
        self.mcp.as_deref()
    }
    /// The MCP message this event is about.
    pub fn message(&self) -> Option<&McpMessage> {
        self.mcp.as_ref()?.messages().get(self.index)
    }
    /// The position of the message in a 2025-03-26 batch, and the batch size.
    pub fn batch_position(&self) -> Option<(usize, usize)> {
        let mcp = self.mcp.as_ref()?;
        mcp.is_batch().then(|| (self.index, mcp.messages().len()))
    }
    /// The era, when known.
    pub fn era(&self) -> Option<Era> {
        self.mcp.as_ref().map(|m| m.era())
    }
    /// The protocol version, when known.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.mcp.as_ref().map(|m| m.version())
    }
    /// `mcp.method.name`.
    pub fn mcp_method(&self) -> Option<&str> {
        self.scrubbed_or(|s| s.method.as_deref(), McpMessage::method)
    }
    /// `jsonrpc.request.id`.
    pub fn jsonrpc_id(&self) -> Option<&RequestId> {
        self.scrubbed_or(|s| s.id.as_ref(), McpMessage::id)
    }
    /// The tool, prompt, resource or task the message acts on.
    pub fn target(&self) -> Option<&Target> {
        self.scrubbed_or(|s| s.target.as_ref(), McpMessage::target)
    }
    /// The client's self-reported name and version (on `initialize`, and on every
    /// 2026-07-28 request that sends it).
    pub fn client_info(&self) -> Option<&ClientInfo> {
        self.scrubbed_or(|s| s.client_info.as_ref(), McpMessage::client_info)
    }

    /// A field of the message: its scrubbed form when audit replaced it, else the message's.
    fn scrubbed_or<'a, T: ?Sized>(
        &'a self,
        scrubbed: impl FnOnce(&'a Scrubbed) -> Option<&'a T>,
        message: impl FnOnce(&'a McpMessage) -> Option<&'a T>,
    ) -> Option<&'a T> {
        match self.scrubbed.as_deref().and_then(scrubbed) {
            Some(value) => Some(value),
            None => message(self.message()?),
        }
    }
    /// `mcp.session.id` (legacy era only; never set for 2026-07-28).
    pub fn session_id(&self) -> Option<&SessionId> {
        self.session.as_ref()
    }
    /// The caller, when the auth layer established one.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }
    /// `mcp_edge.session.owner.subject`: whom the session belongs to, when it was refused to
    /// another principal (R32); the caller is [`AuditEvent::principal`].
    pub fn session_owner(&self) -> Option<&BindingKey> {
        self.session_owner.as_ref()
    }
    /// The replica the request went to, when the affinity router chose one.
    pub fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }
    /// `mcp_edge.upstream`: the upstream an aggregator routed the request to.
    pub fn routed(&self) -> Option<&Routed> {
        self.routed.as_ref()
    }
    /// `mcp_edge.pin.changed` / `mcp_edge.pin.hidden`: tool definitions an aggregator found
    /// changed since pinned while answering (see [`PinAlert`]).
    pub fn pin_alert(&self) -> Option<&PinAlert> {
        self.pin.as_ref()
    }
    /// `mcp_edge.limit.note`: what the limit layer noted when it let the call through
    /// without a full decision (its shared store failed under fail-open rules).
    pub fn limit_note(&self) -> Option<LimitNote> {
        self.limit
    }
    /// Request body bytes read.
    pub fn request_bytes(&self) -> u64 {
        self.request_bytes
    }
    /// Response body bytes sent.
    pub fn response_bytes(&self) -> u64 {
        self.response_bytes
    }
    /// SSE events sent, for `text/event-stream` responses.
    pub fn sse_events(&self) -> Option<u64> {
        self.sse_events
    }
    /// How it ended.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }
    /// `error.type`: the JSON-RPC code as a string, `tool_error`, or the outcome's name for
    /// other failures; `None` on success.
    pub fn error_type(&self) -> Option<Cow<'static, str>> {
        match &self.outcome {
            Outcome::Success | Outcome::Accepted => None,
            Outcome::Unknown { .. } => None,
            Outcome::JsonRpcError { code, .. } | Outcome::Refused { code, .. } => {
                Some(Cow::Owned(code.to_string()))
            }
            Outcome::HttpError => Some(Cow::Owned(
                self.status.map_or(0, |s| s.as_u16()).to_string(),
            )),
            other => Some(Cow::Borrowed(other.as_str())),
        }
    }
    /// Captured tool arguments (opt-in, redacted, capped), as JSON text.
    pub fn arguments(&self) -> Option<&str> {
        self.arguments.as_deref()
    }
    /// Captured tool result (opt-in, redacted, capped), as JSON text.
    pub fn result(&self) -> Option<&str> {
        self.result.as_deref()
    }
    /// The W3C `traceparent` from the message's `params._meta`.
    pub fn traceparent(&self) -> Option<&str> {
        if self.scrubbed.as_ref().is_some_and(|s| s.trace_context) {
            return None;
        }
        self.message()?.meta()?.traceparent.as_deref()
    }
    /// The W3C `tracestate` from the message's `params._meta`.
    pub fn tracestate(&self) -> Option<&str> {
        if self.scrubbed.as_ref().is_some_and(|s| s.trace_context) {
            return None;
        }
        self.message()?.meta()?.tracestate.as_deref()
    }

    /// What the event holds in memory, as a queue's byte budget counts it: the request body
    /// it keeps alive (through the classified request), captured arguments and result, its
    /// message, and a fixed share for the rest.
    pub(crate) fn retained_bytes(&self) -> usize {
        let body = if self.mcp.is_some() {
            usize::try_from(self.request_bytes).unwrap_or(usize::MAX)
        } else {
            0
        };
        let message = match &self.outcome {
            Outcome::JsonRpcError { message, .. } | Outcome::Refused { message, .. } => {
                message.len()
            }
            Outcome::UpstreamFailure { detail } => detail.len(),
            _ => 0,
        };
        std::mem::size_of::<AuditEvent>()
            .saturating_add(body)
            .saturating_add(self.arguments.as_ref().map_or(0, |a| a.len()))
            .saturating_add(self.result.as_ref().map_or(0, |r| r.len()))
            .saturating_add(message)
    }

    /// Leaves the captured arguments and result out of a line of `line_bytes` that is over the
    /// per-event budget, saying so.
    pub(crate) fn omit_captures(&mut self, line_bytes: usize) {
        let note = format!("…[omitted: the event's line was {line_bytes} bytes]");
        if self.arguments.is_some() {
            self.arguments = Some(note.clone().into());
        }
        if self.result.is_some() {
            self.result = Some(note.into());
        }
    }
}

/// `network.protocol.version`.
pub(crate) fn http_version_str(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "unknown",
    }
}

/// A `SystemTime` as RFC 3339 UTC with microseconds, e.g. `2026-07-28T10:00:00.123456Z`.
pub(crate) struct Rfc3339(pub(crate) SystemTime);

impl Rfc3339 {
    /// Year, month, day, seconds into the day, microseconds.
    fn civil(&self) -> (i64, i64, i64, i64, u32) {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs() as i64;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Civil-from-days (H. Hinnant), proleptic Gregorian.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day, rem, since.subsec_micros())
    }

    /// The text, written without the formatting machinery (the JSON-lines writer formats one
    /// per line); `None` past the year 9999, which four digits do not hold.
    fn text(&self) -> Option<[u8; 27]> {
        let (year, month, day, rem, micros) = self.civil();
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut n: u64| {
            for slot in out[at..at + width].iter_mut().rev() {
                *slot = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        // Each value is non-negative and fits its width.
        put(0, 4, year as u64);
        put(5, 2, month as u64);
        put(8, 2, day as u64);
        put(11, 2, (rem / 3600) as u64);
        put(14, 2, ((rem % 3600) / 60) as u64);
        put(17, 2, (rem % 60) as u64);
        put(20, 6, u64::from(micros));
        Some(out)
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.text() {
            return f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?);
        }
        let (year, month, day, rem, micros) = self.civil();
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60,
        )
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.text() {
            Some(text) => s.serialize_str(std::str::from_utf8(&text).unwrap_or_default()),
            None => s.collect_str(self),
        }
    }
}

/// At most this many tools of a [`PinAlert`] are recorded.
const PIN_ALERT_CAP: usize = 16;

fn capped_name(s: &str) -> Capped<'_, NAME_CAP> {
    Capped(s)
}

fn capped_text(s: &str) -> Capped<'_, REASON_CAP> {
    Capped(s)
}

fn capped_trace(s: &str) -> Capped<'_, TRACE_CAP> {
    Capped(s)
}

struct Display<T>(T);

impl<T: fmt::Display> Serialize for Display<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl Serialize for AuditEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("timestamp", &Rfc3339(self.start))?;
        map.serialize_entry("mcp_edge.request_id", &capped_name(self.request_id()))?;
        if let Some(method) = self.mcp_method() {
            map.serialize_entry("mcp.method.name", &capped_name(method))?;
        }
        if let Some(message) = self.message() {
            map.serialize_entry("mcp_edge.message.kind", message.kind().as_str())?;
        }
        if let Some(id) = self.jsonrpc_id() {
            map.serialize_entry("jsonrpc.request.id", &cap_display(id, NAME_CAP))?;
        }
        match self.target() {
            Some(Target::Tool(name)) => {
                map.serialize_entry("gen_ai.tool.name", &capped_name(name))?;
                map.serialize_entry("gen_ai.operation.name", "execute_tool")?;
            }
            Some(Target::Prompt(name)) => {
                map.serialize_entry("gen_ai.prompt.name", &capped_name(name))?
            }
            Some(Target::Resource(uri)) => {
                map.serialize_entry("mcp.resource.uri", &capped_name(uri))?
            }
            Some(Target::Task(id)) => map.serialize_entry("mcp_edge.task.id", &capped_name(id))?,
            _ => {}
        }
        if let Some(version) = self.protocol_version() {
            map.serialize_entry("mcp.protocol.version", version.as_str())?;
        }
        if let Some(era) = self.era() {
            map.serialize_entry("mcp_edge.era", era.as_str())?;
        }
        if let Some((index, size)) = self.batch_position() {
            map.serialize_entry("mcp_edge.batch.index", &index)?;
            map.serialize_entry("mcp_edge.batch.size", &size)?;
        }
        if let Some(session) = &self.session {
            map.serialize_entry("mcp.session.id", &capped_name(session.as_str()))?;
        }
        if let Some(info) = self.client_info() {
            if let Some(name) = &info.name {
                map.serialize_entry("mcp_edge.client.name", &capped_name(name))?;
            }
            if let Some(version) = &info.version {
                map.serialize_entry("mcp_edge.client.version", &capped_name(version))?;
            }
        }
        if let Some(principal) = &self.principal {
            if let Some(issuer) = principal.issuer() {
                map.serialize_entry("mcp_edge.principal.issuer", &capped_name(issuer))?;
            }
            map.serialize_entry(
                "mcp_edge.principal.subject",
                &capped_name(principal.subject()),
            )?;
            if let Some(client_id) = principal.client_id() {
                map.serialize_entry("mcp_edge.principal.client_id", &capped_name(client_id))?;
            }
        }
        if let Some(owner) = &self.session_owner {
            map.serialize_entry("mcp_edge.session.owner.issuer", owner.issuer())?;
            map.serialize_entry("mcp_edge.session.owner.subject", owner.subject())?;
        }
        if let Some(replica) = &self.replica {
            map.serialize_entry("mcp_edge.replica", &capped_name(replica.id()))?;
        }
        if let Some(routed) = &self.routed {
            map.serialize_entry("mcp_edge.upstream", &capped_name(routed.upstream()))?;
        }
        if let Some(pin) = &self.pin {
            let tools: Vec<String> = pin
                .tools()
                .take(PIN_ALERT_CAP)
                .map(|(upstream, tool)| {
                    format!("{}/{}", cap(upstream, NAME_CAP), cap(tool, NAME_CAP))
                })
                .collect();
            map.serialize_entry("mcp_edge.pin.changed", &tools)?;
            map.serialize_entry("mcp_edge.pin.hidden", &pin.hidden())?;
        }
        if let Some(note) = self.limit {
            map.serialize_entry("mcp_edge.limit.note", note.as_str())?;
        }
        map.serialize_entry("mcp_edge.outcome", self.outcome.as_str())?;
        if let Some(error_type) = self.error_type() {
            map.serialize_entry("error.type", &capped_name(&error_type))?;
        }
        if let Some(code) = self.outcome.code() {
            map.serialize_entry("rpc.response.status_code", &Display(code))?;
        }
        match &self.outcome {
            Outcome::JsonRpcError { message, .. } => {
                map.serialize_entry("mcp_edge.error.message", &capped_text(message))?;
            }
            Outcome::Refused {
                by,
                reason,
                message,
                ..
            } => {
                map.serialize_entry("mcp_edge.refused_by", by.as_str())?;
                map.serialize_entry("mcp_edge.refusal.reason", reason.as_str())?;
                map.serialize_entry("mcp_edge.error.message", &capped_text(message))?;
            }
            Outcome::UpstreamFailure { detail } => {
                map.serialize_entry("mcp_edge.error.message", &capped_text(detail))?;
            }
            Outcome::Unknown { detail } => {
                map.serialize_entry("mcp_edge.error.message", &capped_text(detail))?;
            }
            _ => {}
        }
        map.serialize_entry("http.request.method", self.http_method.as_str())?;
        if let Some(status) = self.status {
            map.serialize_entry("http.response.status_code", &status.as_u16())?;
        }
        map.serialize_entry("network.protocol.name", "http")?;
        map.serialize_entry(
            "network.protocol.version",
            http_version_str(self.http_version),
        )?;
        if self.peer.is_some() {
            map.serialize_entry("network.transport", "tcp")?;
        }
        if let Some(ip) = self.client_addr() {
            map.serialize_entry("client.address", &Display(ip))?;
        }
        if let Some(port) = self.client_port() {
            map.serialize_entry("client.port", &port)?;
        }
        if let Some(proxy) = self.proxy_peer() {
            map.serialize_entry("network.peer.address", &Display(proxy.ip()))?;
            map.serialize_entry("network.peer.port", &proxy.port())?;
        }
        map.serialize_entry("http.request.body.size", &self.request_bytes)?;
        map.serialize_entry("http.response.body.size", &self.response_bytes)?;
        if let Some(events) = self.sse_events {
            map.serialize_entry("mcp_edge.sse.events", &events)?;
        }
        if let Some(d) = self.time_to_head {
            map.serialize_entry("mcp_edge.time_to_head", &d.as_secs_f64())?;
        }
        map.serialize_entry(
            "mcp.server.operation.duration",
            &self.duration.as_secs_f64(),
        )?;
        if let Some(tp) = self.traceparent() {
            map.serialize_entry("traceparent", &capped_trace(tp))?;
        }
        if let Some(ts) = self.tracestate() {
            map.serialize_entry("tracestate", &capped_trace(ts))?;
        }
        if let Some(args) = &self.arguments {
            map.serialize_entry("gen_ai.tool.call.arguments", args)?;
        }
        if let Some(result) = &self.result {
            map.serialize_entry("gen_ai.tool.call.result", result)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_micros(1_785_232_800_123_456);
        assert_eq!(Rfc3339(t).to_string(), "2026-07-28T10:00:00.123456Z");
        assert_eq!(
            Rfc3339(UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(Rfc3339(leap).to_string(), "2000-02-29T00:00:00.000000Z");
    }
}
