//! Session-area fixtures: a real rmcp server behind `InspectLayer` → a test principal layer →
//! `SessionLayer`, served on a free port.
//!
//! The principal layer stands in for the auth layer: `Authorization: Bearer <subject>`
//! becomes `Principal::new(<subject>).with_issuer("https://issuer.test")` in the request
//! extensions, exactly where the auth layer puts it.

use http::Request;
use mcp_edge::Principal;
use mcp_edge::inspect::InspectLayer;
use mcp_edge::session::SessionLayer;
use tower::ServiceBuilder;

use super::server::{TestServer, rmcp_router_with, serve_service};

/// The issuer of test principals.
pub const TEST_ISSUER: &str = "https://issuer.test";

/// Puts `Principal::new(subject)` in the request extensions for `Authorization: Bearer subject`.
pub fn test_principal<B>(mut request: Request<B>) -> Request<B> {
    let subject = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let Some(subject) = subject {
        request
            .extensions_mut()
            .insert(Principal::new(subject).with_issuer(TEST_ISSUER));
    }
    request
}

/// A real rmcp server (the demo tools, with `config`) behind inspect → test principal →
/// `layer`.
pub fn serve_with_session_layer(
    layer: SessionLayer,
    config: rmcp::transport::streamable_http_server::StreamableHttpServerConfig,
) -> TestServer {
    let service = ServiceBuilder::new()
        .layer(InspectLayer::new())
        .map_request(test_principal)
        .layer(layer)
        .service(rmcp_router_with(config));
    serve_service(service)
}
