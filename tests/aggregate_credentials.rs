//! Credentials per upstream: a static header (a secret from the environment) and an OAuth
//! client-credentials token from a real OpenID provider each reach only their own upstream,
//! and the client's token reaches neither (R59); token exchange (RFC 8693) gets one token per
//! client, cached, replaced before it expires.
#![cfg(feature = "aggregator-oauth")]

#[path = "common/aggregate.rs"]
mod aggregate;
mod common;
#[path = "auth_oidc/provider.rs"]
mod provider;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aggregate::{Aggregated, Fake, call_in_both_eras, modern_request};
use bytes::Bytes;
use common::bearer;
use http::{HeaderName, Request};
use http_body_util::{BodyExt, Full};
use mcp_edge::aggregate::{Aggregator, OAuthClient, Upstream, env_secret};
use provider::OidcProvider;
use serde_json::{Value, json};
use tower::ServiceExt;

#[tokio::test]
async fn a_static_header_and_a_client_credentials_token_reach_only_their_own_upstream() {
    let Some(provider) = OidcProvider::start(json!({
        "scopes": ["mcp:tools"],
        "clients": [{"client_id": "aggregator", "client_secret": "agg-secret"}],
    }))
    .await
    else {
        return;
    };
    // SAFETY (test only): no other thread reads this variable.
    unsafe { std::env::set_var("AGGREGATE_CREDENTIALS_ALPHA_KEY", "alpha-secret") };
    let token_endpoint = format!("{}/token", provider.issuer);
    let agg = Aggregated::start_with(|alpha, beta| {
        let beta_url = beta.service().url().to_owned();
        let oauth = OAuthClient::client_credentials(&token_endpoint, "aggregator", "agg-secret")
            .scope("mcp:tools")
            .resource(&beta_url);
        Aggregator::builder()
            .upstream(alpha.header(
                HeaderName::from_static("x-api-key"),
                env_secret("AGGREGATE_CREDENTIALS_ALPHA_KEY").unwrap(),
            ))
            .upstream(beta.oauth(oauth))
    });
    let token = bearer("client-token");
    call_in_both_eras(&agg.gateway.url, &token, &["alpha__echo", "beta__echo"]).await;
    let alpha = agg.alpha.log.all();
    let beta = agg.beta.log.all();
    assert!(!alpha.is_empty() && !beta.is_empty());
    assert!(
        alpha
            .iter()
            .all(|s| s.headers["x-api-key"] == "alpha-secret")
    );
    assert!(
        alpha.iter().all(|s| s.authorization.is_none()),
        "no token for alpha"
    );
    assert!(beta.iter().all(|s| !s.headers.contains_key("x-api-key")));
    let beta_tokens: Vec<&str> = beta
        .iter()
        .map(|s| s.authorization.as_deref().expect("beta gets a token"))
        .collect();
    let first = beta_tokens[0];
    assert!(first.starts_with("Bearer ") && first != token, "{first}");
    // One token, fetched once and reused: its claims name the aggregator and beta.
    assert!(beta_tokens.iter().all(|t| *t == first), "{beta_tokens:?}");
    let jwt = first.trim_start_matches("Bearer ");
    let payload = jwt.split('.').nth(1).expect("a JWT access token");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["client_id"], "aggregator", "{claims}");
    assert_eq!(claims["aud"], agg.beta.url, "{claims}");
}

