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
