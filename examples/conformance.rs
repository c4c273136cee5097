//! The official MCP conformance suite's fixture server, behind mcp-edge:
//! `cargo run --example conformance` (add `-- --bare` for rmcp alone).
//!
//! An rmcp 3.11 server (`examples/common/everything.rs`) with every tool, prompt and resource
//! the suite's server scenarios call, in both eras: 2025-11-25 sessions and stateless
//! 2026-07-28, and the tasks extension (SEP-2663) on rmcp's `TaskManager`
//! (`examples/common/tasks.rs`). `.ci/conformance` runs the suite's requirement sets against it bare and behind
//! the full stack (JWT off, everything else on) and fails unless every check passes in both.
//!
//! Flags:
//!   --bind ADDR         address to listen on (default 127.0.0.1:8080)
//!   --bare              rmcp alone, with its default config
//!   --audit-log PATH    audit events as hash-chained JSON lines (default: tracing)
//!
//! The stack: audit → guard (loopback Host/Origin) → inspect → limit (a concurrency cap per
//! session and a per-client rate far above what the suite sends) → session (enforce) → sse
//! (heartbeat, drain) → resume (event log in memory) → rmcp.

#[path = "common/audit.rs"]
mod audit;
#[path = "common/everything.rs"]
mod everything;
#[path = "common/shutdown.rs"]
mod shutdown;
#[path = "common/tasks.rs"]
mod tasks;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use mcp_edge::limit::{LimitLayer, Rule};
use mcp_edge::serve::Server;
use mcp_edge::session::SessionMode;
use mcp_edge::sse::{Drain, ResumeLayer};
use mcp_edge::store::MemoryEventStore;
use mcp_edge::{GuardLayer, InspectLayer, McpEdge, SessionLayer, SseLayer};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

const USAGE: &str =
    "usage: cargo run --example conformance -- [--bind ADDR] [--bare] [--audit-log PATH]";
const DRAIN_GRACE: Duration = Duration::from_secs(5);

struct Options {
    bind: SocketAddr,
    bare: bool,
    audit_log: Option<std::path::PathBuf>,
}

fn parse_options() -> Result<Options, String> {
    let mut bind = "127.0.0.1:8080".to_owned();
    let mut bare = false;
    let mut audit_log = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "--bind" => bind = value().ok_or("--bind needs an address")?,
            "--bare" => bare = true,
            "--audit-log" => audit_log = Some(value().ok_or("--audit-log needs a path")?.into()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let bind = bind
        .parse()
        .map_err(|e| format!("invalid bind address `{bind}`: {e}"))?;
    Ok(Options {
        bind,
        bare,
        audit_log,
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let options = parse_options().unwrap_or_else(|message| {
        if !message.is_empty() {
            eprintln!("error: {message}\n");
        }
        eprintln!("{USAGE}\n{}", audit::AUDIT_USAGE);
        std::process::exit(2)
    });
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let shutdown = CancellationToken::new();
    let shared = Arc::new(everything::Shared::default());
    let factory = {
        let shared = shared.clone();
        move || Ok(everything::Everything::new(shared.clone()))
    };
    let drain = Drain::new();
    let audit = audit::AuditSetup::open(options.audit_log.as_deref(), None).await?;

    let app = if options.bare {
        let config =
            StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token());
        let mcp =
            StreamableHttpService::new(factory, LocalSessionManager::default().into(), config);
        Router::new().nest_service("/mcp", mcp)
    } else {
        // As in examples/server.rs: the guard owns Host checks, the inspect layer bounds bodies.
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_max_request_body_bytes(usize::MAX)
            .with_cancellation_token(shutdown.child_token());
        let mcp =
            StreamableHttpService::new(factory, LocalSessionManager::default().into(), config);
        let rules: Vec<Rule> = ["*=64 concurrent per ip", "*=100000/min per ip"]
            .iter()
            .map(|text| text.parse().expect("valid rule"))
            .collect();
        let edge = McpEdge::builder()
            .audit(audit.layer.clone())
            .guard(GuardLayer::loopback())
            .inspect(InspectLayer::new())
            .limit(LimitLayer::new().rules(rules))
            .session(SessionLayer::new().mode(SessionMode::Enforce))
            .sse(
                SseLayer::new()
                    .heartbeat(Duration::from_secs(15))
                    .drain(drain.clone())
                    .drain_grace(DRAIN_GRACE),
            );
        Router::new()
            .nest_service("/mcp", mcp)
            .layer(ResumeLayer::new(MemoryEventStore::new()))
            .layer(edge)
    };

    let listener = tokio::net::TcpListener::bind(options.bind).await?;
    let what = if options.bare {
        "bare rmcp conformance server"
    } else {
        "mcp-edge conformance server (full stack, no auth)"
    };
    println!("audit: {}", audit.description);
    println!("{what} listening on http://{}/mcp", listener.local_addr()?);
    let signal = shutdown::on_ctrl_c(drain, DRAIN_GRACE, shutdown.clone());
    Server::new()
        .serve_with_shutdown(listener, app, signal)
        .await?;
    audit.shutdown().await;
    Ok(())
}
