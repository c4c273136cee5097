//! Replica health and load as the affinity router sees it: a new session that finds its
//! replica unreachable answers 502 and the replica is ejected, a session whose replica died
//! answers 404 at once (R28), no replica at all is a 503 with `Retry-After`, an open SSE
//! stream counts as load until it ends, and sessions of a gone replica can be reassigned
//! consistently.
#![cfg(feature = "gateway")]

#[path = "common/affinity.rs"]
mod affinity;
mod common;

use std::convert::Infallible;
use std::time::Duration;

use affinity::{Replicas, Upstream, serve_gateway, upstream};
use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use mcp_edge::affinity::{
    AffinityRouter, Backoff, Envelope, EnvelopeKeys, OnReplicaGone, ReplicaSet, SessionKey,
};
use mcp_edge::{Rejection, Replica};
use serde_json::json;
use tower::ServiceExt;

fn envelope() -> Envelope {
    Envelope::new(EnvelopeKeys::new(&SessionKey::generate().unwrap()))
}

/// A URL nothing listens on.
fn dead_url() -> String {
    format!("http://127.0.0.1:{}/mcp", free_port())
}

async fn error_of(response: reqwest::Response) -> (u16, Option<String>, serde_json::Value) {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = response.json().await.expect("a JSON-RPC body");
    (status, retry_after, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_replica_answers_502_once_then_is_ejected() {
    let replicas = Replicas::start(1);
    let set = replicas.set();
    let dead = dead_url();
    set.add(Replica::new(dead.clone()), upstream(&dead));
    let router = AffinityRouter::envelope(set.clone(), envelope()).backoff(Backoff {
        base: Duration::from_secs(30),
        max: Duration::from_secs(60),
    });
    let (gateway, log) = serve_gateway(router, "gateway");
    let mut bad_gateway = 0;
    for _ in 0..20 {
        let response = post_json(&gateway.url, &initialize_body("2025-11-25"), &[]).await;
        match response.status().as_u16() {
            200 => {}
            502 => {
                bad_gateway += 1;
                let (_, _, body) = error_of(response).await;
                assert_eq!(body["jsonrpc"], "2.0");
                assert_eq!(body["id"], 1, "the initialize's id");
                assert_eq!(body["error"]["code"], -32603);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        bad_gateway <= 1,
        "ejected after the first failure: {bad_gateway}"
    );
    let status = set.status();
    let dead_status = status.iter().find(|s| s.replica().id() == dead).unwrap();
    assert_eq!(dead_status.is_ejected(), bad_gateway == 1);
    assert!(
        log.all()
            .iter()
            .filter(|s| s.status == 502)
            .all(|s| s.rejected.as_deref() == Some("proxy:upstream_unavailable"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_replica_available_is_503_with_retry_after_and_jsonrpc_body() {
    // None at all.
    let (empty, _) = serve_gateway(
        AffinityRouter::envelope(ReplicaSet::new(), envelope()),
        "empty",
    );
    let (status, retry_after, body) =
        error_of(post_json(&empty.url, &initialize_body("2025-11-25"), &[]).await).await;
    assert_eq!(status, 503);
    assert!(retry_after.is_some());
    assert_eq!(body["error"]["code"], -32603);
    assert_eq!(body["id"], 1);

    // Only an unreachable one: 502, then ejected, then 503 until the back-off ends.
    let set = ReplicaSet::new();
    let dead = dead_url();
    set.add(Replica::new(dead.clone()), upstream(&dead));
    let router = AffinityRouter::envelope(set, envelope()).backoff(Backoff {
        base: Duration::from_secs(5),
        max: Duration::from_secs(5),
    });
    let (gateway, _) = serve_gateway(router, "gateway");
    let first = post_json(&gateway.url, &initialize_body("2025-11-25"), &[]).await;
    assert_eq!(first.status(), 502);
    let (status, retry_after, body) =
        error_of(post_json(&gateway.url, &initialize_body("2025-11-25"), &[]).await).await;
    assert_eq!(status, 503);
    let retry_after: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    assert_eq!(body["jsonrpc"], "2.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_replica_died_gets_404_at_once_and_starts_over_on_a_live_replica() {
    let mut replicas = Replicas::start(2);
    let set = replicas.set();
    let router = AffinityRouter::envelope(set.clone(), envelope());
    let (gateway, log) = serve_gateway(router, "gateway");
    let session = raw_legacy_session(&gateway.url).await;
    let home = log.all()[0].replica.clone().unwrap();
    let index = replicas.servers.iter().position(|s| s.url == home).unwrap();
    // The replica process dies (its sessions with it): its port refuses connections.
    drop(replicas.servers.remove(index));
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let list = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"});
    // The very request that finds it dead is told to start over (R28), not 502 then 503.
    let (status, retry_after, body) =
        error_of(post_json(&gateway.url, &list, &headers).await).await;
    assert_eq!(status, 404);
    assert_eq!(retry_after, None);
    assert_eq!(body["error"]["code"], -32001);
    assert_eq!(body["id"], 5);
    let dead = set.status().into_iter().find(|s| s.replica().id() == home);
    let dead = dead.unwrap();
    assert!(dead.is_down() && dead.is_ejected(), "{dead:?}");
    // Marked down: the next one is 404 without a connection attempt, and so after removal.
    let (status, _, _) = error_of(post_json(&gateway.url, &list, &headers).await).await;
    assert_eq!(status, 404);
    set.remove(&home);
    let (status, _, body) = error_of(post_json(&gateway.url, &list, &headers).await).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], -32001);
    // And a new session works, on the live replica.
    raw_legacy_session(&gateway.url).await;
    let rejected: Vec<_> = log.all().into_iter().filter(|s| s.status == 404).collect();
    assert!(
        rejected
            .iter()
            .all(|s| s.rejected.as_deref() == Some("affinity:replica_gone")),
        "{rejected:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_sse_stream_counts_as_load_until_it_ends() {
    let replicas = Replicas::start(1);
    let set = replicas.set();
    let router = AffinityRouter::envelope(set.clone(), envelope());
    let (gateway, _) = serve_gateway(router, "gateway");
    let session = raw_legacy_session(&gateway.url).await;
    let in_flight = || set.status()[0].in_flight();
    // Request bodies that ended are no longer counted.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(in_flight(), 0);
    let stream = http_client()
        .get(&gateway.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(in_flight(), 1, "the open GET stream counts");
    drop(stream);
    let mut waited = 0;
    while in_flight() != 0 && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(in_flight(), 0, "closing the stream ends the count");
}

type Fake = tower::util::BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

/// An in-process replica that can restore any session (as rmcp with a shared session store
/// can): it issues `s-<name>-<n>` on requests without a session and answers its name.
fn restoring_replica(name: &'static str) -> Fake {
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Fake::new(tower::service_fn(move |request: Request<Full<Bytes>>| {
        let counter = counter.clone();
        async move {
            let mut response = Response::new(Full::new(Bytes::from(name)));
            if request.headers().get("mcp-session-id").is_none() {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                response
                    .headers_mut()
                    .insert("mcp-session-id", format!("s-{name}-{n}").parse().unwrap());
            }
            Ok(response)
        }
    }))
}

async fn send(
    router: &AffinityRouter<Fake>,
    session: Option<&http::HeaderValue>,
) -> Response<mcp_edge::EdgeBody<mcp_edge::affinity::ReplicaBody<Full<Bytes>>>> {
    let mut request = Request::post("/mcp");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    router
        .clone()
        .oneshot(request.body(Full::default()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn reassign_moves_a_gone_replicas_sessions_to_the_same_replica_from_every_gateway() {
    let key = SessionKey::generate().unwrap();
    let sets: Vec<ReplicaSet<Fake>> = (0..2).map(|_| ReplicaSet::new()).collect();
    for set in &sets {
        for name in ["a", "b", "c", "d"] {
            set.add(Replica::new(name), restoring_replica(name));
        }
    }
    let routers: Vec<AffinityRouter<Fake>> = sets
        .iter()
        .map(|set| {
            AffinityRouter::envelope(set.clone(), Envelope::new(EnvelopeKeys::new(&key)))
                .on_replica_gone(OnReplicaGone::Reassign)
        })
        .collect();
    let mut sessions = Vec::new();
    for _ in 0..20 {
        let response = send(&routers[0], None).await;
        let home = response.extensions().get::<Replica>().unwrap().clone();
        sessions.push((response.headers()["mcp-session-id"].clone(), home));
    }
    let gone = sessions[0].1.clone();
    for set in &sets {
        set.remove(gone.id());
    }
    for (session, home) in &sessions {
        let mut landed = Vec::new();
        for round in 0..4 {
            let response = send(&routers[round % 2], Some(session)).await;
            assert_eq!(response.status(), 200);
            assert!(response.extensions().get::<Rejection>().is_none());
            landed.push(response.extensions().get::<Replica>().unwrap().clone());
        }
        if *home == gone {
            assert!(
                landed.iter().all(|r| *r == landed[0] && *r != gone),
                "{landed:?}"
            );
        } else {
            assert!(landed.iter().all(|r| r == home), "others stay put");
        }
        let body = send(&routers[1], Some(session))
            .await
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body, landed[0].id().as_bytes());
    }
}

/// The same refusals, in process, for a router used without any other layer.
#[tokio::test]
async fn invalid_session_header_is_400_and_unknown_session_404() {
    let set: ReplicaSet<Fake> = ReplicaSet::new();
    set.add(Replica::new("a"), restoring_replica("a"));
    let router = AffinityRouter::envelope(set, envelope());
    let request = Request::post("/mcp")
        .header(
            "mcp-session-id",
            http::HeaderValue::from_bytes(b"has space").unwrap(),
        )
        .body(Full::default())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 400);
    let rejection = response.extensions().get::<Rejection>().unwrap();
    assert_eq!(rejection.reason().as_str(), "invalid_session_id");
    let response = send(&router, Some(&http::HeaderValue::from_static("nope"))).await;
    assert_eq!(response.status(), 404);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], -32001);
    let _: Option<Upstream> = None;
}
