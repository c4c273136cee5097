//! [`OtelSpans`]: each MCP message's span handed straight to an OpenTelemetry tracer, once,
//! when its outcome is known.
//!
//! The `tracing` path (a `tracing` span per message, exported by `tracing-opentelemetry`)
//! pays for a subscriber registry slot, tracing-opentelemetry's per-span builder and the
//! conversion of every recorded field into an attribute, on top of the SDK's own work. Audit
//! already holds everything a span needs when the message ends (its attributes, its start
//! and end instants, the caller's trace context), so this path builds the span in one step:
//! one `Vec` of attributes (static keys, static values wherever the value is one of a known
//! set), the name, an explicit start and end time, the parent from the parsed
//! `traceparent`, and the span goes to the SDK's processor when it ends. The trace it joins,
//! its attributes and status are the same as the `tracing` path's.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt,
    TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};

use super::TraceContext;

/// Exports one OpenTelemetry span per MCP message straight to a tracer, bypassing
/// `tracing`; give it to [`AuditLayer::otel_spans`](crate::AuditLayer::otel_spans).
///
/// The spans are the ones the `tracing` path exports through `tracing-opentelemetry` (same
/// name, kind, attributes, status, `refused` event and parent), built when the message's
/// outcome is known rather than kept open: no `tracing` subscriber is involved, and a
/// program that also installs `tracing-opentelemetry` does not export them twice (audit then
/// opens no `tracing` span for the message).
///
/// # Sampling
/// Decided before any attribute is built, so a dropped span costs a flag test (or, for a
/// root, one draw of a thread-local generator):
/// - a message whose caller sent a trace context follows the caller's `sampled` flag (as the
///   SDK's default `ParentBased` sampler does);
/// - a message without one (a root span) is kept with probability
///   [`root_ratio`](OtelSpans::root_ratio) (default `1.0`: every root).
///
/// The tracer's own sampler still sees the spans this keeps; leave it at the SDK's default
/// (`ParentBased(AlwaysOn)`) and set the ratio here, where dropping costs nothing.
///
/// ```
/// # #[cfg(feature = "otel")] {
/// use mcp_edge::observe::OtelSpans;
/// use mcp_edge::{AuditLayer, McpEdge};
///
/// // Any `opentelemetry::trace::Tracer`: with the SDK,
/// // `SdkTracerProvider::builder().with_batch_exporter(exporter).build().tracer("mcp-edge")`.
/// let tracer = opentelemetry::trace::noop::NoopTracer::new();
/// let audit = AuditLayer::new(|_event| {}).otel_spans(OtelSpans::new(tracer).root_ratio(0.1));
/// let edge = McpEdge::builder().audit(audit);
/// # let _ = edge;
/// # }
/// ```
#[derive(Clone)]
pub struct OtelSpans {
    tracer: Arc<dyn Export>,
    /// A root is kept when a draw of 64 random bits is below this (`u64::MAX`: always).
    root_threshold: u64,
}

impl fmt::Debug for OtelSpans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelSpans")
            .field("root_threshold", &self.root_threshold)
            .finish_non_exhaustive()
    }
}

impl OtelSpans {
    /// Spans to `tracer` (an `SdkTracer`, or any other implementation of the API), every
    /// root kept.
    pub fn new<T>(tracer: T) -> Self
    where
        T: Tracer + Send + Sync + 'static,
    {
        OtelSpans {
            tracer: Arc::new(tracer),
            root_threshold: u64::MAX,
        }
    }

    /// The share of root spans (messages without a caller's trace context) kept, from `0.0`
    /// (none) to `1.0` (all, the default); values outside are clamped. A message with a
    /// trace context follows the caller's decision whatever this says.
    pub fn root_ratio(mut self, ratio: f64) -> Self {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        self.root_threshold = if ratio >= 1.0 {
            u64::MAX
        } else {
            // Exact enough: 2^64 × ratio, below 2^64.
            (ratio * 18_446_744_073_709_551_616.0) as u64
        };
        self
    }

