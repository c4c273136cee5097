//! Relaying between a client and its upstreams: what an upstream sends on its streams is
//! rewritten on the way to the client (ids the client can answer, subscription ids the client
//! knows), and what the client sends back (answers, cancellations) finds its upstream again.
//!
//! Each legacy client session has one [`Relay`]: the server-to-client requests it has been
//! sent (under a fresh id per request, so two upstreams' ids never meet), the routed calls it
//! has in flight (so `notifications/cancelled` reaches the upstream with the upstream's id),
//! and its GET stream, which merges the upstream sessions' own GET streams. A 2026-07-28
//! `subscriptions/listen` stream merges the upstreams' listen streams the same way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::Body;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::events::Events;
use super::message::{Envelope, Object, is_response, to_bytes};
use super::session::Downstream;
use crate::protocol::sse::{SseItem, SseParser};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `_meta` key a listen stream's notifications carry its request id under (R15).
pub(crate) const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// How many merged events wait for a slow client before the upstream readers wait too.
const MERGED_BACKLOG: usize = 64;

/// One client session's relaying state.
#[derive(Debug, Default)]
pub(crate) struct Relay {
    next_id: AtomicI64,
    table: Mutex<Table>,
    /// The client's GET stream, while it is open.
    listener: Mutex<Option<Arc<Merge>>>,
}

#[derive(Debug, Default)]
struct Table {
    /// Requests an upstream sent the client, by the id the client got: the upstream and its
    /// own id.
    asked: HashMap<i64, (usize, Value)>,
    /// The client's routed calls in flight, by the client's id (as JSON text): the upstream
    /// and the id it got.
    calls: HashMap<String, (usize, i64)>,
}

impl Relay {
    /// A fresh id for a request upstream `upstream` sent with id `own`, remembered until the
    /// client answers (or the upstream cancels it).
    fn ask(&self, upstream: usize, own: Value) -> i64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.table().asked.insert(id, (upstream, own));
        id
    }

    /// The upstream and its own id for the client's answer to request `id`; forgotten now.
    pub(crate) fn answered(&self, id: &Value) -> Option<(usize, Value)> {
        self.table().asked.remove(&id.as_i64()?)
    }

    /// The id the client knows upstream `upstream`'s request `own` by; forgotten now (the
    /// upstream cancelled it).
    fn withdrawn(&self, upstream: usize, own: &Value) -> Option<i64> {
        let mut table = self.table();
        let id = table
            .asked
            .iter()
            .find(|(_, (u, o))| *u == upstream && o == own)
            .map(|(id, _)| *id)?;
        table.asked.remove(&id);
        Some(id)
    }

    /// Remembers that the client's call `client_id` went to `upstream` as request
    /// `upstream_id`, until the guard drops (its answer has passed, or the client left).
    pub(crate) fn track(
        session: &Arc<Downstream>,
        client_id: &Value,
        upstream: usize,
        upstream_id: i64,
    ) -> CallGuard {
        let key = client_id.to_string();
        session
            .relay
            .table()
            .calls
            .insert(key.clone(), (upstream, upstream_id));
        CallGuard {
            session: Arc::clone(session),
            key,
        }
    }

    /// Where the client's call `client_id` went: the upstream and the id it got.
    pub(crate) fn call(&self, client_id: &Value) -> Option<(usize, i64)> {
        self.table().calls.get(&client_id.to_string()).copied()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("relay table")
    }

    /// A new GET stream for the client (one at a time: an older one ends).
    pub(crate) fn listen(&self) -> (Arc<Merge>, MergedBody) {
        let (merge, body) = Merge::new();
        if let Some(old) = self
            .listener
            .lock()
            .expect("listener")
            .replace(Arc::clone(&merge))
        {
            old.end();
        }
        (merge, body)
    }

    /// The client's GET stream, if it is open.
    pub(crate) fn listener(&self) -> Option<Arc<Merge>> {
        let listener = self.listener.lock().expect("listener");
        listener.as_ref().filter(|m| !m.is_ended()).cloned()
    }

    /// The session ended: its GET stream ends.
    pub(crate) fn close(&self) {
        if let Some(merge) = self.listener.lock().expect("listener").take() {
            merge.end();
        }
    }
}

