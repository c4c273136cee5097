//! [`AuthBody`]: the response body of the auth layer, which filters list results.
//!
//! For `tools/list`, `prompts/list` and `resources/list` the layer removes the entries the
//! principal may not call (same decision as for the call itself). Limits:
//! - a JSON response is buffered whole, up to `max_list_bytes`;
//! - an SSE response is read with the one SSE reader ([`SseParser`]) and forwarded block by
//!   block: a block is held (its own `Bytes`, not copied) until its blank line, then passed
//!   on as it came, unless its event carries a list `result`, which is filtered; one
//!   unfinished block may be at most `max_list_bytes`;
//! - past the limit, the rest of the response is replaced by a JSON-RPC error (`-32603`): an
//!   unfiltered list is never let through. Bodies that are not JSON pass unchanged;
//! - a rewritten SSE event is written out by [`SseEvent::to_bytes`]: its `id:`, `event:` and
//!   `retry:` lines, then one `data:` line; line ends become `\n`; comments and unknown fields
//!   inside that one event are dropped (clients ignore them); JSON object keys come out in
//!   sorted order (serde_json without `preserve_order`), which JSON does not care about;
//! - not filtered: `resources/templates/list` (templates are not the URIs rules name) and
//!   `tasks/list` (task ownership is the session's business, R63).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use serde_json::Value;

use super::Principal;
use super::policy::{Authorize, Call};
use crate::error::{EdgeBody, Polled, error_body};
use crate::protocol::jsonrpc::code;
use crate::protocol::sse::{SseEvent, SseParser};
use crate::protocol::{BodyKind, ListKind, RequestId};

pin_project! {
    /// The auth layer's response body: the inner body untouched, a rejection, or a list
    /// result being filtered (see the [module docs](self)).
    pub struct AuthBody<B> {
        #[pin]
        inner: EdgeBody<B>,
        filter: Option<Box<ListFilter>>,
    }
}

