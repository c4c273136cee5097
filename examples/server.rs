//! An MCP server behind mcp-edge: `cargo run --example server`.
//!
//! The MCP server itself is an ordinary rmcp 3.11 tool server (tools `echo`, `slow_count` and
//! `whoami`, in `examples/common/tools.rs`; put your own `ServerHandler` there). This file shows
//! how to put mcp-edge's layers in front of it and serve it properly.
//!
//! Flags:
//!   --bind ADDR         address to listen on (default 127.0.0.1:8080; env MCP_EDGE_BIND)
//!   --allow-host NAME   accept this Host (repeatable; default: localhost, 127.0.0.1, [::1])
//!   --bare              serve the same rmcp server without mcp-edge (rmcp defaults), to compare
//!   --audit-log PATH    append audit events to PATH as hash-chained JSON lines (check it with
//!                       `cargo run --example audit_verify -- PATH`); without it, audit events
//!                       go to tracing on stderr (target `mcp_edge::audit`)
//!   --audit-key KEYFILE sign that log in checkpoints (Ed25519 PEM key; or env MCP_EDGE_AUDIT_KEY)
//!   --session-mode M    observe (default) or enforce: who is the authority on legacy sessions
//!   --redis URL         keep session records in Redis (build with `--features redis`)
//!   --token TOKEN | --jwks-url URL --issuer ISS --audience AUD
//!                       require a bearer token (static, or a JWT from your identity provider)
//!   --require-scope TOOL=SCOPE   per-tool scope (repeatable); --public-url URL for the metadata
//!   --heartbeat SECS    SSE heartbeat after SECS of quiet (default 15; 0 turns it off)
//!   --limit RULE        e.g. 'tools/call:deploy_*=10/min per principal' (repeatable; 429
//!                       past it; with --redis the budgets are shared through Redis)
//!   --metrics ADDR      serve /metrics (Prometheus; build with `--features metrics`),
//!                       /healthz and /readyz on ADDR, outside the guard (not ready while
//!                       draining, Redis is down, or before the first --jwks-url fetch)
//!   --otel-noop         spans straight to the OpenTelemetry SDK (`AuditLayer::otel_spans`),
//!                       batched to an exporter that drops them (`--features otel`; what
//!                       spans cost; examples/otlp.rs exports); `--otel-noop-tracing` the
//!                       same through tracing-opentelemetry
//!
//! Ctrl-C drains open SSE streams first (SseLayer + Drain): resumable 2025-11-25 streams get
//! `retry:` and close at an event boundary, others may finish for up to 5 s.
//!
//! Log level: `RUST_LOG=debug cargo run --example server`.

#[path = "common/audit.rs"]
mod audit;
#[path = "common/auth.rs"]
mod auth;
#[path = "common/limit.rs"]
mod limit;
#[path = "common/metrics.rs"]
mod metrics;
#[path = "common/shutdown.rs"]
mod shutdown;
#[path = "common/tools.rs"]
mod tools;

use std::{net::SocketAddr, time::Duration};

