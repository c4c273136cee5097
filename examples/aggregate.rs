//! One MCP endpoint over several MCP servers: `cargo run --example aggregate --features aggregator -- --spawn-demo`.
//!
//! Each upstream gets a name, its namespace: its tools appear as `{name}__{tool}`, its
//! prompts likewise, its resource URIs as `{name}+{uri}`. Clients of either protocol era
//! connect once; the aggregator keeps the upstream sessions (legacy) or speaks 2026-07-28 to
//! the upstreams (modern), routes each call to its upstream, and keeps going when one of them
//! is down (its tools leave the list, calls to it get a JSON-RPC error naming it).
//!
//! Flags:
//!   --upstream NAME=URL               an upstream MCP endpoint (repeatable), e.g.
//!                                     github=http://10.0.0.7:8080/mcp
//!   --upstream-header NAME=Header:Value   a header sent to upstream NAME only (repeatable):
//!                                     its API key or token; `Header:$ENV` reads the value from
//!                                     the environment variable ENV
//!   --upstream-timeout NAME=SECONDS   how long upstream NAME has to answer (default 30)
//!   --spawn-demo                      also start two different demo MCP servers in-process
//!                                     (`demo`: echo, slow_count, whoami; `notes`: echo,
//!                                     add_note, list_notes), reachable only by this process
//!   --bind ADDR                       listen address (default 127.0.0.1:8080; env MCP_EDGE_BIND)
//!   --allow-host NAME                 accept this Host (repeatable; default loopback names)
//!   --audit-log PATH, --token TOKEN, --jwks-url …, --require-scope TOOL=SCOPE, --limit RULE
//!                                     as in examples/server.rs; tool names in scopes and
//!                                     limits are the namespaced ones (`demo__*`)
//!
//! The stack: audit → guard → inspect → auth → limit → sse → Aggregator. The layers in front
//! see the namespaced names: the audit records `notes__add_note`, a scope policy and a rate
//! limit match `notes__*`. The client's token stays here (R59); each upstream gets only the
//! headers given for it.
//!
//! Log level: `RUST_LOG=debug`.

