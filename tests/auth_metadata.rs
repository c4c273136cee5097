//! RFC 9728 Protected Resource Metadata over real HTTP: both paths, the JSON, and the
//! `resource` behind a trusted proxy versus from an untrusted peer; the 401 challenge points
//! at the same URL.

mod common;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use common::{post_json, serve};
use mcp_edge::Principal;
use mcp_edge::auth::{AuthLayer, ProtectedResource, ProtectedResourceMetadata, StaticTokens};
use mcp_edge::guard::{GuardLayer, TrustedProxies};
use mcp_edge::inspect::InspectLayer;
use serde_json::json;
use tower::ServiceBuilder;

/// The MCP endpoint and both metadata paths behind one guard trusting `proxies`.
fn app(proxies: TrustedProxies) -> axum::Router {
    let resource = ProtectedResource::new(["https://as.example"])
        .mcp_path("/mcp")
        .scopes_supported(["mcp:tools"])
        .resource_name("test server");
    let metadata = ProtectedResourceMetadata::new(resource.clone());
    let (root, inserted) = metadata.paths();
    let auth = AuthLayer::new(StaticTokens::new().token("t", Principal::new("u")))
        .protected_resource(resource)
        .challenge_scopes(["mcp:tools"]);
    let mcp = ServiceBuilder::new()
        .layer(InspectLayer::new())
        .layer(auth)
        .service(common::rmcp_service());
    let guard = GuardLayer::new()
        .allow_any_host()
        .trusted_proxies(proxies)
        .peer_addr_with(|ext: &http::Extensions| {
            ext.get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| *a)
        });
    axum::Router::new()
        .route_service(&root, metadata.clone())
        .route_service(&inserted, metadata)
        .nest_service("/mcp", mcp)
        .layer(guard)
}

async fn get(url: &str, forwarded: bool) -> reqwest::Response {
    let mut request = common::http_client().get(url);
    if forwarded {
        request = request
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "mcp.example.com");
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn metadata_is_served_at_both_paths_with_the_right_json() {
    let server = serve(app(TrustedProxies::none()));
    let base = server.base_url();
    // The MCP endpoint at both: the root speaks for the origin's only protected resource, and
    // no token is ever issued for the bare origin (finding 7, R55).
    for (path, resource) in [
        (
            "/.well-known/oauth-protected-resource/mcp",
            format!("{base}/mcp"),
        ),
        (
            "/.well-known/oauth-protected-resource",
            format!("{base}/mcp"),
        ),
    ] {
        let response = get(&format!("{base}{path}"), false).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let doc: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            doc,
            json!({
                "resource": resource,
                "authorization_servers": ["https://as.example"],
                "scopes_supported": ["mcp:tools"],
                "bearer_methods_supported": ["header"],
                "resource_name": "test server",
            })
        );
    }
}

#[tokio::test]
async fn resource_comes_from_forwarded_headers_only_behind_a_trusted_proxy() {
    // The test client connects from 127.0.0.1: trusted here...
    let trusted = serve(app(TrustedProxies::new(["127.0.0.1/32"])));
    let url = trusted.url_for("/.well-known/oauth-protected-resource/mcp");
    let doc: serde_json::Value = get(&url, true).await.json().await.unwrap();
    assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
    // ...and the 401 challenge points at the https metadata URL too.
    let response = common::http_client()
        .post(&trusted.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "mcp.example.com")
        .body(common::initialize_body("2025-11-25").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools""#
    );

    // ...and not trusted here: the same headers are ignored.
    let untrusted = serve(app(TrustedProxies::new(["10.0.0.0/8"])));
    let url = untrusted.url_for("/.well-known/oauth-protected-resource/mcp");
    let doc: serde_json::Value = get(&url, true).await.json().await.unwrap();
    assert_eq!(doc["resource"], format!("{}/mcp", untrusted.base_url()));
    let response = post_json(
        &untrusted.url,
        &common::initialize_body("2025-11-25"),
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "mcp.example.com"),
        ],
    )
    .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(
            r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource/mcp", scope="mcp:tools""#,
            untrusted.base_url()
        )
        .as_str()
    );
}

#[tokio::test]
async fn metadata_needs_no_token_and_refuses_other_methods() {
    let server = serve(app(TrustedProxies::none()));
    let url = server.url_for("/.well-known/oauth-protected-resource");
    let response = common::http_client().post(&url).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert_eq!(get(&url, false).await.status(), 200);
}
