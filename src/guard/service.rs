use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::future::ResponseFuture;
use super::layer::GuardLayer;

/// The service built by [`GuardLayer`].
#[derive(Debug, Clone)]
pub struct Guard<S> {
    pub(super) inner: S,
    pub(super) layer: GuardLayer,
}

impl<S> Guard<S> {
    /// Wraps `inner` with the default ([`GuardLayer::loopback`]) configuration.
    pub fn new(inner: S) -> Self {
        GuardLayer::loopback().layer(inner)
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Guard<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<crate::error::EdgeBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.layer.check_small(&request) {
            Ok(origin) => {
                request.extensions_mut().insert(origin.clone());
                ResponseFuture::future(self.inner.call(request), origin)
            }
            Err(refusal) => ResponseFuture::rejected(refusal.into_rejection()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use tower::{ServiceBuilder, ServiceExt};

    use crate::error::{Reason, RejectedBy, Rejection};
    use crate::guard::{
        GuardLayer, PeerAddr, ProxyHeaders, PublicUrl, RequestOrigin, TrustedProxies,
    };

    #[derive(Clone)]
    struct InnerSaw(RequestOrigin);

    /// What came back: the status, the body as JSON (refusals) and the `RequestOrigin` the
    /// inner service saw (passes).
    struct Outcome {
        status: StatusCode,
        content_type: Option<String>,
        json: Option<serde_json::Value>,
        origin: Option<RequestOrigin>,
        rejection: Option<Rejection>,
        inner_calls: usize,
    }

    async fn send(layer: GuardLayer, request: Request<Full<Bytes>>) -> Outcome {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let service =
            ServiceBuilder::new()
                .layer(layer)
                .service_fn(move |request: Request<Full<Bytes>>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let origin = request.extensions().get::<RequestOrigin>().cloned();
                    async move {
                        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                        // What the inner service saw, to compare with what outer layers get.
                        if let Some(origin) = origin {
                            response.extensions_mut().insert(InnerSaw(origin));
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
        let response = service.oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let origin = response
            .extensions()
            .get::<InnerSaw>()
            .map(|saw| saw.0.clone());
        if let Some(inner) = &origin {
            let outer = response
                .extensions()
                .get::<RequestOrigin>()
                .expect("RequestOrigin in the response extensions for outer layers");
            assert_eq!(outer.public_url(), inner.public_url());
            assert_eq!(outer.client_ip(), inner.client_ip());
        }
        let rejection = response.extensions().get::<Rejection>().cloned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Outcome {
            status,
            content_type,
            json: serde_json::from_slice(&body).ok(),
            origin,
            rejection,
            inner_calls: calls.load(Ordering::SeqCst),
        }
    }

    fn post(host: Option<&str>, headers: &[(&'static str, &str)]) -> Request<Full<Bytes>> {
        let mut builder = Request::post("/mcp");
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Full::default()).unwrap()
    }

    /// The outcome of a request for `host` from a page of `origin`.
    async fn from_origin(layer: &GuardLayer, host: &str, origin: &str) -> Outcome {
        send(layer.clone(), post(Some(host), &[("origin", origin)])).await
    }

    /// Requests for `host` from pages of the `good` origins pass, from the `bad` ones are refused.
    async fn assert_origins(layer: &GuardLayer, host: &str, good: &[&str], bad: &[&str]) {
        for origin in good {
            assert_passed(&from_origin(layer, host, origin).await);
        }
        for origin in bad {
            let outcome = from_origin(layer, host, origin).await;
            assert_refused(&outcome, Reason::OriginNotAllowed);
        }
    }

    fn from_peer(mut request: Request<Full<Bytes>>, peer: &str) -> Request<Full<Bytes>> {
        let addr: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(PeerAddr(addr));
        request
    }

    fn assert_refused(outcome: &Outcome, reason: Reason) {
        assert_eq!(outcome.status, StatusCode::FORBIDDEN);
        assert_eq!(outcome.content_type.as_deref(), Some("application/json"));
        let json = outcome.json.as_ref().expect("JSON-RPC body");
        assert_eq!(json["jsonrpc"], "2.0");
        assert_eq!(json["error"]["code"], -32600);
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Forbidden")
        );
        assert!(
            json.get("id").is_none(),
            "no id is known before the body is read"
        );
        let rejection = outcome.rejection.as_ref().expect("Rejection in extensions");
        assert_eq!(rejection.rejected_by(), RejectedBy::Guard);
        assert_eq!(rejection.reason(), reason);
        assert_eq!(outcome.inner_calls, 0, "the inner service must not run");
    }

    fn assert_passed(outcome: &Outcome) -> RequestOrigin {
        assert_eq!(
            outcome.status,
            StatusCode::OK,
            "refused: {:?}",
            outcome.json
        );
        assert_eq!(outcome.inner_calls, 1);
        outcome.origin.clone().expect("RequestOrigin in extensions")
    }

    #[tokio::test]
    async fn evil_host_gets_403_with_jsonrpc_body() {
        for host in [
            "evil.example.com",
            "evil.example.com:8080",
            "localhost.evil.com",
        ] {
            let outcome = send(GuardLayer::loopback(), post(Some(host), &[])).await;
            assert_refused(&outcome, Reason::HostNotAllowed);
        }
    }

    #[tokio::test]
    async fn loopback_hosts_on_any_port_pass() {
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:3000",
            "[::1]:9",
            "LOCALHOST",
        ] {
            let origin = assert_passed(&send(GuardLayer::loopback(), post(Some(host), &[])).await);
            assert_eq!(origin.public_url().authority(), host);
            assert_eq!(origin.public_url().scheme(), "http");
            assert!(!origin.is_forwarded());
        }
    }

    #[tokio::test]
    async fn missing_duplicate_or_malformed_host_is_refused() {
        assert_refused(
            &send(GuardLayer::loopback(), post(None, &[])).await,
            Reason::HostNotAllowed,
        );
        let request = post(Some("localhost"), &[("host", "evil.example.com")]);
        assert_refused(
            &send(GuardLayer::loopback(), request).await,
            Reason::HostNotAllowed,
        );
        for bad in [
            "local host",
            "localhost:99999",
            "user@localhost",
            "localhost/x",
        ] {
            assert_refused(
                &send(
                    GuardLayer::loopback().allow_any_host(),
                    post(Some(bad), &[]),
                )
                .await,
                Reason::HostNotAllowed,
            );
        }
    }

    #[tokio::test]
    async fn http2_authority_counts_as_host() {
        let request = Request::post("http://evil.example.com/mcp")
            .body(Full::default())
            .unwrap();
        assert_refused(
            &send(GuardLayer::loopback(), request).await,
            Reason::HostNotAllowed,
        );
        let request = Request::post("https://localhost:8443/mcp")
            .body(Full::default())
            .unwrap();
        let origin = assert_passed(&send(GuardLayer::loopback(), request).await);
        assert_eq!(origin.public_url().to_string(), "https://localhost:8443");
        // Both present: both must be allowed.
        let request = Request::post("http://localhost/mcp")
            .header("host", "evil.example.com")
            .body(Full::default())
            .unwrap();
        assert_refused(
            &send(GuardLayer::loopback(), request).await,
            Reason::HostNotAllowed,
        );
    }

    #[tokio::test]
    async fn new_guard_allows_only_listed_hosts() {
        assert_refused(
            &send(GuardLayer::new(), post(Some("localhost"), &[])).await,
            Reason::HostNotAllowed,
        );
        let layer = GuardLayer::new().allow_hosts(["mcp.example.com", "*.internal:8080"]);
        assert_passed(&send(layer.clone(), post(Some("MCP.example.com:443"), &[])).await);
        assert_passed(&send(layer.clone(), post(Some("a.internal:8080"), &[])).await);
        assert_refused(
            &send(layer, post(Some("a.internal:8081"), &[])).await,
            Reason::HostNotAllowed,
        );
        assert_passed(
            &send(
                GuardLayer::new().allow_any_host(),
                post(Some("anything.example"), &[]),
            )
            .await,
        );
    }

    #[tokio::test]
    async fn evil_origin_gets_403() {
        let evil = [
            "http://evil.example.com",
            "http://evil.example.com:8080",
            "null",
            "garbage",
            "http://localhost:8080 http://evil.example.com",
            "http://localhost.evil.example.com",
        ];
        assert_origins(&GuardLayer::loopback(), "localhost:8080", &[], &evil).await;
    }

    #[tokio::test]
    async fn loopback_origins_pass_and_duplicates_do_not() {
        let layer = GuardLayer::loopback();
        let loopback = [
            "http://localhost:8080",
            "http://localhost:6274",
            "https://127.0.0.1",
            "http://[::1]:3000",
        ];
        assert_origins(&layer, "localhost:8080", &loopback, &[]).await;
        let twice = [
            ("origin", "http://localhost"),
            ("origin", "http://localhost"),
        ];
        let request = post(Some("localhost"), &twice);
        assert_refused(&send(layer, request).await, Reason::OriginNotAllowed);
    }

    #[tokio::test]
    async fn listed_and_same_origins_pass() {
        let layer = GuardLayer::new()
            .allow_hosts(["mcp.example.com"])
            .allow_origins(["https://app.example.com", "null"]);
        let listed_or_same = [
            "https://app.example.com",
            "null",
            "http://mcp.example.com",
            "http://mcp.example.com:80",
        ];
        let other = [
            "https://mcp.example.com",
            "https://app.example.com:8443",
            "http://app.example.com",
        ];
        assert_origins(&layer, "mcp.example.com", &listed_or_same, &other).await;
    }

    #[tokio::test]
    async fn missing_origin_passes_unless_required() {
        assert_passed(&send(GuardLayer::loopback(), post(Some("localhost"), &[])).await);
        let strict = GuardLayer::loopback().require_origin(true);
        assert_refused(
            &send(strict.clone(), post(Some("localhost"), &[])).await,
            Reason::OriginRequired,
        );
        assert_passed(&from_origin(&strict, "localhost", "http://localhost").await);
    }

    #[tokio::test]
    async fn any_origin_accepts_everything_present() {
        let layer = GuardLayer::loopback().allow_any_origin();
        assert_passed(&from_origin(&layer, "localhost", "https://evil.example.com").await);
    }

    fn behind_proxy() -> GuardLayer {
        GuardLayer::new()
            .allow_hosts(["mcp.example.com"])
            .trusted_proxies(TrustedProxies::new(["10.0.0.0/8", "::1"]))
    }

    fn proxied(headers: &[(&'static str, &str)]) -> Request<Full<Bytes>> {
        post(Some("10.0.0.9:8080"), headers)
    }

    #[tokio::test]
    async fn forwarded_headers_from_a_trusted_peer_are_honoured() {
        let request = from_peer(
            proxied(&[
                ("x-forwarded-host", "mcp.example.com"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-for", "203.0.113.7"),
                ("origin", "https://mcp.example.com"),
            ]),
            "10.0.0.2:5000",
        );
        let origin = assert_passed(&send(behind_proxy(), request).await);
        assert!(origin.is_forwarded());
        assert_eq!(origin.public_url().to_string(), "https://mcp.example.com");
        assert_eq!(
            origin.public_url().join("/mcp"),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(origin.client_ip(), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(origin.peer_addr(), Some("10.0.0.2:5000".parse().unwrap()));
    }

    #[tokio::test]
    async fn rfc7239_forwarded_from_a_trusted_ipv6_peer() {
        let layer = GuardLayer::new()
            .allow_hosts(["mcp.example.com"])
            .trusted_proxies(TrustedProxies::new(["::1"]).headers(ProxyHeaders::Forwarded));
        let request = from_peer(
            proxied(&[(
                "forwarded",
                r#"for="[2001:db8::9]:1234";host=mcp.example.com;proto=https"#,
            )]),
            "[::1]:5000",
        );
        let origin = assert_passed(&send(layer, request).await);
        assert_eq!(origin.public_url().to_string(), "https://mcp.example.com");
        assert_eq!(origin.client_ip(), Some("2001:db8::9".parse().unwrap()));
    }

    #[tokio::test]
    async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
        // The attacker claims an allowed host through a header: its own Host still counts.
        let request = from_peer(
            post(
                Some("evil.example.com"),
                &[
                    ("x-forwarded-host", "mcp.example.com"),
                    ("x-forwarded-for", "10.0.0.1"),
                ],
            ),
            "192.0.2.66:5000",
        );
        assert_refused(&send(behind_proxy(), request).await, Reason::HostNotAllowed);
        // Allowed Host, forged proto and client: ignored.
        let request = from_peer(
            post(
                Some("mcp.example.com"),
                &[
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-for", "10.0.0.1"),
                ],
            ),
            "192.0.2.66:5000",
        );
        let origin = assert_passed(&send(behind_proxy(), request).await);
        assert!(!origin.is_forwarded());
        assert_eq!(origin.public_url().to_string(), "http://mcp.example.com");
        assert_eq!(origin.client_ip(), Some("192.0.2.66".parse().unwrap()));
        // No peer address at all: nothing is trusted.
        let request = proxied(&[("x-forwarded-host", "mcp.example.com")]);
        assert_refused(&send(behind_proxy(), request).await, Reason::HostNotAllowed);
    }

    #[tokio::test]
    async fn trusted_proxy_forwarding_an_evil_or_invalid_host_is_refused() {
        let request = from_peer(
            proxied(&[("x-forwarded-host", "evil.example.com")]),
            "10.0.0.2:1",
        );
        assert_refused(&send(behind_proxy(), request).await, Reason::HostNotAllowed);
        let request = from_peer(
            proxied(&[("x-forwarded-host", "mcp.example.com/x")]),
            "10.0.0.2:1",
        );
        assert_refused(&send(behind_proxy(), request).await, Reason::HostNotAllowed);
    }

    #[tokio::test]
    async fn origin_is_compared_with_the_forwarded_public_url() {
        // Behind TLS termination, the page's origin is https: a plain http origin is another
        // origin.
        let request = from_peer(
            proxied(&[
                ("x-forwarded-host", "mcp.example.com"),
                ("x-forwarded-proto", "https"),
                ("origin", "http://mcp.example.com"),
            ]),
            "10.0.0.2:1",
        );
        assert_refused(
            &send(behind_proxy(), request).await,
            Reason::OriginNotAllowed,
        );
    }

    #[tokio::test]
    async fn configured_public_url_wins_and_its_host_is_allowed() {
        let url: PublicUrl = "https://mcp.example.com/edge".parse().unwrap();
        let layer = GuardLayer::loopback()
            .public_url(url)
            .trusted_proxies(TrustedProxies::loopback());
        let request = from_peer(
            post(
                Some("mcp.example.com"),
                &[
                    ("x-forwarded-proto", "http"),
                    ("origin", "https://mcp.example.com"),
                ],
            ),
            "127.0.0.1:1",
        );
        let origin = assert_passed(&send(layer.clone(), request).await);
        assert_eq!(
            origin.public_url().join("/mcp"),
            "https://mcp.example.com/edge/mcp"
        );
        let request = post(Some("localhost:8080"), &[]);
        let origin = assert_passed(&send(layer, request).await);
        assert_eq!(
            origin.public_url().to_string(),
            "https://mcp.example.com/edge"
        );
    }

    #[tokio::test]
    async fn custom_peer_source_is_used() {
        #[derive(Clone)]
        struct ConnInfo(SocketAddr);
        let layer = behind_proxy()
            .peer_addr_with(|ext: &http::Extensions| ext.get::<ConnInfo>().map(|info| info.0));
        let mut request = proxied(&[("x-forwarded-host", "mcp.example.com")]);
        request
            .extensions_mut()
            .insert(ConnInfo("10.0.0.2:1".parse().unwrap()));
        let origin = assert_passed(&send(layer, request).await);
        assert!(origin.is_forwarded());
    }

    #[tokio::test]
    async fn check_gives_the_same_answer_without_calling() {
        let layer = GuardLayer::loopback();
        let rejection = layer
            .check(&post(Some("evil.example.com"), &[]))
            .unwrap_err();
        assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
        assert_eq!(rejection.reason(), Reason::HostNotAllowed);
        let origin = layer.check(&post(Some("localhost:1"), &[])).unwrap();
        assert_eq!(origin.public_url().to_string(), "http://localhost:1");
    }

    #[tokio::test]
    async fn refuses_before_reading_a_body_that_never_ends() {
        use http_body_util::StreamBody;
        type Frame = Result<http_body::Frame<Bytes>, Infallible>;
        let body = StreamBody::new(futures::stream::pending::<Frame>());
        let request = Request::post("/mcp")
            .header("host", "evil.example.com")
            .header("content-length", "1000000000")
            .body(body)
            .unwrap();
        // An inner service that fails the test if it is ever called.
        let service = ServiceBuilder::new()
            .layer(GuardLayer::loopback())
            .service_fn(
                |_request: Request<StreamBody<futures::stream::Pending<Frame>>>| async {
                    Err::<Response<Full<Bytes>>, _>("the inner service must not run")
                },
            );
        let response =
            tokio::time::timeout(std::time::Duration::from_secs(5), service.oneshot(request))
                .await
                .expect("answered without waiting for the body")
                .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}