/// Keeps a routed call findable by its client id while its answer is on the way.
#[derive(Debug)]
pub(crate) struct CallGuard {
    session: Arc<Downstream>,
    key: String,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.session.relay.table().calls.remove(&self.key);
    }
}

/// What to do with one message an upstream sent.
#[derive(Debug, PartialEq)]
pub(crate) enum Rewritten {
    /// Pass it on as it is.
    Keep,
    /// Pass this on instead.
    Replace(Bytes),
    /// Not for the client.
    Drop,
}

/// The stream an upstream message arrived on, and so how it is rewritten for the client.
#[derive(Debug, Clone)]
pub(crate) struct Relayed {
    pub(crate) upstream: usize,
    /// The aggregator's request this stream answers: the id the upstream got, and the
    /// client's id to give back (a listen stream: the subscription id, both ways).
    pub(crate) answer: Option<(i64, Value)>,
    /// The client's legacy session: requests to the client are relayed through it.
    pub(crate) session: Option<Arc<Downstream>>,
    pub(crate) events: Events,
    /// A 2026-07-28 `subscriptions/listen` stream: the upstream's acknowledgement and final
    /// result stay here (the client has the aggregator's own).
    pub(crate) listen: bool,
}

impl Relayed {
    /// Rewrites one message (an SSE event's data) for the client.
    pub(crate) fn rewrite(&self, data: &[u8]) -> Rewritten {
        // The usual messages (the answer, progress, log messages, list changes) are read
        // without a tree, and only the answer's id bytes change.
        if let Some(envelope) = Envelope::read(data) {
            if envelope.is_response() {
                let own = envelope.id_i64();
                return match &self.answer {
                    Some((id, _)) if self.listen && own == Some(*id) => Rewritten::Drop,
                    Some((id, client)) if own == Some(*id) => {
                        match envelope.with_id(data, client) {
                            Some(data) => Rewritten::Replace(data),
                            None => self.rewrite_parsed(data),
                        }
                    }
                    _ => Rewritten::Keep,
                };
            }
            if !self.listen
                && !envelope.has_id()
                && let Some(method) = envelope.method()
                && method != "notifications/cancelled"
            {
                self.events.notification(self.upstream, &method);
                return Rewritten::Keep;
            }
            if !envelope.has_method() {
                return Rewritten::Keep;
            }
        }
        self.rewrite_parsed(data)
    }

    /// [`Relayed::rewrite`] on the parsed message: requests for the client, cancellations,
    /// listen streams, and what the envelope could not read.
    fn rewrite_parsed(&self, data: &[u8]) -> Rewritten {
        let Ok(mut message) = serde_json::from_slice::<Object>(data) else {
            return Rewritten::Keep;
        };
        if is_response(&message) {
            return match &self.answer {
                Some((own, _)) if self.listen && message.get("id") == Some(&Value::from(*own)) => {
                    Rewritten::Drop
                }
                Some((own, client)) if message.get("id").and_then(Value::as_i64) == Some(*own) => {
                    message.insert("id".into(), client.clone());
                    Rewritten::Replace(to_bytes(&message))
                }
                _ => Rewritten::Keep,
            };
        }
        let Some(method) = message.get("method").and_then(Value::as_str) else {
            return Rewritten::Keep;
        };
        let method = method.to_owned();
        if let Some(own) = message.remove("id") {
            // A request for the client (sampling, elicitation, roots, ping): under an id of
            // this session's, so ids from two upstreams never meet at the client.
            let Some(session) = &self.session else {
                return Rewritten::Keep;
            };
            let id = session.relay.ask(self.upstream, own);
            message.insert("id".into(), Value::from(id));
            return Rewritten::Replace(to_bytes(&message));
        }
        match method.as_str() {
            "notifications/cancelled" => self.cancelled(message),
            "notifications/subscriptions/acknowledged" if self.listen => Rewritten::Drop,
            _ => {
                self.events.notification(self.upstream, &method);
                if self.listen {
                    self.retag(message)
                } else {
                    Rewritten::Keep
                }
            }
        }
    }

