//! Soak: many open GET streams plus steady `tools/call` traffic through the full stack, for
//! minutes, reporting the server's memory and file descriptors over time, call latency and
//! errors.
//!
//! ```text
//! cargo build --example soak && target/debug/examples/soak [--streams 1000] [--seconds 60]
//!     [--callers 8] [--rate 200] [--sample 5] [--warmup 10]
//! ```
//!
//! The tool starts itself again as the server (`--serve`, a separate process so its RSS and
//! descriptors are the server's alone): the demo tools (`examples/common/tools.rs`) behind the
//! README's full stack without a JWT issuer, as `examples/server.rs` builds it: audit to a
//! hash-chained JSON-lines file, guard, inspect, a rate limit, sessions in enforce mode, and
//! `SseLayer` with its heartbeat and drain, served by `mcp_edge::serve::Server` with a
//! connection cap above `--streams`; rmcp's 5-minute session idle timeout is off, since the
//! stream sessions send nothing after opening. Then it opens `--callers` legacy sessions that call
//! `echo` at `--rate` calls per second in all, and `--streams` more sessions that each hold a
//! GET stream open on its own connection. Every `--sample` seconds it prints a line: server
//! RSS and open descriptors, streams still open, calls, errors, p50 and p99 of the calls in
//! that interval. At the end: the memory curve (start, after `--warmup`, end) and totals.
//! It raises its own soft `ulimit -n` to the hard limit when `--streams` needs it.
//!
//! Exit status 1 when a call failed, a stream ended early, or the RSS grew by more than 10 %
//! between the end of the warm-up and the end of the run.

#[allow(dead_code)] // the flags and usage texts of the other examples
#[path = "common/audit.rs"]
mod audit;
#[allow(dead_code)]
#[path = "common/limit.rs"]
mod limit;
#[path = "common/tools.rs"]
mod tools;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

type Error = Box<dyn std::error::Error + Send + Sync>;

const VERSION: &str = "2025-11-25";

struct Options {
    streams: usize,
    seconds: u64,
    callers: usize,
    rate: f64,
    sample: u64,
    warmup: u64,
}

/// `--serve` mode: the address, the connection cap and the audit log.
type Serve = (SocketAddr, usize, PathBuf);

fn parse() -> Result<(Options, Option<Serve>), String> {
    let mut o = Options {
        streams: 1000,
        seconds: 60,
        callers: 8,
        rate: 200.0,
        sample: 5,
        warmup: 10,
    };
    let mut serve = false;
    let mut bind = None;
    let mut max_connections = 0;
    let mut audit_log = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--streams" => o.streams = number(value()?)? as usize,
            "--seconds" => o.seconds = number(value()?)? as u64,
            "--callers" => o.callers = (number(value()?)? as usize).max(1),
            "--rate" => o.rate = number(value()?)?.max(1.0),
            "--sample" => o.sample = (number(value()?)? as u64).max(1),
            "--warmup" => o.warmup = number(value()?)? as u64,
            "--serve" => serve = true,
            "--bind" => bind = Some(value()?.parse().map_err(|e| format!("--bind: {e}"))?),
            "--max-connections" => max_connections = number(value()?)? as usize,
            "--audit-log" => audit_log = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let serve = match (serve, bind, audit_log) {
        (false, _, _) => None,
        (true, Some(bind), Some(log)) => Some((bind, max_connections, log)),
        _ => return Err("--serve needs --bind and --audit-log".into()),
    };
    Ok((o, serve))
}

fn main() {
    let (options, serve) = parse().unwrap_or_else(|message| {
        eprintln!("error: {message}\nusage: soak [--streams N] [--seconds T] [--callers C] [--rate R] [--sample S] [--warmup W]");
        std::process::exit(2)
    });
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = match serve {
        Some((bind, max, log)) => runtime.block_on(run_server(bind, max, log)),
        None => runtime.block_on(run(options)),
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(error) => {
            eprintln!("soak: {error}");
            std::process::exit(2)
        }
    }
}

// ---- the server process ------------------------------------------------------------------

async fn run_server(bind: SocketAddr, max_connections: usize, log: PathBuf) -> Result<bool, Error> {
    use axum::Router;
    use mcp_edge::session::SessionMode;
    use mcp_edge::sse::Drain;
    use mcp_edge::{GuardLayer, InspectLayer, McpEdge, SessionLayer, SseLayer};
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };

    let audit = audit::AuditSetup::open(Some(&log), None).await?;
    let mut limits = limit::LimitOptions::default();
    let mut rule = Some("tools/call=100000/min per session".to_owned());
    limits.parse_flag("--limit", || rule.take())?;
    let (limits, _) = limits.build(None)?;
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_max_request_body_bytes(usize::MAX);
    // rmcp ends a session after 5 minutes without a request (`keep_alive`), GET stream and
    // all; the soak's stream sessions send nothing after opening, so that is turned off here.
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = None;
    let mcp = StreamableHttpService::new(|| Ok(tools::DemoTools::new()), sessions.into(), config);
    let edge = McpEdge::builder()
        .audit(audit.layer.clone())
        .guard(GuardLayer::loopback())
        .inspect(InspectLayer::new())
        .limit_opt(limits)
        .session(SessionLayer::new().mode(SessionMode::Enforce))
        .sse(
            SseLayer::new()
                .heartbeat(Duration::from_secs(15))
                .drain(Drain::new())
                .drain_grace(Duration::from_secs(5)),
        );
    let app = Router::new().nest_service("/mcp", mcp).layer(edge);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    mcp_edge::serve::Server::new()
        .max_connections(max_connections.max(16))
        .serve(listener, app)
        .await?;
    Ok(true)
}

