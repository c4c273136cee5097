//! Failure isolation and credentials: a slow upstream is cut at its own timeout while the
//! others answer; each upstream gets its own credentials and never the client's token unless
//! configured for it (R59).
#![cfg(feature = "aggregator")]

#[path = "common/aggregate.rs"]
mod aggregate;
mod common;

use std::time::Duration;

use aggregate::{Aggregated, Fake};
use common::{bearer, call_tool, legacy_client_with_auth, modern_client_with_auth, text_of};
use http_body_util::BodyExt;
use mcp_edge::aggregate::{Aggregator, Upstream};
use mcp_edge::proxy::HttpUpstreamBuilder;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn modern(aggregator: &Aggregator<Fake>, method: &str, params: Value) -> (u16, Value) {
    let request = aggregate::modern_request(method, params, json!("q"));
    let response = aggregator.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_slow_upstream_is_cut_at_its_timeout_and_named_in_the_error() {
    let aggregator = Aggregator::builder()
        .upstream(Upstream::new("fast", Fake::new("fast", 2)))
        .upstream(
            Upstream::new("slow", Fake::slow("slow", 2, Duration::from_secs(30)))
                .timeout(Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let (status, list) = modern(&aggregator, "tools/list", json!({})).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status, 200);
    let names: Vec<_> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["fast__t0", "fast__t1"]);

    let (status, call) = modern(&aggregator, "prompts/get", json!({"name": "slow__greet"})).await;
    assert_eq!(status, 200, "one upstream never fails the endpoint");
    assert_eq!(call["id"], "q");
    assert_eq!(call["error"]["code"], -32603);
    assert_eq!(call["error"]["data"]["upstream"], "slow");
    let message = call["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("`slow`") && message.contains("timed out"),
        "{message}"
    );

    let (_, fast) = modern(&aggregator, "prompts/get", json!({"name": "fast__greet"})).await;
    assert_eq!(
        fast["result"]["messages"][0]["content"]["text"],
        "fast:greet"
    );
}

#[tokio::test]
async fn each_upstream_gets_its_own_credentials_and_never_the_clients_token() {
    let agg = Aggregated::start_with(|alpha, beta| {
        let url = alpha.service().url().to_owned();
        let with_key = HttpUpstreamBuilder::new()
            .header(
                http::HeaderName::from_static("x-api-key"),
                http::HeaderValue::from_static("alpha-secret"),
            )
            .build(&url)
            .unwrap();
        Aggregator::builder()
            .upstream(Upstream::new("alpha", with_key))
            .upstream(beta)
    });
    let token = bearer("client-token");
    for client in [
        legacy_client_with_auth(&agg.gateway.url, &token).await,
        modern_client_with_auth(&agg.gateway.url, &token).await,
    ] {
        for tool in ["alpha__echo", "beta__echo"] {
            call_tool(&client, tool, json!({"text": "x"}))
                .await
                .unwrap();
        }
        client.cancel().await.unwrap();
    }
    let alpha = agg.alpha.log.all();
    let beta = agg.beta.log.all();
    assert!(!alpha.is_empty() && !beta.is_empty());
    assert!(
        alpha
            .iter()
            .all(|s| s.headers["x-api-key"] == "alpha-secret")
    );
    assert!(beta.iter().all(|s| !s.headers.contains_key("x-api-key")));
    assert!(alpha.iter().chain(&beta).all(|s| s.authorization.is_none()));
}

#[tokio::test]
async fn the_clients_token_reaches_only_the_upstream_configured_for_it() {
    let agg = Aggregated::start_with(|alpha, beta| {
        Aggregator::builder()
            .upstream(alpha)
            .upstream(beta.forward_authorization(true))
    });
    let token = bearer("client-token");
    for client in [
        legacy_client_with_auth(&agg.gateway.url, &token).await,
        modern_client_with_auth(&agg.gateway.url, &token).await,
    ] {
        let sum = call_tool(&client, "beta__add", json!({"a": 1, "b": 2}))
            .await
            .unwrap();
        assert_eq!(text_of(&sum), "3");
        call_tool(&client, "alpha__echo", json!({"text": "x"}))
            .await
            .unwrap();
        client.cancel().await.unwrap();
    }
    let beta = agg.beta.log.all();
    let posts = beta.iter().filter(|s| s.method == http::Method::POST);
    assert!(posts.clone().count() > 0);
    assert!(
        posts
            .into_iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer client-token"))
    );
    assert!(
        agg.alpha
            .log
            .all()
            .iter()
            .all(|s| s.authorization.is_none())
    );
}