    /// The upstream cancelled one of its requests to the client: the client knows it by
    /// another id.
    fn cancelled(&self, mut message: Object) -> Rewritten {
        let params = message.get_mut("params").and_then(Value::as_object_mut);
        let (Some(session), Some(params)) = (&self.session, params) else {
            return Rewritten::Keep;
        };
        let Some(own) = params.get("requestId") else {
            return Rewritten::Keep;
        };
        match session.relay.withdrawn(self.upstream, own) {
            Some(id) => {
                params.insert("requestId".into(), Value::from(id));
                Rewritten::Replace(to_bytes(&message))
            }
            // Not a request the client was sent (a call of the client's own ended upstream).
            None => Rewritten::Keep,
        }
    }

    /// A listen-stream notification gets the client's subscription id (R15).
    fn retag(&self, mut message: Object) -> Rewritten {
        let Some((_, client)) = &self.answer else {
            return Rewritten::Keep;
        };
        let meta = message
            .get_mut("params")
            .and_then(Value::as_object_mut)
            .and_then(|p| p.get_mut("_meta"))
            .and_then(Value::as_object_mut);
        match meta {
            Some(meta) if meta.contains_key(SUBSCRIPTION_ID) => {
                meta.insert(SUBSCRIPTION_ID.into(), client.clone());
                Rewritten::Replace(to_bytes(&message))
            }
            _ => Rewritten::Keep,
        }
    }

    /// Reads one upstream chunk of SSE and writes what the client gets of it to `out`: each
    /// event's message rewritten, as `data:` alone (the upstream's event ids and `retry:`
    /// are not the client's: the aggregator resumes the upstream streams it merges itself),
    /// events without data left out (priming, R19), comments kept when `comments`
    /// (keep-alives). Returns what the chunk said of the stream (its events, its `retry:`).
    pub(crate) fn feed_sse(
        &self,
        parser: &mut SseParser,
        chunk: &Bytes,
        comments: bool,
        out: &mut BytesMut,
    ) -> Fed {
        let mut fed = Fed::default();
        for item in parser.feed(chunk) {
            match item {
                SseItem::Event(event) => {
                    fed.events = true;
                    fed.retry = event.retry.or(fed.retry);
                    let Some(data) = event.data.filter(|d| !d.is_empty()) else {
                        continue;
                    };
                    match self.rewrite(&data) {
                        Rewritten::Keep => put_event(out, &data),
                        Rewritten::Replace(data) => put_event(out, &data),
                        Rewritten::Drop => {}
                    }
                }
                SseItem::Comment(comment) if comments => {
                    out.put_u8(b':');
                    out.put_slice(&comment);
                    out.put_slice(b"\n\n");
                }
                SseItem::Comment(_) => {}
            }
        }
        fed
    }

    /// Passes an upstream's SSE stream on to a merged stream until either ends, and says how
    /// it ended.
    pub(crate) async fn pump<B>(&self, body: B, merged: &mpsc::Sender<Bytes>) -> Ended
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let mut body = std::pin::pin!(body);
        let mut parser = SseParser::default();
        let mut ended = Ended::default();
        loop {
            // An error ends the stream like its end does (and is not kept across an await).
            let Some(frame) = body.frame().await.and_then(Result::ok) else {
                ended.last_event_id = parser.last_event_id().clone();
                return ended;
            };
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            let mut out = BytesMut::new();
            let fed = self.feed_sse(&mut parser, &chunk, false, &mut out);
            ended.events |= fed.events;
            ended.retry = fed.retry.or(ended.retry);
            if !out.is_empty() && merged.send(out.freeze()).await.is_err() {
                ended.client_gone = true; // the client's stream is gone
                return ended;
            }
        }
    }
}

