//! JWT access tokens end to end: a real JWKS served over HTTP by the test, tokens minted by
//! the test (RS256, ES256, EdDSA), a real rmcp server behind InspectLayer + AuthLayer, raw
//! HTTP probes for every 401 with its exact challenge.
#![cfg(feature = "jwks-fetch")]

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::auth::*;
use common::{initialize_body, post_json, serve_service};
use mcp_edge::auth::{
    AuthLayer, CachedVerifier, HttpJwks, Issuer, JwtVerifier, ProtectedResource, RemoteKeys,
};
use mcp_edge::inspect::InspectLayer;
use serde_json::json;
use tower::ServiceBuilder;

const METADATA: &str = "https://mcp.test/.well-known/oauth-protected-resource/mcp";

fn remote(url: &str) -> RemoteKeys {
    RemoteKeys::new(HttpJwks::new(url))
}

/// A real rmcp server behind inspect + auth, trusting `keys` for [`ISSUER`].
fn mcp_server(keys: RemoteKeys) -> common::TestServer {
    let verifier = JwtVerifier::new(AUDIENCE).issuer(Issuer::remote(ISSUER, keys));
    let auth = AuthLayer::new(verifier)
        .protected_resource(ProtectedResource::new([ISSUER]).resource(AUDIENCE))
        .challenge_scopes(["mcp:tools"]);
    let svc = ServiceBuilder::new()
        .layer(InspectLayer::new())
        .layer(auth)
        .service(common::rmcp_service());
    serve_service(svc)
}

async fn initialize(url: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut headers = vec![];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    post_json(url, &initialize_body("2025-11-25"), &headers).await
}

async fn initialize_with(url: &str, token: &str) -> reqwest::Response {
    initialize(url, Some(&format!("Bearer {token}"))).await
}

/// Asserts a 401 with exactly this challenge and a JSON-RPC error body for id 1.
async fn assert_401(response: reqwest::Response, challenge: &str) {
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], challenge);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 1);
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unauthorized")
    );
}

