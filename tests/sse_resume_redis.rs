//! ResumeLayer with the Redis event store: a stream cut at one gateway instance resumes at
//! another sharing Redis (and the sealing key), exactly once and in order; a Redis restart
//! in the middle of a replay never yields a wrong or repeated event.
#![cfg(feature = "redis")]

mod common;

use std::time::Duration;

use common::*;
use mcp_edge::sse::ResumeLayer;
use mcp_edge::store::redis::RedisEventStore;

const KEY: [u8; 32] = [42; 32];

fn layer(redis: &Redis) -> ResumeLayer {
    let store = RedisEventStore::builder(redis.url())
        .poll_interval(Duration::from_millis(10))
        .open()
        .unwrap();
    ResumeLayer::new(store).key(KEY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_at_one_instance_resumes_at_another_sharing_redis() {
    let Some(redis) = Redis::start() else { return };
    let (upstream, _log) = handwritten_router();
    let a = serve_resumable(upstream.clone(), layer(&redis));
    let b = serve_resumable(upstream, layer(&redis));
    let seen = cut_after(&a.url, "s1", "alice", 8, 3).await;
    assert_eq!(progress_of(&seen), [1, 2, 3]);
    // Straight to the other instance, while the first one still reads the server.
    let response = resume_get(&b.url, "s1", "alice", &seen.last().unwrap().id).await;
    assert_eq!(response.status(), 200);
    let (rest, ended) = read_events(response, |_| false).await;
    assert!(ended);
    assert_eq!(progress_of(&rest), [4, 5, 6, 7, 8]);
    assert!(has_result(&rest));
    // Cut again mid-replay at B, resume at A.
    let response = resume_get(&b.url, "s1", "alice", &seen[0].id).await;
    let (part, _) = read_events(response, |s| s.len() >= 2).await;
    assert_eq!(progress_of(&part), [2, 3]);
    let response = resume_get(&a.url, "s1", "alice", &part[1].id).await;
    let (rest, ended) = read_events(response, |_| false).await;
    assert!(ended);
    assert_eq!(progress_of(&rest), [4, 5, 6, 7, 8]);
    // Another principal or session at the other instance: nothing.
    assert_eq!(
        resume_get(&b.url, "s1", "bob", &seen[0].id).await.status(),
        404
    );
    assert_eq!(
        resume_get(&b.url, "s2", "alice", &seen[0].id)
            .await
            .status(),
        404
    );
    // An instance with another key cannot open the ids.
    let other = RedisEventStore::open(redis.url()).unwrap();
    let c = serve_resumable(handwritten_router().0, ResumeLayer::new(other));
    assert_eq!(
        resume_get(&c.url, "s1", "alice", &seen[0].id)
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_replay_never_yields_a_wrong_or_repeated_event() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (upstream, _log) = handwritten_router();
    let a = serve_resumable(upstream.clone(), layer(&redis));
    let b = serve_resumable(upstream, layer(&redis));
    let seen = cut_after(&a.url, "s1", "alice", 20, 1).await;
    let response = resume_get(&b.url, "s1", "alice", &seen[0].id).await;
    assert_eq!(response.status(), 200);
    let restart = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(600));
        redis.restart();
        redis
    });
    let (rest, ended) = read_events(response, |_| false).await;
    let redis = restart.await.unwrap();
    assert!(ended, "the replay ends when Redis goes away");
    let progress = progress_of(&rest);
    let expected: Vec<u64> = (2..2 + progress.len() as u64).collect();
    assert_eq!(
        progress, expected,
        "a prefix of what followed, in order, once"
    );
    assert!(
        progress.len() < 19,
        "cut short by the restart: {progress:?}"
    );
    // The restarted Redis lost the log: resuming where the replay stopped is answered, never
    // with a hole: 404 expired (or 503 while the connection comes back).
    let last = rest.last().map_or(seen[0].id.clone(), |s| s.id.clone());
    let mut status = 0;
    for _ in 0..20 {
        status = resume_get(&b.url, "s1", "alice", &last)
            .await
            .status()
            .as_u16();
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 404);
    drop(redis);
}

