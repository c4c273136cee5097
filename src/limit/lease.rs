//! Concurrency places in Redis: leases held by this instance, renewed while their streams
//! live, given back when they end (feature `redis`).
//!
//! A place is a member of a sorted set per budget (`…:<key digest>`, hash-tagged like the
//! rate keys), scored with the time its lease runs out (Redis's clock). The decision script
//! drops the run-out members before it counts, so a crashed or frozen instance's places come
//! back after at most one lease. While a place is held, one task per [`RedisLimits`]
//! renews every lease of this instance every third of a lease (one script call per budget);
//! a place whose call ends, fails or whose client leaves is removed at once (`ZREM`, sent by
//! a spawned task since a body is dropped synchronously).
//!
//! [`RedisLimits`]: super::RedisLimits

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::store::redis::{RedisConnection, bounded};
use redis::Script;

/// The default lease of a concurrency place in Redis: 30 s, renewed every 10 s.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Renews the given members of one budget: `KEYS[1]` the budget, `ARGV[1]` the lease in µs,
/// `ARGV[2..]` the members. Members already gone (their lease ran out) are not added back.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local lease = tonumber(ARGV[1])
local score = string.format('%.0f', now + lease)
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', score, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], math.ceil(lease / 1000) + 1)
return renewed
";

/// The leases this instance holds, shared by the [`Lease`]s and the renewal task.
pub(crate) struct Leases {
    /// This instance's part of every member (random, drawn once).
    instance: Box<str>,
    next: AtomicU64,
    pub(crate) lease: Duration,
    /// Held leases: id → budget key.
    held: Mutex<HashMap<u64, Arc<str>>>,
    renewing: AtomicBool,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("lease", &self.lease)
            .field("held", &self.lock().len())
            .finish_non_exhaustive()
    }
}

impl Leases {
    pub(crate) fn new(lease: Duration) -> Self {
        let mut instance = [0u8; 8];
        // A failed draw leaves zeros: the counter still tells this instance's leases apart,
        // and another instance with the same zeros would share member names only by chance.
        let _ = getrandom::fill(&mut instance);
        Leases {
            instance: instance.iter().map(|b| format!("{b:02x}")).collect(),
            next: AtomicU64::new(0),
            lease: lease.max(Duration::from_millis(30)),
            held: Mutex::default(),
            renewing: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<str>>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh member name for the places one call takes.
    pub(crate) fn member(&self) -> (u64, String) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        (id, self.member_of(id))
    }

    fn member_of(&self, id: u64) -> String {
        format!("{}:{id}", self.instance)
    }

    /// The lease in µs, as the scripts take it.
    pub(crate) fn lease_us(&self) -> u64 {
        self.lease.as_micros() as u64
    }

    /// How many places this instance holds now (tests, metrics).
    pub(crate) fn held(&self) -> usize {
        self.lock().len()
    }
}

/// One place held in a Redis concurrency budget; renewed while it lives, removed on drop.
pub(crate) struct Lease {
    id: u64,
    key: Arc<str>,
    leases: Arc<Leases>,
    conn: RedisConnection,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("id", &self.id).finish()
    }
}

impl Lease {
    /// Registers the place `id` that the decision script just added to `key`, and makes sure
    /// the renewal task runs (it stops once `owner`, the store, is gone).
    pub(crate) fn held<T: Send + Sync + 'static>(
        leases: &Arc<Leases>,
        owner: Weak<T>,
        id: u64,
        key: Arc<str>,
        conn: &RedisConnection,
    ) -> Lease {
        leases.lock().insert(id, Arc::clone(&key));
        if !leases.renewing.swap(true, Ordering::AcqRel)
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(renew(Arc::downgrade(leases), owner, conn.clone()));
        }
        Lease {
            id,
            key,
            leases: Arc::clone(leases),
            conn: conn.clone(),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.leases.lock().remove(&self.id);
        let member = self.leases.member_of(self.id);
        let key = Arc::clone(&self.key);
        let mut conn = self.conn.clone();
        let timeout = self.leases.lease;
        // Without a runtime the lease simply runs out.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let mut command = redis::cmd("ZREM");
                command.arg(&*key).arg(&member);
                let removal = command.query_async::<i64>(&mut conn);
                if let Err(error) = bounded(timeout, removal).await {
                    tracing::debug!(%error, "limit: a lease was not given back (it runs out)");
                }
            });
        }
    }
}

/// Renews every held lease each third of a lease, until the store (`owner`) is dropped.
async fn renew<T>(leases: Weak<Leases>, owner: Weak<T>, mut conn: RedisConnection) {
    let script = Script::new(RENEW);
    loop {
        let Some(lease) = leases.upgrade().map(|l| l.lease) else {
            return;
        };
        tokio::time::sleep(lease / 3).await;
        let (Some(leases), Some(_owner)) = (leases.upgrade(), owner.upgrade()) else {
            return;
        };
        let mut by_key: HashMap<Arc<str>, Vec<String>> = HashMap::new();
        for (id, key) in leases.lock().iter() {
            by_key
                .entry(Arc::clone(key))
                .or_default()
                .push(leases.member_of(*id));
        }
        let lease_us = leases.lease_us();
        drop(leases);
        for (key, members) in by_key {
            let mut invocation = script.key(&*key);
            invocation.arg(lease_us);
            for member in &members {
                invocation.arg(member);
            }
            match bounded(lease / 3, invocation.invoke_async::<i64>(&mut conn)).await {
                Ok(renewed) if renewed < members.len() as i64 => {
                    tracing::debug!(
                        lost = members.len() as i64 - renewed,
                        "limit: leases ran out before renewal"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(%error, "limit: lease renewal failed"),
            }
        }
    }
}
