//! The local backend: budgets in memory, in 64 shards each behind its own short lock, keyed
//! by a 64-bit keyed hash of (rule, key parts).
//!
//! One decision locks one shard for a few arithmetic operations: no global lock, no
//! allocation once a key is known, no background task. Entries whose state has run out
//! (a rate back to full, a past quota window, no stream open) are swept out of a shard when it
//! doubles in size, so memory follows the number of active callers.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

const SHARDS: usize = 64;
/// A shard is swept when it holds this many entries (then twice what survived).
const FIRST_SWEEP: usize = 1024;

/// The state of one budget.
#[derive(Debug, Clone, Copy)]
enum Cell {
    /// GCRA: the theoretical arrival time, in nanoseconds since the store's epoch.
    Tat(u64),
    /// A quota: the window's index and the units used in it.
    Window { index: u64, used: u64 },
    /// Calls or streams in flight.
    Held(u32),
}

/// The keys are already keyed hashes: hashing them again would only cost time.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = HashMap<u64, Cell, BuildHasherDefault<PassThrough>>;

#[derive(Debug)]
struct Shard {
    map: Map,
    sweep_at: usize,
}

/// Budgets in memory; see the [module docs](self). Shared through `Arc`.
#[derive(Debug)]
pub(crate) struct LocalStore {
    shards: Box<[Mutex<Shard>]>,
    epoch: Instant,
    /// Nanoseconds since the Unix epoch at `epoch`: quota windows line up with wall-clock
    /// multiples, as they do in Redis.
    unix_offset: u64,
}

impl LocalStore {
    pub(crate) fn new() -> Arc<Self> {
        let unix_offset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Arc::new(LocalStore {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: Map::default(),
                        sweep_at: FIRST_SWEEP,
                    })
                })
                .collect(),
            epoch: Instant::now(),
            unix_offset,
        })
    }

    /// Nanoseconds since the store's epoch: read once per decision, passed to every take.
    pub(crate) fn now(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.epoch)
            .as_nanos() as u64
    }

    fn shard(&self, key: u64) -> MutexGuard<'_, Shard> {
        // The high bits pick the shard; the map uses all of them.
        let index = (key >> 58) as usize % SHARDS;
        // A panic while the lock was held left plain numbers behind: still usable.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// GCRA: takes `cost` units at one per `interval`, `burst` at once; on refusal, how long
    /// until the same call would pass.
    pub(crate) fn rate(
        &self,
        key: u64,
        interval: Duration,
        burst: u32,
        cost: u32,
        now: u64,
    ) -> Result<(), Duration> {
        let interval = interval.as_nanos() as u64;
        let cost = u64::from(cost.min(burst));
        let limit = interval.saturating_mul(u64::from(burst));
        let mut shard = self.shard(key);
        let cell = shard.map.get_mut(&key);
        let tat = match cell.as_deref() {
            Some(Cell::Tat(tat)) => (*tat).max(now),
            _ => now,
        };
        let new_tat = tat.saturating_add(interval.saturating_mul(cost));
        let ahead = new_tat - now;
        if ahead > limit {
            return Err(Duration::from_nanos(ahead - limit));
        }
        match cell {
            // One lookup for a known key.
            Some(cell) => *cell = Cell::Tat(new_tat),
            None => shard.insert(key, Cell::Tat(new_tat), now),
        }
        Ok(())
    }

    /// Gives back what [`rate`](LocalStore::rate) took (another rule refused the call).
    pub(crate) fn refund_rate(&self, key: u64, interval: Duration, burst: u32, cost: u32) {
        let back = (interval.as_nanos() as u64).saturating_mul(u64::from(cost.min(burst)));
        let mut shard = self.shard(key);
        if let Some(Cell::Tat(tat)) = shard.map.get_mut(&key) {
            *tat = tat.saturating_sub(back);
        }
    }

    /// A fixed-window quota: takes `cost` of `max` units in the current window.
    pub(crate) fn quota(
        &self,
        key: u64,
        max: u64,
        window: Duration,
        cost: u32,
        now: u64,
    ) -> Result<(), Duration> {
        let wall = now.saturating_add(self.unix_offset);
        let window = (window.as_nanos() as u64).max(1);
        let index = wall / window;
        let mut shard = self.shard(key);
        let used = match shard.map.get(&key) {
            Some(Cell::Window { index: i, used }) if *i == index => *used,
            _ => 0,
        };
        let used = used.saturating_add(u64::from(cost));
        if used > max {
            return Err(Duration::from_nanos((index + 1) * window - wall));
        }
        shard.insert(key, Cell::Window { index, used }, now);
        Ok(())
    }

    /// Gives back what [`quota`](LocalStore::quota) took, if its window is still current.
    pub(crate) fn refund_quota(&self, key: u64, cost: u32) {
        let mut shard = self.shard(key);
        if let Some(Cell::Window { used, .. }) = shard.map.get_mut(&key) {
            *used = used.saturating_sub(u64::from(cost));
        }
    }

    /// Takes one of `max` places; `false` when all are held.
    pub(crate) fn acquire(&self, key: u64, max: u32) -> bool {
        let now = self.now();
        let mut shard = self.shard(key);
        let held = match shard.map.get(&key) {
            Some(Cell::Held(n)) => *n,
            _ => 0,
        };
        if held >= max {
            return false;
        }
        shard.insert(key, Cell::Held(held + 1), now);
        true
    }

    /// Gives a place back.
    pub(crate) fn release(&self, key: u64) {
        let mut shard = self.shard(key);
        if let Some(Cell::Held(n)) = shard.map.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                shard.map.remove(&key);
            }
        }
    }

    /// Places held under `key` (tests and metrics).
    #[cfg(test)]
    pub(crate) fn held(&self, key: u64) -> u32 {
        match self.shard(key).map.get(&key) {
            Some(Cell::Held(n)) => *n,
            _ => 0,
        }
    }

    /// Entries across all shards (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        (0..SHARDS)
            .map(|i| {
                self.shards[i]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .map
                    .len()
            })
            .sum()
    }
}