/// rmcp with our Redis store as its own `EventStore`, behind `SessionBoundResume` (as
/// `examples/server.rs --redis` runs it): a stream cut at one replica resumes at another,
/// and an event id opens only streams of the session it was handed to (rmcp alone would
/// replay any session's stream to whoever names it).
#[cfg(feature = "rmcp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_event_ids_are_bound_to_their_session_across_replicas() {
    use mcp_edge::store::SessionBoundResume;
    use rmcp::transport::streamable_http_server::StreamableHttpService;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

    let Some(redis) = Redis::start() else { return };
    let replica = || {
        let store = RedisEventStore::builder(redis.url())
            .poll_interval(Duration::from_millis(10))
            .open()
            .unwrap();
        let manager = SessionBoundResume::with_key(
            LocalSessionManager::default().with_event_store(std::sync::Arc::new(store)),
            KEY,
        );
        // rmcp's own session records in Redis too, so that replica B can restore alice's
        // session (as `examples/server.rs --redis` configures it).
        let mut config = rmcp_config();
        config.session_store = Some(std::sync::Arc::new(
            mcp_edge::store::redis::RedisSessionStore::open(redis.url()).unwrap(),
        ));
        let service = StreamableHttpService::new(|| Ok(DemoTools::new()), manager.into(), config);
        serve(axum::Router::new().nest_service("/mcp", service))
    };
    let (a, b) = (replica(), replica());
    let alice = raw_legacy_session(&a.url).await;
    let mallory = raw_legacy_session(&a.url).await;
    let seen = cut_after(&a.url, &alice, "alice", 5, 2).await;
    let last = seen.last().unwrap().id.clone();
    assert!(last.contains('~'), "sealed: {last}");
    // Another session naming alice's event id gets nothing (rmcp answers a refused resume
    // with an empty 200 stream).
    let response = resume_get(&a.url, &mallory, "mallory", &last).await;
    let (nothing, ended) = read_events(response, |_| false).await;
    assert!(ended && nothing.is_empty(), "{nothing:?}");
    // rmcp's own form of the id (the seal cut off) is refused too, even for alice.
    let (raw, _) = last.rsplit_once('~').unwrap();
    let response = resume_get(&a.url, &alice, "alice", raw).await;
    let (nothing, ended) = read_events(response, |_| false).await;
    assert!(ended && nothing.is_empty(), "{nothing:?}");
    // Alice resumes at the other replica, from Redis. rmcp's replay from an event store is
    // finite (what is stored so far): the client polls, from its last id each time.
    let mut rest = Vec::new();
    let mut last = last;
    for round in 0..50 {
        let replica = if round % 2 == 0 { &b } else { &a };
        let response = resume_get(&replica.url, &alice, "alice", &last).await;
        assert_eq!(response.status(), 200);
        let (got, _) = read_events(response, |_| false).await;
        if let Some(event) = got.last() {
            last = event.id.clone();
        }
        rest.extend(got);
        if has_result(&rest) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(
        progress_of(&rest),
        [3, 4, 5],
        "each missed event once, in order"
    );
    assert!(has_result(&rest));
}

