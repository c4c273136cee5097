//! The observability flag of `examples/server.rs` and `examples/gateway.rs`: `--metrics ADDR`
//! serves `/metrics` (Prometheus text format, from the `metrics` facade through
//! `metrics-exporter-prometheus`), `/healthz` and `/readyz` on a listener of their own,
//! outside the guard, so a probe from a pod address or a scraper is never refused as a
//! foreign Host. `--otel-noop` sends mcp-edge's spans through `tracing-opentelemetry` to an
//! exporter that drops them: what spans cost, without a collector (`examples/otlp.rs` exports
//! them for real).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mcp_edge::observe::Health;
use mcp_edge::observe::metrics::{OPERATION_BUCKETS, OPERATION_DURATION, SESSION_DURATION};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const METRICS_USAGE: &str =
    "  --metrics ADDR      serve /metrics (Prometheus), /healthz and /readyz on ADDR, a
                      listener of their own (metrics need `--features metrics`)
  --otel-noop         export mcp-edge's spans through tracing-opentelemetry to an
                      exporter that drops them (cost measurements; `--features otel`)";

/// `--metrics ADDR`, `--otel-noop`.
#[derive(Default)]
pub struct MetricsOptions {
    pub addr: Option<SocketAddr>,
    otel_noop: bool,
}

impl MetricsOptions {
    /// Takes `--metrics ADDR` and `--otel-noop`; `Ok(false)` for any other flag.
    pub fn parse_flag(
        &mut self,
        flag: &str,
        mut value: impl FnMut() -> Option<String>,
    ) -> Result<bool, String> {
        if flag == "--otel-noop" {
            self.otel_noop = true;
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
    /// `info`), and with `--otel-noop` mcp-edge's spans (target `mcp_edge::span`, `DEBUG`,
    /// whatever `RUST_LOG` says) to a batch exporter that drops them.
    pub fn init_tracing(&self) {
        let filter = || {
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
        };
        #[cfg(feature = "otel")]
        if self.otel_noop {
            use tracing_subscriber::Layer as _;
            use tracing_subscriber::layer::SubscriberExt as _;
            use tracing_subscriber::util::SubscriberInitExt as _;
            tracing_subscriber::registry()
                .with(tracing_subscriber::fmt::layer().with_filter(filter()))
                .with(noop_spans::layer())
                .init();
            return;
        }
        if self.otel_noop {
            eprintln!("note: --otel-noop needs --features otel; spans stay off");
        }
        tracing_subscriber::fmt().with_env_filter(filter()).init();
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

/// `--otel-noop`: spans exported to nowhere, through the SDK's batch processor as a real
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

    pub fn layer<S>() -> impl Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(Discard)
            .build();
        let spans = Targets::new().with_target("mcp_edge::span", LevelFilter::DEBUG);
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("mcp-edge"))
            .with_filter(spans)
    }
}
