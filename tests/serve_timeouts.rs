//! Timeouts for every phase of a request, through real sockets: `mcp_edge::serve::Server` in
//! front of a real rmcp server behind the edge stack, with budgets of about a second.
//!
//! The head (and the idle time before it) is hyper's to bound, set by `Server`; the POST body
//! is the inspect layer's, which still answers with a `408` and a JSON-RPC error body.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::routing::get;
use common::{http_client, initialize_body, post_json, rmcp_service};
use mcp_edge::inspect::InspectLayer;
use mcp_edge::serve::Server;
use mcp_edge::{McpEdge, PeerAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The head budget, which is also the keep-alive idle budget.
const HEAD_BUDGET: Duration = Duration::from_secs(1);
/// The body's total budget.
const BODY_BUDGET: Duration = Duration::from_secs(1);
/// Slack for a loaded CI machine.
const SLACK: Duration = Duration::from_millis(1500);

/// A `Server` with small budgets, serving the edge stack over rmcp at `/mcp`, plus `/peer`
/// (answers the `PeerAddr` the server put in the request) outside the stack.
struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(server: Server) -> Served {
        let edge = McpEdge::builder().inspect(
            InspectLayer::new()
                .body_timeout(BODY_BUDGET)
                .min_body_rate(1024, Duration::from_millis(500)),
        );
        let app = axum::Router::new()
            .route(
                "/peer",
                get(|Extension(PeerAddr(peer)): Extension<PeerAddr>| async move {
                    peer.to_string()
                }),
            )
            .nest_service("/mcp", tower::Layer::layer(&edge, rmcp_service()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.serve_with_shutdown(listener, app, async move {
            let _ = stopped.await;
        }));
        Served {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

fn small_budgets() -> Server {
    Server::new().header_read_timeout(HEAD_BUDGET)
}

/// Reads until the server closes the connection (EOF or reset) and returns what it sent.
async fn read_to_close(tcp: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads until the connection closes, within `limit`; returns what was sent and when.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let seen = tokio::time::timeout(limit, read_to_close(tcp))
        .await
        .expect("the server should have closed the connection");
    (seen, started.elapsed())
}

fn post_head(extra: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n{extra}\r\n"
    )
}

/// The status line and the JSON-RPC error body of a refusal read off the wire.
fn assert_408_with_jsonrpc_body(seen: &[u8]) {
    let text = String::from_utf8_lossy(seen);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    let body = &text[text.find("\r\n\r\n").expect("a head") + 4..];
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32600);
}

#[tokio::test]
async fn idle_connection_is_closed_after_the_head_budget() {
    let served = Served::start(small_budgets()).await;
    let mut tcp = TcpStream::connect(served.addr).await.unwrap();
    let (seen, elapsed) = closed_within(&mut tcp, HEAD_BUDGET + SLACK).await;
    assert!(seen.is_empty(), "{}", String::from_utf8_lossy(&seen));
    assert!(
        elapsed >= HEAD_BUDGET - Duration::from_millis(100),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn kept_alive_connection_idle_after_a_response_is_closed() {
    let served = Served::start(small_budgets()).await;
    let mut tcp = TcpStream::connect(served.addr).await.unwrap();
    tcp.write_all(b"GET /peer HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // The response comes at once (with the peer address the server inserted); then the
    // connection idles and is closed after the budget.
    let (seen, elapsed) = closed_within(&mut tcp, HEAD_BUDGET + SLACK).await;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with(&tcp.local_addr().unwrap().to_string()),
        "{text}"
    );
    assert!(
        elapsed >= HEAD_BUDGET - Duration::from_millis(100),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn trickled_head_is_closed_after_the_head_budget() {
    let served = Served::start(small_budgets()).await;
    let mut tcp = TcpStream::connect(served.addr).await.unwrap();
    let (mut reader, mut writer) = tcp.split();
    let trickle = async {
        writer.write_all(b"POST /mcp HTTP/1.1\r\nX-Slow: ").await?;
        // One byte every 200 ms: the head never ends, and bytes never stop coming.
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            writer.write_all(b"a").await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    let started = Instant::now();
    tokio::select! {
        _ = trickle => {}
        _ = tokio::time::timeout(HEAD_BUDGET + SLACK, async {
            let mut buf = [0u8; 1024];
            while !matches!(reader.read(&mut buf).await, Ok(0) | Err(_)) {}
        }) => {}
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < HEAD_BUDGET + SLACK,
        "the trickled head was not cut off: {elapsed:?}"
    );
    assert!(
        elapsed >= HEAD_BUDGET - Duration::from_millis(100),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn body_with_one_byte_of_a_hundred_gets_408_with_a_jsonrpc_body() {
    let served = Served::start(small_budgets()).await;
    let mut tcp = TcpStream::connect(served.addr).await.unwrap();
    tcp.write_all(post_head("Content-Length: 100\r\n").as_bytes())
        .await
        .unwrap();
    tcp.write_all(b"{").await.unwrap();
    let (seen, elapsed) = closed_within(&mut tcp, BODY_BUDGET + SLACK).await;
    assert_408_with_jsonrpc_body(&seen);
    assert!(
        elapsed <= BODY_BUDGET + Duration::from_millis(300),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn chunked_trickle_gets_408_with_a_jsonrpc_body() {
    let served = Served::start(small_budgets()).await;
    let mut tcp = TcpStream::connect(served.addr).await.unwrap();
    let (mut reader, mut writer) = tcp.split();
    let trickle = async {
        writer
            .write_all(post_head("Transfer-Encoding: chunked\r\n").as_bytes())
            .await?;
        // One byte every 100 ms, forever: below 1 KiB/s, and never done.
        loop {
            writer.write_all(b"1\r\n \r\n").await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    let read = async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return seen,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    let started = Instant::now();
    let seen = tokio::select! {
        _ = trickle => panic!("the server stopped reading without answering"),
        seen = tokio::time::timeout(BODY_BUDGET + SLACK, read) => seen.expect("no 408 in time"),
    };
    assert_408_with_jsonrpc_body(&seen);
    // The minimum rate cuts it off after its 500 ms of grace, before the total budget.
    assert!(started.elapsed() < BODY_BUDGET + Duration::from_millis(300));
}

#[tokio::test]
async fn a_thousand_idle_sockets_do_not_stop_normal_requests_and_are_closed() {
    let served = Served::start(small_budgets()).await;
    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        idle.push(TcpStream::connect(served.addr).await.unwrap());
    }
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        post_json(&served.url("/mcp"), &initialize_body("2025-11-25"), &[]),
    )
    .await
    .expect("a normal request is served while 1,000 sockets idle");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Every idle socket is closed by the server within its head budget.
    let closed = futures::future::join_all(idle.iter_mut().map(|tcp| async move {
        tokio::time::timeout(HEAD_BUDGET + SLACK + SLACK, read_to_close(tcp))
            .await
            .is_ok()
    }))
    .await;
    assert_eq!(closed.iter().filter(|closed| **closed).count(), 1000);
}

#[tokio::test]
async fn over_the_connection_cap_clients_wait_for_a_free_slot() {
    let served = Served::start(small_budgets().max_connections(2)).await;
    let mut squatters = Vec::new();
    for _ in 0..2 {
        squatters.push(TcpStream::connect(served.addr).await.unwrap());
    }
    // Give the server time to accept both, so the next client is over the cap.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let response = tokio::time::timeout(
        HEAD_BUDGET + SLACK,
        http_client().get(served.url("/peer")).send(),
    )
    .await
    .expect("served once the squatters are closed")
    .unwrap();
    assert_eq!(response.status(), 200);
    // It waited in the backlog until the head budget closed a squatter.
    assert!(started.elapsed() >= HEAD_BUDGET - Duration::from_millis(300));
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let mut served = Served::start(small_budgets()).await;
    let response = http_client().get(served.url("/peer")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    served.stop.take().unwrap().send(()).unwrap();
    let task = &mut served.task;
    let outcome = tokio::time::timeout(HEAD_BUDGET + SLACK, task)
        .await
        .expect("the server returns once its connections end");
    outcome.unwrap().unwrap();
    assert!(TcpStream::connect(served.addr).await.is_err());
}
