//! Spans over OTLP: an MCP server behind mcp-edge whose per-message spans go to an
//! OpenTelemetry collector (Jaeger, Tempo, the OpenTelemetry Collector, …).
//!
//! ```text
//! cargo run --features otel --example otlp -- [--bind ADDR] [--endpoint URL] [--direct]
//! ```
//!
//! `--endpoint` is the collector's OTLP/HTTP traces URL (default
//! `http://127.0.0.1:4318/v1/traces`, or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); spans are sent
//! as protobuf (`http/protobuf`) in batches by the SDK's batch processor (its own thread, every
//! `OTEL_BSP_SCHEDULE_DELAY` ms, 5000 by default), and flushed at Ctrl-C. A quick collector:
//! `docker run -p 16686:16686 -p 4318:4318 jaegertracing/all-in-one`, then
//! <http://localhost:16686>.
//!
//! What reaches the collector: one span per MCP message, named `tools/call echo`,
//! `initialize`, … with the OpenTelemetry MCP attributes (`mcp.method.name`,
//! `gen_ai.tool.name`, `mcp.session.id`, `jsonrpc.request.id`, `error.type`, …), a `refused`
//! event when a layer refused the request, and as parent the caller's W3C `traceparent` (the
//! header, or `params._meta.traceparent`), so the server's spans join the client's trace.
//!
//! The wiring is the three statements marked `OTLP` below: an exporter, a tracer provider, and
//! a `tracing-opentelemetry` layer that only takes mcp-edge's spans (target
//! `mcp_edge::span`, level `DEBUG`), so the server's logging filter (`RUST_LOG`) stays
//! independent of what is traced.
//!
//! `--direct` exports the same spans without `tracing`: `AuditLayer::otel_spans` hands each
//! message's span straight to the provider's tracer when its outcome is known (a fraction of
//! the cost per message; see README "Observe it"), and no tracing-opentelemetry layer is
//! installed. `--root-ratio R` (with `--direct`) keeps that share of the spans that have no
//! caller's trace context; a caller's `sampled` flag decides for the others.

#[path = "common/tools.rs"]
mod tools;

use std::net::SocketAddr;

use axum::Router;
use mcp_edge::observe::OtelSpans;
use mcp_edge::serve::Server;
use mcp_edge::{AuditLayer, McpEdge};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318/v1/traces";
const USAGE: &str = "usage: cargo run --features otel --example otlp -- [--bind ADDR] \
                     [--endpoint URL] [--direct [--root-ratio R]]";

struct Options {
    bind: SocketAddr,
    endpoint: String,
    /// `--direct`: spans through `AuditLayer::otel_spans`, with this root ratio.
    direct: Option<f64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Options {
        bind,
        endpoint,
        direct,
    } = parse_args().unwrap_or_else(|error| {
        eprintln!("error: {error}\n{USAGE}");
        std::process::exit(2)
    });

    // OTLP (1/3): the exporter, OTLP/HTTP with protobuf bodies.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(&endpoint)
        .build()?;
    // OTLP (2/3): a tracer provider that batches spans off the request path.
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("mcp-edge-otlp")
                .build(),
        )
        .build();
    // OTLP (3/3): mcp-edge's spans (and only those) through tracing-opentelemetry; logs to
    // stderr as usual, filtered by RUST_LOG. With --direct, no such layer: audit hands the
    // spans to the tracer itself (below).
    let spans = Targets::new().with_target("mcp_edge::span", LevelFilter::DEBUG);
    let via_tracing = direct.is_none().then(|| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("mcp-edge"))
            .with_filter(spans)
    });
    tracing_subscriber::registry()
        .with(via_tracing)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())),
        )
        .init();
    let audit = AuditLayer::new(|_event| {});
    let audit = match direct {
        Some(ratio) => {
            audit.otel_spans(OtelSpans::new(provider.tracer("mcp-edge")).root_ratio(ratio))
        }
        None => audit,
    };

    // The MCP server behind the stack, as in `examples/server.rs`. Audit makes the spans; its
    // events go nowhere here (`AuditLayer::new(|_| {})`): spans alone.
    let rmcp_config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(mcp_edge::inspect::DEFAULT_MAX_BODY_BYTES);
    let mcp = StreamableHttpService::new(
        || Ok(tools::DemoTools::new()),
        LocalSessionManager::default().into(),
        rmcp_config,
    );
    let edge = McpEdge::builder().audit(audit);
    let app = Router::new().nest_service("/mcp", mcp).layer(edge);

    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("MCP endpoint: http://{}/mcp", listener.local_addr()?);
    println!("spans to: {endpoint}");
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    Server::new()
        .serve_with_shutdown(listener, app, ctrl_c)
        .await?;
    // Sends the spans still batched; it blocks (on the batch thread), so off the runtime.
    tokio::task::spawn_blocking(move || provider.shutdown()).await??;
    println!("spans flushed");
    Ok(())
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        bind: "127.0.0.1:8080".parse().expect("a valid address"),
        endpoint: std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned()),
        direct: None,
    };
    let mut ratio = 1.0;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--bind" => {
                let text = value()?;
                options.bind = text.parse().map_err(|e| format!("--bind `{text}`: {e}"))?;
            }
            "--endpoint" => options.endpoint = value()?,
            "--direct" => options.direct = Some(1.0),
            "--root-ratio" => {
                let text = value()?;
                ratio = text
                    .parse()
                    .map_err(|e| format!("--root-ratio `{text}`: {e}"))?;
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    options.direct = options.direct.map(|_| ratio);
    Ok(options)
}
