//! Every Redis backend (sessions with their caps and affinity table, SSE event logs, limit
//! budgets) on a real 3-node Redis Cluster the test starts (`redis-server --cluster-enabled
//! yes` on free ports, joined with `redis-cli --cluster create`), and on a real TLS
//! `redis-server` (`--tls-port`, a CA and server certificate the test makes with `openssl`),
//! reached through a connection manager the test builds itself.
//!
//! Skipped with a printed reason when `redis-server`, `redis-cli` or `openssl` is absent (or
//! the server was built without TLS); a failure under `MCP_EDGE_REQUIRE_SERVERS=1`.
#![cfg(feature = "redis")]

mod common;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use mcp_edge::auth::StaticTokens;
use mcp_edge::limit::{LimitLayer, RedisLimits};
use mcp_edge::store::redis::{RedisEventStore, RedisSessionStore, RedisSource};
use mcp_edge::store::{
    Capped, EventStore, SessionCaps, SessionRecord, SessionStore, StoredEvent, StreamKey,
    stream_base,
};
use mcp_edge::{AuthLayer, EdgeBody, McpEdge, Principal, Replica, SessionId};
use serde_json::json;
use tower::{Layer, ServiceExt};

use common::{TempDir, find_binary, free_port, skip_or_fail};

/// `redis-server` processes, killed on drop.
struct Servers {
    children: Vec<Child>,
    ports: Vec<u16>,
    _dir: TempDir,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `redis-cli` with `args` against `port` (`tls`: the CA to trust), returning stdout.
fn cli(cli: &Path, port: u16, tls: Option<&Path>, args: &[&str]) -> String {
    let mut command = Command::new(cli);
    command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(ca) = tls {
        command.arg("--tls").arg("--cacert").arg(ca);
    }
    let output = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn(server: &Path, dir: &Path, name: &str, args: &[String]) -> Child {
    Command::new(server)
        .args(args)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--protected-mode", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join(format!("{name}.log")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server")
}

/// A 3-node cluster (three primaries, no replicas) on free ports.
fn start_cluster() -> Option<Servers> {
    let server = find_binary("redis-server")?;
    let redis_cli = find_binary("redis-cli")?;
    let dir = TempDir::new("redis-cluster");
    let mut servers = Servers {
        children: Vec::new(),
        ports: Vec::new(),
        _dir: dir,
    };
    for n in 0..3 {
        let (port, bus) = (free_port(), free_port());
        let node_dir = servers._dir.path().join(format!("node{n}"));
        std::fs::create_dir_all(&node_dir).unwrap();
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &bus.to_string(),
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        servers
            .children
            .push(spawn(&server, &node_dir, "redis", &args));
        servers.ports.push(port);
    }
    for &port in &servers.ports {
        wait_for("a cluster node", Duration::from_secs(10), || {
            cli(&redis_cli, port, None, &["PING"]).contains("PONG")
        });
    }
    let nodes: Vec<String> = servers
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(nodes.iter().map(String::as_str));
    args.push("--cluster-yes");
    let created = cli(&redis_cli, servers.ports[0], None, &args);
    assert!(
        created.contains("All 16384 slots covered"),
        "cluster create: {created}"
    );
    for &port in &servers.ports {
        wait_for("cluster_state:ok", Duration::from_secs(20), || {
            cli(&redis_cli, port, None, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
        });
    }
    Some(servers)
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with `openssl`: (ca, cert, key).
fn make_certificates(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let Some(openssl) = find_openssl() else {
        skip_or_fail("`openssl` not found (Debian package: openssl)");
        return None;
    };
    let (ca, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (cert, key, csr) = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("server.csr"),
    );
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let status = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    ]
    .iter()
    .copied()
    .chain([
        "-subj",
        "/CN=mcp-edge test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ])
    .collect::<Vec<_>>());
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ]);
    let _ = (ca_key, csr);
    Some((ca, cert, key))
}

fn find_openssl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("openssl"))
        .find(|candidate| candidate.is_file())
}