/// One gateway instance with a drain handle: test principal → SseLayer (heartbeats off,
/// `drain`, a short grace) → ResumeLayer (the shared Redis log, the shared key, the same
/// `drain`) → `router`.
fn serve_draining(router: axum::Router, redis: &Redis, drain: &mcp_edge::sse::Drain) -> TestServer {
    use mcp_edge::sse::SseLayer;
    use tower::ServiceBuilder;
    let service = ServiceBuilder::new()
        .map_request(test_principal)
        .layer(
            SseLayer::new()
                .no_heartbeat()
                .drain(drain.clone())
                .drain_grace(Duration::from_secs(2))
                .retry(Duration::from_millis(10)),
        )
        .layer(
            layer(redis)
                .drain(drain.clone())
                .drain_grace(Duration::from_secs(2)),
        )
        .service(router);
    serve_service(service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_stream_resumes_on_the_other_instance_without_loss() {
    let Some(redis) = Redis::start() else { return };
    // One upstream behind both gateway instances.
    let (upstream, _log) = handwritten_router();
    let (drain_a, drain_b) = (mcp_edge::sse::Drain::new(), mcp_edge::sse::Drain::new());
    let a = serve_draining(upstream.clone(), &redis, &drain_a);
    let b = serve_draining(upstream, &redis, &drain_b);

    let response = post_json(
        &a.url,
        &slow_count(10, 100),
        &[
            LEGACY,
            ("mcp-session-id", "s1"),
            ("authorization", "Bearer alice"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut parser = mcp_edge::protocol::sse::SseParser::new();
    let mut seen = Vec::new();
    let mut retry = None;
    let mut drained = false;
    // Read until three progress events passed, then drain A: the stream ends at the next
    // event boundary with a `retry:` line.
    loop {
        let chunk = tokio::time::timeout(
            Duration::from_secs(10),
            futures::StreamExt::next(&mut stream),
        )
        .await
        .expect("the stream moves or ends");
        let Some(chunk) = chunk else { break };
        for item in parser.feed(&chunk.unwrap()) {
            if let mcp_edge::protocol::sse::SseItem::Event(event) = item {
                if let Some(ms) = event.retry {
                    retry = Some(ms);
                }
                if let Some(data) = event.data_str().filter(|d| !d.is_empty()) {
                    seen.push(Seen {
                        id: String::from_utf8(event.id.clone().unwrap().to_vec()).unwrap(),
                        message: serde_json::from_str(data).unwrap(),
                    });
                }
            }
        }
        if !drained && progress_of(&seen).len() >= 3 {
            drain_a.start();
            drained = true;
        }
    }
    assert!(drained, "the stream ended before the drain: {seen:?}");
    assert_eq!(
        retry,
        Some(10),
        "a resumable stream is told when to come back"
    );
    let before = progress_of(&seen);
    assert!(before.len() >= 3 && before.len() < 10, "{before:?}");
    assert!(!has_result(&seen));
    // A keeps recording the server's stream it no longer sends (its client is gone), so the
    // resume on B misses nothing.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while drain_a.open_streams() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the detached stream counts for A's drain"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let last = seen.last().unwrap().id.clone();
    let response = resume_get(&b.url, "s1", "alice", &last).await;
    assert_eq!(response.status(), 200);
    let (rest, ended) = read_events(response, |_| false).await;
    assert!(ended);
    let mut all = before.clone();
    all.extend(progress_of(&rest));
    assert_eq!(
        all,
        (1..=10).collect::<Vec<u64>>(),
        "each event once, in order"
    );
    assert!(has_result(&rest));
    // A's shutdown completes once the detached stream is recorded to its end.
    tokio::time::timeout(Duration::from_secs(5), drain_a.wait_idle())
        .await
        .expect("A drains");
    assert_eq!(drain_b.open_streams(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_stream_is_cut_at_the_drain_grace_and_a_resume_elsewhere_ends() {
    let Some(redis) = Redis::start() else { return };
    let (upstream, _log) = handwritten_router();
    let (drain_a, drain_b) = (mcp_edge::sse::Drain::new(), mcp_edge::sse::Drain::new());
    let a = serve_draining(upstream.clone(), &redis, &drain_a);
    let b = serve_draining(upstream, &redis, &drain_b);
    // The client leaves a long stream (1,000 events, 100 s): A reads on, detached.
    let seen = cut_after(&a.url, "s1", "alice", 1000, 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while drain_a.open_streams() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no detached stream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Shutdown: the detached stream is recorded for the grace (2 s) at most, then cut.
    let start = tokio::time::Instant::now();
    drain_a.start();
    tokio::time::timeout(Duration::from_secs(6), drain_a.wait_idle())
        .await
        .expect("a detached stream does not hold the shutdown past its grace");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "recorded during the grace: {took:?}"
    );
    // B replays what A recorded, then ends at the cut instead of waiting for more.
    let response = resume_get(&b.url, "s1", "alice", &seen.last().unwrap().id).await;
    assert_eq!(response.status(), 200);
    let (rest, ended) = read_events(response, |_| false).await;
    assert!(ended, "the replay ends at the cut");
    let progress = progress_of(&rest);
    let expected: Vec<u64> = (3..3 + progress.len() as u64).collect();
    assert_eq!(progress, expected);
    assert!(progress.len() >= 10 && progress.len() < 100, "{progress:?}");
}
