//! [`JsonLinesSink`]: one JSON object per line, written by a dedicated thread.

use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use super::chain::ChainState;
use super::checkpoint::{CheckpointSigner, DEFAULT_CHECKPOINT_EVENTS, DEFAULT_CHECKPOINT_INTERVAL};
use super::event::AuditEvent;
use super::sink::{AuditSink, DropCounter};

/// The default queue: 16 384 events.
pub const DEFAULT_QUEUE: usize = 16 * 1024;

/// The default byte budget of the queue: 64 MiB of queued events (what they hold: their
/// request's body, captured arguments and results, messages).
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024 * 1024;

/// The default flush interval: 100 ms.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// A line longer than this (captured arguments and results included) is written with its
/// captured arguments and result left out.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// A batch written as soon as it holds this much.
const BATCH_BYTES: usize = 1024 * 1024;

#[derive(Debug, Default)]
struct Stats {
    dropped: DropCounter,
    written: AtomicU64,
    write_errors: AtomicU64,
    queued_bytes: AtomicUsize,
}

/// Flush and shutdown requests, read by the writer thread between batches.
#[derive(Debug, Default)]
struct Control {
    waiting: Vec<oneshot::Sender<()>>,
    shutdown: bool,
    stopped: bool,
}

#[derive(Debug)]
struct Shared {
    stats: Stats,
    control: Mutex<Control>,
    /// The writer thread is parked with nothing to do: the next event must wake it.
    idle: AtomicBool,
    /// The writer thread has stopped taking events.
    stopped: AtomicBool,
    max_bytes: usize,
}

