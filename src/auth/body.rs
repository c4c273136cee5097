//! [`AuthBody`]: the response body of the auth layer, which filters list results.
//!
//! For `tools/list`, `prompts/list` and `resources/list` the layer removes the entries the
//! principal may not call (same decision as for the call itself). Limits:
//! - a JSON response is buffered whole, up to `max_list_bytes`;
//! - an SSE response is forwarded event by event: each complete event is examined (only events
//!   carrying a `result` are parsed) and passed on at once; one event may be at most
//!   `max_list_bytes`;
//! - past the limit, the rest of the response is replaced by a JSON-RPC error (`-32603`): an
//!   unfiltered list is never let through. Bodies that are not JSON pass unchanged;
//! - rewritten SSE events keep their `id:`, `event:` and `retry:` lines and order; their
//!   `data:` lines become one line; line ends become `\n`; JSON object keys come out in
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
use crate::error::{EdgeBody, error_body};
use crate::protocol::RequestId;
use crate::protocol::jsonrpc::code;

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

/// Which list a request asked for, and the call each entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    Tools,
    Prompts,
    Resources,
}

impl ListKind {
    pub(crate) fn for_method(method: &str) -> Option<ListKind> {
        match method {
            "tools/list" => Some(ListKind::Tools),
            "prompts/list" => Some(ListKind::Prompts),
            "resources/list" => Some(ListKind::Resources),
            _ => None,
        }
    }
    fn key(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
        }
    }
    fn call_method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/call",
            ListKind::Prompts => "prompts/get",
            ListKind::Resources => "resources/read",
        }
    }
    fn name_field(self) -> &'static str {
        match self {
            ListKind::Resources => "uri",
            _ => "name",
        }
    }
}

/// The state of one list response being filtered.
pub(crate) struct ListFilter {
    lists: Vec<(Option<RequestId>, ListKind)>,
    principal: Principal,
    policy: Arc<dyn Authorize>,
    limit: usize,
    pub(crate) sse: bool,
    buf: BytesMut,
    /// SSE scan state: where to look next in `buf`, and whether that is a line start.
    scan: usize,
    line_start: bool,
    out: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    done: bool,
}

impl ListFilter {
    pub(crate) fn new(
        lists: Vec<(Option<RequestId>, ListKind)>,
        principal: Principal,
        policy: Arc<dyn Authorize>,
        limit: usize,
    ) -> Self {
        ListFilter {
            lists,
            principal,
            policy,
            limit,
            sse: false,
            buf: BytesMut::new(),
            scan: 0,
            line_start: true,
            out: VecDeque::new(),
            trailers: None,
            done: false,
        }
    }

    fn push(&mut self, data: Bytes) {
        if self.sse {
            self.buf.extend_from_slice(&data);
            while let Some(end) = self.event_end() {
                let event = self.buf.split_to(end).freeze();
                self.scan = 0;
                self.line_start = true;
                let event = self.rewrite_event(event);
                self.out.push_back(event);
            }
            if self.buf.len() > self.limit {
                self.overflow();
            }
        } else {
            if self.buf.len() + data.len() > self.limit {
                self.overflow();
                return;
            }
            self.buf.extend_from_slice(&data);
        }
    }

    fn finish(&mut self) {
        self.done = true;
        let rest = std::mem::take(&mut self.buf).freeze();
        if rest.is_empty() {
            return;
        }
        let rest = if self.sse {
            self.rewrite_event(rest)
        } else {
            self.rewrite_json(rest)
        };
        self.out.push_back(rest);
    }

    /// Replaces the rest of the response with a JSON-RPC error and stops reading.
    fn overflow(&mut self) {
        self.done = true;
        self.buf = BytesMut::new();
        let id = self.lists.first().and_then(|(id, _)| id.as_ref());
        let json = error_body(
            id,
            code::INTERNAL_ERROR,
            "Internal error: the list result is too large to filter",
            None,
        );
        let bytes = if self.sse {
            let mut event = BytesMut::with_capacity(json.len() + 8);
            event.extend_from_slice(b"data: ");
            event.extend_from_slice(&json);
            event.extend_from_slice(b"\n\n");
            event.freeze()
        } else {
            json
        };
        self.out.push_back(bytes);
    }

    /// The end (exclusive) of the first complete event in `buf`: a blank line after it.
    fn event_end(&mut self) -> Option<usize> {
        let buf = &self.buf[..];
        let mut i = self.scan;
        while i < buf.len() {
            let term = match buf[i] {
                b'\n' => 1,
                b'\r' => match buf.get(i + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    None => break,
                },
                _ => {
                    self.line_start = false;
                    i += 1;
                    continue;
                }
            };
            if self.line_start {
                return Some(i + term);
            }
            self.line_start = true;
            i += term;
        }
        self.scan = i;
        None
    }

    fn rewrite_json(&self, bytes: Bytes) -> Bytes {
        let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
            return bytes;
        };
        if !self.filter_value(&mut value) {
            return bytes;
        }
        serde_json::to_vec(&value).map(Bytes::from).unwrap_or(bytes)
    }

    fn rewrite_event(&self, event: Bytes) -> Bytes {
        if !contains(&event, b"\"result\"") {
            return event;
        }
        let Ok(text) = std::str::from_utf8(&event) else {
            return event;
        };
        let lines: Vec<&str> = text
            .split('\n')
            .flat_map(|l| l.split('\r'))
            .filter(|l| !l.is_empty())
            .collect();
        let mut data = String::new();
        let mut has_data = false;
        for line in &lines {
            if let Some(value) = field(line, "data") {
                if has_data {
                    data.push('\n');
                }
                data.push_str(value);
                has_data = true;
            }
        }
        let Ok(mut value) = serde_json::from_str::<Value>(&data) else {
            return event;
        };
        if !self.filter_value(&mut value) {
            return event;
        }
        let Ok(json) = serde_json::to_string(&value) else {
            return event;
        };
        let mut out = String::with_capacity(json.len() + 64);
        let mut wrote_data = false;
        for line in lines {
            if field(line, "data").is_some() {
                if !wrote_data {
                    out.push_str("data: ");
                    out.push_str(&json);
                    out.push('\n');
                    wrote_data = true;
                }
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
        Bytes::from(out)
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
                    let Some(Value::Array(entries)) = result.get_mut(kind.key()) else {
                        continue;
                    };
                    let before = entries.len();
                    entries.retain(|entry| {
                        let Some(name) = entry.get(kind.name_field()).and_then(Value::as_str)
                        else {
                            return false;
                        };
                        self.policy
                            .authorize(&self.principal, Call::new(kind.call_method(), Some(name)))
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

/// The value of an SSE field line `name:value` (one leading space removed).
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?;
    let rest = rest.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl<B> Body for AuthBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
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
        let mut f = ListFilter::new(
            vec![(Some(RequestId::from(1)), ListKind::Tools)],
            Principal::new("u"),
            Arc::new(policy),
            limit,
        );
        f.sse = sse;
        Box::new(f)
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
    async fn non_json_passes_unchanged() {
        let out = run(vec!["not json"], filter(false, 1 << 20)).await;
        assert_eq!(out, "not json");
    }
}
