//! Envelope ids through a real gateway in front of real rmcp replicas: anything the gateway
//! did not seal, or sealed for someone else, or too long ago, answers 404 with a JSON-RPC
//! body (so the client starts over, R28); key rotation keeps sessions alive while the
//! previous key is listed.
#![cfg(feature = "gateway")]

#[path = "common/affinity.rs"]
mod affinity;
mod common;

use std::time::{Duration, SystemTime};

use affinity::{Replicas, Router, serve_gateway};
use common::*;
use mcp_edge::affinity::{AffinityRouter, Envelope, EnvelopeKeys, SessionKey};
use serde_json::json;

fn router(replicas: &Replicas, keys: EnvelopeKeys) -> Router {
    AffinityRouter::envelope(
        replicas.set(),
        Envelope::new(keys).max_age(Duration::from_secs(3600)),
    )
}

fn list(id: i64) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
}

/// `tools/list` with `session` (and `user` as the principal, when given): the status, and
/// the JSON-RPC error when the edge refused.
async fn try_session(url: &str, session: &str, user: Option<&str>) -> (u16, serde_json::Value) {
    let mut headers = vec![
        ("mcp-session-id", session),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    if let Some(user) = user {
        headers.push(("x-test-user", user));
    }
    let response = post_json(url, &list(41), &headers).await;
    let status = response.status().as_u16();
    let messages = response_messages(response).await;
    (status, messages.into_iter().next().unwrap_or_default())
}

fn assert_session_not_found(outcome: (u16, serde_json::Value), what: &str) {
    let (status, body) = outcome;
    assert_eq!(status, 404, "{what}");
    assert_eq!(body["jsonrpc"], "2.0", "{what}");
    assert_eq!(body["id"], 41, "{what}: the request's id");
    assert_eq!(body["error"]["code"], -32001, "{what}");
}

/// A sealed session with its `initialized` notification sent, optionally as `user`.
async fn session_as(url: &str, user: Option<&str>) -> String {
    let mut headers = Vec::new();
    if let Some(user) = user {
        headers.push(("x-test-user", user));
    }
    let response = post_json(url, &initialize_body("2025-11-25"), &headers).await;
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.bytes().await;
    headers.push(("mcp-session-id", &session));
    headers.push(("mcp-protocol-version", "2025-11-25"));
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post_json(url, &initialized, &headers).await.status(), 202);
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_truncated_and_foreign_ids_get_404_with_jsonrpc_body() {
    let replicas = Replicas::start(2);
    let key = SessionKey::generate().unwrap();
    let (gateway, _) = serve_gateway(router(&replicas, EnvelopeKeys::new(&key)), "gateway");
    let session = raw_legacy_session(&gateway.url).await;
    assert!(session.len() < 160);
    assert_eq!(try_session(&gateway.url, &session, None).await.0, 200);

    let mut tampered = session.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_session_not_found(try_session(&gateway.url, &tampered, None).await, "tampered");
    assert_session_not_found(
        try_session(&gateway.url, &session[..session.len() - 3], None).await,
        "truncated",
    );
    assert_session_not_found(
        try_session(&gateway.url, &format!("{session}AAAA"), None).await,
        "extended",
    );
    // The replica's own id, unsealed, is not a session at the gateway either.
    let opened = EnvelopeKeys::new(&key).open(session.as_bytes()).unwrap();
    assert_session_not_found(
        try_session(&gateway.url, opened.session().as_str(), None).await,
        "raw server id",
    );
    assert_session_not_found(
        try_session(&gateway.url, "0f3c2b9e-1d4a-4f7e-9a7b-2c1d3e4f5a6b", None).await,
        "made up",
    );

    let other_key = SessionKey::generate().unwrap();
    let (stranger, _) = serve_gateway(router(&replicas, EnvelopeKeys::new(&other_key)), "stranger");
    assert_session_not_found(
        try_session(&stranger.url, &session, None).await,
        "wrong key",
    );
    // Still fine where it belongs.
    assert_eq!(try_session(&gateway.url, &session, None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_envelopes_get_404() {
    let replicas = Replicas::start(1);
    let key = SessionKey::generate().unwrap();
    let (gateway, _) = serve_gateway(router(&replicas, EnvelopeKeys::new(&key)), "gateway");
    let session = raw_legacy_session(&gateway.url).await;
    // Reseal the same session as if it had been sealed two hours ago (max age: one hour).
    let keys = EnvelopeKeys::new(&key);
    let opened = keys.open(session.as_bytes()).unwrap();
    let old = keys
        .seal(
            &opened
                .clone()
                .with_issued_at(SystemTime::now() - Duration::from_secs(7200)),
        )
        .unwrap();
    assert_session_not_found(
        try_session(&gateway.url, old.as_str(), None).await,
        "expired",
    );
    let recent = keys
        .seal(&opened.with_issued_at(SystemTime::now() - Duration::from_secs(60)))
        .unwrap();
    assert_eq!(
        try_session(&gateway.url, recent.as_str(), None).await.0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_bound_to_one_principal_is_404_for_another() {
    let replicas = Replicas::start(2);
    let key = SessionKey::generate().unwrap();
    let (gateway, _) = serve_gateway(router(&replicas, EnvelopeKeys::new(&key)), "gateway");
    let alice = session_as(&gateway.url, Some("alice")).await;
    assert_eq!(
        try_session(&gateway.url, &alice, Some("alice")).await.0,
        200
    );
    assert_session_not_found(
        try_session(&gateway.url, &alice, Some("bob")).await,
        "another principal",
    );
    assert_session_not_found(
        try_session(&gateway.url, &alice, None).await,
        "no principal",
    );
    let anonymous = session_as(&gateway.url, None).await;
    assert_session_not_found(
        try_session(&gateway.url, &anonymous, Some("mallory")).await,
        "an anonymous session presented with a principal",
    );
    assert_eq!(try_session(&gateway.url, &anonymous, None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_key_still_opens_sessions_while_it_is_listed() {
    let replicas = Replicas::start(2);
    let old_key = SessionKey::generate().unwrap();
    let new_key = SessionKey::generate().unwrap();
    let (before, _) = serve_gateway(router(&replicas, EnvelopeKeys::new(&old_key)), "before");
    let session = raw_legacy_session(&before.url).await;

    let rotated = EnvelopeKeys::new(&new_key).with_previous(&old_key);
    let (during, _) = serve_gateway(router(&replicas, rotated), "during");
    assert_eq!(try_session(&during.url, &session, None).await.0, 200);
    // New sessions are sealed with the new key only.
    let sealed_new = raw_legacy_session(&during.url).await;
    assert_eq!(try_session(&during.url, &sealed_new, None).await.0, 200);
    assert_session_not_found(
        try_session(&before.url, &sealed_new, None).await,
        "new key unknown to an old gateway",
    );

    let (after, _) = serve_gateway(router(&replicas, EnvelopeKeys::new(&new_key)), "after");
    assert_session_not_found(
        try_session(&after.url, &session, None).await,
        "previous key no longer listed",
    );
    assert_eq!(try_session(&after.url, &sealed_new, None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_resumption_and_delete_follow_the_envelope() {
    let replicas = Replicas::start(3);
    let key = SessionKey::generate().unwrap();
    let (gateway, log) = serve_gateway(router(&replicas, EnvelopeKeys::new(&key)), "gateway");
    let session = raw_legacy_session(&gateway.url).await;
    let client = http_client();
    let get = client
        .get(&gateway.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    assert!(
        get.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    drop(get);
    let delete = client
        .delete(&gateway.url)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(delete.status().is_success(), "{}", delete.status());
    // Every request of the session went to the replica that issued it.
    let seen = log.all();
    let home = seen[0].replica.clone().unwrap();
    assert!(
        seen.iter().all(|s| s.replica.as_ref() == Some(&home)),
        "{seen:#?}"
    );
    // After DELETE the replica no longer knows the session: its own 404 comes through.
    assert_eq!(try_session(&gateway.url, &session, None).await.0, 404);
}
