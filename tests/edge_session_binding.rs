//! Session binding across principals through the full `McpEdge` stack (R32, §L.13): a legacy
//! session id presented with another principal's valid token gets 404 and never reaches the
//! owner's session; presented with no token it gets 401, because auth runs first.

mod common;
#[path = "common/edge.rs"]
mod edge;

use common::*;
use edge::*;
use http::{Method, StatusCode};
use mcp_edge::{Reason, RejectedBy};
use serde_json::json;

async fn whoami(client: &Client) -> serde_json::Value {
    let result = call_tool(client, "whoami", serde_json::Value::Null)
        .await
        .expect("whoami");
    serde_json::from_str(&text_of(&result)).expect("whoami returns JSON")
}

fn whoami_call(id: i64) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "whoami", "arguments": {}}})
}

async fn jsonrpc_error(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.expect("JSON-RPC body");
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(body.get("result").is_none(), "{body}");
    body
}

#[tokio::test]
async fn another_principals_token_on_a_session_gets_404_and_never_reaches_it() {
    let stack = EdgeStack::start().await;
    let alice = legacy_client_with_auth(&stack.url, &bearer(ALICE_TOKEN)).await;
    let me = whoami(&alice).await;
    let session_id = me["session_id"].as_str().expect("a session").to_owned();
    let bob_auth = bearer(BOB_TOKEN);
    let with_bob = [
        ("authorization", bob_auth.as_str()),
        ("mcp-session-id", session_id.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];

    // Bob's valid token with alice's session id: 404 Session not found, as for an unknown id.
    let response = post_json(&stack.url, &whoami_call(41), &with_bob).await;
    assert_eq!(response.status(), 404);
    let body = jsonrpc_error(response).await;
    assert_eq!(body["id"], 41);
    assert_eq!(body["error"]["code"], -32001);
    assert_eq!(body["error"]["message"], "Session not found");
    // Nor can bob open alice's stream or end her session.
    for method in [Method::GET, Method::DELETE] {
        let mut request = http_client()
            .request(method.clone(), &stack.url)
            .header("accept", "text/event-stream");
        for (name, value) in with_bob {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404, "{method}");
        assert_eq!(jsonrpc_error(response).await["error"]["code"], -32001);
    }

    // No token at all: the auth layer answers 401 before the session layer is asked.
    let response = post_json(
        &stack.url,
        &whoami_call(42),
        &[
            ("mcp-session-id", session_id.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let body = jsonrpc_error(response).await;
    assert_eq!(body["id"], 42);

    // Alice carries on in the same session, which the attempts neither used nor ended.
    let again = whoami(&alice).await;
    assert_eq!(again["subject"], "alice");
    assert_eq!(again["session_id"], session_id.as_str());
    alice.cancel().await.expect("DELETE");
    let finished = stack.finish().await;

    // The server only ever saw alice in her session: twice whoami, never bob, never anonymous.
    let in_session: Vec<_> = finished
        .reached
        .iter()
        .filter(|r| r.session.as_deref() == Some(session_id.as_str()))
        .collect();
    assert!(!in_session.is_empty());
    for reached in &in_session {
        assert_eq!(reached.subject.as_deref(), Some("alice"), "{reached:?}");
    }
    let whoamis = in_session
        .iter()
        .filter(|r| r.tool.as_deref() == Some("whoami"))
        .count();
    assert_eq!(
        whoamis, 2,
        "only alice's two whoami calls reached the server"
    );
    assert!(
        !finished
            .reached
            .iter()
            .any(|r| r.subject.as_deref() != Some("alice")),
        "nothing but alice's requests reached the server: {:?}",
        finished.reached
    );

    // Audit: bob's three attempts are the session layer's principal mismatch, naming bob and
    // the session he presented; the anonymous one is auth's missing token.
    let bobs: Vec<_> = finished
        .events
        .iter()
        .filter(|e| subject(e) == Some("bob"))
        .collect();
    assert_eq!(bobs.len(), 3, "{bobs:#?}");
    for event in &bobs {
        assert_eq!(
            refusal(event),
            (
                RejectedBy::Session,
                Reason::SessionPrincipalMismatch,
                -32001
            )
        );
        assert_eq!(event.status(), Some(StatusCode::NOT_FOUND));
        assert_eq!(session(event), Some(session_id.as_str()));
    }
    let post = bobs
        .iter()
        .find(|e| e.http_method() == Method::POST)
        .expect("bob's POST");
    assert_eq!(tool(post), Some("whoami"));
    assert_eq!(
        post.jsonrpc_id().map(|id| id.to_string()).as_deref(),
        Some("41")
    );
    let anonymous: Vec<_> = finished
        .events
        .iter()
        .filter(|e| e.principal().is_none())
        .collect();
    assert_eq!(anonymous.len(), 1, "{anonymous:#?}");
    assert_eq!(
        refusal(anonymous[0]),
        (RejectedBy::Auth, Reason::MissingToken, -32600)
    );
    assert_eq!(anonymous[0].status(), Some(StatusCode::UNAUTHORIZED));
    // Every line of the JSON-lines log says the same, and no token is in it.
    let mismatch_lines = finished
        .lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|l| l["mcp_edge.refusal.reason"] == "session_principal_mismatch")
        .inspect(|l| {
            assert_eq!(l["mcp_edge.refused_by"], "session");
            assert_eq!(l["mcp_edge.principal.subject"], "bob");
            assert_eq!(l["mcp.session.id"], session_id.as_str());
            assert_eq!(l["http.response.status_code"], 404);
        })
        .count();
    assert_eq!(mismatch_lines, 3);
    assert_no_token_anywhere(&finished);
}
