//! [`RedisEventStore`]: SSE event logs on Redis Streams.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use redis::{Script, ScriptInvocation};
use tokio::sync::mpsc;

use super::{RedisConnection, RedisSource, bounded, now_ms};
use crate::protocol::SessionId;
use crate::store::{
    EventLogLimits, EventStore, EventTail, StoreError, StoreErrorKind, StoreFuture, StoredEvent,
    StreamKey,
};

/// SSE event logs on Redis Streams, shared by every gateway instance (feature `redis`).
///
/// One Redis stream per SSE stream, `{prefix}:{<session>}:events:<stream>`, with entry ids
/// `0-<seq>` so sequence numbers are the stream's own (starting above
/// [`stream_base`](crate::store::stream_base)); its counter, base and "finished" flag share
/// the session's hash tag. Logs are bounded by [`EventLogLimits`]: `MAXLEN` per stream, and
/// every key expires `max_age` after the last append (older entries count as dropped).
/// `max_streams` is not enforced here: Redis' own memory policy and the TTLs bound the total.
///
/// Live tails never issue a blocking `XREAD` on the shared multiplexed connection (it would
/// stall every other caller): each tail is a small task that reads with non-blocking
/// `XRANGE` and waits [`poll_interval`](RedisEventStoreBuilder::poll_interval) between empty
/// reads. With the `rmcp` feature it also implements rmcp's
/// [`EventStore`](rmcp::transport::streamable_http_server::session::EventStore)
/// (`LocalSessionManager::with_event_store`), with event ids `<stream id>/<seq>`.
#[derive(Clone)]
pub struct RedisEventStore {
    conn: RedisConnection,
    shared: Arc<Shared>,
}

struct Shared {
    prefix: Box<str>,
    timeout: Duration,
    poll_interval: Duration,
    limits: EventLogLimits,
    append: Script,
    append_batch: Script,
    remove_session: Script,
}

impl std::fmt::Debug for RedisEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEventStore")
            .field("prefix", &self.shared.prefix)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisEventStore`].
#[derive(Debug, Clone)]
pub struct RedisEventStoreBuilder {
    source: RedisSource,
    prefix: String,
    timeout: Duration,
    poll_interval: Duration,
    limits: EventLogLimits,
}

impl RedisEventStoreBuilder {
    /// Sets the key prefix (default `mcp-edge`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Bounds every Redis call (default 1 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// How long a live tail waits between reads that found nothing new (default 50 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }
    /// Sets the bounds.
    pub fn limits(mut self, limits: EventLogLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Builds the store, connecting lazily. Fails only on a bad URL. Must be called inside a
    /// tokio runtime.
    pub fn open(self) -> Result<RedisEventStore, StoreError> {
        Ok(RedisEventStore {
            conn: self.source.connect(self.timeout)?,
            shared: Arc::new(Shared {
                prefix: self.prefix.into(),
                timeout: self.timeout,
                poll_interval: self.poll_interval,
                limits: self.limits,
                append: Script::new(APPEND),
                append_batch: Script::new(APPEND_BATCH),
                remove_session: Script::new(REMOVE_SESSION),
            }),
        })
    }
}

impl RedisEventStore {
    /// A builder for a store at `source`: a URL (`redis://`, `rediss://` for TLS), a
    /// connection manager, or a cluster (see [`RedisSource`]).
    pub fn builder(source: impl Into<RedisSource>) -> RedisEventStoreBuilder {
        RedisEventStoreBuilder {
            source: source.into(),
            prefix: "mcp-edge".into(),
            timeout: Duration::from_secs(1),
            poll_interval: Duration::from_millis(50),
            limits: EventLogLimits::default(),
        }
    }

    /// A store at `url` with default settings, connecting lazily.
    pub fn open(url: impl Into<RedisSource>) -> Result<Self, StoreError> {
        Self::builder(url).open()
    }
}

/// The keys of one stream.
struct Keys {
    stream: String,
    seq: String,
    base: String,
    fin: String,
    index: String,
    name: String,
}

