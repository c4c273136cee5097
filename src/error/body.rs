//! [`EdgeBody`]: the body type every mcp-edge layer answers with.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// What [`Body::poll_frame`] returns for the body `B`: the return type every body wrapper of
/// the crate writes, `fn poll_frame(self: Pin<&mut Self>, cx) -> Polled<Self>`.
pub(crate) type Polled<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

pin_project! {
    /// A body that is either the inner service's own body, passed through untouched, or a
    /// small buffered body the edge wrote itself (a rejection, or a request body the inspect
    /// layer read).
    ///
    /// No boxing: the inner body is polled in place and its frames are forwarded as they come.
    #[derive(Debug)]
    pub struct EdgeBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

impl<B> EdgeBody<B> {
    /// Wraps the inner service's body.
    pub fn new(body: B) -> Self {
        EdgeBody {
            kind: Kind::Inner { body },
        }
    }

    /// A body of exactly these bytes.
    pub fn full(data: Bytes) -> Self {
        EdgeBody {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        EdgeBody {
            kind: Kind::Full { data: None },
        }
    }

    /// The wrapped inner body, if this is one.
    pub fn into_inner(self) -> Option<B> {
        match self.kind {
            Kind::Inner { body } => Some(body),
            Kind::Full { .. } => None,
        }
    }
}

impl<B> Default for EdgeBody<B> {
    fn default() -> Self {
        EdgeBody::empty()
    }
}

impl<B: Body<Data = Bytes>> Body for EdgeBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<Self> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    #[tokio::test]
    async fn full_and_inner_bodies_yield_their_bytes() {
        let full: EdgeBody<Full<Bytes>> = EdgeBody::full(Bytes::from_static(b"abc"));
        assert_eq!(full.size_hint().exact(), Some(3));
        assert_eq!(full.collect().await.unwrap().to_bytes(), "abc");
        let inner = EdgeBody::new(Full::new(Bytes::from_static(b"xyz")));
        assert_eq!(inner.collect().await.unwrap().to_bytes(), "xyz");
        let empty: EdgeBody<Full<Bytes>> = EdgeBody::empty();
        assert!(empty.is_end_stream());
    }
}
