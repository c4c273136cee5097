//! Authentication and authorization at the door: bearer tokens to [`Principal`]s, scope
//! policy per method and tool, and the exact challenges clients act on (SPEC §G, R46–R66).
//!
//! An MCP server on the internet must check the bearer token of every request (R51), answer
//! 401 and 403 with challenges a client can act on (R52, R53, R58), publish RFC 9728 metadata
//! (R54, R55) and accept only tokens issued for it (R57). [`AuthLayer`] does that in front of
//! any MCP service: it takes the token from `Authorization: Bearer` (never from the query),
//! asks a [`TokenVerifier`] for the [`Principal`], decides the operation with an
//! [`Authorize`] policy such as [`ScopePolicy`] (from the body parsed by
//! [`InspectLayer`](crate::inspect::InspectLayer), R42), filters `tools/list`, `prompts/list`
//! and `resources/list` results with the same decision, and puts the `Principal` in the
//! request extensions (for your handlers and the session layer) and the response extensions
//! (for audit). The token itself is never logged, and the `Authorization` header is removed
//! before the inner service runs, so nothing inside can pass the client's token upstream
//! (R59, R60; [`forward_token`](AuthLayer::forward_token) to keep it).
//!
//! `OPTIONS` requests (CORS preflights, which never carry credentials) pass through
//! unauthenticated; every other method, `GET` and `DELETE` included, needs a token (R51).
//!
//! Stack it after [`InspectLayer`](crate::inspect::InspectLayer) (a POST without the
//! classified body is refused with 403, fail-closed) and before the session layer.
//!
//! | refusal | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no bearer token (or another scheme) | 401 | `Bearer resource_metadata="…", scope="…"` |
//! | bad, expired, foreign token; no keys | 401 | `Bearer error="invalid_token", error_description="…", resource_metadata="…", scope="…"` |
//! | token in the query, two `Authorization` headers | 401 | `Bearer error="invalid_request", …` |
//! | missing scopes | 403 | `Bearer error="insufficient_scope", scope="<all needed>", resource_metadata="…"` |
//!
//! `resource_metadata` appears once [`ProtectedResource`] names an authorization server
//! (configured with [`AuthLayer::protected_resource`]); without one there is no metadata to
//! point at and the challenges leave it out.
//!
//! Every refusal has a JSON-RPC error body with the request id (`-32600`), and never uses
//! 400, 404 or 405, so an `initialize` refusal is not mistaken for an old transport (R45).
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use mcp_edge::auth::{AuthLayer, CachedVerifier, Principal, ProtectedResource, ScopePolicy, StaticTokens};
//! use mcp_edge::inspect::InspectLayer;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let tokens = StaticTokens::new()
//!     .token("reader-key", Principal::new("reader").with_scopes(["mcp:tools"]));
//! let auth = AuthLayer::new(CachedVerifier::new(tokens))
//!     .policy(ScopePolicy::new().tool("deploy_*", ["mcp:deploy"]))
//!     .protected_resource(
//!         ProtectedResource::new(["https://auth.example.com"]).resource("https://mcp.example.com/mcp"),
//!     );
//! let service = ServiceBuilder::new()
//!     .layer(InspectLayer::new())
//!     .layer(auth)
//!     .service_fn(|_req: Request<_>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
//!     });
//!
//! let call = |token: &str, tool: &str| {
//!     Request::post("/mcp")
//!         .header("content-type", "application/json")
//!         .header("authorization", format!("Bearer {token}"))
//!         .body(Full::new(Bytes::from(format!(
//!             r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#
//!         ))))
//!         .unwrap()
//! };
//! let ok = service.clone().oneshot(call("reader-key", "echo")).await.unwrap();
//! assert_eq!(ok.status(), 200);
//! let denied = service.clone().oneshot(call("reader-key", "deploy_prod")).await.unwrap();
//! assert_eq!(denied.status(), 403);
//! assert_eq!(
//!     denied.headers()["www-authenticate"],
//!     r#"Bearer error="insufficient_scope", scope="mcp:deploy", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#
//! );
//! let anonymous = service.oneshot(call("wrong", "echo")).await.unwrap();
//! assert_eq!(anonymous.status(), 401);
//! # }
//! ```

mod body;
mod cache;
mod challenge;
mod claims;
#[cfg(feature = "jwks-fetch")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwks-fetch")))]
pub mod discovery;
mod future;
#[cfg(feature = "introspection")]
mod introspection;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub mod jwks;
#[cfg(feature = "jwt")]
mod jwt;
mod layer;
mod metadata;
mod policy;

mod service;
mod static_tokens;
mod verifier;

/// The HTTP client auth fetches with when given none: every request times out after 5 s.
#[cfg(any(feature = "jwks-fetch", feature = "introspection"))]
fn default_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

pub use crate::context::Principal;
pub use body::AuthBody;
pub use cache::{CachedFuture, CachedVerifier};
pub use claims::{MapScopes, ScopeClaims};
#[cfg(feature = "jwks-fetch")]
pub use discovery::{AuthorizationServerMetadata, Discovery, DiscoveryError};
pub use future::ResponseFuture;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub use introspection::{IntrospectionFuture, IntrospectionVerifier};
/// The JWT algorithms, re-exported from `jsonwebtoken`.
#[cfg(feature = "jwt")]
pub use jsonwebtoken::Algorithm;
#[cfg(feature = "jwks-fetch")]
pub use jwks::HttpJwks;
#[cfg(feature = "jwt")]
pub use jwks::{FetchKeys, FetchedKeys, RemoteKeys};
#[cfg(feature = "jwt")]
pub use jwt::{DEFAULT_ALGORITHMS, Issuer, JwtFuture, JwtVerifier, KeyError};
pub use layer::{AuthLayer, DEFAULT_MAX_LIST_BYTES};
pub use metadata::{
    ProtectedResource, ProtectedResourceMetadata, WELL_KNOWN_PATH, metadata_url_for,
};
pub use policy::{AllowAll, Authorize, Call, Decision, ScopePolicy, Scopes};
pub use service::Auth;
pub use static_tokens::StaticTokens;
pub use verifier::{TokenVerifier, VerifyError, VerifyErrorKind};
