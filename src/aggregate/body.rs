//! [`RoutedBody`]: an upstream's answer to a routed call, on its way to the client.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::message::restore_id;
use super::relay::{CallGuard, MergedBody, Relayed};
use crate::protocol::sse::SseParser;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The body of a routed call's answer (the upstream's body, rewritten as it passes), of
    /// a stream the aggregator merges from several upstreams (a legacy GET stream, a
    /// 2026-07-28 `subscriptions/listen` stream), or of an answer the aggregator wrote in
    /// parts (a merged list from cache: its shared bytes go out as they are kept, not copied).
    ///
    /// An SSE answer is forwarded event by event as it arrives: each event's JSON-RPC message
    /// is read, the response to the aggregator's request gets the client's id back, a request
    /// to the client (sampling, elicitation, roots) gets an id of the client's session, and
    /// the event goes out as `data:` alone. The upstream's event ids and `retry:` fields are
    /// not forwarded (they are the upstream's, not the client's), nor are events without data
    /// (priming events, R19); comments are (keep-alives). A JSON answer is read whole
    /// (bounded) and rewritten once.
    pub struct RoutedBody<B> {
        #[pin]
        source: Source<B>,
    }
}

pin_project! {
    #[project = SourceProj]
    enum Source<B> {
        Upstream {
            #[pin]
            inner: B,
            mode: Mode,
            relayed: Relayed,
            done: bool,
            // Keeps the call findable for `notifications/cancelled` until its answer passed.
            call: Option<CallGuard>,
        },
        Merged { merged: MergedBody },
        Parts { parts: std::array::IntoIter<Bytes, 3> },
    }
}

enum Mode {
    Sse(Box<SseParser>),
    Json { collected: BytesMut, limit: usize },
}

/// A routed answer larger than the aggregator's body limit.
#[derive(Debug)]
pub struct AnswerTooLarge(());

impl std::fmt::Display for AnswerTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the upstream's JSON answer is larger than the aggregator's body limit")
    }
}

impl std::error::Error for AnswerTooLarge {}

impl<B> RoutedBody<B> {
    /// An SSE answer, relayed as `relayed` says.
    pub(crate) fn sse(inner: B, relayed: Relayed, call: Option<CallGuard>) -> Self {
        Self::upstream(inner, Mode::Sse(Box::default()), relayed, call)
    }

    /// A JSON answer, read up to `limit` bytes.
    pub(crate) fn json(inner: B, relayed: Relayed, limit: usize) -> Self {
        let mode = Mode::Json {
            collected: BytesMut::new(),
            limit,
        };
        Self::upstream(inner, mode, relayed, None)
    }

    fn upstream(inner: B, mode: Mode, relayed: Relayed, call: Option<CallGuard>) -> Self {
        RoutedBody {
            source: Source::Upstream {
                inner,
                mode,
                relayed,
                done: false,
                call,
            },
        }
    }

    /// A stream merged from several upstreams (already rewritten).
    pub(crate) fn merged(merged: MergedBody) -> Self {
        RoutedBody {
            source: Source::Merged { merged },
        }
    }

    /// A whole answer in three parts, sent as three frames.
    pub(crate) fn parts(parts: [Bytes; 3]) -> Self {
        RoutedBody {
            source: Source::Parts {
                parts: parts.into_iter(),
            },
        }
    }
}