// ---- the driver --------------------------------------------------------------------------

/// The server child process, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Server {
    async fn start(max_connections: usize) -> Result<Server, Error> {
        let dir = std::env::temp_dir().join(format!("mcp-edge-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .args(["--serve", "--bind", &addr.to_string()])
            .args(["--max-connections", &max_connections.to_string()])
            .arg("--audit-log")
            .arg(dir.join("audit.jsonl"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let server = Server { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                return Err("the server did not start; see server.log".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    fn proc_file(&self, name: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.child.id())).unwrap_or_default()
    }

    /// Resident set size, MiB.
    fn rss_mib(&self) -> f64 {
        self.proc_file("status")
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One legacy session on its own connection.
struct Session {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    id: String,
    next: u64,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, Error> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

impl Session {
    fn request(&self, method: Method, body: Option<&str>) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(method)
            .uri("/mcp")
            .header(header::HOST, self.addr.to_string());
        builder = match body {
            Some(_) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json, text/event-stream"),
            None => builder.header(header::ACCEPT, "text/event-stream"),
        };
        if !self.id.is_empty() {
            builder = builder
                .header("mcp-session-id", &self.id)
                .header("mcp-protocol-version", VERSION);
        }
        let body = Bytes::from(body.unwrap_or_default().to_owned());
        builder.body(Full::new(body)).expect("request")
    }

    async fn post(&mut self, body: &str) -> Result<(StatusCode, Option<String>, Bytes), Error> {
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(self.request(Method::POST, Some(body)))
            .await?;
        let status = response.status();
        let id = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((status, id, response.into_body().collect().await?.to_bytes()))
    }

    async fn open(addr: SocketAddr) -> Result<Session, Error> {
        let mut session = Session {
            addr,
            sender: connect(addr).await?,
            id: String::new(),
            next: 1,
        };
        let init = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{VERSION}","capabilities":{{}},"clientInfo":{{"name":"soak","version":"0"}}}}}}"#
        );
        let (status, id, body) = session.post(&init).await?;
        if status != StatusCode::OK {
            return Err(format!("initialize: {status} {}", String::from_utf8_lossy(&body)).into());
        }
        session.id = id.ok_or("initialize: no mcp-session-id")?;
        let (status, _, _) = session
            .post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await?;
        if !status.is_success() {
            return Err(format!("notifications/initialized: {status}").into());
        }
        Ok(session)
    }

    /// One `tools/call echo`: whether it answered 200 with a result.
    async fn call(&mut self) -> Result<bool, Error> {
        let id = self.next;
        self.next += 1;
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"soak {id}"}}}}}}"#
        );
        let (status, _, body) = self.post(&body).await?;
        Ok(status == StatusCode::OK && memchr::memmem::find(&body, b"\"result\"").is_some())
    }

    /// Opens the GET stream; the connection is the stream's from now on.
    async fn get_stream(mut self) -> Result<hyper::body::Incoming, Error> {
        self.sender.ready().await?;
        let response = self
            .sender
            .send_request(self.request(Method::GET, None))
            .await?;
        if response.status() != StatusCode::OK {
            return Err(format!("GET stream: {}", response.status()).into());
        }
        Ok(response.into_body())
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    streams_open: AtomicU64,
    streams_ended: AtomicU64,
    /// Latencies (µs) of the current interval.
    latencies: Mutex<Vec<u32>>,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[rank]) / 1000.0
}

/// Raises the soft descriptor limit to what `needed` takes (up to the hard limit).
fn raise_nofile(needed: usize) {
    let pid = std::process::id().to_string();
    let soft = Command::new("sh").args(["-c", "ulimit -n"]).output();
    let current: usize = soft
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(1024);
    if current >= needed {
        return;
    }
    // `prlimit` (util-linux) changes a running process's limit: ours and, inherited, the
    // server's.
    let target = format!("--nofile={needed}:");
    let raised = Command::new("prlimit")
        .args(["--pid", &pid, &target])
        .status();
    if !matches!(raised, Ok(s) if s.success()) {
        eprintln!(
            "note: could not raise ulimit -n from {current} to {needed}; run `ulimit -n {needed}` first"
        );
    }
}

