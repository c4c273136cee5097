//! Fault injection with real processes: two replicas are the example server (`server --bare`,
//! plain rmcp) as OS processes behind an `AffinityRouter` gateway (audit → inspect → router →
//! `HttpUpstream`, with an active TCP health check), and one is killed with SIGKILL while rmcp
//! clients (2025-11-25, sessions) have their GET streams open and `tools/call`s in flight.
//!
//! What must hold: the dead replica's calls end promptly (no hang) and its GET streams end
//! (the audit records each one); its clients' next request is answered 404 (R28) and a new
//! client re-initializes on the live replica; the live replica's sessions are untouched;
//! 2026-07-28 (stateless) calls simply go to the live replica; the dead replica restarted on
//! the same port is marked up by the health check and takes new sessions again.
//!
//! Runs `target/<profile>/examples/server`: `cargo test` builds it; for a filtered run,
//! `cargo build --all-features --example server` first.
#![cfg(feature = "gateway")]

#[path = "common/affinity.rs"]
mod affinity;
#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use affinity::{Log, Logged};
use audit_fixtures::Recorder;
use common::*;
use mcp_edge::affinity::{AffinityRouter, Envelope, EnvelopeKeys, ReplicaSet, SessionKey};
use mcp_edge::audit::{AuditLayer, CountingBody};
use mcp_edge::inspect::InspectLayer;
use mcp_edge::proxy::HttpUpstream;
use mcp_edge::{EdgeBody, Replica};
use serde_json::json;
use tower::ServiceBuilder;

type Upstream = HttpUpstream<EdgeBody<CountingBody<hyper::body::Incoming>>>;

/// Whether the replica whose id is its URL accepts a TCP connection within 100 ms.
async fn tcp_probe(replica: Replica) -> bool {
    let authority = replica
        .id()
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let connect = tokio::net::TcpStream::connect(authority);
    matches!(
        tokio::time::timeout(Duration::from_millis(100), connect).await,
        Ok(Ok(_))
    )
}

/// A 2025-11-25 rmcp client that gives a broken stream up after two reconnection attempts.
/// rmcp's default (3.11) retries the `Last-Event-ID` GET of a broken POST stream forever
/// (1 s, 2 s, 4 s, … even when it is answered 404), so the call on a dead replica would
/// stay pending until the caller's own timeout.
async fn bounded_legacy_client(url: &str) -> Client {
    use rmcp::ServiceExt as _;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::common::client_side_sse::ExponentialBackoff;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let mut retry = ExponentialBackoff::default();
    retry.max_times = Some(2);
    retry.base_duration = Duration::from_millis(200);
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    config.retry_config = Arc::new(retry);
    let transport = StreamableHttpClientTransport::with_client(http_client(), config);
    TestClient::new(rmcp::model::ProtocolVersion::V_2025_11_25)
        .serve(transport)
        .await
        .expect("connect")
}

