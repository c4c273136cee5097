//! The span of each MCP message, and its operation metric, from what audit already pairs.
//!
//! A span opens when the request arrives (the first message's) or when the body tells a
//! batch apart (the others'), stays open while the response is produced, and closes with the
//! message's audit event: its attributes are the event's, named after the OpenTelemetry MCP
//! conventions. The spans are never entered: a span's parent (the W3C trace context, which
//! may only be known from the body's `_meta`) can then still be set when the outcome is
//! known, and an OpenTelemetry span ends when the event is emitted, not when a poll last
//! left it.

use std::fmt::Write as _;

use http::HeaderMap;
use tracing::Span;
use tracing::field::Empty;

use super::event::{AuditEvent, Outcome};
#[cfg(feature = "otel")]
use crate::observe::TraceContext;
#[cfg(feature = "metrics")]
use crate::observe::metrics;
#[cfg(feature = "metrics")]
use crate::protocol::Era;
use crate::protocol::{McpRequest, Target};

/// The target of the spans (filter with `mcp_edge::span=info`).
pub(crate) const TARGET: &str = "mcp_edge::span";

/// The spans of one request's messages.
#[derive(Debug)]
pub(crate) struct Spans {
    first: Span,
    /// Batch elements after the first, opened once the body is known.
    rest: Vec<Span>,
    /// The `traceparent` / `tracestate` headers, which win over `_meta`.
    #[cfg(feature = "otel")]
    header_parent: Option<TraceContext>,
    /// Whether a subscriber wanted the first span (then it wants the others).
    enabled: bool,
}

fn new_span() -> Span {
    tracing::debug_span!(
        target: TARGET,
        "mcp.server",
        otel.name = Empty,
        otel.kind = "server",
        otel.status_code = Empty,
        otel.status_description = Empty,
        mcp.method.name = Empty,
        gen_ai.operation.name = Empty,
        gen_ai.tool.name = Empty,
        gen_ai.prompt.name = Empty,
        mcp.resource.uri = Empty,
        mcp.session.id = Empty,
        mcp.protocol.version = Empty,
        jsonrpc.request.id = Empty,
        network.protocol.name = "http",
        network.protocol.version = Empty,
        network.transport = "tcp",
        client.address = Empty,
        client.port = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
        rpc.response.status_code = Empty,
        mcp_edge.outcome = Empty,
        mcp_edge.request_id = Empty,
    )
}

impl Spans {
    /// Opens the first message's span (when `on` and a subscriber wants it) and reads the
    /// trace context headers.
    pub(crate) fn start(on: bool, headers: &HeaderMap) -> Self {
        let first = if on { new_span() } else { Span::none() };
        let enabled = !first.is_disabled();
        #[cfg(not(feature = "otel"))]
        let _ = headers;
        Spans {
            first,
            rest: Vec::new(),
            #[cfg(feature = "otel")]
            header_parent: if enabled {
                TraceContext::from_headers(headers)
            } else {
                None
            },
            enabled,
        }
    }

    /// Opens the spans of a batch's other elements, once the body is known.
    pub(crate) fn on_request(&mut self, mcp: Option<&McpRequest>) {
        if !self.enabled || !self.rest.is_empty() {
            return;
        }
        let count = mcp.map_or(0, |m| m.messages().len());
        self.rest = (1..count).map(|_| new_span()).collect();
    }

    /// Records the operation metric and closes message `event.index`'s span with the
    /// event's attributes.
    pub(crate) fn finish(&mut self, event: &AuditEvent) {
        operation_metric(event);
        let span = match event.index {
            0 => std::mem::replace(&mut self.first, Span::none()),
            i => match self.rest.get_mut(i - 1) {
                Some(span) => std::mem::replace(span, Span::none()),
                // The body was only known at the end (no response head came back).
                None if self.enabled => new_span(),
                None => Span::none(),
            },
        };
        if span.is_disabled() {
            return;
        }
        self.close(span, event);
    }

