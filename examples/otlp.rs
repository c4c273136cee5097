//! Spans over OTLP: an MCP server behind mcp-edge whose per-message spans go to an
//! OpenTelemetry collector (Jaeger, Tempo, the OpenTelemetry Collector, …).
//!
//! ```text
//! cargo run --features otel --example otlp -- [--bind ADDR] [--endpoint URL]
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

#[path = "common/tools.rs"]
mod tools;

use std::net::SocketAddr;

use axum::Router;
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
const USAGE: &str =
    "usage: cargo run --features otel --example otlp -- [--bind ADDR] [--endpoint URL]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (bind, endpoint) = parse_args().unwrap_or_else(|error| {
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
    // stderr as usual, filtered by RUST_LOG.
    let spans = Targets::new().with_target("mcp_edge::span", LevelFilter::DEBUG);
    tracing_subscriber::registry()
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("mcp-edge"))
                .with_filter(spans),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())),
        )
        .init();

    // The MCP server behind the stack, as in `examples/server.rs`. Audit opens the spans; its
    // events go nowhere here (`AuditLayer::new(|_| {})`): spans alone.
    let rmcp_config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(mcp_edge::inspect::DEFAULT_MAX_BODY_BYTES);
    let mcp = StreamableHttpService::new(
        || Ok(tools::DemoTools::new()),
        LocalSessionManager::default().into(),
        rmcp_config,
    );
    let edge = McpEdge::builder().audit(AuditLayer::new(|_event| {}));
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

fn parse_args() -> Result<(SocketAddr, String), String> {
    let mut bind: SocketAddr = "127.0.0.1:8080".parse().expect("a valid address");
    let mut endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--bind" => {
                let text = value()?;
                bind = text.parse().map_err(|e| format!("--bind `{text}`: {e}"))?;
            }
            "--endpoint" => endpoint = value()?,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok((bind, endpoint))
}
