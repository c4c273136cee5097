//! End-to-end cost harness: what mcp-edge costs a real rmcp server, per call and per session.
//!
//! ```text
//! cargo run --release --features jwks-fetch,gateway,aws-lc-rs --example cost -- [--mode stack|proxy|memory|all]
//!     [--connections 32] [--seconds 5] [--rounds 3] [--sessions 2000] [--strace]
//! ```
//!
//! It builds and spawns the example binaries as child processes (`examples/server.rs`,
//! `examples/gateway.rs`, release profile, `--features jwks-fetch,gateway,aws-lc-rs`), so it measures exactly what a
//! user runs, over real TCP with TCP_NODELAY on both sides. The load generator is in this process:
//! N keep-alive HTTP/1.1 connections (hyper), each sending `tools/call echo` sequentially and
//! reading every answer to its end. Both protocol eras are driven:
//!
//! - `legacy`: 2025-11-25 with a session (`initialize`, `notifications/initialized`, then calls
//!   with `Mcp-Session-Id` and `MCP-Protocol-Version`), one session per connection;
//! - `modern`: 2026-07-28 stateless (`Mcp-Method`/`Mcp-Name` headers and `_meta` protocol
//!   version, client capabilities and client info; no initialize, no session).
//!
//! Modes:
//!
//! - `stack` (default): three servers side by side, `bare` (`server --bare`: plain rmcp),
//!   `default` (`server` with no flags: the example's `McpEdge` composition, audit events to
//!   tracing's fmt output, which goes to a log file here) and `full` (`server --jwks-url … --session-mode
//!   enforce --audit-log FILE --heartbeat 15`: JWT ES256 tokens checked against a JWKS this
//!   harness serves, through `CachedVerifier`, one token per connection; sessions enforced;
//!   hash-chained JSON-lines audit file; SSE layer). Rounds are interleaved (bare, default,
//!   full, bare, …, per era) so drift hits every stack alike. Reported per stack and era: calls/s,
//!   the ratio to bare, the server's CPU per call (its own utime + stime from `/proc/PID/stat`,
//!   summed over the rounds), the difference to bare, and p50/p99 latency. `--strace` adds one
//!   short extra segment per stack under `strace -c -f -p PID` and prints syscalls per call
//!   (in proxy mode: per proxy, the gateway and nginx).
//! - `proxy`: two bare replicas (`server --bare`) reached directly, through the gateway example
//!   (`gateway --upstream A --upstream B --audit-log FILE`: envelope affinity, one hash-chained
//!   JSON line per call) and through nginx (`/usr/sbin/nginx` or `nginx` on PATH; skipped when
//!   absent) tuned for MCP: keep-alive upstreams, `proxy_buffering off`,
//!   `hash $http_mcp_session_id consistent`, unlimited keep-alive requests, its access log on.
//!   Both proxies thus write one log line per call to a file (the gateway's richer and
//!   hash-chained, written by its sink's batching thread, whose CPU counts: it is the same
//!   process). Reported: each proxy's CPU per call, the latency it adds over direct,
//!   and, from `--probe-sessions` fresh legacy sessions (initialize, initialized, 3 calls), the
//!   share that stayed on their replica (a session that lands on the other replica gets 404).
//!   For the load, legacy sessions that did not stay are re-created until they work.
//!   Two floor proxies run in the same interleaved rounds, to say what a Rust proxy costs
//!   here before any layer: `floor` (hyper 1's HTTP/1 server and hyper-util's pooled client)
//!   and `floor-edge` (the same server with mcp-edge's upstream pool, `HttpUpstream`, as the
//!   gateway uses it); neither has a layer, both keep sessions on their replica with a map
//!   learned from `initialize` answers. They are this binary, re-run as
//!   `cost --floor-proxy hyper|edge BIND UPSTREAM...`.
//! - `aggregate`: two bare replicas (as in `proxy`) reached directly, through the gateway
//!   example (as in `proxy`: `--audit-log FILE`) and through the aggregator example
//!   (`aggregate --upstream a=URL_A --upstream b=URL_B --audit-log FILE`: the same layers in
//!   front, audit to a hash-chained file, then `Aggregator` routing each `tools/call` by its
//!   namespace), in the same interleaved rounds. The aggregator's clients call `a__echo` or
//!   `b__echo` (alternating by connection), so every call is routed: its name and id
//!   rewritten on the way in, its answer's id on the way out, and in the legacy era one
//!   upstream session per client session per replica. Reported: each path's CPU per call,
//!   the latency it adds over direct, and the aggregator's CPU per call against the
//!   gateway's. Builds the three examples with `--features …,aggregator`.
//! - `memory`: for bare, default and full in turn, opens `--sessions` legacy sessions, each with
//!   its own connection holding an open GET SSE stream, and reports the server's RSS growth
//!   (`VmRSS`) per session.
//!
//! Pinning: with `taskset` (util-linux) and at least 2 allowed CPUs, servers and proxies run on
//! the first (CPU 0) and this load generator (a current-thread tokio runtime, plus the JWKS
//! endpoint) on the second (CPU 1);
//! `--no-pin` turns that off. Other work on the machine still shares those cores: numbers from a
//! busy machine are indicative; compare within one run. Every child's stdout/stderr goes to a
//! temp dir, removed at the end (`--keep` keeps it and prints its path).
//!
//! Logging: the servers and the gateway run with `RUST_LOG=warn,mcp_edge::audit=info` (`--log`
//! to change): rmcp's own per-request info lines are off for every stack alike. The example
//! server's default tracing sink logs audit successes at DEBUG and refusals and failures at
//! WARN, so under this filter the `default` stack writes no line per successful call; the
//! `full` stack's events go to its hash-chained `--audit-log` file.
//!
//! Observability: `--observe` adds the stacks `metrics` (`server --metrics 127.0.0.1:0`),
//! `spans` (`server --otel-noop`) and `observed` (both), and builds every stack with
//! `--features metrics,otel` too, so their Δ against `default` is what observability adds:
//! `cargo run --release --features jwks-fetch,gateway,aws-lc-rs --example cost -- --observe`.
//!
//! Other flags: `--warmup SECS` (default 1, per stack and era before the first round),
//! `--bin-dir DIR` (where `server` and `gateway` are; default: next to this binary),
//! `--no-build` (do not run `cargo build` for them first), `--probe-sessions N` (default 200).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio::net::TcpStream;

const USAGE: &str =
    "usage: cargo run --release --features jwks-fetch,gateway,aws-lc-rs --example cost -- [flags]

  --mode M             stack (default), proxy, memory, all, or aggregate (the aggregator
                       example against the gateway example, both over two bare replicas)
  --connections N      keep-alive connections per stack and era (default 32)
  --seconds S          length of one measured segment (default 5)
  --rounds R           interleaved rounds (default 3)
  --warmup S           warm-up per stack and era before the first round (default 1)
  --sessions N         memory mode: legacy sessions with an open GET stream (default 2000)
  --probe-sessions N   proxy mode: fresh sessions for the stickiness share (default 200)
  --strace             one extra segment per stack (or proxy) under strace -c
  --proxies LIST       proxy mode: which proxies besides direct
                       (default gateway,floor-edge,floor,nginx)
  --no-pin             do not pin servers to CPU 0 and the load to CPU 1
  --no-build           do not run cargo build for the server and gateway examples
  --bin-dir DIR        where the server and gateway binaries are
  --keep               keep the temp dir (logs, audit file, nginx config)
  --observe            also the stacks `metrics` (default + `--metrics`: a Prometheus
                       recorder), `spans` (default + `--otel-noop`: spans handed straight to the
                       OpenTelemetry SDK, whose batch exporter drops them) and `observed`
                       (both); builds with `--features metrics,otel` added, for every stack
  --log FILTER         RUST_LOG for the servers and the gateway
                       (default warn,mcp_edge::audit=info)";

