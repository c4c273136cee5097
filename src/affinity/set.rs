use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use super::Replica;
use crate::observe::metrics::ReplicaGauges;

/// The replicas behind an [`AffinityRouter`](super::AffinityRouter), changeable at runtime.
///
/// Cloning gives another handle to the same set: keep one to add and remove replicas while
/// the router runs. Adding a replica never moves an existing session. Removing one makes its
/// sessions answer 404 (R28), or move, when the router is configured to reassign them.
///
/// ```
/// use mcp_edge::Replica;
/// use mcp_edge::affinity::ReplicaSet;
///
/// let replicas = ReplicaSet::new();
/// replicas.add(Replica::new("a"), tower::service_fn(|_: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// }));
/// assert_eq!(replicas.len(), 1);
/// assert!(replicas.remove("a"));
/// assert!(replicas.is_empty());
/// ```
pub struct ReplicaSet<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    /// Copy-on-write: readers clone one `Arc` (or work under the read lock), writers swap.
    entries: RwLock<Arc<[Arc<Entry<S>>]>>,
    rng: AtomicU64,
    epoch: Instant,
}

/// One replica: its service and its load.
pub(crate) struct Entry<S> {
    pub(crate) replica: Replica,
    pub(crate) service: S,
    pub(crate) load: Arc<Load>,
}

/// A replica's live counters, shared with the response bodies it serves.
#[derive(Debug, Default)]
pub(crate) struct Load {
    in_flight: AtomicUsize,
    failures: AtomicU32,
    /// Milliseconds since the set's epoch until which the replica takes no new work; 0 = none.
    ejected_until: AtomicU64,
    /// The last failure proved the replica down (its connection was refused, or a health
    /// probe failed), not merely slow or cut off: its sessions are gone.
    down: AtomicBool,
    gauges: ReplicaGauges,
}

impl Load {
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.gauges.in_flight(1.0);
        InFlight(Arc::clone(self))
    }

    fn is_available(&self, now_ms: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) <= now_ms
    }

    /// Whether the last failure proved the replica down; see [`ReplicaSet::mark_down`].
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }
}

/// One request (or one open response body) counted against a replica until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Load>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.gauges.in_flight(-1.0);
    }
}