/// What one chunk of an upstream stream said about the stream.
#[derive(Debug, Default)]
pub(crate) struct Fed {
    /// It completed at least one event (a priming event included).
    pub(crate) events: bool,
    /// The last `retry:` it carried, in milliseconds.
    pub(crate) retry: Option<u64>,
}

/// How an upstream stream merged into a client's ended.
#[derive(Debug, Default)]
pub(crate) struct Ended {
    /// The client's stream is gone (nothing to reopen for).
    pub(crate) client_gone: bool,
    /// At least one event came.
    pub(crate) events: bool,
    /// The upstream's last event id (empty: none), for `Last-Event-ID`.
    pub(crate) last_event_id: Bytes,
    /// The upstream's last `retry:` (ms): how long to wait before reopening (R20).
    pub(crate) retry: Option<u64>,
}

/// One SSE event carrying `data`.
pub(crate) fn put_event(out: &mut BytesMut, data: &[u8]) {
    out.put_slice(b"data: ");
    out.put_slice(data);
    out.put_slice(b"\n\n");
}

/// Several upstream streams merged into one client stream: the tasks that read them, and the
/// way in for the ones opened later.
#[derive(Debug)]
pub(crate) struct Merge {
    sender: Mutex<Option<mpsc::Sender<Bytes>>>,
    /// Each reader, with the upstream it reads.
    tasks: Mutex<Vec<(usize, AbortHandle)>>,
}

impl Merge {
    /// A merge with no upstream streams yet, and the client's end of it.
    pub(crate) fn new() -> (Arc<Merge>, MergedBody) {
        let (sender, receiver) = mpsc::channel(MERGED_BACKLOG);
        let merge = Arc::new(Merge {
            sender: Mutex::new(Some(sender)),
            tasks: Mutex::new(Vec::new()),
        });
        let body = MergedBody {
            receiver,
            merge: Arc::clone(&merge),
        };
        (merge, body)
    }

    /// Where a new upstream stream sends; `None` once the merge ended.
    pub(crate) fn sender(&self) -> Option<mpsc::Sender<Bytes>> {
        self.sender.lock().expect("merge sender").clone()
    }

    /// Starts the reader of upstream `upstream`'s stream (`spawn` gets the sender and
    /// returns its task), unless the merge ended or already has one for that upstream.
    pub(crate) fn start(
        &self,
        upstream: usize,
        spawn: impl FnOnce(mpsc::Sender<Bytes>) -> AbortHandle,
    ) {
        let mut tasks = self.tasks.lock().expect("merge tasks");
        if tasks.iter().any(|(u, _)| *u == upstream) {
            return;
        }
        if let Some(sender) = self.sender() {
            tasks.push((upstream, spawn(sender)));
        }
    }

    fn is_ended(&self) -> bool {
        self.sender.lock().expect("merge sender").is_none()
    }

    /// The reader of upstream `upstream`'s stream stopped on its own: another may start.
    pub(crate) fn finished(&self, upstream: usize) {
        self.tasks
            .lock()
            .expect("merge tasks")
            .retain(|(u, _)| *u != upstream);
    }

    /// Stops every reader; the client's stream ends once it has what was already sent.
    pub(crate) fn end(&self) {
        self.sender.lock().expect("merge sender").take();
        for (_, task) in self.tasks.lock().expect("merge tasks").drain(..) {
            task.abort();
        }
    }
}

/// The client's end of a [`Merge`]; dropping it (the client left) stops the readers.
#[derive(Debug)]
pub(crate) struct MergedBody {
    receiver: mpsc::Receiver<Bytes>,
    merge: Arc<Merge>,
}

impl MergedBody {
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.receiver.poll_recv(cx)
    }
}

