//! [`RedisSessionStore`]: session records in Redis.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::{Script, ScriptInvocation};
use sha2::{Digest, Sha256};

use super::{RedisConnection, RedisSource, bounded, from_ms, now_ms, to_ms};
use crate::context::{BindingKey, Principal, Replica};
use crate::protocol::{ClientInfo, SessionId};
use crate::store::{
    Capped, SessionCaps, SessionCount, SessionRecord, SessionStore, StoreError, StoreErrorKind,
    StoreFuture,
};

/// Session records in Redis; see the [module docs](super). Cheap to clone.
#[derive(Clone)]
pub struct RedisSessionStore {
    conn: RedisConnection,
    shared: Arc<Shared>,
}

struct Shared {
    prefix: Box<str>,
    /// What every key starts with: the prefix, as a hash tag on a cluster (see
    /// [`RedisSource`]'s "Redis Cluster").
    base: Box<str>,
    timeout: Duration,
    #[cfg_attr(not(feature = "rmcp"), allow(dead_code))]
    rmcp_state_ttl: Duration,
    insert: Script,
    touch: Script,
    remove: Script,
    set_replica: Script,
    count: Script,
}

impl Shared {
    fn session_key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:session", self.base)
    }

    fn total_key(&self) -> String {
        format!("{}:sessions", self.base)
    }

    /// An invocation of `script` on the record of session `id` and the index of all sessions
    /// (the first two keys of the record scripts), with `id` as its first argument.
    fn on_record<'a>(&self, script: &'a Script, id: &str) -> ScriptInvocation<'a> {
        let mut invocation = script.key(self.session_key(id));
        invocation.key(self.total_key()).arg(id);
        invocation
    }
}

