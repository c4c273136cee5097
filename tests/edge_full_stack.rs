//! The complete `McpEdge::builder()` stack (audit → guard → inspect → auth → session → sse) in
//! front of the real rmcp demo server, used by real rmcp clients of two principals in both
//! protocol eras, with the audit trail checked message by message.

mod common;
#[path = "common/edge.rs"]
mod edge;

use std::collections::BTreeMap;

use common::*;
use edge::*;
use http::{Method, StatusCode};
use mcp_edge::audit::{AuditEvent, Outcome};
use mcp_edge::protocol::Era;
use mcp_edge::{Reason, RejectedBy};
use rmcp::model::ProtocolVersion;
use serde_json::json;

async fn tool_names(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

async fn whoami(client: &Client) -> serde_json::Value {
    let result = call_tool(client, "whoami", serde_json::Value::Null)
        .await
        .expect("whoami");
    serde_json::from_str(&text_of(&result)).expect("whoami returns JSON")
}

/// Alice may call every tool: list, echo, slow_count with all its progress, whoami.
async fn alice_round(client: &Client) -> serde_json::Value {
    assert_eq!(tool_names(client).await, ["echo", "slow_count", "whoami"]);
    let echoed = call_tool(client, "echo", json!({"text": "hello from alice"}))
        .await
        .expect("echo");
    assert_eq!(text_of(&echoed), "hello from alice");
    let (counted, progress) =
        call_tool_with_progress(client, "slow_count", json!({"n": 4, "delay_ms": 10}), 4).await;
    assert_eq!(text_of(&counted.expect("slow_count")), "counted to 4");
    let steps: Vec<(f64, Option<f64>)> = progress.iter().map(|p| (p.progress, p.total)).collect();
    assert_eq!(
        steps,
        [
            (1.0, Some(4.0)),
            (2.0, Some(4.0)),
            (3.0, Some(4.0)),
            (4.0, Some(4.0))
        ],
        "every progress notification arrives, in order"
    );
    let me = whoami(client).await;
    assert_eq!(me["subject"], "alice");
    me
}

/// Bob lacks `mcp:slow`: his list hides slow_count and calling it is refused with 403.
async fn bob_round(client: &Client) -> serde_json::Value {
    assert_eq!(tool_names(client).await, ["echo", "whoami"]);
    let echoed = call_tool(client, "echo", json!({"text": "hello from bob"}))
        .await
        .expect("echo");
    assert_eq!(text_of(&echoed), "hello from bob");
    let me = whoami(client).await;
    assert_eq!(me["subject"], "bob");
    let refused = call_tool(client, "slow_count", json!({"n": 1})).await;
    assert!(refused.is_err(), "slow_count without mcp:slow: {refused:?}");
    me
}

/// `(subject, what)` → number of events, where `what` is the MCP method (and tool), or the
/// HTTP method of a bodyless request.
fn tally(events: &[AuditEvent]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        let who = subject(event).unwrap_or("-").to_owned();
        let what = match (event.mcp_method(), tool(event)) {
            (Some(method), Some(tool)) => format!("{method} {tool}"),
            (Some(method), None) => method.to_owned(),
            (None, _) => event.http_method().to_string(),
        };
        *counts.entry((who, what)).or_default() += 1;
    }
    counts
}

fn expect_tally(entries: &[(&str, &str, usize)]) -> BTreeMap<(String, String), usize> {
    entries
        .iter()
        .map(|(who, what, n)| (((*who).to_owned(), (*what).to_owned()), *n))
        .collect()
}

fn find<'a>(events: &'a [AuditEvent], who: &str, tool_name: &str) -> &'a AuditEvent {
    let found: Vec<_> = events
        .iter()
        .filter(|e| subject(e) == Some(who) && tool(e) == Some(tool_name))
        .collect();
    assert_eq!(found.len(), 1, "one event for {who}'s {tool_name}");
    found[0]
}