#[path = "common/audit.rs"]
mod audit;
#[path = "common/auth.rs"]
mod auth;
#[path = "common/limit.rs"]
mod limit;
// The aggregator sends upstreams only the headers given for them, never a client's, so the
// replica-secret filter the gateway needs is unused here.
#[allow(dead_code)]
#[path = "common/replicas.rs"]
mod replicas;
#[path = "common/shutdown.rs"]
mod shutdown;
#[allow(dead_code)] // the macros read the tool router
#[path = "common/tools.rs"]
mod tools;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::Full;
use mcp_edge::aggregate::{Aggregator, Upstream};
use mcp_edge::proxy::{HttpUpstream, HttpUpstreamBuilder};
use mcp_edge::serve::Server;
use mcp_edge::sse::Drain;
use mcp_edge::{GuardLayer, InspectLayer, McpEdge, SseLayer};
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{Implementation, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tower::Layer;

const DEFAULT_BIND: &str = "127.0.0.1:8080";
const DRAIN_GRACE: Duration = Duration::from_secs(5);
const USAGE: &str = "usage: cargo run --example aggregate --features aggregator -- [flags]

  --upstream NAME=URL                  an upstream MCP endpoint (repeatable)
  --upstream-header NAME=Header:Value  a header for upstream NAME only (repeatable);
                                       Header:$ENV reads the value from the environment
  --upstream-timeout NAME=SECONDS      upstream NAME's timeout (default 30)
  --spawn-demo                         start two different demo MCP servers in-process
  --bind ADDR                          listen address (default 127.0.0.1:8080; env MCP_EDGE_BIND)
  --allow-host NAME                    accept this Host (repeatable; default loopback names only)";

struct Options {
    upstreams: Vec<(String, String)>,
    headers: Vec<(String, HeaderName, HeaderValue)>,
    timeouts: HashMap<String, Duration>,
    spawn_demo: bool,
    bind: SocketAddr,
    allow_hosts: Vec<String>,
    audit_log: Option<PathBuf>,
    auth: auth::AuthOptions,
    limits: limit::LimitOptions,
}

fn name_and(value: &str, flag: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or(format!("{flag} takes NAME=…"))
}

fn parse_header(spec: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = spec
        .split_once(':')
        .ok_or("--upstream-header takes NAME=Header:Value")?;
    let value = match value.trim().strip_prefix('$') {
        Some(var) => {
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?
        }
        None => value.trim().to_owned(),
    };
    let name = HeaderName::try_from(name.trim()).map_err(|e| format!("header name: {e}"))?;
    let mut value = HeaderValue::try_from(value).map_err(|e| format!("header value: {e}"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        upstreams: Vec::new(),
        headers: Vec::new(),
        timeouts: HashMap::new(),
        spawn_demo: false,
        bind: std::env::var("MCP_EDGE_BIND")
            .unwrap_or_else(|_| DEFAULT_BIND.to_owned())
            .parse()
            .map_err(|e| format!("invalid MCP_EDGE_BIND: {e}"))?,
        allow_hosts: Vec::new(),
        audit_log: None,
        auth: auth::AuthOptions::default(),
        limits: limit::LimitOptions::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // `--flag=value` or `--flag value`; values themselves may contain `=`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--upstream" => options.upstreams.push(name_and(&value()?, "--upstream")?),
            "--upstream-header" => {
                let (upstream, spec) = name_and(&value()?, "--upstream-header")?;
                let (name, value) = parse_header(&spec)?;
                options.headers.push((upstream, name, value));
            }
            "--upstream-timeout" => {
                let (upstream, seconds) = name_and(&value()?, "--upstream-timeout")?;
                let seconds: u64 = seconds
                    .parse()
                    .map_err(|e| format!("--upstream-timeout: {e}"))?;
                options
                    .timeouts
                    .insert(upstream, Duration::from_secs(seconds));
            }
            "--spawn-demo" => options.spawn_demo = true,
            "--bind" => {
                let bind = value()?;
                options.bind = bind
                    .parse()
                    .map_err(|e| format!("invalid bind address `{bind}`: {e}"))?;
            }
            "--allow-host" => options.allow_hosts.push(value()?),
            "--audit-log" => options.audit_log = Some(value()?.into()),
            "-h" | "--help" => return Err(String::new()),
            other if options.auth.parse_flag(other, || value().ok())? => {}
            other if options.limits.parse_flag(other, || value().ok())? => {}
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if options.upstreams.is_empty() && !options.spawn_demo {
        return Err("give at least one --upstream NAME=URL, or --spawn-demo".into());
    }
    for (upstream, _, _) in &options.headers {
        let known = options.upstreams.iter().any(|(n, _)| n == upstream)
            || (options.spawn_demo && ["demo", "notes"].contains(&upstream.as_str()));
        if !known {
            return Err(format!(
                "--upstream-header for unknown upstream `{upstream}`"
            ));
        }
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
                "{USAGE}\n{}\n{}\n{}",
                audit::AUDIT_USAGE,
                auth::AUTH_USAGE,
                limit::LIMIT_USAGE
            );
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let shutdown = CancellationToken::new();

    // Spawned demo servers accept only requests carrying this run's secret (never printed).
    let secret =
        replicas::replica_secret().unwrap_or_else(|e| fail(&format!("replica secret: {e}")));
    let template = HttpUpstreamBuilder::new().connect_timeout(Duration::from_secs(1));
    let mut upstreams: Vec<(String, String, HttpUpstreamBuilder)> = options
        .upstreams
        .iter()
        .map(|(name, url)| (name.clone(), url.clone(), template.clone()))
        .collect();
    if options.spawn_demo {
        let with_secret = replicas::with_replica_secret(template.clone(), &secret);
        let demo = spawn_demo(shutdown.child_token(), &secret, false).await?;
        let notes = spawn_demo(shutdown.child_token(), &secret, true).await?;
        upstreams.push(("demo".into(), demo, with_secret.clone()));
        upstreams.push(("notes".into(), notes, with_secret));
    }

    let mut builder = Aggregator::<HttpUpstream<Full<Bytes>>>::builder().instructions(
        "One endpoint over several MCP servers; each name starts with its server's namespace.",
    );
    let mut banner = Vec::new();
    for (name, url, mut upstream_builder) in upstreams {
        let mut header_names = Vec::new();
        for (_, header, value) in options.headers.iter().filter(|(n, _, _)| *n == name) {
            upstream_builder = upstream_builder.header(header.clone(), value.clone());
            header_names.push(header.as_str().to_owned());
        }
        let timeout = options
            .timeouts
            .get(&name)
            .copied()
            .unwrap_or(Duration::from_secs(30));
        let service = upstream_builder
            .response_head_timeout(timeout)
            .build(&url)
            .unwrap_or_else(|e| fail(&e.to_string()));
        builder = builder.upstream(Upstream::new(name.as_str(), service).timeout(timeout));
        banner.push(format!(
            "  {name:<8} {url}  (timeout {}s{})",
            timeout.as_secs(),
            if header_names.is_empty() {
                String::new()
            } else {
                format!(", headers: {}", header_names.join(", "))
            }
        ));
    }
    let aggregator = builder.build().unwrap_or_else(|e| fail(&e.to_string()));

    // mcp-edge's layers in front of the aggregator; they see the namespaced names.
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
    let (limits, limits_note) = std::mem::take(&mut options.limits)
        .build(None)
        .unwrap_or_else(|e| fail(&e));
    let audit = audit::AuditSetup::open(options.audit_log.as_deref(), None).await?;
    let drain = Drain::new();
    let edge = McpEdge::builder()
        .audit(audit.layer.clone())
        .guard(guard.clone())
        .inspect(InspectLayer::new())
        .auth_opt(auth.layer.clone())
        .limit_opt(limits)
        .sse(
            SseLayer::new()
                .drain(drain.clone())
                .drain_grace(DRAIN_GRACE),
        );
    let app = Router::new().route_service("/mcp", edge.layer(aggregator));
    let app = auth.route_metadata(app, &guard);

    let listener = tokio::net::TcpListener::bind(options.bind).await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    println!("mcp-edge aggregator listening on {url}\nupstreams:");
    for line in &banner {
        println!("{line}");
    }
    println!(
        "auth: {}\naudit: {}\nlimits: {limits_note}\n\nConnect any MCP client (Streamable HTTP) to {url}: tools are listed as NAMESPACE__TOOL.",
        auth.description, audit.description
    );

    let signal = shutdown::on_ctrl_c(drain, DRAIN_GRACE, shutdown.clone());
    Server::new()
        .serve_with_shutdown(listener, app, signal)
        .await?;
    audit.shutdown().await;
    Ok(())
}

/// Arguments of `add_note`.
#[derive(Debug, Deserialize, JsonSchema)]
struct AddNoteArgs {
    /// The note.
    text: String,
}

/// Arguments of the notes server's `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
struct NotesEchoArgs {
    /// The text to send back.
    text: String,
}

/// The second demo server: a note list shared by all its sessions, and an `echo` of its own
/// (so both demo servers have a tool named `echo`, told apart by their namespaces).
#[derive(Debug, Clone)]
struct NoteTools {
    notes: Arc<Mutex<Vec<String>>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl NoteTools {
    /// Adds a note.
    #[tool(description = "Adds a note to the shared list.")]
    async fn add_note(&self, Parameters(args): Parameters<AddNoteArgs>) -> String {
        let mut notes = self.notes.lock().unwrap();
        if notes.len() >= 1000 {
            return "the note list is full".into();
        }
        notes.push(args.text.chars().take(1000).collect());
        format!("{} notes", notes.len())
    }

    /// Lists the notes.
    #[tool(description = "Lists the notes, one per line.")]
    async fn list_notes(&self) -> String {
        self.notes.lock().unwrap().join("\n")
    }

    /// Echo, from the notes server.
    #[tool(description = "Returns `notes: {text}`.")]
    async fn echo(&self, Parameters(args): Parameters<NotesEchoArgs>) -> String {
        format!("notes: {}", args.text)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for NoteTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-edge-notes",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Notes: add_note, list_notes, echo.")
    }
}

/// Starts a demo MCP server (the demo tools, or the notes) on a free loopback port, behind a
/// guard that admits only requests carrying `secret`; returns its URL.
async fn spawn_demo(
    shutdown: CancellationToken,
    secret: &str,
    notes: bool,
) -> std::io::Result<String> {
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_cancellation_token(shutdown.child_token());
    let app = if notes {
        let shared = Arc::new(Mutex::new(Vec::new()));
        let service = StreamableHttpService::new(
            move || {
                Ok(NoteTools {
                    notes: Arc::clone(&shared),
                    tool_router: NoteTools::tool_router(),
                })
            },
            LocalSessionManager::default().into(),
            config,
        );
        Router::new().nest_service("/mcp", service)
    } else {
        let service = StreamableHttpService::new(
            || Ok(tools::DemoTools::new()),
            LocalSessionManager::default().into(),
            config,
        );
        Router::new().nest_service("/mcp", service)
    };
    replicas::serve_replica(app, secret, shutdown).await
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}