impl<B> std::fmt::Debug for AuthBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthBody")
            .field("filtering", &self.filter.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> AuthBody<B> {
    pub(crate) fn new(inner: EdgeBody<B>) -> Self {
        AuthBody {
            inner,
            filter: None,
        }
    }
    pub(crate) fn passthrough(body: B) -> Self {
        AuthBody::new(EdgeBody::new(body))
    }
    pub(crate) fn filtered(body: B, filter: Box<ListFilter>) -> Self {
        AuthBody {
            inner: EdgeBody::new(body),
            filter: Some(filter),
        }
    }
}

/// The list a request asks for, when the auth layer filters that list: tools, prompts and
/// resources (see the [module docs](self) for the others).
pub(crate) fn filtered_list(method: &str) -> Option<ListKind> {
    ListKind::for_method(method).filter(|kind| {
        matches!(
            kind,
            ListKind::Tools | ListKind::Prompts | ListKind::Resources
        )
    })
}

/// How the response body is read.
enum Mode {
    /// A JSON body, buffered whole.
    Json(BytesMut),
    /// An event stream, block by block.
    Sse(Box<SseBlocks>),
}

/// An event stream being filtered: the reader, and the unfinished block's bytes.
struct SseBlocks {
    parser: SseParser,
    /// The bytes of the unfinished block, as they came (zero-copy slices of the frames).
    held: Vec<Bytes>,
    held_len: usize,
    /// The last block was rewritten and its blank line's CR ended a frame: an LF at the
    /// start of the next frame belongs to it, and goes with it.
    skip_lf: bool,
}

/// What decides which entries stay: the lists asked for, who asks, and the policy.
struct Rules {
    lists: Vec<(Option<RequestId>, ListKind)>,
    principal: Principal,
    policy: Arc<dyn Authorize>,
}

/// The state of one list response being filtered.
pub(crate) struct ListFilter {
    rules: Rules,
    limit: usize,
    mode: Mode,
    out: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    done: bool,
}

impl ListFilter {
    /// A filter for a JSON response (see [`ListFilter::for_body`]).
    pub(crate) fn new(
        lists: Vec<(Option<RequestId>, ListKind)>,
        principal: Principal,
        policy: Arc<dyn Authorize>,
        limit: usize,
    ) -> Self {
        ListFilter {
            rules: Rules {
                lists,
                principal,
                policy,
            },
            limit,
            mode: Mode::Json(BytesMut::new()),
            out: VecDeque::new(),
            trailers: None,
            done: false,
        }
    }

    /// Sets how the response body is read, from its kind; `None` when there is nothing to
    /// filter in such a body.
    pub(crate) fn for_body(mut self: Box<Self>, kind: BodyKind) -> Option<Box<Self>> {
        self.mode = match kind {
            BodyKind::Json => Mode::Json(BytesMut::new()),
            BodyKind::Sse => Mode::Sse(Box::new(SseBlocks {
                // No cap of its own: what it holds is bounded by `limit` (see `push_sse`).
                parser: SseParser::with_max_event_bytes(usize::MAX),
                held: Vec::new(),
                held_len: 0,
                skip_lf: false,
            })),
            BodyKind::Other => return None,
        };
        Some(self)
    }

    fn push(&mut self, data: Bytes) {
        let over = match &mut self.mode {
            Mode::Sse(sse) => sse.push(data, &self.rules, &mut self.out, self.limit),
            Mode::Json(buf) => {
                let over = buf.len() + data.len() > self.limit;
                if !over {
                    buf.extend_from_slice(&data);
                }
                over
            }
        };
        if over {
            self.overflow();
        }
    }

    fn finish(&mut self) {
        self.done = true;
        match &mut self.mode {
            Mode::Sse(sse) => sse.finish(&self.rules, &mut self.out),
            Mode::Json(buf) => {
                let rest = std::mem::take(buf).freeze();
                if !rest.is_empty() {
                    self.out.push_back(self.rules.rewrite_json(rest));
                }
            }
        }
    }

    /// Replaces the rest of the response with a JSON-RPC error and stops reading.
    fn overflow(&mut self) {
        self.done = true;
        let id = self.rules.lists.first().and_then(|(id, _)| id.as_ref());
        let json = error_body(
            id,
            code::INTERNAL_ERROR,
            "Internal error: the list result is too large to filter",
            None,
        );
        let bytes = match &mut self.mode {
            Mode::Sse(sse) => {
                sse.held = Vec::new();
                sse.held_len = 0;
                let mut event = BytesMut::with_capacity(json.len() + 8);
                event.extend_from_slice(b"data: ");
                event.extend_from_slice(&json);
                event.extend_from_slice(b"\n\n");
                event.freeze()
            }
            Mode::Json(buf) => {
                *buf = BytesMut::new();
                json
            }
        };
        self.out.push_back(bytes);
    }
}

impl SseBlocks {
    /// Reads one frame: finished blocks go to `out` (their own bytes, or their event
    /// rewritten), the unfinished one is held. Returns true when it holds more than `limit`.
    fn push(
        &mut self,
        chunk: Bytes,
        rules: &Rules,
        out: &mut VecDeque<Bytes>,
        limit: usize,
    ) -> bool {
        // `chunk[..cut]` is dealt with; `chunk[cut..keep]` goes on as it came.
        let mut cut = 0;
        if std::mem::take(&mut self.skip_lf) && chunk.first() == Some(&b'\n') {
            cut = 1;
        }
        let mut keep = cut;
        for block in self.parser.feed_blocks(&chunk) {
            match block.event.and_then(|event| rules.rewrite_event(event)) {
                None => {
                    // The block goes on as it came: what was held of it first.
                    out.extend(self.held.drain(..));
                    self.held_len = 0;
                    keep = block.end;
                }
                Some(rewritten) => {
                    // The block's own bytes (held, and `chunk[keep..block.end]`) are dropped.
                    if keep > cut {
                        out.push_back(chunk.slice(cut..keep));
                    }
                    self.held.clear();
                    self.held_len = 0;
                    out.push_back(rewritten);
                    cut = block.end;
                    keep = block.end;
                    self.skip_lf = block.end == chunk.len() && chunk.last() == Some(&b'\r');
                }
            }
        }
        if keep > cut {
            out.push_back(chunk.slice(cut..keep));
        }
        if keep < chunk.len() {
            self.held_len += chunk.len() - keep;
            self.held.push(chunk.slice(keep..));
        }
        self.held_len > limit
    }

    /// The body ended: an unfinished last block is examined like the others.
    fn finish(&mut self, rules: &Rules, out: &mut VecDeque<Bytes>) {
        match self
            .parser
            .finish()
            .and_then(|event| rules.rewrite_event(event))
        {
            Some(rewritten) => {
                self.held.clear();
                out.push_back(rewritten);
            }
            None => out.extend(self.held.drain(..)),
        }
        self.held_len = 0;
    }
}

impl Rules {
    fn rewrite_json(&self, bytes: Bytes) -> Bytes {
        let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
            return bytes;
        };
        if !self.filter_value(&mut value) {
            return bytes;
        }
        serde_json::to_vec(&value).map(Bytes::from).unwrap_or(bytes)
    }

    /// The event with its list result filtered; `None` when it carries none, or nothing in
    /// it was removed.
    fn rewrite_event(&self, event: SseEvent) -> Option<Bytes> {
        let data = event.data.as_ref()?;
        memchr::memmem::find(data, b"\"result\"")?;
        let mut value = serde_json::from_slice::<Value>(data).ok()?;
        if !self.filter_value(&mut value) {
            return None;
        }
        let json = serde_json::to_vec(&value).ok()?;
        Some(
            SseEvent {
                data: Some(Bytes::from(json)),
                ..event
            }
            .to_bytes(),
        )
    }

    /// Filters every list result in a response (or a batch of them). Returns whether anything
    /// changed.
    fn filter_value(&self, value: &mut Value) -> bool {
        match value {
            Value::Array(items) => {
                let mut changed = false;
                for item in items {
                    changed |= self.filter_value(item);
                }
                changed
            }
            Value::Object(message) => {
                let Some(Value::Object(result)) = message.get_mut("result") else {
                    return false;
                };
                let mut changed = false;
                for (_, kind) in &self.lists {
                    let Some(Value::Array(entries)) = result.get_mut(kind.result_field()) else {
                        continue;
                    };
                    let before = entries.len();
                    entries.retain(|entry| {
                        let Some(name) = entry.get(kind.entry_key()).and_then(Value::as_str) else {
                            return false;
                        };
                        self.policy
                            .authorize(&self.principal, Call::new(kind.entry_method(), Some(name)))
                            .is_allow()
                    });
                    changed |= entries.len() != before;
                }
                changed
            }
            _ => false,
        }
    }
}

