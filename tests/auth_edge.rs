//! The auth layer in its slot of the `McpEdge` stack (guard → inspect → auth), in front of a
//! real rmcp server, with a real rmcp 2026-07-28 client.

mod common;

use common::{bearer, modern_client_with_auth, post_json, serve_service};
use mcp_edge::auth::{AuthLayer, CachedVerifier, ProtectedResource, ScopePolicy, StaticTokens};
use mcp_edge::{GuardLayer, McpEdge, Principal};
use tower::ServiceBuilder;

#[tokio::test]
async fn auth_in_the_mcp_edge_stack_filters_and_refuses() {
    let tokens = StaticTokens::new()
        .token("reader", Principal::new("r").with_scopes(["mcp:tools"]))
        .token(
            "ops",
            Principal::new("o").with_scopes(["mcp:tools", "mcp:slow"]),
        );
    let auth = AuthLayer::new(CachedVerifier::new(tokens))
        .policy(
            ScopePolicy::new()
                .tool("slow_*", ["mcp:slow"])
                .tool("who*", ["mcp:admin"]),
        )
        .protected_resource(ProtectedResource::new(["https://as.test"]).mcp_path("/mcp"));
    let edge = McpEdge::builder().guard(GuardLayer::loopback()).auth(auth);
    let server = serve_service(
        ServiceBuilder::new()
            .layer(edge)
            .service(common::rmcp_service()),
    );

    let reader = modern_client_with_auth(&server.url, &bearer("reader")).await;
    let mut names: Vec<String> = reader
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["echo"]);
    let ops = modern_client_with_auth(&server.url, &bearer("ops")).await;
    assert_eq!(ops.list_all_tools().await.unwrap().len(), 2);

    let response = post_json(&server.url, &common::initialize_body("2025-11-25"), &[]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        format!(
            r#"Bearer resource_metadata="http://{}/.well-known/oauth-protected-resource/mcp""#,
            server.addr
        )
        .as_str()
    );
}