/// What both eras share: every event has its principal, successes are successes, bob's
/// slow_count is the auth layer's 403, and it never reached the server.
fn check_common(finished: &Finished) {
    let events = &finished.events;
    assert_eq!(
        finished.lines.len(),
        events.len(),
        "the JSON-lines sink wrote one line per event"
    );
    for event in events {
        let principal = event
            .principal()
            .unwrap_or_else(|| panic!("every request carried a token: {event:#?}"));
        assert_eq!(principal.issuer(), Some(ISSUER));
        assert!(
            ["alice", "bob"].contains(&principal.subject()),
            "{event:#?}"
        );
        assert!(event.peer_addr().is_some());
    }
    for event in events {
        if subject(event) == Some("bob") && tool(event) == Some("slow_count") {
            continue;
        }
        assert!(
            event.outcome().is_success()
                // The GET stream ends when the client closes it.
                || (event.http_method() == Method::GET
                    && event.outcome() == &Outcome::ClientGone),
            "{event:#?}"
        );
    }
    let slow = find(events, "alice", "slow_count");
    assert_eq!(slow.status(), Some(StatusCode::OK));
    assert!(
        slow.sse_events().is_some_and(|n| n >= 5),
        "4 progress notifications and the response: {slow:#?}"
    );
    let refused = find(events, "bob", "slow_count");
    assert_eq!(refused.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(
        refusal(refused),
        (RejectedBy::Auth, Reason::InsufficientScope, -32600)
    );
    assert!(
        !finished
            .reached
            .iter()
            .any(|r| r.tool.as_deref() == Some("slow_count") && r.subject.as_deref() == Some("bob")),
        "bob's refused call never reached the server"
    );
    assert_no_token_anywhere(finished);
}

#[tokio::test]
async fn legacy_sessions_of_two_principals_through_the_full_stack_are_audited_per_message() {
    let stack = EdgeStack::start().await;
    let alice = legacy_client_with_auth(&stack.url, &bearer(ALICE_TOKEN)).await;
    assert_eq!(
        alice.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2025_11_25
    );
    let alice_me = alice_round(&alice).await;
    let alice_session = alice_me["session_id"]
        .as_str()
        .expect("a session")
        .to_owned();
    assert_eq!(alice_me["protocol_version"], "2025-11-25");
    let bob = legacy_client_with_auth(&stack.url, &bearer(BOB_TOKEN)).await;
    let bob_me = bob_round(&bob).await;
    let bob_session = bob_me["session_id"].as_str().expect("a session").to_owned();
    assert_ne!(alice_session, bob_session);
    assert_eq!(stack.store.len(), 2, "both sessions recorded by the edge");
    // Closing each client DELETEs its session.
    alice.cancel().await.expect("alice DELETE");
    bob.cancel().await.expect("bob DELETE");
    let store = stack.store.clone();
    let finished = stack.finish().await;
    assert!(store.is_empty(), "the DELETEs ended both records");

    let events = &finished.events;
    check_common(&finished);
    assert_eq!(
        tally(events),
        expect_tally(&[
            ("alice", "initialize", 1),
            ("alice", "notifications/initialized", 1),
            ("alice", "tools/list", 1),
            ("alice", "tools/call echo", 1),
            ("alice", "tools/call slow_count", 1),
            ("alice", "tools/call whoami", 1),
            ("alice", "GET", 1),
            ("alice", "DELETE", 1),
            ("bob", "initialize", 1),
            ("bob", "notifications/initialized", 1),
            ("bob", "tools/list", 1),
            ("bob", "tools/call echo", 1),
            ("bob", "tools/call slow_count", 1),
            ("bob", "tools/call whoami", 1),
            ("bob", "GET", 1),
            ("bob", "DELETE", 1),
        ]),
        "one event per message: {events:#?}"
    );
    for event in events {
        let expected = match subject(event) {
            Some("alice") => &alice_session,
            _ => &bob_session,
        };
        assert_eq!(
            session(event),
            Some(expected.as_str()),
            "every legacy event names its own session: {event:#?}"
        );
        if event.mcp_method().is_some() {
            assert_eq!(event.era(), Some(Era::Legacy));
        }
    }
    let initialized = events
        .iter()
        .filter(|e| e.mcp_method() == Some("notifications/initialized"));
    for event in initialized {
        assert_eq!(event.outcome(), &Outcome::Accepted);
    }
}

#[tokio::test]
async fn modern_clients_of_two_principals_through_the_full_stack_are_audited_per_message() {
    let stack = EdgeStack::start().await;
    let alice = modern_client_with_auth(&stack.url, &bearer(ALICE_TOKEN)).await;
    assert_eq!(
        alice.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );
    let alice_me = alice_round(&alice).await;
    assert!(
        alice_me["session_id"].is_null(),
        "2026-07-28 has no session"
    );
    let bob = modern_client_with_auth(&stack.url, &bearer(BOB_TOKEN)).await;
    let bob_me = bob_round(&bob).await;
    assert!(bob_me["session_id"].is_null());
    alice.cancel().await.expect("close alice");
    bob.cancel().await.expect("close bob");
    let store = stack.store.clone();
    let finished = stack.finish().await;
    assert!(store.is_empty(), "no session recorded for 2026-07-28");

    let events = &finished.events;
    check_common(&finished);
    let tallied = tally(events);
    for who in ["alice", "bob"] {
        for what in [
            "tools/list",
            "tools/call echo",
            "tools/call slow_count",
            "tools/call whoami",
        ] {
            assert_eq!(
                tallied.get(&(who.to_owned(), what.to_owned())),
                Some(&1),
                "one event for {who}'s {what}: {events:#?}"
            );
        }
    }
    for event in events {
        assert_eq!(
            session(event),
            None,
            "no session id in 2026-07-28: {event:#?}"
        );
        assert_ne!(event.http_method(), Method::DELETE);
        assert_eq!(event.era(), Some(Era::Modern), "{event:#?}");
    }
}
