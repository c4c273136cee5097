//! [`JsonLinesSink`]: one JSON object per line, written by a background task.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};

use super::chain::ChainState;
use super::event::AuditEvent;
use super::sink::{AuditSink, DropCounter};

/// The default queue: 16 384 events.
pub const DEFAULT_QUEUE: usize = 16 * 1024;

enum Msg {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Debug, Default)]
struct Stats {
    dropped: DropCounter,
    written: AtomicU64,
    write_errors: AtomicU64,
}

/// Appends one JSON object per line (see [`AuditEvent`]'s keys) to a file or any
/// [`AsyncWrite`], from a background task.
///
/// `emit` only puts the event in a bounded queue; serializing and writing happen on the
/// task, which flushes whenever the queue runs empty. A full queue (a disk slower than the
/// traffic, or a writer that hangs) drops events and counts them
/// ([`dropped`](JsonLinesSink::dropped), logged as it grows). A failing writer (disk full)
/// is counted in [`write_errors`](JsonLinesSink::write_errors) and logged; requests are
/// never affected. Call [`shutdown`](JsonLinesSink::shutdown) before exit to write and flush
/// what is queued.
///
/// With [`hash_chain`](JsonLinesSinkBuilder::hash_chain), lines carry a SHA-256 chain that
/// [`verify_chain`](super::chain::verify_chain) checks (see [`chain`](super::chain)).
///
/// ```no_run
/// use mcp_edge::audit::{AuditLayer, JsonLinesSink};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let sink = JsonLinesSink::builder().hash_chain(true).open("audit.jsonl").await?;
/// let layer = AuditLayer::new(sink.clone());
/// // … serve with `layer` …
/// sink.shutdown().await; // flush on the way out
/// # let _ = layer;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct JsonLinesSink {
    tx: mpsc::Sender<Msg>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// Configures a [`JsonLinesSink`].
#[derive(Debug, Clone)]
pub struct JsonLinesSinkBuilder {
    queue: usize,
    chain: bool,
}

impl JsonLinesSink {
    /// A builder: queue size and hash chain.
    pub fn builder() -> JsonLinesSinkBuilder {
        JsonLinesSinkBuilder {
            queue: DEFAULT_QUEUE,
            chain: false,
        }
    }

    /// Appends to the file at `path` (created if missing), without hash chain.
    ///
    /// Must be called within a tokio runtime (it spawns the writer task).
    pub async fn open(path: impl AsRef<Path>) -> io::Result<JsonLinesSink> {
        JsonLinesSink::builder().open(path).await
    }

    /// Writes to `writer`, without hash chain. Must be called within a tokio runtime.
    pub fn new<W>(writer: W) -> JsonLinesSink
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        JsonLinesSink::builder().writer(writer)
    }

    /// Events dropped because the queue was full or the writer task was gone.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.get()
    }

    /// Events written (handed to the writer; flushed on the next empty queue).
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Writes or flushes that failed; the events in them are lost.
    pub fn write_errors(&self) -> u64 {
        self.stats.write_errors.load(Ordering::Relaxed)
    }

    /// Waits until every event queued before this call is written and flushed.
    ///
    /// Returns at once if the writer task has stopped. Waits for as long as the writer
    /// takes: wrap it in a timeout if the writer may hang.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Writes and flushes everything queued, then stops the writer task. Events emitted
    /// afterwards are dropped and counted. Same waiting rules as [`flush`](Self::flush).
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

impl JsonLinesSinkBuilder {
    /// Sets the queue size (default [`DEFAULT_QUEUE`]).
    ///
    /// # Panics
    /// When building, if the size is 0.
    pub fn queue(mut self, events: usize) -> Self {
        self.queue = events;
        self
    }

    /// Turns the SHA-256 hash chain on or off (default off).
    pub fn hash_chain(mut self, on: bool) -> Self {
        self.chain = on;
        self
    }

    /// Appends to the file at `path`, creating it if missing. With the hash chain on, the
    /// chain continues from the file's last line. Must be called within a tokio runtime.
    pub async fn open(self, path: impl AsRef<Path>) -> io::Result<JsonLinesSink> {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .await?;
        let chain = if self.chain {
            Some(last_chain_state(&mut file).await?.unwrap_or_default())
        } else {
            None
        };
        Ok(self.spawn(file, chain))
    }

    /// Writes to `writer`; a hash chain starts afresh. Must be called within a tokio runtime.
    pub fn writer<W>(self, writer: W) -> JsonLinesSink
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let chain = self.chain.then(ChainState::new);
        self.spawn(writer, chain)
    }

    /// Writes to `writer`, continuing the chain from `state`.
    pub fn writer_resuming<W>(self, writer: W, state: ChainState) -> JsonLinesSink
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        self.spawn(writer, Some(state))
    }

    fn spawn<W>(self, writer: W, chain: Option<ChainState>) -> JsonLinesSink
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(self.queue);
        let stats = Arc::new(Stats::default());
        tokio::spawn(run(rx, BufWriter::new(writer), chain, Arc::clone(&stats)));
        JsonLinesSink { tx, stats }
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
        if self.tx.try_send(Msg::Event(Box::new(event))).is_err() {
            self.stats.dropped.record("json_lines");
        }
    }
}

async fn run<W>(
    mut rx: mpsc::Receiver<Msg>,
    mut out: BufWriter<W>,
    mut chain: Option<ChainState>,
    stats: Arc<Stats>,
) where
    W: AsyncWrite + Unpin,
{
    let mut batch = Vec::with_capacity(256);
    let mut line = Vec::with_capacity(1024);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    let mut shutdown = None;
    'outer: loop {
        if rx.recv_many(&mut batch, 256).await == 0 {
            break;
        }
        let mut messages = batch.drain(..);
        while let Some(msg) = messages.next() {
            match msg {
                Msg::Event(event) => {
                    line.clear();
                    if serde_json::to_writer(&mut line, &*event).is_err() {
                        stats.write_errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    match &mut chain {
                        Some(chain) => chain.seal(&mut line),
                        None => line.push(b'\n'),
                    }
                    match out.write_all(&line).await {
                        Ok(()) => {
                            stats.written.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => write_failed(&stats, &e),
                    }
                }
                Msg::Flush(done) => waiting.push(done),
                Msg::Shutdown(done) => {
                    shutdown = Some(done);
                    // Whatever came after the shutdown is not written: count it.
                    for later in messages {
                        match later {
                            Msg::Event(_) => stats.dropped.record("json_lines"),
                            Msg::Flush(done) | Msg::Shutdown(done) => waiting.push(done),
                        }
                    }
                    break 'outer;
                }
            }
        }
        if rx.is_empty() || !waiting.is_empty() {
            if let Err(e) = out.flush().await {
                write_failed(&stats, &e);
            }
            for done in waiting.drain(..) {
                let _ = done.send(());
            }
        }
    }
    rx.close();
    if let Err(e) = out.flush().await {
        write_failed(&stats, &e);
    }
    let _ = out.shutdown().await;
    for done in waiting.drain(..).chain(shutdown) {
        let _ = done.send(());
    }
    // Anything still queued after a shutdown is counted as dropped.
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Event(_) => stats.dropped.record("json_lines"),
            Msg::Flush(done) | Msg::Shutdown(done) => {
                let _ = done.send(());
            }
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
