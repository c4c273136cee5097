//! Where audit events go: the [`AuditSink`] trait, [`TracingSink`] and [`ChannelSink`].

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::cap::{NAME_CAP, REASON_CAP, TRACE_CAP, cap, cap_display};
use super::event::{AuditEvent, Outcome, http_version_str};
use crate::protocol::Target;

/// Receives audit events.
///
/// `emit` is called on the request's task when an MCP message's outcome is known. It must
/// return at once: never block, never wait on I/O. Sinks that write somewhere slow queue the
/// event (bounded) and drop it, counting, when the queue is full, as [`ChannelSink`] and
/// [`JsonLinesSink`](super::JsonLinesSink) do. A sink that fails must not panic: nothing it
/// does can fail a request.
///
/// Any `Fn(AuditEvent) + Send + Sync + 'static` closure is a sink.
///
/// ```
/// use mcp_edge::audit::{AuditEvent, AuditLayer, AuditSink};
///
/// struct Counter(std::sync::atomic::AtomicU64);
///
/// impl AuditSink for Counter {
///     fn emit(&self, _event: AuditEvent) {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///     }
/// }
///
/// let by_type = AuditLayer::new(Counter(Default::default()));
/// let by_closure = AuditLayer::new(|event: AuditEvent| println!("{}", event.outcome()));
/// # let _ = (by_type, by_closure);
/// ```
pub trait AuditSink: Send + Sync + 'static {
    /// Takes one event. Must not block.
    fn emit(&self, event: AuditEvent);

    /// Sends every event to `self` and then to `other`.
    fn and<T: AuditSink>(self, other: T) -> Both<Self, T>
    where
        Self: Sized,
    {
        Both(self, other)
    }
}

impl<F> AuditSink for F
where
    F: Fn(AuditEvent) + Send + Sync + 'static,
{
    fn emit(&self, event: AuditEvent) {
        self(event)
    }
}

/// Two sinks: see [`AuditSink::and`].
#[derive(Debug, Clone)]
pub struct Both<A, B>(A, B);

impl<A: AuditSink, B: AuditSink> AuditSink for Both<A, B> {
    fn emit(&self, event: AuditEvent) {
        self.0.emit(event.clone());
        self.1.emit(event);
    }
}

/// Counts events a full (or closed) queue refused, and logs the count as it grows: at the
/// first drop, then at every power of two.
#[derive(Debug, Default)]
pub(crate) struct DropCounter {
    dropped: AtomicU64,
}

