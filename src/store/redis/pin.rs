//! [`RedisPinStore`]: pinned tool definitions in Redis, shared by aggregator instances.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;

use super::{RedisConnection, RedisSource, bounded};
use crate::store::{ChangedTool, PinCheck, PinStore, StoreError, StoreErrorKind, StoreFuture};

/// Pinned tool definitions in Redis: every aggregator instance using the same Redis and
/// prefix agrees on the first hash of each tool, sees the same changes and approvals, and
/// keeps its pins across restarts.
///
/// Each upstream's pins are one Redis hash, `{prefix}:pins:{<upstream>}` (the upstream's name
/// is its hash tag, so a Redis Cluster spreads upstreams over its slots), with a field
/// `p:<tool>` holding the pinned hash and, while a change waits for approval, `c:<tool>`
/// holding the hash seen. Keys have no TTL: a pin lasts until the key is deleted. Checking a
/// page of definitions is one Lua script (first-seen pins are set there, so two instances
/// seeing a tool at once pin one hash); approving is another.
///
/// Every call is bounded by a timeout (1 s by default) and fails with a [`StoreError`]; the
/// connection recovers by itself when Redis is back. Cheap to clone.
///
/// ```no_run
/// use mcp_edge::store::redis::RedisPinStore;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let rt = tokio::runtime::Runtime::new()?;
/// # rt.block_on(async {
/// let pins = RedisPinStore::builder("redis://127.0.0.1:6379").prefix("my-gateway").open()?;
/// // Aggregator::builder().pin_store(pins) ... (feature `aggregator`)
/// # let _ = pins;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok(())
/// # }
/// ```
///
/// # Cancel safety
///
/// Each operation is one Lua script or command, applied entirely or not at all; dropping the
/// future after it was sent may still apply it.
#[derive(Clone)]
pub struct RedisPinStore {
    conn: RedisConnection,
    shared: Arc<Shared>,
}

struct Shared {
    prefix: Box<str>,
    timeout: Duration,
    check: Script,
    approve: Script,
}

impl Shared {
    fn key(&self, upstream: &str) -> String {
        format!("{}:pins:{{{upstream}}}", self.prefix)
    }
}

impl std::fmt::Debug for RedisPinStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPinStore")
            .field("prefix", &self.shared.prefix)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisPinStore`].
#[derive(Debug, Clone)]
pub struct RedisPinStoreBuilder {
    source: RedisSource,
    prefix: String,
    timeout: Duration,
}

impl RedisPinStoreBuilder {
    /// Sets the key prefix (default `mcp-edge`, as the other Redis stores).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bounds every Redis call (default 1 s). Connection attempts use the same bound.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the store without connecting: the connection is made on first use, so a Redis
    /// that is down at start-up gives store errors, not a failed start. Fails only on a bad
    /// URL. Must be called inside a tokio runtime.
    pub fn open(self) -> Result<RedisPinStore, StoreError> {
        let conn = self.source.connect(self.timeout)?;
        Ok(RedisPinStore {
            conn,
            shared: Arc::new(Shared {
                prefix: self.prefix.into(),
                timeout: self.timeout,
                check: Script::new(CHECK),
                approve: Script::new(APPROVE),
            }),
        })
    }

    /// Builds the store and checks that Redis answers `PING`.
    pub async fn connect(self) -> Result<RedisPinStore, StoreError> {
        let store = self.open()?;
        store.ping().await?;
        Ok(store)
    }
}

impl RedisPinStore {
    /// A builder for a store at `source`: a URL (`redis://host:port/db`, `rediss://` for
    /// TLS), a connection manager, or a cluster (see [`RedisSource`]).
    pub fn builder(source: impl Into<RedisSource>) -> RedisPinStoreBuilder {
        RedisPinStoreBuilder {
            source: source.into(),
            prefix: "mcp-edge".into(),
            timeout: Duration::from_secs(1),
        }
    }

    /// A store at `source` with default settings, connecting lazily (see
    /// [`RedisPinStoreBuilder::open`]).
    pub fn open(source: impl Into<RedisSource>) -> Result<Self, StoreError> {
        Self::builder(source).open()
    }

    /// Checks that Redis answers, within the timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        bounded(self.shared.timeout, async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
    }

    /// The key holding upstream `upstream`'s pins.
    pub fn pins_key(&self, upstream: &str) -> String {
        self.shared.key(upstream)
    }
}

