use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::decide::{Facts, Verdict};
use super::future::ResponseFuture;
use super::layer::LimitLayer;

/// A call that waits for the shared store: its local places and the store's decision.
#[cfg(feature = "redis")]
type Pending = (super::decide::Admission, super::future::RemoteDecision);
#[cfg(not(feature = "redis"))]
type Pending = std::convert::Infallible;

/// The service of [`LimitLayer`]: decides each call against the rules before the inner
/// service sees it.
#[derive(Debug, Clone)]
pub struct Limit<S> {
    pub(super) inner: S,
    pub(super) config: LimitLayer,
}

impl<S> Limit<S> {
    /// Wraps `inner` with `layer`'s rules.
    pub fn new(inner: S, layer: LimitLayer) -> Self {
        Limit {
            inner,
            config: layer,
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Limit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: http_body::Body,
{
    type Response = Response<crate::error::EdgeBody<super::LimitBody<ResBody>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let limiter = &self.config.limiter;
        if limiter.rules.is_empty() {
            return ResponseFuture::calling(self.inner.call(request), Default::default());
        }
        let verdict: Result<Verdict, Pending> = {
            let facts = Facts::of(request.method(), request.headers(), request.extensions());
            match limiter.decide(&facts) {
                #[cfg(feature = "redis")]
                Verdict::Remote(admission, takes) => {
                    let id = facts.id();
                    match &self.config.remote {
                        Some(remote) => {
                            let decision = remote.decide(std::sync::Arc::clone(limiter), takes, id);
                            Err((admission, decision))
                        }
                        None => Ok(Verdict::Pass(admission)),
                    }
                }
                verdict => Ok(verdict),
            }
        };
        match verdict {
            Ok(Verdict::Pass(admission)) => {
                ResponseFuture::calling(self.inner.call(request), admission)
            }
            Ok(Verdict::Refuse(rejection)) => ResponseFuture::rejected(rejection),
            Ok(Verdict::Remote(admission, _)) => {
                // Without a shared store there is nothing to ask.
                ResponseFuture::calling(self.inner.call(request), admission)
            }
            #[cfg(feature = "redis")]
            Err((admission, decision)) => {
                // The call waits for the store: take the service that was driven to readiness
                // and leave a clone in its place (as tower-http does).
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::deciding(decision, inner, request, admission)
            }
            #[cfg(not(feature = "redis"))]
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use tower::{Service, ServiceBuilder, ServiceExt};

    use crate::context::{PeerAddr, Principal};
    use crate::error::{Reason, Rejection};
    use crate::inspect::InspectLayer;
    use crate::limit::{LimitLayer, Per, Rule};

    /// Inspect, a stand-in for auth (the `x-user` header names the principal), the limit
    /// layer, and a service that answers `{}`.
    fn stack(
        limit: LimitLayer,
    ) -> impl Service<
        Request<Full<Bytes>>,
        Response = Response<impl http_body::Body<Data = Bytes, Error = impl std::fmt::Debug>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone {
        ServiceBuilder::new()
            .layer(InspectLayer::new())
            .map_request(|mut request: Request<_>| {
                let user = request
                    .headers()
                    .get("x-user")
                    .map(|v| v.to_str().unwrap().to_owned());
                if let Some(user) = user {
                    request.extensions_mut().insert(Principal::new(user));
                }
                request
                    .extensions_mut()
                    .insert(PeerAddr(SocketAddr::from(([192, 0, 2, 1], 4000))));
                request
            })
            .layer(limit)
            .service_fn(|_request| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("{}"))))
            })
    }

    fn post(user: Option<&str>, body: String) -> Request<Full<Bytes>> {
        let mut request = Request::post("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-03-26");
        if let Some(user) = user {
            request = request.header("x-user", user);
        }
        request.body(Full::new(Bytes::from(body))).unwrap()
    }

