//! SseLayer in-process: frames, headers, heartbeats (tokio's paused clock), first byte,
//! disconnect, drain and maximum age, version gating (§L.5).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use http::{HeaderMap, Method, Request, Response};
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, Full, StreamBody};
use mcp_edge::protocol::McpRequest;
use mcp_edge::sse::{
    Drain, FIRST_BYTE_COMMENT, HEARTBEAT_COMMENT, Intermediary, SseBody, SseLayer,
};
use tokio::time::{Instant, timeout};
use tower::{Layer, ServiceExt};

type TestBody = StreamBody<
    futures::stream::Map<
        mpsc::UnboundedReceiver<Bytes>,
        fn(Bytes) -> Result<Frame<Bytes>, Infallible>,
    >,
>;

fn to_frame(b: Bytes) -> Result<Frame<Bytes>, Infallible> {
    Ok(Frame::data(b))
}

/// A server whose SSE body is fed by the test through `tx`.
struct Stream {
    tx: mpsc::UnboundedSender<Bytes>,
    body: SseBody<TestBody>,
    headers: HeaderMap,
}

impl Stream {
    fn send(&self, bytes: &'static [u8]) {
        self.tx.unbounded_send(Bytes::from_static(bytes)).unwrap();
    }

    /// The next data frame, if one comes within `within`.
    async fn next_within(&mut self, within: Duration) -> Option<Option<Bytes>> {
        match timeout(within, self.body.frame()).await {
            Err(_) => None,
            Ok(None) => Some(None),
            Ok(Some(frame)) => Some(Some(frame.unwrap().into_data().unwrap())),
        }
    }

    async fn next(&mut self) -> Option<Bytes> {
        self.next_within(Duration::from_secs(3600))
            .await
            .expect("a frame within an hour")
    }
}

fn request(version: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::get("/mcp");
    if let Some(v) = version {
        builder = builder.header("mcp-protocol-version", v);
    }
    builder.body(Full::default()).unwrap()
}

async fn open(layer: SseLayer, request: Request<Full<Bytes>>, content_type: &str) -> Stream {
    let (tx, rx) = mpsc::unbounded();
    let body: TestBody = StreamBody::new(rx.map(to_frame as fn(Bytes) -> _));
    let content_type = content_type.to_owned();
    let slot = std::sync::Mutex::new(Some(body));
    let inner = tower::service_fn(move |_req: Request<Full<Bytes>>| {
        let body = slot.lock().unwrap().take().unwrap();
        let response = Response::builder()
            .header("content-type", content_type.as_str())
            .body(body)
            .unwrap();
        async move { Ok::<_, Infallible>(response) }
    });
    let response = layer.layer(inner).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Stream {
        tx,
        body,
        headers: parts.headers,
    }
}

async fn open_sse(layer: SseLayer) -> Stream {
    open(layer, request(Some("2025-11-25")), "text/event-stream").await
}