/// How long a replica that failed to connect is left out: `base` after the first failure,
/// doubling with each consecutive failure, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first ejection period.
    pub base: Duration,
    /// The longest ejection period.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl<S> ReplicaSet<S> {
    /// An empty set.
    pub fn new() -> Self {
        ReplicaSet {
            shared: Arc::new(Shared {
                entries: RwLock::new(Arc::from(Vec::new())),
                rng: AtomicU64::new(seed()),
                epoch: Instant::now(),
            }),
        }
    }

    /// Adds a replica, or replaces the service of the one with the same id (its sessions stay
    /// pinned to it). Returns whether it replaced one.
    pub fn add(&self, replica: Replica, service: S) -> bool {
        let mut entries = self
            .shared
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next: Vec<Arc<Entry<S>>> = Vec::with_capacity(entries.len() + 1);
        let mut replaced = false;
        let entry = Arc::new(Entry {
            load: Arc::new(Load {
                gauges: ReplicaGauges::new(replica.id()),
                ..Load::default()
            }),
            replica,
            service,
        });
        for existing in entries.iter() {
            if existing.replica == entry.replica {
                replaced = true;
                next.push(Arc::clone(&entry));
            } else {
                next.push(Arc::clone(existing));
            }
        }
        if !replaced {
            next.push(entry);
        }
        *entries = Arc::from(next);
        replaced
    }

    /// Removes the replica with this id. Requests already sent to it finish; its sessions
    /// then answer 404 (or move, see [`OnReplicaGone`](super::OnReplicaGone)). Returns
    /// whether it was there.
    pub fn remove(&self, id: &str) -> bool {
        let mut entries = self
            .shared
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let before = entries.len();
        let next: Vec<Arc<Entry<S>>> = entries
            .iter()
            .filter(|entry| entry.replica.id() != id)
            .cloned()
            .collect();
        let removed = next.len() != before;
        *entries = Arc::from(next);
        removed
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each replica with its current load, in the order they were added.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        let now = self.now_ms();
        self.snapshot()
            .iter()
            .map(|entry| ReplicaStatus {
                replica: entry.replica.clone(),
                in_flight: entry.load.in_flight(),
                ejected: !entry.load.is_available(now),
                down: entry.load.is_down(),
            })
            .collect()
    }

    /// The replica a new session would go to now: the less loaded of two picked at random
    /// among those not ejected (what the router decides for every new session and modern
    /// request). `None` when none is available.
    pub fn least_loaded_replica(&self) -> Option<Replica> {
        self.least_loaded().map(|entry| entry.replica.clone())
    }

    fn snapshot(&self) -> Arc<[Arc<Entry<S>>]> {
        Arc::clone(
            &self
                .shared
                .entries
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn with_entries<R>(&self, f: impl FnOnce(&[Arc<Entry<S>>]) -> R) -> R {
        let entries = self
            .shared
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        f(&entries)
    }

    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.shared.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn random(&self) -> u64 {
        let state = self
            .shared
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        mix(state)
    }

    /// The less loaded of two replicas picked at random among those not ejected (power of
    /// two choices on in-flight requests and open streams). `None` when none is available.
    pub(crate) fn least_loaded(&self) -> Option<Arc<Entry<S>>> {
        let now = self.now_ms();
        let random = self.random();
        self.with_entries(|entries| {
            let n = entries.len();
            if n == 0 {
                return None;
            }
            let available = |i: usize| entries[i].load.is_available(now);
            let first_from = |start: usize, skip: Option<usize>| {
                (0..n)
                    .map(|k| (start + k) % n)
                    .find(|&i| Some(i) != skip && available(i))
            };
            let a = first_from((random as u32 as usize) % n, None)?;
            let Some(b) = first_from(((random >> 32) as usize) % n, Some(a)) else {
                return Some(Arc::clone(&entries[a]));
            };
            let (load_a, load_b) = (entries[a].load.in_flight(), entries[b].load.in_flight());
            let pick = if load_b < load_a { b } else { a };
            Some(Arc::clone(&entries[pick]))
        })
    }

    /// The replica whose tag is `tag`, and whether it is available.
    pub(crate) fn by_tag(&self, tag: u64) -> Option<(Arc<Entry<S>>, bool)> {
        self.find(|replica| replica.tag() == tag)
    }

    /// The replica with this id, and whether it is available.
    pub(crate) fn by_id(&self, id: &str) -> Option<(Arc<Entry<S>>, bool)> {
        self.find(|replica| replica.id() == id)
    }

    /// The first replica `is` accepts, and whether it is available.
    fn find(&self, is: impl Fn(&Replica) -> bool) -> Option<(Arc<Entry<S>>, bool)> {
        let now = self.now_ms();
        self.with_entries(|entries| {
            entries
                .iter()
                .find(|entry| is(&entry.replica))
                .map(|entry| (Arc::clone(entry), entry.load.is_available(now)))
        })
    }

    /// The available replica with the highest rendezvous score for `key`: every gateway
    /// instance picks the same one for the same key and the same set, and removing a replica
    /// moves only the keys that were on it.
    pub(crate) fn rendezvous(&self, key: &[u8]) -> Option<Arc<Entry<S>>> {
        let now = self.now_ms();
        let key_hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        self.with_entries(|entries| {
            entries
                .iter()
                .filter(|entry| entry.load.is_available(now))
                .max_by_key(|entry| mix(key_hash ^ entry.replica.tag()))
                .cloned()
        })
    }

    /// Time until the first ejected replica comes back, when every replica is ejected.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        let now = self.now_ms();
        self.with_entries(|entries| {
            entries
                .iter()
                .map(|entry| entry.load.ejected_until.load(Ordering::Relaxed))
                .min()
                .map(|until| Duration::from_millis(until.saturating_sub(now)))
        })
    }

    /// Records a failure that does not prove the replica down (a connect timeout, a connection
    /// lost mid-request): it takes no new sessions for a back-off period, and the sessions
    /// it holds still go to it.
    pub(crate) fn eject(&self, load: &Load, backoff: Backoff) {
        self.fail(load, backoff, false);
    }

    /// Records proof that the replica is down (its connection was refused, or a health probe
    /// failed): it takes no new work for a back-off period, and the sessions it holds answer
    /// 404 (R28) until it is back.
    pub(crate) fn down(&self, load: &Load, backoff: Backoff) {
        self.fail(load, backoff, true);
    }

    /// One failure: the ejection starts or is renewed (longer with each failure in a row);
    /// proof of death sticks until the replica answers again.
    fn fail(&self, load: &Load, backoff: Backoff, down: bool) {
        if down {
            load.down.store(true, Ordering::Relaxed);
        }
        let now = self.now_ms();
        let new_ejection = load.is_available(now);
        let failures = load
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let shift = (failures - 1).min(16);
        let period = backoff.base.saturating_mul(1 << shift).min(backoff.max);
        let until = now
            .saturating_add(u64::try_from(period.as_millis()).unwrap_or(u64::MAX))
            .max(1);
        load.ejected_until.store(until, Ordering::Relaxed);
        if new_ejection {
            // Counted and logged once per ejection, not per renewal (a failing health probe
            // renews it every interval).
            load.gauges.health(false);
            tracing::warn!(
                ?period,
                failures,
                down = load.is_down(),
                "replica ejected after a connection failure"
            );
        }
    }

    /// Records a response: the failure streak ends.
    pub(crate) fn recovered(&self, load: &Load) {
        if load.failures.load(Ordering::Relaxed) != 0 {
            load.failures.store(0, Ordering::Relaxed);
            load.down.store(false, Ordering::Relaxed);
            load.ejected_until.store(0, Ordering::Relaxed);
            load.gauges.health(true);
        }
    }

    /// Marks the replica with this id down, as a health checker that found it unreachable
    /// does: it takes no new work for a back-off period (`backoff`, growing while it stays
    /// down) and its sessions answer 404, so their clients start over on a live replica
    /// (R28). Returns whether it is in the set.
    pub fn mark_down(&self, id: &str, backoff: Backoff) -> bool {
        self.by_id(id)
            .map(|(entry, _)| self.down(&entry.load, backoff))
            .is_some()
    }

    /// Marks the replica with this id up again, as a health checker that reached it does: it
    /// takes new sessions at once. Returns whether it is in the set.
    pub fn mark_up(&self, id: &str) -> bool {
        self.by_id(id)
            .map(|(entry, _)| self.recovered(&entry.load))
            .is_some()
    }
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0x853c_49e6_748f_ea9b;
    }
    u64::from_ne_bytes(bytes)
}