/// The JWT issuer and audience the `full` stack trusts.
const ISSUER: &str = "https://as.cost.test";
const AUDIENCE: &str = "https://mcp.cost.test/mcp";
/// The signing key (P-256, ES256): the test key committed under `tests/keys/`.
const EC_KEY: &[u8] = include_bytes!("../tests/keys/ec1.pem");
/// RUST_LOG for the spawned servers: rmcp's per-request info lines (a stateless 2026-07-28 call
/// logs several) are silenced for every stack alike; audit refusals and failures (WARN) stay on,
/// successes (DEBUG in the example's default sink) do not.
const DEFAULT_LOG: &str = "warn,mcp_edge::audit=info";
const LEGACY_VERSION: &str = "2025-11-25";
const MODERN_VERSION: &str = "2026-07-28";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Stack,
    Proxy,
    Memory,
    All,
    Aggregate,
}

struct Options {
    mode: Mode,
    connections: usize,
    seconds: f64,
    rounds: usize,
    warmup: f64,
    sessions: usize,
    probe_sessions: usize,
    strace: bool,
    proxies: Vec<String>,
    pin: bool,
    build: bool,
    bin_dir: Option<PathBuf>,
    keep: bool,
    observe: bool,
    log: String,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        mode: Mode::Stack,
        connections: 32,
        seconds: 5.0,
        rounds: 3,
        warmup: 1.0,
        sessions: 2000,
        probe_sessions: 200,
        strace: false,
        proxies: ["gateway", "floor-edge", "floor", "nginx"]
            .map(str::to_owned)
            .to_vec(),
        pin: true,
        build: true,
        bin_dir: None,
        keep: false,
        observe: false,
        log: DEFAULT_LOG.to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{flag} needs a value"))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{flag}: `{v}` is not a number"))
        }
        match flag.as_str() {
            "--mode" => {
                o.mode = match value()?.as_str() {
                    "stack" => Mode::Stack,
                    "proxy" => Mode::Proxy,
                    "memory" => Mode::Memory,
                    "all" => Mode::All,
                    "aggregate" => Mode::Aggregate,
                    other => return Err(format!("unknown mode `{other}`")),
                }
            }
            "--connections" => o.connections = num(&flag, value()?)?,
            "--seconds" => o.seconds = num(&flag, value()?)?,
            "--rounds" => o.rounds = num(&flag, value()?)?,
            "--warmup" => o.warmup = num(&flag, value()?)?,
            "--sessions" => o.sessions = num(&flag, value()?)?,
            "--probe-sessions" => o.probe_sessions = num(&flag, value()?)?,
            "--strace" => o.strace = true,
            "--proxies" => o.proxies = value()?.split(',').map(str::to_owned).collect(),
            "--no-pin" => o.pin = false,
            "--no-build" => o.build = false,
            "--bin-dir" => o.bin_dir = Some(value()?.into()),
            "--keep" => o.keep = true,
            "--observe" => o.observe = true,
            "--log" => o.log = value()?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.connections == 0 || o.rounds == 0 || o.seconds <= 0.0 {
        return Err("--connections, --rounds and --seconds must be positive".into());
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--floor-proxy") {
        floor_proxy_main(&args[2..]);
    }
    let options = match parse_options() {
        Ok(o) => o,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    // Pin before the runtime starts its threads, so they inherit the mask.
    let pinned = if options.pin { pin_self() } else { None };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(run(options, pinned));
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn run(options: Options, pinned: Option<(usize, usize)>) -> Result<(), Error> {
    let bin_dir = match &options.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or("no directory for this binary")?
            .to_owned(),
    };
    if options.build && options.mode == Mode::Aggregate {
        build_aggregate_examples()?;
    } else if options.build {
        build_examples(options.observe)?;
    }
    let env = Env {
        server: bin_dir.join("server"),
        gateway: bin_dir.join("gateway"),
        dir: TempDir::new()?,
        pin: pinned.map(|(server, _)| server),
        log: options.log.clone(),
        clk_tck: clk_tck(),
    };
    for binary in [&env.server, &env.gateway] {
        if !binary.exists() {
            return Err(format!(
                "{} not found (build it, or pass --bin-dir)",
                binary.display()
            )
            .into());
        }
    }
    println!(
        "# mcp-edge cost harness\n\n{}; servers log with RUST_LOG={}; load average at start: {}",
        match pinned {
            Some((server, load)) => format!(
                "servers and proxies pinned to CPU {server}, load generator to CPU {load} (taskset)"
            ),
            None => "no CPU pinning".to_owned(),
        },
        options.log,
        load_average()
    );
    let jwks = serve_jwks().await?;
    if matches!(options.mode, Mode::Stack | Mode::All) {
        stack_mode(&options, &env, &jwks).await?;
    }
    if matches!(options.mode, Mode::Proxy | Mode::All) {
        proxy_mode(&options, &env).await?;
    }
    if matches!(options.mode, Mode::Memory | Mode::All) {
        memory_mode(&options, &env, &jwks).await?;
    }
    if options.mode == Mode::Aggregate {
        aggregate_mode(&options, &env).await?;
    }
    println!("\nload average at end: {}", load_average());
    if options.keep {
        println!("kept {}", env.dir.path.display());
        std::mem::forget(env.dir);
    }
    Ok(())
}

/// Builds the server and gateway examples (a no-op when they are fresh).
fn build_examples(observe: bool) -> Result<(), Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let features = if observe {
        "jwks-fetch,gateway,aws-lc-rs,metrics,otel"
    } else {
        "jwks-fetch,gateway,aws-lc-rs"
    };
    let status = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--release", "--features", features])
        .args(["--example", "server", "--example", "gateway"])
        .status()?;
    if !status.success() {
        return Err("cargo build of the server and gateway examples failed".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Processes

struct Env {
    server: PathBuf,
    gateway: PathBuf,
    dir: TempDir,
    /// The CPU servers and proxies are pinned to.
    pin: Option<usize>,
    /// RUST_LOG for the servers and the gateway.
    log: String,
    clk_tck: f64,
}

struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("mcp-edge-cost-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A child process killed on drop.
struct Proc {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Spawns `program args` (pinned to CPU 0 when `env.pin`), logging to the temp dir, and
    /// waits until `addr` accepts connections.
    async fn start(
        env: &Env,
        name: &str,
        program: &Path,
        args: &[String],
        addr: SocketAddr,
    ) -> Result<Proc, Error> {
        let log = env.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let mut command = match env.pin {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &cpu.to_string()]).arg(program);
                c
            }
            None => Command::new(program),
        };
        command
            .args(args)
            .env("RUST_LOG", &env.log)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = command.spawn()?;
        let mut proc = Proc { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(proc);
            }
            if let Some(status) = proc.child.try_wait()? {
                return Err(format!("{name} exited ({status}): {}", proc.log_tail()).into());
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not listen on {addr}: {}", proc.log_tail()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// utime + stime of the whole process, in seconds.
    fn cpu_seconds(&self, clk_tck: f64) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // After the `(comm)`: state is field 3, utime field 14, stime field 15.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (ticks(11) + ticks(12)) as f64 / clk_tck
    }

    /// Resident set size in KiB.
    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> Result<SocketAddr, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Pins this process to the second CPU it may use; returns (CPU for servers, CPU for load).
fn pin_self() -> Option<(usize, usize)> {
    let cpus = allowed_cpus();
    let (server, load) = (*cpus.first()?, *cpus.get(1)?);
    Command::new("taskset")
        .args([
            "-a",
            "-c",
            "-p",
            &load.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        .then_some((server, load))
}

/// The CPUs this process may run on (`Cpus_allowed_list`, e.g. `0-1,4`).
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_default();
    let mut cpus = Vec::new();
    for range in list.trim().split(',').filter(|r| !r.is_empty()) {
        let (low, high) = range.split_once('-').unwrap_or((range, range));
        if let (Ok(low), Ok(high)) = (low.parse::<usize>(), high.parse::<usize>()) {
            cpus.extend(low..=high);
        }
    }
    cpus
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn find_nginx() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/sbin/nginx");
    if fixed.exists() {
        return Some(fixed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nginx"))
            .find(|p| p.exists())
    })
}

// ---------------------------------------------------------------------------------------------
// JWT

/// The JWKS endpoint (in this process) and a token minter.
struct Jwks {
    url: String,
    key: EncodingKey,
}

impl Jwks {
    /// An ES256 access token for `sub`, valid for an hour.
    fn mint(&self, sub: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "client_id": "cost",
            "iat": now, "exp": now + 3600,
        });
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("ec1".to_owned());
        header.typ = Some("at+jwt".to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("sign")
    }
}

async fn serve_jwks() -> Result<Jwks, Error> {
    // The provider the library installs: aws-lc-rs with that feature, else RustCrypto.
    #[cfg(feature = "aws-lc-rs")]
    let provider = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(not(feature = "aws-lc-rs"))]
    let provider = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
    provider.install_default().ok();
    let key = EncodingKey::from_ec_pem(EC_KEY)?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
    jwk.common.key_id = Some("ec1".to_owned());
    let body = serde_json::to_string(&JwkSet { keys: vec![jwk] })?;
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "max-age=3600"),
                    ],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/jwks", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Jwks { url, key })
}