    fn close(&self, span: Span, event: &AuditEvent) {
        #[cfg(feature = "otel")]
        {
            let meta_parent = || TraceContext::parse(event.traceparent()?, event.tracestate());
            if let Some(parent) = self.header_parent.clone().or_else(meta_parent) {
                parent.set_parent_of(&span);
            }
        }
        record(&span, event);
        if let Outcome::Refused { by, reason, .. } = event.outcome() {
            tracing::event!(
                target: TARGET,
                parent: &span,
                tracing::Level::DEBUG,
                mcp_edge.layer = by.as_str(),
                mcp_edge.reason = reason.as_str(),
                "refused"
            );
        }
        // Dropping the last handle closes the span: it ends now.
        drop(span);
    }
}

/// The event's attributes on its span.
fn record(span: &Span, event: &AuditEvent) {
    let method = event.mcp_method();
    let target = event.target();
    let mut name = String::with_capacity(32);
    match (method, target) {
        (Some(method), Some(target)) => {
            let _ = write!(name, "{method} {}", target.name());
        }
        (Some(method), None) => name.push_str(method),
        (None, _) => {
            let _ = write!(name, "{}", event.http_method());
        }
    }
    span.record("otel.name", name.as_str());
    if let Some(method) = method {
        span.record("mcp.method.name", method);
    }
    match target {
        Some(Target::Tool(tool)) => {
            span.record("gen_ai.tool.name", &**tool);
            span.record("gen_ai.operation.name", "execute_tool");
        }
        Some(Target::Prompt(prompt)) => {
            span.record("gen_ai.prompt.name", &**prompt);
        }
        Some(Target::Resource(uri)) => {
            span.record("mcp.resource.uri", &**uri);
        }
        _ => {}
    }
    if let Some(session) = event.session_id() {
        span.record("mcp.session.id", session.as_str());
    }
    if let Some(version) = event.protocol_version() {
        span.record("mcp.protocol.version", version.as_str());
    }
    if let Some(id) = event.jsonrpc_id() {
        span.record("jsonrpc.request.id", tracing::field::display(id));
    }
    span.record(
        "network.protocol.version",
        match event.http_version() {
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_3 => "3",
            http::Version::HTTP_10 => "1.0",
            _ => "1.1",
        },
    );
    if let Some(ip) = event.client_addr() {
        span.record("client.address", tracing::field::display(ip));
    }
    if let Some(port) = event.client_port() {
        span.record("client.port", i64::from(port));
    }
    if let Some(status) = event.status() {
        span.record("http.response.status_code", i64::from(status.as_u16()));
    }
    span.record("mcp_edge.request_id", event.request_id());
    let outcome = event.outcome();
    span.record("mcp_edge.outcome", outcome.as_str());
    if let Some(code) = outcome.code() {
        span.record("rpc.response.status_code", code);
    }
    if let Some(error) = event.error_type() {
        span.record("error.type", &*error);
        match outcome {
            Outcome::Refused { by, reason, .. } => {
                let mut description = String::with_capacity(48);
                let _ = write!(description, "refused by {by}: {reason}");
                span.record("otel.status_description", description.as_str());
            }
            _ => {
                span.record("otel.status_code", "error");
            }
        }
    }
}

/// `mcp.server.operation.duration` for one event, with bounded labels.
#[inline]
fn operation_metric(event: &AuditEvent) {
    #[cfg(feature = "metrics")]
    {
        let method = match event.mcp_method() {
            Some(method) => crate::protocol::known_method(method).unwrap_or("_other"),
            None => "_none",
        };
        // Only a name the server answered for: a made-up name never becomes a series.
        let tool = match (event.target(), event.outcome()) {
            (Some(Target::Tool(tool)), Outcome::Success | Outcome::ToolError) => Some(&**tool),
            _ => None,
        };
        let era = match event.era() {
            Some(Era::Legacy) => "legacy",
            Some(Era::Modern) => "modern",
            None => "none",
        };
        metrics::operation(
            method,
            tool,
            event.outcome().as_str(),
            era,
            event.duration(),
        );
    }
    #[cfg(not(feature = "metrics"))]
    let _ = event;
}
