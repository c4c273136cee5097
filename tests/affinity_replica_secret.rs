//! Spawned replicas accept only their gateway (`examples/gateway.rs --spawn-replicas`, whose
//! replica helpers this test uses as they are): a client reaching a replica directly is refused
//! without the per-run secret or with a foreign `Host`, the same client gets through the
//! gateway, and a secret header a client sends is replaced (or dropped), never forwarded.
#![cfg(feature = "gateway")]

mod common;

#[allow(dead_code)]
#[path = "../examples/common/replicas.rs"]
mod replicas;

use axum::routing::post;
use common::*;
use http::HeaderMap;
use hyper::body::Incoming;
use mcp_edge::affinity::{AffinityRouter, Envelope, EnvelopeKeys, ReplicaSet, SessionKey};
use mcp_edge::auth::{AuthLayer, StaticTokens};
use mcp_edge::proxy::{HttpUpstream, HttpUpstreamBuilder};
use mcp_edge::{EdgeBody, GuardLayer, InspectLayer, Principal, Replica};
use replicas::{REPLICA_SECRET_HEADER, drop_replica_secret, replica_secret, with_replica_secret};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;

const TOKEN: &str = "s3cret";

type Upstream = HttpUpstream<EdgeBody<Incoming>>;

/// Two replicas as the example spawns them, and a gateway in front (guard → inspect → auth
/// with a static token → drop the client's secret header → affinity router → upstreams that
/// add the secret). Returns the gateway, the replica URLs and the secret.
async fn gateway(shutdown: &CancellationToken) -> (TestServer, Vec<String>, String) {
    let secret = replica_secret().unwrap();
    assert_eq!(secret.len(), 64);
    let template = with_replica_secret(HttpUpstreamBuilder::new(), &secret);
    let set: ReplicaSet<Upstream> = ReplicaSet::new();
    let mut urls = Vec::new();
    for _ in 0..2 {
        let url = replicas::serve_replica(rmcp_router(), &secret, shutdown.child_token())
            .await
            .unwrap();
        set.add(Replica::new(url.as_str()), template.build(&url).unwrap());
        urls.push(url);
    }
    let key = SessionKey::generate().unwrap();
    let router = AffinityRouter::envelope(set, Envelope::new(EnvelopeKeys::new(&key)));
    let gateway = ServiceBuilder::new()
        .layer(GuardLayer::loopback())
        .layer(InspectLayer::new())
        .layer(AuthLayer::new(
            StaticTokens::new().token(TOKEN, Principal::new("alice")),
        ))
        .map_request(drop_replica_secret)
        .service(router);
    (serve_service(gateway), urls, secret)
}

async fn refused(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 403, "{what}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{what}");
    assert_eq!(body["error"]["code"], -32600, "{what}");
}

#[tokio::test]
async fn a_replica_refuses_direct_clients_and_serves_its_gateway() {
    let shutdown = CancellationToken::new();
    let (gateway, replica_urls, secret) = gateway(&shutdown).await;
    let init = initialize_body("2025-11-25");

    for url in &replica_urls {
        // The finding: a rebinding page (foreign Host) or a local process, with no token.
        refused(
            post_json(url, &init, &[("host", "evil.example.com")]).await,
            "foreign Host, no secret",
        )
        .await;
        refused(post_json(url, &init, &[]).await, "no secret").await;
        refused(
            post_json(url, &init, &[(REPLICA_SECRET_HEADER, "0123")]).await,
            "a guessed secret",
        )
        .await;
        // Even the right secret does not make a foreign Host acceptable.
        refused(
            post_json(
                url,
                &init,
                &[
                    ("host", "evil.example.com"),
                    (REPLICA_SECRET_HEADER, &secret),
                ],
            )
            .await,
            "foreign Host with the secret",
        )
        .await;
        // Other methods and paths are behind the same guard.
        let get = http_client().get(url).send().await.unwrap();
        assert_eq!(get.status(), 403, "GET without the secret");
    }

    // Through the gateway: the token is checked there, and the replica accepts the request.
    let auth = bearer(TOKEN);
    assert_eq!(post_json(&gateway.url, &init, &[]).await.status(), 401);
    let response = post_json(
        &gateway.url,
        &init,
        &[("authorization", &auth), (REPLICA_SECRET_HEADER, "forged")],
    )
    .await;
    assert_eq!(response.status(), 200, "a forged secret header is replaced");
    for client in [
        legacy_client_with_auth(&gateway.url, &auth).await,
        modern_client_with_auth(&gateway.url, &auth).await,
    ] {
        let result = call_tool(&client, "whoami", json!({})).await.unwrap();
        assert!(!text_of(&result).is_empty());
        client.cancel().await.unwrap();
    }
    shutdown.cancel();
}

/// An upstream answering with the headers it received, as JSON.
fn echo_headers() -> TestServer {
    serve(axum::Router::new().route(
        "/mcp",
        post(|headers: HeaderMap| async move {
            let secrets: Vec<String> = headers
                .get_all(REPLICA_SECRET_HEADER)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            axum::Json(json!({ "secrets": secrets }))
        }),
    ))
}

#[tokio::test]
async fn a_client_sent_secret_header_is_never_forwarded() {
    let echo = echo_headers();
    let forged = [
        (REPLICA_SECRET_HEADER, "forged-1"),
        ("content-type", "application/json"),
    ];
    // A spawned replica's upstream: the gateway's secret replaces the client's copies.
    let with_secret: HttpUpstream<Incoming> =
        with_replica_secret(HttpUpstreamBuilder::new(), "the-gateways-secret")
            .build(&echo.url)
            .unwrap();
    // A `--upstream` replica's: no secret, and the client's copy is dropped before it.
    let without: HttpUpstream<Incoming> = HttpUpstreamBuilder::new().build(&echo.url).unwrap();
    let cases = [
        (serve_service(with_secret), json!(["the-gateways-secret"])),
        (
            serve_service(
                ServiceBuilder::new()
                    .map_request(drop_replica_secret)
                    .service(without),
            ),
            json!([]),
        ),
    ];
    for (proxy, expected) in cases {
        let mut request = http_client().post(&proxy.url).body("{}");
        for (name, value) in forged {
            request = request.header(name, value);
        }
        // Two copies, in case a proxy appended rather than replaced.
        request = request.header(REPLICA_SECRET_HEADER, "forged-2");
        let seen: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(seen["secrets"], expected);
    }
}
