//! [`InspectLayer`]: classify every MCP request once, and read a POST body once, bounded.
//!
//! Every layer after this one needs to know what a request is: its era, its protocol version,
//! its JSON-RPC method, id and target. `InspectLayer` works that out once per request and
//! shares it as `Arc<McpRequest>` in the request extensions (for the layers and handlers
//! inside) and in the response extensions (for the layers outside, such as audit). A layer
//! outside that must know the request even if no response head comes back (the client left
//! first) puts a [`McpRequestSlot`](crate::context::McpRequestSlot) in the request
//! extensions: inspect fills it as soon as the request is classified.
//!
//! For a POST it checks `Content-Type` and `Content-Encoding` (415 unless JSON, and identity),
//! reads the body up to a limit (413 past it, without reading the rest), parses the JSON-RPC
//! envelope (400 with `-32700` / `-32600`), checks `MCP-Protocol-Version` (400 with `-32022`
//! for unknown versions, never on `initialize`), and for 2026-07-28 requests checks
//! `Mcp-Method` / `Mcp-Name` against the body (400 with `-32020`). The inner service receives
//! the body byte for byte as it was sent.
//!
//! Whatever passes, the server behind reads as the edge did. The whole body is parsed as
//! serde_json's defaults parse it: a body it would refuse (nested past 128 levels, a number out
//! of range, a lone surrogate) is a 400 `-32700` here rather than the server's own answer. A
//! body another parser could read otherwise is a 400 `-32600`: a key repeated in any object,
//! or a case or NUL-suffixed variant of a key the edge decides on. An MCP header sent twice
//! with different values is a 400 `-32000`. An `initialize` loses its `MCP-Protocol-Version`
//! header on the way in: the body's version supersedes it, and a server that compared the two
//! would refuse the handshake (R45).
//!
//! GET and DELETE bodies pass through untouched; other methods pass through unclassified.
//!
//! A POST body also has a time budget: it must arrive whole within 10 s
//! ([`InspectLayer::body_timeout`]), and after the first 2 s at no less than 1 KiB/s on average
//! ([`InspectLayer::min_body_rate`]). A body that stalls or trickles gets `408 Request Timeout`
//! with a JSON-RPC error body and `Connection: close`, so a slow client cannot hold a
//! connection and a task for long. The timer is armed only when the body is not already
//! there, and needs a tokio runtime with the time driver (any hyper or axum server on tokio).
//! The request head and the idle time between requests are the server's to bound: see
//! `mcp_edge::serve` (cargo feature `serve`).
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use mcp_edge::inspect::InspectLayer;
//! use mcp_edge::protocol::McpRequest;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let service = ServiceBuilder::new()
//!     .layer(InspectLayer::new().max_body_bytes(1 << 20))
//!     .service_fn(|request: Request<_>| async move {
//!         let mcp = request.extensions().get::<Arc<McpRequest>>().unwrap();
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from(
//!             mcp.method().unwrap_or_default().to_owned(),
//!         ))))
//!     });
//! let request = Request::post("/mcp")
//!     .header("content-type", "application/json")
//!     .body(Full::new(Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)))
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert!(response.extensions().get::<Arc<McpRequest>>().is_some());
//! # }
//! ```

mod deadline;
mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::InspectLayer;
pub use service::Inspect;

use std::time::Duration;

/// The default body limit: 4 MiB, as rmcp's.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The default time a whole POST body may take to arrive: 10 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The default slowest average rate of a POST body, in bytes per second, once
/// [`DEFAULT_MIN_BODY_RATE_GRACE`] has passed: 1 KiB/s.
pub const DEFAULT_MIN_BODY_RATE: u64 = 1024;

/// The default time before the minimum body rate applies: 2 s.
pub const DEFAULT_MIN_BODY_RATE_GRACE: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full, StreamBody};
    use tower::{ServiceBuilder, ServiceExt};

    use super::InspectLayer;
    use crate::error::{Reason, Rejection};
    use crate::protocol::{Era, McpRequest};

    /// An inner service that echoes the body it received and counts calls.
    fn echo_service(
        limit: usize,
    ) -> impl tower::Service<
        Request<Full<Bytes>>,
        Response = Response<crate::EdgeBody<Full<Bytes>>>,
        Error = Infallible,
    > + Clone {
        ServiceBuilder::new()
            .layer(InspectLayer::new().max_body_bytes(limit))
            .service_fn(|request: Request<_>| async move {
                assert!(request.extensions().get::<Arc<McpRequest>>().is_some());
                let body = BodyExt::collect(request.into_body()).await?.to_bytes();
                Ok::<_, Infallible>(Response::new(Full::new(body)))
            })
    }

    fn post(body: &'static str) -> Request<Full<Bytes>> {
        Request::post("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    async fn json_body<B: http_body::Body<Data = Bytes>>(body: B) -> serde_json::Value
    where
        B::Error: std::fmt::Debug,
    {
        serde_json::from_slice(&body.collect().await.unwrap().to_bytes()).unwrap()
    }

    #[tokio::test]
    async fn post_is_classified_and_passed_on_byte_for_byte() {
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hé"}}}"#;
        let response = echo_service(1024).oneshot(post(text)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mcp = response.extensions().get::<Arc<McpRequest>>().unwrap();
        assert_eq!(mcp.method(), Some("tools/call"));
        assert_eq!(mcp.era(), Era::Legacy);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, text.as_bytes());
    }

    #[tokio::test]
    async fn chunked_body_is_joined_exactly() {
        let chunks: Vec<Result<_, Infallible>> = [
            &br#"{"jsonrpc":"2.0","#[..],
            br#""id":"x","method":"#,
            br#""ping"}"#,
        ]
        .into_iter()
        .map(|c| Ok(http_body::Frame::data(Bytes::from_static(c))))
        .collect();
        let request = Request::post("/mcp")
            .header("content-type", "application/json")
            .body(StreamBody::new(futures_util_stream(chunks)))
            .unwrap();
        let service = ServiceBuilder::new().layer(InspectLayer::new()).service_fn(
            |request: Request<_>| async move {
                let body = BodyExt::collect(request.into_body())
                    .await
                    .unwrap()
                    .to_bytes();
                Ok::<_, Infallible>(Response::new(Full::new(body)))
            },
        );
        let response = service.oneshot(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, &br#"{"jsonrpc":"2.0","id":"x","method":"ping"}"#[..]);
    }

    fn futures_util_stream<T>(items: Vec<T>) -> impl futures_core::Stream<Item = T> {
        struct Iter<T>(std::vec::IntoIter<T>);
        impl<T> futures_core::Stream for Iter<T> {
            type Item = T;
            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<T>> {
                std::task::Poll::Ready(self.0.next())
            }
        }
        impl<T> Unpin for Iter<T> {}
        Iter(items.into_iter())
    }

    #[tokio::test]
    async fn wrong_content_type_or_encoding_is_415() {
        for (header, value, reason) in [
            ("content-type", "text/plain", Reason::UnsupportedMediaType),
            (
                "content-encoding",
                "gzip",
                Reason::UnsupportedContentEncoding,
            ),
        ] {
            let mut request = post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
            request.headers_mut().insert(header, value.parse().unwrap());
            let response = echo_service(1024).oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert_eq!(
                response.extensions().get::<Rejection>().unwrap().reason(),
                reason
            );
            assert_eq!(
                json_body(response.into_body()).await["error"]["code"],
                -32600
            );
        }
    }

    #[tokio::test]
    async fn initialize_reaches_the_service_without_its_version_header() {
        let service = ServiceBuilder::new().layer(InspectLayer::new()).service_fn(
            |request: Request<_>| async move {
                let header = request.headers().get("mcp-protocol-version").cloned();
                let seen = format!("{header:?}");
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(seen))))
            },
        );
        for (body, version, seen) in [
            (
                r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#,
                "2099-01-01",
                "None",
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                "2025-11-25",
                "Some(\"2025-11-25\")",
            ),
        ] {
            let mut request = post(body);
            request
                .headers_mut()
                .insert("mcp-protocol-version", version.parse().unwrap());
            let response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, seen);
        }
    }

    #[tokio::test]
    async fn oversized_body_is_413_by_length_and_by_stream() {
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"0123456789"}}}"#;
        let response = echo_service(16).oneshot(post(text)).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Without a Content-Length the limit is enforced while reading.
        let chunks: Vec<Result<_, Infallible>> = (0..100)
            .map(|_| Ok(http_body::Frame::data(Bytes::from_static(&[b' '; 64]))))
            .collect();
        let request = Request::post("/mcp")
            .header("content-type", "application/json")
            .body(StreamBody::new(futures_util_stream(chunks)))
            .unwrap();
        let service = ServiceBuilder::new()
            .layer(InspectLayer::new().max_body_bytes(1000))
            .service_fn(|_: Request<_>| async move {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            });
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            json_body(response.into_body()).await["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1000")
        );
    }

    #[tokio::test]
    async fn bad_json_is_400_parse_error_and_bad_envelope_keeps_the_id() {
        let response = echo_service(1024).oneshot(post("{nope")).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = json_body(response.into_body()).await;
        assert_eq!(body["error"]["code"], -32700);
        assert!(body.get("id").is_none());

        let response = echo_service(1024)
            .oneshot(post(r#"{"jsonrpc":"1.0","id":"k","method":"ping"}"#))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = json_body(response.into_body()).await;
        assert_eq!(body["error"]["code"], -32600);
        assert_eq!(body["id"], "k");
    }

    #[tokio::test]
    async fn get_is_classified_and_its_body_untouched() {
        let service = ServiceBuilder::new().layer(InspectLayer::new()).service_fn(
            |request: Request<_>| async move {
                let mcp = request
                    .extensions()
                    .get::<Arc<McpRequest>>()
                    .cloned()
                    .unwrap();
                assert!(mcp.messages().is_empty());
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"stream"))))
            },
        );
        let request = Request::get("/mcp")
            .header("mcp-protocol-version", "2025-11-25")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = service.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.extensions().get::<Arc<McpRequest>>().is_some());
    }

    #[tokio::test]
    async fn other_methods_pass_through_unclassified() {
        let service = ServiceBuilder::new().layer(InspectLayer::new()).service_fn(
            |request: Request<_>| async move {
                assert!(request.extensions().get::<Arc<McpRequest>>().is_none());
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            },
        );
        let request = Request::options("/mcp")
            .header("mcp-protocol-version", "junk")
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(
            service.oneshot(request).await.unwrap().status(),
            StatusCode::OK
        );
    }
}