/// One `redis-server` serving TLS only, and the CA its certificate chains to.
fn start_tls() -> Option<(Servers, Vec<u8>)> {
    let server = find_binary("redis-server")?;
    let redis_cli = find_binary("redis-cli")?;
    let dir = TempDir::new("redis-tls");
    let (ca, cert, key) = make_certificates(dir.path())?;
    let port = free_port();
    let args: Vec<String> = vec![
        "--port".into(),
        "0".into(),
        "--tls-port".into(),
        port.to_string(),
        "--tls-cert-file".into(),
        cert.display().to_string(),
        "--tls-key-file".into(),
        key.display().to_string(),
        "--tls-ca-cert-file".into(),
        ca.display().to_string(),
        "--tls-auth-clients".into(),
        "no".into(),
    ];
    let mut child = spawn(&server, dir.path(), "redis", &args);
    let start = Instant::now();
    loop {
        if cli(&redis_cli, port, Some(&ca), &["PING"]).contains("PONG") {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default();
            skip_or_fail(&format!(
                "redis-server did not start with --tls-port (built without TLS?): {}",
                log.lines().rev().take(3).collect::<Vec<_>>().join(" / ")
            ));
            return None;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the TLS redis-server did not answer PING over TLS");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let ca_pem = std::fs::read(&ca).unwrap();
    Some((
        Servers {
            children: vec![child],
            ports: vec![port],
            _dir: dir,
        },
        ca_pem,
    ))
}

fn id(s: &str) -> SessionId {
    s.parse().unwrap()
}

/// Sessions: records, TTLs, the cap indexes (atomic under concurrency), the affinity table.
async fn sessions_work(source: RedisSource) {
    let store = RedisSessionStore::builder(source)
        .prefix("t-sessions")
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect");
    let alice = Principal::new("alice").with_issuer("https://as");
    store
        .insert(
            SessionRecord::new(id("s1"))
                .with_principal(&alice)
                .with_replica(Some(Replica::new("r1"))),
        )
        .await
        .unwrap();
    store
        .insert(SessionRecord::new(id("s2")).with_principal(&alice))
        .await
        .unwrap();
    store.insert(SessionRecord::new(id("s3"))).await.unwrap();
    let got = store.touch(&id("s1")).await.unwrap().expect("live");
    assert!(got.is_bound_to(Some(&alice)));
    let count = store.count(Some(&alice.binding_key())).await.unwrap();
    assert_eq!((count.total, count.principal), (3, 2));

    // The affinity table.
    assert!(
        store
            .set_replica(&id("s1"), Some(Replica::new("r2")))
            .await
            .unwrap()
    );
    assert_eq!(
        store.replica(&id("s1")).await.unwrap(),
        Some(Replica::new("r2"))
    );
    assert!(!store.set_replica(&id("nope"), None).await.unwrap());

    // Caps hold under concurrent inserts of sessions spread over every slot.
    let caps = SessionCaps {
        total: Some(13),
        per_principal: None,
    };
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            let record = SessionRecord::new(id(&format!("cap-{i}")));
            tokio::spawn(async move { store.insert_within(record, caps).await.unwrap() })
        })
        .collect();
    let mut inserted = 0;
    for task in tasks {
        if task.await.unwrap() == Capped::Inserted {
            inserted += 1;
        }
    }
    assert_eq!(
        inserted, 10,
        "exactly up to the cap of 13 with 3 sessions already there"
    );

    assert!(store.remove(&id("s1")).await.unwrap());
    assert!(store.get(&id("s1")).await.unwrap().is_none());
    let count = store.count(Some(&alice.binding_key())).await.unwrap();
    assert_eq!((count.total, count.principal), (12, 1));
}

/// Event logs: appends and batches on streams of many sessions, replay and live tail, removal.
async fn events_work(source: RedisSource) {
    let store = RedisEventStore::builder(source)
        .prefix("t-events")
        .poll_interval(Duration::from_millis(10))
        .open()
        .unwrap();
    let key = |session: &str, stream: &str| StreamKey::new(Some(id(session)), stream);
    for n in 0..8 {
        let k = key(&format!("session-{n}"), "get");
        let first = store
            .append(&k, Bytes::from(format!("{n}-a")))
            .await
            .unwrap();
        let second = store
            .append(&k, Bytes::from(format!("{n}-b")))
            .await
            .unwrap();
        assert_eq!(second, first + 1);
        let mut tail = store.tail(&k, first).await.unwrap().expect("known stream");
        assert_eq!(tail.next().await.unwrap().unwrap().data, format!("{n}-b"));
        store.finish(&k).await.unwrap();
        assert!(
            tail.next().await.is_none(),
            "the tail ends when the stream is finished"
        );
    }
    let k = key("batched", "post-1");
    let base = stream_base();
    let events = (1..=5)
        .map(|i| StoredEvent {
            seq: base + i,
            data: Bytes::from(format!("b{i}")),
        })
        .collect();
    store.append_batch(&k, events).await.unwrap();
    let mut tail = store
        .tail(&k, base + 2)
        .await
        .unwrap()
        .expect("known stream");
    for i in 3..=5 {
        assert_eq!(tail.next().await.unwrap().unwrap().data, format!("b{i}"));
    }
    store.remove_session(&id("batched")).await.unwrap();
    assert!(
        store.tail(&k, 0).await.unwrap().is_none(),
        "removed with its session"
    );
    assert!(
        store
            .tail(&key("session-1", "get"), 0)
            .await
            .unwrap()
            .is_some()
    );
}

