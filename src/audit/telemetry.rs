//! The span of each MCP message, and its operation metric, from what audit already pairs.
//!
//! A span opens when the request arrives (the first message's) or when the body tells a
//! batch apart (the others'), stays open while the response is produced, and closes with the
//! message's audit event: its attributes are the event's, named after the OpenTelemetry MCP
//! conventions. The spans are never entered: a span's parent (the W3C trace context, which
//! may only be known from the body's `_meta`) can then still be set when the outcome is
//! known, and an OpenTelemetry span ends when the event is emitted, not when a poll last
//! left it.

use std::sync::OnceLock;

use http::HeaderMap;
use tracing::Span;
use tracing::field::{Empty, Field, Value};

use super::event::{AuditEvent, Outcome};
use super::layer::Config;
#[cfg(feature = "metrics")]
use crate::observe::metrics;
#[cfg(feature = "otel")]
use crate::observe::{OtelSpans, TraceContext};
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
    /// The spans go to the configured [`OtelSpans`] when each message ends, not through
    /// `tracing`.
    #[cfg(feature = "otel")]
    direct: bool,
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
    /// Opens the first message's span (when spans are on and a subscriber wants it) and reads
    /// the trace context headers; with [`OtelSpans`] configured, opens nothing and only reads
    /// the headers.
    pub(crate) fn start(config: &Config, headers: &HeaderMap) -> Self {
        #[cfg(feature = "otel")]
        if config.spans && config.otel.is_some() {
            return Spans {
                first: Span::none(),
                rest: Vec::new(),
                header_parent: TraceContext::from_headers(headers),
                enabled: false,
                direct: true,
            };
        }
        let first = if config.spans {
            new_span()
        } else {
            Span::none()
        };
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
            #[cfg(feature = "otel")]
            direct: false,
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
    pub(crate) fn finish(&mut self, event: &AuditEvent, config: &Config) {
        operation_metric(event);
        #[cfg(feature = "otel")]
        if self.direct {
            if let Some(otel) = &config.otel {
                direct::export(otel, self.header_parent.as_ref(), event);
            }
            return;
        }
        #[cfg(not(feature = "otel"))]
        let _ = config;
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

/// The span's fields, looked up once: every span comes from the one callsite in
/// [`new_span`], so its `Field`s are the same for the life of the process.
struct Fields {
    name: Field,
    status_code: Field,
    status_description: Field,
    method: Field,
    operation: Field,
    tool: Field,
    prompt: Field,
    resource: Field,
    session: Field,
    version: Field,
    jsonrpc_id: Field,
    network_version: Field,
    client_address: Field,
    client_port: Field,
    http_status: Field,
    error_type: Field,
    rpc_status: Field,
    outcome: Field,
    request_id: Field,
}

fn fields(meta: &'static tracing::Metadata<'static>) -> &'static Fields {
    static FIELDS: OnceLock<Fields> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let set = meta.fields();
        let field = |name: &str| set.field(name).expect("declared in new_span");
        Fields {
            name: field("otel.name"),
            status_code: field("otel.status_code"),
            status_description: field("otel.status_description"),
            method: field("mcp.method.name"),
            operation: field("gen_ai.operation.name"),
            tool: field("gen_ai.tool.name"),
            prompt: field("gen_ai.prompt.name"),
            resource: field("mcp.resource.uri"),
            session: field("mcp.session.id"),
            version: field("mcp.protocol.version"),
            jsonrpc_id: field("jsonrpc.request.id"),
            network_version: field("network.protocol.version"),
            client_address: field("client.address"),
            client_port: field("client.port"),
            http_status: field("http.response.status_code"),
            error_type: field("error.type"),
            rpc_status: field("rpc.response.status_code"),
            outcome: field("mcp_edge.outcome"),
            request_id: field("mcp_edge.request_id"),
        }
    })
}

/// `otel.name`: `tools/call echo`, `initialize`, or the HTTP method when no MCP message was
/// read; written straight into the subscriber's buffer.
struct SpanName<'a>(&'a AuditEvent);

impl std::fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0.mcp_method(), self.0.target()) {
            (Some(method), Some(target)) => write!(f, "{method} {}", target.name()),
            (Some(method), None) => f.write_str(method),
            (None, _) => write!(f, "{}", self.0.http_method()),
        }
    }
}

