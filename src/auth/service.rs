use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{Method, Request, Response};
use tower_service::Service;

use super::body::AuthBody;
use super::challenge::{Challenge, www_authenticate};
use super::future::ResponseFuture;
use super::layer::{Shared, join_scopes};
use super::policy::{Authorize, Call, Scopes};
use super::verifier::{TokenVerifier, VerifyError};
use crate::error::Rejection;
use crate::protocol::{McpRequest, MessageKind, RequestId};

/// The service built by [`AuthLayer`](super::AuthLayer).
pub struct Auth<S, V, P> {
    pub(super) inner: S,
    pub(super) verifier: Arc<V>,
    pub(super) shared: Arc<Shared<P>>,
}

impl<S: Clone, V, P> Clone for Auth<S, V, P> {
    fn clone(&self) -> Self {
        Auth {
            inner: self.inner.clone(),
            verifier: Arc::clone(&self.verifier),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: std::fmt::Debug, V, P> std::fmt::Debug for Auth<S, V, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, V, P, ReqBody, ResBody> Service<Request<ReqBody>> for Auth<S, V, P>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    V: TokenVerifier,
    P: Authorize,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, V::Future, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.method() == Method::OPTIONS {
            // CORS preflights never carry credentials (Fetch standard): let them through to
            // the CORS layer or service inside, unauthenticated and with no principal.
            return ResponseFuture::passthrough(self.inner.call(request));
        }
        let (parts, body) = request.into_parts();
        let token = match bearer_token(&parts) {
            Ok(token) => token,
            Err(refusal) => {
                return ResponseFuture::rejected(self.shared.refuse(&parts, refusal));
            }
        };
        let verify = self.verifier.verify(token);
        // The inner service is called after an await: take the one driven to readiness and
        // leave a clone in its place (as tower-http does).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::verifying(
            verify,
            Request::from_parts(parts, body),
            inner,
            Arc::clone(&self.shared),
        )
    }
}

/// Why a request gets a challenge before or after verification.
#[derive(Debug)]
pub(super) enum Refusal {
    Missing,
    InvalidRequest(&'static str),
    Invalid(VerifyError),
    Scope {
        needed: Scopes,
        id: Option<RequestId>,
    },
    Unauthorizable,
}

/// The bearer token of the `Authorization` header (R51). Tokens in the query string are
/// refused, never read.
fn bearer_token(parts: &Parts) -> Result<&str, Refusal> {
    if parts.uri.query().is_some_and(query_has_token) {
        return Err(Refusal::InvalidRequest(
            "access tokens are not accepted in the URI query",
        ));
    }
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Refusal::Missing);
    };
    if values.next().is_some() {
        return Err(Refusal::InvalidRequest(
            "more than one Authorization header",
        ));
    }
    let value = value.to_str().map_err(|_| Refusal::Missing)?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(Refusal::Missing);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Missing);
    }
    let token = token.trim_matches(' ');
    if !is_b64token(token) {
        return Err(Refusal::Invalid(VerifyError::invalid(
            "the token is malformed",
        )));
    }
    Ok(token)
}

/// RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// Branch-free per byte (folded with `&`), so it vectorizes: a JWT is several hundred bytes
/// and this runs on every request.
fn is_b64token(token: &str) -> bool {
    let bytes = token.as_bytes();
    let end = bytes.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    end > 0
        && bytes[..end].iter().fold(true, |ok, &b| {
            let lower = b | 0x20;
            let alpha = lower.wrapping_sub(b'a') < 26;
            let digit = b.wrapping_sub(b'0') < 10;
            // '+' 0x2B, '-' 0x2D, '.' 0x2E, '/' 0x2F, '_' 0x5F, '~' 0x7E
            let sign = (b == b'+') | (b.wrapping_sub(b'-') < 3) | (b == b'_') | (b == b'~');
            ok & (alpha | digit | sign)
        })
}

fn query_has_token(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("access_token"))
}

/// The calls a request carries, from the body (R42): one per request or notification message.
pub(super) fn calls(mcp: &McpRequest) -> impl Iterator<Item = (Call<'_>, Option<&RequestId>)> {
    mcp.messages().iter().filter_map(|m| {
        if !matches!(m.kind(), MessageKind::Request | MessageKind::Notification) {
            return None;
        }
        let call = Call::new(m.method()?, m.target().map(|t| t.name()));
        Some((call, m.id()))
    })
}

impl<P: Authorize> Shared<P> {
    /// Decides a verified request: `Ok` to go on, or the refusal.
    pub(super) fn authorize(
        &self,
        parts: &Parts,
        principal: &super::Principal,
    ) -> Result<(), Refusal> {
        let Some(mcp) = parts.extensions.get::<Arc<McpRequest>>() else {
            if parts.method == Method::POST {
                return Err(Refusal::Unauthorizable);
            }
            return Ok(());
        };
        for (call, id) in calls(mcp) {
            if let super::Decision::Deny(needed) = self.policy.authorize(principal, call) {
                return Err(Refusal::Scope {
                    needed,
                    id: id.cloned(),
                });
            }
        }
        Ok(())
    }

