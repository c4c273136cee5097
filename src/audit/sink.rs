//! Where audit events go: the [`AuditSink`] trait, [`TracingSink`] and [`ChannelSink`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

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
/// Successes log at `INFO`, everything else at `WARN`.
///
/// ```
/// use mcp_edge::audit::{AuditLayer, TracingSink};
///
/// let layer = AuditLayer::new(TracingSink::new());
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink {
    _priv: (),
}

impl TracingSink {
    /// A tracing sink.
    pub fn new() -> Self {
        TracingSink { _priv: () }
    }
}

macro_rules! audit_event {
    ($level:expr, $event:ident) => {{
        let e = &$event;
        let (tool, prompt, resource, task) = match e.target() {
            Some(Target::Tool(n)) => (Some(&**n), None, None, None),
            Some(Target::Prompt(n)) => (None, Some(&**n), None, None),
            Some(Target::Resource(n)) => (None, None, Some(&**n), None),
            Some(Target::Task(n)) => (None, None, None, Some(&**n)),
            _ => (None, None, None, None),
        };
        let client = e.client_info();
        let principal = e.principal();
        let (refused_by, reason, message) = match e.outcome() {
            Outcome::Refused {
                by,
                reason,
                message,
                ..
            } => (Some(by.as_str()), Some(reason.as_str()), Some(&**message)),
            Outcome::JsonRpcError { message, .. } => (None, None, Some(&**message)),
            Outcome::UpstreamFailure { detail } => (None, None, Some(&**detail)),
            Outcome::Unknown { detail } => (None, None, Some(*detail)),
            _ => (None, None, None),
        };
        let error_type = e.error_type();
        tracing::event!(
            target: "mcp_edge::audit",
            $level,
            mcp_edge.request_id = e.request_id(),
            mcp.method.name = e.mcp_method(),
            jsonrpc.request.id = e.jsonrpc_id().map(tracing::field::display),
            gen_ai.tool.name = tool,
            gen_ai.operation.name = tool.map(|_| "execute_tool"),
            gen_ai.prompt.name = prompt,
            mcp.resource.uri = resource,
            mcp_edge.task.id = task,
            mcp.protocol.version = e.protocol_version().map(|v| v.as_str()),
            mcp_edge.era = e.era().map(|v| v.as_str()),
            mcp.session.id = e.session_id().map(|s| s.as_str()),
            mcp_edge.client.name = client.and_then(|c| c.name.as_deref()),
            mcp_edge.client.version = client.and_then(|c| c.version.as_deref()),
            mcp_edge.principal.issuer = principal.and_then(|p| p.issuer()),
            mcp_edge.principal.subject = principal.map(|p| p.subject()),
            mcp_edge.principal.client_id = principal.and_then(|p| p.client_id()),
            mcp_edge.replica = e.replica().map(|r| r.id()),
            mcp_edge.outcome = e.outcome().as_str(),
            error.type = error_type.as_deref(),
            rpc.response.status_code = e.outcome().code(),
            mcp_edge.refused_by = refused_by,
            mcp_edge.refusal.reason = reason,
            mcp_edge.error.message = message,
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
            traceparent = e.traceparent(),
            tracestate = e.tracestate(),
            gen_ai.tool.call.arguments = e.arguments(),
            gen_ai.tool.call.result = e.result(),
            "mcp audit"
        )
    }};
}

impl AuditSink for TracingSink {
    fn emit(&self, event: AuditEvent) {
        if event.outcome().is_success() {
            audit_event!(tracing::Level::INFO, event);
        } else {
            audit_event!(tracing::Level::WARN, event);
        }
    }
}
