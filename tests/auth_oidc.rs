//! Interop with a real OpenID provider started by the test: npm's `oidc-provider` (an
//! OpenID-certified implementation, `.ci/oidc-provider`) issuing JWT access tokens (RFC 9068)
//! by client credentials for the resource named in the request (RFC 8707).
//!
//! The stack knows the provider by its issuer URL only ([`Issuer::discover`]), maps a
//! Keycloak-shaped role claim the provider adds to a scope ([`ScopeClaims::keycloak`]), and
//! serves RFC 9728 metadata naming the provider. rmcp clients of both eras call tools with the
//! provider's tokens; tokens for another resource, expired ones and ones signed with a key the
//! provider never published get 401 with a challenge. Then the official TypeScript SDK client,
//! given only the MCP URL and its client credentials, finds everything itself (the 401, the
//! protected resource metadata, the provider's metadata) and calls a tool.
//!
//! Skipped with a printed reason when `node` or the npm packages are absent; a failure under
//! `MCP_EDGE_REQUIRE_SERVERS=1` (CI).
#![cfg(feature = "jwks-fetch")]

mod common;
#[path = "auth_oidc/provider.rs"]
mod provider;

use std::time::Duration;

use common::{TestServer, bearer, call_tool, initialize_body, post_json, text_of, try_connect};
use mcp_edge::auth::{
    CachedVerifier, Discovery, Issuer, JwtVerifier, ProtectedResource, ProtectedResourceMetadata,
    ScopeClaims, ScopePolicy,
};
use mcp_edge::{AuthLayer, GuardLayer, InspectLayer, McpEdge};
use provider::OidcProvider;
use rmcp::model::ProtocolVersion;
use tower::Layer;

const AGENT: (&str, &str) = ("mcp-agent", "agent-secret-1");
const PLAIN: (&str, &str) = ("plain-client", "plain-secret-2");
const BRIEF: (&str, &str) = ("short-lived", "short-secret-3");

/// The provider: `mcp-agent` gets a Keycloak-shaped realm role, `short-lived` tokens last 1 s.
async fn start_provider(rfc8414_only: bool) -> Option<OidcProvider> {
    OidcProvider::start(serde_json::json!({
        "rfc8414_only": rfc8414_only,
        "scopes": ["mcp:tools"],
        "clients": [
            {"client_id": AGENT.0, "client_secret": AGENT.1,
             "claims": {"realm_access": {"roles": ["mcp-operator", "default-roles-oidc"]}}},
            {"client_id": PLAIN.0, "client_secret": PLAIN.1},
            {"client_id": BRIEF.0, "client_secret": BRIEF.1, "ttl": 1},
        ]
    }))
    .await
}

/// guard → inspect → auth (the discovered issuer, Keycloak roles as scopes) → rmcp, with the
/// RFC 9728 metadata beside it. `whoami` needs `mcp:tools`; `echo` needs `mcp:deploy`,
/// which only the `mcp-operator` role grants.
async fn serve_stack(issuer_url: &str) -> TestServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let issuer = Issuer::discover(issuer_url)
        .await
        .expect("discover the provider")
        .scopes_from(ScopeClaims::keycloak("mcp-server").map("mcp-operator", ["mcp:deploy"]));
    let verifier = JwtVerifier::new(&url)
        .issuer(issuer)
        .require_typ(true)
        .leeway(Duration::ZERO);
    let resource = ProtectedResource::new([issuer_url])
        .resource(&url)
        .scopes_supported(["mcp:tools"]);
    let auth = AuthLayer::new(CachedVerifier::new(verifier))
        .policy(
            ScopePolicy::new()
                .tool("whoami", ["mcp:tools"])
                .tool("echo", ["mcp:deploy"]),
        )
        .protected_resource(resource.clone());
    let guard = GuardLayer::loopback();
    let metadata = ProtectedResourceMetadata::new(resource);
    let (root, inserted) = metadata.paths();
    let app = axum::Router::new()
        .nest_service("/mcp", common::rmcp_service())
        .layer(
            McpEdge::builder()
                .guard(guard.clone())
                .inspect(InspectLayer::new())
                .auth(auth),
        )
        .route_service(&root, guard.layer(metadata.clone()))
        .route_service(&inserted, guard.layer(metadata));
    common::serve_listener(listener, app)
}