use axum::Router;
use mcp_edge::serve::Server;
use mcp_edge::session::SessionMode;
use mcp_edge::sse::Drain;
use mcp_edge::store::SessionStore as _;
use mcp_edge::{GuardLayer, InspectLayer, McpEdge, SessionLayer, SseLayer};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// How long Ctrl-C lets non-resumable SSE streams finish before closing them.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
const USAGE: &str = "usage: cargo run --example server -- [--bind ADDR] [--allow-host NAME]...

  --bind ADDR         address to listen on (default 127.0.0.1:8080; env MCP_EDGE_BIND)
  --allow-host NAME   accept requests for this Host (repeatable; e.g. mcp.example.com or
                      mcp.example.com:8443); default: localhost, 127.0.0.1, [::1] only
  --bare              serve the same rmcp server without mcp-edge, with rmcp's default
                      config, for comparison
  --heartbeat SECS    SSE heartbeat comment after SECS of quiet on a stream (default 15;
                      keep it below your proxy's idle timeout; 0 turns it off)
  --session-mode M    observe (default: record sessions, the server stays the authority) or
                      enforce (the edge answers 400/404 for missing, unknown, expired or
                      foreign sessions, and applies idle TTL and lifetime)
  --redis URL         keep session records in Redis, shared by several instances (needs
                      `--features redis`; with `--features redis,rmcp` rmcp's own session
                      state goes there too, so replicas can restore each other's sessions, and
                      its event log (rmcp's EventStore), so a stream cut on one replica resumes
                      on another; event ids are sealed to their session (rmcp does not check
                      that a Last-Event-ID belongs to the session; key: MCP_EDGE_RESUME_KEY,
                      64 hex digits, the same on every replica)";

/// Command line options, parsed by hand to keep the example dependency-free.
struct Options {
    bind: SocketAddr,
    allow_hosts: Vec<String>,
    bare: bool,
    audit_log: Option<std::path::PathBuf>,
    audit_key: Option<std::path::PathBuf>,
    heartbeat: Duration,
    session_mode: SessionMode,
    redis: Option<String>,
    auth: auth::AuthOptions,
    limits: limit::LimitOptions,
    metrics: metrics::MetricsOptions,
}

fn parse_options() -> Result<Options, String> {
    let mut bind = std::env::var("MCP_EDGE_BIND").unwrap_or_else(|_| DEFAULT_BIND.to_owned());
    let mut allow_hosts = Vec::new();
    let mut bare = false;
    let mut audit_log = None;
    let mut audit_key = None;
    let mut heartbeat = mcp_edge::sse::DEFAULT_HEARTBEAT;
    let mut session_mode = SessionMode::Observe;
    let mut redis = None;
    let mut auth = auth::AuthOptions::default();
    let mut limits = limit::LimitOptions::default();
    let mut metrics = metrics::MetricsOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "--bind" => bind = value().ok_or("--bind needs an address")?,
            "--allow-host" => allow_hosts.push(value().ok_or("--allow-host needs a host name")?),
            "--bare" => bare = true,
            "--audit-log" => audit_log = Some(value().ok_or("--audit-log needs a path")?.into()),
            "--audit-key" => audit_key = Some(value().ok_or("--audit-key needs a path")?.into()),
            "--heartbeat" => {
                let secs = value().ok_or("--heartbeat needs a number of seconds")?;
                let secs: u64 = secs
                    .parse()
                    .map_err(|e| format!("invalid --heartbeat `{secs}`: {e}"))?;
                heartbeat = Duration::from_secs(secs);
            }
            "--session-mode" => {
                session_mode = match value().as_deref() {
                    Some("observe") => SessionMode::Observe,
                    Some("enforce") => SessionMode::Enforce,
                    _ => return Err("--session-mode needs observe or enforce".into()),
                }
            }
            "--redis" => redis = Some(value().ok_or("--redis needs a URL")?),
            "-h" | "--help" => return Err(String::new()),
            other if auth.parse_flag(other, &mut value)? => {}
            other if limits.parse_flag(other, &mut value)? => {}
            other if metrics.parse_flag(other, &mut value)? => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let bind = bind
        .parse()
        .map_err(|e| format!("invalid bind address `{bind}`: {e}"))?;
    Ok(Options {
        bind,
        allow_hosts,
        bare,
        audit_log,
        audit_key,
        heartbeat,
        session_mode,
        redis,
        auth,
        limits,
        metrics,
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            eprintln!(
                "{USAGE}\n{}\n{}\n{}\n{}",
                audit::AUDIT_USAGE,
                auth::AUTH_USAGE,
                limit::LIMIT_USAGE,
                metrics::METRICS_USAGE
            );
            std::process::exit(2);
        }
    };
    options.metrics.init_tracing();
    // With --metrics, the Prometheus recorder goes in before any layer records.
    let prometheus = options.metrics.install();

    // Cancelled on Ctrl-C: rmcp then ends its sessions and their open SSE streams, so the
    // graceful shutdown below does not wait forever on a client's GET stream.
    let shutdown = CancellationToken::new();

    // Legacy (2025-11-25 and older) sessions: recorded in memory, or in Redis with --redis
    // (one store for the session layer and, with the rmcp feature, rmcp itself).
    #[cfg(feature = "redis")]
    let redis_sessions = options.redis.as_deref().map(|url| {
        mcp_edge::store::redis::RedisSessionStore::open(url).unwrap_or_else(|error| {
            eprintln!("error: --redis: {error}");
            std::process::exit(2)
        })
    });
    #[cfg(not(feature = "redis"))]
    if options.redis.is_some() {
        eprintln!(
            "error: --redis needs the redis feature: cargo run --features redis --example server"
        );
        std::process::exit(2)
    }

    // The rmcp server, configured so it does not fight the layers in front of it: rmcp's own
    // Host check (loopback names only, which breaks behind any proxy or on a public name) off,
    // since the guard owns Host/Origin; rmcp's body limit the edge's, so the InspectLayer's
    // 413 with a JSON-RPC body is the one clients see. With the rmcp feature, `RmcpSetup`
    // does that, keeps rmcp's idle sessions as long as the session layer does, seals rmcp's
    // event ids to their session, and with --redis shares sessions and event logs in Redis.
    #[cfg(feature = "rmcp")]
    let (rmcp_config, rmcp_sessions) = {
        #[allow(unused_mut)]
        let mut setup = mcp_edge::sse::resume::RmcpSetup::new();
        #[cfg(feature = "redis")]
        if let (Some(url), Some(store)) = (options.redis.as_deref(), &redis_sessions) {
            let events =
                mcp_edge::store::redis::RedisEventStore::open(url).unwrap_or_else(|error| {
                    eprintln!("error: --redis: {error}");
                    std::process::exit(2)
                });
            setup = setup.session_store(store.clone()).event_store(events);
        }
        if let Some(key) = resume_key() {
            setup = setup.resume_key(key);
        }
        let config = setup
            .config()
            .with_cancellation_token(shutdown.child_token());
        (config, setup.session_manager())
    };
    #[cfg(not(feature = "rmcp"))]
    let (rmcp_config, rmcp_sessions) = (
        StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_max_request_body_bytes(mcp_edge::inspect::DEFAULT_MAX_BODY_BYTES)
            .with_cancellation_token(shutdown.child_token()),
        LocalSessionManager::default(),
    );

    // Observe mode by default: the layer records, binds and annotates sessions but leaves
    // refusals to rmcp, which already answers 400/404 itself; enforce makes the edge the
    // authority (TTLs, caps, principal binding), which matters behind a gateway or with auth.
    let session = SessionLayer::new().mode(options.session_mode);
    #[cfg(feature = "redis")]
    let session = match redis_sessions {
        Some(store) => session.store(store),
        None => session,
    };

    // Host / Origin checks, in front of the MCP endpoint and the auth metadata alike.
    let guard = if options.allow_hosts.is_empty() {
        // Local server: Host must be localhost / 127.0.0.1 / [::1] (DNS rebinding protection),
        // browser Origins only from those hosts.
        GuardLayer::loopback()
    } else {
        GuardLayer::new()
            .try_allow_hosts(&options.allow_hosts)
            .unwrap_or_else(|error| {
                eprintln!("error: --allow-host: {error}");
                std::process::exit(2)
            })
    };
    // The guard reads the peer address (for `.trusted_proxies(..)`, add yours when behind a
    // reverse proxy) from the `PeerAddr` that `Server` puts in every request.
    let guard = match options.auth.public_url.clone() {
        Some(url) => guard.public_url(url),
        None => guard,
    };
    // Bearer tokens and scopes with --token or --jwks-url; `None` (an open server) otherwise.
    let auth = options.auth.build().unwrap_or_else(|error| {
        eprintln!("error: {error}");
        std::process::exit(2)
    });
    println!("auth: {}", auth.description);
    // With --jwks-url, the key set is fetched now (retried until it answers): not ready before.
    let keys_fetched = auth.fetch_keys();
    // Rate limits per principal and per tool with --limit (in Redis with --redis).
    let (limits, description) = options
        .limits
        .build(options.redis.as_deref())
        .unwrap_or_else(|error| {
            eprintln!("error: {error}");
            std::process::exit(2)
        });
    println!("limits: {description}");
    // Audit, outermost: one event per MCP message, refusals included. To a hash-chained
    // JSON-lines file with --audit-log, else to tracing (stderr).
    let audit =
        audit::AuditSetup::open(options.audit_log.as_deref(), options.audit_key.as_deref()).await?;
    println!("audit: {}", audit.description);
    // SSE streams that survive proxies: anti-buffering headers, a heartbeat at event
    // boundaries, and a drain handle for Ctrl-C.
    let drain = Drain::new();
    let sse = if options.heartbeat.is_zero() {
        SseLayer::new().no_heartbeat()
    } else {
        SseLayer::new().heartbeat(options.heartbeat)
    }
    .drain(drain.clone())
    .drain_grace(DRAIN_GRACE);

    let mut session_store = None;
    let app = if options.bare {
        // For comparison only: the same tools, plain rmcp with its default config.
        let config =
            StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token());
        let bare = StreamableHttpService::new(
            || Ok(tools::DemoTools::new()),
            LocalSessionManager::default().into(),
            config,
        );
        Router::new().nest_service("/mcp", bare)
    } else {
        let mcp = StreamableHttpService::new(
            || Ok(tools::DemoTools::new()),
            rmcp_sessions.into(),
            rmcp_config,
        );
        // mcp-edge's layers. `McpEdge` stacks them in the order they must run:
        // audit → guard → inspect → auth → session → sse → the MCP service. One stack type
        // whether auth is configured or not (`auth_opt`), so one router.
        session_store = Some(std::sync::Arc::clone(session.session_store()));
        let edge = McpEdge::builder()
            .audit(options.metrics.audit(audit.layer.clone()))
            .guard(guard.clone())
            // Bodies are read once and bounded: 4 MiB by default, `.max_body_bytes(n)` to
            // change.
            .inspect(InspectLayer::new())
            .auth_opt(auth.layer.clone())
            .limit_opt(limits)
            .session(session)
            .sse(sse);
        let app = Router::new().nest_service("/mcp", mcp).layer(edge);
        // With auth, the RFC 9728 metadata next to /mcp: unauthenticated, but behind the
        // guard for the public URL.
        auth.route_metadata(app, &guard)
    };

    // --metrics: /metrics, /healthz and /readyz on their own listener (outside the guard).
    // Not ready while draining, while the session store (Redis) does not answer, or before
    // the first JWK set fetch succeeded (with --jwks-url).
    if let Some(metrics_addr) = options.metrics.addr {
        let draining = drain.clone();
        let mut health =
            mcp_edge::observe::Health::new().check("draining", move || !draining.is_draining());
        if let Some(store) = session_store.clone() {
            health = health.check_async("session_store", move || {
                let store = std::sync::Arc::clone(&store);
                async move { store.count(None).await.is_ok() }
            });
        }
        if let Some(flag) = &keys_fetched {
            health = health.wait_for("jwks", flag);
        }
        let before_scrape = move || {
            let store = session_store.clone();
            async move {
                if let Some(Ok(count)) = match &store {
                    Some(store) => Some(store.count(None).await),
                    None => None,
                } {
                    mcp_edge::observe::metrics::sessions_active(count.total);
                }
            }
        };
        let at = metrics::serve(metrics_addr, prometheus, health, before_scrape).await?;
        println!("metrics: http://{at}/metrics, /healthz, /readyz");
    }

    let listener = tokio::net::TcpListener::bind(options.bind).await?;
    let addr = listener.local_addr()?;
    if options.allow_hosts.is_empty() && !addr.ip().is_loopback() {
        eprintln!(
            "note: listening on {addr}, but only Host localhost/127.0.0.1/[::1] is accepted; \
             add --allow-host NAME for the name clients use"
        );
    }
    print_banner(addr, options.bare);

    // Ctrl-C: end SSE streams at an event boundary first, then stop rmcp's sessions.
    let signal = shutdown::on_ctrl_c(drain, DRAIN_GRACE, shutdown.clone());
    // `Server` bounds what hyper owns: 10 s for a request head and for the idle time between
    // keep-alive requests, at most 10,000 connections (keep `ulimit -n` above that), and
    // TCP_NODELAY on every socket (small SSE frames otherwise wait ~40 ms each on Nagle and
    // delayed ACKs: measured ~730 req/s at 44 ms p50 without it, ~24,000 at 1.3 ms with it).
    // Bodies are bounded by the inspect layer (10 s, at least 1 KiB/s after 2 s, else 408).
    // It also puts the peer address in every request as `mcp_edge::PeerAddr`.
    Server::new()
        .serve_with_shutdown(listener, app, signal)
        .await?;
    // Write and flush the audit events still queued.
    audit.shutdown().await;
    Ok(())
}

fn print_banner(addr: SocketAddr, bare: bool) {
    let url = format!("http://{addr}/mcp");
    let what = if bare {
        "bare rmcp server (no mcp-edge, --bare)"
    } else {
        "mcp-edge example server"
    };
    println!(
        r#"{what} listening on {url}

Connect an MCP client (Streamable HTTP transport) to {url}, e.g. the MCP Inspector:
  npx @modelcontextprotocol/inspector     then choose "Streamable HTTP" and enter the URL

Or talk to it with curl (2025-11-25, with a session):
  curl -si {url} -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' \
    -d '{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"curl","version":"0"}}}}}}'
  # copy the mcp-session-id response header into SESSION, then:
  curl -s {url} -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' \
    -H "mcp-session-id: $SESSION" -H 'mcp-protocol-version: 2025-11-25' \
    -d '{{"jsonrpc":"2.0","method":"notifications/initialized"}}'
  curl -s {url} -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' \
    -H "mcp-session-id: $SESSION" -H 'mcp-protocol-version: 2025-11-25' \
    -d '{{"jsonrpc":"2.0","id":2,"method":"tools/list"}}'

Or statelessly (2026-07-28: no initialize, no session; version and client info in _meta):
  curl -s {url} -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' \
    -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/list' \
    -d '{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}},"io.modelcontextprotocol/clientInfo":{{"name":"curl","version":"0"}}}}}}}}'

Tools: echo {{text}}, slow_count {{n, delay_ms}} (progress notifications), whoami.
Ctrl-C to stop."#
    );
}

/// `MCP_EDGE_RESUME_KEY`: 64 hex digits, the key sealing event ids on every replica.
#[cfg(feature = "rmcp")]
fn resume_key() -> Option<[u8; 32]> {
    let hex = std::env::var("MCP_EDGE_RESUME_KEY").ok()?;
    let hex = hex.trim();
    let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        eprintln!("error: MCP_EDGE_RESUME_KEY must be 64 hex digits");
        std::process::exit(2)
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked above");
    }
    Some(key)
}
