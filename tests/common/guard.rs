//! Clients that reach a test server under another name or with extra headers: what a browser
//! page after DNS rebinding, or a client behind a proxy, looks like to the guard.

use std::{net::SocketAddr, time::Duration};

use rmcp::{
    ClientLifecycleMode, ClientServiceExt, ServiceExt,
    model::ProtocolVersion,
    service::ClientInitializeError,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

use super::client::{Client, TestClient};

/// A reqwest client that resolves each `(name, addr)` in `resolve` to `addr` (so
/// `http://evil.example.com:PORT/` reaches the test server with `Host: evil.example.com:PORT`)
/// and sends `headers` (e.g. `Origin`, `X-Forwarded-Host`) on every request.
pub fn http_client_via(
    resolve: &[(&str, SocketAddr)],
    headers: &[(&str, &str)],
) -> reqwest::Client {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        let name: reqwest::header::HeaderName = name.parse().expect("header name");
        map.append(name, value.parse().expect("header value"));
    }
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .default_headers(map);
    for (name, addr) in resolve {
        builder = builder.resolve(name, *addr);
    }
    builder.build().expect("reqwest client")
}

/// Connects a real rmcp client speaking `version` to `url` through [`http_client_via`].
pub async fn try_connect_via(
    url: &str,
    version: ProtocolVersion,
    resolve: &[(&str, SocketAddr)],
    headers: &[(&str, &str)],
) -> Result<Client, ClientInitializeError> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    let transport =
        StreamableHttpClientTransport::with_client(http_client_via(resolve, headers), config);
    let handler = TestClient::new(version.clone());
    if version.has_initialize() {
        handler.serve(transport).await
    } else {
        handler
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![version],
                },
            )
            .await
    }
}

/// Both protocol eras, for tests that must hold in each: 2025-11-25 (sessions) and 2026-07-28.
pub const BOTH_ERAS: [ProtocolVersion; 2] =
    [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28];