/// Connects a 2025-11-25 rmcp client and returns it with its session id and replica, read
/// from the gateway's log of its `initialize`.
async fn legacy(gateway: &str, log: &Log) -> (Arc<Client>, String, String) {
    let before = log.all().len();
    let client = bounded_legacy_client(gateway).await;
    let init = log
        .all()
        .into_iter()
        .skip(before)
        .find(|s| s.rpc.as_deref() == Some("initialize"))
        .expect("the gateway logged the initialize");
    let session = init.session_out.expect("a session id");
    (Arc::new(client), session, init.replica.expect("a replica"))
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_process_killed_mid_stream_its_clients_start_over_on_the_live_one_and_it_rejoins()
{
    let Some(server) = example_binary("server") else {
        return;
    };
    let mut dead_process = ExampleProcess::start(&server, &["--bare"]);
    let live_process = ExampleProcess::start(&server, &["--bare"]);
    let (dead, live) = (dead_process.url(), live_process.url());

    let set: ReplicaSet<Upstream> = ReplicaSet::new();
    for url in [&dead, &live] {
        set.add(Replica::new(url.as_str()), HttpUpstream::new(url).unwrap());
    }
    let _health = set.health_check(Duration::from_millis(100), tcp_probe);
    let key = SessionKey::generate().unwrap();
    let router = AffinityRouter::envelope(set.clone(), Envelope::new(EnvelopeKeys::new(&key)));
    let recorder = Recorder::new();
    let log = Log::default();
    let gateway = serve_service(Logged::new(
        ServiceBuilder::new()
            .layer(AuditLayer::new(recorder.sink()))
            .layer(InspectLayer::new())
            .service(router),
        "gateway",
        log.clone(),
    ));

    // Clients on both replicas (an open GET stream counts as load, so they alternate).
    let mut clients = Vec::new();
    while clients.len() < 8
        && !(clients
            .iter()
            .filter(|c: &&(_, _, String)| c.2 == dead)
            .count()
            >= 2
            && clients.iter().filter(|c| c.2 == live).count() >= 2)
    {
        clients.push(legacy(&gateway.url, &log).await);
    }
    let on_dead = |replica: &String| *replica == dead;
    assert!(clients.iter().any(|c| on_dead(&c.2)) && clients.iter().any(|c| !on_dead(&c.2)));
    // Every client has its GET stream open on its replica.
    wait_for("the GET streams", Duration::from_secs(5), || {
        let streams = log
            .all()
            .into_iter()
            .filter(|s| s.method == http::Method::GET);
        streams.filter(|s| s.status == 200).count() >= clients.len()
    })
    .await;

    // A call in flight on every session: 40 progress events 50 ms apart (2 s).
    let calls: Vec<_> = clients
        .iter()
        .map(|(client, _, _)| {
            let client = Arc::clone(client);
            tokio::spawn(async move {
                let started = Instant::now();
                let result = tokio::time::timeout(
                    Duration::from_secs(15),
                    call_tool(&client, "slow_count", json!({"n": 40, "delay_ms": 50})),
                )
                .await
                .expect("no call hangs");
                (result, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let pid = dead_process.pid().unwrap();
    let killed = Instant::now();
    dead_process.kill(); // SIGKILL

    for (task, (_, _, replica)) in calls.into_iter().zip(&clients) {
        let (result, took) = task.await.unwrap();
        if on_dead(replica) {
            assert!(
                result.is_err(),
                "a call on the killed replica cannot finish"
            );
            assert!(took < Duration::from_secs(5), "ended promptly: {took:?}");
        } else {
            let result = result.expect("a call on the live replica runs to its result");
            assert!(text_of(&result).contains("counted to 40"), "{result:?}");
        }
    }

    // The killed replica's GET streams ended, and the audit recorded each one.
    let dead_streams = clients.iter().filter(|c| on_dead(&c.2)).count();
    let events = recorder
        .wait_until(|events| {
            events
                .iter()
                .filter(|e| e.http_method() == http::Method::GET)
                .filter(|e| e.replica().is_some_and(|r| r.id() == dead))
                .count()
                >= dead_streams
        })
        .await;
    let ended: Vec<_> = events
        .iter()
        .filter(|e| e.http_method() == http::Method::GET)
        .filter(|e| e.replica().is_some_and(|r| r.id() == dead))
        .map(|e| e.outcome().as_str())
        .collect();
    assert!(ended.len() >= dead_streams, "{ended:?}");

    // Marked down by the refused connections or the health check.
    wait_for(
        "the dead replica marked down",
        Duration::from_secs(2),
        || {
            set.status()
                .iter()
                .any(|s| s.replica().id() == dead && s.is_down())
        },
    )
    .await;

    // Their next request: 404 (R28), then a new session on the live replica.
    log.clear();
    for (client, session, replica) in &clients {
        let listed = client.list_all_tools().await;
        if on_dead(replica) {
            let refused = log
                .all()
                .into_iter()
                .find(|s| s.session_in.as_deref() == Some(session.as_str()) && s.status == 404);
            let refused = refused.unwrap_or_else(|| panic!("{session}: no 404 ({listed:?})"));
            assert_eq!(refused.rejected.as_deref(), Some("affinity:replica_gone"));
            let (fresh, _, home) = legacy(&gateway.url, &log).await;
            assert_eq!(home, live, "re-initialized on the live replica");
            assert!(!fresh.list_all_tools().await.unwrap().is_empty());
        } else {
            assert!(!listed.unwrap().is_empty(), "{session} unaffected");
        }
    }

    // 2026-07-28: stateless calls simply go to the live replica.
    log.clear();
    let modern = modern_client(&gateway.url).await;
    for i in 0..10 {
        let result = call_tool(&modern, "echo", json!({"text": format!("m{i}")}))
            .await
            .expect("a modern call");
        assert_eq!(text_of(&result), format!("m{i}"));
    }
    let served: Vec<_> = log.all().into_iter().filter_map(|s| s.replica).collect();
    assert!(served.iter().all(|r| *r == live), "{served:?}");

    // Restarted on the same port: the health check marks it up, and new sessions reach it
    // (the least loaded: the live replica holds every open GET stream).
    dead_process.restart();
    wait_for(
        "the restarted replica marked up",
        Duration::from_secs(3),
        || {
            set.status()
                .iter()
                .any(|s| s.replica().id() == dead && !s.is_down() && !s.is_ejected())
        },
    )
    .await;
    let (back, _, home) = legacy(&gateway.url, &log).await;
    assert_eq!(home, dead, "a new session on the restarted replica");
    let result = call_tool(&back, "echo", json!({"text": "back"}))
        .await
        .unwrap();
    assert_eq!(text_of(&result), "back");
    eprintln!(
        "replica process {pid} killed (SIGKILL): {dead_streams} sessions on it, their calls and \
         GET streams ended ({ended:?}), next request 404, re-initialized on the live replica; \
         restarted and rejoined {:?} after the kill",
        killed.elapsed()
    );
}