    /// The refusal as a response: status, exact challenge, JSON-RPC body with the id.
    pub(super) fn refuse(&self, parts: &Parts, refusal: Refusal) -> Rejection {
        let mcp = parts.extensions.get::<Arc<McpRequest>>();
        let id = mcp.and_then(|m| m.id()).cloned();
        let metadata = self.resource.metadata_url(parts);
        let hint = || -> Option<String> {
            let from_policy = mcp.and_then(|m| {
                let mut all: Vec<Box<str>> = Vec::new();
                for (call, _) in calls(m) {
                    for s in self
                        .policy
                        .required_scopes(call)
                        .iter()
                        .flat_map(|s| s.iter())
                    {
                        if !all.contains(s) {
                            all.push(s.clone());
                        }
                    }
                }
                (!all.is_empty()).then(|| join_scopes(&all.into()))
            });
            from_policy.or_else(|| self.challenge_scopes.as_deref().map(str::to_owned))
        };
        let (rejection, challenge) = match refusal {
            Refusal::Missing => {
                let scope = hint();
                (
                    Rejection::missing_token(),
                    www_authenticate(Challenge::Missing, metadata.as_deref(), scope.as_deref()),
                )
            }
            Refusal::InvalidRequest(description) => {
                let scope = hint();
                (
                    Rejection::invalid_token(description),
                    www_authenticate(
                        Challenge::InvalidRequest(description),
                        metadata.as_deref(),
                        scope.as_deref(),
                    ),
                )
            }
            Refusal::Invalid(err) => {
                let scope = hint();
                let rejection = match err.kind() {
                    super::VerifyErrorKind::Unavailable => {
                        Rejection::verifier_unavailable(err.description())
                    }
                    _ => Rejection::invalid_token(err.description()),
                };
                (
                    rejection,
                    www_authenticate(
                        Challenge::InvalidToken(err.description()),
                        metadata.as_deref(),
                        scope.as_deref(),
                    ),
                )
            }
            Refusal::Scope {
                needed,
                id: call_id,
            } => {
                let scope = join_scopes(&needed);
                let rejection = Rejection::insufficient_scope(&needed);
                let header = www_authenticate(
                    Challenge::InsufficientScope,
                    metadata.as_deref(),
                    Some(&scope),
                );
                let rejection = rejection.with_id(call_id.or(id.clone()));
                return rejection.with_header(WWW_AUTHENTICATE, header);
            }
            Refusal::Unauthorizable => (
                Rejection::unauthorizable(),
                www_authenticate(Challenge::InsufficientScope, metadata.as_deref(), None),
            ),
        };
        rejection
            .with_id(id)
            .with_header(WWW_AUTHENTICATE, challenge)
    }
}

/// A rejection as this layer's response.
pub(super) fn reject<B>(rejection: Rejection) -> Response<AuthBody<B>> {
    rejection.into_response().map(AuthBody::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, auth: &[&str]) -> Parts {
        let mut b = Request::post(uri);
        for a in auth {
            b = b.header("authorization", *a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_token_extraction() {
        assert_eq!(
            bearer_token(&parts("/mcp", &["Bearer abc.def-_~+/=="])).unwrap(),
            "abc.def-_~+/=="
        );
        assert_eq!(bearer_token(&parts("/mcp", &["bearer  x  "])).unwrap(), "x");
        assert!(matches!(
            bearer_token(&parts("/mcp", &[])),
            Err(Refusal::Missing)
        ));
        assert!(matches!(
            bearer_token(&parts("/mcp", &["Basic dXNlcjpwYXNz"])),
            Err(Refusal::Missing)
        ));
        assert!(matches!(
            bearer_token(&parts("/mcp", &["Bearer a", "Bearer b"])),
            Err(Refusal::InvalidRequest(_))
        ));
        assert!(matches!(
            bearer_token(&parts("/mcp", &["Bearer a\"b"])),
            Err(Refusal::Invalid(_))
        ));
        for bad in [
            "a b", "a=b", "a\u{e9}", "=", "a@b", "a[b", "a`b", "a{b", "a:b",
        ] {
            assert!(!is_b64token(bad), "{bad:?}");
        }
        for good in ["AZaz09-._~+/", "abc==", "x"] {
            assert!(is_b64token(good), "{good:?}");
        }
        assert!(matches!(
            bearer_token(&parts("/mcp?x=1&access_token=abc", &["Bearer a"])),
            Err(Refusal::InvalidRequest(_))
        ));
        assert!(bearer_token(&parts("/mcp?token_hint=1", &["Bearer a"])).is_ok());
    }
}
