//! Trusted proxies through a real rmcp server and real rmcp clients, in both protocol eras:
//! `X-Forwarded-*` / `Forwarded` believed from a trusted peer (directly, and through a real
//! nginx), ignored from any other.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::ConnectInfo;
use common::*;
use http::Request;
use mcp_edge::guard::{GuardLayer, ProxyHeaders, RequestOrigin, TrustedProxies, public_url};
use mcp_edge::inspect::InspectLayer;
use tower::ServiceBuilder;

/// What the service behind the guard saw: each request's `RequestOrigin`, and the
/// `public_url()` of it as the auth layer would compute it.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(RequestOrigin, String)>>>);

impl Seen {
    fn all(&self) -> Vec<(RequestOrigin, String)> {
        self.0.lock().unwrap().clone()
    }
}

fn guarded(guard: GuardLayer) -> (TestServer, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let guard = guard.peer_addr_with(|ext: &http::Extensions| {
        ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0)
    });
    let server = serve_service(
        ServiceBuilder::new()
            .layer(guard)
            .layer(InspectLayer::new())
            .map_request(move |request: Request<_>| {
                let origin = request
                    .extensions()
                    .get::<RequestOrigin>()
                    .cloned()
                    .expect("the guard puts a RequestOrigin on every request it lets through");
                let resource = public_url(&request)
                    .expect("public URL")
                    .join(request.uri().path());
                record.0.lock().unwrap().push((origin, resource));
                request
            })
            .service(rmcp_service()),
    );
    (server, seen)
}

