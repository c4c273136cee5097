//! ResumeLayer end to end over real sockets: a cut POST stream of a hand-written endpoint
//! (which has no resumability of its own) resumes with every event exactly once, in order;
//! cursors of other sessions, streams and principals, and forged ones, get nothing; a cursor
//! past retention gets the documented 404; 2026-07-28 streams are untouched; many concurrent
//! resumptions finish in bounded time.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use mcp_edge::protocol::sse::{SseItem, SseParser};
use mcp_edge::sse::ResumeLayer;
use mcp_edge::store::{EventLogLimits, EventStore, MemoryEventStore};
use serde_json::Value;
use tower::ServiceBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_of_a_server_without_resumability_resumes_exactly_once_in_order() {
    let server = serve_handwritten(ResumeLayer::new(MemoryEventStore::new()));
    let seen = cut_after(&server.url, "s1", "alice", 8, 3).await;
    assert_eq!(progress_of(&seen), [1, 2, 3]);
    let ids: Vec<&str> = seen.iter().map(|s| s.id.as_str()).collect();
    assert!(ids.iter().all(|id| id.starts_with('p')), "{ids:?}");
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    // The client is gone; the server goes on into the store. Resume a little later.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let last = seen.last().unwrap().id.clone();
    let response = resume_get(&server.url, "s1", "alice", &last).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (rest, ended) = read_events(response, |_| false).await;
    assert!(ended, "the replay ends with the original response");
    assert_eq!(progress_of(&rest), [4, 5, 6, 7, 8]);
    assert!(has_result(&rest));
    assert_eq!(rest.last().unwrap().message["id"], 7);
    // Resuming from the middle again gives the same events (still held).
    let response = resume_get(&server.url, "s1", "alice", &rest[1].id).await;
    let (again, _) = read_events(response, |_| false).await;
    assert_eq!(progress_of(&again), [6, 7, 8]);
    assert!(has_result(&again));
    // From the last event of the finished stream: nothing will ever follow, and a 200 with an
    // empty stream would only make the client come back: 404.
    let response = resume_get(&server.url, "s1", "alice", &rest.last().unwrap().id).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Not Found: the stream has ended; nothing follows this Last-Event-ID"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_of_other_sessions_streams_principals_and_forged_ones_get_nothing() {
    let server = serve_handwritten(ResumeLayer::new(MemoryEventStore::new()));
    let seen = cut_after(&server.url, "s1", "alice", 3, 1).await;
    let id = seen[0].id.clone();
    let other_stream = cut_after(&server.url, "s1", "alice", 3, 1).await[0]
        .id
        .clone();
    let bob_in_s2 = cut_after(&server.url, "s2", "bob", 3, 1).await[0]
        .id
        .clone();
    let mut spliced = other_stream[..23].to_owned();
    spliced.push_str(&id[23..]);
    let mut forged_seq = id.clone();
    forged_seq.push('0');
    for (session, who, last, what) in [
        ("s2", "alice", id.as_str(), "another session"),
        ("s1", "bob", id.as_str(), "another principal"),
        (
            "s1",
            "alice",
            bob_in_s2.as_str(),
            "bob's cursor in alice's session",
        ),
        (
            "s1",
            "alice",
            spliced.as_str(),
            "a stream name spliced onto another seal",
        ),
        ("s1", "alice", "0", "a server-style id"),
        ("s1", "alice", "", "an empty id"),
    ] {
        let response = resume_get(&server.url, session, who, last).await;
        assert_eq!(response.status(), 404, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32600, "{what}");
        assert_eq!(
            body["error"]["message"], "Not Found: unknown Last-Event-ID",
            "{what}"
        );
    }
    // A sequence number beyond the stream, with a valid seal: never another stream's events;
    // answered as expired once the settle time is over.
    let response = resume_get(&server.url, "s1", "alice", &forged_seq).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_older_than_retention_gets_404_events_expired() {
    let store = MemoryEventStore::with_limits(EventLogLimits {
        max_events_per_stream: 3,
        ..EventLogLimits::default()
    });
    let server = serve_handwritten(ResumeLayer::new(store).settle(Duration::from_millis(50)));
    let seen = cut_after(&server.url, "s1", "alice", 8, 1).await;
    // Let the server finish: 9 events recorded, only the last 3 held.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let response = resume_get(&server.url, "s1", "alice", &seen[0].id).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Not Found: the events after this Last-Event-ID are no longer held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_streams_are_untouched() {
    let server = serve_handwritten(ResumeLayer::new(MemoryEventStore::new()));
    let response = post_json(
        &server.url,
        &slow_count(2, 10),
        &[("mcp-protocol-version", "2026-07-28")],
    )
    .await;
    let (seen, ended) = read_events(response, |_| false).await;
    assert!(ended);
    assert_eq!(progress_of(&seen), [1, 2]);
    assert!(
        seen.iter().all(|s| s.id.is_empty()),
        "no ids added: {seen:?}"
    );
    // A modern GET with Last-Event-ID goes to the server as it is (here: 200 quiet stream).
    let response = http_client()
        .get(&server.url)
        .header("mcp-protocol-version", "2026-07-28")
        .header("last-event-id", "anything")
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_resumptions_finish_in_bounded_time() {
    let store = Arc::new(MemoryEventStore::new());
    let server = serve_handwritten(ResumeLayer::with_store(store.clone() as Arc<dyn EventStore>));
    let seen = cut_after(&server.url, "s1", "alice", 4, 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let id = seen[0].id.clone();
    let url = server.url.clone();
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let client = http_client();
    for _ in 0..1000 {
        let (client, url, id) = (client.clone(), url.clone(), id.clone());
        tasks.spawn(async move {
            let response = client
                .get(&url)
                .header("mcp-protocol-version", "2025-11-25")
                .header("mcp-session-id", "s1")
                .header("authorization", "Bearer alice")
                .header("last-event-id", id)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let (rest, ended) = read_events(response, |_| false).await;
            assert!(ended);
            assert_eq!(progress_of(&rest), [2, 3, 4]);
            assert!(has_result(&rest));
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let took = started.elapsed();
    eprintln!("1000 concurrent resumptions: {took:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[tokio::test]
async fn ids_are_written_at_event_ends_whatever_the_chunking() {
    use http::{Request, Response};
    use http_body_util::{BodyExt, StreamBody};
    use tower::ServiceExt;

    // Events split across chunks, CRLF and CR line ends, a comment block, a server id.
    let chunks: Vec<&'static [u8]> = vec![
        b"\xEF\xBB\xBFdata: {\"a\":",
        b"1}\r\n\r\n: keep-alive\n\nid: 9\nevent: message\ndata: {\"b\":2}\r\r",
        b"\ndata: {\"c\":3}\n",
        b"\n",
    ];
    let service = ServiceBuilder::new()
        .layer(ResumeLayer::new(MemoryEventStore::new()))
        .service_fn(move |_: Request<String>| {
            let chunks = chunks.clone();
            async move {
                let stream = futures::stream::iter(chunks.into_iter().map(|c| {
                    Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(c)))
                }));
                Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(StreamBody::new(stream))
                        .unwrap(),
                )
            }
        });
    let request = Request::post("/mcp")
        .header("mcp-protocol-version", "2025-06-18")
        .body(String::new())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    // The server's own id is replaced, not followed by ours: strict parsers (rmcp's) refuse
    // two id lines in one event.
    let text = std::str::from_utf8(&body).unwrap();
    assert!(!text.contains("id: 9"), "{text}");
    assert_eq!(text.matches("id: ").count(), 3, "{text}");
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut comments = 0;
    for item in parser.feed(&body) {
        match item {
            SseItem::Event(e) => events.push((
                String::from_utf8(e.id.clone().unwrap().to_vec()).unwrap(),
                e.data_str().unwrap().to_owned(),
            )),
            SseItem::Comment(_) => comments += 1,
            _ => {}
        }
    }
    assert_eq!(comments, 1);
    let data: Vec<&str> = events.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(data, [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
    for (i, (id, _)) in events.iter().enumerate() {
        assert!(
            id.starts_with('p') && id.ends_with(&format!(".{}", i + 1)),
            "{id}"
        );
    }
}

#[tokio::test]
async fn a_deleted_session_takes_its_recorded_streams_with_it() {
    use http::{Method, Request, Response};
    use http_body_util::{BodyExt, Full};
    use tower::{Service, ServiceExt};

    let store = Arc::new(MemoryEventStore::new());
    let layer = ResumeLayer::with_store(store.clone() as Arc<dyn EventStore>)
        .settle(std::time::Duration::from_millis(30));
    let mut service = ServiceBuilder::new()
        .layer(layer)
        .service_fn(|request: Request<Full<Bytes>>| async move {
            let response = if request.method() == Method::POST {
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Full::new(Bytes::from_static(
                        b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
                    )))
                    .unwrap()
            } else {
                Response::new(Full::default())
            };
            Ok::<_, std::convert::Infallible>(response)
        });
    let request = |method: Method, last: Option<&str>| {
        let mut builder = Request::builder()
            .method(method)
            .uri("/mcp")
            .header("mcp-protocol-version", "2025-06-18")
            .header("mcp-session-id", "s1");
        if let Some(last) = last {
            builder = builder.header("last-event-id", last);
        }
        builder.body(Full::default()).unwrap()
    };
    let response = service
        .ready()
        .await
        .unwrap()
        .call(request(Method::POST, None))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let mut parser = SseParser::new();
    let first = parser
        .feed(&body)
        .find_map(|item| match item {
            SseItem::Event(e) => e.id,
            _ => None,
        })
        .unwrap();
    let first = std::str::from_utf8(&first).unwrap().to_owned();
    // The writer task records the stream; the resume replays the result.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let resumed = service
        .ready()
        .await
        .unwrap()
        .call(request(Method::GET, Some(&first)))
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let replay = resumed.into_body().collect().await.unwrap().to_bytes();
    assert!(std::str::from_utf8(&replay).unwrap().contains("\"result\""));
    // DELETE ends the session, and its streams with it.
    let deleted = service
        .ready()
        .await
        .unwrap()
        .call(request(Method::DELETE, None))
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let gone = service
        .ready()
        .await
        .unwrap()
        .call(request(Method::GET, Some(&first)))
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn a_servers_own_ids_are_mapped_never_shown_and_kept_in_the_log() {
    use http::{Request, Response};
    use http_body_util::{BodyExt, Full};
    use tower::ServiceExt;

    let store: Arc<dyn EventStore> = Arc::new(MemoryEventStore::new());
    let service = ServiceBuilder::new()
        .layer(ResumeLayer::with_store(Arc::clone(&store)))
        .service_fn(|_: Request<String>| async {
            let events = "id: 41\nevent: message\ndata: {\"a\":1}\n\n\
                          id: 42\nevent: message\ndata: {\"b\":2}\n\n\
                          id: 43\ndata: {\"c\":3}\n\n";
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(Full::new(Bytes::from_static(events.as_bytes())))
                    .unwrap(),
            )
        });
    let post = Request::post("/mcp")
        .header("mcp-protocol-version", "2025-06-18")
        .body(String::new())
        .unwrap();
    let body = service.clone().oneshot(post).await.unwrap();
    let body = body.into_body().collect().await.unwrap().to_bytes();
    let ids_and_data = |body: &Bytes| {
        let mut parser = SseParser::new();
        parser
            .feed(body)
            .filter_map(|item| match item {
                SseItem::Event(e) => Some((
                    String::from_utf8(e.id.clone().unwrap().to_vec()).unwrap(),
                    e.data_str().unwrap().to_owned(),
                )),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let live = ids_and_data(&body);
    assert_eq!(live.len(), 3);
    let text = std::str::from_utf8(&body).unwrap();
    assert!(
        !text.contains("id: 4"),
        "the server's ids are not shown: {text}"
    );
    // The client missed the last two events: the replay has them with our ids only.
    let get = Request::get("/mcp")
        .header("mcp-protocol-version", "2025-06-18")
        .header("last-event-id", &live[0].0)
        .body(String::new())
        .unwrap();
    let replay = service.oneshot(get).await.unwrap();
    assert_eq!(replay.status(), 200);
    let replay = replay.into_body().collect().await.unwrap().to_bytes();
    let text = std::str::from_utf8(&replay).unwrap();
    assert!(!text.contains("id: 4"), "{text}");
    assert_eq!(ids_and_data(&replay), live[1..]);
    // The log keeps the mapping: each record holds the server's id next to our sequence.
    let stream = live[0].0[1..].split('.').next().unwrap().to_owned();
    let key = mcp_edge::store::StreamKey::new(None, stream);
    let mut tail = store
        .tail(&key, 0)
        .await
        .unwrap()
        .expect("the stream is in the log");
    let mut records = Vec::new();
    while let Some(Ok(event)) = futures::StreamExt::next(&mut tail).await {
        records.push((event.seq, event.data));
    }
    assert_eq!(records.len(), 3, "{records:?}");
    for ((seq, data), server_id) in records.iter().zip(["41", "42", "43"]) {
        assert!(
            data.starts_with(format!("id: {server_id}\n").as_bytes()),
            "event {seq}: {data:?}"
        );
    }
}