impl Drop for MergedBody {
    fn drop(&mut self) {
        self.merge.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::cache::ListCache;
    use crate::protocol::ListKind;
    use serde_json::json;

    fn relayed(session: Option<Arc<Downstream>>, listen: bool) -> Relayed {
        Relayed {
            upstream: 1,
            answer: Some((42, json!("client-7"))),
            session,
            events: Events::new((0..2).map(|_| Arc::new(ListCache::new(None))).collect()),
            listen,
        }
    }

    fn rewritten(relayed: &Relayed, message: Value) -> Value {
        match relayed.rewrite(message.to_string().as_bytes()) {
            Rewritten::Replace(bytes) => serde_json::from_slice(&bytes).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_to_the_client_get_fresh_ids_and_their_cancellation_follows() {
        let session = Downstream::detached();
        let relayed = relayed(Some(Arc::clone(&session)), false);
        let ask = |id: i64| json!({"jsonrpc": "2.0", "id": id, "method": "sampling/createMessage", "params": {}});
        let first = rewritten(&relayed, ask(0));
        let second = rewritten(&relayed, ask(1));
        assert_ne!(first["id"], second["id"]);
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 0}});
        let cancel = rewritten(&relayed, cancel);
        assert_eq!(cancel["params"]["requestId"], first["id"]);
        // The second request is still waiting for its answer; the first was withdrawn.
        assert_eq!(session.relay.answered(&first["id"]), None);
        assert_eq!(session.relay.answered(&second["id"]), Some((1, json!(1))));
    }

    #[test]
    fn the_answer_gets_the_client_id_and_notifications_pass() {
        let relayed = relayed(None, false);
        let answer = rewritten(&relayed, json!({"jsonrpc": "2.0", "id": 42, "result": {}}));
        assert_eq!(answer["id"], "client-7");
        let other = json!({"jsonrpc": "2.0", "id": 8, "result": {}}).to_string();
        assert_eq!(relayed.rewrite(other.as_bytes()), Rewritten::Keep);
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        assert_eq!(
            relayed.rewrite(changed.to_string().as_bytes()),
            Rewritten::Keep
        );
        // Upstream 1's cached tools list is dropped.
        assert_eq!(relayed.events.generation(1, ListKind::Tools), 1);
        assert_eq!(relayed.events.generation(0, ListKind::Tools), 0);
    }

    #[test]
    fn a_listen_stream_keeps_its_acknowledgement_and_retags_notifications() {
        let relayed = relayed(None, true);
        let meta = json!({ SUBSCRIPTION_ID: 42 });
        let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": {"_meta": meta}});
        assert_eq!(relayed.rewrite(ack.to_string().as_bytes()), Rewritten::Drop);
        let done = json!({"jsonrpc": "2.0", "id": 42, "result": {"_meta": meta}});
        assert_eq!(
            relayed.rewrite(done.to_string().as_bytes()),
            Rewritten::Drop
        );
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/prompts/list_changed", "params": {"_meta": meta}});
        let changed = rewritten(&relayed, changed);
        assert_eq!(changed["params"]["_meta"][SUBSCRIPTION_ID], "client-7");
    }

    #[tokio::test]
    async fn a_merged_stream_ends_when_its_merge_ends() {
        let (merge, mut body) = Merge::new();
        let sender = merge.sender().unwrap();
        sender
            .send(Bytes::from_static(b"data: 1\n\n"))
            .await
            .unwrap();
        let task = tokio::spawn(std::future::pending::<()>());
        merge.start(0, |_| task.abort_handle());
        // One reader per upstream.
        merge.start(0, |_| unreachable!());
        merge.end();
        drop(sender);
        let got = std::future::poll_fn(|cx| body.poll_next(cx)).await;
        assert_eq!(got.as_deref(), Some(&b"data: 1\n\n"[..]));
        assert!(
            std::future::poll_fn(|cx| body.poll_next(cx))
                .await
                .is_none()
        );
        assert!(task.await.unwrap_err().is_cancelled());
    }
}