impl<S> Clone for ReplicaSet<S> {
    fn clone(&self) -> Self {
        ReplicaSet {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> Default for ReplicaSet<S> {
    fn default() -> Self {
        ReplicaSet::new()
    }
}

impl<S> fmt::Debug for ReplicaSet<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.status()).finish()
    }
}

/// A replica and its load at one moment, from [`ReplicaSet::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    replica: Replica,
    in_flight: usize,
    ejected: bool,
    down: bool,
}

impl ReplicaStatus {
    /// The replica.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }
    /// Requests in flight plus response bodies (SSE streams) still open.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
    /// Whether it is ejected after connection failures and takes no new work now.
    pub fn is_ejected(&self) -> bool {
        self.ejected
    }
    /// Whether its last failure proved it down (connection refused, or a failed health
    /// probe): while it is also ejected, its sessions answer 404.
    pub fn is_down(&self) -> bool {
        self.down
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> ReplicaSet<()> {
        let set = ReplicaSet::new();
        for id in ids {
            set.add(Replica::new(*id), ());
        }
        set
    }

    #[test]
    fn least_loaded_prefers_the_idle_replica() {
        let set = set(&["a", "b"]);
        let busy = set.by_id("a").unwrap().0;
        let _guards: Vec<_> = (0..5).map(|_| busy.load.start()).collect();
        for _ in 0..100 {
            assert_eq!(set.least_loaded().unwrap().replica.id(), "b");
        }
        drop(_guards);
        assert_eq!(busy.load.in_flight(), 0);
    }

    #[test]
    fn least_loaded_spreads_over_idle_replicas() {
        let set = set(&["a", "b", "c"]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(set.least_loaded().unwrap().replica.id().to_owned());
        }
        assert_eq!(seen.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn ejected_replicas_take_no_new_work_until_the_backoff_ends() {
        let set = set(&["a", "b"]);
        let a = set.by_id("a").unwrap().0;
        let backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(4),
        };
        set.eject(&a.load, backoff);
        assert!(!set.by_id("a").unwrap().1);
        for _ in 0..50 {
            assert_eq!(set.least_loaded().unwrap().replica.id(), "b");
        }
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(set.by_id("a").unwrap().1);
        set.eject(&a.load, backoff);
        set.eject(&a.load, backoff);
        set.eject(&a.load, backoff);
        // 4 failures: 8 s, capped at 4 s.
        tokio::time::advance(Duration::from_millis(3990)).await;
        assert!(!set.by_id("a").unwrap().1);
        tokio::time::advance(Duration::from_millis(20)).await;
        assert!(set.by_id("a").unwrap().1);
        set.recovered(&a.load);
        set.eject(&a.load, backoff);
        assert_eq!(set.retry_after(), Some(Duration::ZERO), "b is available");
        let b = set.by_id("b").unwrap().0;
        set.eject(&b.load, backoff);
        assert!(set.least_loaded().is_none());
        assert_eq!(set.retry_after(), Some(Duration::from_secs(1)));
    }

    #[test]
    fn rendezvous_is_stable_and_moves_only_the_removed_replicas_keys() {
        let set = set(&["a", "b", "c"]);
        let keys: Vec<String> = (0..300).map(|i| format!("session-{i}")).collect();
        let before: Vec<String> = keys
            .iter()
            .map(|k| {
                set.rendezvous(k.as_bytes())
                    .unwrap()
                    .replica
                    .id()
                    .to_owned()
            })
            .collect();
        for id in ["a", "b", "c"] {
            assert!(before.iter().any(|r| r == id));
        }
        set.remove("b");
        for (key, was) in keys.iter().zip(&before) {
            let now = set
                .rendezvous(key.as_bytes())
                .unwrap()
                .replica
                .id()
                .to_owned();
            if was != "b" {
                assert_eq!(&now, was);
            }
        }
    }

    #[test]
    fn add_replaces_same_id_and_remove_reports() {
        let set = set(&["a"]);
        assert!(set.add(Replica::new("a"), ()));
        assert!(!set.add(Replica::new("b"), ()));
        assert_eq!(set.len(), 2);
        assert!(!set.remove("zzz"));
        let status = set.status();
        assert_eq!(status[0].replica().id(), "a");
        assert_eq!(status[0].in_flight(), 0);
        assert!(!status[0].is_ejected());
    }
}