impl<B: Body<Data = Bytes>> Body for AuthBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled<Self> {
        let this = self.project();
        let Some(filter) = this.filter.as_mut() else {
            return this.inner.poll_frame(cx);
        };
        let mut inner = this.inner;
        loop {
            if let Some(out) = filter.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
            if filter.done {
                return Poll::Ready(filter.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match ready!(inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => filter.push(data),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            filter.trailers = Some(trailers);
                        }
                    }
                },
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => filter.finish(),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.filter {
            None => self.inner.is_end_stream(),
            Some(f) => f.done && f.out.is_empty() && f.trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.filter {
            None => self.inner.size_hint(),
            Some(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ScopePolicy;
    use http_body_util::{BodyExt, StreamBody};

    fn filter(sse: bool, limit: usize) -> Box<ListFilter> {
        let policy = ScopePolicy::new().tool("admin_*", ["admin"]);
        let f = ListFilter::new(
            vec![(Some(RequestId::from(1)), ListKind::Tools)],
            Principal::new("u"),
            Arc::new(policy),
            limit,
        );
        let kind = if sse { BodyKind::Sse } else { BodyKind::Json };
        Box::new(f).for_body(kind).unwrap()
    }

    async fn run(chunks: Vec<&'static str>, f: Box<ListFilter>) -> String {
        let stream = futures_util_stream(chunks);
        let body = AuthBody::filtered(stream, f);
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    type Chunks =
        futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::convert::Infallible>>>;

    fn futures_util_stream(chunks: Vec<&'static str>) -> StreamBody<Chunks> {
        let frames: Vec<_> = chunks
            .into_iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        StreamBody::new(futures::stream::iter(frames))
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"admin_reset","inputSchema":{"type":"object"}},{"inputSchema":{}}],"nextCursor":"c"}}"#;
    const FILTERED: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}],"nextCursor":"c"}}"#;

    #[tokio::test]
    async fn json_list_is_filtered_across_chunks() {
        let (a, b) = LIST.split_at(40);
        let out = run(vec![a, b], filter(false, 1 << 20)).await;
        let got: Value = serde_json::from_str(&out).unwrap();
        let want: Value = serde_json::from_str(FILTERED).unwrap();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn sse_events_are_forwarded_and_the_list_event_rewritten() {
        let event = format!("id: 7\r\nevent: message\r\ndata: {LIST}\r\n\r\n");
        let event: &'static str = Box::leak(event.into_boxed_str());
        let (a, b) = event.split_at(30);
        let out = run(
            vec![
                ": keep-alive\n\n",
                "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n",
                a,
                b,
            ],
            filter(true, 1 << 20),
        )
        .await;
        let (head, last) = out.rsplit_once("data: ").unwrap();
        assert_eq!(
            head,
            ": keep-alive\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nid: 7\nevent: message\n"
        );
        let last = last.strip_suffix("\n\n").unwrap();
        let got: Value = serde_json::from_str(last).unwrap();
        assert_eq!(got, serde_json::from_str::<Value>(FILTERED).unwrap());
    }

    #[tokio::test]
    async fn too_large_list_becomes_an_error_never_the_raw_list() {
        let out = run(vec![LIST], filter(false, 64)).await;
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["error"]["code"], -32603);
        assert_eq!(got["id"], 1);
        assert!(!out.contains("admin_reset"));
        let out = run(vec!["data: ", LIST], filter(true, 64)).await;
        assert!(out.starts_with("data: {"));
        assert!(!out.contains("admin_reset"));
    }

    #[tokio::test]
    async fn prompts_and_resources_lists_are_filtered_by_their_own_rules() {
        let policy = ScopePolicy::new()
            .prompt("secret_*", ["admin"])
            .resource("file:///etc/*", ["admin"]);
        let principal = Principal::new("u");
        let lists = vec![
            (Some(RequestId::from(1)), ListKind::Prompts),
            (Some(RequestId::from(2)), ListKind::Resources),
        ];
        let f = Box::new(ListFilter::new(lists, principal, Arc::new(policy), 1 << 20));
        // A 2025-03-26 batch answer carrying both lists.
        let body = r#"[{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"greet"},{"name":"secret_plan"}]}},
            {"jsonrpc":"2.0","id":2,"result":{"resources":[{"uri":"file:///etc/passwd","name":"p"},{"uri":"file:///tmp/x","name":"x"}]}}]"#;
        let out = run(vec![body], f).await;
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            got[0]["result"]["prompts"],
            serde_json::json!([{"name": "greet"}])
        );
        assert_eq!(
            got[1]["result"]["resources"],
            serde_json::json!([{"uri": "file:///tmp/x", "name": "x"}])
        );
    }

    #[tokio::test]
    async fn a_rewritten_event_takes_its_split_crlf_with_it() {
        let first = format!("data: a\n\ndata: {LIST}\r\n\r");
        let first: &'static str = Box::leak(first.into_boxed_str());
        let out = run(vec![first, "\n: after\n\n"], filter(true, 1 << 20)).await;
        let (head, rest) = out.split_once("data: {").unwrap();
        assert_eq!(head, "data: a\n\n");
        let (json, tail) = rest.split_once("\n\n").unwrap();
        assert_eq!(tail, ": after\n\n");
        let got: Value = serde_json::from_str(&format!("{{{json}")).unwrap();
        assert_eq!(got, serde_json::from_str::<Value>(FILTERED).unwrap());
    }

    #[test]
    fn sse_frames_without_a_list_result_are_forwarded_without_copying() {
        let mut f = filter(true, 1 << 20);
        let frame = Bytes::from_static(
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n: ping\n\n",
        );
        f.push(frame.clone());
        assert_eq!(f.out.len(), 1);
        assert_eq!(
            (f.out[0].as_ptr(), f.out[0].len()),
            (frame.as_ptr(), frame.len())
        );
        // An event split over frames is held, then goes on as its own frames.
        let (a, b) = (Bytes::from_static(b"data: 1"), Bytes::from_static(b"\n\n"));
        f.push(a.clone());
        assert_eq!(f.out.len(), 1);
        f.push(b.clone());
        assert_eq!(f.out.len(), 3);
        assert_eq!(f.out[1].as_ptr(), a.as_ptr());
        assert_eq!(f.out[2].as_ptr(), b.as_ptr());
    }

    #[tokio::test]
    async fn an_unfinished_last_list_event_is_filtered_too() {
        let event = format!("id: 1\ndata: {LIST}");
        let event: &'static str = Box::leak(event.into_boxed_str());
        let out = run(vec![event], filter(true, 1 << 20)).await;
        assert!(!out.contains("admin_reset"));
        let json = out.strip_prefix("id: 1\ndata: ").unwrap();
        let got: Value = serde_json::from_str(json.strip_suffix("\n\n").unwrap()).unwrap();
        assert_eq!(got, serde_json::from_str::<Value>(FILTERED).unwrap());
    }

    #[tokio::test]
    async fn non_json_passes_unchanged() {
        let out = run(vec!["not json"], filter(false, 1 << 20)).await;
        assert_eq!(out, "not json");
    }
}
