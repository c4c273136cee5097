//! Fault injection: the identity provider's JWKS endpoint fails at start and mid-run, by
//! answering 503, by accepting connections and never answering, and by serving garbage.
//!
//! What must hold: tokens signed with a key already fetched keep working while the endpoint is
//! down; a token whose key is unknown gets a prompt `401` (never a 5xx, never a wait past the
//! fetch timeout); and once the endpoint answers again, new keys are learned without a restart.
#![cfg(feature = "jwks-fetch")]

mod common;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::auth::*;
use common::{TestServer, initialize_body, post_json, serve, serve_service};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use mcp_edge::auth::{AuthLayer, HttpJwks, Issuer, JwtVerifier, RemoteKeys};
use mcp_edge::inspect::InspectLayer;
use tower::ServiceBuilder;

const FETCH_TIMEOUT: Duration = Duration::from_millis(500);
const REFETCH: Duration = Duration::from_millis(100);
/// No request may take longer than this, whatever the JWKS endpoint does.
const PROMPT: Duration = Duration::from_secs(2);

/// How the flaky JWKS endpoint behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
enum Mode {
    Up = 0,
    /// `503 Service Unavailable`.
    Failing = 1,
    /// Accepts the request and never answers.
    Stalled = 2,
    /// `200` with a body that is not a key set.
    Garbage = 3,
}

/// A JWKS endpoint whose behaviour the test switches at run time.
struct FlakyJwks {
    url: String,
    mode: Arc<AtomicU8>,
    keys: Arc<Mutex<Vec<Jwk>>>,
    requests: Arc<AtomicUsize>,
    _server: TestServer,
}

impl FlakyJwks {
    fn start(mode: Mode, keys: Vec<Jwk>) -> FlakyJwks {
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let keys = Arc::new(Mutex::new(keys));
        let requests = Arc::new(AtomicUsize::new(0));
        let (m, k, r) = (mode.clone(), keys.clone(), requests.clone());
        let router = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (m, k, r) = (m.clone(), k.clone(), r.clone());
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    let json = [("content-type", "application/json")];
                    let (status, body) = match m.load(Ordering::SeqCst) {
                        0 => {
                            let set = JwkSet {
                                keys: k.lock().unwrap().clone(),
                            };
                            (200, serde_json::to_string(&set).unwrap())
                        }
                        1 => (503, "{\"error\":\"down\"}".to_owned()),
                        2 => std::future::pending::<(u16, String)>().await,
                        _ => (200, "<html>not a key set</html>".to_owned()),
                    };
                    (http::StatusCode::from_u16(status).unwrap(), json, body)
                }
            }),
        );
        let server = serve(router);
        FlakyJwks {
            url: server.url_for("/jwks"),
            mode,
            keys,
            requests,
            _server: server,
        }
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn add(&self, jwk: Jwk) {
        self.keys.lock().unwrap().push(jwk);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// An rmcp server behind inspect + auth trusting the flaky endpoint.
fn mcp_server(jwks: &FlakyJwks) -> TestServer {
    let keys = RemoteKeys::new(HttpJwks::new(&jwks.url))
        .fetch_timeout(FETCH_TIMEOUT)
        .min_refetch_interval(REFETCH);
    let verifier = JwtVerifier::new(AUDIENCE).issuer(Issuer::remote(ISSUER, keys));
    let svc = ServiceBuilder::new()
        .layer(InspectLayer::new())
        .layer(AuthLayer::new(verifier))
        .service(common::rmcp_service());
    serve_service(svc)
}

/// `initialize` with `token`: its status, after checking it came promptly and that a refusal
/// is a 401 with a JSON-RPC body.
async fn status_with(url: &str, token: &str) -> u16 {
    let started = Instant::now();
    let auth = format!("Bearer {token}");
    let response = post_json(
        url,
        &initialize_body("2025-11-25"),
        &[("authorization", &auth)],
    )
    .await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    assert!(took < PROMPT, "answered in {took:?} (status {status})");
    assert!(status < 500, "never a 5xx for a JWKS outage: {status}");
    if status == 401 {
        assert!(response.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["jsonrpc"], "2.0");
        assert_eq!(body["id"], 1);
    }
    status
}

/// Polls until `token` is accepted; how long it took.
async fn accepted_within(url: &str, token: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if status_with(url, token).await == 200 {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "not accepted within {limit:?}");
        tokio::time::sleep(REFETCH).await;
    }
}

#[tokio::test]
async fn jwks_down_at_start_gives_401_then_recovers_without_a_restart() {
    for down in [Mode::Failing, Mode::Stalled, Mode::Garbage] {
        let jwks = FlakyJwks::start(down, vec![rsa1().jwk]);
        let server = mcp_server(&jwks);
        let token = mint(&rsa1(), &claims("alice", "mcp:tools"));
        for _ in 0..3 {
            assert_eq!(
                status_with(&server.url, &token).await,
                401,
                "{down:?}: no keys yet"
            );
            tokio::time::sleep(REFETCH).await;
        }
        jwks.set(Mode::Up);
        let took = accepted_within(&server.url, &token, Duration::from_secs(5)).await;
        eprintln!("jwks {down:?} at start: 401 while down, accepted {took:?} after it came back");
    }
}

#[tokio::test]
async fn jwks_down_mid_run_keeps_cached_keys_and_learns_new_ones_after() {
    for down in [Mode::Failing, Mode::Stalled, Mode::Garbage] {
        let jwks = FlakyJwks::start(Mode::Up, vec![rsa1().jwk]);
        let server = mcp_server(&jwks);
        let known = mint(&rsa1(), &claims("alice", "mcp:tools"));
        assert_eq!(status_with(&server.url, &known).await, 200);

        jwks.set(down);
        // The IdP rotates in a key nobody could fetch yet.
        jwks.add(rsa2().jwk);
        let unknown = mint_with_kid(&rsa2(), "rsa2", &claims("bob", "mcp:tools"));
        let before = jwks.requests();
        for _ in 0..5 {
            assert_eq!(
                status_with(&server.url, &known).await,
                200,
                "{down:?}: cached key"
            );
            assert_eq!(
                status_with(&server.url, &unknown).await,
                401,
                "{down:?}: unknown kid"
            );
            tokio::time::sleep(REFETCH).await;
        }
        assert!(
            jwks.requests() > before,
            "{down:?}: the unknown kid made it try again"
        );

        jwks.set(Mode::Up);
        let took = accepted_within(&server.url, &unknown, Duration::from_secs(5)).await;
        assert_eq!(status_with(&server.url, &known).await, 200);
        eprintln!(
            "jwks {down:?} mid-run: cached key kept working, new kid accepted {took:?} after recovery"
        );
    }
}
