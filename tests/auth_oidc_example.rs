//! `examples/oidc.rs` as deployed: behind a real nginx running the shipped
//! `examples/oidc/nginx.conf` (only its listen and upstream addresses changed), with a real
//! OpenID provider (npm's `oidc-provider`, `.ci/oidc-provider`) and a real `redis-server`.
//!
//! The example discovers the provider from its issuer URL, turns the provider's Keycloak-shaped
//! realm role into the `mcp:deploy` scope, records sessions in Redis bound to their caller, and
//! believes nginx's `X-Forwarded-For` (and nobody else's). Clients connect from 127.0.0.3, so
//! the address nginx reports (127.0.0.3) differs from nginx's own (127.0.0.1).
//!
//! Skipped with a printed reason when node, the npm packages, nginx or redis-server are absent;
//! a failure under `MCP_EDGE_REQUIRE_SERVERS=1` (CI).
#![cfg(all(feature = "jwks-fetch", feature = "redis", feature = "serve"))]

mod common;
#[allow(dead_code)] // the example's `main`
#[path = "../examples/oidc.rs"]
mod example;
#[path = "auth_oidc/provider.rs"]
mod provider;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{Nginx, Redis, bearer, initialize_body, post_json, text_of, tool_params};
use provider::OidcProvider;
use rmcp::model::ProtocolVersion;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};

const AGENT: (&str, &str) = ("mcp-agent", "agent-secret-1");
const PLAIN: (&str, &str) = ("plain-client", "plain-secret-2");
/// Where the test's clients connect from: not nginx's address, so not a trusted proxy.
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// The shipped nginx.conf with the listen address and the upstream replaced.
fn nginx_conf(upstream: std::net::SocketAddr) -> String {
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/oidc/nginx.conf"),
    )
    .expect("examples/oidc/nginx.conf");
    for line in ["    listen 80;\n", "    server 127.0.0.1:8080;\n"] {
        assert_eq!(
            shipped.matches(line).count(),
            1,
            "examples/oidc/nginx.conf must have `{}` once (the test replaces it)",
            line.trim()
        );
    }
    shipped
        .replace("    listen 80;\n", "    listen 127.0.0.1:@PORT@;\n")
        .replace(
            "    server 127.0.0.1:8080;\n",
            &format!("    server {upstream};\n"),
        )
}

/// An rmcp client from [`CLIENT_IP`], sending `headers` on every request.
async fn connect(
    url: &str,
    version: ProtocolVersion,
    headers: &[(&str, String)],
) -> common::Client {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .local_address(CLIENT_IP)
        .timeout(Duration::from_secs(30))
        .default_headers(map)
        .build()
        .unwrap();
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    let handler = common::TestClient::new(version.clone());
    let client = if version.has_initialize() {
        handler.serve(transport).await
    } else {
        handler
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![version.clone()],
                },
            )
            .await
    };
    client.unwrap_or_else(|e| panic!("{version:?} to {url}: {e}"))
}

async fn whoami(client: &common::Client) -> serde_json::Value {
    let result = client
        .call_tool(tool_params("whoami", serde_json::json!({})))
        .await
        .unwrap();
    serde_json::from_str(&text_of(&result)).unwrap()
}

#[tokio::test]
async fn the_oidc_example_behind_the_shipped_nginx_conf() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let Some(provider) = OidcProvider::start(serde_json::json!({
        "clients": [
            {"client_id": AGENT.0, "client_secret": AGENT.1,
             "claims": {"realm_access": {"roles": ["mcp-operator"]}}},
            {"client_id": PLAIN.0, "client_secret": PLAIN.1},
        ]
    }))
    .await
    else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let Some(nginx) = Nginx::start_http(&nginx_conf(upstream)) else {
        return;
    };

    let config = example::Config {
        issuer: provider.issuer.clone(),
        public_url: nginx.url(),
        preset: "keycloak:mcp-server".into(),
        role_scopes: vec![("mcp-operator".into(), "mcp:deploy".into())],
        audience: None,
        redis: redis.url(),
        trusted_proxies: vec!["127.0.0.1".into()],
        bind: upstream,
    };
    let app = example::app(&config).await.expect("the example's app");
    let _server = common::serve_listener(listener, app);
    let mcp = nginx.url_for("/mcp");

    // No token: 401 through nginx, pointing at the metadata under nginx's public URL, which
    // names the provider.
    let response = post_json(&mcp, &initialize_body("2025-11-25"), &[]).await;
    assert_eq!(response.status(), 401, "{}", nginx.error_log());
    let prm_url = nginx.url_for("/.well-known/oauth-protected-resource/mcp");
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(&format!("resource_metadata=\"{prm_url}\"")),
        "{:?}",
        response.headers()
    );
    let prm: serde_json::Value = reqwest::get(&prm_url).await.unwrap().json().await.unwrap();
    assert_eq!(prm["resource"], mcp);
    assert_eq!(
        prm["authorization_servers"],
        serde_json::json!([provider.issuer])
    );

    let agent = provider.token(AGENT, &mcp, "mcp:tools").await.unwrap();
    let plain = provider.token(PLAIN, &mcp, "mcp:tools").await.unwrap();

    // Legacy era through nginx: the caller, its scopes from the role, its real address, a
    // session recorded in Redis.
    let spoofed = ("x-forwarded-for", "203.0.113.7".to_owned());
    let client = connect(
        &mcp,
        ProtocolVersion::V_2025_11_25,
        &[("authorization", bearer(&agent)), spoofed.clone()],
    )
    .await;
    let me = whoami(&client).await;
    assert_eq!(me["subject"], "mcp-agent");
    assert_eq!(me["scopes"], serde_json::json!(["mcp:deploy", "mcp:tools"]));
    assert_eq!(
        me["client_ip"], "127.0.0.3",
        "nginx's X-Forwarded-For, not the client's"
    );
    let session = me["session_id"]
        .as_str()
        .expect("a legacy session")
        .to_owned();
    let keys = redis.command(&["KEYS", "*"]).unwrap();
    assert!(
        keys.contains(&session),
        "session {session} not in Redis: {keys}"
    );
    let deployed = client
        .call_tool(tool_params("deploy", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(text_of(&deployed), "deployed");

    // The session is bound to its caller: another client's token with it gets 404.
    let hijack = post_json(
        &mcp,
        &serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}),
        &[
            ("authorization", &bearer(&plain)),
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(hijack.status(), 404);
    client.cancel().await.unwrap();

    // Modern era through nginx: no session; no role, no deploy.
    let client = connect(
        &mcp,
        ProtocolVersion::default(),
        &[("authorization", bearer(&plain))],
    )
    .await;
    let me = whoami(&client).await;
    assert_eq!(me["subject"], "plain-client");
    assert_eq!(me["scopes"], serde_json::json!(["mcp:tools"]));
    assert_eq!(me["session_id"], serde_json::Value::Null);
    assert!(
        client
            .call_tool(tool_params("deploy", serde_json::json!({})))
            .await
            .is_err()
    );
    client.cancel().await.unwrap();

    // Around nginx, straight to the instance: the forged header is not believed.
    let direct = format!("http://{upstream}/mcp");
    let client = connect(
        &direct,
        ProtocolVersion::V_2025_11_25,
        &[("authorization", bearer(&agent)), spoofed],
    )
    .await;
    assert_eq!(whoami(&client).await["client_ip"], "127.0.0.3");
    client.cancel().await.unwrap();
}
