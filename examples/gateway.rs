//! A gateway in front of MCP replicas: `cargo run --example gateway -- --spawn-replicas 3`.
//!
//! Every legacy (2025-era) MCP session stays on the replica that created it, whichever
//! gateway instance receives its requests; 2026-07-28 (stateless) requests and new sessions
//! go to the least-loaded replica. Two strategies:
//!
//! - `envelope` (default): nothing shared between gateway instances but the key. The session
//!   id clients see is sealed with it (AES-256-GCM); start every instance with the same
//!   `--session-key`.
//! - `table`: session → replica pins in Redis (`--redis`, feature `redis`), shared by every
//!   instance, cached locally.
//!
//! Flags:
//!   --upstream URL          a replica's MCP endpoint, e.g. http://10.0.0.5:8080/mcp (repeatable);
//!                           https:// with `--features proxy-tls` (HTTP/2 when the replica offers it)
//!   --upstream-ca FILE      trust this CA (PEM) for https:// replicas, besides the system's roots
//!                           (feature `proxy-tls`)
//!   --spawn-replicas N      also start N copies of the example MCP server in-process on free
//!                           loopback ports (to see affinity with one command); each accepts
//!                           only requests carrying this run's random replica secret, which
//!                           the gateway adds (see "Replicas" below)
//!   --strategy S            envelope (default) or table
//!   --session-key HEX       envelope key, 32 bytes hex (env MCP_EDGE_SESSION_KEY); generated
//!                           and printed when absent
//!   --previous-session-key HEX   also accept ids sealed with this key (rotation)
//!   --redis URL             Redis for the table strategy (feature `redis`); without it the
//!                           table is in this process only. With --resume, also the event log
//!   --resume                every upstream becomes resumable: legacy SSE streams get sealed
//!                           event ids and are recorded (read on when the client leaves), and
//!                           GET + Last-Event-ID replays them; in memory, or in Redis with
//!                           --redis (shared by every gateway instance)
//!   --resume-key HEX        the key sealing event ids, 32 bytes hex (env MCP_EDGE_RESUME_KEY);
//!                           generated and printed when absent; the same on every instance
//!   --bind ADDR             address to listen on (default 127.0.0.1:8080; env MCP_EDGE_BIND)
//!   --allow-host NAME       accept this Host (repeatable; default: localhost, 127.0.0.1, [::1])
//!   --health-interval MS    connect to every replica each MS milliseconds (default 1000; 0: off):
//!                           one that refuses is marked down at once (its sessions get 404 and
//!                           start over on a live replica, new work avoids it), and up again
//!                           when it accepts
//!   --audit-log PATH        append audit events (each names the replica that served it) to
//!                           PATH as hash-chained JSON lines (check it with
//!                           `cargo run --example audit_verify -- PATH`); default: tracing on stderr
//!   --audit-key KEYFILE     sign that log in checkpoints (Ed25519 PEM key; or env MCP_EDGE_AUDIT_KEY)
//!   --token TOKEN | --jwks-url URL --issuer ISS --audience AUD
//!                           require a bearer token at the gateway (as examples/server.rs)
//!   --require-scope TOOL=SCOPE   per-tool scope (repeatable); --public-url URL for the metadata
//!   --limit RULE            e.g. 'tools/call:deploy_*=10/min per principal' (repeatable; 429
//!                           past it); with --redis every gateway instance shares the budgets
//!   --metrics ADDR          serve /metrics (Prometheus; `--features metrics`), /healthz and
//!                           /readyz (not ready while draining or with no healthy replica)
//!
//! The stack: audit → guard → inspect → auth → sse → (resume) → AffinityRouter. No `SessionLayer`: the
//! router is already the authority on sessions (unknown, foreign-principal and orphaned ids get
//! 404), and a session record per gateway would be the shared state the envelope strategy avoids.
//!
//! Replicas must be reachable only by the gateway: the edge layers (auth, the guard) run here,
//! so whoever reaches a replica directly skips them. Spawned replicas listen on 127.0.0.1
//! behind a loopback-only guard that also requires the `X-Mcp-Edge-Replica-Secret` header
//! with a secret drawn at start and never printed; the gateway sets it on every forwarded
//! request and drops any copy a client sent. Replicas given with `--upstream` must be kept
//! private by the network: bind them to a private interface and let a firewall or security
//! group admit only the gateway hosts (see the README's production notes).
//!
//! Log level: `RUST_LOG=debug`.

