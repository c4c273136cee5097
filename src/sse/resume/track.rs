//! Recording one stream: ids written into its events, events handed to a writer task.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use super::Config;
use super::cursor::Sealed;
use crate::protocol::sse::{SseEvent, SseParser, UTF8_BOM};
use crate::store::{EventStore, StoredEvent, StreamKey};

/// Room for one id line: `id: ` + token + `.` + seal + `.` + 20 digits + two line ends.
const ID_LINE_ROOM: usize = 80;
/// The id-line arena grows by this much at a time (one allocation per ~50 events).
const ARENA: usize = 4096;
/// Events handed to the store in one call at most.
const BATCH: usize = 256;

/// The state of one recorded stream, shared by the live body and, once the client is gone,
/// the detached drain.
pub(super) struct Tracker {
    pub(super) config: Arc<Config>,
    parser: SseParser,
    /// Bytes of the current block from earlier chunks (already sent on).
    pending: Vec<Bytes>,
    pending_len: usize,
    /// The number of the last event given an id.
    seq: u64,
    id_prefix: Bytes,
    arena: BytesMut,
    /// A block ended with a lone CR at the end of the last chunk: an LF starting the next
    /// chunk belongs to it.
    skip_lf: bool,
    /// No block of the server's was read yet (a leading BOM is dropped from it).
    at_start: bool,
    ends: Vec<(usize, bool, Option<SseEvent>)>,
    /// `None` once recording stopped (an event too large, or the store too far behind).
    writer: Option<mpsc::UnboundedSender<StoredEvent>>,
    /// Bytes handed to the writer and not written yet.
    queued: Arc<AtomicUsize>,
    /// Resolves once the writer task has written everything and finished the stream.
    written: Option<oneshot::Receiver<()>>,
}

impl Tracker {
    /// Starts recording `sealed`: spawns its writer task. Must run inside a Tokio runtime.
    pub(super) fn start(config: Arc<Config>, sealed: Sealed) -> Tracker {
        let (sender, receiver) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let (done, written) = oneshot::channel();
        tokio::spawn(write(
            Arc::clone(&config.store),
            sealed.key,
            receiver,
            Arc::clone(&queued),
            done,
        ));
        Tracker {
            parser: SseParser::with_max_event_bytes(config.settings.max_event_bytes),
            config,
            pending: Vec::new(),
            pending_len: 0,
            seq: 0,
            id_prefix: sealed.id_prefix,
            arena: BytesMut::new(),
            skip_lf: false,
            at_start: true,
            ends: Vec::new(),
            writer: Some(sender),
            queued,
            written: Some(written),
        }
    }

    /// Resolves once every event handed to the writer is in the store and the stream is
    /// finished there (after this tracker is dropped).
    pub(super) fn written(&mut self) -> impl std::future::Future<Output = ()> + use<> {
        let written = self.written.take();
        async move {
            if let Some(written) = written {
                let _ = written.await;
            }
        }
    }