async fn run(o: Options) -> Result<bool, Error> {
    raise_nofile(o.streams + o.callers + 256);
    let server = Server::start(o.streams + o.callers + 64).await?;
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let start_rss = server.rss_mib();
    println!(
        "soak: {} GET streams, {} callers at {} calls/s, {} s, through the full stack (pid {})",
        o.streams,
        o.callers,
        o.rate,
        o.seconds,
        server.child.id()
    );
    println!("start: RSS {start_rss:.1} MiB, {} fds", server.open_fds());

    // Streams, 64 sessions at a time; each opens its GET stream at once (a connection left
    // idle for 10 s is closed by the server's keep-alive timeout). One retry per stream.
    let mut opened = 0;
    while opened < o.streams {
        let batch = (o.streams - opened).min(64);
        let bodies = futures::future::join_all((0..batch).map(|_| async {
            let mut last = None;
            for _ in 0..2 {
                match Session::open(server.addr).await {
                    Ok(session) => match session.get_stream().await {
                        Ok(body) => return Ok(body),
                        Err(error) => last = Some(error),
                    },
                    Err(error) => last = Some(error),
                }
            }
            Err(last.expect("an error"))
        }))
        .await;
        for body in bodies {
            let body = body?;
            let tally = tally.clone();
            tally.streams_open.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut body = body;
                // Heartbeats arrive every 15 s; the stream must stay open to the end.
                while let Some(frame) = body.frame().await {
                    if frame.is_err() {
                        break;
                    }
                }
                tally.streams_open.fetch_sub(1, Ordering::Relaxed);
                tally.streams_ended.fetch_add(1, Ordering::Relaxed);
            });
        }
        opened += batch;
    }
    // Then the callers, busy from the start.
    let mut callers = Vec::new();
    for _ in 0..o.callers {
        callers.push(Session::open(server.addr).await?);
    }
    println!(
        "{:>6.1}s: {} streams open; RSS {:.1} MiB, {} fds",
        started.elapsed().as_secs_f64(),
        opened,
        server.rss_mib(),
        server.open_fds()
    );

    let deadline = started + Duration::from_secs(o.seconds);
    let pace = Duration::from_secs_f64(o.callers as f64 / o.rate);
    let mut tasks = Vec::new();
    for mut session in callers {
        let tally = tally.clone();
        tasks.push(tokio::spawn(async move {
            let mut next = Instant::now();
            while Instant::now() < deadline {
                let t = Instant::now();
                let ok = matches!(session.call().await, Ok(true));
                let micros = t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                if ok {
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    tally.latencies.lock().await.push(micros);
                } else {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(sender) = connect(session.addr).await {
                        session.sender = sender;
                    }
                }
                next += pace;
                tokio::time::sleep_until(next.into()).await;
            }
        }));
    }

    let mut warm_rss = None;
    let mut all = Vec::new();
    let mut peak_rss = 0.0f64;
    println!("  time |  RSS MiB |    fds | streams | calls ok | failed | p50 ms | p99 ms");
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(o.sample).min(deadline - Instant::now())).await;
        let mut interval = std::mem::take(&mut *tally.latencies.lock().await);
        interval.sort_unstable();
        let rss = server.rss_mib();
        peak_rss = peak_rss.max(rss);
        let t = started.elapsed().as_secs_f64();
        if warm_rss.is_none() && t >= o.warmup as f64 {
            warm_rss = Some(rss);
        }
        println!(
            "{t:>6.0} | {rss:>8.1} | {:>6} | {:>7} | {:>8} | {:>6} | {:>6.2} | {:>6.2}",
            server.open_fds(),
            tally.streams_open.load(Ordering::Relaxed),
            tally.ok.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed),
            percentile(&interval, 0.5),
            percentile(&interval, 0.99),
        );
        all.extend_from_slice(&interval);
    }
    for task in tasks {
        let _ = task.await;
    }
    all.sort_unstable();
    let end_rss = server.rss_mib();
    let warm = warm_rss.unwrap_or(end_rss);
    let failed = tally.failed.load(Ordering::Relaxed);
    let ended = tally.streams_ended.load(Ordering::Relaxed);
    let growth = (end_rss - warm) / warm.max(1.0);
    println!(
        "memory: start {start_rss:.1} MiB, after warm-up ({} s) {warm:.1} MiB, end {end_rss:.1} MiB, peak {peak_rss:.1} MiB ({:+.1} % after warm-up)",
        o.warmup,
        growth * 100.0
    );
    println!(
        "calls: {} ok, {failed} failed, p50 {:.2} ms, p99 {:.2} ms; streams ended early: {ended}; fds at end {}",
        tally.ok.load(Ordering::Relaxed),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        server.open_fds()
    );
    let pass = failed == 0 && ended == 0 && growth <= 0.10;
    println!("{}", if pass { "OK" } else { "FAIL" });
    Ok(pass)
}
