//! RFC 9728 discovery as the official TypeScript SDK's client does it, against the stack of
//! `examples/server.rs` built from its own auth flags (`examples/common/auth.rs`): the
//! `resource_metadata` of the 401, then the path-inserted well-known URI, then the root one;
//! `resource` must be the URL the client connected to, and a token for that audience, from
//! the authorization server the metadata names, is the one the verifier accepts. Real
//! sockets, a real JWKS served over HTTP.
#![cfg(feature = "jwks-fetch")]

mod common;

#[allow(dead_code)] // the example's usage text and unused accessors
#[path = "../examples/common/auth.rs"]
mod example_auth;

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use common::auth::{ISSUER, JwksServer, claims, mint, rsa1};
use common::{TestServer, bearer, initialize_body, post_json, try_connect};
use example_auth::AuthOptions;
use mcp_edge::{GuardLayer, InspectLayer, McpEdge};
use rmcp::model::ProtocolVersion;

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The example server's auth flags, parsed as its command line would be.
fn options(flags: &[(&str, &str)]) -> Result<AuthOptions, String> {
    let mut options = AuthOptions::default();
    for (flag, value) in flags {
        let value = value.to_string();
        assert!(options.parse_flag(flag, || Some(value.clone()))?, "{flag}");
    }
    Ok(options)
}

/// `examples/server.rs`'s stack (guard → inspect → auth → rmcp, the metadata routes behind
/// the guard) on `listener`, configured by `flags`.
fn serve_example(listener: std::net::TcpListener, flags: &[(&str, &str)]) -> TestServer {
    let options = options(flags).expect("flags");
    let guard = GuardLayer::loopback().peer_addr_with(|ext: &http::Extensions| {
        ext.get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr)
    });
    let guard = match options.public_url.clone() {
        Some(url) => guard.public_url(url),
        None => guard,
    };
    let auth = options.build().expect("auth setup");
    let edge = McpEdge::builder()
        .guard(guard.clone())
        .inspect(InspectLayer::new())
        .auth_opt(auth.layer.clone());
    let app = axum::Router::new()
        .nest_service("/mcp", common::rmcp_service())
        .layer(edge);
    let app = auth.route_metadata(app, &guard);
    common::serve_listener(listener, app)
}

fn bind() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    (listener, url)
}

/// Fetches protected resource metadata the way the TypeScript SDK's
/// `discoverOAuthProtectedResourceMetadata` does: the URL from the challenge if any, else the
/// path-inserted well-known URI for the server URL, falling back to the root one on a 4xx.
/// Returns the document and the URL that answered.
async fn discover(server_url: &str, from_challenge: Option<&str>) -> (serde_json::Value, String) {
    let (origin, path) = split(server_url);
    let path = path.trim_end_matches('/');
    let mut candidates = vec![];
    if let Some(url) = from_challenge {
        candidates.push(url.to_owned());
    } else {
        candidates.push(format!("{origin}{WELL_KNOWN}{path}"));
        if !path.is_empty() {
            candidates.push(format!("{origin}{WELL_KNOWN}"));
        }
    }
    for url in candidates {
        let response = common::http_client()
            .get(&url)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if (400..500).contains(&status) {
            continue;
        }
        assert_eq!(status, 200, "{url}");
        return (response.json().await.unwrap(), url);
    }
    panic!("no protected resource metadata for {server_url}");
}

/// `(origin, path)` of an absolute URL.
fn split(url: &str) -> (&str, &str) {
    let after = url.find("://").unwrap() + 3;
    let at = url[after..].find('/').map_or(url.len(), |i| after + i);
    url.split_at(at)
}

/// The SDK's `checkResourceAllowed`: same origin, and the requested path under the
/// configured one. Looser than RFC 9728 §3.3, which wants them equal: the test asserts both.
fn sdk_allows(requested: &str, configured: &str) -> bool {
    let (ro, rp) = split(requested);
    let (co, cp) = split(configured);
    let with_slash = |p: &str| {
        if p.ends_with('/') {
            p.to_owned()
        } else {
            format!("{p}/")
        }
    };
    ro == co && with_slash(rp).starts_with(&with_slash(cp))
}

/// The `resource_metadata` parameter of a `WWW-Authenticate` value.
fn resource_metadata(challenge: &str) -> Option<String> {
    let at = challenge.find("resource_metadata=\"")? + "resource_metadata=\"".len();
    let end = challenge[at..].find('"')?;
    Some(challenge[at..at + end].to_owned())
}