impl<B> Body for RoutedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let (mut inner, mode, relayed, done, call) = match self.project().source.project() {
            SourceProj::Merged { merged } => {
                return merged.poll_next(cx).map(|b| b.map(|b| Ok(Frame::data(b))));
            }
            SourceProj::Parts { parts } => {
                return Poll::Ready(
                    parts
                        .find(|part| !part.is_empty())
                        .map(|b| Ok(Frame::data(b))),
                );
            }
            SourceProj::Upstream {
                inner,
                mode,
                relayed,
                done,
                call,
            } => (inner, mode, relayed, done, call),
        };
        while !*done {
            let Some(frame) = ready!(inner.as_mut().poll_frame(cx)) else {
                *done = true;
                call.take();
                let out = finish(mode, relayed);
                return Poll::Ready(out.map(|b| Ok(Frame::data(b))));
            };
            let Ok(chunk) = frame.map_err(Into::into)?.into_data() else {
                continue; // trailers: not part of an MCP answer
            };
            match feed(mode, chunk, relayed) {
                Ok(Some(out)) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                Ok(None) => {}
                Err(e) => {
                    *done = true;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Upstream { done, .. } => *done,
            Source::Merged { .. } => false,
            Source::Parts { parts } => parts.as_slice().iter().all(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Parts { parts } => {
                SizeHint::with_exact(parts.as_slice().iter().map(|p| p.len() as u64).sum())
            }
            _ => SizeHint::default(),
        }
    }
}

/// What one upstream chunk gives the client, if anything yet.
fn feed(mode: &mut Mode, chunk: Bytes, relayed: &Relayed) -> Result<Option<Bytes>, AnswerTooLarge> {
    match mode {
        Mode::Sse(parser) => {
            let mut out = BytesMut::new();
            relayed.feed_sse(parser, &chunk, true, &mut out);
            Ok((!out.is_empty()).then(|| out.freeze()))
        }
        Mode::Json { collected, limit } => {
            if collected.len() + chunk.len() > *limit {
                return Err(AnswerTooLarge(()));
            }
            collected.put_slice(&chunk);
            Ok(None)
        }
    }
}

/// What is left to send once the upstream body ended.
fn finish(mode: &mut Mode, relayed: &Relayed) -> Option<Bytes> {
    match mode {
        Mode::Sse(_) => None,
        Mode::Json { collected, .. } => {
            let data = std::mem::take(collected).freeze();
            let restored = relayed
                .answer
                .as_ref()
                .and_then(|(own, client)| restore_id(&data, *own, client));
            Some(restored.unwrap_or(data))
        }
    }
}

/// The [`Relayed`] of a plain answer (no session to relay requests through), for tests.
#[cfg(test)]
fn answer_only(upstream_id: i64, client_id: serde_json::Value) -> Relayed {
    Relayed {
        upstream: 0,
        answer: Some((upstream_id, client_id)),
        session: None,
        events: super::events::Events::new(Default::default()),
        listen: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use serde_json::{Value, json};

    #[tokio::test]
    async fn sse_answer_gets_the_client_id_and_loses_upstream_event_ids() {
        let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = [
            &b"id: 0\nretry: 3000\ndata:\n\n"[..],
            b": keep-alive\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\nid: 1\nda",
            b"ta: {\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{\"ok\":true}}\n\n",
        ]
        .into_iter()
        .map(|c| Ok(Frame::data(Bytes::from_static(c))))
        .collect();
        let inner = StreamBody::new(futures_util::stream::iter(chunks));
        let body = RoutedBody::sse(inner, answer_only(42, json!("client-7")), None);
        let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
        assert!(!text.contains("id: ") && !text.contains("retry"), "{text}");
        assert!(text.starts_with(": keep-alive\n\ndata: {"), "{text}");
        let last = text.trim_end().rsplit("data: ").next().unwrap();
        let last: Value = serde_json::from_str(last).unwrap();
        assert_eq!(
            last,
            json!({"jsonrpc":"2.0","id":"client-7","result":{"ok":true}})
        );
    }

    #[tokio::test]
    async fn json_answer_is_rewritten_whole_and_bounded() {
        let inner = Full::new(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":5,"result":{}}"#,
        ));
        let out = RoutedBody::json(inner, answer_only(5, json!(1)), 1024)
            .collect()
            .await
            .unwrap();
        let out: Value = serde_json::from_slice(&out.to_bytes()).unwrap();
        assert_eq!(out["id"], 1);

        let inner = Full::new(Bytes::from(vec![b' '; 2048]));
        assert!(
            RoutedBody::json(inner, answer_only(5, json!(1)), 1024)
                .collect()
                .await
                .is_err()
        );
    }
}
