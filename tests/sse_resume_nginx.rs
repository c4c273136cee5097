//! ResumeLayer through a real nginx whose `proxy_read_timeout` (1 s, heartbeats off) cuts a
//! `slow_count` stream whose events come 1.5 s apart: the stream is cut after each event,
//! and the official TypeScript SDK client and an rmcp client, which both resume on their own
//! with `GET` + `Last-Event-ID`, end with all `n` progress events and the result, exactly
//! once and in order. Once against rmcp (which has resumability of its own) and once against
//! a hand-written endpoint with none. And again with two gateway instances sharing Redis
//! behind nginx's round robin, so that resumes land on the other instance.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use mcp_edge::sse::ResumeLayer;
use mcp_edge::store::MemoryEventStore;
#[cfg(feature = "redis")]
use mcp_edge::store::redis::RedisEventStore;
use serde_json::{Value, json};

const N: u64 = 3;
const DELAY_MS: u64 = 1500;

/// nginx in front of `gateways` (round robin) with a 1 s read timeout: it cuts any stream
/// quiet for 1 s.
fn cutting_nginx(gateways: &[TestServer]) -> Option<Nginx> {
    let servers: String = gateways
        .iter()
        .map(|g| format!("server {}; ", g.addr))
        .collect();
    Nginx::start_http(&format!(
        "upstream gateways {{ {servers} }}\n\
         server {{ listen 127.0.0.1:{NGINX_PORT}; location / {{ proxy_pass http://gateways; \
         proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_read_timeout 1s; \
         proxy_next_upstream off; }} }}\n"
    ))
}

/// The server of `kind` (`rmcp`, or the hand-written endpoint) behind one gateway instance
/// with a memory event store, or (with `redis`) two instances sharing Redis and the key.
fn gateways(kind: &str, redis: Option<&Redis>) -> Vec<TestServer> {
    let router = match kind {
        "rmcp" => rmcp_router(),
        _ => handwritten_router().0,
    };
    match redis {
        None => vec![serve_resumable(
            router,
            ResumeLayer::new(MemoryEventStore::new()),
        )],
        #[cfg(feature = "redis")]
        Some(redis) => (0..2)
            .map(|_| {
                let store = RedisEventStore::builder(redis.url())
                    .poll_interval(Duration::from_millis(10))
                    .open()
                    .unwrap();
                serve_resumable(router.clone(), ResumeLayer::new(store).key([9; 32]))
            })
            .collect(),
        #[cfg(not(feature = "redis"))]
        Some(_) => unreachable!("the Redis tests need the `redis` feature"),
    }
}

/// `node` and the SDK from `.ci/ts-sdk-discovery` (installed by `.ci/run` before the tests).
fn ts_sdk() -> Option<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/ts-sdk-discovery");
    let node = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("node"))
        .find(|p| p.is_file());
    let sdk = dir.join("node_modules/@modelcontextprotocol/sdk/package.json");
    match node {
        Some(node) if sdk.is_file() => Some((node, dir.join("resume.mjs"))),
        Some(_) => {
            skip_or_fail(&format!(
                "the TypeScript SDK is not installed (cd {} && npm install)",
                dir.display()
            ));
            None
        }
        None => {
            skip_or_fail("`node` not found on PATH");
            None
        }
    }
}

async fn ts_client_through_cutting_nginx(kind: &str, redis: Option<&Redis>) {
    let Some((node, script)) = ts_sdk() else {
        return;
    };
    let gateways = gateways(kind, redis);
    let Some(nginx) = cutting_nginx(&gateways) else {
        return;
    };
    let output = tokio::process::Command::new(node)
        .arg(&script)
        .arg(nginx.url_for("/mcp"))
        .arg(N.to_string())
        .arg(DELAY_MS.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the TypeScript client finishes within 60 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout}\nstderr {stderr}"));
    eprintln!("{kind}: {report}");
    let progress: Vec<u64> = report["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(
        progress,
        (1..=N).collect::<Vec<_>>(),
        "{report}\n{}",
        nginx.error_log()
    );
    assert_eq!(report["result"], format!("counted to {N}"), "{report}");
    assert!(
        nginx.error_log().contains("timed out"),
        "nginx did cut the stream: {}",
        nginx.error_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_resumes_a_cut_stream_of_rmcp() {
    ts_client_through_cutting_nginx("rmcp", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_resumes_a_cut_stream_of_a_server_without_resumability() {
    ts_client_through_cutting_nginx("handwritten", None).await;
}

async fn rmcp_client_through_cutting_nginx(kind: &str, redis: Option<&Redis>) {
    let gateways = gateways(kind, redis);
    let Some(nginx) = cutting_nginx(&gateways) else {
        return;
    };
    let client = legacy_client(&nginx.url_for("/mcp")).await;
    let (result, progress) = tokio::time::timeout(
        Duration::from_secs(60),
        call_tool_with_progress(
            &client,
            "slow_count",
            json!({"n": N, "delay_ms": DELAY_MS}),
            N as usize,
        ),
    )
    .await
    .expect("the rmcp client finishes within 60 s");
    let result = result.unwrap_or_else(|e| panic!("{kind}: {e}\n{}", nginx.error_log()));
    assert_eq!(text_of(&result), format!("counted to {N}"));
    let values: Vec<u64> = progress.iter().map(|p| p.progress as u64).collect();
    assert_eq!(values, (1..=N).collect::<Vec<_>>(), "{kind}");
    assert!(
        nginx.error_log().contains("timed out"),
        "{}",
        nginx.error_log()
    );
    client.cancel().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_client_resumes_a_cut_stream_of_rmcp() {
    rmcp_client_through_cutting_nginx("rmcp", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_client_resumes_a_cut_stream_of_a_server_without_resumability() {
    rmcp_client_through_cutting_nginx("handwritten", None).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_resumes_through_the_other_of_two_gateways_sharing_redis() {
    let Some(redis) = Redis::start() else { return };
    ts_client_through_cutting_nginx("handwritten", Some(&redis)).await;
    ts_client_through_cutting_nginx("rmcp", Some(&redis)).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_client_resumes_through_the_other_of_two_gateways_sharing_redis() {
    let Some(redis) = Redis::start() else { return };
    rmcp_client_through_cutting_nginx("handwritten", Some(&redis)).await;
    rmcp_client_through_cutting_nginx("rmcp", Some(&redis)).await;
}
