//! `examples/server.rs --metrics ADDR` end to end: the example server (built by `cargo test`
//! with the crate's features) serves real rmcp clients in both eras, a real Prometheus
//! (Debian package `prometheus`) scrapes its `/metrics`, and Prometheus' HTTP API answers for
//! the operation-duration count of each era and the guard's refusal count. Its `/readyz`
//! turns 503 while Redis (the session store) is stopped and back when it returns, and 503
//! once the server drains on SIGINT. It runs `target/<profile>/examples/server`: `cargo test`
//! builds it; for a filtered run, `cargo build --all-features --example server` first.
#![cfg(all(feature = "metrics", feature = "redis"))]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    KillOnDrop, Redis, TempDir, call_tool, example_binary, find_binary, free_port, skip_or_fail,
};
use serde_json::json;

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// One number from Prometheus' instant-query API (`None` while the series is missing).
async fn prom_value(prometheus: SocketAddr, query: &str) -> Option<f64> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let response = reqwest::get(format!("http://{prometheus}/api/v1/query?query={encoded}"))
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    let value = body["data"]["result"].get(0)?["value"][1].as_str()?;
    value.parse().ok()
}

fn start_prometheus(
    binary: &PathBuf,
    dir: &TempDir,
    target: SocketAddr,
) -> (KillOnDrop, SocketAddr) {
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: mcp-edge\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    (KillOnDrop(child), addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_operations_of_both_eras_and_refusals_and_readiness_follows_redis_and_drain()
 {
    let Some(prometheus_bin) = find_binary("prometheus") else {
        return;
    };
    let Some(server_bin) = example_binary("server") else {
        skip_or_fail("target/*/examples/server not built (cargo test builds it)");
        return;
    };
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let bind: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let server = Command::new(&server_bin)
        .args(["--bind", &bind.to_string()])
        .args(["--metrics", &metrics.to_string()])
        .args(["--redis", &redis.url()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the example server");
    let mut server = KillOnDrop(server);
    let url = format!("http://{bind}/mcp");
    wait_for("the example server", Duration::from_secs(30), async || {
        get(&format!("http://{metrics}/healthz")).await.is_some()
    })
    .await;
    assert_eq!(
        get(&format!("http://{metrics}/readyz")).await,
        Some((200, "ready\n".into()))
    );

    // Real traffic: an rmcp client per era, and one request the guard refuses.
    let legacy = common::legacy_client(&url).await;
    let modern = common::modern_client(&url).await;
    for client in [&legacy, &modern] {
        call_tool(client, "echo", json!({"text": "hi"}))
            .await
            .unwrap();
        client.list_tools(None).await.unwrap();
    }
    let refused = reqwest::Client::new()
        .post(&url)
        .header("host", "evil.example")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    let scrape = get(&format!("http://{metrics}/metrics")).await.unwrap().1;
    assert!(
        scrape.contains("mcp_server_operation_duration_bucket"),
        "{scrape}"
    );

    let dir = TempDir::new("prometheus");
    let (_prometheus, prometheus) = start_prometheus(&prometheus_bin, &dir, metrics);
    for era in ["legacy", "modern"] {
        let query = format!(
            r#"sum(mcp_server_operation_duration_count{{mcp_method_name="tools/call",gen_ai_tool_name="echo",era="{era}",outcome="success"}})"#
        );
        wait_for(&query, Duration::from_secs(60), async || {
            prom_value(prometheus, &query)
                .await
                .is_some_and(|v| v >= 1.0)
        })
        .await;
    }
    let refusals =
        r#"sum({__name__=~"mcp_edge_refusals(_total)?",layer="guard",reason="host_not_allowed"})"#;
    wait_for(refusals, Duration::from_secs(30), async || {
        prom_value(prometheus, refusals)
            .await
            .is_some_and(|v| v >= 1.0)
    })
    .await;

    // Readiness: Redis down, then back.
    redis.stop();
    wait_for(
        "not ready without Redis",
        Duration::from_secs(20),
        async || {
            get(&format!("http://{metrics}/readyz"))
                .await
                .is_some_and(|(status, body)| status == 503 && body.contains("session_store"))
        },
    )
    .await;
    assert_eq!(
        get(&format!("http://{metrics}/healthz")).await.unwrap().0,
        200
    );
    redis.restart();
    wait_for(
        "ready again with Redis",
        Duration::from_secs(20),
        async || {
            get(&format!("http://{metrics}/readyz"))
                .await
                .is_some_and(|(status, _)| status == 200)
        },
    )
    .await;

    // Drain: a long call keeps the server up through the grace period; SIGINT starts the drain.
    let slow = tokio::spawn(async move {
        let _ = call_tool(&modern, "slow_count", json!({"n": 40, "delay_ms": 100})).await;
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .args(["-INT", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for(
        "not ready while draining",
        Duration::from_secs(3),
        async || {
            get(&format!("http://{metrics}/readyz"))
                .await
                .is_some_and(|(status, body)| status == 503 && body.contains("draining"))
        },
    )
    .await;
    slow.abort();
    drop(legacy);
    let _ = server.0.wait();
}

/// `server --jwks-url … --metrics ADDR`: `/readyz` answers 503 naming `jwks` while the key set
/// endpoint fails (503), and turns 200 once it answers, with no request needed in between
/// (the example fetches the keys at start and retries).
#[cfg(feature = "jwks-fetch")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_first_jwks_fetch() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let Some(server_bin) = example_binary("server") else {
        skip_or_fail("target/*/examples/server not built (cargo test builds it)");
        return;
    };
    // A JWKS endpoint that fails until `up` is set.
    let up = Arc::new(AtomicBool::new(false));
    let answering = up.clone();
    let jwks = common::serve(axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let up = answering.load(Ordering::SeqCst);
            async move {
                if up {
                    let set = json!({ "keys": [common::auth::ec1().jwk] });
                    (axum::http::StatusCode::OK, set.to_string())
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new())
                }
            }
        }),
    ));
    let bind: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let server = Command::new(&server_bin)
        .args(["--bind", &bind.to_string()])
        .args(["--metrics", &metrics.to_string()])
        .args(["--jwks-url", &jwks.url_for("/jwks")])
        .args(["--issuer", common::auth::ISSUER])
        .args(["--audience", common::auth::AUDIENCE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the example server");
    let _server = KillOnDrop(server);
    wait_for("the example server", Duration::from_secs(30), async || {
        get(&format!("http://{metrics}/healthz")).await.is_some()
    })
    .await;
    let readyz = format!("http://{metrics}/readyz");
    let (status, body) = get(&readyz).await.unwrap();
    assert_eq!((status, body.as_str()), (503, "not ready\njwks\n"));

    up.store(true, Ordering::SeqCst);
    wait_for(
        "ready once the JWKS endpoint answers",
        Duration::from_secs(15),
        async || get(&readyz).await == Some((200, "ready\n".into())),
    )
    .await;
}
