//! Drain with axum's graceful shutdown, over real sockets: open SSE streams end (a resumable
//! 2025-11-25 stream with `retry:` first, any other after the grace period), so the shutdown
//! completes; without a drain an idle GET stream keeps the server up.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use mcp_edge::sse::{Drain, SseLayer};
use tokio::sync::oneshot;

struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

async fn start(layer: Option<SseLayer>, drain: Option<Drain>) -> Running {
    let (router, _log) = handwritten_router();
    let app = match layer {
        Some(layer) => router.layer(layer),
        None => router,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                if let Some(drain) = drain {
                    drain.start();
                }
            })
            .await
            .unwrap();
    });
    Running { url, stop, served }
}

async fn get(url: &str, version: Option<&str>) -> reqwest::Response {
    let mut request = http_client().get(url).header("accept", "text/event-stream");
    if let Some(v) = version {
        request = request.header("mcp-protocol-version", v);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Everything the stream carries until it ends (or 10 s).
async fn rest_of(response: reqwest::Response) -> (String, Option<Instant>) {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(until, body.next()).await {
            Err(_) => return (text, None),
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Some(Err(_)) | None) => return (text, Some(Instant::now())),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_with_drain_ends_open_streams_and_completes() {
    let drain = Drain::new();
    let layer = SseLayer::new()
        .drain(drain.clone())
        .drain_grace(Duration::from_secs(1));
    let server = start(Some(layer), Some(drain.clone())).await;

    // A 2025-11-25 GET stream, primed with an id: resumable.
    let resumable = get(&server.url, Some("2025-11-25")).await;
    // A stream with no id (older client): it cannot resume.
    let plain = get(&server.url, None).await;
    assert_eq!(drain.open_streams(), 2);

    let stopped_at = Instant::now();
    server.stop.send(()).unwrap();
    let ((resumable_text, resumable_end), (plain_text, plain_end)) =
        tokio::join!(rest_of(resumable), rest_of(plain));

    assert_eq!(resumable_text, "id: 0\ndata:\n\nretry: 3000\n\n");
    let resumable_after = resumable_end
        .expect("resumable stream ended")
        .duration_since(stopped_at);
    assert!(
        resumable_after < Duration::from_millis(500),
        "{resumable_after:?}"
    );

    assert_eq!(
        plain_text, "",
        "no retry for a stream the client cannot resume"
    );
    let plain_after = plain_end
        .expect("plain stream ended")
        .duration_since(stopped_at);
    assert!(
        plain_after >= Duration::from_millis(900) && plain_after < Duration::from_secs(3),
        "closed after the 1 s grace period, not {plain_after:?}"
    );

    tokio::time::timeout(Duration::from_secs(5), server.served)
        .await
        .expect("graceful shutdown completes")
        .unwrap();
    assert_eq!(drain.open_streams(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_drain_an_idle_get_stream_holds_graceful_shutdown_open() {
    let server = start(Some(SseLayer::new()), None).await;
    let stream = get(&server.url, None).await;
    server.stop.send(()).unwrap();
    let mut served = server.served;
    assert!(
        tokio::time::timeout(Duration::from_secs(3), &mut served)
            .await
            .is_err(),
        "the shutdown waits for the open stream"
    );
    drop(stream);
    served.abort();
}