impl Keys {
    /// An invocation of an append script ([`APPEND`], [`APPEND_BATCH`]) on this stream, with
    /// what both take first: the keys (stream, seq, fin, session index, base), then the
    /// maximum length, the max age in ms, the time in ms and the stream's name.
    fn append<'a>(&self, script: &'a Script, shared: &Shared) -> ScriptInvocation<'a> {
        let mut invocation = script.key(&self.stream);
        invocation
            .key(&self.seq)
            .key(&self.fin)
            .key(&self.index)
            .key(&self.base)
            .arg(shared.limits.max_events_per_stream.max(1))
            .arg(shared.max_age_ms())
            .arg(now_ms())
            .arg(&self.name);
        invocation
    }
}

impl Shared {
    fn keys(&self, key: &StreamKey) -> Keys {
        let tag = key.session().map_or(key.stream(), SessionId::as_str);
        let base = format!("{}:{{{tag}}}:events", self.prefix);
        let stream = format!("{base}:{}", key.stream());
        Keys {
            seq: format!("{stream}:seq"),
            base: format!("{stream}:base"),
            fin: format!("{stream}:fin"),
            index: base,
            name: key.stream().to_owned(),
            stream,
        }
    }

    fn max_age_ms(&self) -> u64 {
        (self.limits.max_age.as_millis() as u64).max(1)
    }
}

// KEYS: stream, seq, fin, session index, base. ARGV: maxlen, max age ms, now ms, stream
// name, base for a new stream, data.
const APPEND: &str = r#"
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
if redis.call('SET', KEYS[2], ARGV[5], 'NX') then
  redis.call('SET', KEYS[5], ARGV[5])
end
local seq = redis.call('INCR', KEYS[2])
-- Sequence numbers are above 2^40: format them without Lua's exponent notation.
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '0-' .. string.format('%.0f', seq), 't', ARGV[3], 'd', ARGV[6])
redis.call('SADD', KEYS[4], ARGV[4])
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[4], KEYS[5]}) do redis.call('PEXPIRE', key, ARGV[2]) end
return seq
"#;

// KEYS: stream, seq, fin, session index, base. ARGV: maxlen, max age ms, now ms, stream
// name, first seq, then the data of each event. Returns the last seq, -1 when the stream is
// finished, -2 when the numbers do not continue it.
const APPEND_BATCH: &str = r#"
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local first = tonumber(ARGV[5])
local last = redis.call('GET', KEYS[2])
if last then
  if tonumber(last) ~= first - 1 then return -2 end
else
  redis.call('SET', KEYS[5], string.format('%.0f', first - 1))
end
local seq = first - 1
for i = 6, #ARGV do
  seq = seq + 1
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '0-' .. string.format('%.0f', seq), 't', ARGV[3], 'd', ARGV[i])
end
redis.call('SET', KEYS[2], string.format('%.0f', seq))
redis.call('SADD', KEYS[4], ARGV[4])
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[4], KEYS[5]}) do redis.call('PEXPIRE', key, ARGV[2]) end
return seq
"#;

// KEYS: session index. ARGV: the index key (as prefix of stream keys).
const REMOVE_SESSION: &str = r#"
local names = redis.call('SMEMBERS', KEYS[1])
for _, name in ipairs(names) do
  local stream = ARGV[1] .. ':' .. name
  redis.call('DEL', stream, stream .. ':seq', stream .. ':fin', stream .. ':base')
end
redis.call('DEL', KEYS[1])
return #names
"#;

type Entries = Vec<(String, HashMap<String, Vec<u8>>)>;

/// Reads entries after `after`, at most `count`; `None` fields mean an unreadable entry.
async fn read_after(
    conn: &mut RedisConnection,
    shared: &Shared,
    stream: &str,
    after: u64,
    count: usize,
) -> Result<Vec<(u64, u64, Bytes)>, StoreError> {
    let entries: Entries = bounded(shared.timeout, async {
        redis::cmd("XRANGE")
            .arg(stream)
            .arg(format!("(0-{after}"))
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(conn)
            .await
    })
    .await?;
    entries
        .into_iter()
        .map(|(id, mut fields)| {
            let seq = id
                .strip_prefix("0-")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StoreError::new(StoreErrorKind::Corrupt))?;
            let at = fields
                .get("t")
                .and_then(|t| std::str::from_utf8(t).ok()?.parse().ok())
                .unwrap_or(0);
            let data = fields.remove("d").unwrap_or_default();
            Ok((seq, at, Bytes::from(data)))
        })
        .collect()
}