impl std::fmt::Debug for RedisSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessionStore")
            .field("prefix", &self.shared.prefix)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisSessionStore`].
#[derive(Debug, Clone)]
pub struct RedisSessionStoreBuilder {
    source: RedisSource,
    prefix: String,
    timeout: Duration,
    rmcp_state_ttl: Duration,
}

impl RedisSessionStoreBuilder {
    /// Sets the key prefix (default `mcp-edge`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bounds every Redis call (default 1 s). Connection attempts use the same bound.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long rmcp session state (feature `rmcp`) is kept (default 24 hours).
    pub fn rmcp_state_ttl(mut self, ttl: Duration) -> Self {
        self.rmcp_state_ttl = ttl;
        self
    }

    /// Builds the store without connecting: the connection is made on first use, so a Redis
    /// that is down at start-up gives `503`s, not a failed start. Fails only on a bad URL.
    /// Must be called inside a tokio runtime.
    pub fn open(self) -> Result<RedisSessionStore, StoreError> {
        let conn = self.source.connect(self.timeout)?;
        let base = if conn.is_cluster() {
            format!("{{{}}}", self.prefix)
        } else {
            self.prefix.clone()
        };
        Ok(RedisSessionStore {
            conn,
            shared: Arc::new(Shared {
                prefix: self.prefix.into(),
                base: base.into(),
                timeout: self.timeout,
                rmcp_state_ttl: self.rmcp_state_ttl,
                insert: Script::new(INSERT),
                touch: Script::new(TOUCH),
                remove: Script::new(REMOVE),
                set_replica: Script::new(SET_REPLICA),
                count: Script::new(COUNT),
            }),
        })
    }

    /// Builds the store and checks that Redis answers `PING`.
    pub async fn connect(self) -> Result<RedisSessionStore, StoreError> {
        let store = self.open()?;
        store.ping().await?;
        Ok(store)
    }
}

impl RedisSessionStore {
    /// A builder for a store at `source`: a URL (`redis://host:port/db`, `rediss://` for
    /// TLS), a connection manager, or a cluster (see [`RedisSource`]).
    pub fn builder(source: impl Into<RedisSource>) -> RedisSessionStoreBuilder {
        RedisSessionStoreBuilder {
            source: source.into(),
            prefix: "mcp-edge".into(),
            timeout: Duration::from_secs(1),
            rmcp_state_ttl: SessionRecord::DEFAULT_MAX_LIFETIME,
        }
    }

    /// A store at `url` with default settings, connecting lazily (see
    /// [`RedisSessionStoreBuilder::open`]).
    pub fn open(url: impl Into<RedisSource>) -> Result<Self, StoreError> {
        Self::builder(url).open()
    }

    /// A store at `url` with default settings, after checking that Redis answers.
    pub async fn connect(url: impl Into<RedisSource>) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
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

    /// The key of a session's record.
    pub fn session_key(&self, id: &str) -> String {
        self.shared.session_key(id)
    }

    fn principal_key(&self, binding: &str) -> String {
        let digest = Sha256::digest(binding.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push_str(&format!("{byte:02x}"));
        }
        format!("{}:principal:{hex}", self.shared.base)
    }

    /// Touches `id`; with `check`, only when the record admits the requester (`Some(None)`:
    /// a request without a principal).
    fn touch_checked(
        &self,
        id: &SessionId,
        check: Option<Option<BindingKey>>,
    ) -> StoreFuture<Option<SessionRecord>> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let id = id.clone();
        StoreFuture::boxed(async move {
            let mut invocation = shared.on_record(&shared.touch, id.as_str());
            invocation.arg(now_ms());
            match &check {
                Some(Some(binding)) => invocation.arg("1").arg(binding.as_str()),
                Some(None) => invocation.arg("0").arg(""),
                None => &mut invocation,
            };
            let fields: Option<HashMap<String, String>> = bounded(shared.timeout, async {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
            match fields {
                Some(fields) if !fields.is_empty() => decode(&id, fields).map(Some),
                _ => Ok(None),
            }
        })
    }

    /// Inserts `record` within `caps` (none: always).
    fn insert_checked(&self, record: SessionRecord, caps: SessionCaps) -> StoreFuture<Capped> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let principal = record.binding().map(|b| self.principal_key(b.as_str()));
        StoreFuture::boxed(async move {
            let now = now_ms();
            let age_end = to_ms(record.created_at()) + record.max_lifetime().as_millis() as u64;
            let ttl = (record.idle_ttl().as_millis() as u64).min(age_end.saturating_sub(now));
            if ttl == 0 {
                // Already past its lifetime: nothing to keep.
                return Ok(Capped::Inserted);
            }
            let mut invocation = shared.on_record(&shared.insert, record.id().as_str());
            if let Some(p) = &principal {
                invocation.key(p);
            }
            invocation.arg(now).arg(ttl);
            let cap = |max: Option<u64>| max.map_or_else(String::new, |m| m.to_string());
            invocation.arg(cap(caps.total)).arg(cap(caps.per_principal));
            for (name, value) in encode(&record) {
                invocation.arg(name).arg(value);
            }
            let done: i64 = bounded(shared.timeout, async {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
            Ok(match done {
                2 => Capped::PrincipalFull,
                3 => Capped::TotalFull,
                _ => Capped::Inserted,
            })
        })
    }

    #[cfg(feature = "rmcp")]
    fn rmcp_key(&self, id: &str) -> String {
        format!("{}:{{{id}}}:rmcp", self.shared.base)
    }
}

/// The hash fields of a record (all but `pk`, which the store adds).
fn encode(record: &SessionRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("v", record.protocol_version().as_str().to_owned()),
        ("c", to_ms(record.created_at()).to_string()),
        ("l", to_ms(record.last_seen()).to_string()),
        ("i", (record.idle_ttl().as_millis() as u64).to_string()),
        ("m", (record.max_lifetime().as_millis() as u64).to_string()),
    ];
    if let Some(binding) = record.binding() {
        fields.push(("p", binding.as_str().to_owned()));
    }
    if let Some(r) = record.replica() {
        fields.push(("r", r.id().to_owned()));
    }
    if let Some(info) = record.client_info() {
        for (name, value) in [
            ("cn", &info.name),
            ("cv", &info.version),
            ("ct", &info.title),
        ] {
            if let Some(v) = value {
                fields.push((name, v.to_string()));
            }
        }
    }
    fields
}