// ---------------------------------------------------------------------------------------------
// The MCP client

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Era {
    Legacy,
    Modern,
}

impl Era {
    fn name(self) -> &'static str {
        match self {
            Era::Legacy => "legacy 2025-11-25",
            Era::Modern => "modern 2026-07-28",
        }
    }
}

/// One keep-alive connection speaking MCP to one endpoint.
struct Client {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    era: Era,
    token: Option<String>,
    session: Option<String>,
    next_id: u64,
    /// The tool `call` calls (`echo`; through the aggregator, a namespaced one).
    tool: &'static str,
}

struct Answer {
    status: StatusCode,
    session: Option<String>,
    body: Bytes,
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

impl Client {
    /// Connects; for the legacy era also opens a session.
    async fn open(addr: SocketAddr, era: Era, token: Option<String>) -> Result<Client, Error> {
        let mut client = Client {
            addr,
            sender: connect(addr).await?,
            era,
            token,
            session: None,
            next_id: 1,
            tool: "echo",
        };
        if era == Era::Legacy {
            client.initialize().await?;
        }
        Ok(client)
    }

    fn request(
        &self,
        method: Method,
        body: Option<Bytes>,
        mcp: Option<&str>,
    ) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(method)
            .uri("/mcp")
            .header(header::HOST, self.addr.to_string());
        if body.is_some() {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ACCEPT, "application/json, text/event-stream");
        } else {
            builder = builder.header(header::ACCEPT, "text/event-stream");
        }
        if let Some(token) = &self.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        match self.era {
            Era::Legacy => {
                if let Some(session) = &self.session {
                    builder = builder
                        .header("mcp-session-id", session.as_str())
                        .header("mcp-protocol-version", LEGACY_VERSION);
                }
            }
            Era::Modern => {
                builder = builder.header("mcp-protocol-version", MODERN_VERSION);
                if let Some(method) = mcp {
                    builder = builder.header("mcp-method", method);
                }
                if mcp == Some("tools/call") {
                    builder = builder.header("mcp-name", self.tool);
                }
            }
        }
        builder
            .body(Full::new(body.unwrap_or_default()))
            .expect("request")
    }

    /// Sends one request and reads the whole answer. A broken connection is re-opened once.
    async fn send(&mut self, body: Bytes, mcp: Option<&str>) -> Result<Answer, Error> {
        let mut reconnected = false;
        loop {
            let request = self.request(Method::POST, Some(body.clone()), mcp);
            let sent = async {
                self.sender.ready().await?;
                let response = self.sender.send_request(request).await?;
                let status = response.status();
                let session = response
                    .headers()
                    .get("mcp-session-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>(Answer {
                    status,
                    session,
                    body,
                })
            }
            .await;
            match sent {
                Ok(answer) => return Ok(answer),
                Err(_) if !reconnected => {
                    reconnected = true;
                    self.sender = connect(self.addr).await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    async fn initialize(&mut self) -> Result<(), Error> {
        self.session = None;
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": LEGACY_VERSION, "capabilities": {},
                "clientInfo": {"name": "cost", "version": "0"},
            },
        });
        let answer = self.send(Bytes::from(body.to_string()), None).await?;
        if answer.status != StatusCode::OK {
            return Err(format!("initialize: {} {}", answer.status, lossy(&answer.body)).into());
        }
        self.session = Some(answer.session.ok_or("initialize: no mcp-session-id")?);
        let body = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let answer = self.send(Bytes::from_static(body), None).await?;
        if !answer.status.is_success() {
            return Err(format!("notifications/initialized: {}", answer.status).into());
        }
        Ok(())
    }

    /// One `tools/call echo`; `Ok(true)` for a 200 with a result.
    async fn call(&mut self) -> Result<bool, Error> {
        let id = self.next_id;
        self.next_id += 1;
        let tool = self.tool;
        let body = match self.era {
            Era::Legacy => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"hello"}}}}}}"#
            ),
            Era::Modern => format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{"text":"hello"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"{MODERN_VERSION}","io.modelcontextprotocol/clientCapabilities":{{}},"io.modelcontextprotocol/clientInfo":{{"name":"cost","version":"0"}}}}}}}}"#
            ),
        };
        let answer = self.send(Bytes::from(body), Some("tools/call")).await?;
        Ok(answer.status == StatusCode::OK
            && memchr::memmem::find(&answer.body, b"\"result\"").is_some())
    }

    /// Legacy: opens the session's GET stream and keeps its connection busy with it (the body
    /// is handed back unread).
    async fn open_get_stream(&mut self) -> Result<hyper::body::Incoming, Error> {
        let request = self.request(Method::GET, None, None);
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        if response.status() != StatusCode::OK {
            return Err(format!("GET stream: {}", response.status()).into());
        }
        Ok(response.into_body())
    }
}

fn lossy(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

/// Opens `n` clients concurrently (at most 32 at a time).
async fn open_clients(
    addr: SocketAddr,
    era: Era,
    n: usize,
    token: impl Fn(usize) -> Option<String>,
) -> Result<Vec<Client>, Error> {
    let mut clients = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + 32).min(n);
        let batch = (start..end).map(|i| Client::open(addr, era, token(i)));
        for client in futures::future::join_all(batch).await {
            clients.push(client?);
        }
        start = end;
    }
    Ok(clients)
}

// ---------------------------------------------------------------------------------------------
// Load segments

