//! Load harness: the latency a gateway (inspect → AffinityRouter → HttpUpstream) adds in front
//! of a real rmcp replica, at 50 concurrent legacy sessions on loopback.
//!
//! `cargo bench --bench gateway_load --features gateway`
//!
//! It starts one rmcp replica (the example tool server), a gateway per strategy in front of it
//! (and, for comparison, a bare `HttpUpstream` with no layer and no router),
//! opens one session per client on each target, then has 50 clients each send a bounded
//! number of `tools/call echo` requests (reading each answer to its end), alternating rounds
//! between the direct target and the gateways. It prints p50 / p99 per target and the
//! difference. Everything runs in this process on 127.0.0.1, so client, gateway and replica
//! share the machine's cores: read the figures as relative, not absolute.

#[allow(dead_code)] // the macros read the tool router
#[path = "../examples/common/tools.rs"]
mod tools;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mcp_edge::affinity::{AffinityRouter, Envelope, EnvelopeKeys, ReplicaSet, SessionKey, Table};
use mcp_edge::inspect::Inspect;
use mcp_edge::proxy::HttpUpstream;
use mcp_edge::store::MemorySessionStore;
use mcp_edge::{EdgeBody, Replica};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tower::{Service, ServiceExt};

const CLIENTS: usize = 50;
const WARMUP: usize = 10;
const REQUESTS_PER_ROUND: usize = 40;
const ROUNDS: usize = 3;

type Client = HttpUpstream<Full<Bytes>>;

/// Serves any tower HTTP service on a free loopback port with TCP_NODELAY; returns its URL.
async fn serve<S, B>(service: S) -> String
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request| service.clone().oneshot(request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

fn replica() -> axum::Router {
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    let service = StreamableHttpService::new(
        || Ok(tools::DemoTools::new()),
        LocalSessionManager::default().into(),
        config,
    );
    axum::Router::new().nest_service("/mcp", service)
}

type Upstream = HttpUpstream<EdgeBody<Incoming>>;

fn gateway_replicas(url: &str) -> ReplicaSet<Upstream> {
    let set = ReplicaSet::new();
    set.add(Replica::new(url), HttpUpstream::new(url).unwrap());
    set
}

fn post(body: String, session: Option<&str>) -> Request<Full<Bytes>> {
    let mut request = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request.body(Full::new(Bytes::from(body))).unwrap()
}

async fn send(client: &Client, request: Request<Full<Bytes>>) -> (u16, Option<String>) {
    let response = client.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let _ = response.into_body().collect().await;
    (status, session)
}

async fn open_session(client: &Client) -> String {
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"load","version":"0"}}}"#;
    let (status, session) = send(client, post(init.to_owned(), None)).await;
    assert_eq!(status, 200);
    let session = session.expect("a session id");
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let (status, _) = send(client, post(initialized.to_owned(), Some(&session))).await;
    assert_eq!(status, 202);
    session
}

/// `requests` echo calls on one session; returns each one's latency.
async fn drive(client: Client, session: Arc<str>, requests: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(requests);
    for id in 0..requests {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hello"}}}}}}"#,
            id + 1
        );
        let started = Instant::now();
        let (status, _) = send(&client, post(body, Some(&session))).await;
        latencies.push(started.elapsed());
        assert_eq!(status, 200);
    }
    latencies
}

struct Target {
    name: &'static str,
    client: Client,
    sessions: Vec<Arc<str>>,
    samples: Vec<Duration>,
}

impl Target {
    async fn new(name: &'static str, url: &str) -> Target {
        let client = HttpUpstream::new(url).unwrap();
        let mut sessions = Vec::new();
        for _ in 0..CLIENTS {
            sessions.push(Arc::from(open_session(&client).await));
        }
        Target {
            name,
            client,
            sessions,
            samples: Vec::new(),
        }
    }

    async fn round(&mut self, clients: usize, requests: usize, keep: bool) {
        let tasks: Vec<_> = self
            .sessions
            .iter()
            .take(clients)
            .map(|session| tokio::spawn(drive(self.client.clone(), session.clone(), requests)))
            .collect();
        for task in tasks {
            let latencies = task.await.unwrap();
            if keep {
                self.samples.extend(latencies);
            }
        }
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.samples.sort_unstable();
        let index = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples[index]
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let replica_url = serve(replica()).await;
        let key = SessionKey::generate().unwrap();
        let envelope = AffinityRouter::envelope(
            gateway_replicas(&replica_url),
            Envelope::new(EnvelopeKeys::new(&key)),
        );
        let table = AffinityRouter::table(
            gateway_replicas(&replica_url),
            Table::new(Arc::new(MemorySessionStore::new())),
        );
        let envelope_url = serve(Inspect::new(envelope)).await;
        let table_url = serve(Inspect::new(table)).await;
        // The HTTP hop alone, for comparison: HttpUpstream with no layer and no router.
        let hop: HttpUpstream<Incoming> = HttpUpstream::new(&replica_url).unwrap();
        let hop_url = serve(hop).await;

        let mut targets = vec![
            Target::new("direct", &replica_url).await,
            Target::new("gateway (envelope)", &envelope_url).await,
            Target::new("gateway (table)", &table_url).await,
            Target::new("proxy hop only", &hop_url).await,
        ];
        for target in &mut targets {
            target.round(CLIENTS, WARMUP, false).await;
        }
        // One client alone shows the hop's own latency; 50 at once show it under load (on a
        // shared 2-core machine that is mostly the gateway's CPU cost queueing up).
        for (clients, requests) in [(1, REQUESTS_PER_ROUND * 20), (CLIENTS, REQUESTS_PER_ROUND)] {
            for target in &mut targets {
                target.samples.clear();
            }
            for _ in 0..ROUNDS {
                for target in &mut targets {
                    target.round(clients, requests, true).await;
                }
            }
            println!(
                "gateway_load: {clients} concurrent session(s), {} requests per target, loopback",
                clients * requests * ROUNDS
            );
            let (direct_p50, direct_p99) =
                (targets[0].percentile(0.5), targets[0].percentile(0.99));
            for target in &mut targets {
                let (p50, p99) = (target.percentile(0.5), target.percentile(0.99));
                println!(
                    "  {:<20} p50 {:>8.0} µs   p99 {:>8.0} µs   added p50 {:>+7.0} µs   added p99 {:>+7.0} µs",
                    target.name,
                    micros(p50),
                    micros(p99),
                    micros(p50) - micros(direct_p50),
                    micros(p99) - micros(direct_p99),
                );
            }
        }
    });
}