fn invalid(description: &str) -> String {
    format!(
        r#"Bearer error="invalid_token", error_description="{description}", resource_metadata="{METADATA}", scope="mcp:tools""#
    )
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_from_a_fetched_jwks_are_accepted() {
    let jwks = JwksServer::start(vec![rsa1().jwk, ec1().jwk, ed1().jwk]);
    let server = mcp_server(remote(&jwks.url));
    for key in [rsa1(), ec1(), ed1()] {
        let token = mint(&key, &claims("alice", "mcp:tools"));
        let response = initialize_with(&server.url, &token).await;
        assert_eq!(response.status(), 200, "{:?}", key.alg);
    }
    assert_eq!(jwks.fetches(), 1, "one fetch serves every key of the set");
}

#[tokio::test]
async fn every_bad_token_gets_401_with_the_exact_challenge() {
    let jwks = JwksServer::start(vec![rsa1().jwk, ec1().jwk, ed1().jwk]);
    let server = mcp_server(remote(&jwks.url));
    let url = &server.url;
    let key = rsa1();

    // No token at all, or another scheme: no `error` (RFC 6750 §3.1).
    let missing = format!(r#"Bearer resource_metadata="{METADATA}", scope="mcp:tools""#);
    assert_401(initialize(url, None).await, &missing).await;
    assert_401(
        initialize(url, Some("Basic YWxpY2U6c2VjcmV0")).await,
        &missing,
    )
    .await;

    let mut expired = claims("alice", "mcp:tools");
    expired["exp"] = json!(now() - 3600);
    assert_401(
        initialize_with(url, &mint(&key, &expired)).await,
        &invalid("the token has expired"),
    )
    .await;

    let mut early = claims("alice", "mcp:tools");
    early["nbf"] = json!(now() + 3600);
    assert_401(
        initialize_with(url, &mint(&key, &early)).await,
        &invalid("the token is not valid yet"),
    )
    .await;

    let mut foreign_issuer = claims("alice", "mcp:tools");
    foreign_issuer["iss"] = json!("https://evil.example");
    assert_401(
        initialize_with(url, &mint(&key, &foreign_issuer)).await,
        &invalid("the token's issuer is not trusted"),
    )
    .await;

    let mut other_audience = claims("alice", "mcp:tools");
    other_audience["aud"] = json!("https://other-server.example/mcp");
    assert_401(
        initialize_with(url, &mint(&key, &other_audience)).await,
        &invalid("the token is not for this resource"),
    )
    .await;

    // alg: none, unsigned.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims("alice", "mcp:tools").to_string());
    let none = format!("{header}.{payload}.");
    assert_401(
        initialize_with(url, &none).await,
        &invalid("the token is malformed"),
    )
    .await;

    // HS256 "signed" with the RSA public key as the secret (algorithm confusion).
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some("rsa1".into());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &claims("alice", "mcp:tools"),
        &jsonwebtoken::EncodingKey::from_secret(RSA1_PUBLIC_PEM).unwrap(),
    )
    .unwrap();
    assert_401(
        initialize_with(url, &confused).await,
        &invalid("the token's algorithm is not accepted"),
    )
    .await;

    // A valid token with one signature character changed.
    let good = mint(&key, &claims("alice", "mcp:tools"));
    let (head, sig) = good.rsplit_once('.').unwrap();
    let mut sig = sig.as_bytes().to_vec();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{head}.{}", String::from_utf8(sig).unwrap());
    assert_401(
        initialize_with(url, &tampered).await,
        &invalid("the token's signature is invalid"),
    )
    .await;

    // Signed by a key the issuer never published.
    let unknown = mint_with_kid(&rsa2(), "rsa-unknown", &claims("alice", "mcp:tools"));
    assert_401(
        initialize_with(url, &unknown).await,
        &invalid("no key matches the token's kid"),
    )
    .await;

    assert_401(
        initialize_with(url, "not-a-jwt").await,
        &invalid("the token is malformed"),
    )
    .await;
    // Not even a b64token.
    assert_401(
        initialize(url, Some("Bearer {\"x\"}")).await,
        &invalid("the token is malformed"),
    )
    .await;

    // The token in the query string: refused, never read.
    let with_query = format!("{url}?access_token={good}");
    assert_401(
        initialize(&with_query, None).await,
        &format!(
            r#"Bearer error="invalid_request", error_description="access tokens are not accepted in the URI query", resource_metadata="{METADATA}", scope="mcp:tools""#
        ),
    )
    .await;

    // And the good one still passes.
    assert_eq!(initialize_with(url, &good).await.status(), 200);
}

#[tokio::test]
async fn a_rotated_key_is_accepted_after_one_refetch() {
    let jwks = JwksServer::start(vec![rsa1().jwk]);
    let keys = remote(&jwks.url).min_refetch_interval(Duration::from_millis(200));
    let server = mcp_server(keys);
    let first = mint(&rsa1(), &claims("alice", "mcp:tools"));
    assert_eq!(initialize_with(&server.url, &first).await.status(), 200);
    assert_eq!(jwks.fetches(), 1);

    // The authorization server rotates: a new key appears in the set.
    jwks.add(rsa2().jwk);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let rotated = mint(&rsa2(), &claims("alice", "mcp:tools"));
    assert_eq!(initialize_with(&server.url, &rotated).await.status(), 200);
    assert_eq!(jwks.fetches(), 2, "exactly one refetch for the new kid");
    // Both keys keep working without more fetches.
    assert_eq!(initialize_with(&server.url, &first).await.status(), 200);
    assert_eq!(initialize_with(&server.url, &rotated).await.status(), 200);
    assert_eq!(jwks.fetches(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_one_fetch_per_interval() {
    let jwks = JwksServer::start(vec![rsa1().jwk]);
    let server = mcp_server(remote(&jwks.url).min_refetch_interval(Duration::from_secs(60)));
    let mut requests = Vec::new();
    for i in 0..40 {
        let kid = format!("forged-{i}");
        let token = mint_with_kid(&rsa2(), &kid, &claims("mallory", "mcp:tools"));
        let url = server.url.clone();
        requests.push(tokio::spawn(async move {
            initialize_with(&url, &token).await.status()
        }));
    }
    for request in requests {
        assert_eq!(request.await.unwrap(), 401);
    }
    assert_eq!(jwks.fetches(), 1, "40 unknown kids, one fetch");
    // The legitimate key was learned by that fetch: no more fetching.
    let good = mint(&rsa1(), &claims("alice", "mcp:tools"));
    assert_eq!(initialize_with(&server.url, &good).await.status(), 200);
    assert_eq!(jwks.fetches(), 1);
}

#[tokio::test]
async fn jwks_server_down_keeps_cached_keys_working() {
    let mut jwks = JwksServer::start(vec![rsa1().jwk]);
    // Keys go stale at once, so every request wants a (background, rate-limited) refresh.
    let keys = remote(&jwks.url)
        .min_refetch_interval(Duration::from_millis(50))
        .default_max_age(Duration::ZERO)
        .max_age_bounds(Duration::ZERO, Duration::ZERO);
    let server = mcp_server(keys);
    let good = mint(&rsa1(), &claims("alice", "mcp:tools"));
    assert_eq!(initialize_with(&server.url, &good).await.status(), 200);

    jwks.stop();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let started = Instant::now();
        assert_eq!(initialize_with(&server.url, &good).await.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    // An unknown kid while the server is down: a prompt 401, never a 5xx.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let unknown = mint_with_kid(&rsa2(), "rsa2", &claims("alice", "mcp:tools"));
    assert_401(
        initialize_with(&server.url, &unknown).await,
        &invalid("no key matches the token's kid"),
    )
    .await;
}

#[tokio::test]
async fn with_no_keys_at_all_tokens_get_401_not_500_or_a_hang() {
    // Nothing listens here: the port of a server that was just stopped.
    let mut jwks = JwksServer::start(vec![]);
    let url = jwks.url.clone();
    jwks.stop();
    let server = mcp_server(remote(&url).fetch_timeout(Duration::from_secs(2)));
    let token = mint(&rsa1(), &claims("alice", "mcp:tools"));
    let started = Instant::now();
    assert_401(
        initialize_with(&server.url, &token).await,
        &invalid("no verification keys are available"),
    )
    .await;
    // Within the refetch interval: answered at once, still 401.
    assert_401(
        initialize_with(&server.url, &token).await,
        &invalid("no verification keys are available"),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn cached_verifier_checks_a_repeated_token_once() {
    let jwks = JwksServer::start(vec![ec1().jwk]);
    let verifier = CachedVerifier::new(
        JwtVerifier::new(AUDIENCE).issuer(Issuer::remote(ISSUER, remote(&jwks.url))),
    );
    let token = mint(&ec1(), &claims("alice", "mcp:tools"));
    use mcp_edge::auth::TokenVerifier;
    let first = verifier.verify(&token).await.unwrap();
    assert_eq!(first.subject(), "alice");
    assert_eq!(first.issuer(), Some(ISSUER));
    assert_eq!(first.client_id(), Some("test-client"));
    assert!(first.has_scope("mcp:tools"));
    assert_eq!(verifier.len(), 1);
    assert_eq!(verifier.verify(&token).await.unwrap(), first);
    assert_eq!(jwks.fetches(), 1);
}