/// What one (target, era) accumulated over its rounds.
#[derive(Default)]
struct Tally {
    calls: u64,
    errors: u64,
    wall: f64,
    /// CPU seconds per watched process (server, or proxy then replicas).
    cpu: Vec<f64>,
    latencies_ns: Vec<u64>,
}

impl Tally {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.wall.max(1e-9)
    }
    fn cpu_us_per_call(&self, process: usize) -> f64 {
        self.cpu.get(process).copied().unwrap_or(0.0) * 1e6 / (self.calls.max(1) as f64)
    }
    fn percentile_us(&mut self, p: f64) -> f64 {
        if self.latencies_ns.is_empty() {
            return 0.0;
        }
        self.latencies_ns.sort_unstable();
        let i = ((self.latencies_ns.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_ns[i] as f64 / 1000.0
    }
}

/// Runs every client for `seconds`, each sending calls back to back; returns the clients.
async fn segment(
    clients: Vec<Client>,
    seconds: f64,
    watched: &[&Proc],
    clk_tck: f64,
    tally: Option<&mut Tally>,
) -> Vec<Client> {
    let cpu_before: Vec<f64> = watched.iter().map(|p| p.cpu_seconds(clk_tck)).collect();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let tasks = clients.into_iter().map(|mut client| async move {
        let mut latencies = Vec::with_capacity(4096);
        let mut errors = 0u64;
        while Instant::now() < deadline {
            let t0 = Instant::now();
            let ok = client.call().await.unwrap_or(false);
            latencies.push(t0.elapsed().as_nanos() as u64);
            if !ok {
                errors += 1;
            }
        }
        (client, latencies, errors)
    });
    let results = futures::future::join_all(tasks).await;
    let wall = start.elapsed().as_secs_f64();
    let cpu_after: Vec<f64> = watched.iter().map(|p| p.cpu_seconds(clk_tck)).collect();
    let mut clients = Vec::with_capacity(results.len());
    match tally {
        Some(tally) => {
            tally.wall += wall;
            tally.cpu.resize(watched.len(), 0.0);
            for (i, (before, after)) in cpu_before.iter().zip(&cpu_after).enumerate() {
                tally.cpu[i] += after - before;
            }
            for (client, latencies, errors) in results {
                tally.calls += latencies.len() as u64;
                tally.errors += errors;
                tally.latencies_ns.extend(latencies);
                clients.push(client);
            }
        }
        None => clients.extend(results.into_iter().map(|(client, _, _)| client)),
    }
    clients
}

// ---------------------------------------------------------------------------------------------
// Stack mode

async fn start_server(env: &Env, name: &str, flags: &[String]) -> Result<Proc, Error> {
    let addr = free_addr()?;
    let mut args = vec!["--bind".to_owned(), addr.to_string()];
    args.extend_from_slice(flags);
    Proc::start(env, name, &env.server, &args, addr).await
}

fn full_flags(env: &Env, jwks: &Jwks, name: &str) -> Vec<String> {
    let audit = env.dir.path().join(format!("{name}-audit.jsonl"));
    [
        "--jwks-url",
        &jwks.url,
        "--issuer",
        ISSUER,
        "--audience",
        AUDIENCE,
        "--session-mode",
        "enforce",
        "--audit-log",
        &audit.display().to_string(),
        "--heartbeat",
        "15",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The three stacks of stack and memory mode: name, server flags, whether it needs tokens.
fn stacks(
    env: &Env,
    jwks: &Jwks,
    suffix: &str,
    observe: bool,
) -> Vec<(&'static str, Vec<String>, bool)> {
    let metrics = || vec!["--metrics".to_owned(), "127.0.0.1:0".to_owned()];
    let spans = || vec!["--otel-noop".to_owned()];
    let observed = observe.then(|| {
        [
            ("metrics", metrics(), false),
            ("spans", spans(), false),
            ("observed", [metrics(), spans()].concat(), false),
        ]
    });
    let mut stacks = vec![
        ("bare", vec!["--bare".to_owned()], false),
        ("default", vec![], false),
        (
            "full",
            full_flags(env, jwks, &format!("full{suffix}")),
            true,
        ),
    ];
    stacks.extend(observed.into_iter().flatten());
    stacks
}

async fn stack_mode(options: &Options, env: &Env, jwks: &Jwks) -> Result<(), Error> {
    let stacks = stacks(env, jwks, "", options.observe);
    let mut servers = Vec::new();
    for (name, flags, _) in &stacks {
        servers.push(start_server(env, name, flags).await?);
    }
    let eras = [Era::Legacy, Era::Modern];
    // clients[stack][era]
    let mut clients: Vec<Vec<Vec<Client>>> = Vec::new();
    for ((name, _, auth), server) in stacks.iter().zip(&servers) {
        let mut per_era = Vec::new();
        for era in eras {
            let token = |i: usize| auth.then(|| jwks.mint(&format!("user-{name}-{era:?}-{i}")));
            per_era.push(open_clients(server.addr, era, options.connections, token).await?);
        }
        clients.push(per_era);
    }
    // Warm-up, then interleaved rounds.
    for (per_era, server) in clients.iter_mut().zip(&servers) {
        for set in per_era.iter_mut() {
            *set = segment(
                std::mem::take(set),
                options.warmup,
                &[server],
                env.clk_tck,
                None,
            )
            .await;
        }
    }
    let mut tallies: Vec<Vec<Tally>> = (0..servers.len())
        .map(|_| eras.iter().map(|_| Tally::default()).collect())
        .collect();
    for round in 0..options.rounds {
        eprintln!("stack: round {}/{}", round + 1, options.rounds);
        for e in 0..eras.len() {
            for (s, server) in servers.iter().enumerate() {
                let c = std::mem::take(&mut clients[s][e]);
                clients[s][e] = segment(
                    c,
                    options.seconds,
                    &[server],
                    env.clk_tck,
                    Some(&mut tallies[s][e]),
                )
                .await;
            }
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Stack cost: {} keep-alive connections per stack and era, {} rounds × {} s, interleaved\n",
        options.connections, options.rounds, options.seconds
    );
    let _ = writeln!(
        out,
        "| era | stack | calls/s | × bare | server CPU µs/call | Δ CPU vs bare µs | calls per CPU-s | × bare | p50 µs | p99 µs | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (e, era) in eras.iter().enumerate() {
        let bare_rate = tallies[0][e].rate();
        let bare_cpu = tallies[0][e].cpu_us_per_call(0);
        for (s, (name, _, _)) in stacks.iter().enumerate() {
            let t = &mut tallies[s][e];
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.3} | {:.1} | {:+.1} | {:.0} | {:.3} | {:.0} | {:.0} | {} |",
                era.name(),
                name,
                t.rate(),
                t.rate() / bare_rate.max(1e-9),
                t.cpu_us_per_call(0),
                t.cpu_us_per_call(0) - bare_cpu,
                1e6 / t.cpu_us_per_call(0).max(1e-9),
                bare_cpu / t.cpu_us_per_call(0).max(1e-9),
                t.percentile_us(0.50),
                t.percentile_us(0.99),
                t.errors
            );
        }
    }
    let _ = writeln!(
        out,
        "\nbare = `server --bare`; default = `server` (audit to tracing: refusals at WARN, successes at DEBUG, filtered out); full = \
         `server --jwks-url … --session-mode enforce --audit-log FILE --heartbeat 15` (ES256 JWT, \
         one token per connection, CachedVerifier). CPU = the server process's utime+stime \
         (/proc/PID/stat, {} ticks/s) over all rounds ÷ calls. Calls per CPU-second = \
         1e6 ÷ CPU µs/call: the throughput of a CPU-bound server on one core, which stays \
         meaningful when other processes share the cores (measured calls/s then depend on the \
         scheduler's share, e.g. a server with more runnable threads gets more of it).",
        env.clk_tck
    );
    if options.observe {
        let _ = writeln!(
            out,
            "\nmetrics = default + `--metrics 127.0.0.1:0` (Prometheus recorder installed, every \
             hook recording); spans = default + `--otel-noop` (mcp-edge's spans handed \
             straight to the OpenTelemetry SDK, `AuditLayer::otel_spans`, with a batch exporter \
             that drops them); observed = both. \
             All stacks built with `--features metrics,otel`: what observability adds is \
             the Δ of these rows against `default`."
        );
    }
    print!("{out}");

    if options.strace {
        let targets: Vec<(&str, &Proc, usize)> = stacks
            .iter()
            .zip(&servers)
            .enumerate()
            .map(|(i, ((name, _, _), server))| (*name, server, i))
            .collect();
        strace_compare(options, env, &targets, &mut clients).await?;
    }
    Ok(())
}

/// One extra segment per stack (legacy then modern) with `strace -c -f -p PID` attached;
/// prints syscalls per call.
///
/// `targets`: (name, the process to trace, index of its clients in `clients`).
async fn strace_compare(
    options: &Options,
    env: &Env,
    targets: &[(&str, &Proc, usize)],
    clients: &mut [Vec<Vec<Client>>],
) -> Result<(), Error> {
    let seconds = options.seconds.min(3.0);
    for (e, era) in [Era::Legacy, Era::Modern].into_iter().enumerate() {
        // syscall → per-target calls per MCP call
        let mut table: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        let mut totals = vec![0.0; targets.len()];
        for (s, &(name, server, c)) in targets.iter().enumerate() {
            let out = env.dir.path().join(format!("strace-{name}-{e}.txt"));
            let mut strace = Command::new("strace")
                .args(["-c", "-f", "-o"])
                .arg(&out)
                .args(["-p", &server.pid().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut tally = Tally::default();
            let set = std::mem::take(&mut clients[c][e]);
            clients[c][e] = segment(set, seconds, &[server], env.clk_tck, Some(&mut tally)).await;
            Command::new("kill")
                .args(["-INT", &strace.id().to_string()])
                .status()?;
            strace.wait()?;
            let summary = std::fs::read_to_string(&out).unwrap_or_default();
            let calls = tally.calls.max(1) as f64;
            for (syscall, count) in parse_strace(&summary) {
                let row = table
                    .entry(syscall)
                    .or_insert_with(|| vec![0.0; targets.len()]);
                row[s] = count as f64 / calls;
                totals[s] += count as f64 / calls;
            }
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n### Syscalls per call under `strace -c -f`, {} ({} s per stack)\n",
            era.name(),
            seconds
        );
        let names: Vec<&str> = targets.iter().map(|t| t.0).collect();
        let _ = writeln!(
            out,
            "| syscall | {} |\n|---|{}",
            names.join(" | "),
            "---:|".repeat(names.len())
        );
        let mut rows: Vec<_> = table.into_iter().collect();
        rows.sort_by(|a, b| b.1.iter().sum::<f64>().total_cmp(&a.1.iter().sum::<f64>()));
        for (syscall, counts) in rows {
            if counts.iter().all(|c| *c < 0.005) {
                continue;
            }
            let cells: Vec<String> = counts.iter().map(|c| format!("{c:.2}")).collect();
            let _ = writeln!(out, "| {syscall} | {} |", cells.join(" | "));
        }
        let cells: Vec<String> = totals.iter().map(|c| format!("{c:.2}")).collect();
        let _ = writeln!(out, "| **total** | {} |", cells.join(" | "));
        print!("{out}");
    }
    Ok(())
}

/// `(syscall, calls)` from an `strace -c` summary.
fn parse_strace(summary: &str) -> Vec<(String, u64)> {
    summary
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // % time, seconds, usecs/call, calls, [errors], syscall
            if fields.len() < 5 || fields[0].parse::<f64>().is_err() {
                return None;
            }
            let name = (*fields.last()?).to_owned();
            if name == "total" {
                return None;
            }
            Some((name, fields[3].parse().ok()?))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Proxy mode

async fn start_nginx(env: &Env, binary: &Path, upstreams: &[SocketAddr]) -> Result<Proc, Error> {
    let addr = free_addr()?;
    let dir = env.dir.path().join("nginx");
    std::fs::create_dir_all(&dir)?;
    let p = |name: &str| dir.join(name).display().to_string();
    let servers: String = upstreams
        .iter()
        .map(|a| format!("        server {a};\n"))
        .collect();
    let conf = format!(
        "master_process off;
worker_processes 1;
pid {pid};
error_log {error_log} warn;
events {{ worker_connections 4096; }}
http {{
    access_log {access_log};
    client_body_temp_path {body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream replicas {{
        hash $http_mcp_session_id consistent;
{servers}        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen {addr};
        location /mcp {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_cache off;
            proxy_read_timeout 3600s;
        }}
    }}
}}
",
        pid = p("nginx.pid"),
        error_log = p("error.log"),
        access_log = p("access.log"),
        body = p("client_body"),
        proxy = p("proxy"),
        fastcgi = p("fastcgi"),
        uwsgi = p("uwsgi"),
        scgi = p("scgi"),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let args = [
        "-p".to_owned(),
        dir.display().to_string(),
        "-e".to_owned(),
        p("error.log"),
        "-c".to_owned(),
        conf_path.display().to_string(),
        "-g".to_owned(),
        "daemon off;".to_owned(),
    ];
    Proc::start(env, "nginx", binary, &args, addr).await
}

/// Fresh legacy sessions through `addr`: initialize, initialized, 3 calls each. Returns how
/// many sessions had every call answered (stayed on the replica that created them).
async fn probe_stickiness(addr: SocketAddr, sessions: usize) -> Result<usize, Error> {
    let mut stayed = 0;
    let mut start = 0;
    while start < sessions {
        let end = (start + 32).min(sessions);
        let batch = (start..end).map(|_| async move {
            let mut client = Client::open(addr, Era::Legacy, None).await.ok()?;
            for _ in 0..3 {
                if !client.call().await.ok()? {
                    return Some(false);
                }
            }
            Some(true)
        });
        stayed += futures::future::join_all(batch)
            .await
            .into_iter()
            .filter(|ok| *ok == Some(true))
            .count();
        start = end;
    }
    Ok(stayed)
}

/// Clients whose calls work through `addr` (for legacy: sessions re-created, on a new
/// connection, until `initialized` and a call succeed).
async fn working_clients(addr: SocketAddr, era: Era, n: usize) -> Result<Vec<Client>, Error> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let mut tries = 0;
        let client = loop {
            tries += 1;
            if tries > 20 {
                return Err(format!("no working {era:?} client through {addr} in 20 tries").into());
            }
            let Ok(mut client) = Client::open(addr, era, None).await else {
                continue;
            };
            if client.call().await.unwrap_or(false) {
                break client;
            }
        };
        clients.push(client);
    }
    Ok(clients)
}

async fn proxy_mode(options: &Options, env: &Env) -> Result<(), Error> {
    let replicas = [
        start_server(env, "replica-a", &["--bare".to_owned()]).await?,
        start_server(env, "replica-b", &["--bare".to_owned()]).await?,
    ];
    let gateway_addr = free_addr()?;
    let audit_log = env.dir.path().join("gateway-audit.jsonl");
    let mut gateway_args = vec![
        "--bind".to_owned(),
        gateway_addr.to_string(),
        "--audit-log".to_owned(),
        audit_log.display().to_string(),
    ];
    for replica in &replicas {
        gateway_args.push("--upstream".to_owned());
        gateway_args.push(format!("http://{}/mcp", replica.addr));
    }
    let gateway = Proc::start(env, "gateway", &env.gateway, &gateway_args, gateway_addr).await?;
    let nginx = match find_nginx() {
        Some(binary) => {
            let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
            Some(start_nginx(env, &binary, &addrs).await?)
        }
        None => {
            println!("\n(nginx not found: proxy mode compares direct and gateway only)");
            None
        }
    };
    let mut floors = Vec::new();
    for floor in [Floor::Edge, Floor::Hyper] {
        if options.proxies.iter().any(|p| p == floor.name()) {
            floors.push((floor.name(), start_floor(env, floor, &replicas).await?));
        }
    }
    let mut proxies: Vec<(&str, Option<&Proc>)> = vec![("direct", None)];
    if options.proxies.iter().any(|p| p == "gateway") {
        proxies.push(("gateway", Some(&gateway)));
    }
    for (name, floor) in &floors {
        proxies.push((name, Some(floor)));
    }
    if let Some(nginx) = nginx
        .as_ref()
        .filter(|_| options.proxies.iter().any(|p| p == "nginx"))
    {
        proxies.push(("nginx", Some(nginx)));
    }

    // Stickiness, from fresh sessions.
    let mut sticky = Vec::new();
    for (name, proxy) in &proxies[1..] {
        let proxy = proxy.expect("a proxy");
        let stayed = probe_stickiness(proxy.addr, options.probe_sessions).await?;
        sticky.push((*name, stayed));
    }

    let eras = [Era::Legacy, Era::Modern];
    let mut clients: Vec<Vec<Vec<Client>>> = Vec::new();
    for (_, proxy) in &proxies {
        let mut per_era = Vec::new();
        for era in eras {
            let set = match proxy {
                // Direct: connections alternate between the replicas.
                None => {
                    let mut set = Vec::new();
                    for i in 0..options.connections {
                        set.push(Client::open(replicas[i % 2].addr, era, None).await?);
                    }
                    set
                }
                Some(proxy) => working_clients(proxy.addr, era, options.connections).await?,
            };
            per_era.push(set);
        }
        clients.push(per_era);
    }
    // The processes whose CPU counts: the proxy (if any), then both replicas.
    fn watched<'a>(proxy: Option<&'a Proc>, replicas: &'a [Proc]) -> Vec<&'a Proc> {
        proxy.into_iter().chain(replicas).collect()
    }
    for (per_era, (_, proxy)) in clients.iter_mut().zip(&proxies) {
        let watched = watched(*proxy, &replicas);
        for set in per_era.iter_mut() {
            *set = segment(
                std::mem::take(set),
                options.warmup,
                &watched,
                env.clk_tck,
                None,
            )
            .await;
        }
    }
    let mut tallies: Vec<Vec<Tally>> = (0..proxies.len())
        .map(|_| eras.iter().map(|_| Tally::default()).collect())
        .collect();
    for round in 0..options.rounds {
        eprintln!("proxy: round {}/{}", round + 1, options.rounds);
        for e in 0..eras.len() {
            for (p, (_, proxy)) in proxies.iter().enumerate() {
                let c = std::mem::take(&mut clients[p][e]);
                clients[p][e] = segment(
                    c,
                    options.seconds,
                    &watched(*proxy, &replicas),
                    env.clk_tck,
                    Some(&mut tallies[p][e]),
                )
                .await;
            }
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Proxy cost: two bare replicas, {} connections, {} rounds × {} s, interleaved\n",
        options.connections, options.rounds, options.seconds
    );
    let _ = writeln!(
        out,
        "| era | path | calls/s | proxy CPU µs/call | replicas CPU µs/call | p50 µs | p99 µs | added p50 µs | added p99 µs | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (e, era) in eras.iter().enumerate() {
        let direct_p50 = tallies[0][e].percentile_us(0.50);
        let direct_p99 = tallies[0][e].percentile_us(0.99);
        for (p, (name, proxy)) in proxies.iter().enumerate() {
            let t = &mut tallies[p][e];
            let (proxy_cpu, replica_from) = match proxy {
                Some(_) => (format!("{:.1}", t.cpu_us_per_call(0)), 1),
                None => ("–".to_owned(), 0),
            };
            let replicas_cpu =
                t.cpu_us_per_call(replica_from) + t.cpu_us_per_call(replica_from + 1);
            let (p50, p99) = (t.percentile_us(0.50), t.percentile_us(0.99));
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {} | {:.1} | {:.0} | {:.0} | {:+.0} | {:+.0} | {} |",
                era.name(),
                name,
                t.rate(),
                proxy_cpu,
                replicas_cpu,
                p50,
                p99,
                p50 - direct_p50,
                p99 - direct_p99,
                t.errors
            );
        }
    }
    let _ = writeln!(
        out,
        "\nSessions that stayed on their replica ({} fresh legacy sessions each: initialize, \
         initialized, 3 calls):",
        options.probe_sessions
    );
    for (name, stayed) in sticky {
        let _ = writeln!(
            out,
            "- {name}: {stayed}/{} ({:.0}%)",
            options.probe_sessions,
            100.0 * stayed as f64 / options.probe_sessions.max(1) as f64
        );
    }
    let _ = writeln!(
        out,
        "\ngateway = `gateway --upstream A --upstream B --audit-log FILE` (envelope affinity, one \
         hash-chained JSON line per call); floor-edge = hyper 1's HTTP/1 server and mcp-edge's \
         upstream pool, no layer; floor = hyper 1's server and hyper-util's pooled client, no \
         layer (both route sessions with a map learned from `initialize` answers); nginx: 1 worker, keepalive 64 upstream connections, proxy_buffering \
         off, `hash $http_mcp_session_id consistent`, access log on. For the load, legacy \
         sessions that did not stay were re-created until a call worked."
    );
    print!("{out}");

    if options.strace {
        let targets: Vec<(&str, &Proc, usize)> = proxies
            .iter()
            .enumerate()
            .filter_map(|(i, (name, proxy))| proxy.map(|proxy| (*name, proxy, i)))
            .collect();
        strace_compare(options, env, &targets, &mut clients).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Memory mode

async fn memory_mode(options: &Options, env: &Env, jwks: &Jwks) -> Result<(), Error> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Memory: legacy sessions, each with its own connection holding an open GET stream\n"
    );
    let _ = writeln!(
        out,
        "| stack | sessions | RSS before MiB | RSS after MiB | KiB per session |\n|---|---:|---:|---:|---:|"
    );
    let mut bare_per_session = None;
    for (name, flags, auth) in stacks(env, jwks, "-memory", options.observe) {
        let server = start_server(env, &format!("{name}-memory"), &flags).await?;
        // Warm up allocator and caches with a few sessions and calls first.
        let token = |i: usize| auth.then(|| jwks.mint(&format!("mem-{name}-{i}")));
        let mut warm = open_clients(server.addr, Era::Legacy, 8, |i| token(1_000_000 + i)).await?;
        for client in &mut warm {
            client.call().await?;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = server.rss_kib();
        let clients = open_clients(server.addr, Era::Legacy, options.sessions, &token).await?;
        let mut streams = Vec::with_capacity(clients.len());
        let mut held = Vec::with_capacity(clients.len());
        for mut client in clients {
            streams.push(client.open_get_stream().await?);
            held.push(client);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = server.rss_kib();
        let per_session = (after as f64 - before as f64) / options.sessions.max(1) as f64;
        let versus = match bare_per_session {
            None => {
                bare_per_session = Some(per_session);
                String::new()
            }
            Some(bare) => format!(" ({:+.1} vs bare)", per_session - bare),
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {:.1} | {:.1} | {:.1}{versus} |",
            options.sessions,
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            per_session
        );
        eprintln!("memory: {name} done");
        drop(streams);
        drop(held);
        drop(warm);
        drop(server);
    }
    print!("{out}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Floor proxies: what a Rust hyper proxy with no layers costs here

/// The floor proxies: `hyper` is hyper 1's server with hyper-util's pooled client (TCP_NODELAY
/// both ways, 90 s pool idle timeout as the gateway); `edge` is the same server with
/// mcp-edge's own upstream pool (`HttpUpstream`, the gateway's settings) and no layer. Both
/// keep legacy sessions on their replica with the least that can: a map from the session id
/// the replica handed out to that replica (learned from the `initialize` answer); anything
/// else goes round-robin.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Floor {
    Hyper,
    Edge,
}

impl Floor {
    fn name(self) -> &'static str {
        match self {
            Floor::Hyper => "floor",
            Floor::Edge => "floor-edge",
        }
    }
}

/// Session id → replica, and the round-robin counter for the rest.
#[derive(Clone)]
struct FloorRoutes {
    sessions: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Bytes, usize>>>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    replicas: usize,
}

impl FloorRoutes {
    fn new(replicas: usize) -> Self {
        FloorRoutes {
            sessions: Default::default(),
            next: Default::default(),
            replicas,
        }
    }

    /// The replica for a request, and whether it named a session.
    fn pick(&self, headers: &http::HeaderMap) -> (usize, bool) {
        let session = headers.get("mcp-session-id");
        if let Some(id) = session
            && let Some(&replica) = self.sessions.lock().unwrap().get(id.as_bytes())
        {
            return (replica, true);
        }
        let next = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (next % self.replicas, session.is_some())
    }

    /// Remembers the session a replica opened.
    fn learn(&self, replica: usize, headers: &http::HeaderMap) {
        if let Some(id) = headers.get("mcp-session-id") {
            self.sessions
                .lock()
                .unwrap()
                .insert(Bytes::copy_from_slice(id.as_bytes()), replica);
        }
    }
}

/// `cost --floor-proxy hyper|edge BIND UPSTREAM_ADDR...`: runs one floor proxy until killed.
fn floor_proxy_main(args: &[String]) -> ! {
    let (kind, bind, upstreams) = match args {
        [kind, bind, upstreams @ ..] if !upstreams.is_empty() => (kind, bind, upstreams),
        _ => {
            eprintln!("usage: cost --floor-proxy hyper|edge BIND UPSTREAM_ADDR...");
            std::process::exit(2);
        }
    };
    let floor = match kind.as_str() {
        "hyper" => Floor::Hyper,
        "edge" => Floor::Edge,
        other => {
            eprintln!("unknown floor proxy `{other}`");
            std::process::exit(2);
        }
    };
    let bind: SocketAddr = bind.parse().expect("BIND address");
    let upstreams: Vec<SocketAddr> = upstreams
        .iter()
        .map(|u| u.parse().expect("upstream address"))
        .collect();
    // As the gateway example: tokio's multi-thread runtime (one worker per allowed CPU).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match floor {
            Floor::Hyper => floor_hyper(bind, &upstreams).await,
            Floor::Edge => floor_edge(bind, &upstreams).await,
        }
    });
    if let Err(error) = result {
        eprintln!("floor proxy: {error}");
        std::process::exit(1);
    }
    std::process::exit(0)
}

/// Accepts connections on `bind` (TCP_NODELAY) and serves each with hyper's HTTP/1 server.
async fn floor_serve<S, B>(bind: SocketAddr, service: S) -> Result<(), Error>
where
    S: hyper::service::Service<Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Error>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Error>,
{
    let listener = tokio::net::TcpListener::bind(bind).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let service = service.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn floor_hyper(bind: SocketAddr, upstreams: &[SocketAddr]) -> Result<(), Error> {
    use hyper_util::client::legacy::{Client as PoolClient, connect::HttpConnector};
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: PoolClient<HttpConnector, hyper::body::Incoming> =
        PoolClient::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .build(connector);
    let targets: std::sync::Arc<[(http::Uri, http::HeaderValue)]> = upstreams
        .iter()
        .map(|a| {
            (
                format!("http://{a}/mcp").parse().expect("uri"),
                http::HeaderValue::from_str(&a.to_string()).expect("host"),
            )
        })
        .collect();
    let routes = FloorRoutes::new(upstreams.len());
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let (client, targets, routes) = (client.clone(), targets.clone(), routes.clone());
        async move {
            let (mut parts, body) = request.into_parts();
            let (replica, had_session) = routes.pick(&parts.headers);
            let (uri, host) = &targets[replica];
            parts.uri = uri.clone();
            parts.headers.insert(header::HOST, host.clone());
            let response = client.request(Request::from_parts(parts, body)).await?;
            if !had_session {
                routes.learn(replica, response.headers());
            }
            Ok::<_, hyper_util::client::legacy::Error>(response)
        }
    });
    floor_serve(bind, service).await
}

async fn floor_edge(bind: SocketAddr, upstreams: &[SocketAddr]) -> Result<(), Error> {
    use mcp_edge::proxy::{HttpUpstream, HttpUpstreamBuilder};
    use tower::Service as _;
    // The gateway example's settings; one pool for both replicas.
    let builder = HttpUpstreamBuilder::new()
        .connect_timeout(Duration::from_secs(1))
        .response_head_timeout(Duration::from_secs(120));
    let mut pool: Vec<HttpUpstream<hyper::body::Incoming>> = Vec::new();
    for addr in upstreams {
        let url = format!("http://{addr}/mcp");
        let upstream = match pool.first() {
            Some(first) => first.to(&url),
            None => builder.build(&url),
        }?;
        pool.push(upstream);
    }
    let pool: std::sync::Arc<[HttpUpstream<hyper::body::Incoming>]> = pool.into();
    let routes = FloorRoutes::new(upstreams.len());
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let (pool, routes) = (pool.clone(), routes.clone());
        async move {
            let (replica, had_session) = routes.pick(request.headers());
            let response = pool[replica].clone().call(request).await?;
            if !had_session {
                routes.learn(replica, response.headers());
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    floor_serve(bind, service).await
}

/// Starts a floor proxy (this binary, `--floor-proxy`) in front of `replicas`.
async fn start_floor(env: &Env, floor: Floor, replicas: &[Proc]) -> Result<Proc, Error> {
    let addr = free_addr()?;
    let mut args = vec![
        "--floor-proxy".to_owned(),
        match floor {
            Floor::Hyper => "hyper",
            Floor::Edge => "edge",
        }
        .to_owned(),
        addr.to_string(),
    ];
    args.extend(replicas.iter().map(|r| r.addr.to_string()));
    Proc::start(env, floor.name(), &std::env::current_exe()?, &args, addr).await
}

// ---------------------------------------------------------------------------------------------
// Aggregate mode: the aggregator example against the gateway example

/// Builds the server, gateway and aggregate examples with the aggregator feature (a no-op
/// when they are fresh); all three with the same features, so the gateway is the same binary
/// it is in proxy mode but for the aggregator's module.
fn build_aggregate_examples() -> Result<(), Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--release", "--features"])
        .arg("jwks-fetch,gateway,aws-lc-rs,aggregator")
        .args(["--example", "server", "--example", "gateway"])
        .args(["--example", "aggregate"])
        .status()?;
    if !status.success() {
        return Err("cargo build of the server, gateway and aggregate examples failed".into());
    }
    Ok(())
}

/// Two bare replicas, reached directly, through the gateway and through the aggregator, in
/// interleaved rounds; the aggregator's clients call the namespaced `a__echo` / `b__echo`.
async fn aggregate_mode(options: &Options, env: &Env) -> Result<(), Error> {
    let aggregate = env.server.with_file_name("aggregate");
    if !aggregate.exists() {
        return Err(format!(
            "{} not found (build it with --features aggregator, or pass --bin-dir)",
            aggregate.display()
        )
        .into());
    }
    let replicas = [
        start_server(env, "agg-replica-a", &["--bare".to_owned()]).await?,
        start_server(env, "agg-replica-b", &["--bare".to_owned()]).await?,
    ];
    let gateway_addr = free_addr()?;
    let mut gateway_args = vec![
        "--bind".to_owned(),
        gateway_addr.to_string(),
        "--audit-log".to_owned(),
        env.dir
            .path()
            .join("agg-gateway-audit.jsonl")
            .display()
            .to_string(),
    ];
    for replica in &replicas {
        gateway_args.push("--upstream".to_owned());
        gateway_args.push(format!("http://{}/mcp", replica.addr));
    }
    let gateway = Proc::start(
        env,
        "agg-gateway",
        &env.gateway,
        &gateway_args,
        gateway_addr,
    )
    .await?;
    let aggregator_addr = free_addr()?;
    let mut aggregator_args = vec![
        "--bind".to_owned(),
        aggregator_addr.to_string(),
        "--audit-log".to_owned(),
        env.dir
            .path()
            .join("aggregator-audit.jsonl")
            .display()
            .to_string(),
    ];
    for (name, replica) in ["a", "b"].iter().zip(&replicas) {
        aggregator_args.push("--upstream".to_owned());
        aggregator_args.push(format!("{name}=http://{}/mcp", replica.addr));
    }
    let aggregator = Proc::start(
        env,
        "aggregator",
        &aggregate,
        &aggregator_args,
        aggregator_addr,
    )
    .await?;
    let paths: [(&str, Option<&Proc>); 3] = [
        ("direct", None),
        ("gateway", Some(&gateway)),
        ("aggregator", Some(&aggregator)),
    ];

    let eras = [Era::Legacy, Era::Modern];
    let mut clients: Vec<Vec<Vec<Client>>> = Vec::new();
    for (name, proxy) in &paths {
        let mut per_era = Vec::new();
        for era in eras {
            let mut set = Vec::new();
            match (*name, proxy) {
                ("aggregator", Some(proxy)) => {
                    for i in 0..options.connections {
                        let mut client = Client::open(proxy.addr, era, None).await?;
                        client.tool = if i % 2 == 0 { "a__echo" } else { "b__echo" };
                        if !client.call().await? {
                            return Err(
                                format!("{era:?} call through the aggregator failed").into()
                            );
                        }
                        set.push(client);
                    }
                }
                (_, Some(proxy)) => {
                    set = working_clients(proxy.addr, era, options.connections).await?
                }
                (_, None) => {
                    for i in 0..options.connections {
                        set.push(Client::open(replicas[i % 2].addr, era, None).await?);
                    }
                }
            }
            per_era.push(set);
        }
        clients.push(per_era);
    }
    fn watched<'a>(proxy: Option<&'a Proc>, replicas: &'a [Proc]) -> Vec<&'a Proc> {
        proxy.into_iter().chain(replicas).collect()
    }
    for (per_era, (_, proxy)) in clients.iter_mut().zip(&paths) {
        let watched = watched(*proxy, &replicas);
        for set in per_era.iter_mut() {
            *set = segment(
                std::mem::take(set),
                options.warmup,
                &watched,
                env.clk_tck,
                None,
            )
            .await;
        }
    }
    let mut tallies: Vec<Vec<Tally>> = (0..paths.len())
        .map(|_| eras.iter().map(|_| Tally::default()).collect())
        .collect();
    for round in 0..options.rounds {
        eprintln!("aggregate: round {}/{}", round + 1, options.rounds);
        for e in 0..eras.len() {
            for (p, (_, proxy)) in paths.iter().enumerate() {
                let c = std::mem::take(&mut clients[p][e]);
                clients[p][e] = segment(
                    c,
                    options.seconds,
                    &watched(*proxy, &replicas),
                    env.clk_tck,
                    Some(&mut tallies[p][e]),
                )
                .await;
            }
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Aggregator vs gateway: two bare replicas, {} connections, {} rounds × {} s, interleaved\n",
        options.connections, options.rounds, options.seconds
    );
    let _ = writeln!(
        out,
        "| era | path | calls/s | proxy CPU µs/call | replicas CPU µs/call | p50 µs | p99 µs | added p50 µs | added p99 µs | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut versus = Vec::new();
    for (e, era) in eras.iter().enumerate() {
        let direct_p50 = tallies[0][e].percentile_us(0.50);
        let direct_p99 = tallies[0][e].percentile_us(0.99);
        for (p, (name, proxy)) in paths.iter().enumerate() {
            let t = &mut tallies[p][e];
            let (proxy_cpu, replica_from) = match proxy {
                Some(_) => (format!("{:.1}", t.cpu_us_per_call(0)), 1),
                None => ("–".to_owned(), 0),
            };
            let replicas_cpu =
                t.cpu_us_per_call(replica_from) + t.cpu_us_per_call(replica_from + 1);
            let (p50, p99) = (t.percentile_us(0.50), t.percentile_us(0.99));
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {} | {:.1} | {:.0} | {:.0} | {:+.0} | {:+.0} | {} |",
                era.name(),
                name,
                t.rate(),
                proxy_cpu,
                replicas_cpu,
                p50,
                p99,
                p50 - direct_p50,
                p99 - direct_p99,
                t.errors
            );
        }
        let (gateway, aggregator) = (
            tallies[1][e].cpu_us_per_call(0),
            tallies[2][e].cpu_us_per_call(0),
        );
        versus.push(format!(
            "- {}: aggregator {aggregator:.1} µs, gateway {gateway:.1} µs per call ({:+.1} µs, {:.2}×)",
            era.name(),
            aggregator - gateway,
            aggregator / gateway.max(1e-9)
        ));
    }
    let _ = writeln!(
        out,
        "\nAggregator CPU per routed call against the gateway's:\n{}",
        versus.join("\n")
    );
    let _ = writeln!(
        out,
        "\ngateway = `gateway --upstream A --upstream B --audit-log FILE` (as in proxy mode); \
         aggregator = `aggregate --upstream a=A --upstream b=B --audit-log FILE` (audit, guard, \
         inspect, SSE layers, then `Aggregator`; the load calls `a__echo` and `b__echo`, one \
         name per connection). CPU = the proxy process's utime+stime over all rounds ÷ calls; \
         replicas CPU is both replicas'."
    );
    print!("{out}");
    Ok(())
}
