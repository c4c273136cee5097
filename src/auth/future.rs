use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::{AUTHORIZATION, CONTENT_LENGTH};
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::{AuthBody, ListFilter, filtered_list};
use super::layer::Shared;
use super::policy::Authorize;
use super::service::{Refusal, reject};
use super::{Principal, VerifyError};
use crate::error::Rejection;
use crate::protocol::{McpRequest, MessageKind, body_kind};

pin_project! {
    /// The response future of [`Auth`](super::Auth): verifies the token, decides the policy,
    /// then calls the inner service.
    pub struct ResponseFuture<S, B, VF, P>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, VF, S::Future, P>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, VF, F, P> {
        Verifying {
            #[pin]
            verify: VF,
            request: Option<Request<B>>,
            inner: Option<S>,
            shared: Arc<Shared<P>>,
        },
        Calling {
            #[pin]
            future: F,
            principal: Option<Principal>,
            filter: Option<Box<ListFilter>>,
        },
        Rejected {
            rejection: Option<Rejection>,
        },
    }
}

impl<S, B, VF, P> ResponseFuture<S, B, VF, P>
where
    S: Service<Request<B>>,
{
    pub(super) fn verifying(
        verify: VF,
        request: Request<B>,
        inner: S,
        shared: Arc<Shared<P>>,
    ) -> Self {
        ResponseFuture {
            state: State::Verifying {
                verify,
                request: Some(request),
                inner: Some(inner),
                shared,
            },
        }
    }

    pub(super) fn passthrough(future: S::Future) -> Self {
        ResponseFuture {
            state: State::Calling {
                future,
                principal: None,
                filter: None,
            },
        }
    }

    pub(super) fn rejected(rejection: Rejection) -> Self {
        ResponseFuture {
            state: State::Rejected {
                rejection: Some(rejection),
            },
        }
    }
}

impl<S, B, VF, P, ResBody> Future for ResponseFuture<S, B, VF, P>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    VF: Future<Output = Result<Principal, VerifyError>>,
    P: Authorize,
{
    type Output = Result<Response<AuthBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Verifying {
                    verify,
                    request,
                    inner,
                    shared,
                } => {
                    let verified = ready!(verify.poll(cx));
                    let (Some(request), Some(mut inner)) = (request.take(), inner.take()) else {
                        unreachable!("Verifying is left as soon as the verifier answers");
                    };
                    let (mut parts, body) = request.into_parts();
                    let principal = match verified {
                        Ok(principal) => principal,
                        Err(err) => {
                            let rejection = shared.refuse(&parts, Refusal::Invalid(err));
                            return Poll::Ready(Ok(reject(rejection)));
                        }
                    };
                    if let Err(refusal) = shared.authorize(&parts, &principal) {
                        // The token was good: the refusal names who was refused, for the
                        // layers outside (audit records the principal of a 403 too).
                        let mut response = reject(shared.refuse(&parts, refusal));
                        response.extensions_mut().insert(principal);
                        return Poll::Ready(Ok(response));
                    }
                    let filter = list_filter(&parts, shared, &principal);
                    if !shared.forward_token {
                        parts.headers.remove(AUTHORIZATION);
                    }
                    parts.extensions.insert(principal.clone());
                    let future = inner.call(Request::from_parts(parts, body));
                    this.state.set(State::Calling {
                        future,
                        principal: Some(principal),
                        filter,
                    });
                }
                StateProj::Calling {
                    future,
                    principal,
                    filter,
                } => {
                    let response = ready!(future.poll(cx))?;
                    let (mut parts, body) = response.into_parts();
                    if let Some(principal) = principal.take() {
                        parts.extensions.insert(principal);
                    }
                    let filter = filter
                        .take()
                        .filter(|_| parts.status == StatusCode::OK)
                        .and_then(|filter| filter.for_body(body_kind(&parts.headers)));
                    let body = match filter {
                        Some(filter) => {
                            parts.headers.remove(CONTENT_LENGTH);
                            AuthBody::filtered(body, filter)
                        }
                        None => AuthBody::passthrough(body),
                    };
                    return Poll::Ready(Ok(Response::from_parts(parts, body)));
                }
                StateProj::Rejected { rejection } => {
                    let rejection = rejection.take().expect("polled after completion");
                    return Poll::Ready(Ok(reject(rejection)));
                }
            }
        }
    }
}

/// A filter for the response when the request is a single `*/list` request and the policy
/// filters lists.
fn list_filter<P: Authorize>(
    parts: &http::request::Parts,
    shared: &Shared<P>,
    principal: &Principal,
) -> Option<Box<ListFilter>> {
    if !shared.filter_lists || !shared.policy.filters_lists() {
        return None;
    }
    let mcp = parts.extensions.get::<Arc<McpRequest>>()?;
    let lists: Vec<_> = mcp
        .messages()
        .iter()
        .filter(|m| m.kind() == MessageKind::Request)
        .filter_map(|m| Some((m.id().cloned(), filtered_list(m.method()?)?)))
        .collect();
    if lists.is_empty() {
        return None;
    }
    Some(Box::new(ListFilter::new(
        lists,
        principal.clone(),
        Arc::clone(&shared.policy) as Arc<dyn Authorize>,
        shared.max_list_bytes,
    )))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::Full;
    use tower::{ServiceBuilder, ServiceExt};

    use crate::auth::{AuthLayer, Principal, ScopePolicy, StaticTokens};
    use crate::error::{Reason, Rejection};
    use crate::inspect::InspectLayer;

    async fn send(token: Option<&str>) -> Response<crate::error::EdgeBody<impl http_body::Body>> {
        let tokens = StaticTokens::new().token(
            "reader-token",
            Principal::new("reader").with_scopes(["mcp:tools"]),
        );
        let policy = ScopePolicy::new().tool("deploy_*", ["mcp:deploy"]);
        let service = ServiceBuilder::new()
            .layer(InspectLayer::new())
            .layer(AuthLayer::new(tokens).policy(policy))
            .service_fn(|_request: Request<_>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"{}",
                ))))
            });
        let mut request = Request::post("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", "s1");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"deploy_prod","arguments":{}}}"#;
        let request = request
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        service.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn scope_refusal_carries_the_principal_for_outer_layers() {
        let response = send(Some("reader-token")).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let rejection = response.extensions().get::<Rejection>().unwrap();
        assert_eq!(rejection.reason(), Reason::InsufficientScope);
        let principal = response.extensions().get::<Principal>();
        assert_eq!(principal.map(Principal::subject), Some("reader"));
    }

    #[tokio::test]
    async fn token_refusals_carry_no_principal() {
        for token in [None, Some("wrong-token")] {
            let response = send(token).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert!(response.extensions().get::<Principal>().is_none());
        }
    }
}
