//! The observability flag of `examples/server.rs` and `examples/gateway.rs`: `--metrics ADDR`
//! serves `/metrics` (Prometheus text format, from the `metrics` facade through
//! `metrics-exporter-prometheus`), `/healthz` and `/readyz` on a listener of their own,
//! outside the guard, so a probe from a pod address or a scraper is never refused as a
//! foreign Host. `--otel-noop` hands mcp-edge's spans straight to the OpenTelemetry SDK
//! (`AuditLayer::otel_spans`) whose batch exporter drops them, and `--otel-noop-tracing` sends
//! the same spans through `tracing` and `tracing-opentelemetry` instead: what spans cost on
//! each path, without a collector (`examples/otlp.rs` exports them for real).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mcp_edge::audit::AuditLayer;
use mcp_edge::observe::Health;
use mcp_edge::observe::metrics::{OPERATION_BUCKETS, OPERATION_DURATION, SESSION_DURATION};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const METRICS_USAGE: &str =
    "  --metrics ADDR      serve /metrics (Prometheus), /healthz and /readyz on ADDR, a
                      listener of their own (metrics need `--features metrics`)
  --otel-noop         hand mcp-edge's spans straight to the OpenTelemetry SDK
                      (AuditLayer::otel_spans), batched to an exporter that drops
                      them (cost measurements; `--features otel`)
  --otel-noop-tracing the same through tracing and tracing-opentelemetry";

/// `--metrics ADDR`, `--otel-noop`, `--otel-noop-tracing`.
#[derive(Default)]
pub struct MetricsOptions {
    pub addr: Option<SocketAddr>,
    otel_noop: Option<SpanPath>,
}

/// Which way `--otel-noop*` exports the spans.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SpanPath {
    /// `AuditLayer::otel_spans`: built once per message, straight to the SDK.
    Direct,
    /// `tracing` spans through `tracing-opentelemetry`.
    Tracing,
}

impl MetricsOptions {
    /// Takes `--metrics ADDR`, `--otel-noop` and `--otel-noop-tracing`; `Ok(false)` for any
    /// other flag.
    pub fn parse_flag(
        &mut self,
        flag: &str,
        mut value: impl FnMut() -> Option<String>,
    ) -> Result<bool, String> {
        let path = match flag {
            "--otel-noop" => Some(SpanPath::Direct),
            "--otel-noop-tracing" => Some(SpanPath::Tracing),
            _ => None,
        };
        if path.is_some() {
            self.otel_noop = path;
            return Ok(true);
        }
        if flag != "--metrics" {
            return Ok(false);
        }
        let text = value().ok_or("--metrics needs an address, e.g. 127.0.0.1:9090")?;
        let addr = text
            .parse()
            .map_err(|e| format!("invalid --metrics address `{text}`: {e}"))?;
        self.addr = Some(addr);
        Ok(true)
    }

    /// Installs the tracing subscriber: logs to stderr filtered by `RUST_LOG` (default
    /// `info`), and with `--otel-noop-tracing` mcp-edge's spans (target `mcp_edge::span`,
    /// `DEBUG`, whatever `RUST_LOG` says) to a batch exporter that drops them.
    pub fn init_tracing(&self) {
        let filter = || {
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
        };
        #[cfg(feature = "otel")]
        if self.otel_noop == Some(SpanPath::Tracing) {
            use tracing_subscriber::Layer as _;
            use tracing_subscriber::layer::SubscriberExt as _;
            use tracing_subscriber::util::SubscriberInitExt as _;
            tracing_subscriber::registry()
                .with(tracing_subscriber::fmt::layer().with_filter(filter()))
                .with(noop_spans::layer())
                .init();
            return;
        }
        if self.otel_noop.is_some() && !cfg!(feature = "otel") {
            eprintln!("note: --otel-noop needs --features otel; spans stay off");
        }
        tracing_subscriber::fmt().with_env_filter(filter()).init();
    }

    /// The audit layer, with `--otel-noop` handing its spans straight to the SDK
    /// (`AuditLayer::otel_spans`) and a batch exporter that drops them.
    pub fn audit<K>(&self, layer: AuditLayer<K>) -> AuditLayer<K> {
        #[cfg(feature = "otel")]
        if self.otel_noop == Some(SpanPath::Direct) {
            return layer.otel_spans(mcp_edge::observe::OtelSpans::new(noop_spans::tracer()));
        }
        layer
    }

    /// Installs the Prometheus recorder (before any layer records) when `--metrics` was
    /// given.
    pub fn install(&self) -> Option<PrometheusHandle> {
        self.addr?;
        if !cfg!(feature = "metrics") {
            eprintln!(
                "note: --metrics without the metrics feature serves health only; \
                 build with --features metrics for the counters"
            );
        }
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(OPERATION_DURATION.into()), &OPERATION_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(SESSION_DURATION.into()), &SESSION_BUCKETS)
            })
            .expect("buckets are not empty")
            .install_recorder()
            .unwrap_or_else(|error| {
                eprintln!("error: --metrics: {error}");
                std::process::exit(2)
            });
        mcp_edge::observe::metrics::describe();
        // The recorder keeps every histogram sample until upkeep sorts it into buckets: run
        // it every few seconds (as the exporter's own `install()` does), so memory stays flat
        // between scrapes and its cost shows up where it is paid.
        let upkeep = handle.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        });
        Some(handle)
    }
}

/// Session lifetimes, in seconds: a minute to a day.
const SESSION_BUCKETS: [f64; 8] = [1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0];

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until the process ends. `before_scrape`
/// runs before each `/metrics` render (to set gauges read from elsewhere, such as the session
/// store's count).
pub async fn serve<F, Fut>(
    addr: SocketAddr,
    handle: Option<PrometheusHandle>,
    health: Health,
    before_scrape: F,
) -> std::io::Result<SocketAddr>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let before_scrape = Arc::new(before_scrape);
    let metrics = move || {
        let handle = handle.clone();
        let before_scrape = Arc::clone(&before_scrape);
        async move {
            before_scrape().await;
            match handle {
                Some(handle) => handle.render(),
                None => String::new(),
            }
        }
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .fallback_service(health.service());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("metrics listener failed: {error}");
        }
    });
    Ok(addr)
}

/// `--otel-noop*`: spans exported to nowhere, through the SDK's batch processor as a real
/// exporter would get them.
#[cfg(feature = "otel")]
mod noop_spans {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::{LevelFilter, Targets};

    #[derive(Debug)]
    struct Discard;

    impl SpanExporter for Discard {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            drop(batch);
            Ok(())
        }
    }

    /// A tracer whose batch processor hands the spans to [`Discard`].
    pub fn tracer() -> opentelemetry_sdk::trace::SdkTracer {
        SdkTracerProvider::builder()
            .with_batch_exporter(Discard)
            .build()
            .tracer("mcp-edge")
    }

    /// `--otel-noop-tracing`: tracing-opentelemetry's layer over [`tracer`], for mcp-edge's
    /// spans only.
    pub fn layer<S>() -> impl Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let spans = Targets::new().with_target("mcp_edge::span", LevelFilter::DEBUG);
        tracing_opentelemetry::layer()
            .with_tracer(tracer())
            .with_filter(spans)
    }
}