    /// Whether the span of a message with this `parent` (the caller's trace context) is to
    /// be built at all.
    #[inline]
    pub(crate) fn sampled(&self, parent: Option<&TraceContext>) -> bool {
        match parent {
            Some(parent) => parent.is_sampled(),
            None => self.root_threshold == u64::MAX || next_draw() < self.root_threshold,
        }
    }

    /// Builds, ends and hands over one message's span.
    pub(crate) fn export(&self, span: MessageSpan<'_>) {
        self.tracer.export(span);
    }
}

/// One finished message, as audit knows it.
pub(crate) struct MessageSpan<'a> {
    /// `tools/call echo`, `initialize`, …
    pub(crate) name: Cow<'static, str>,
    /// The caller's trace context, when it sent one.
    pub(crate) parent: Option<&'a TraceContext>,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) attributes: Vec<KeyValue>,
    /// `Some` for an error status, with its description (empty when there is nothing to
    /// add to `error.type`).
    pub(crate) error: Option<Cow<'static, str>>,
    /// A refusal's layer and reason: a `refused` event at the span's end.
    pub(crate) refused: Option<(&'static str, &'static str)>,
}

/// A tracer behind a pointer, so [`OtelSpans`] (and the audit layer holding it) stays one
/// type whatever tracer the program uses.
trait Export: Send + Sync {
    fn export(&self, span: MessageSpan<'_>);
}

impl<T: Tracer + Send + Sync> Export for T {
    fn export(&self, span: MessageSpan<'_>) {
        let parent = match span.parent {
            Some(parent) => Context::new().with_remote_span_context(remote(parent)),
            None => Context::new(),
        };
        let events = span.refused.map(|(layer, reason)| {
            vec![Event::new(
                "refused",
                span.end,
                vec![
                    KeyValue::new("mcp_edge.layer", layer),
                    KeyValue::new("mcp_edge.reason", reason),
                ],
                0,
            )]
        });
        let builder = SpanBuilder {
            span_kind: Some(SpanKind::Server),
            name: span.name,
            start_time: Some(span.start),
            attributes: Some(span.attributes),
            events,
            links: None,
        };
        let mut otel = self.build_with_context(builder, &parent);
        if let Some(description) = span.error {
            otel.set_status(Status::Error { description });
        }
        otel.end_with_timestamp(span.end);
    }
}

/// The caller's span, as OpenTelemetry's remote parent.
fn remote(parent: &TraceContext) -> SpanContext {
    let state = parent
        .trace_state()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    SpanContext::new(
        TraceId::from_bytes(parent.trace_id()),
        SpanId::from_bytes(parent.span_id()),
        TraceFlags::new(parent.flags()),
        true,
        state,
    )
}

/// 64 random bits from a thread-local xorshift generator seeded once per thread from the OS
/// (a sampling draw, not a secret).
fn next_draw() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|state| {
        let mut x = state.get();
        if x == 0 {
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            // Never zero (xorshift's fixed point), even without OS randomness.
            x = u64::from_le_bytes(seed) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(flags: &str) -> TraceContext {
        TraceContext::parse(
            &format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}"),
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_caller_decides_for_its_own_trace() {
        let spans = OtelSpans::new(opentelemetry::trace::noop::NoopTracer::new()).root_ratio(0.0);
        assert!(spans.sampled(Some(&parent("01"))));
        assert!(!spans.sampled(Some(&parent("00"))));
        assert!(!spans.sampled(None));
    }

    #[test]
    fn roots_are_kept_at_about_the_ratio() {
        let all = OtelSpans::new(opentelemetry::trace::noop::NoopTracer::new());
        assert!((0..1000).all(|_| all.sampled(None)));
        let tenth = all.root_ratio(0.1);
        let kept = (0..100_000).filter(|_| tenth.sampled(None)).count();
        assert!((9_000..11_000).contains(&kept), "{kept}");
    }
}