impl DropCounter {
    pub(crate) fn record(&self, sink: &'static str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        crate::observe::metrics::audit_dropped(sink);
        if n.is_power_of_two() {
            tracing::warn!(
                target: "mcp_edge::audit",
                sink,
                mcp_edge.audit.dropped = n,
                "audit queue full or closed: events dropped"
            );
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Hands events to the application over a bounded channel.
///
/// When the channel is full (the application reads too slowly) or closed, the event is
/// dropped and counted in [`dropped`](ChannelSink::dropped); the request is never held up.
/// Clones share the channel and the count.
///
/// ```
/// use mcp_edge::audit::{AuditLayer, ChannelSink};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (sink, mut events) = ChannelSink::new(1024);
/// let layer = AuditLayer::new(sink.clone());
/// tokio::spawn(async move {
///     while let Some(event) = events.recv().await {
///         println!("{} {}", event.mcp_method().unwrap_or("-"), event.outcome());
///     }
/// });
/// assert_eq!(sink.dropped(), 0);
/// # let _ = layer;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ChannelSink {
    tx: mpsc::Sender<AuditEvent>,
    dropped: Arc<DropCounter>,
}

impl ChannelSink {
    /// A sink and the receiving end of its channel, which holds up to `capacity` events.
    ///
    /// # Panics
    /// If `capacity` is 0.
    pub fn new(capacity: usize) -> (ChannelSink, mpsc::Receiver<AuditEvent>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            ChannelSink {
                tx,
                dropped: Arc::default(),
            },
            rx,
        )
    }

    /// Events dropped because the channel was full or closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

impl AuditSink for ChannelSink {
    fn emit(&self, event: AuditEvent) {
        if self.tx.try_send(event).is_err() {
            self.dropped.record("channel");
        }
    }
}

/// One `tracing` event per MCP message, at target `mcp_edge::audit`, with the OpenTelemetry
/// MCP field names (`mcp.method.name`, `gen_ai.tool.name`, `jsonrpc.request.id`,
/// `error.type`, …) and the W3C trace context from `params._meta`, so an existing tracing or
/// OpenTelemetry subscriber picks it up.
///
/// Successes log at `INFO` (or the level set with
/// [`success_level`](TracingSink::success_level)), everything else at `WARN`.
///
/// Each event is one log record: with a plain `fmt` subscriber writing to stdout or stderr,
/// that is one unbuffered `write` per MCP message. For a full record at high call rates,
/// prefer [`JsonLinesSink`](super::JsonLinesSink), which batches.
///
/// ```
/// use mcp_edge::audit::{AuditLayer, TracingSink};
///
/// let layer = AuditLayer::new(TracingSink::new());
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TracingSink {
    success: tracing::Level,
}

impl Default for TracingSink {
    fn default() -> Self {
        TracingSink::new()
    }
}

impl TracingSink {
    /// A tracing sink: successes at `INFO`.
    pub fn new() -> Self {
        TracingSink {
            success: tracing::Level::INFO,
        }
    }

    /// Logs successes (`success` and `accepted` outcomes) at `level` instead of `INFO`:
    /// `DEBUG` keeps them out of a production log filtered at `INFO` (and then costs next to
    /// nothing), while refusals and failures stay at `WARN`.
    pub fn success_level(mut self, level: tracing::Level) -> Self {
        self.success = level;
        self
    }
}

/// An event's strings, capped as the JSON-lines sink caps them (see [`cap`](super::cap)).
struct Fields<'a> {
    method: Option<Cow<'a, str>>,
    id: Option<String>,
    target: Option<Cow<'a, str>>,
    client_name: Option<Cow<'a, str>>,
    client_version: Option<Cow<'a, str>>,
    issuer: Option<Cow<'a, str>>,
    subject: Option<Cow<'a, str>>,
    client_id: Option<Cow<'a, str>>,
    replica: Option<Cow<'a, str>>,
    session: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
    traceparent: Option<Cow<'a, str>>,
    tracestate: Option<Cow<'a, str>>,
}

impl<'a> Fields<'a> {
    fn of(e: &'a AuditEvent) -> Self {
        let name = |s: &'a str| cap(s, NAME_CAP);
        let client = e.client_info();
        let principal = e.principal();
        let message = match e.outcome() {
            Outcome::Refused { message, .. } | Outcome::JsonRpcError { message, .. } => {
                Some(&**message)
            }
            Outcome::UpstreamFailure { detail } => Some(&**detail),
            Outcome::Unknown { detail } => Some(*detail),
            _ => None,
        };
        Fields {
            method: e.mcp_method().map(name),
            id: e.jsonrpc_id().map(|id| cap_display(id, NAME_CAP)),
            target: e.target().map(|t| name(t.name())),
            client_name: client.and_then(|c| c.name.as_deref()).map(name),
            client_version: client.and_then(|c| c.version.as_deref()).map(name),
            issuer: principal.and_then(|p| p.issuer()).map(name),
            subject: principal.map(|p| name(p.subject())),
            client_id: principal.and_then(|p| p.client_id()).map(name),
            replica: e.replica().map(|r| name(r.id())),
            session: e.session_id().map(|s| name(s.as_str())),
            message: message.map(|m| cap(m, REASON_CAP)),
            traceparent: e.traceparent().map(|t| cap(t, TRACE_CAP)),
            tracestate: e.tracestate().map(|t| cap(t, TRACE_CAP)),
        }
    }
}

macro_rules! audit_event {
    ($level:expr, $event:ident) => {{
        let e = &$event;
        let f = Fields::of(e);
        let target = f.target.as_deref();
        let (tool, prompt, resource, task) = match e.target() {
            Some(Target::Tool(_)) => (target, None, None, None),
            Some(Target::Prompt(_)) => (None, target, None, None),
            Some(Target::Resource(_)) => (None, None, target, None),
            Some(Target::Task(_)) => (None, None, None, target),
            _ => (None, None, None, None),
        };
        let (refused_by, reason) = match e.outcome() {
            Outcome::Refused { by, reason, .. } => (Some(by.as_str()), Some(reason.as_str())),
            _ => (None, None),
        };
        let error_type = e.error_type();
        tracing::event!(
            target: "mcp_edge::audit",
            $level,
            mcp_edge.request_id = e.request_id(),
            mcp.method.name = f.method.as_deref(),
            jsonrpc.request.id = f.id.as_deref(),
            gen_ai.tool.name = tool,
            gen_ai.operation.name = tool.map(|_| "execute_tool"),
            gen_ai.prompt.name = prompt,
            mcp.resource.uri = resource,
            mcp_edge.task.id = task,
            mcp.protocol.version = e.protocol_version().map(|v| v.as_str()),
            mcp_edge.era = e.era().map(|v| v.as_str()),
            mcp.session.id = f.session.as_deref(),
            mcp_edge.client.name = f.client_name.as_deref(),
            mcp_edge.client.version = f.client_version.as_deref(),
            mcp_edge.principal.issuer = f.issuer.as_deref(),
            mcp_edge.principal.subject = f.subject.as_deref(),
            mcp_edge.principal.client_id = f.client_id.as_deref(),
            mcp_edge.replica = f.replica.as_deref(),
            mcp_edge.outcome = e.outcome().as_str(),
            error.type = error_type.as_deref(),
            rpc.response.status_code = e.outcome().code(),
            mcp_edge.refused_by = refused_by,
            mcp_edge.refusal.reason = reason,
            mcp_edge.error.message = f.message.as_deref(),
            http.request.method = e.http_method().as_str(),
            http.response.status_code = e.status().map(|s| s.as_u16()),
            network.protocol.version = http_version_str(e.http_version()),
            client.address = e.client_addr().map(tracing::field::display),
            client.port = e.client_port(),
            network.peer.address = e.proxy_peer().map(|p| tracing::field::display(p.ip())),
            network.peer.port = e.proxy_peer().map(|p| p.port()),
            http.request.body.size = e.request_bytes(),
            http.response.body.size = e.response_bytes(),
            mcp_edge.sse.events = e.sse_events(),
            mcp_edge.time_to_head = e.time_to_head().map(|d| d.as_secs_f64()),
            mcp.server.operation.duration = e.duration().as_secs_f64(),
            traceparent = f.traceparent.as_deref(),
            tracestate = f.tracestate.as_deref(),
            gen_ai.tool.call.arguments = e.arguments(),
            gen_ai.tool.call.result = e.result(),
            "mcp audit"
        )
    }};
}

impl AuditSink for TracingSink {
    fn emit(&self, event: AuditEvent) {
        if event.outcome().is_success() {
            match self.success {
                tracing::Level::TRACE => audit_event!(tracing::Level::TRACE, event),
                tracing::Level::DEBUG => audit_event!(tracing::Level::DEBUG, event),
                tracing::Level::INFO => audit_event!(tracing::Level::INFO, event),
                tracing::Level::WARN => audit_event!(tracing::Level::WARN, event),
                _ => audit_event!(tracing::Level::ERROR, event),
            }
        } else {
            audit_event!(tracing::Level::WARN, event);
        }
    }
}