impl EventStore for RedisEventStore {
    fn append(&self, stream: &StreamKey, data: Bytes) -> StoreFuture<u64> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let keys = shared.keys(stream);
        StoreFuture::boxed(async move {
            let mut invocation = keys.append(&shared.append, &shared);
            invocation.arg(crate::store::stream_base()).arg(&data[..]);
            let seq: i64 = bounded(shared.timeout, async {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
            u64::try_from(seq).map_err(|_| StoreError::new(StoreErrorKind::Evicted))
        })
    }

    fn append_batch(&self, stream: &StreamKey, events: Vec<StoredEvent>) -> StoreFuture<()> {
        let Some(first) = events.first().map(|e| e.seq) else {
            return StoreFuture::ready(Ok(()));
        };
        if first == 0 || events.windows(2).any(|pair| pair[1].seq != pair[0].seq + 1) {
            return StoreFuture::ready(Err(StoreError::new(StoreErrorKind::Corrupt)));
        }
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let keys = shared.keys(stream);
        StoreFuture::boxed(async move {
            let mut invocation = keys.append(&shared.append_batch, &shared);
            invocation.arg(first);
            for event in &events {
                invocation.arg(&event.data[..]);
            }
            let last: i64 = bounded(shared.timeout, async {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
            match last {
                -1 => Err(StoreError::new(StoreErrorKind::Evicted)),
                n if n < 0 => Err(StoreError::new(StoreErrorKind::Corrupt)),
                _ => Ok(()),
            }
        })
    }

    fn tail(&self, stream: &StreamKey, after: u64) -> StoreFuture<Option<EventTail>> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let keys = shared.keys(stream);
        StoreFuture::boxed(async move {
            let (last, base): (Option<u64>, Option<u64>) = bounded(shared.timeout, async {
                redis::cmd("MGET")
                    .arg(&keys.seq)
                    .arg(&keys.base)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
            let (Some(last), Some(base)) = (last, base) else {
                return Ok(None);
            };
            let after = if after == 0 { base } else { after };
            if after > last || after < base {
                return Ok(None);
            }
            let oldest_kept = now_ms().saturating_sub(shared.max_age_ms());
            let first = read_after(&mut conn, &shared, &keys.stream, after, 1).await?;
            match first.first() {
                Some((seq, at, _)) if *seq != after + 1 || *at < oldest_kept => return Ok(None),
                None if after < last => return Ok(None),
                _ => {}
            }
            let (sender, receiver) = mpsc::channel(64);
            tokio::spawn(follow(conn, shared, keys, after, sender));
            Ok(Some(EventTail::new(ReceiverStream(receiver))))
        })
    }

    fn finish(&self, stream: &StreamKey) -> StoreFuture<()> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let keys = shared.keys(stream);
        StoreFuture::boxed(async move {
            bounded(shared.timeout, async {
                redis::cmd("SET")
                    .arg(&keys.fin)
                    .arg(1)
                    .arg("PX")
                    .arg(shared.max_age_ms())
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
        })
    }

    fn remove_session(&self, session: &SessionId) -> StoreFuture<()> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let index = format!("{}:{{{}}}:events", shared.prefix, session.as_str());
        StoreFuture::boxed(async move {
            bounded(shared.timeout, async {
                shared
                    .remove_session
                    .key(&index)
                    .arg(&index)
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(drop)
        })
    }
}

/// A tail's reader task: pages through the log, then polls for new entries until the stream
/// is finished or removed, or the reader goes away.
async fn follow(
    mut conn: RedisConnection,
    shared: Arc<Shared>,
    keys: Keys,
    mut cursor: u64,
    sender: mpsc::Sender<Result<StoredEvent, StoreError>>,
) {
    loop {
        let page = match read_after(&mut conn, &shared, &keys.stream, cursor, 128).await {
            Ok(page) => page,
            Err(err) => {
                let _ = sender.send(Err(err)).await;
                return;
            }
        };
        if page.is_empty() {
            // Nothing new: finished, removed, or wait.
            let state: Result<(bool, bool), StoreError> = bounded(shared.timeout, async {
                redis::pipe()
                    .exists(&keys.fin)
                    .exists(&keys.seq)
                    .query_async(&mut conn)
                    .await
            })
            .await;
            match state {
                Ok((finished, alive)) if finished || !alive => {
                    // One last read: events appended just before the flag.
                    if let Ok(rest) =
                        read_after(&mut conn, &shared, &keys.stream, cursor, 128).await
                    {
                        for (seq, _, data) in rest {
                            if sender.send(Ok(StoredEvent { seq, data })).await.is_err() {
                                return;
                            }
                        }
                    }
                    return;
                }
                Ok(_) => {}
                Err(err) => {
                    let _ = sender.send(Err(err)).await;
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(shared.poll_interval) => {}
                _ = sender.closed() => return,
            }
            continue;
        }
        for (seq, _, data) in page {
            if seq != cursor + 1 {
                let _ = sender
                    .send(Err(StoreError::new(StoreErrorKind::Evicted)))
                    .await;
                return;
            }
            cursor = seq;
            if sender.send(Ok(StoredEvent { seq, data })).await.is_err() {
                return;
            }
        }
    }
}

struct ReceiverStream<T>(mpsc::Receiver<T>);

impl<T> Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(feature = "rmcp")]
mod rmcp_adapter {
    use std::time::Duration;

    use rmcp::model::ServerJsonRpcMessage;
    use rmcp::transport::streamable_http_server::session::{
        EventId, EventStore as RmcpEventStore, EventStoreError, EventStream, ServerSseMessage,
    };

    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Persisted {
        #[serde(skip_serializing_if = "Option::is_none")]
        m: Option<ServerJsonRpcMessage>,
        #[serde(skip_serializing_if = "Option::is_none")]
        r: Option<u64>,
    }

    struct VecStream(std::vec::IntoIter<ServerSseMessage>);

    impl Stream for VecStream {
        type Item = ServerSseMessage;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(self.0.next())
        }
    }

    #[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
    #[async_trait::async_trait]
    impl RmcpEventStore for RedisEventStore {
        async fn store_event(
            &self,
            stream_id: &str,
            event: &ServerSseMessage,
        ) -> Result<EventId, EventStoreError> {
            let persisted = Persisted {
                m: event.message.as_deref().cloned(),
                r: event.retry.map(|r| r.as_millis() as u64),
            };
            let data = serde_json::to_vec(&persisted)
                .map_err(|e| StoreError::with_source(StoreErrorKind::Corrupt, e))?;
            let seq = self
                .append(&StreamKey::new(None, stream_id), Bytes::from(data))
                .await?;
            Ok(format!("{stream_id}/{seq}"))
        }

        async fn replay_events_after(
            &self,
            last_event_id: &str,
        ) -> Result<EventStream, EventStoreError> {
            let (stream_id, seq) = last_event_id
                .rsplit_once('/')
                .and_then(|(s, n)| Some((s, n.parse::<u64>().ok()?)))
                .ok_or_else(|| StoreError::new(StoreErrorKind::Corrupt))?;
            let keys = self.shared.keys(&StreamKey::new(None, stream_id));
            let mut conn = self.conn.clone();
            let entries = read_after(
                &mut conn,
                &self.shared,
                &keys.stream,
                seq,
                self.shared.limits.max_events_per_stream.max(1),
            )
            .await?;
            let mut events = Vec::with_capacity(entries.len());
            for (n, _, data) in entries {
                let persisted: Persisted = serde_json::from_slice(&data)
                    .map_err(|e| StoreError::with_source(StoreErrorKind::Corrupt, e))?;
                let mut event = ServerSseMessage::default();
                event.event_id = Some(format!("{stream_id}/{n}"));
                event.message = persisted.m.map(std::sync::Arc::new);
                event.retry = persisted.r.map(Duration::from_millis);
                events.push(event);
            }
            Ok(Box::pin(VecStream(events.into_iter())))
        }
    }
}
