//! Audit behind a trusted proxy, through a real rmcp server and real rmcp clients in both
//! protocol eras: `client.address` is the client the guard derived from `X-Forwarded-For`,
//! not the proxy; the proxy is `network.peer.*`. Guard and audit share one `PeerAddrs`.

#[path = "common/audit.rs"]
mod audit_fixtures;
mod common;

use std::net::IpAddr;

use audit_fixtures::{Recorder, connect_info};
use common::*;
use mcp_edge::audit::{AuditEvent, AuditLayer};
use mcp_edge::context::PeerAddrs;
use mcp_edge::guard::{GuardLayer, TrustedProxies};
use mcp_edge::inspect::InspectLayer;
use tower::ServiceBuilder;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What our TLS-terminating proxy (played by the test client at 127.0.0.1) adds.
const AS_OUR_PROXY: [(&str, &str); 3] = [
    ("x-forwarded-host", "mcp.example.com"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-for", "203.0.113.7"),
];

fn guard(trusted: &[&str]) -> GuardLayer {
    GuardLayer::loopback()
        .allow_hosts(["mcp.example.com"])
        .trusted_proxies(TrustedProxies::new(trusted))
}

/// audit ─▶ guard ─▶ inspect ─▶ rmcp, as `McpEdge` stacks them.
fn audit_outside(recorder: &Recorder, trusted: &[&str]) -> TestServer {
    let peers = PeerAddrs::with(connect_info);
    serve_service(
        ServiceBuilder::new()
            .layer(AuditLayer::new(recorder.sink()).peer_addrs(peers.clone()))
            .layer(guard(trusted).peer_addrs(peers))
            .layer(InspectLayer::new())
            .service(rmcp_service()),
    )
}

/// guard ─▶ audit ─▶ inspect ─▶ rmcp: audit reads the guard's verdict on the way in.
fn audit_inside(recorder: &Recorder, trusted: &[&str]) -> TestServer {
    let peers = PeerAddrs::with(connect_info);
    serve_service(
        ServiceBuilder::new()
            .layer(guard(trusted).peer_addrs(peers.clone()))
            .layer(AuditLayer::new(recorder.sink()).peer_addrs(peers))
            .layer(InspectLayer::new())
            .service(rmcp_service()),
    )
}

async fn list_tools_in_both_eras(server: &TestServer, recorder: &Recorder) -> Vec<AuditEvent> {
    for version in BOTH_ERAS {
        let client = try_connect_via(&server.url, version.clone(), &[], &AS_OUR_PROXY)
            .await
            .unwrap_or_else(|e| panic!("{version}: refused: {e}"));
        let tools = client.list_all_tools().await.expect("tools/list");
        assert_eq!(tools.len(), 3);
        client.cancel().await.expect("close");
    }
    recorder
        .wait_until(|events| {
            events
                .iter()
                .filter(|e| e.mcp_method() == Some("tools/list"))
                .count()
                >= 2
        })
        .await
}

fn json(event: &AuditEvent) -> serde_json::Value {
    serde_json::to_value(event).expect("an event serializes")
}

#[tokio::test]
async fn behind_a_trusted_proxy_audit_records_the_forwarded_client() {
    for stack in [audit_outside, audit_inside] {
        let recorder = Recorder::new();
        let server = stack(&recorder, &["127.0.0.1/32"]);
        let events = list_tools_in_both_eras(&server, &recorder).await;
        assert!(events.len() >= 4, "initialize and tools/list in each era");
        for event in &events {
            assert_eq!(event.client_addr(), Some(ip("203.0.113.7")), "{event:#?}");
            let peer = event.peer_addr().expect("the proxy's address is known");
            assert_eq!(peer.ip(), ip("127.0.0.1"));
            let line = json(event);
            assert_eq!(line["client.address"], "203.0.113.7");
            assert!(
                line.get("client.port").is_none(),
                "the client's port is unknown"
            );
            assert_eq!(line["network.peer.address"], "127.0.0.1");
            assert_eq!(line["network.peer.port"], peer.port());
        }
    }
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_do_not_change_the_client() {
    for stack in [audit_outside, audit_inside] {
        let recorder = Recorder::new();
        let server = stack(&recorder, &["10.0.0.0/8"]);
        let events = list_tools_in_both_eras(&server, &recorder).await;
        for event in &events {
            assert_eq!(event.client_addr(), Some(ip("127.0.0.1")), "{event:#?}");
            let peer = event.peer_addr().expect("peer address recorded");
            let line = json(event);
            assert_eq!(line["client.address"], "127.0.0.1");
            assert_eq!(line["client.port"], peer.port());
            assert!(line.get("network.peer.address").is_none());
        }
    }
}

#[tokio::test]
async fn without_a_guard_audit_records_the_peer() {
    let recorder = Recorder::new();
    let server = serve_service(
        ServiceBuilder::new()
            .layer(AuditLayer::new(recorder.sink()).peer_addr(connect_info))
            .layer(InspectLayer::new())
            .service(rmcp_service()),
    );
    let client = try_connect_via(
        &server.url,
        BOTH_ERAS[1].clone(),
        &[],
        &[("x-forwarded-for", "203.0.113.7")],
    )
    .await
    .expect("connect");
    client.list_all_tools().await.expect("tools/list");
    client.cancel().await.expect("close");
    let events = recorder
        .wait_until(|e| e.iter().any(|e| e.mcp_method() == Some("tools/list")))
        .await;
    for event in &events {
        assert_eq!(event.client_addr(), Some(ip("127.0.0.1")));
        assert_eq!(event.client_addr(), event.peer_addr().map(|p| p.ip()));
    }
}
