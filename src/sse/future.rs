use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, HeaderMap, HeaderValue};
use http::{HeaderName, Response};
use http_body::Body;
use pin_project_lite::pin_project;

use super::SseBody;
use super::layer::Config;
use crate::protocol::{BodyKind, body_kind};

/// `X-Accel-Buffering` (nginx; also honoured by some other proxies).
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

pin_project! {
    /// The response future of [`Sse`](super::Sse): waits for the inner response, and wraps
    /// the body of an event stream.
    pub struct ResponseFuture<F> {
        #[pin]
        pub(super) future: F,
        pub(super) config: Option<Arc<Config>>,
        pub(super) may_retry: bool,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<SseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.future.poll(cx))?;
        let (mut parts, body) = response.into_parts();
        // Decided from the response, never the request (R7).
        let body = match this.config.take() {
            Some(config) if body_kind(&parts.headers) == BodyKind::Sse => {
                fix_headers(&mut parts.headers);
                SseBody::stream(body, config, *this.may_retry)
            }
            _ => SseBody::passthrough(body),
        };
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}

/// Makes the headers of an event stream say "do not buffer, cache or transform" (R16),
/// merging with what the server set rather than adding duplicates.
pub(super) fn fix_headers(headers: &mut HeaderMap) {
    headers.remove(CONTENT_LENGTH);
    headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));

    // The usual case (a server that sets none): the complete value, with nothing to merge
    // and no allocation.
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-transform"),
        );
        return;
    }
    // Directives borrowed from the headers; only the merged value is built.
    let mut directives: Vec<&str> = Vec::new();
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            if !directive.is_empty()
                && !directives.iter().any(|d| d.eq_ignore_ascii_case(directive))
            {
                directives.push(directive);
            }
        }
    }
    let has = |name: &str, directives: &[&str]| {
        directives.iter().any(|d| {
            d.split('=')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
        })
    };
    let mut changed = headers.get_all(CACHE_CONTROL).iter().count() != 1;
    for needed in ["no-cache", "no-transform"] {
        if !has(needed, &directives) {
            directives.push(needed);
            changed = true;
        }
    }
    if changed {
        let joined = directives.join(", ");
        let value = HeaderValue::from_maybe_shared(Bytes::from(joined))
            .unwrap_or_else(|_| HeaderValue::from_static("no-cache, no-transform"));
        headers.insert(CACHE_CONTROL, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_merged_not_duplicated() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("10"));
        headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
        headers.append(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.append(CACHE_CONTROL, HeaderValue::from_static("private, No-Cache"));
        fix_headers(&mut headers);
        assert!(headers.get(CONTENT_LENGTH).is_none());
        assert_eq!(headers.get_all(X_ACCEL_BUFFERING).iter().count(), 1);
        assert_eq!(headers[X_ACCEL_BUFFERING], "no");
        assert_eq!(headers.get_all(CACHE_CONTROL).iter().count(), 1);
        assert_eq!(headers[CACHE_CONTROL], "no-cache, private, no-transform");

        // rmcp's own headers stay as they are when already complete.
        let mut headers = HeaderMap::new();
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-transform"),
        );
        headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("yes"));
        fix_headers(&mut headers);
        assert_eq!(headers[CACHE_CONTROL], "no-cache, no-transform");
        assert_eq!(headers[X_ACCEL_BUFFERING], "no");

        let mut headers = HeaderMap::new();
        fix_headers(&mut headers);
        assert_eq!(headers[CACHE_CONTROL], "no-cache, no-transform");
    }
}