async fn list_and_echo(client: &Client) {
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 3);
    let echoed = call_tool(client, "echo", serde_json::json!({"text": "via proxy"}))
        .await
        .expect("echo");
    assert_eq!(text_of(&echoed), "via proxy");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const AS_OUR_PROXY: [(&str, &str); 3] = [
    ("x-forwarded-host", "mcp.example.com"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-for", "203.0.113.7"),
];

#[tokio::test]
async fn forwarded_headers_from_a_trusted_peer_are_honoured_in_both_eras() {
    // The test client connects from 127.0.0.1, which plays our TLS-terminating proxy.
    let (server, seen) = guarded(
        GuardLayer::new()
            .allow_hosts(["mcp.example.com"])
            .trusted_proxies(TrustedProxies::new(["127.0.0.1/32"])),
    );
    for version in BOTH_ERAS {
        // `Host: 127.0.0.1:PORT` is not on the allowlist: only the forwarded host lets it in.
        let client = try_connect_via(&server.url, version.clone(), &[], &AS_OUR_PROXY)
            .await
            .unwrap_or_else(|e| panic!("{version}: trusted proxy refused: {e}"));
        list_and_echo(&client).await;
        client.cancel().await.expect("close");
    }
    let seen = seen.all();
    assert!(seen.len() >= 6, "every request recorded: {}", seen.len());
    for (origin, resource) in seen {
        assert!(origin.is_forwarded());
        assert_eq!(resource, "https://mcp.example.com/mcp");
        assert_eq!(origin.public_url().scheme(), "https");
        assert_eq!(origin.client_ip(), Some(ip("203.0.113.7")));
        assert_eq!(origin.peer_addr().map(|p| p.ip()), Some(ip("127.0.0.1")));
    }
}

#[tokio::test]
async fn rfc7239_forwarded_from_a_trusted_peer_is_honoured_in_both_eras() {
    let (server, seen) = guarded(
        GuardLayer::new()
            .allow_hosts(["mcp.example.com"])
            .trusted_proxies(TrustedProxies::loopback().headers(ProxyHeaders::Forwarded)),
    );
    let forwarded = [(
        "forwarded",
        r#"for="[2001:db8::5]:443";host="mcp.example.com";proto=https"#,
    )];
    for version in BOTH_ERAS {
        let client = try_connect_via(&server.url, version.clone(), &[], &forwarded)
            .await
            .unwrap_or_else(|e| panic!("{version}: trusted proxy refused: {e}"));
        list_and_echo(&client).await;
        client.cancel().await.expect("close");
    }
    for (origin, resource) in seen.all() {
        assert_eq!(resource, "https://mcp.example.com/mcp");
        assert_eq!(origin.client_ip(), Some(ip("2001:db8::5")));
    }
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored_in_both_eras() {
    // Only 10.0.0.0/8 is trusted; the client at 127.0.0.1 forges the headers.
    let (server, seen) = guarded(
        GuardLayer::loopback()
            .allow_hosts(["mcp.example.com"])
            .trusted_proxies(TrustedProxies::new(["10.0.0.0/8"])),
    );
    let forged = [
        ("x-forwarded-host", "mcp.example.com"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "10.1.1.1"),
    ];
    for version in BOTH_ERAS {
        let client = try_connect_via(&server.url, version.clone(), &[], &forged)
            .await
            .unwrap_or_else(|e| panic!("{version}: loopback Host refused: {e}"));
        list_and_echo(&client).await;
        client.cancel().await.expect("close");
    }
    let expected = format!("http://127.0.0.1:{}/mcp", server.addr.port());
    for (origin, resource) in seen.all() {
        assert!(!origin.is_forwarded());
        assert_eq!(resource, expected, "the forged host and proto are ignored");
        assert_eq!(
            origin.client_ip(),
            Some(ip("127.0.0.1")),
            "the forged XFF is ignored"
        );
    }

    // A forged X-Forwarded-Host does not get an unlisted Host in.
    let (server, _) = guarded(
        GuardLayer::new()
            .allow_hosts(["mcp.example.com"])
            .trusted_proxies(TrustedProxies::new(["10.0.0.0/8"])),
    );
    for version in BOTH_ERAS {
        let Err(err) = try_connect_via(&server.url, version.clone(), &[], &forged).await else {
            panic!("{version}: forged X-Forwarded-Host let 127.0.0.1 in");
        };
        let err = err.to_string();
        assert!(err.contains("403"), "{version}: {err}");
    }
    let response = post_json(&server.url, &initialize_body("2025-11-25"), &forged).await;
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
}

/// nginx as the TLS-terminating proxy would be configured: it overwrites the forwarded host
/// and scheme and appends the client to `X-Forwarded-For`.
fn nginx_in_front_of(upstream: SocketAddr) -> Option<Nginx> {
    Nginx::start(&format!(
        "location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}"
    ))
}

#[tokio::test]
async fn behind_a_real_nginx_the_public_url_is_https_in_both_eras() {
    let (server, seen) = guarded(
        GuardLayer::new()
            .allow_hosts(["mcp.example.com"])
            .trusted_proxies(TrustedProxies::loopback()),
    );
    let Some(nginx) = nginx_in_front_of(server.addr) else {
        return;
    };
    let url = format!("http://mcp.example.com:{}/mcp", nginx.port());
    let resolve = [("mcp.example.com", nginx.addr())];
    for version in BOTH_ERAS {
        // The client's own X-Forwarded-Host is overwritten by nginx.
        let client = try_connect_via(
            &url,
            version.clone(),
            &resolve,
            &[("x-forwarded-host", "evil.example.com")],
        )
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{version} through nginx refused: {e}\n{}",
                nginx.error_log()
            )
        });
        list_and_echo(&client).await;
        client.cancel().await.expect("close");
    }
    let seen = seen.all();
    assert!(!seen.is_empty());
    for (origin, resource) in seen {
        assert!(origin.is_forwarded());
        assert_eq!(resource, "https://mcp.example.com/mcp");
        assert_eq!(origin.client_ip(), Some(ip("127.0.0.1")));
    }

    // A rebound name reaches nginx, which forwards it: the guard still refuses it.
    let evil = format!("http://evil.example.com:{}/mcp", nginx.port());
    let client = http_client_via(&[("evil.example.com", nginx.addr())], &[]);
    let response = client
        .post(&evil)
        .header("content-type", "application/json")
        .header("accept", ACCEPT_BOTH)
        .json(&initialize_body("2025-11-25"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Forbidden: Host header is not allowed"
    );
}