    fn call(id: u32, tool: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{{}}}}}}"#
        )
    }

    /// Sends `body` as `user` (if any) through `service`.
    async fn send<S, B>(service: &S, user: Option<&str>, body: String) -> Response<B>
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
    {
        service.clone().oneshot(post(user, body)).await.unwrap()
    }

    /// Sends each `(user, body)` in turn and checks each answer's status.
    async fn expect<'a, S, B>(
        service: &S,
        steps: impl IntoIterator<Item = (Option<&'a str>, String, StatusCode)>,
    ) where
        S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible> + Clone,
    {
        for (step, (user, body, expected)) in steps.into_iter().enumerate() {
            assert_eq!(
                send(service, user, body).await.status(),
                expected,
                "step {step}"
            );
        }
    }

    const OK: StatusCode = StatusCode::OK;
    const REFUSED: StatusCode = StatusCode::TOO_MANY_REQUESTS;

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_429_with_retry_after_and_a_jsonrpc_body_naming_the_rule() {
        let rule: Rule = "tools/call:deploy_*=2/min per principal".parse().unwrap();
        let service = stack(LimitLayer::new().rule(rule));
        expect(
            &service,
            (0..2).map(|id| (Some("alice"), call(id, "deploy_prod"), OK)),
        )
        .await;
        let response = send(&service, Some("alice"), call(7, "deploy_prod")).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "30");
        assert_eq!(response.headers()["content-type"], "application/json");
        let rejection = response.extensions().get::<Rejection>().unwrap().clone();
        assert_eq!(rejection.reason(), Reason::RateLimited);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["error"]["code"], -32600);
        assert_eq!(
            json["error"]["data"],
            serde_json::json!({
                "retryAfter": 30,
                "retryAfterMs": 30000,
                "rule": "tools/call:deploy_*=2/min per principal",
            })
        );
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains("key principal=alice"), "{message}");
        // The retry after the advertised wait passes.
        tokio::time::advance(Duration::from_secs(30)).await;
        expect(&service, [(Some("alice"), call(8, "deploy_prod"), OK)]).await;
    }

    #[tokio::test(start_paused = true)]
    async fn each_call_spends_the_budgets_it_meets() {
        let batch = |ids: std::ops::Range<u32>| {
            let calls: Vec<String> = ids.map(|id| call(id, "echo")).collect();
            format!("[{}]", calls.join(","))
        };
        let list = r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#.to_owned();
        let (alice, bob, a) = (Some("alice"), Some("bob"), Some("a"));
        let cases = [
            (
                "tool and principal rules isolate each other",
                LimitLayer::new()
                    .rule("tools/call:deploy_*=1/min per principal".parse().unwrap())
                    .rule("tools/call:echo=3/min per principal".parse().unwrap()),
                vec![
                    (alice, call(1, "deploy_a"), OK),
                    (alice, call(2, "deploy_b"), REFUSED),
                    // Bob's deploys and alice's echo are untouched.
                    (bob, call(3, "deploy_a"), OK),
                    (alice, call(4, "echo"), OK),
                    (alice, call(5, "echo"), OK),
                    (alice, call(6, "echo"), OK),
                    // Other methods meet no rule.
                    (alice, list, OK),
                ],
            ),
            (
                "a batch counts each message and a refused batch takes nothing",
                LimitLayer::new().rule(Rule::rate(3, Duration::from_secs(60))),
                vec![
                    (a, batch(0..2), OK),
                    // Two more would be four: refused, and the one place left is still there.
                    (a, batch(2..4), REFUSED),
                    (a, call(5, "echo"), OK),
                    (a, call(6, "echo"), REFUSED),
                ],
            ),
            (
                "a call refused by a later rule gives back what earlier ones took",
                LimitLayer::new()
                    .rule(Rule::rate(2, Duration::from_secs(60)).method("tools/call"))
                    .rule(Rule::quota(1, Duration::from_secs(3600)).tool("deploy_*")),
                vec![
                    (a, call(1, "deploy_x"), OK),
                    // Refused by the quota: the rate keeps its second place for the echo.
                    (a, call(2, "deploy_x"), REFUSED),
                    (a, call(3, "echo"), OK),
                    (a, call(4, "echo"), REFUSED),
                ],
            ),
            (
                "tool costs weigh on the budget",
                LimitLayer::new().rule(Rule::rate(10, Duration::from_secs(60)).cost("deploy_*", 5)),
                vec![
                    (a, call(1, "deploy_x"), OK),
                    (a, call(2, "deploy_y"), OK),
                    (a, call(3, "echo"), REFUSED),
                ],
            ),
        ];
        for (case, layer, steps) in cases {
            println!("{case}");
            expect(&stack(layer), steps).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn anonymous_callers_are_limited_per_address() {
        let service = stack(LimitLayer::new().rule(Rule::rate(1, Duration::from_secs(60))));
        expect(&service, [(None, call(1, "echo"), OK)]).await;
        let response = send(&service, None, call(2, "echo")).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let message = response.extensions().get::<Rejection>().unwrap().message();
        assert!(message.contains("key ip=192.0.2.1"), "{message}");
        // A known principal has a budget of its own.
        expect(&service, [(Some("a"), call(3, "echo"), OK)]).await;
    }

    #[tokio::test]
    async fn a_concurrency_place_is_held_by_the_response_body() {
        let limit = LimitLayer::new().rule(Rule::concurrent(1));
        let (tx, rx) =
            futures::channel::mpsc::unbounded::<Result<http_body::Frame<Bytes>, Infallible>>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(Some(rx)));
        let service = ServiceBuilder::new()
            .layer(InspectLayer::new())
            .map_request(|mut request: Request<_>| {
                request.extensions_mut().insert(Principal::new("alice"));
                request
            })
            .layer(limit)
            .service_fn(move |_request| {
                let rx = rx.lock().unwrap().take();
                async move {
                    let body = match rx {
                        Some(rx) => {
                            http_body_util::Either::Left(http_body_util::StreamBody::new(rx))
                        }
                        None => http_body_util::Either::Right(Full::new(Bytes::from("{}"))),
                    };
                    let response = Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(body)
                        .unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
        let stream = send(&service, None, call(1, "echo")).await;
        assert_eq!(stream.status(), StatusCode::OK);
        // The head is out, the stream is open: the place is still held.
        let second = send(&service, None, call(2, "echo")).await;
        assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            second.extensions().get::<Rejection>().unwrap().reason(),
            Reason::ConcurrencyLimited
        );
        drop(tx);
        let mut body = stream.into_body();
        assert!(body.frame().await.is_none());
        let third = send(&service, None, call(3, "echo")).await;
        assert_eq!(third.status(), StatusCode::OK);
    }

    #[test]
    fn rule_names_and_keys_are_per_rule() {
        let layer = LimitLayer::new()
            .rule(Rule::rate(1, Duration::from_secs(1)).per(Per::IP))
            .rule(Rule::concurrent(2));
        assert_eq!(layer.rule_list().len(), 2);
        assert_eq!(layer.counts().refused, 0);
    }
}