#[path = "common/audit.rs"]
mod audit;
#[path = "common/auth.rs"]
mod auth;
#[path = "common/limit.rs"]
mod limit;
#[path = "common/metrics.rs"]
mod metrics;
#[path = "common/replicas.rs"]
mod replicas;
#[path = "common/shutdown.rs"]
mod shutdown;
#[allow(dead_code)] // the macros read the tool router
#[path = "common/tools.rs"]
mod tools;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use mcp_edge::affinity::{Envelope, EnvelopeKeys, ReplicaSet, SessionKey, Table};
use mcp_edge::audit::CountingBody;
use mcp_edge::proxy::{HttpUpstream, HttpUpstreamBuilder};
use mcp_edge::serve::Server;
use mcp_edge::sse::{Drain, ResumeLayer};
use mcp_edge::store::{EventStore, MemoryEventStore, MemorySessionStore, SessionStore};
use mcp_edge::{
    AffinityRouter, EdgeBody, GuardLayer, InspectLayer, McpEdge, OptionalLayer, Replica, SseLayer,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;
use tower::Layer;

const DEFAULT_BIND: &str = "127.0.0.1:8080";
const KEY_ENV: &str = "MCP_EDGE_SESSION_KEY";
/// How long Ctrl-C lets non-resumable SSE streams finish before closing them.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
const USAGE: &str = "usage: cargo run --example gateway [--features redis] -- [flags]

  --upstream URL              a replica's MCP endpoint, http://host:port/mcp (repeatable;
                              https:// with --features proxy-tls)
  --upstream-ca FILE          also trust this CA (PEM) for https:// replicas (proxy-tls)
  --spawn-replicas N          start N copies of the example MCP server in-process
  --strategy envelope|table   how sessions are pinned (default envelope)
  --session-key HEX           envelope key, 32 bytes hex (env MCP_EDGE_SESSION_KEY);
                              generated and printed when absent
  --previous-session-key HEX  also open ids sealed with this key (key rotation)
  --redis URL                 Redis for the table strategy and the --resume log (feature redis)
  --resume                    record legacy SSE streams and answer Last-Event-ID (any upstream)
  --resume-key HEX            event id key, 32 bytes hex (env MCP_EDGE_RESUME_KEY)
  --bind ADDR                 listen address (default 127.0.0.1:8080; env MCP_EDGE_BIND)
  --allow-host NAME           accept this Host (repeatable; default loopback names only)
  --health-interval MS        TCP health probe of every replica (default 1000; 0: off)";

/// What the gateway hands its replicas: the request as the edge layers pass it on (audit
/// counts its bytes, inspect has read it once).
type Upstream = HttpUpstream<EdgeBody<CountingBody<Body>>>;

#[derive(Debug, PartialEq)]
enum Strategy {
    Envelope,
    Table,
}

struct Options {
    upstreams: Vec<String>,
    upstream_ca: Option<PathBuf>,
    spawn: usize,
    strategy: Strategy,
    session_key: Option<String>,
    previous_key: Option<String>,
    redis: Option<String>,
    resume: bool,
    resume_key: Option<String>,
    bind: SocketAddr,
    allow_hosts: Vec<String>,
    health_interval: Duration,
    audit_log: Option<PathBuf>,
    audit_key: Option<PathBuf>,
    auth: auth::AuthOptions,
    limits: limit::LimitOptions,
    metrics: metrics::MetricsOptions,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        upstreams: Vec::new(),
        upstream_ca: None,
        spawn: 0,
        strategy: Strategy::Envelope,
        session_key: std::env::var(KEY_ENV).ok().filter(|k| !k.is_empty()),
        previous_key: None,
        redis: None,
        resume: false,
        resume_key: std::env::var(RESUME_KEY_ENV).ok().filter(|k| !k.is_empty()),
        bind: std::env::var("MCP_EDGE_BIND")
            .unwrap_or_else(|_| DEFAULT_BIND.to_owned())
            .parse()
            .map_err(|e| format!("invalid MCP_EDGE_BIND: {e}"))?,
        allow_hosts: Vec::new(),
        health_interval: Duration::from_secs(1),
        audit_log: None,
        audit_key: None,
        auth: auth::AuthOptions::default(),
        limits: limit::LimitOptions::default(),
        metrics: metrics::MetricsOptions::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--upstream" => options.upstreams.push(value()?),
            "--upstream-ca" => options.upstream_ca = Some(value()?.into()),
            "--spawn-replicas" => {
                options.spawn = value()?
                    .parse()
                    .map_err(|e| format!("--spawn-replicas: {e}"))?;
            }
            "--strategy" => {
                options.strategy = match value()?.as_str() {
                    "envelope" => Strategy::Envelope,
                    "table" => Strategy::Table,
                    other => return Err(format!("unknown strategy `{other}`")),
                };
            }
            "--session-key" => options.session_key = Some(value()?),
            "--previous-session-key" => options.previous_key = Some(value()?),
            "--redis" => options.redis = Some(value()?),
            "--resume" => options.resume = true,
            "--resume-key" => options.resume_key = Some(value()?),
            "--bind" => {
                let bind = value()?;
                options.bind = bind
                    .parse()
                    .map_err(|e| format!("invalid bind address `{bind}`: {e}"))?;
            }
            "--allow-host" => options.allow_hosts.push(value()?),
            "--health-interval" => {
                let ms: u64 = value()?
                    .parse()
                    .map_err(|e| format!("--health-interval: {e}"))?;
                options.health_interval = Duration::from_millis(ms);
            }
            "--audit-log" => options.audit_log = Some(value()?.into()),
            "--audit-key" => options.audit_key = Some(value()?.into()),
            "-h" | "--help" => return Err(String::new()),
            other if options.auth.parse_flag(other, || value().ok())? => {}
            other if options.limits.parse_flag(other, || value().ok())? => {}
            other if options.metrics.parse_flag(other, || value().ok())? => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if options.upstreams.is_empty() && options.spawn == 0 {
        return Err("give at least one --upstream URL or --spawn-replicas N".into());
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut options = match parse_options() {
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
    let shutdown = CancellationToken::new();

    // The replicas: given URLs, plus in-process copies of the example server, which accept
    // only requests carrying this run's secret (drawn here, never printed or logged).
    let secret =
        replicas::replica_secret().unwrap_or_else(|e| fail(&format!("replica secret: {e}")));
    let mut spawned = Vec::new();
    for _ in 0..options.spawn {
        spawned.push(spawn_replica(shutdown.child_token(), &secret).await?);
    }
    // TCP_NODELAY is on for upstream connections. Whatever a client sends under the secret's
    // name is dropped (the edge stack below removes it), and only spawned replicas get it.
    let template = HttpUpstreamBuilder::new()
        .connect_timeout(Duration::from_secs(1))
        .response_head_timeout(Duration::from_secs(120));
    let template = match &options.upstream_ca {
        Some(ca) => with_upstream_ca(template, ca),
        None => template,
    };
    let with_secret = replicas::with_replica_secret(template.clone(), &secret);
    let replicas: ReplicaSet<Upstream> = ReplicaSet::new();
    let mut upstreams = Vec::new();
    // One connection pool per kind of replica.
    for (urls, builder) in [(&options.upstreams, &template), (&spawned, &with_secret)] {
        let mut first: Option<Upstream> = None;
        for url in urls {
            let upstream = match &first {
                Some(first) => first.to(url),
                None => builder.build(url),
            }
            .unwrap_or_else(|error| fail(&error.to_string()));
            first.get_or_insert_with(|| upstream.clone());
            // The replica id is its URL: every gateway instance must name replicas the same way.
            replicas.add(Replica::new(url.as_str()), upstream);
            upstreams.push(url.clone());
        }
    }

    // A TCP probe of every replica each --health-interval: one that stops accepting is marked
    // down at once (its sessions get 404 and start over on a live replica; new work avoids it),
    // and up again when it accepts. Dropped (stopped) when main returns.
    let _health = (!options.health_interval.is_zero()).then(|| {
        let every = options.health_interval;
        replicas.health_check(every, move |replica: Replica| async move {
            let Some(address) = probe_address(replica.id()) else {
                return false;
            };
            let connect = tokio::net::TcpStream::connect(address);
            matches!(
                tokio::time::timeout(every.mul_f32(0.8), connect).await,
                Ok(Ok(_))
            )
        })
    });

    let (router, strategy_note) = match options.strategy {
        Strategy::Envelope => {
            let (key, note) = match &options.session_key {
                Some(hex) => (
                    SessionKey::from_hex(hex)
                        .unwrap_or_else(|e| fail(&format!("session key: {e}"))),
                    "from --session-key / MCP_EDGE_SESSION_KEY".to_owned(),
                ),
                None => {
                    let key = SessionKey::generate().unwrap_or_else(|e| fail(&e.to_string()));
                    let note = format!(
                        "generated; start other gateway instances with\n  {KEY_ENV}={}",
                        key.to_hex()
                    );
                    (key, note)
                }
            };
            let mut keys = EnvelopeKeys::new(&key);
            if let Some(previous) = &options.previous_key {
                let previous = SessionKey::from_hex(previous)
                    .unwrap_or_else(|e| fail(&format!("previous session key: {e}")));
                keys = keys.with_previous(&previous);
            }
            let envelope = Envelope::new(keys).max_age(Duration::from_secs(24 * 3600));
            (
                AffinityRouter::envelope(replicas.clone(), envelope),
                format!("envelope (session key {note})"),
            )
        }
        Strategy::Table => {
            let (store, note) = table_store(options.redis.as_deref());
            (
                AffinityRouter::table(replicas.clone(), Table::new(store)),
                format!("table ({note})"),
            )
        }
    };

    // mcp-edge's layers in front of the router, in the order they must run:
    // audit → guard → inspect → auth → sse → AffinityRouter.
    let guard = if options.allow_hosts.is_empty() {
        GuardLayer::loopback()
    } else {
        GuardLayer::new()
            .try_allow_hosts(&options.allow_hosts)
            .unwrap_or_else(|e| fail(&format!("--allow-host: {e}")))
    };
    let guard = match options.auth.public_url.clone() {
        Some(url) => guard.public_url(url),
        None => guard,
    };
    let auth = options.auth.build().unwrap_or_else(|e| fail(&e));
    // Rate limits per principal and per tool with --limit, before a replica is picked; with
    // --redis every gateway instance draws on the same budgets.
    let (limits, limits_note) = std::mem::take(&mut options.limits)
        .build(options.redis.as_deref())
        .unwrap_or_else(|e| fail(&e));
    println!("limits: {limits_note}");
    // Outermost: one event per MCP message, refusals included, naming the replica that served
    // it. To a hash-chained JSON-lines file with --audit-log, else to tracing (stderr).
    let audit =
        audit::AuditSetup::open(options.audit_log.as_deref(), options.audit_key.as_deref()).await?;
    // Heartbeats on the streams passing through (so proxies in front of the gateway keep them
    // open), and a drain handle for Ctrl-C.
    let drain = Drain::new();
    let sse = SseLayer::new()
        .drain(drain.clone())
        .drain_grace(DRAIN_GRACE);
    // Tokens are checked here, before a replica is picked (`auth_opt`: one stack type with or
    // without --token / --jwks-url).
    let edge = McpEdge::builder()
        .audit(options.metrics.audit(audit.layer.clone()))
        .guard(guard.clone())
        .inspect(InspectLayer::new())
        .auth_opt(auth.layer.clone())
        .limit_opt(limits)
        .sse(sse);
    // A client-sent copy of the replica secret header never reaches a replica.
    let router = tower::util::MapRequestLayer::new(replicas::drop_replica_secret).layer(router);
    // --resume: inside the SSE layer, in front of the router (a resume is answered here, from
    // the event log, whichever replica served the stream).
    let (resume, resume_note) = resume_layer(&options, &drain);
    let router = OptionalLayer::new(resume).layer(router);
    // `route_service`, not `nest_service`: one endpoint, so no prefix to strip (nesting
    // rebuilds every request's URI) and the upstream gets its own endpoint path anyway.
    let app = Router::new().route_service("/mcp", edge.layer(router));
    // With auth, the RFC 9728 metadata next to /mcp: unauthenticated, but behind the guard.
    let app = auth.route_metadata(app, &guard);

    // --metrics: /metrics, /healthz and /readyz on their own listener (outside the guard).
    // Not ready while draining or while every replica is ejected.
    if let Some(metrics_addr) = options.metrics.addr {
        let draining = drain.clone();
        let set = replicas.clone();
        let health = mcp_edge::observe::Health::new()
            .check("draining", move || !draining.is_draining())
            .check("replicas", move || {
                set.status().iter().any(|replica| !replica.is_ejected())
            });
        let at = metrics::serve(metrics_addr, prometheus, health, || async {}).await?;
        println!("metrics: http://{at}/metrics, /healthz, /readyz");
    }

    let listener = tokio::net::TcpListener::bind(options.bind).await?;
    let addr = listener.local_addr()?;
    println!("auth: {}\naudit: {}", auth.description, audit.description);
    print_banner(addr, &upstreams, &strategy_note);
    println!("resume: {resume_note}");

    // Ctrl-C: end SSE streams at an event boundary, then stop the spawned replicas.
    let signal = shutdown::on_ctrl_c(drain, DRAIN_GRACE, shutdown.clone());
    // `Server`: 10 s for a request head and between keep-alive requests, at most 10,000
    // connections, TCP_NODELAY, and the peer address as `mcp_edge::PeerAddr` (read by the
    // guard, the audit layer and the upstreams' `Forwarded` headers).
    Server::new()
        .serve_with_shutdown(listener, app, signal)
        .await?;
    // Write and flush the audit events still queued.
    audit.shutdown().await;
    Ok(())
}

/// `host:port` of a replica's URL (its id), for the health probe.
/// `https://` replicas trust the CA in `path` as well as the system's roots (or only it, on a
/// machine without a CA bundle).
#[cfg(feature = "proxy-tls")]
fn with_upstream_ca(builder: HttpUpstreamBuilder, path: &std::path::Path) -> HttpUpstreamBuilder {
    use mcp_edge::proxy::UpstreamTls;
    let tls = match UpstreamTls::system_roots() {
        Ok(system) => system.add_ca_file(path),
        Err(_) => UpstreamTls::ca_file(path),
    };
    builder.tls(tls.unwrap_or_else(|e| fail(&format!("--upstream-ca: {e}"))))
}

#[cfg(not(feature = "proxy-tls"))]
fn with_upstream_ca(_: HttpUpstreamBuilder, _: &std::path::Path) -> HttpUpstreamBuilder {
    fail("--upstream-ca needs https:// support: --features gateway,proxy-tls")
}

fn probe_address(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some(format!("{}:{port}", uri.host()?))
}

/// Starts a copy of the example MCP server (rmcp, sessions in its own memory) on a free
/// loopback port and returns its URL. It answers only loopback `Host` names and requests
/// carrying `secret` in `X-Mcp-Edge-Replica-Secret` (403 with a JSON-RPC body otherwise).
async fn spawn_replica(shutdown: CancellationToken, secret: &str) -> std::io::Result<String> {
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_cancellation_token(shutdown.child_token());
    let service = StreamableHttpService::new(
        || Ok(tools::DemoTools::new()),
        LocalSessionManager::default().into(),
        config,
    );
    // rmcp's own Host check is off: the replica guard does it (loopback names), and it
    // requires the secret.
    replicas::serve_replica(
        axum::Router::new().nest_service("/mcp", service),
        secret,
        shutdown,
    )
    .await
}

fn table_store(redis: Option<&str>) -> (Arc<dyn SessionStore>, String) {
    match redis {
        #[cfg(feature = "redis")]
        Some(url) => {
            let store = mcp_edge::store::redis::RedisSessionStore::open(url)
                .unwrap_or_else(|e| fail(&format!("redis: {e}")));
            (Arc::new(store), format!("pins in Redis at {url}"))
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => fail("--redis needs the `redis` feature: --features redis"),
        None => (
            Arc::new(MemorySessionStore::new()),
            "pins in this process only: give --redis URL to share them between gateways".to_owned(),
        ),
    }
}

const RESUME_KEY_ENV: &str = "MCP_EDGE_RESUME_KEY";

/// The `--resume` layer and a line for the banner.
fn resume_layer(options: &Options, drain: &Drain) -> (Option<ResumeLayer>, String) {
    if !options.resume {
        return (
            None,
            "off (--resume to make every upstream resumable)".to_owned(),
        );
    }
    let (key, key_note) = match &options.resume_key {
        Some(hex) => (
            parse_key(hex).unwrap_or_else(|e| fail(&format!("--resume-key: {e}"))),
            "key from --resume-key / MCP_EDGE_RESUME_KEY".to_owned(),
        ),
        None => {
            let key = SessionKey::generate().unwrap_or_else(|e| fail(&e.to_string()));
            let hex = key.to_hex();
            let note = format!(
                "key generated; start other gateway instances with\n  {RESUME_KEY_ENV}={hex}"
            );
            (parse_key(&hex).expect("a generated key parses"), note)
        }
    };
    let (store, store_note): (Arc<dyn EventStore>, &str) = match options.redis.as_deref() {
        #[cfg(feature = "redis")]
        Some(url) => (
            Arc::new(
                mcp_edge::store::redis::RedisEventStore::open(url)
                    .unwrap_or_else(|e| fail(&format!("redis: {e}"))),
            ),
            "event log in Redis, shared by every gateway instance",
        ),
        #[cfg(not(feature = "redis"))]
        Some(_) => fail("--redis needs the `redis` feature: --features redis"),
        None => (
            Arc::new(MemoryEventStore::new()),
            "event log in this process (--redis URL to share it)",
        ),
    };
    // Streams whose client left join the drain: on Ctrl-C they are recorded for at most the
    // grace, then cut and marked, so a resume on another instance ends instead of waiting.
    let layer = ResumeLayer::with_store(store)
        .key(key)
        .drain(drain.clone())
        .drain_grace(DRAIN_GRACE);
    (Some(layer), format!("on, {store_note}; {key_note}"))
}

/// 32 bytes from 64 hex digits.
fn parse_key(hex: &str) -> Result<[u8; 32], String> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("expected 64 hex digits".into());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(key)
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

fn print_banner(addr: SocketAddr, upstreams: &[String], strategy: &str) {
    let url = format!("http://{addr}/mcp");
    println!("mcp-edge gateway listening on {url}\nstrategy: {strategy}\nreplicas:");
    for upstream in upstreams {
        println!("  {upstream}");
    }
    println!(
        r#"
Connect any MCP client (Streamable HTTP) to {url}. Each session stays on one replica:
call the `whoami` tool a few times and see the same session id every time; the replica's
own id differs from the one the client holds when the envelope strategy seals it.
Ctrl-C to stop."#
    );
}
