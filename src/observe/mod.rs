//! Observability: what the layers record for traces and metrics, and health for probes.
//!
//! Operators watch a gateway through traces, metrics and probes. This module holds the pieces
//! every layer shares, and depends on nothing else in the crate:
//!
//! - **Spans.** The [`AuditLayer`](crate::AuditLayer), which already pairs every MCP message
//!   with its outcome, opens one `tracing` span per message (per element of a batch) named and
//!   attributed after the OpenTelemetry MCP conventions (`mcp.method.name`,
//!   `gen_ai.tool.name`, `mcp.session.id`, `jsonrpc.request.id`, `error.type`, …), kept open
//!   until the outcome is known (for a stream, the matching response event), with an event for
//!   a refusal (which layer, why). With the `otel` feature the caller's W3C
//!   [`TraceContext`] (the `traceparent`/`tracestate` headers, or the message's `_meta`)
//!   becomes the span's parent through `tracing-opentelemetry`. The spans are at `DEBUG` level (as tower-http's `TraceLayer`: a server logging at `INFO` pays nothing for them)
//!   with the target `mcp_edge::span`; when no subscriber wants them, they cost a cached
//!   level check.
//! - **Spans straight to OpenTelemetry** (feature `otel`): [`OtelSpans`], given to
//!   [`AuditLayer::otel_spans`](crate::AuditLayer::otel_spans), exports the same spans without
//!   `tracing`: each is built once when its message ends (the attributes in one `Vec`, explicit
//!   start and end times, the parent from the parsed trace context) and handed to the SDK,
//!   about a third of the instructions of the `tracing-opentelemetry` path, and sampled
//!   (the caller's flag, a ratio for roots) before any attribute is built. Pick it unless you
//!   want the spans inside `tracing` too (other layers, logs of span fields).
//! - **Metrics** (feature `metrics`): [`metrics`] lists the names and why the `metrics`
//!   facade.
//! - **Health**: [`Health`] answers `/healthz` and `/readyz` from checks of your choosing.
//!
//! Why spans live in the audit layer rather than a layer of their own: the outcome of a
//! message inside an SSE stream is only known by reading the stream, which audit already does
//! once; a second layer would parse every stream again.
//!
//! ```
//! use mcp_edge::{AuditLayer, McpEdge};
//!
//! // Spans (and, with the `metrics` feature, operation metrics) without audit events.
//! let edge = McpEdge::builder().audit(AuditLayer::new(|_event| {}));
//! # let _ = edge;
//! ```

mod health;
pub mod metrics;
#[cfg(feature = "otel")]
mod otel;
mod trace;

pub use health::{
    DEFAULT_CHECK_TIMEOUT, Health, HealthFuture, HealthService, Readiness, ReadyFlag,
};
#[cfg(feature = "otel")]
pub(crate) use otel::MessageSpan;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use otel::OtelSpans;
pub use trace::TraceContext;