impl Shard {
    fn insert(&mut self, key: u64, cell: Cell, now: u64) {
        if self.map.len() >= self.sweep_at && !self.map.contains_key(&key) {
            // Whatever has run out would read as "no entry" anyway.
            self.map.retain(|_, cell| match *cell {
                Cell::Tat(tat) => tat > now,
                Cell::Window { .. } | Cell::Held(_) => true,
            });
            self.sweep_at = (self.map.len() * 2).max(FIRST_SWEEP);
        }
        self.map.insert(key, cell);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn gcra_lets_the_burst_through_then_one_per_interval() {
        let store = LocalStore::new();
        // 2 per second, burst 3.
        for _ in 0..3 {
            store.rate(1, SECOND / 2, 3, 1, store.now()).unwrap();
        }
        let wait = store.rate(1, SECOND / 2, 3, 1, store.now()).unwrap_err();
        assert_eq!(wait, SECOND / 2);
        tokio::time::advance(wait).await;
        store.rate(1, SECOND / 2, 3, 1, store.now()).unwrap();
        assert!(store.rate(1, SECOND / 2, 3, 1, store.now()).is_err());
        // Another key is untouched.
        store.rate(2, SECOND / 2, 3, 1, store.now()).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn gcra_costs_and_refunds() {
        let store = LocalStore::new();
        store.rate(1, SECOND, 10, 7, store.now()).unwrap();
        let wait = store.rate(1, SECOND, 10, 4, store.now()).unwrap_err();
        assert_eq!(wait, SECOND);
        store.refund_rate(1, SECOND, 10, 7);
        store.rate(1, SECOND, 10, 10, store.now()).unwrap();
        // A cost above the burst counts as the burst: it passes once the budget is full.
        tokio::time::advance(10 * SECOND).await;
        store.rate(1, SECOND, 10, 50, store.now()).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn quota_resets_at_the_window_edge() {
        let store = LocalStore::new();
        store.quota(1, 2, 60 * SECOND, 1, store.now()).unwrap();
        store.quota(1, 2, 60 * SECOND, 1, store.now()).unwrap();
        let wait = store.quota(1, 2, 60 * SECOND, 1, store.now()).unwrap_err();
        assert!(wait <= 60 * SECOND && !wait.is_zero());
        store.refund_quota(1, 1);
        store.quota(1, 2, 60 * SECOND, 1, store.now()).unwrap();
        tokio::time::advance(wait).await;
        store.quota(1, 2, 60 * SECOND, 2, store.now()).unwrap();
    }

    #[test]
    fn places_are_held_and_given_back() {
        let store = LocalStore::new();
        assert!(store.acquire(9, 2) && store.acquire(9, 2));
        assert!(!store.acquire(9, 2));
        store.release(9);
        assert_eq!(store.held(9), 1);
        assert!(store.acquire(9, 2));
        store.release(9);
        store.release(9);
        assert_eq!(store.held(9), 0);
        assert_eq!(store.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn spent_rates_are_swept_when_a_shard_fills() {
        let store = LocalStore::new();
        // All in shard 0 (high bits zero).
        for key in 0..(FIRST_SWEEP as u64) {
            store.rate(key, SECOND, 1, 1, store.now()).unwrap();
        }
        tokio::time::advance(2 * SECOND).await;
        store.rate(1 << 40, SECOND, 1, 1, store.now()).unwrap();
        assert_eq!(store.len(), 1);
    }
}