    /// Reads one chunk of the server's stream: every block with fields gets the stream's next
    /// id and goes to the store; with `out`, the bytes for the client are pushed there.
    ///
    /// A block goes on once complete (a client cannot use a part of an event anyway): as the
    /// server's own `Bytes` followed by our id line, or, when the server gave it an `id` of
    /// its own, written anew without it (strict SSE parsers, rmcp's among them, refuse two
    /// `id` lines in one event). Comment-only blocks go on as they are and are not stored.
    pub(super) fn process(&mut self, chunk: Bytes, mut out: Option<&mut VecDeque<Bytes>>) {
        if self.writer.is_none() && self.pending.is_empty() {
            // Recording stopped: the rest of the stream passes as it is.
            if let Some(out) = out {
                out.push_back(chunk);
            }
            return;
        }
        if let Some(stored) = self.whole_event(&chunk) {
            // The usual shape, one whole event per chunk: no parser work (see `whole_event`).
            self.seq += 1;
            self.at_start = false;
            if let Some(out) = out {
                out.push_back(stored.clone());
                let line = self.id_line(self.seq);
                out.push_back(line);
            }
            self.record(stored);
            return;
        }
        let mut from = 0;
        if std::mem::take(&mut self.skip_lf) && chunk.first() == Some(&b'\n') {
            from = 1;
        }
        self.ends.clear();
        for block in self.parser.feed_blocks(&chunk) {
            let fielded = block.event.is_some();
            // The event itself is kept only when it carries an id of the server's.
            let event = block.event.filter(|e| e.id.is_some());
            self.ends.push((block.end, fielded, event));
        }
        let ends = std::mem::take(&mut self.ends);
        for (end, fielded, server_id_event) in ends.iter().map(|(e, f, ev)| (*e, *f, ev)) {
            if end <= from {
                continue;
            }
            if !fielded {
                // Comments only: on to the client, never stored.
                if let Some(out) = out.as_deref_mut() {
                    out.extend(self.pending.drain(..));
                    out.push_back(chunk.slice(from..end));
                }
                self.clear_pending();
                from = end;
                continue;
            }
            let (cut, lone_cr) = blank_line(&chunk, end);
            let body = chunk.slice(from..cut.max(from));
            self.seq += 1;
            // `sent` is what the client gets: all of `stored`, or (for an event with the
            // server's own id) what follows the mapping line.
            let (mut stored, sent) = match server_id_event {
                Some(event) => {
                    self.clear_pending();
                    mapped(event)
                }
                None => (self.take_block(body), 0),
            };
            if stored.is_empty() {
                // Comments and an id only: ours replaces it (an empty record would read as a
                // cut).
                stored = Bytes::from_static(b":\n");
            }
            self.at_start = false;
            if let Some(out) = out.as_deref_mut() {
                out.push_back(stored.slice(sent..));
            }
            if let Some(out) = out.as_deref_mut() {
                let line = self.id_line(self.seq);
                out.push_back(line);
            }
            self.record(stored);
            from = end;
            if lone_cr {
                match chunk.get(end) {
                    Some(b'\n') => from = end + 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.ends = ends;
        self.ends.clear();
        if from < chunk.len() {
            let rest = chunk.slice(from..);
            self.pending_len += rest.len();
            self.pending.push(rest);
            if self.pending_len > self.config.settings.max_event_bytes {
                // An event larger than the log takes: what was held goes on, recording
                // stops here, and a resume past this point is answered as expired.
                if let Some(out) = out {
                    out.extend(self.pending.drain(..));
                }
                self.stop();
            }
        }
    }

    /// The stored bytes of `chunk` when it is exactly one whole event of the plainest shape,
    /// which is how servers write events (one per write): the stream is past its start and
    /// between events, the chunk has LF line ends only (no CR), starts with a `data` or
    /// `event` field (so the block has fields), ends with the blank line that ends it, has no
    /// blank line before that and no `id` line, and is within the event cap. What the parser
    /// would then find is known without it: one block with fields, ending at the end of the
    /// chunk, with no id of the server's, and the parser's state is the same before and after
    /// (between events, no id). Anything else goes to the parser.
    fn whole_event(&self, chunk: &Bytes) -> Option<Bytes> {
        let bytes = &chunk[..];
        let n = bytes.len();
        let plain = n >= 3
            && bytes[n - 1] == b'\n'
            && bytes[n - 2] == b'\n'
            && n <= self.config.settings.max_event_bytes
            && self.pending.is_empty()
            && !self.skip_lf
            && self.parser.at_event_boundary()
            && !self.parser.scanner().at_stream_start()
            && [&b"data:"[..], b"data\n", b"event:", b"event\n"]
                .iter()
                .any(|field| bytes.starts_with(field));
        if !plain {
            return None;
        }
        // Up to the last two line ends, one pass: no CR, and after each LF neither a blank
        // line nor an `id` field.
        for at in memchr::memchr2_iter(b'\n', b'\r', &bytes[..n - 2]) {
            let next = &bytes[at + 1..];
            if bytes[at] == b'\r' || next[0] == b'\n' || next.starts_with(b"id") {
                return None;
            }
        }
        // Without the blank line, as the parser's path stores it.
        Some(chunk.slice(..n - 1))
    }

    /// The end of the server's stream: a partial last event is dropped (a client would
    /// discard it too).
    pub(super) fn end(&mut self) {
        self.clear_pending();
    }

    /// Writes a priming event (R19: an id and empty data, so that the client can resume a
    /// stream cut before the server's first event), recorded like the server's.
    pub(super) fn prime(&mut self, out: &mut VecDeque<Bytes>) {
        const PRIMING: &[u8] = b"data:\n";
        self.seq += 1;
        out.push_back(Bytes::from_static(PRIMING));
        let line = self.id_line(self.seq);
        out.push_back(line);
        self.record(Bytes::from_static(PRIMING));
    }

    /// `id: <token>.<seq>` and the blank line that ends the event.
    pub(super) fn id_line(&mut self, seq: u64) -> Bytes {
        id_line(&mut self.arena, &self.id_prefix, seq)
    }

    fn clear_pending(&mut self) {
        self.pending.clear();
        self.pending_len = 0;
    }

    /// The stored bytes of the block that ends with `tail`.
    fn take_block(&mut self, tail: Bytes) -> Bytes {
        let mut block = if self.pending.is_empty() {
            tail
        } else {
            let mut joined = BytesMut::with_capacity(self.pending_len + tail.len());
            for piece in self.pending.drain(..) {
                joined.put_slice(&piece);
            }
            joined.put_slice(&tail);
            joined.freeze()
        };
        self.pending_len = 0;
        if self.at_start && block.starts_with(UTF8_BOM) {
            // Only the first bytes of a stream may carry it; a replay starts elsewhere.
            block = block.slice(UTF8_BOM.len()..);
        }
        block
    }

    fn record(&mut self, data: Bytes) {
        let Some(writer) = &self.writer else { return };
        debug_assert!(!data.is_empty(), "an empty event marks a cut");
        let len = data.len();
        let queued = self.queued.fetch_add(len, Ordering::Relaxed) + len;
        if queued > self.config.settings.max_queued_bytes
            || writer
                .send(StoredEvent {
                    seq: self.seq,
                    data,
                })
                .is_err()
        {
            self.stop();
        }
    }

    /// Stops recording: the store gets a mark that the stream was cut here (an event with no
    /// bytes, which a replay reads as "events were lost"), then the writer finishes it.
    pub(super) fn stop(&mut self) {
        if let Some(writer) = self.writer.take() {
            self.seq += 1;
            let _ = writer.send(StoredEvent {
                seq: self.seq,
                data: Bytes::new(),
            });
        }
        self.clear_pending();
    }
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("seq", &self.seq)
            .field("recording", &self.writer.is_some())
            .finish_non_exhaustive()
    }
}

/// The record of an event that carried an id of the server's, and where the client's part
/// starts in it: `id: <the server's id>` (the mapping from our id to the server's, kept in
/// the log on every instance), then the event as the client gets it, without the server's
/// id (strict parsers, rmcp's among them, refuse two `id` lines in one event) and without
/// the blank line that ends it.
fn mapped(event: &SseEvent) -> (Bytes, usize) {
    let mut without = event.clone();
    let server_id = without.id.take().unwrap_or_default();
    let body = without.to_bytes();
    let mut body = &body[..body.len() - 1];
    if body.is_empty() {
        // The event was only the server's id.
        body = b":\n";
    }
    let mut record = BytesMut::with_capacity(5 + server_id.len() + body.len());
    record.put_slice(b"id: ");
    record.put_slice(&server_id);
    record.put_u8(b'\n');
    let sent = record.len();
    record.put_slice(body);
    (record.freeze(), sent)
}

/// What a replay sends of a recorded event: the record without its mapping line, if any
/// (see [`mapped`]; no other record starts with an `id` field).
pub(super) fn replayed(record: Bytes) -> Bytes {
    if record.starts_with(b"id:")
        && let Some(end) = memchr::memchr(b'\n', &record)
    {
        return record.slice(end + 1..);
    }
    record
}

/// The server's own id of a recorded event, when it had one (the mapping [`mapped`] keeps).
#[cfg_attr(not(test), allow(dead_code))]
pub(super) fn server_id(record: &[u8]) -> Option<&[u8]> {
    let rest = record.strip_prefix(b"id:")?;
    let end = memchr::memchr(b'\n', rest)?;
    let id = &rest[..end];
    Some(id.strip_prefix(b" ").unwrap_or(id))
}

/// Writes `prefix`, `seq` and a blank line into `arena` and splits it off.
pub(super) fn id_line(arena: &mut BytesMut, prefix: &[u8], seq: u64) -> Bytes {
    if arena.capacity() < prefix.len() + ID_LINE_ROOM {
        arena.reserve(ARENA.max(prefix.len() + ID_LINE_ROOM));
    }
    arena.put_slice(prefix);
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = seq;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    arena.put_slice(&digits[at..]);
    arena.put_slice(b"\n\n");
    arena.split().freeze()
}

/// Where the block ending at `end` stops before its blank line, and whether that blank line
/// is a lone CR (whose LF, if it follows, is part of it).
fn blank_line(chunk: &[u8], end: usize) -> (usize, bool) {
    match chunk[end - 1] {
        b'\n' if end >= 2 && chunk[end - 2] == b'\r' => (end - 2, false),
        b'\n' => (end - 1, false),
        _ => (end - 1, true),
    }
}

/// The writer task of one stream: hands what the body recorded to the store in batches, in
/// order, off the body's path; finishes the stream when the body (or the detached drain) is
/// done with it.
async fn write(
    store: Arc<dyn EventStore>,
    key: StreamKey,
    mut receiver: mpsc::UnboundedReceiver<StoredEvent>,
    queued: Arc<AtomicUsize>,
    done: oneshot::Sender<()>,
) {
    let mut batch = Vec::with_capacity(16);
    let mut healthy = true;
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let bytes: usize = batch.iter().map(|e| e.data.len()).sum();
        let events = std::mem::replace(&mut batch, Vec::with_capacity(16));
        if healthy && let Err(err) = store.append_batch(&key, events).await {
            // A gap would make later events unreadable anyway: stop here, and let the stream
            // finish so tails end instead of waiting.
            tracing::warn!(stream = key.stream(), error = %err, "resume: recording stopped");
            healthy = false;
        }
        queued.fetch_sub(bytes, Ordering::Relaxed);
    }
    if let Err(err) = store.finish(&key).await {
        tracing::debug!(stream = key.stream(), error = %err, "resume: finish failed");
    }
    let _ = done.send(());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_id_is_kept_in_the_record_and_left_out_of_what_is_sent() {
        let mut parser = SseParser::new();
        let chunk = Bytes::from_static(b"id: 41\nevent: message\ndata: {}\n\nid: 42\n\n");
        let events: Vec<SseEvent> = parser.feed_blocks(&chunk).filter_map(|b| b.event).collect();
        let (record, sent) = mapped(&events[0]);
        assert_eq!(&record[..], b"id: 41\nevent: message\ndata: {}\n");
        assert_eq!(&record[sent..], b"event: message\ndata: {}\n");
        assert_eq!(server_id(&record), Some(&b"41"[..]));
        assert_eq!(replayed(record.clone()), record.slice(sent..));
        // An event that was only the server's id.
        let (record, sent) = mapped(&events[1]);
        assert_eq!(
            (&record[..], &record[sent..]),
            (&b"id: 42\n:\n"[..], &b":\n"[..])
        );
        assert_eq!(server_id(&record), Some(&b"42"[..]));
        // Records without one pass as they are.
        let plain = Bytes::from_static(b"data: {}\n");
        assert_eq!(replayed(plain.clone()), plain);
        assert_eq!(server_id(&plain), None);
    }

    #[tokio::test]
    async fn whole_events_take_the_short_path_and_everything_else_the_parser() {
        use super::super::cursor::{Owner, StreamKind};
        let config = super::super::ResumeLayer::new(crate::store::MemoryEventStore::new()).shared();
        let sealed = config
            .sealer
            .open(StreamKind::Post, &Owner::new(None, None));
        let mut tracker = Tracker::start(config, sealed);
        let mut out = VecDeque::new();
        // The stream's start goes to the parser.
        let first = Bytes::from_static(b"data: 1\n\n");
        assert!(tracker.whole_event(&first).is_none());
        tracker.process(first, Some(&mut out));
        for (chunk, short) in [
            (&b"data: 2\n\n"[..], true),
            (b"event: m\ndata: 3\n\n", true),
            (b"data\n\n", true),
            (b": c\ndata: x\n\n", false),
            (b"data: a\r\n\r\n", false),
            (b"data: a\n\ndata: b\n\n", false),
            (b"data: a\n\n\n", false),
            (b"data: a\nid: 7\n\n", false),
            (b"id: 7\ndata: a\n\n", false),
            (b"foo: a\n\n", false),
            (b"data: a\n", false),
        ] {
            let chunk = Bytes::from_static(chunk);
            assert_eq!(tracker.whole_event(&chunk).is_some(), short, "{chunk:?}");
        }
        // Both paths write the same: the event without its blank line, then our id line.
        tracker.process(Bytes::from_static(b"event: m\ndata: 3\n\n"), Some(&mut out));
        let sent: Vec<Bytes> = out.drain(..).collect();
        assert_eq!(sent[0], "data: 1\n");
        assert_eq!(sent[2], "event: m\ndata: 3\n");
        assert!(sent[3].starts_with(b"id: p") && sent[3].ends_with(b".2\n\n"));
        // Mid-event (a partial block held), the next chunk goes to the parser.
        tracker.process(Bytes::from_static(b"data: 4"), Some(&mut out));
        assert!(
            tracker
                .whole_event(&Bytes::from_static(b"data: 5\n\n"))
                .is_none()
        );
    }

    #[test]
    fn blank_line_ends() {
        assert_eq!(blank_line(b"data: x\n\n", 9), (8, false));
        assert_eq!(blank_line(b"data: x\r\n\r\n", 11), (9, false));
        assert_eq!(blank_line(b"data: x\r\r", 9), (8, true));
        assert_eq!(blank_line(b"\n", 1), (0, false));
    }
}