/// The event's attributes on its span, in one `record` call: one dispatch to the subscriber
/// (and one lock of the span's OpenTelemetry data) instead of one per attribute. An absent
/// value (`None`) records nothing.
fn record(span: &Span, event: &AuditEvent) {
    let Some(meta) = span.metadata() else {
        return;
    };
    let f = fields(meta);
    let (tool, prompt, resource) = match event.target() {
        Some(Target::Tool(tool)) => (Some(&**tool), None, None),
        Some(Target::Prompt(prompt)) => (None, Some(&**prompt), None),
        Some(Target::Resource(uri)) => (None, None, Some(&**uri)),
        _ => (None, None, None),
    };
    let name = tracing::field::display(SpanName(event));
    let method = event.mcp_method();
    let operation = tool.map(|_| "execute_tool");
    let session = event.session_id().map(|s| s.as_str());
    let version = event.protocol_version().map(|v| v.as_str());
    let jsonrpc_id = event.jsonrpc_id().map(tracing::field::display);
    let network_version = match event.http_version() {
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        http::Version::HTTP_10 => "1.0",
        _ => "1.1",
    };
    let client_address = event.client_addr().map(tracing::field::display);
    let client_port = event.client_port().map(i64::from);
    let http_status = event.status().map(|s| i64::from(s.as_u16()));
    let outcome = event.outcome();
    let rpc_status = outcome.code();
    // Only for a failure: a success records no error and allocates nothing here.
    let error_type = event.error_type();
    let (status_code, status_description) = match (&error_type, outcome) {
        (None, _) => (None, None),
        (Some(_), Outcome::Refused { by, reason, .. }) => {
            (None, Some(format!("refused by {by}: {reason}")))
        }
        (Some(_), _) => (Some("error"), None),
    };
    let error_type = error_type.as_deref();
    let status_description = status_description.as_deref();
    let request_id = event.request_id();
    let outcome_name = outcome.as_str();
    let values: [(&Field, Option<&dyn Value>); 19] = [
        (&f.name, Some(&name)),
        (&f.method, Some(&method)),
        (&f.operation, Some(&operation)),
        (&f.tool, Some(&tool)),
        (&f.prompt, Some(&prompt)),
        (&f.resource, Some(&resource)),
        (&f.session, Some(&session)),
        (&f.version, Some(&version)),
        (&f.jsonrpc_id, Some(&jsonrpc_id)),
        (&f.network_version, Some(&network_version)),
        (&f.client_address, Some(&client_address)),
        (&f.client_port, Some(&client_port)),
        (&f.http_status, Some(&http_status)),
        (&f.request_id, Some(&request_id)),
        (&f.outcome, Some(&outcome_name)),
        (&f.rpc_status, Some(&rpc_status)),
        (&f.error_type, Some(&error_type)),
        (&f.status_code, Some(&status_code)),
        (&f.status_description, Some(&status_description)),
    ];
    // `value_set` and `record_all` are what tracing's own macros expand to (`Span::record`
    // is `record_all` of a one-element set): public, hidden from the docs for that reason.
    span.record_all(&meta.fields().value_set(&values));
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

/// The [`OtelSpans`] path: the event's attributes in one `Vec`, static values wherever the
/// value is one of a known set, and the span built, ended and handed to the tracer at once.
#[cfg(feature = "otel")]
mod direct {
    use std::borrow::Cow;
    use std::fmt::Write as _;

    use opentelemetry::{KeyValue, StringValue, Value};

    use super::{AuditEvent, OtelSpans, Outcome, Target, TraceContext};
    use crate::observe::MessageSpan;
    use crate::protocol::{RequestId, known_method};

    /// The most attributes one span carries (see [`export`]).
    const MAX_ATTRIBUTES: usize = 17;

    pub(super) fn export(otel: &OtelSpans, header: Option<&TraceContext>, event: &AuditEvent) {
        let from_meta;
        let parent = match header {
            Some(parent) => Some(parent),
            None => {
                from_meta = event
                    .traceparent()
                    .and_then(|tp| TraceContext::parse(tp, event.tracestate()));
                from_meta.as_ref()
            }
        };
        // Before any attribute work: a dropped span costs nothing more.
        if !otel.sampled(parent) {
            return;
        }
        let outcome = event.outcome();
        let error_type = event.error_type();
        let error = match (&error_type, outcome) {
            (None, _) => None,
            (Some(_), Outcome::Refused { by, reason, .. }) => {
                Some(Cow::Owned(format!("refused by {by}: {reason}")))
            }
            (Some(_), _) => Some(Cow::Borrowed("")),
        };
        let refused = match outcome {
            Outcome::Refused { by, reason, .. } => Some((by.as_str(), reason.as_str())),
            _ => None,
        };
        let end = event.start + event.duration();
        otel.export(MessageSpan {
            name: name(event),
            parent,
            start: event.start,
            end,
            attributes: attributes(event, error_type),
            error,
            refused,
        });
    }

    /// A method name: static when MCP knows it (no copy), else owned.
    fn method_value(method: &str) -> StringValue {
        match known_method(method) {
            Some(known) => known.into(),
            None => method.to_owned().into(),
        }
    }

    /// `tools/call echo`, `initialize`, or the HTTP method when no MCP message was read.
    fn name(event: &AuditEvent) -> Cow<'static, str> {
        match (event.mcp_method(), event.target()) {
            (Some(method), Some(target)) => {
                let target = target.name();
                let mut name = String::with_capacity(method.len() + 1 + target.len());
                name.push_str(method);
                name.push(' ');
                name.push_str(target);
                Cow::Owned(name)
            }
            (Some(method), None) => match known_method(method) {
                Some(known) => Cow::Borrowed(known),
                None => Cow::Owned(method.to_owned()),
            },
            (None, _) => match *event.http_method() {
                http::Method::GET => Cow::Borrowed("GET"),
                http::Method::POST => Cow::Borrowed("POST"),
                http::Method::DELETE => Cow::Borrowed("DELETE"),
                ref other => Cow::Owned(other.as_str().to_owned()),
            },
        }
    }

    /// The attributes the `tracing` path records (see `record`), under the same keys.
    fn attributes(event: &AuditEvent, error_type: Option<Cow<'static, str>>) -> Vec<KeyValue> {
        let string =
            |key: &'static str, value: StringValue| KeyValue::new(key, Value::String(value));
        let mut out = Vec::with_capacity(MAX_ATTRIBUTES);
        if let Some(method) = event.mcp_method() {
            out.push(string("mcp.method.name", method_value(method)));
        }
        match event.target() {
            Some(Target::Tool(tool)) => {
                out.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
                out.push(string("gen_ai.tool.name", String::from(&**tool).into()));
            }
            Some(Target::Prompt(prompt)) => {
                out.push(string("gen_ai.prompt.name", String::from(&**prompt).into()));
            }
            Some(Target::Resource(uri)) => {
                out.push(string("mcp.resource.uri", String::from(&**uri).into()));
            }
            _ => {}
        }
        if let Some(session) = event.session_id() {
            out.push(string("mcp.session.id", session.as_str().to_owned().into()));
        }
        if let Some(version) = event.protocol_version() {
            out.push(KeyValue::new("mcp.protocol.version", version.as_str()));
        }
        if let Some(id) = event.jsonrpc_id() {
            let id: StringValue = match id {
                RequestId::String(id) => id.clone().into(),
                RequestId::Number(n) => n.to_string().into(),
            };
            out.push(string("jsonrpc.request.id", id));
        }
        out.push(KeyValue::new("network.protocol.name", "http"));
        let network_version = match event.http_version() {
            http::Version::HTTP_2 => "2",
            http::Version::HTTP_3 => "3",
            http::Version::HTTP_10 => "1.0",
            _ => "1.1",
        };
        out.push(KeyValue::new("network.protocol.version", network_version));
        out.push(KeyValue::new("network.transport", "tcp"));
        if let Some(address) = event.client_addr() {
            // Sized once: the longest IPv6 text is 39 bytes.
            let mut text = String::with_capacity(39);
            let _ = write!(text, "{address}");
            out.push(string("client.address", text.into()));
        }
        if let Some(port) = event.client_port() {
            out.push(KeyValue::new("client.port", i64::from(port)));
        }
        if let Some(status) = event.status() {
            out.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
        }
        out.push(string(
            "mcp_edge.request_id",
            event.request_id().to_owned().into(),
        ));
        let outcome = event.outcome();
        out.push(KeyValue::new("mcp_edge.outcome", outcome.as_str()));
        if let Some(code) = outcome.code() {
            out.push(KeyValue::new("rpc.response.status_code", code));
        }
        if let Some(error_type) = error_type {
            out.push(string("error.type", error_type.into()));
        }
        debug_assert!(out.len() <= MAX_ATTRIBUTES);
        out
    }
}
