//! [`RedisLimits`]: rate, quota and concurrency budgets in Redis, shared by every gateway
//! instance (feature `redis`).
//!
//! One decision is one `EVALSHA` of a Lua script (loaded on first use, reloaded after a
//! `SCRIPT FLUSH` or a restart): the script reads Redis's own clock (`TIME`, so instances
//! with skewed clocks still agree), checks every budget the call draws on, and takes from all
//! of them only if all let it through. Every budget of one caller (all keys whose caller
//! parts are the same principal, client, session or address) carries that caller as a hash
//! tag, `{prefix}:limit:{<caller digest>}:<key digest>`, so on Redis Cluster they live on one
//! slot and one script may touch them all. A call that draws on budgets of several callers
//! (a per-principal rule and a global one) sends one script per caller, one after the other;
//! each is atomic on its own.
//!
//! A concurrency place (an open call or SSE stream) is a **lease**: a member of a sorted set
//! per budget, scored with the time the lease runs out (default 30 s,
//! [`RedisLimitsBuilder::lease`]), taken by the same script. The instance renews the leases it
//! holds every third of a lease while their response bodies live, and removes a lease when its
//! body ends, fails or is dropped because the client left. The script drops run-out leases
//! before counting, so the places of an instance that crashed or froze come back after at most
//! one lease.
//!
//! # Failure
//!
//! Every decision is bounded by the timeout (250 ms by default; connecting too). When Redis
//! fails or is slow, the rules the call met decide: if any is
//! [`fail_closed`](super::Rule::fail_closed), the call is refused with `503`,
//! `Retry-After: 1` and a JSON-RPC error; otherwise it goes through. Both are counted
//! ([`LimitLayer::counts`](super::LimitLayer::counts)) and logged at `warn`; a refused call is
//! also in the audit record (reason `store_unavailable`, by `limit`), and a call let through
//! carries a [`LimitNote::StoreFailedOpen`](crate::LimitNote) in its request and response
//! extensions, which audit records (`mcp_edge.limit.note`). A call let through this way holds
//! no concurrency place. No request waits longer than the timeout, and the connection manager
//! reconnects by itself when Redis is back. A lease that cannot be renewed or given back
//! (Redis down) runs out by itself.
//!
//! # Cancel safety
//!
//! A decision is one script: applied entirely or not at all. A call dropped after the script
//! was sent may still have taken its cost.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use sha2::{Digest, Sha256};

use super::decide::{Limiter, Permit, RemoteTake};
use super::future::{RemoteDecision, RemotePass};
pub use super::lease::DEFAULT_LEASE;
use super::lease::{Lease, Leases};
use super::rule::{Budget, FailPolicy};
use crate::context::LimitNote;
use crate::error::{RejectedBy, Rejection};
use crate::protocol::RequestId;
use crate::store::StoreError;
use crate::store::redis::{RedisConnection, RedisSource, bounded};

