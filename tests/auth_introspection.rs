//! RFC 7662 introspection against an endpoint served by the test: client authentication,
//! active and inactive tokens, caching, and the endpoint down.
#![cfg(feature = "introspection")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{initialize_body, post_json, serve, serve_service};
use mcp_edge::auth::{AuthLayer, IntrospectionVerifier, ProtectedResource};
use mcp_edge::inspect::InspectLayer;
use serde_json::json;
use tower::ServiceBuilder;

const AUDIENCE: &str = "https://mcp.test/mcp";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An introspection endpoint: `good` is active for [`AUDIENCE`], `foreign` is active for
/// another audience, anything else is inactive. Requires Basic `rs:secret`.
fn endpoint(calls: Arc<AtomicUsize>) -> common::TestServer {
    let router = axum::Router::new().route(
        "/introspect",
        axum::routing::post(move |headers: http::HeaderMap, body: String| {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                // "rs:secret"
                if headers.get("authorization").map(|v| v.as_bytes())
                    != Some(b"Basic cnM6c2VjcmV0".as_slice())
                {
                    return (http::StatusCode::UNAUTHORIZED, "{}".to_owned());
                }
                let answer = if body.starts_with("token=good&") {
                    json!({"active": true, "sub": "alice", "scope": "mcp:tools", "aud": AUDIENCE,
                           "exp": now() + 600})
                } else if body.starts_with("token=foreign&") {
                    json!({"active": true, "sub": "alice", "aud": "https://elsewhere"})
                } else {
                    json!({"active": false})
                };
                (http::StatusCode::OK, answer.to_string())
            }
        }),
    );
    serve(router)
}

fn mcp(verifier: IntrospectionVerifier) -> common::TestServer {
    let auth = AuthLayer::new(verifier)
        .protected_resource(ProtectedResource::new(["https://as.test"]).resource(AUDIENCE));
    serve_service(
        ServiceBuilder::new()
            .layer(InspectLayer::new())
            .layer(auth)
            .service(common::rmcp_service()),
    )
}

async fn init(url: &str, token: &str) -> reqwest::Response {
    let auth = format!("Bearer {token}");
    post_json(
        url,
        &initialize_body("2025-11-25"),
        &[("authorization", &auth)],
    )
    .await
}

#[tokio::test]
async fn active_tokens_pass_once_and_are_cached_inactive_and_foreign_get_401() {
    let calls = Arc::new(AtomicUsize::new(0));
    let endpoint = endpoint(Arc::clone(&calls));
    let verifier = IntrospectionVerifier::new(endpoint.url_for("/introspect"))
        .client_credentials("rs", "secret")
        .audience(AUDIENCE);
    let server = mcp(verifier);
    assert_eq!(init(&server.url, "good").await.status(), 200);
    assert_eq!(init(&server.url, "good").await.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "cached by token hash");

    let inactive = init(&server.url, "revoked").await;
    assert_eq!(inactive.status(), 401);
    assert_eq!(
        inactive.headers()["www-authenticate"],
        r#"Bearer error="invalid_token", error_description="the token is not active", resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp""#
    );
    let foreign = init(&server.url, "foreign").await;
    assert_eq!(foreign.status(), 401);
    assert_eq!(
        foreign.headers()["www-authenticate"],
        r#"Bearer error="invalid_token", error_description="the token is not for this resource", resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp""#
    );
}

#[tokio::test]
async fn endpoint_down_gives_401_not_500() {
    let calls = Arc::new(AtomicUsize::new(0));
    let endpoint = endpoint(calls);
    let url = endpoint.url_for("/introspect");
    drop(endpoint);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let server = mcp(IntrospectionVerifier::new(url).with_client(client));
    let response = init(&server.url, "good").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_token", error_description="the token could not be checked", resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp""#
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], 1);
}

#[tokio::test]
async fn wrong_client_credentials_are_an_unavailable_verifier_not_a_pass() {
    let calls = Arc::new(AtomicUsize::new(0));
    let endpoint = endpoint(calls);
    let verifier = IntrospectionVerifier::new(endpoint.url_for("/introspect"))
        .client_credentials("rs", "wrong");
    let server = mcp(verifier);
    assert_eq!(init(&server.url, "good").await.status(), 401);
}