/// A modern `tools/call` as `who`.
fn call(who: &str) -> Request<Full<Bytes>> {
    let body = json!({
        "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {
            "name": "echo", "arguments": {"text": "x"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    });
    Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {who}-token"))
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// Limits: per-principal budgets (one slot per caller) and a global one, in one decision.
async fn limits_work(source: RedisSource) {
    let store = RedisLimits::builder(source)
        .prefix("t-limits")
        .timeout(Duration::from_secs(2))
        .open()
        .unwrap();
    let limit = LimitLayer::new()
        .rule("*=2/min per principal".parse().unwrap())
        .rule("*=5/min per global".parse().unwrap())
        .redis(store);
    let mut tokens = StaticTokens::new();
    for who in ["alice", "bob", "carol"] {
        tokens = tokens.token(format!("{who}-token"), Principal::new(who));
    }
    let edge = McpEdge::builder().auth(AuthLayer::new(tokens)).limit(limit);
    let service = edge.layer(tower::service_fn(
        |_: Request<EdgeBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
        },
    ));
    let status = |who: &'static str| {
        let service = service.clone();
        async move { service.oneshot(call(who)).await.unwrap().status() }
    };
    assert_eq!(status("alice").await, StatusCode::OK);
    assert_eq!(status("alice").await, StatusCode::OK);
    assert_eq!(
        status("alice").await,
        StatusCode::TOO_MANY_REQUESTS,
        "alice's own budget"
    );
    assert_eq!(status("bob").await, StatusCode::OK);
    assert_eq!(status("bob").await, StatusCode::OK);
    assert_eq!(status("carol").await, StatusCode::OK);
    assert_eq!(
        status("carol").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the global budget of 5 is spent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_backend_works_on_a_three_node_cluster() {
    let Some(cluster) = start_cluster() else {
        return;
    };
    let nodes: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    // From one node's URL: the others are discovered.
    sessions_work(RedisSource::cluster([nodes[0].clone()])).await;
    events_work(RedisSource::cluster(nodes.clone())).await;
    limits_work(RedisSource::cluster(nodes.clone())).await;

    // A cluster connection the application made itself works too.
    let client = redis::cluster::ClusterClient::new(nodes.clone()).unwrap();
    let conn = client.get_async_connection().await.unwrap();
    let store = RedisSessionStore::builder(conn)
        .prefix("t-ready")
        .open()
        .unwrap();
    store.insert(SessionRecord::new(id("ready"))).await.unwrap();
    assert!(store.get(&id("ready")).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_backend_works_through_an_existing_connection_manager() {
    let Some(redis) = common::Redis::start() else {
        return;
    };
    let client = redis::Client::open(redis.url()).unwrap();
    let manager = client.get_connection_manager().await.unwrap();
    sessions_work(RedisSource::from(manager.clone())).await;
    events_work(manager.clone().into()).await;
    limits_work(manager.into()).await;
}

#[cfg(feature = "redis-tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_backend_works_over_tls() {
    let Some((tls, ca_pem)) = start_tls() else {
        return;
    };
    let url = format!("rediss://127.0.0.1:{}", tls.ports[0]);
    let source = || {
        let client = redis::Client::build_with_tls(
            url.as_str(),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca_pem.clone()),
            },
        )
        .unwrap();
        RedisSource::client(client)
    };
    sessions_work(source()).await;
    events_work(source()).await;
    limits_work(source()).await;

    // A plain-text client cannot talk to it: the store really went through TLS.
    let plain = RedisSessionStore::builder(format!("redis://127.0.0.1:{}", tls.ports[0]))
        .timeout(Duration::from_millis(300))
        .open()
        .unwrap();
    assert!(plain.ping().await.is_err());
}