fn decode(
    id: &SessionId,
    mut fields: HashMap<String, String>,
) -> Result<SessionRecord, StoreError> {
    let corrupt = || StoreError::new(StoreErrorKind::Corrupt);
    let ms = |name: &str| -> Result<u64, StoreError> {
        fields
            .get(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(corrupt)
    };
    let created = ms("c")?;
    let last = ms("l")?;
    let idle = ms("i")?;
    let max = ms("m")?;
    let version = fields
        .get("v")
        .and_then(|v| v.parse().ok())
        .ok_or_else(corrupt)?;
    let client_info = {
        let name = fields.remove("cn").map(Into::into);
        let version = fields.remove("cv").map(Into::into);
        let title = fields.remove("ct").map(Into::into);
        (name.is_some() || version.is_some() || title.is_some()).then_some(ClientInfo {
            name,
            version,
            title,
        })
    };
    Ok(SessionRecord::new(id.clone())
        .with_binding(fields.remove("p").map(BindingKey::from_stored))
        .with_protocol_version(version)
        .with_client_info(client_info)
        .with_replica(fields.remove("r").map(Replica::new))
        .with_created_at(from_ms(created))
        .with_last_seen(from_ms(last))
        .with_idle_ttl(Duration::from_millis(idle))
        .with_max_lifetime(Duration::from_millis(max)))
}

// KEYS: session, total index, [principal index]. ARGV: id, now, ttl, max total ('' for
// none), max per principal ('' for none), field/value pairs. Returns 1 inserted, 2 over the
// principal's cap, 3 over the total cap: counted and inserted in one script, so concurrent
// inserts never overshoot a cap.
const INSERT: &str = r#"
local now = tonumber(ARGV[2])
local maxp = tonumber(ARGV[5])
local maxt = tonumber(ARGV[4])
if maxp and KEYS[3] then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= maxp then return 2 end
end
if maxt then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= maxt then return 3 end
end
local oldpk = redis.call('HGET', KEYS[1], 'pk')
if oldpk then redis.call('ZREM', oldpk, ARGV[1]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
local ttl = tonumber(ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
local deadline = tonumber(ARGV[2]) + ttl
redis.call('ZADD', KEYS[2], deadline, ARGV[1])
if KEYS[3] then
  redis.call('HSET', KEYS[1], 'pk', KEYS[3])
  redis.call('ZADD', KEYS[3], deadline, ARGV[1])
end
return 1
"#;

// KEYS: session, total index. ARGV: id, now, [binding check: '1' + the requester's binding
// key, or '0' for a request without a principal]. With the check, activity is recorded only
// when the session is unbound or bound to that key: a foreign request never moves the
// owner's deadline. The record is returned either way.
const TOUCH: &str = r#"
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local f = {}
for i = 1, #h, 2 do f[h[i]] = h[i + 1] end
local now = tonumber(ARGV[2])
local ttl = math.min(tonumber(f['i']), tonumber(f['c']) + tonumber(f['m']) - now)
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  if f['pk'] then redis.call('ZREM', f['pk'], ARGV[1]) end
  return false
end
if ARGV[3] and f['p'] and not (ARGV[3] == '1' and ARGV[4] == f['p']) then return h end
redis.call('HSET', KEYS[1], 'l', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], 'XX', now + ttl, ARGV[1])
if f['pk'] then redis.call('ZADD', f['pk'], 'XX', now + ttl, ARGV[1]) end
return redis.call('HGETALL', KEYS[1])
"#;

// KEYS: session, total index. ARGV: id.
const REMOVE: &str = r#"
local pk = redis.call('HGET', KEYS[1], 'pk')
if pk then redis.call('ZREM', pk, ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
"#;

// KEYS: session. ARGV: '1' + replica to set, '0' to clear.
const SET_REPLICA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'r', ARGV[2]) else redis.call('HDEL', KEYS[1], 'r') end
return 1
"#;

// KEYS: total index, [principal index]. ARGV: now.
const COUNT: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local t = redis.call('ZCARD', KEYS[1])
local p = 0
if KEYS[2] then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  p = redis.call('ZCARD', KEYS[2])
end
return {t, p}
"#;

impl SessionStore for RedisSessionStore {
    fn get(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>> {
        let mut conn = self.conn.clone();
        let key = self.session_key(id.as_str());
        let timeout = self.shared.timeout;
        let id = id.clone();
        StoreFuture::boxed(async move {
            let fields: HashMap<String, String> = bounded(timeout, async {
                redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await
            })
            .await?;
            if fields.is_empty() {
                return Ok(None);
            }
            decode(&id, fields).map(Some)
        })
    }

    fn touch(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>> {
        self.touch_checked(id, None)
    }

    fn touch_as(
        &self,
        id: &SessionId,
        principal: Option<&Principal>,
    ) -> StoreFuture<Option<SessionRecord>> {
        self.touch_checked(id, Some(principal.map(BindingKey::of)))
    }

    fn insert(&self, record: SessionRecord) -> StoreFuture<()> {
        self.insert_checked(record, SessionCaps::default())
            .map(drop)
    }

    fn insert_within(&self, record: SessionRecord, caps: SessionCaps) -> StoreFuture<Capped> {
        self.insert_checked(record, caps)
    }

    fn remove(&self, id: &SessionId) -> StoreFuture<bool> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let id = id.clone();
        StoreFuture::boxed(async move {
            let invocation = shared.on_record(&shared.remove, id.as_str());
            let removed: i64 = bounded(shared.timeout, async {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
            Ok(removed > 0)
        })
    }

    fn set_replica(&self, id: &SessionId, replica: Option<Replica>) -> StoreFuture<bool> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let key = self.session_key(id.as_str());
        StoreFuture::boxed(async move {
            let mut invocation = shared.set_replica.key(&key);
            match &replica {
                Some(r) => invocation.arg("1").arg(r.id()),
                None => invocation.arg("0").arg(""),
            };
            let set: i64 = bounded(shared.timeout, async {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
            Ok(set > 0)
        })
    }

    fn replica(&self, id: &SessionId) -> StoreFuture<Option<Replica>> {
        let mut conn = self.conn.clone();
        let key = self.session_key(id.as_str());
        let timeout = self.shared.timeout;
        StoreFuture::boxed(async move {
            let replica: Option<String> = bounded(timeout, async {
                redis::cmd("HGET")
                    .arg(&key)
                    .arg("r")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
            Ok(replica.map(Replica::new))
        })
    }

    fn count(&self, principal: Option<&str>) -> StoreFuture<SessionCount> {
        let mut conn = self.conn.clone();
        let shared = Arc::clone(&self.shared);
        let total = self.shared.total_key();
        let principal = principal.map(|p| self.principal_key(p));
        StoreFuture::boxed(async move {
            let mut invocation = shared.count.key(&total);
            if let Some(p) = &principal {
                invocation.key(p);
            }
            invocation.arg(now_ms());
            let (total, principal): (u64, u64) = bounded(shared.timeout, async {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
            Ok(SessionCount { total, principal })
        })
    }
}

#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
#[async_trait::async_trait]
impl rmcp::transport::streamable_http_server::session::SessionStore for RedisSessionStore {
    async fn load(
        &self,
        session_id: &str,
    ) -> Result<
        Option<rmcp::transport::streamable_http_server::session::SessionState>,
        rmcp::transport::streamable_http_server::session::SessionStoreError,
    > {
        let mut conn = self.conn.clone();
        let key = self.rmcp_key(session_id);
        let state: Option<String> = bounded(self.shared.timeout, async {
            redis::cmd("GET").arg(&key).query_async(&mut conn).await
        })
        .await?;
        match state {
            None => Ok(None),
            Some(json) => {
                Ok(Some(serde_json::from_str(&json).map_err(|e| {
                    StoreError::with_source(StoreErrorKind::Corrupt, e)
                })?))
            }
        }
    }

    async fn store(
        &self,
        session_id: &str,
        state: &rmcp::transport::streamable_http_server::session::SessionState,
    ) -> Result<(), rmcp::transport::streamable_http_server::session::SessionStoreError> {
        let json = serde_json::to_string(state)
            .map_err(|e| StoreError::with_source(StoreErrorKind::Corrupt, e))?;
        let mut conn = self.conn.clone();
        let key = self.rmcp_key(session_id);
        let ttl = self.shared.rmcp_state_ttl.as_millis() as u64;
        bounded(self.shared.timeout, async {
            redis::cmd("SET")
                .arg(&key)
                .arg(json)
                .arg("PX")
                .arg(ttl.max(1))
                .query_async::<()>(&mut conn)
                .await
        })
        .await?;
        Ok(())
    }

    async fn delete(
        &self,
        session_id: &str,
    ) -> Result<(), rmcp::transport::streamable_http_server::session::SessionStoreError> {
        let mut conn = self.conn.clone();
        let key = self.rmcp_key(session_id);
        bounded(self.shared.timeout, async {
            redis::cmd("DEL")
                .arg(&key)
                .query_async::<()>(&mut conn)
                .await
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Principal;

    #[test]
    fn records_round_trip_through_hash_fields() {
        let id: SessionId = "s-1".parse().unwrap();
        let record = SessionRecord::new(id.clone())
            .with_principal(&Principal::new("alice").with_issuer("https://as"))
            .with_protocol_version(crate::ProtocolVersion::V2025_06_18)
            .with_client_info(Some(ClientInfo {
                name: Some("c".into()),
                version: Some("1".into()),
                title: None,
            }))
            .with_replica(Some(Replica::new("r1")))
            .with_idle_ttl(Duration::from_secs(5))
            .with_max_lifetime(Duration::from_secs(50));
        let fields = encode(&record)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let back = decode(&id, fields).unwrap();
        assert_eq!(back.principal(), record.principal());
        assert_eq!(back.protocol_version(), record.protocol_version());
        assert_eq!(back.client_info(), record.client_info());
        assert_eq!(back.replica(), record.replica());
        assert_eq!(back.idle_ttl(), record.idle_ttl());
        assert_eq!(back.max_lifetime(), record.max_lifetime());
        assert_eq!(to_ms(back.created_at()), to_ms(record.created_at()));
    }

    #[test]
    fn keys_of_a_session_share_a_hash_tag() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let store = RedisSessionStore::open("redis://127.0.0.1:1").unwrap();
        assert_eq!(store.session_key("abc"), "mcp-edge:{abc}:session");
        assert!(
            store
                .principal_key("iss\u{1f}sub")
                .starts_with("mcp-edge:principal:")
        );
    }
}