async fn initialize(url: &str, token: Option<&str>) -> reqwest::Response {
    let authorization = token.map(bearer);
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|a| ("authorization", a.as_str()))
        .collect();
    post_json(url, &initialize_body("2025-11-25"), &headers).await
}

/// A token as the authorization server would mint it for a client that asked for `resource`
/// (RFC 8707): `aud` is that resource, `iss` the server the metadata named.
fn token_for(issuer: &str, resource: &str) -> String {
    let mut claims = claims("alice", "mcp:tools");
    claims["iss"] = issuer.into();
    claims["aud"] = resource.into();
    mint(&rsa1(), &claims)
}

#[tokio::test]
async fn a_typescript_sdk_style_client_discovers_the_endpoint_and_gets_an_accepted_audience() {
    let jwks = JwksServer::start(vec![rsa1().jwk]);
    let (listener, url) = bind();
    let server = serve_example(
        listener,
        &[
            ("--jwks-url", &jwks.url),
            ("--issuer", ISSUER),
            ("--public-url", &url),
        ],
    );
    assert_eq!(server.url, url);

    // 1. No token: 401, and the challenge points at the path-inserted metadata URL.
    let response = initialize(&url, None).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    let pointed = resource_metadata(challenge).expect("resource_metadata in the challenge");
    let (origin, _) = split(&url);
    assert_eq!(pointed, format!("{origin}{WELL_KNOWN}/mcp"));

    // 2. Every way the SDK may find the metadata names this endpoint exactly, and the
    //    authorization server the verifier trusts.
    let (from_header, _) = discover(&url, Some(&pointed)).await;
    let (path_first, answered) = discover(&url, None).await;
    assert_eq!(answered, pointed, "the path-inserted URI answers first");
    let root = common::http_client()
        .get(format!("{origin}{WELL_KNOWN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        root.status(),
        200,
        "the only protected resource: the root answers"
    );
    let root: serde_json::Value = root.json().await.unwrap();
    for doc in [&from_header, &path_first, &root] {
        assert_eq!(doc["resource"], url.as_str(), "{doc}");
        assert_eq!(doc["authorization_servers"], serde_json::json!([ISSUER]));
        let resource = doc["resource"].as_str().unwrap();
        assert!(sdk_allows(&url, resource), "{resource} for {url}");
    }

    // 3. The audience the SDK asks for (the metadata's `resource`) is the one accepted...
    let resource = path_first["resource"].as_str().unwrap();
    let issuer = path_first["authorization_servers"][0].as_str().unwrap();
    let token = token_for(issuer, resource);
    assert_eq!(initialize(&url, Some(&token)).await.status(), 200);
    let client = try_connect(&url, ProtocolVersion::V_2025_11_25, Some(&bearer(&token)))
        .await
        .expect("an rmcp client with the discovered audience connects");
    client.cancel().await.unwrap();

    // ...and what a root document naming the origin used to lead to is not: neither the bare
    // origin nor the `URL` serialisation of it a TypeScript client would send.
    for wrong in [
        origin.to_owned(),
        format!("{origin}/"),
        format!("{url}/mcp"),
    ] {
        let token = token_for(issuer, &wrong);
        let response = initialize(&url, Some(&token)).await;
        assert_eq!(response.status(), 401, "audience {wrong}");
    }
}

#[tokio::test]
async fn with_a_static_token_no_metadata_is_served_or_pointed_at() {
    let (listener, url) = bind();
    let server = serve_example(listener, &[("--token", "s3cret"), ("--public-url", &url)]);
    let response = initialize(&url, None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    for path in [WELL_KNOWN.to_owned(), format!("{WELL_KNOWN}/mcp")] {
        let response = common::http_client()
            .get(server.url_for(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(initialize(&url, Some("s3cret")).await.status(), 200);
}

#[test]
fn public_url_is_the_endpoint_url_not_the_origin() {
    let error = options(&[("--public-url", "https://mcp.example.com")])
        .err()
        .expect("an origin alone is refused");
    assert!(error.contains("https://mcp.example.com/mcp"), "{error}");
    // A prefix before /mcp stays in the resource, and the guard gets the base URL.
    let options = options(&[("--public-url", "https://mcp.example.com/tenant/mcp")]).unwrap();
    assert_eq!(
        options.public_url.unwrap().to_string(),
        "https://mcp.example.com/tenant"
    );
}
