//! Replicas only their gateway can call (`examples/gateway.rs`): a per-run secret drawn at
//! start, required by a guard in front of each spawned replica, added by the gateway's upstream
//! to every request it forwards and dropped from whatever clients send.
//!
//! The edge layers (auth above all) run at the gateway, so a replica reachable directly is an
//! open door to its tools. A replica on 127.0.0.1 is still reachable by every process on the
//! host and by a page that rebinds its name to 127.0.0.1; the guard refuses both: a `Host`
//! that is not a loopback name, and any request without the secret.

use axum::Router;
use http::{HeaderName, HeaderValue, Request};
use mcp_edge::GuardLayer;
use mcp_edge::proxy::HttpUpstreamBuilder;
use mcp_edge::serve::Server;
use tokio_util::sync::CancellationToken;

/// The header that carries the secret from the gateway to its replicas.
pub const REPLICA_SECRET_HEADER: &str = "x-mcp-edge-replica-secret";

/// 32 random bytes, hex: drawn once per gateway run, never printed or logged.
pub fn replica_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The guard in front of a replica: loopback `Host` names only (what the gateway's upstream
/// sends), and the secret (403 with a JSON-RPC body otherwise). `Origin` was checked at the
/// gateway, which forwards it as the client sent it; the secret proves the request came that
/// way.
pub fn replica_guard(secret: &str) -> GuardLayer {
    GuardLayer::loopback()
        .allow_any_origin()
        .require_header(REPLICA_SECRET_HEADER, secret)
}

/// The gateway's upstream settings for its replicas: the secret on every forwarded request,
/// replacing any copy the client sent.
pub fn with_replica_secret(builder: HttpUpstreamBuilder, secret: &str) -> HttpUpstreamBuilder {
    let value = HeaderValue::from_str(secret).expect("a hex secret is a valid header value");
    builder.header(HeaderName::from_static(REPLICA_SECRET_HEADER), value)
}

/// Removes a client-sent copy of the secret header (for upstreams that do not get the
/// secret, so a client cannot probe one with it either).
pub fn drop_replica_secret<B>(mut request: Request<B>) -> Request<B> {
    request.headers_mut().remove(REPLICA_SECRET_HEADER);
    request
}

/// Serves `app` (an MCP server at `/mcp`) behind [`replica_guard`] on a free loopback port
/// until `shutdown`; returns its MCP URL.
pub async fn serve_replica(
    app: Router,
    secret: &str,
    shutdown: CancellationToken,
) -> std::io::Result<String> {
    let app = app.layer(replica_guard(secret));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(async move {
        let stop = async move { shutdown.cancelled().await };
        let _ = Server::new().serve_with_shutdown(listener, app, stop).await;
    });
    Ok(url)
}