impl PinStore for RedisPinStore {
    fn check(&self, upstream: &str, seen: Vec<(String, String)>) -> StoreFuture<Vec<PinCheck>> {
        if seen.is_empty() {
            return StoreFuture::ready(Ok(Vec::new()));
        }
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let key = shared.key(upstream);
        StoreFuture::boxed(async move {
            let mut invocation = shared.check.key(key);
            for (tool, hash) in &seen {
                invocation.arg(tool).arg(hash);
            }
            // One entry per tool: "" when pinned, else the pinned hash.
            let pinned: Vec<String> = bounded(shared.timeout, async {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
            if pinned.len() != seen.len() {
                return Err(StoreError::new(StoreErrorKind::Corrupt));
            }
            Ok(pinned
                .into_iter()
                .map(|pinned| match pinned.is_empty() {
                    true => PinCheck::Pinned,
                    false => PinCheck::Changed { pinned },
                })
                .collect())
        })
    }

    fn approve(&self, upstream: &str, tool: &str) -> StoreFuture<bool> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let key = shared.key(upstream);
        let tool = tool.to_owned();
        StoreFuture::boxed(async move {
            let mut invocation = shared.approve.key(key);
            invocation.arg(tool);
            let approved: i64 = bounded(shared.timeout, async {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
            Ok(approved == 1)
        })
    }

    fn changed(&self, upstream: &str) -> StoreFuture<Vec<ChangedTool>> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let key = shared.key(upstream);
        let upstream = upstream.to_owned();
        StoreFuture::boxed(async move {
            let fields: HashMap<String, String> = bounded(shared.timeout, async {
                redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await
            })
            .await?;
            let mut changed: Vec<ChangedTool> = fields
                .iter()
                .filter_map(|(field, seen)| {
                    let tool = field.strip_prefix("c:")?;
                    let pinned = fields.get(&format!("p:{tool}"))?;
                    Some(ChangedTool::new(&*upstream, tool, &**pinned, &**seen))
                })
                .collect();
            changed.sort_by(|a, b| a.tool.cmp(&b.tool));
            Ok(changed)
        })
    }
}

/// KEYS[1]: the upstream's pins; ARGV: tool, hash, tool, hash, … Returns, per tool, "" when
/// the hash is the pinned one (pinning it when the tool had no pin), else the pinned hash
/// (and records the hash seen as the change).
const CHECK: &str = r#"
local out = {}
for i = 1, #ARGV, 2 do
  local tool, seen = ARGV[i], ARGV[i + 1]
  local pinned = redis.call('HGET', KEYS[1], 'p:' .. tool)
  if not pinned then
    redis.call('HSET', KEYS[1], 'p:' .. tool, seen)
    out[#out + 1] = ''
  elseif pinned == seen then
    redis.call('HDEL', KEYS[1], 'c:' .. tool)
    out[#out + 1] = ''
  else
    redis.call('HSET', KEYS[1], 'c:' .. tool, seen)
    out[#out + 1] = pinned
  end
end
return out
"#;

/// KEYS[1]: the upstream's pins; ARGV[1]: the tool. 1 when a change was pinned, else 0.
const APPROVE: &str = r#"
local seen = redis.call('HGET', KEYS[1], 'c:' .. ARGV[1])
if not seen then
  return 0
end
redis.call('HSET', KEYS[1], 'p:' .. ARGV[1], seen)
redis.call('HDEL', KEYS[1], 'c:' .. ARGV[1])
return 1
"#;