#[tokio::test(start_paused = true)]
async fn frames_pass_one_by_one_as_the_same_bytes() {
    let mut s = open_sse(SseLayer::new()).await;
    let event = Bytes::from_static(
        b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
    );
    let half = Bytes::from_static(b"data: {\"a\"");
    for chunk in [event.clone(), half.clone(), Bytes::from_static(b":1}\n\n")] {
        s.tx.unbounded_send(chunk.clone()).unwrap();
        let got = s.next().await.unwrap();
        assert_eq!(got, chunk, "not split, merged or changed");
        assert_eq!(
            got.as_ptr(),
            chunk.as_ptr(),
            "the very same bytes, not a copy"
        );
    }
    s.tx.close_channel();
    assert_eq!(s.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_comes_after_the_idle_interval_and_not_before() {
    let mut s = open_sse(SseLayer::new().heartbeat(Duration::from_secs(15))).await;
    let start = Instant::now();
    assert_eq!(s.next_within(Duration::from_millis(14_900)).await, None);
    assert_eq!(s.next().await.as_deref(), Some(HEARTBEAT_COMMENT));
    assert_eq!(start.elapsed().as_secs(), 15);
    // And every 15 s of quiet after that.
    assert_eq!(s.next().await.as_deref(), Some(HEARTBEAT_COMMENT));
    assert_eq!(start.elapsed().as_secs(), 30);
}

#[tokio::test(start_paused = true)]
async fn every_frame_resets_the_idle_clock_including_the_servers_own_comments() {
    let mut s = open_sse(SseLayer::new().heartbeat(Duration::from_secs(15))).await;
    for i in 0..6 {
        // Quiet for 10 s, then a frame: never 15 s of quiet, so never a heartbeat.
        assert_eq!(
            s.next_within(Duration::from_secs(10)).await,
            None,
            "round {i}"
        );
        if i % 2 == 0 {
            s.send(b": server keep-alive\n\n");
        } else {
            s.send(b"data: {}\n\n");
        }
        assert!(!s.next().await.unwrap().starts_with(HEARTBEAT_COMMENT));
    }
    let quiet_from = Instant::now();
    assert_eq!(s.next().await.as_deref(), Some(HEARTBEAT_COMMENT));
    assert_eq!(quiet_from.elapsed().as_secs(), 15);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_never_land_inside_an_event() {
    let mut s = open_sse(SseLayer::new().heartbeat(Duration::from_secs(1))).await;
    s.send(b"event: message\ndata: {\"jsonrpc\":");
    assert!(s.next().await.is_some());
    // The server stalls mid-event for 10 heartbeat intervals: nothing may be written.
    assert_eq!(s.next_within(Duration::from_secs(10)).await, None);
    s.send(b"\"2.0\",\"id\":1,");
    assert!(s.next().await.is_some());
    assert_eq!(s.next_within(Duration::from_secs(5)).await, None);
    s.send(b"\"result\":{}}\n");
    assert!(s.next().await.is_some());
    // Still inside the event (no blank line yet).
    assert_eq!(s.next_within(Duration::from_secs(5)).await, None);
    s.send(b"\n");
    assert!(s.next().await.is_some());
    let ended = Instant::now();
    assert_eq!(s.next().await.as_deref(), Some(HEARTBEAT_COMMENT));
    assert_eq!(ended.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_cr_lf_split_across_frames_and_cr_only_streams_are_boundaries_too() {
    let mut s = open_sse(SseLayer::new().heartbeat(Duration::from_secs(1))).await;
    s.send(b"data: x\r\n\r");
    assert!(s.next().await.is_some());
    assert_eq!(s.next().await.as_deref(), Some(HEARTBEAT_COMMENT));
    s.send(b"\ndata: y\r");
    assert!(s.next().await.is_some());
    assert_eq!(
        s.next_within(Duration::from_secs(5)).await,
        None,
        "inside the event"
    );
    s.send(b"\r");
    assert!(s.next().await.is_some());
    assert_eq!(s.next().await.as_deref(), Some(HEARTBEAT_COMMENT));
}

#[tokio::test(start_paused = true)]
async fn first_byte_comment_opens_the_stream_and_a_later_bom_is_dropped() {
    let mut s = open_sse(SseLayer::new().first_byte(true)).await;
    assert_eq!(s.next().await.as_deref(), Some(FIRST_BYTE_COMMENT));
    s.send(b"\xEF\xBB\xBFdata: x\n\n");
    assert_eq!(s.next().await.as_deref(), Some(&b"data: x\n\n"[..]));
    // Without our comment first, the server's BOM stays (it is at the stream start).
    let mut s = open_sse(SseLayer::new()).await;
    s.send(b"\xEF\xBB\xBFdata: x\n\n");
    assert_eq!(
        s.next().await.as_deref(),
        Some(&b"\xEF\xBB\xBFdata: x\n\n"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn heroku_preset_turns_first_byte_on_and_presets_take_the_smallest_interval() {
    let mut s = open_sse(SseLayer::new().behind(Intermediary::Heroku)).await;
    assert_eq!(s.next().await.as_deref(), Some(FIRST_BYTE_COMMENT));
    let start = Instant::now();
    assert_eq!(s.next().await.as_deref(), Some(HEARTBEAT_COMMENT));
    // min(15 s default, 55 s / 2) = 15 s.
    assert_eq!(start.elapsed().as_secs(), 15);

    let mut s = open_sse(
        SseLayer::new()
            .heartbeat(Duration::from_secs(600))
            .behind(Intermediary::Cloudflare)
            .behind(Intermediary::Nginx),
    )
    .await;
    let start = Instant::now();
    assert_eq!(s.next().await.as_deref(), Some(HEARTBEAT_COMMENT));
    assert_eq!(start.elapsed().as_secs(), 30);
    assert_eq!(Intermediary::AwsAlb.idle_limit().as_secs(), 60);
    assert_eq!(Intermediary::Cloudflare.heartbeat().as_secs(), 50);
}

#[tokio::test(start_paused = true)]
async fn no_heartbeat_means_no_bytes_of_our_own() {
    let mut s = open_sse(SseLayer::new().no_heartbeat()).await;
    assert_eq!(s.next_within(Duration::from_secs(3600)).await, None);
}

#[tokio::test]
async fn headers_are_set_once_and_merged_with_the_servers() {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        let response = Response::builder()
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .header("x-accel-buffering", "no")
            .header("content-length", "12")
            .body(Full::new(Bytes::from_static(b"data: hi\n\n")))
            .unwrap();
        Ok::<_, Infallible>(response)
    });
    let response = SseLayer::new()
        .layer(inner)
        .oneshot(request(None))
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers.get_all("x-accel-buffering").iter().count(), 1);
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(headers.get_all("cache-control").iter().count(), 1);
    assert_eq!(headers["cache-control"], "no-cache, no-transform");
    assert!(headers.get("content-length").is_none());
    assert_eq!(response.body().size_hint().exact(), None);
    assert!(response.body().is_event_stream());
}

#[tokio::test]
async fn json_responses_are_left_alone() {
    let inner = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        let response = Response::builder()
            .header("content-type", "application/json")
            .header("content-length", "2")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        Ok::<_, Infallible>(response)
    });
    let response = SseLayer::new()
        .layer(inner)
        .oneshot(request(None))
        .await
        .unwrap();
    assert!(response.headers().get("x-accel-buffering").is_none());
    assert!(response.headers().get("cache-control").is_none());
    assert_eq!(response.headers()["content-length"], "2");
    assert!(!response.body().is_event_stream());
    assert_eq!(response.body().size_hint().exact(), Some(2));
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "{}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_choice_follows_the_response_content_type_not_the_request() {
    // A POST (whose Accept lists both) answered with SSE gets the treatment.
    let mut post = Request::post("/mcp")
        .header("accept", "application/json, text/event-stream")
        .body(Full::default())
        .unwrap();
    post.extensions_mut().insert(Arc::new(
        McpRequest::classify(&Method::GET, &HeaderMap::new(), None).unwrap(),
    ));
    let s = open(SseLayer::new(), post, "Text/Event-Stream; charset=utf-8").await;
    assert!(s.body.is_event_stream());
    assert_eq!(s.headers["x-accel-buffering"], "no");
}

#[tokio::test(start_paused = true)]
async fn client_disconnect_drops_the_inner_body_at_once() {
    let s = open_sse(SseLayer::new()).await;
    let tx = s.tx.clone();
    assert!(!tx.is_closed());
    drop(s.body);
    assert!(
        tx.is_closed(),
        "the server sees the disconnect without waiting for a timer"
    );
}

// -- drain and maximum age -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn drain_sends_retry_to_a_resumable_stream_at_the_next_boundary_then_closes() {
    let drain = Drain::new();
    let mut s = open_sse(SseLayer::new().drain(drain.clone())).await;
    assert_eq!(drain.open_streams(), 1);
    s.send(b"id: 1\ndata:\n\n"); // priming event: the client has an id to resume from.
    s.next().await.unwrap();
    s.send(b"id: 2\nevent: message\ndata: {\"jsonrpc\":");
    s.next().await.unwrap();
    drain.start();
    // Mid-event: the stream waits for the boundary.
    assert_eq!(s.next_within(Duration::from_secs(5)).await, None);
    s.send(b"\"2.0\"}\n\n");
    s.next().await.unwrap();
    assert_eq!(s.next().await.as_deref(), Some(&b"retry: 3000\n\n"[..]));
    assert_eq!(s.next().await, None);
    assert!(s.body.is_end_stream());
    drop(s.body);
    assert_eq!(drain.open_streams(), 0);
    drain.wait_idle().await;
}

#[tokio::test(start_paused = true)]
async fn drain_of_an_idle_resumable_stream_is_immediate_and_uses_the_configured_retry() {
    let drain = Drain::new();
    let mut s = open_sse(
        SseLayer::new()
            .drain(drain.clone())
            .retry(Duration::from_millis(500)),
    )
    .await;
    s.send(b"id: a-1\ndata: {}\n\n");
    s.next().await.unwrap();
    let waiting = tokio::spawn(async move {
        let first = s.next().await;
        let second = s.next().await;
        (first, second)
    });
    tokio::task::yield_now().await;
    drain.start();
    let (first, second) = waiting.await.unwrap();
    assert_eq!(first.as_deref(), Some(&b"retry: 500\n\n"[..]));
    assert_eq!(second, None);
}

#[tokio::test(start_paused = true)]
async fn drain_lets_a_stream_without_ids_finish_within_the_grace_period() {
    let drain = Drain::new();
    let layer = SseLayer::new()
        .drain(drain.clone())
        .drain_grace(Duration::from_secs(30));
    let mut s = open_sse(layer).await;
    s.send(b"data: {\"progress\":1}\n\n");
    s.next().await.unwrap();
    drain.start();
    // It runs on: no retry (the client could not resume), the events keep coming.
    tokio::time::sleep(Duration::from_secs(10)).await;
    s.send(b"data: {\"result\":1}\n\n");
    assert_eq!(
        s.next().await.as_deref(),
        Some(&b"data: {\"result\":1}\n\n"[..])
    );
    s.tx.close_channel();
    assert_eq!(s.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn drain_closes_a_stream_that_does_not_finish_when_the_grace_period_ends() {
    let drain = Drain::new();
    let layer = SseLayer::new()
        .no_heartbeat()
        .drain(drain.clone())
        .drain_grace(Duration::from_secs(30));
    // A 2026-07-28 stream: closing it cancels the request, so it gets the whole grace period.
    let mut s = open(layer, request(Some("2026-07-28")), "text/event-stream").await;
    s.send(b"id: 1\ndata: {}\n\n");
    s.next().await.unwrap();
    let started = Instant::now();
    drain.start();
    assert_eq!(s.next().await, None);
    assert_eq!(started.elapsed().as_secs(), 30);
    assert!(s.tx.is_closed() || s.body.is_end_stream());
}

#[tokio::test(start_paused = true)]
async fn old_clients_never_get_retry_even_when_events_carry_ids() {
    for version in [Some("2025-06-18"), Some("2025-03-26"), None] {
        let drain = Drain::new();
        let layer = SseLayer::new()
            .drain(drain.clone())
            .drain_grace(Duration::from_secs(5));
        let mut s = open(layer, request(version), "text/event-stream").await;
        s.send(b"id: 1\ndata: {}\n\n");
        s.next().await.unwrap();
        drain.start();
        let mut rest = Vec::new();
        while let Some(frame) = s.next().await {
            rest.push(frame);
        }
        assert!(
            rest.iter().all(|f| !f.starts_with(b"retry")),
            "{version:?}: {rest:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_version_comes_from_inspect_when_present() {
    // McpRequest (from InspectLayer) says 2025-11-25 although no header does.
    let mut headers = HeaderMap::new();
    headers.insert("mcp-protocol-version", "2025-11-25".parse().unwrap());
    let mcp = McpRequest::classify(&Method::GET, &headers, None).unwrap();
    let mut req = request(None);
    req.extensions_mut().insert(Arc::new(mcp));
    let drain = Drain::new();
    let mut s = open(
        SseLayer::new().drain(drain.clone()),
        req,
        "text/event-stream",
    )
    .await;
    s.send(b"id: 1\ndata:\n\n");
    s.next().await.unwrap();
    drain.start();
    assert_eq!(s.next().await.as_deref(), Some(&b"retry: 3000\n\n"[..]));
}

#[tokio::test(start_paused = true)]
async fn streams_opened_while_draining_get_the_grace_period() {
    let drain = Drain::new();
    drain.start();
    let mut s = open_sse(
        SseLayer::new()
            .drain(drain.clone())
            .drain_grace(Duration::from_secs(2)),
    )
    .await;
    // No id yet: not resumable, so it may run for the grace period.
    s.send(b"data: {}\n\n");
    assert_eq!(s.next().await.as_deref(), Some(&b"data: {}\n\n"[..]));
    let t = Instant::now();
    assert_eq!(s.next().await, None);
    assert_eq!(t.elapsed().as_secs(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_stream_age_ends_a_resumable_stream_with_retry() {
    let layer = SseLayer::new()
        .heartbeat(Duration::from_secs(15))
        .max_stream_age(Duration::from_secs(60));
    let mut s = open_sse(layer).await;
    let start = Instant::now();
    s.send(b"id: 1\ndata:\n\n");
    s.next().await.unwrap();
    let mut heartbeats = 0;
    loop {
        let frame = s.next().await.unwrap();
        if frame.as_ref() == HEARTBEAT_COMMENT {
            heartbeats += 1;
            continue;
        }
        assert_eq!(frame.as_ref(), b"retry: 3000\n\n");
        break;
    }
    assert_eq!(start.elapsed().as_secs(), 60);
    assert_eq!(heartbeats, 3, "at 15, 30 and 45 s");
    assert_eq!(s.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn max_stream_age_applies_while_frames_flow_too() {
    let layer = SseLayer::new().max_stream_age(Duration::from_secs(10));
    let mut s = open_sse(layer).await;
    s.send(b"id: 1\ndata:\n\n");
    s.next().await.unwrap();
    let mut frames = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.send(b"data: {}\n\n");
        let frame = s.next().await.unwrap();
        if frame.starts_with(b"retry") {
            break;
        }
        frames += 1;
    }
    assert_eq!(frames, 10);
    assert_eq!(s.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn drain_grace_holds_for_a_stream_that_never_goes_quiet() {
    let drain = Drain::new();
    let layer = SseLayer::new()
        .drain(drain.clone())
        .drain_grace(Duration::from_secs(5));
    let mut s = open_sse(layer).await;
    // The stream is open and waiting when the drain starts.
    assert_eq!(s.next_within(Duration::from_millis(1)).await, None);
    drain.start();
    // Woken by the drain, the stream notices it at its next poll.
    assert_eq!(s.next_within(Duration::from_millis(1)).await, None);
    let started = Instant::now();
    let mut frames = 0;
    loop {
        // Each frame is ready before the body is polled: the body never sees its inner idle.
        tokio::time::sleep(Duration::from_secs(1)).await;
        s.send(b"data: {}\n\n");
        match s.next().await {
            Some(_) => frames += 1,
            None => break,
        }
    }
    assert_eq!(frames, 5);
    assert_eq!(started.elapsed().as_secs(), 6);
}