/// The default bound on one decision.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// The decision script. `KEYS[i]` is a budget; `ARGV` holds four values per key: the kind
/// (`r` rate, `q` quota, `c` concurrency places), two parameters (rate: interval in µs and
/// burst; quota: max and window in µs; places: max and lease in µs) and the cost, then the
/// call's member name for the places it takes. Returns `{1}` when every budget let the call
/// through (and takes from all of them), else `{0, i, wait_us}` for the first that did not
/// (and takes nothing). Places whose lease ran out are dropped before counting.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pending = {}
local order = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local base = (i - 1) * 4
  local kind = ARGV[base + 1]
  local a = tonumber(ARGV[base + 2])
  local b = tonumber(ARGV[base + 3])
  local cost = tonumber(ARGV[base + 4])
  local p = pending[key]
  if kind == 'r' then
    local tat
    if p then tat = p.v else tat = tonumber(redis.call('GET', key)) or 0 end
    if tat < now then tat = now end
    if cost > b then cost = b end
    local new_tat = tat + cost * a
    local ahead = new_tat - now
    if ahead > a * b then return {0, i, ahead - a * b} end
    if not p then p = {kind = 'r'}; pending[key] = p; order[#order + 1] = key end
    p.v = new_tat
    p.ttl = ahead
  elseif kind == 'c' then
    if not p then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
      if redis.call('ZCARD', key) >= a then return {0, i, 1000000} end
      p = {kind = 'c'}; pending[key] = p; order[#order + 1] = key
    end
    p.ttl = b
  else
    local index = math.floor(now / b)
    local used
    if p then used = p.v else
      local h = redis.call('HMGET', key, 'w', 'u')
      if tonumber(h[1]) == index then used = tonumber(h[2]) or 0 else used = 0 end
    end
    if used + cost > a then return {0, i, (index + 1) * b - now} end
    if not p then p = {kind = 'q'}; pending[key] = p; order[#order + 1] = key end
    p.v = used + cost
    p.w = index
    p.ttl = (index + 1) * b - now
  end
end
for _, key in ipairs(order) do
  local p = pending[key]
  local ms = math.ceil(p.ttl / 1000) + 1
  if p.kind == 'r' then
    redis.call('SET', key, string.format('%.0f', p.v), 'PX', ms)
  elseif p.kind == 'c' then
    redis.call('ZADD', key, string.format('%.0f', now + p.ttl), ARGV[#KEYS * 4 + 1])
    redis.call('PEXPIRE', key, ms)
  else
    redis.call('HSET', key, 'w', string.format('%.0f', p.w), 'u', string.format('%.0f', p.v))
    redis.call('PEXPIRE', key, ms)
  end
end
return {1}
";

/// Rate, quota and concurrency budgets in Redis; see the [module docs](self). Cheap to clone.
#[derive(Clone)]
pub struct RedisLimits {
    conn: RedisConnection,
    shared: Arc<Shared>,
}

struct Shared {
    prefix: Box<str>,
    timeout: Duration,
    script: Script,
    /// The concurrency places this instance holds (built on first use, with the lease).
    leases: std::sync::OnceLock<Arc<Leases>>,
    lease: Duration,
}

impl std::fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimits")
            .field("prefix", &self.shared.prefix)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

/// Configures [`RedisLimits`].
#[derive(Debug, Clone)]
pub struct RedisLimitsBuilder {
    source: RedisSource,
    prefix: String,
    timeout: Duration,
    lease: Duration,
}

impl RedisLimits {
    /// Budgets in the Redis at `url`, with the default prefix (`mcp-edge`) and timeout; see
    /// [`RedisLimitsBuilder::open`].
    pub fn open(url: impl Into<RedisSource>) -> Result<RedisLimits, StoreError> {
        RedisLimits::builder(url).open()
    }

    /// A builder for the Redis at `source`: a URL (`redis://`, `rediss://` for TLS), a
    /// connection manager, or a cluster (see [`RedisSource`]).
    pub fn builder(source: impl Into<RedisSource>) -> RedisLimitsBuilder {
        RedisLimitsBuilder {
            source: source.into(),
            prefix: "mcp-edge".to_owned(),
            timeout: DEFAULT_REDIS_TIMEOUT,
            lease: DEFAULT_LEASE,
        }
    }

    /// The concurrency places this instance holds in Redis now (renewed while their calls
    /// and streams live).
    pub fn held_places(&self) -> usize {
        self.shared.leases.get().map_or(0, |l| l.held())
    }

    fn leases(&self) -> &Arc<Leases> {
        self.shared
            .leases
            .get_or_init(|| Arc::new(Leases::new(self.shared.lease)))
    }

    /// The Redis key of one budget.
    fn key(&self, rule: &str, take: &RemoteTake) -> String {
        let tag = hex(&Sha256::digest(take.tag.as_bytes())[..12]);
        let mut hasher = Sha256::new();
        hasher.update(rule.as_bytes());
        hasher.update([0x1f]);
        hasher.update(take.key.as_bytes());
        let key = hex(&hasher.finalize()[..16]);
        format!("{}:limit:{{{tag}}}:{key}", self.shared.prefix)
    }

    /// One script call for the takes of one caller: `Ok(None)` when all passed, else the
    /// index of the refusing take and the wait.
    async fn run(
        &self,
        keys: &[String],
        takes: &[&RemoteTake],
        member: &str,
    ) -> Result<Option<(usize, Duration)>, StoreError> {
        let mut invocation = self.shared.script.prepare_invoke();
        for (key, take) in keys.iter().zip(takes) {
            invocation.key(key);
            let (kind, a, b) = match take.budget {
                Budget::Rate { interval, burst } => {
                    ("r", interval.as_micros().max(1) as u64, u64::from(burst))
                }
                Budget::Quota { max, window } => ("q", max, window.as_micros().max(1) as u64),
                Budget::Concurrent { max } => ("c", u64::from(max), self.leases().lease_us()),
            };
            invocation.arg(kind).arg(a).arg(b).arg(take.cost);
        }
        invocation.arg(member);
        let mut conn = self.conn.clone();
        let answer: Vec<i64> =
            bounded(self.shared.timeout, invocation.invoke_async(&mut conn)).await?;
        match answer.as_slice() {
            [1, ..] => Ok(None),
            [0, index, wait] => {
                let index = usize::try_from(*index).unwrap_or(1).saturating_sub(1);
                Ok(Some((index, Duration::from_micros((*wait).max(0) as u64))))
            }
            _ => Err(StoreError::new(crate::store::StoreErrorKind::Corrupt)),
        }
    }

    /// Decides `takes` (grouped by caller, one script per group) for a call with JSON-RPC `id`.
    pub(crate) fn decide(
        &self,
        limiter: Arc<Limiter>,
        takes: Vec<RemoteTake>,
        id: Option<RequestId>,
    ) -> RemoteDecision {
        let this = self.clone();
        Box::pin(async move {
            // The places this call takes share one member name (one per budget).
            let places = takes
                .iter()
                .any(|t| matches!(t.budget, Budget::Concurrent { .. }));
            let (member_id, member) = if places {
                this.leases().member()
            } else {
                (0, String::new())
            };
            let mut pass = RemotePass::default();
            let mut groups: Vec<(&str, Vec<&RemoteTake>)> = Vec::new();
            for take in &takes {
                match groups.iter_mut().find(|(tag, _)| *tag == take.tag) {
                    Some((_, group)) => group.push(take),
                    None => groups.push((&take.tag, vec![take])),
                }
            }
            for (_, group) in &groups {
                let keys: Vec<String> = group
                    .iter()
                    .map(|take| this.key(&limiter.names[take.rule], take))
                    .collect();
                match this.run(&keys, group, &member).await {
                    Ok(None) => {
                        for (key, take) in keys.into_iter().zip(group) {
                            if matches!(take.budget, Budget::Concurrent { .. }) {
                                // Held from now on: renewed while the call lives, given back
                                // when it ends (the places of an earlier group included, if a
                                // later group refuses).
                                pass.permits.push(Permit::Remote(Lease::held(
                                    this.leases(),
                                    Arc::downgrade(&this.shared),
                                    member_id,
                                    key.into(),
                                    &this.conn,
                                )));
                            }
                        }
                    }
                    Ok(Some((index, wait))) => {
                        let take = group.get(index).copied().unwrap_or(group[0]);
                        return Err(limiter.remote_refusal(take, id, wait));
                    }
                    Err(error) => {
                        let closed = group
                            .iter()
                            .any(|t| limiter.rules[t.rule].fail == FailPolicy::Closed);
                        return limiter.store_failed(&error, closed, id).map(|note| {
                            pass.note = note;
                            pass
                        });
                    }
                }
            }
            Ok(pass)
        })
    }
}

impl Limiter {
    /// The answer when the shared store failed: a 503 if a rule fails closed, else through
    /// with a [`LimitNote`] for audit and metrics.
    fn store_failed(
        &self,
        error: &StoreError,
        closed: bool,
        id: Option<RequestId>,
    ) -> Result<Option<LimitNote>, Rejection> {
        use std::sync::atomic::Ordering;
        if closed {
            self.counters
                .store_failed_closed
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "limit store failed: call refused (fail closed)");
            Err(Rejection::store_unavailable(RejectedBy::Limit, id)
                .with_message("Service Unavailable: the limit store is unavailable"))
        } else {
            self.counters
                .store_failed_open
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, "limit store failed: call let through (fail open)");
            crate::observe::metrics::limit_fail_open();
            Ok(Some(LimitNote::StoreFailedOpen))
        }
    }
}

impl RedisLimitsBuilder {
    /// Sets the key prefix (default `mcp-edge`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bounds every decision and connection attempt (default 250 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The lease of a concurrency place (default 30 s): this instance renews the places it
    /// holds every third of it while their calls and streams live; the places of an instance
    /// that crashed or froze come back to the others once it runs out.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Builds the store without connecting: the connection is made on first use, so a Redis
    /// that is down at start-up is a store failure (each rule's policy), not a failed start.
    /// Fails only on a bad URL. Must be called inside a tokio runtime.
    pub fn open(self) -> Result<RedisLimits, StoreError> {
        let conn = self.source.connect(self.timeout)?;
        Ok(RedisLimits {
            conn,
            shared: Arc::new(Shared {
                prefix: self.prefix.into(),
                timeout: self.timeout,
                script: Script::new(SCRIPT),
                leases: std::sync::OnceLock::new(),
                lease: self.lease,
            }),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