async fn initialize(url: &str, token: &str) -> reqwest::Response {
    post_json(
        url,
        &initialize_body("2025-11-25"),
        &[("authorization", &bearer(token))],
    )
    .await
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .expect("a 401 carries WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn rmcp_clients_of_both_eras_call_tools_with_the_providers_tokens() {
    let Some(provider) = start_provider(false).await else {
        return;
    };
    let metadata = Discovery::new(&provider.issuer).metadata().await.unwrap();
    assert_eq!(metadata.issuer, provider.issuer);
    assert_eq!(metadata.jwks_uri, format!("{}/jwks", provider.issuer));
    assert_eq!(
        metadata.token_endpoint.as_deref(),
        Some(&*format!("{}/token", provider.issuer))
    );
    let server = serve_stack(&provider.issuer).await;

    let agent = provider
        .token(AGENT, &server.url, "mcp:tools")
        .await
        .unwrap();
    let plain = provider
        .token(PLAIN, &server.url, "mcp:tools")
        .await
        .unwrap();
    for version in [ProtocolVersion::V_2025_11_25, ProtocolVersion::default()] {
        let client = try_connect(&server.url, version.clone(), Some(&bearer(&agent)))
            .await
            .unwrap_or_else(|e| panic!("{version:?}: {e}"));
        let who = call_tool(&client, "whoami", serde_json::json!({}))
            .await
            .unwrap();
        assert!(text_of(&who).contains("\"mcp-agent\""), "{}", text_of(&who));
        // `echo` needs mcp:deploy, granted by the provider's role claim through the preset.
        let echo = call_tool(&client, "echo", serde_json::json!({"text": "hi"}))
            .await
            .unwrap();
        assert_eq!(text_of(&echo), "hi");
        client.cancel().await.unwrap();

        let client = try_connect(&server.url, version.clone(), Some(&bearer(&plain)))
            .await
            .unwrap();
        assert!(
            call_tool(&client, "whoami", serde_json::json!({}))
                .await
                .is_ok()
        );
        assert!(
            call_tool(&client, "echo", serde_json::json!({"text": "hi"}))
                .await
                .is_err(),
            "{version:?}: no role, no mcp:deploy"
        );
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn wrong_audience_expired_and_unknown_kid_get_401_with_a_challenge() {
    let Some(provider) = start_provider(false).await else {
        return;
    };
    let server = serve_stack(&provider.issuer).await;
    let metadata_url = format!(
        "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        server.base_url()
    );

    let good = provider
        .token(AGENT, &server.url, "mcp:tools")
        .await
        .unwrap();
    assert_eq!(initialize(&server.url, &good).await.status(), 200);

    // A token the provider issued for another resource.
    let other = provider
        .token(AGENT, "https://other.example/mcp", "mcp:tools")
        .await
        .unwrap();
    let response = initialize(&server.url, &other).await;
    assert_eq!(response.status(), 401);
    let www = challenge(&response);
    assert!(www.starts_with("Bearer error=\"invalid_token\""), "{www}");
    assert!(www.contains(&metadata_url), "{www}");

    // A token past its expiry (1 s lifetime, no leeway).
    let brief = provider
        .token(BRIEF, &server.url, "mcp:tools")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = initialize(&server.url, &brief).await;
    assert_eq!(response.status(), 401);
    let www = challenge(&response);
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    assert!(www.contains(&metadata_url), "{www}");

    // The provider's issuer and this resource, but signed by a key it never published.
    let mut claims = common::auth::claims("mcp-agent", "mcp:tools");
    claims["iss"] = provider.issuer.clone().into();
    claims["aud"] = server.url.clone().into();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("not-the-providers".into());
    header.typ = Some("at+jwt".into());
    let forged = jsonwebtoken::encode(&header, &claims, &common::auth::rsa2().encoding).unwrap();
    let response = initialize(&server.url, &forged).await;
    assert_eq!(response.status(), 401);
    let www = challenge(&response);
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    assert!(www.contains(&metadata_url), "{www}");

    // And no token at all: the bare challenge, pointing at the metadata.
    let response = post_json(&server.url, &initialize_body("2025-11-25"), &[]).await;
    assert_eq!(response.status(), 401);
    let www = challenge(&response);
    assert!(!www.contains("error="), "{www}");
    assert!(www.contains(&metadata_url), "{www}");
}

#[tokio::test]
async fn discovery_uses_rfc8414_metadata_and_checks_the_issuer_exactly() {
    let Some(provider) = start_provider(true).await else {
        return;
    };
    // The OpenID Connect location answers 404 here: the RFC 8414 one (path inserted) is used.
    let metadata = Discovery::new(&provider.issuer).metadata().await.unwrap();
    assert_eq!(metadata.issuer, provider.issuer);
    let server = serve_stack(&provider.issuer).await;
    let token = provider
        .token(AGENT, &server.url, "mcp:tools")
        .await
        .unwrap();
    assert_eq!(initialize(&server.url, &token).await.status(), 200);

    // The same server named differently: its documents say another issuer, so none is used.
    for almost in [
        format!("{}/", provider.issuer),
        provider.issuer.replace("127.0.0.1", "localhost"),
    ] {
        let err = Issuer::discover(&almost).await.unwrap_err();
        assert!(
            err.message().contains(&format!("is not `{almost}`")),
            "{almost}: {err}"
        );
    }
    let err = Issuer::discover(format!("{}/elsewhere", provider.origin()))
        .await
        .unwrap_err();
    assert!(err.message().contains("status 404"), "{err}");
}

#[tokio::test]
async fn the_typescript_sdk_finds_the_provider_from_the_401_and_calls_a_tool() {
    let Some(provider) = start_provider(false).await else {
        return;
    };
    let Some(node) = provider::node() else {
        return;
    };
    let server = serve_stack(&provider.issuer).await;
    let output = tokio::process::Command::new(node)
        .arg(provider::dir().join("ts-client.mjs"))
        .args([
            &server.url,
            AGENT.0,
            AGENT.1,
            &provider.issuer,
            "mcp:tools",
            "whoami",
        ])
        .current_dir(provider::dir())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the TypeScript client finished within 60 s")
        .expect("run node ts-client.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ts-client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("report line");
    assert!(
        report["result"].as_str().unwrap().contains("\"mcp-agent\""),
        "{report}"
    );
    assert!(
        report["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "whoami"),
        "{report}"
    );
    // It found each step itself: the MCP endpoint's 401, the protected resource metadata,
    // the provider's metadata, its token endpoint; then the MCP endpoint again, authorized.
    let requests: Vec<&str> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let position = |needle: &str| {
        requests
            .iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("no request to {needle}: {requests:?}"))
    };
    let first = position(&format!("POST {} 401", server.url));
    let prm = position(&format!(
        "GET {}/.well-known/oauth-protected-resource/mcp 200",
        server.base_url()
    ));
    let as_metadata = position(&format!(
        "GET {}/.well-known/openid-configuration 200",
        provider.issuer
    ));
    let token = position(&format!("POST {}/token 200", provider.issuer));
    let authorized = requests
        .iter()
        .rposition(|r| r.starts_with(&format!("POST {} 200", server.url)))
        .expect("an authorized call");
    assert!(
        first == 0 && first < prm && prm < as_metadata && as_metadata < token && token < authorized,
        "{requests:?}"
    );
}