/// An RFC 8693 token endpoint: checks the grant and the aggregator's client authentication,
/// answers `exchanged-{subject}-{n}` living `lifetime` seconds.
struct ExchangeEndpoint {
    url: String,
    exchanges: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl ExchangeEndpoint {
    async fn start(lifetime: u64) -> ExchangeEndpoint {
        let exchanges = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&exchanges);
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move |headers: http::HeaderMap, body: String| {
                let counter = Arc::clone(&counter);
                async move {
                    let form: std::collections::HashMap<String, String> =
                        serde_urlencoded_lite(&body);
                    let basic = headers["authorization"].to_str().unwrap();
                    // "aggregator:agg secret", form-encoded first (RFC 6749 §2.3.1).
                    assert_eq!(basic, "Basic YWdncmVnYXRvcjphZ2crc2VjcmV0");
                    assert_eq!(
                        form["grant_type"],
                        "urn:ietf:params:oauth:grant-type:token-exchange"
                    );
                    assert_eq!(
                        form["subject_token_type"],
                        "urn:ietf:params:oauth:token-type:access_token"
                    );
                    assert_eq!(form["audience"], "upstream-one");
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let token = format!("exchanged-{}-{n}", form["subject_token"]);
                    axum::Json(json!({
                        "access_token": token,
                        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                        "token_type": "Bearer",
                        "expires_in": lifetime,
                    }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        ExchangeEndpoint {
            url,
            exchanges,
            _task: task,
        }
    }
}

/// Just enough form decoding for the test endpoint.
fn serde_urlencoded_lite(body: &str) -> std::collections::HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                let s = s.replace('+', " ");
                let mut out = Vec::new();
                let mut bytes = s.bytes();
                while let Some(b) = bytes.next() {
                    if b == b'%' {
                        let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                        out.push(u8::from_str_radix(&hex, 16).unwrap());
                    } else {
                        out.push(b);
                    }
                }
                String::from_utf8(out).unwrap()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// Records the `Authorization` each request to the upstream carried.
#[derive(Clone)]
struct Seen {
    fake: Fake,
    authorizations: Arc<Mutex<Vec<Option<String>>>>,
}

impl tower::Service<Request<Full<Bytes>>> for Seen {
    type Response = <Fake as tower::Service<Request<Full<Bytes>>>>::Response;
    type Error = std::convert::Infallible;
    type Future = <Fake as tower::Service<Request<Full<Bytes>>>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.fake.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let authorization = request
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        self.authorizations.lock().unwrap().push(authorization);
        self.fake.call(request)
    }
}

async fn call_as(aggregator: &Aggregator<Seen>, token: Option<&str>) -> Value {
    let mut request = modern_request("tools/call", json!({"name": "one__t0"}), json!(1));
    if let Some(token) = token {
        let value = bearer(token).parse().unwrap();
        request.headers_mut().insert("authorization", value);
    }
    let response = aggregator.clone().oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn token_exchange_gets_one_cached_token_per_client_and_replaces_it_early() {
    let endpoint = ExchangeEndpoint::start(1).await;
    let seen = Seen {
        fake: Fake::new("one", 1),
        authorizations: Arc::default(),
    };
    let oauth = OAuthClient::token_exchange(&endpoint.url, "aggregator", "agg secret")
        .audience("upstream-one");
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("one", seen.clone()).oauth(oauth))
        .build()
        .unwrap();

    for token in ["alice", "alice", "bob"] {
        let answer = call_as(&aggregator, Some(token)).await;
        assert_eq!(answer["result"]["content"][0]["text"], "one:t0", "{answer}");
    }
    assert_eq!(
        endpoint.exchanges.load(Ordering::SeqCst),
        2,
        "alice's token was reused"
    );
    assert_eq!(
        *seen.authorizations.lock().unwrap(),
        [
            Some("Bearer exchanged-alice-0".to_owned()),
            Some("Bearer exchanged-alice-0".to_owned()),
            Some("Bearer exchanged-bob-1".to_owned()),
        ],
        "the upstream sees exchanged tokens, never the clients' own"
    );

    // A 1 s token is replaced a fifth early: after 0.8 s a new one is fetched.
    tokio::time::sleep(Duration::from_millis(850)).await;
    call_as(&aggregator, Some("alice")).await;
    assert_eq!(endpoint.exchanges.load(Ordering::SeqCst), 3);
    assert_eq!(
        seen.authorizations
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .as_deref(),
        Some("Bearer exchanged-alice-2")
    );

    // Without a client token there is nothing to exchange: an error naming the upstream.
    let refused = call_as(&aggregator, None).await;
    assert_eq!(refused["error"]["data"]["upstream"], "one", "{refused}");
    assert_eq!(
        seen.authorizations.lock().unwrap().len(),
        4,
        "nothing was sent"
    );
}
