//! [`RoutedBody`]: an upstream's answer to a routed call, on its way to the client.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use serde_json::Value;

use super::message::restore_id;
use crate::protocol::sse::{SseItem, SseParser};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The body of a routed call's answer: the upstream's body, rewritten as it passes.
    ///
    /// An SSE answer is forwarded event by event as it arrives: each event's JSON-RPC message
    /// is read, the response to the aggregator's request gets the client's id back, and the
    /// event goes out as `data:` alone. The upstream's event ids and `retry:` fields are not
    /// forwarded (the aggregator does not resume upstream streams), nor are events without
    /// data (priming events, R19); comments are (keep-alives). A JSON answer is read whole
    /// (bounded) and rewritten once.
    pub struct RoutedBody<B> {
        #[pin]
        inner: B,
        mode: Mode,
        upstream_id: i64,
        client_id: Value,
        done: bool,
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
    /// An SSE answer.
    pub(crate) fn sse(inner: B, upstream_id: i64, client_id: Value) -> Self {
        RoutedBody {
            inner,
            mode: Mode::Sse(Box::default()),
            upstream_id,
            client_id,
            done: false,
        }
    }

    /// A JSON answer, read up to `limit` bytes.
    pub(crate) fn json(inner: B, upstream_id: i64, client_id: Value, limit: usize) -> Self {
        RoutedBody {
            inner,
            mode: Mode::Json {
                collected: BytesMut::new(),
                limit,
            },
            upstream_id,
            client_id,
            done: false,
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
        let mut this = self.project();
        while !*this.done {
            let Some(frame) = ready!(this.inner.as_mut().poll_frame(cx)) else {
                *this.done = true;
                let out = finish(this.mode, *this.upstream_id, this.client_id);
                return Poll::Ready(out.map(|b| Ok(Frame::data(b))));
            };
            let Ok(chunk) = frame.map_err(Into::into)?.into_data() else {
                continue; // trailers: not part of an MCP answer
            };
            match feed(this.mode, chunk, *this.upstream_id, this.client_id) {
                Ok(Some(out)) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                Ok(None) => {}
                Err(e) => {
                    *this.done = true;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// What one upstream chunk gives the client, if anything yet.
fn feed(
    mode: &mut Mode,
    chunk: Bytes,
    upstream_id: i64,
    client_id: &Value,
) -> Result<Option<Bytes>, AnswerTooLarge> {
    match mode {
        Mode::Sse(parser) => {
            let mut out = BytesMut::new();
            for item in parser.feed(&chunk) {
                match item {
                    SseItem::Event(event) => {
                        let Some(data) = event.data.filter(|d| !d.is_empty()) else {
                            continue;
                        };
                        let data = restore_id(&data, upstream_id, client_id).unwrap_or(data);
                        out.put_slice(b"data: ");
                        out.put_slice(&data);
                        out.put_slice(b"\n\n");
                    }
                    SseItem::Comment(comment) => {
                        out.put_u8(b':');
                        out.put_slice(&comment);
                        out.put_slice(b"\n\n");
                    }
                }
            }
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
fn finish(mode: &mut Mode, upstream_id: i64, client_id: &Value) -> Option<Bytes> {
    match mode {
        Mode::Sse(_) => None,
        Mode::Json { collected, .. } => {
            let data = std::mem::take(collected).freeze();
            Some(restore_id(&data, upstream_id, client_id).unwrap_or(data))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use serde_json::json;

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
        let body = RoutedBody::sse(inner, 42, json!("client-7"));
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
        let out = RoutedBody::json(inner, 5, json!(1), 1024)
            .collect()
            .await
            .unwrap();
        let out: Value = serde_json::from_slice(&out.to_bytes()).unwrap();
        assert_eq!(out["id"], 1);

        let inner = Full::new(Bytes::from(vec![b' '; 2048]));
        assert!(
            RoutedBody::json(inner, 5, json!(1), 1024)
                .collect()
                .await
                .is_err()
        );
    }
}