/// Appends one JSON object per line (see [`AuditEvent`]'s keys) to a file or any
/// [`AsyncWrite`], from one dedicated writer thread.
///
/// `emit` only puts the event in a bounded queue (bounded both in events,
/// [`queue`](JsonLinesSinkBuilder::queue), and in the bytes the queued events hold,
/// [`queue_bytes`](JsonLinesSinkBuilder::queue_bytes)); it wakes the writer only when the
/// writer is idle. Serializing and writing happen on the thread: it takes everything queued,
/// writes it as one batch (one `write` for a file), then waits up to the
/// [`flush_interval`](JsonLinesSinkBuilder::flush_interval) for more before it goes idle. Under
/// load that is one write per interval, whatever the call rate.
///
/// A full queue (a disk slower than the traffic, or a writer that hangs) drops events and
/// counts them ([`dropped`](JsonLinesSink::dropped), logged as it grows). A failing writer
/// (disk full) is counted in [`write_errors`](JsonLinesSink::write_errors) and logged;
/// requests are never affected.
///
/// # Durability
/// Events are in memory until their batch is written: a crash (or a `process::exit`) loses
/// what was queued, at most about one flush interval's worth. Lines are handed to the OS
/// (`write`), not synced to disk (`fsync`). Call [`shutdown`](JsonLinesSink::shutdown) before
/// exit to write what is queued; when the last clone of the sink is dropped, the thread also
/// writes what is queued and stops, but nothing waits for it.
///
/// With [`hash_chain`](JsonLinesSinkBuilder::hash_chain), lines carry a SHA-256 chain that
/// [`verify_chain`](super::chain::verify_chain) checks (see [`chain`](super::chain)). With
/// [`checkpoints`](JsonLinesSinkBuilder::checkpoints), the writer thread also signs the
/// chain's head every N events or T seconds and at shutdown, so that someone with only the
/// public key can verify the log (see [`checkpoint`](super::checkpoint)).
///
/// ```no_run
/// use mcp_edge::audit::{AuditLayer, JsonLinesSink};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let sink = JsonLinesSink::builder().hash_chain(true).open("audit.jsonl").await?;
/// let layer = AuditLayer::new(sink.clone());
/// // … serve with `layer` …
/// sink.shutdown().await; // write what is queued on the way out
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct JsonLinesSink {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None` only while dropping.
    tx: Option<SyncSender<Queued>>,
    shared: Arc<Shared>,
    thread: Thread,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close the queue first, then wake the thread so it sees it closed.
        drop(self.tx.take());
        self.thread.unpark();
    }
}

/// A queued event and the bytes it was counted for.
#[derive(Debug)]
struct Queued {
    event: Box<AuditEvent>,
    bytes: usize,
}

/// Configures a [`JsonLinesSink`].
#[derive(Debug, Clone)]
pub struct JsonLinesSinkBuilder {
    queue: usize,
    queue_bytes: usize,
    flush_interval: Duration,
    chain: bool,
    checkpoints: Option<CheckpointSigner>,
    checkpoint_events: u64,
    checkpoint_interval: Duration,
}

impl JsonLinesSink {
    /// A builder: queue size, byte budget, flush interval and hash chain.
    pub fn builder() -> JsonLinesSinkBuilder {
        JsonLinesSinkBuilder {
            queue: DEFAULT_QUEUE,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            chain: false,
            checkpoints: None,
            checkpoint_events: DEFAULT_CHECKPOINT_EVENTS,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }

    /// Appends to the file at `path` (created if missing), without hash chain.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<JsonLinesSink> {
        JsonLinesSink::builder().open(path).await
    }

    /// Writes to `writer`, without hash chain. Must be called within a tokio runtime (the
    /// writer thread drives `writer` through it).
    pub fn new<W>(writer: W) -> JsonLinesSink
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        JsonLinesSink::builder().writer(writer)
    }

    /// Events dropped because the queue was full (in events or in bytes) or the writer
    /// thread was gone.
    pub fn dropped(&self) -> u64 {
        self.inner.shared.stats.dropped.get()
    }

    /// Events written: serialized and handed to the writer, which writes them with their
    /// batch (a batch that fails to write counts in [`write_errors`](Self::write_errors)).
    pub fn written(&self) -> u64 {
        self.inner.shared.stats.written.load(Ordering::Relaxed)
    }

    /// Writes or flushes that failed; the events in them are lost.
    pub fn write_errors(&self) -> u64 {
        self.inner.shared.stats.write_errors.load(Ordering::Relaxed)
    }

    /// Waits until every event queued before this call is written and flushed.
    ///
    /// Returns at once if the writer thread has stopped. Waits for as long as the writer
    /// takes: wrap it in a timeout if the writer may hang.
    pub async fn flush(&self) {
        self.request(false).await;
    }

    /// Writes and flushes everything queued, then stops the writer thread. Events emitted
    /// afterwards are dropped and counted. Same waiting rules as [`flush`](Self::flush).
    pub async fn shutdown(&self) {
        self.request(true).await;
    }

    async fn request(&self, shutdown: bool) {
        let wait = {
            let mut control = self.inner.shared.control.lock().expect("not poisoned");
            if control.stopped {
                return;
            }
            let (done, wait) = oneshot::channel();
            control.waiting.push(done);
            control.shutdown |= shutdown;
            wait
        };
        self.inner.thread.unpark();
        let _ = wait.await;
    }
}

impl JsonLinesSinkBuilder {
    /// Sets the queue size in events (default [`DEFAULT_QUEUE`]).
    ///
    /// # Panics
    /// When building, if the size is 0.
    pub fn queue(mut self, events: usize) -> Self {
        self.queue = events;
        self
    }

    /// Sets the queue's byte budget (default [`DEFAULT_QUEUE_BYTES`]): what the queued
    /// events may hold in all (each is counted for its request body, captured arguments and
    /// result, and a fixed share for the rest). An event that does not fit is dropped and
    /// counted.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Sets how long the writer waits for more events after a batch before it goes idle
    /// (default [`DEFAULT_FLUSH_INTERVAL`]). Longer batches more lines into one write; events
    /// are lost on a crash within about this long.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Turns the SHA-256 hash chain on or off (default off). Checkpoints keep it on.
    pub fn hash_chain(mut self, on: bool) -> Self {
        self.chain = on;
        self
    }

    /// Signs the chain's head with `signer` in a checkpoint line every
    /// [`checkpoint_every`](Self::checkpoint_every) events or seconds, and at shutdown (a
    /// `final` one); turns the hash chain on. Signing happens on the writer thread.
    pub fn checkpoints(mut self, signer: CheckpointSigner) -> Self {
        self.checkpoints = Some(signer);
        self
    }

    /// [`checkpoints`](Self::checkpoints) when `Some`.
    pub fn checkpoints_opt(mut self, signer: Option<CheckpointSigner>) -> Self {
        self.checkpoints = signer;
        self
    }

    /// How often to sign: after `events` events (at least 1), or `interval` after the last
    /// checkpoint when events were written since, whichever comes first (defaults:
    /// [`DEFAULT_CHECKPOINT_EVENTS`], [`DEFAULT_CHECKPOINT_INTERVAL`]).
    pub fn checkpoint_every(mut self, events: u64, interval: Duration) -> Self {
        self.checkpoint_events = events.max(1);
        self.checkpoint_interval = interval;
        self
    }

    fn chained(&self) -> bool {
        self.chain || self.checkpoints.is_some()
    }

    /// Appends to the file at `path`, creating it if missing. With the hash chain on, the
    /// chain continues from the file's last line.
    pub async fn open(self, path: impl AsRef<Path>) -> io::Result<JsonLinesSink> {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .await?;
        let chain = if self.chained() {
            Some(last_chain_state(&mut file).await?.unwrap_or_default())
        } else {
            None
        };
        let file = file.into_std().await;
        self.spawn(FileOut(file), chain)
    }

    /// Writes to `writer`; a hash chain starts afresh. Must be called within a tokio runtime.
    pub fn writer<W>(self, writer: W) -> JsonLinesSink
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let chain = self.chained().then(ChainState::new);
        self.spawn_async(writer, chain)
    }

    /// Writes to `writer`, continuing the chain from `state`. Must be called within a tokio
    /// runtime.
    pub fn writer_resuming<W>(self, writer: W, state: ChainState) -> JsonLinesSink
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        self.spawn_async(writer, Some(state))
    }

    fn spawn_async<W>(self, writer: W, chain: Option<ChainState>) -> JsonLinesSink
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let out = AsyncOut {
            handle: tokio::runtime::Handle::current(),
            writer,
        };
        self.spawn(out, chain)
            .expect("the OS refused to start the audit writer thread")
    }

    fn spawn<O: Out>(self, out: O, chain: Option<ChainState>) -> io::Result<JsonLinesSink> {
        assert!(
            self.queue > 0,
            "the audit queue must hold at least one event"
        );
        let (tx, rx) = mpsc::sync_channel(self.queue);
        let shared = Arc::new(Shared {
            stats: Stats::default(),
            control: Mutex::default(),
            idle: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            max_bytes: self.queue_bytes,
        });
        let checkpoints = self.checkpoints.map(|signer| Checkpoints {
            signer,
            every_events: self.checkpoint_events,
            every: self.checkpoint_interval,
            since: 0,
            last: Instant::now(),
        });
        let writer = Writer {
            rx,
            out,
            chain,
            checkpoints,
            shared: Arc::clone(&shared),
            interval: self.flush_interval,
            batch: Vec::with_capacity(64 * 1024),
            line: Vec::with_capacity(1024),
            lines: 0,
        };
        let handle = std::thread::Builder::new()
            .name("mcp-edge-audit".into())
            .spawn(move || writer.run())?;
        Ok(JsonLinesSink {
            inner: Arc::new(Inner {
                tx: Some(tx),
                shared,
                thread: handle.thread().clone(),
            }),
        })
    }
}

/// The chain state after the last line of an existing file, if it has one.
async fn last_chain_state(file: &mut tokio::fs::File) -> io::Result<Option<ChainState>> {
    const TAIL: u64 = 256 * 1024;
    let len = file.metadata().await?.len();
    if len == 0 {
        return Ok(None);
    }
    let start = len.saturating_sub(TAIL);
    file.seek(io::SeekFrom::Start(start)).await?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).await?;
    let last = tail
        .split(|b| *b == b'\n')
        .rev()
        .find(|line| !line.iter().all(u8::is_ascii_whitespace));
    Ok(last.and_then(ChainState::after_line))
}

impl AuditSink for JsonLinesSink {
    fn emit(&self, event: AuditEvent) {
        let shared = &*self.inner.shared;
        let bytes = event.retained_bytes();
        let before = shared
            .stats
            .queued_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        let queued = match &self.inner.tx {
            Some(tx)
                if before + bytes <= shared.max_bytes
                    && !shared.stopped.load(Ordering::Acquire) =>
            {
                tx.try_send(Queued {
                    event: Box::new(event),
                    bytes,
                })
                .is_ok()
            }
            _ => false,
        };
        if !queued {
            shared
                .stats
                .queued_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
            shared.stats.dropped.record("json_lines");
            return;
        }
        if shared.idle.swap(false, Ordering::SeqCst) {
            self.inner.thread.unpark();
        }
    }
}

/// Where the writer thread writes: a file directly, or an [`AsyncWrite`] driven through the
/// runtime's handle.
trait Out: Send + 'static {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    fn close(&mut self) {}
}

struct FileOut(std::fs::File);

impl Out for FileOut {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

struct AsyncOut<W> {
    handle: tokio::runtime::Handle,
    writer: W,
}

impl<W: AsyncWrite + Unpin + Send + 'static> Out for AsyncOut<W> {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.handle.block_on(self.writer.write_all(bytes))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.handle.block_on(self.writer.flush())
    }
    fn close(&mut self) {
        let _ = self.handle.block_on(self.writer.shutdown());
    }
}

/// The writer thread's checkpoint schedule.
struct Checkpoints {
    signer: CheckpointSigner,
    every_events: u64,
    every: Duration,
    /// Events written since the last checkpoint.
    since: u64,
    last: Instant,
}

impl Checkpoints {
    /// How long until a checkpoint falls due by time (`None`: no event waits for one).
    fn due_in(&self) -> Option<Duration> {
        (self.since > 0).then(|| self.every.saturating_sub(self.last.elapsed()))
    }
}

struct Writer<O> {
    rx: Receiver<Queued>,
    out: O,
    chain: Option<ChainState>,
    checkpoints: Option<Checkpoints>,
    shared: Arc<Shared>,
    interval: Duration,
    /// Lines not yet written.
    batch: Vec<u8>,
    line: Vec<u8>,
    /// Lines in `batch`.
    lines: u64,
}

impl<O: Out> Writer<O> {
    fn run(mut self) {
        loop {
            // Take the requests first: every event queued before one is then in the channel.
            let (waiting, shutdown) = {
                let mut control = self.shared.control.lock().expect("not poisoned");
                (std::mem::take(&mut control.waiting), control.shutdown)
            };
            let (took, closed) = self.drain();
            let stopping = shutdown || closed;
            let signed = self.checkpoint_if_due(stopping);
            if took || signed || !waiting.is_empty() {
                self.write_batch();
                if let Err(e) = self.out.flush() {
                    write_failed(&self.shared.stats, &e);
                }
            }
            if stopping {
                self.stop(waiting);
                return;
            }
            for done in waiting {
                let _ = done.send(());
            }
            if took {
                // Busy: let more events gather, then write them in one go.
                std::thread::park_timeout(self.interval);
                continue;
            }
            // Idle until an event, a request or the last sink's drop wakes us.
            self.shared.idle.store(true, Ordering::SeqCst);
            match self.rx.try_recv() {
                Ok(queued) => {
                    self.shared.idle.store(false, Ordering::SeqCst);
                    self.add(queued);
                    continue;
                }
                Err(TryRecvError::Disconnected) => continue,
                Err(TryRecvError::Empty) => {}
            }
            if self.has_requests() {
                self.shared.idle.store(false, Ordering::SeqCst);
                continue;
            }
            // A checkpoint due by time wakes us too.
            match self.checkpoints.as_ref().and_then(Checkpoints::due_in) {
                Some(due) => std::thread::park_timeout(due),
                None => std::thread::park(),
            }
            self.shared.idle.store(false, Ordering::SeqCst);
        }
    }

    fn has_requests(&self) -> bool {
        let control = self.shared.control.lock().expect("not poisoned");
        !control.waiting.is_empty() || control.shutdown
    }

    /// Serializes everything queued into the batch (writing it whenever it grows large).
    /// Returns whether anything was taken, and whether the queue is closed.
    fn drain(&mut self) -> (bool, bool) {
        let mut took = self.lines > 0;
        loop {
            match self.rx.try_recv() {
                Ok(queued) => {
                    took = true;
                    self.add(queued);
                    if self.batch.len() >= BATCH_BYTES {
                        self.write_batch();
                    }
                }
                Err(TryRecvError::Empty) => return (took, false),
                Err(TryRecvError::Disconnected) => return (took, true),
            }
        }
    }

    fn add(&mut self, queued: Queued) {
        let Queued { mut event, bytes } = queued;
        self.shared
            .stats
            .queued_bytes
            .fetch_sub(bytes, Ordering::Relaxed);
        self.line.clear();
        if serde_json::to_writer(&mut self.line, &*event).is_err() {
            self.shared
                .stats
                .write_errors
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.line.len() > MAX_LINE_BYTES {
            // Over the event's budget: only captured arguments and results can take it there.
            event.omit_captures(self.line.len());
            self.line.clear();
            if serde_json::to_writer(&mut self.line, &*event).is_err() {
                self.shared
                    .stats
                    .write_errors
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        match &mut self.chain {
            Some(chain) => chain.seal(&mut self.line),
            None => self.line.push(b'\n'),
        }
        self.batch.extend_from_slice(&self.line);
        self.lines += 1;
        self.shared.stats.written.fetch_add(1, Ordering::Relaxed);
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints.since += 1;
            if checkpoints.since >= checkpoints.every_events {
                self.checkpoint(false);
            }
        }
    }

    /// Adds a checkpoint to the batch when one is due by time, or the final one when the
    /// writer stops. Returns whether it added one.
    fn checkpoint_if_due(&mut self, stopping: bool) -> bool {
        let Some(checkpoints) = &self.checkpoints else {
            return false;
        };
        let due = stopping || checkpoints.due_in() == Some(Duration::ZERO);
        if due {
            self.checkpoint(stopping);
        }
        due
    }

    /// Signs the chain's head into a checkpoint line, sealed into the chain and batched.
    fn checkpoint(&mut self, last: bool) {
        let (Some(checkpoints), Some(chain)) = (&mut self.checkpoints, &mut self.chain) else {
            return;
        };
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        checkpoints
            .signer
            .checkpoint_line(chain, at_ms, last, &mut self.line);
        chain.seal(&mut self.line);
        self.batch.extend_from_slice(&self.line);
        self.lines += 1;
        checkpoints.since = 0;
        checkpoints.last = Instant::now();
    }

    fn write_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if let Err(e) = self.out.write_all(&self.batch) {
            write_failed(&self.shared.stats, &e);
        }
        self.batch.clear();
        if self.batch.capacity() > 4 * BATCH_BYTES {
            self.batch.shrink_to(64 * 1024);
        }
        self.lines = 0;
    }

    /// After a shutdown (or the last sink's drop): close the writer, answer every request,
    /// and count what is still queued as dropped.
    fn stop(mut self, waiting: Vec<oneshot::Sender<()>>) {
        self.out.close();
        self.shared.stopped.store(true, Ordering::Release);
        let later = {
            let mut control = self.shared.control.lock().expect("not poisoned");
            control.stopped = true;
            std::mem::take(&mut control.waiting)
        };
        for done in waiting.into_iter().chain(later) {
            let _ = done.send(());
        }
        while let Ok(queued) = self.rx.try_recv() {
            self.shared
                .stats
                .queued_bytes
                .fetch_sub(queued.bytes, Ordering::Relaxed);
            self.shared.stats.dropped.record("json_lines");
        }
    }
}

fn write_failed(stats: &Stats, error: &io::Error) {
    let n = stats.write_errors.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        tracing::warn!(
            target: "mcp_edge::audit",
            error = %error,
            mcp_edge.audit.write_errors = n,
            "audit log write failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use http::{HeaderValue, Method, Version};

    use super::*;
    use crate::audit::event::{ClientAddr, Outcome};

    fn event_holding(bytes: usize) -> AuditEvent {
        AuditEvent {
            start: SystemTime::now(),
            time_to_head: None,
            duration: Duration::ZERO,
            request_id: HeaderValue::from_static("r"),
            peer: None,
            client: ClientAddr::default(),
            http_method: Method::POST,
            http_version: Version::HTTP_11,
            status: None,
            mcp: None,
            index: 0,
            session: None,
            principal: None,
            session_owner: None,
            replica: None,
            routed: None,
            pin: None,
            limit: None,
            request_bytes: 0,
            response_bytes: 0,
            sse_events: None,
            outcome: Outcome::Success,
            arguments: Some("a".repeat(bytes).into()),
            result: None,
            scrubbed: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_queue_is_bounded_in_bytes_and_drops_are_counted() {
        let one = event_holding(10 * 1024).retained_bytes();
        let sink = JsonLinesSink::builder()
            .queue_bytes(2 * one + one / 2)
            .writer(tokio::io::sink());
        let shared = Arc::clone(&sink.inner.shared);
        while !shared.idle.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        {
            // The writer thread cannot take anything while the control lock is held.
            let _hold = shared.control.lock().unwrap();
            for _ in 0..3 {
                sink.emit(event_holding(10 * 1024));
            }
            assert_eq!(sink.dropped(), 1, "the third event is over the byte budget");
            assert_eq!(shared.stats.queued_bytes.load(Ordering::Relaxed), 2 * one);
        }
        sink.flush().await;
        assert_eq!(sink.written(), 2);
        assert_eq!(shared.stats.queued_bytes.load(Ordering::Relaxed), 0);
        // Room again once written.
        sink.emit(event_holding(10 * 1024));
        sink.shutdown().await;
        assert_eq!(sink.written(), 3);
        assert_eq!(sink.dropped(), 1);
        sink.emit(event_holding(1));
        assert_eq!(
            sink.dropped(),
            2,
            "after shutdown, events are dropped and counted"
        );
    }
}
