//! Fault injection: the audit log's file fails for real. `/dev/full` answers every write with
//! `ENOSPC` (a full disk); a FIFO whose reader stops reading blocks the writer thread once the
//! kernel's pipe buffer is full (a stalled log shipper), then drains again.
//!
//! What must hold: every request completes as if audit were healthy (status, body, latency),
//! events that cannot be written are dropped and counted (`dropped`, `write_errors`, and a
//! `tracing` warning as the count grows), and a writer that unblocks writes again.

mod common;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use mcp_edge::audit::{AuditLayer, JsonLinesSink};
use mcp_edge::inspect::InspectLayer;
use serde_json::{Value, json};
use tower::ServiceBuilder;

/// No request may take longer than this whatever the audit log does.
const PROMPT: Duration = Duration::from_secs(2);

fn serve_with(sink: JsonLinesSink) -> common::TestServer {
    let rmcp = common::rmcp_service_with(
        common::rmcp_config()
            .with_json_response(true)
            .with_legacy_session_mode(false),
    );
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(sink))
        .layer(InspectLayer::new())
        .service(rmcp);
    common::serve_service(svc)
}

/// `n` `echo` calls with a `size`-byte text; asserts each is a prompt 200 echoing it.
async fn calls_complete(server: &common::TestServer, n: usize, size: usize) -> Duration {
    let text = "x".repeat(size);
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let body = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": text}}});
        let started = Instant::now();
        let response = common::post_json(
            &server.url,
            &body,
            &[("mcp-protocol-version", "2025-06-18")],
        )
        .await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["result"]["content"][0]["text"], text.as_str());
        let took = started.elapsed();
        assert!(took < PROMPT, "call {i} took {took:?}");
        slowest = slowest.max(took);
    }
    slowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_no_request_and_counts_write_errors() {
    if !std::path::Path::new("/dev/full").exists() {
        common::skip_or_fail("no /dev/full on this system");
        return;
    }
    let sink = JsonLinesSink::builder()
        .flush_interval(Duration::from_millis(10))
        .open("/dev/full")
        .await
        .expect("open /dev/full for appending");
    let server = serve_with(sink.clone());
    let slowest = calls_complete(&server, 50, 100).await;
    sink.flush().await;
    let errors = sink.write_errors();
    assert!(errors >= 1, "ENOSPC is counted");
    // The writer thread survives its failures: later batches are tried (and fail) too.
    calls_complete(&server, 10, 100).await;
    sink.flush().await;
    assert!(
        sink.write_errors() > errors,
        "still writing after a failure"
    );
    eprintln!(
        "audit to /dev/full: 60 calls, slowest {slowest:?}, {} write errors, {} dropped",
        sink.write_errors(),
        sink.dropped()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_log_reader_drops_and_counts_events_then_recovers() {
    let dir = common::TempDir::new("fault-audit");
    let fifo = dir.path().join("audit.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !matches!(made, Ok(status) if status.success()) {
        common::skip_or_fail("mkfifo is not available");
        return;
    }
    // The log shipper: opens the read end (so the writer's open does not block), then reads
    // nothing until told to.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(0o4000) // O_NONBLOCK: do not wait for a writer to open
        .open(&fifo)
        .expect("open the fifo's read end");
    let sink = JsonLinesSink::builder()
        .queue(64)
        .flush_interval(Duration::from_millis(10))
        .open(&fifo)
        .await
        .expect("open the fifo for writing");
    let server = serve_with(sink.clone());

    // ~4 KiB per event: the 64 KiB pipe buffer fills after a few, the writer thread blocks,
    // the queue of 64 fills, and the rest is dropped.
    let slowest = calls_complete(&server, 300, 4096).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dropped = sink.dropped();
    assert!(
        dropped > 0,
        "events beyond the queue are dropped and counted"
    );
    let written_while_stalled = sink.written();
    eprintln!(
        "audit to a stalled fifo: 300 calls, slowest {slowest:?}, {written_while_stalled} written, {dropped} dropped"
    );

    // The shipper catches up: read everything, in a thread, until the sink is shut down.
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0usize;
        let quiet_since = Instant::now();
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return total, // the writer closed
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if quiet_since.elapsed() > Duration::from_secs(30) {
                        return total;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("read the fifo: {e}"),
            }
        }
    });
    let started = Instant::now();
    while sink.written() <= written_while_stalled + 64
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    calls_complete(&server, 20, 100).await;
    sink.flush().await;
    assert!(
        sink.written() >= written_while_stalled + 20,
        "the writer writes again once the reader drains: {} written before, {} after",
        written_while_stalled,
        sink.written()
    );
    assert_eq!(
        sink.dropped(),
        dropped,
        "nothing more dropped once it drains"
    );
    sink.shutdown().await;
    // The last clones go: the writer thread ends and closes the fifo, so the reader sees EOF.
    drop(server);
    drop(sink);
    let read = tokio::task::spawn_blocking(move || drain.join().unwrap())
        .await
        .unwrap();
    assert!(read > 0);
}
