//! [`PinStore`]: the pinned hashes of upstream tool definitions, and [`MemoryPinStore`].
//!
//! An aggregator pins the hash of each upstream tool's definition the first time it sees it;
//! a later, different definition is a change ("rug pull", CVE-2025-54136) waiting for
//! approval. The store keeps, per upstream and tool, the pinned hash and the changed hash
//! seen since, if any. With the memory backend each aggregator process keeps its own pins;
//! with `RedisPinStore` (feature `redis`) every aggregator instance sharing the Redis agrees
//! on the first hash, sees the same changes and the same approvals, and pins survive a
//! restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::StoreFuture;

/// A tool whose definition changed since it was pinned, waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChangedTool {
    /// The upstream's name.
    pub upstream: String,
    /// The tool's name at the upstream.
    pub tool: String,
    /// SHA-256 of the pinned definition (hex).
    pub pinned: String,
    /// SHA-256 of the definition seen now (hex).
    pub seen: String,
}

impl ChangedTool {
    /// Tool `tool` of upstream `upstream`, pinned at hash `pinned`, now seen with `seen`.
    pub fn new(
        upstream: impl Into<String>,
        tool: impl Into<String>,
        pinned: impl Into<String>,
        seen: impl Into<String>,
    ) -> Self {
        ChangedTool {
            upstream: upstream.into(),
            tool: tool.into(),
            pinned: pinned.into(),
            seen: seen.into(),
        }
    }
}

/// How a definition seen now compares with its pin ([`PinStore::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PinCheck {
    /// The definition is the pinned one (or was pinned just now, seen for the first time).
    Pinned,
    /// The definition differs from the pinned one, whose hash this is; the store now records
    /// it as changed until [approved](PinStore::approve).
    Changed {
        /// SHA-256 of the pinned definition (hex).
        pinned: String,
    },
}

/// Pinned tool definitions, shared by the aggregator instances that use one store.
///
/// Hashes are opaque strings to the store (the aggregator writes SHA-256 in hex). For each
/// `(upstream, tool)` the store holds the pinned hash and, when a different definition was
/// seen since, that hash (the change waiting for approval).
///
/// # Cancel safety
///
/// Dropping a returned future may or may not have applied the operation; each operation is
/// applied entirely or not at all.
///
/// # Failure
///
/// Every method fails with a [`StoreError`](super::StoreError) rather than panicking or
/// hanging (network backends bound each call with a timeout). What the aggregator does then
/// depends on its pin policy: see `PinPolicy` in the aggregate module.
pub trait PinStore: Send + Sync + 'static {
    /// Compares the definitions `seen` of upstream `upstream` (`(tool, hash)` pairs) with
    /// their pins, in one atomic step: a tool without a pin is pinned at the hash seen (so of
    /// several instances seeing a tool at once, one hash wins and all compare with it); a
    /// tool seen at its pinned hash has any recorded change cleared (the upstream went back);
    /// a tool seen at another hash is recorded as changed to it. Answers one [`PinCheck`] per
    /// pair, in order.
    fn check(&self, upstream: &str, seen: Vec<(String, String)>) -> StoreFuture<Vec<PinCheck>>;

    /// Pins the changed definition of `tool` of `upstream` (its recorded hash becomes the
    /// pinned one). Returns whether a change was waiting.
    fn approve(&self, upstream: &str, tool: &str) -> StoreFuture<bool>;

    /// The tools of `upstream` whose changed definition waits for approval, sorted by name.
    fn changed(&self, upstream: &str) -> StoreFuture<Vec<ChangedTool>>;
}

impl<T: PinStore + ?Sized> PinStore for Arc<T> {
    fn check(&self, upstream: &str, seen: Vec<(String, String)>) -> StoreFuture<Vec<PinCheck>> {
        (**self).check(upstream, seen)
    }
    fn approve(&self, upstream: &str, tool: &str) -> StoreFuture<bool> {
        (**self).approve(upstream, tool)
    }
    fn changed(&self, upstream: &str) -> StoreFuture<Vec<ChangedTool>> {
        (**self).changed(upstream)
    }
}

/// Pins in this process's memory: the default, for one aggregator instance (or several in
/// one process sharing a clone). Every call completes without an await point. It holds one
/// entry per tool ever seen (a few hundred bytes each) and forgets everything on restart.
///
/// Cloning is cheap and shares the pins.
#[derive(Clone, Debug, Default)]
pub struct MemoryPinStore {
    inner: Arc<Mutex<Table>>,
}

/// The pins by `(upstream, tool)`.
type Table = HashMap<(Box<str>, Box<str>), Pin>;

#[derive(Debug)]
struct Pin {
    pinned: Box<str>,
    changed: Option<Box<str>>,
}

impl MemoryPinStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn pins(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave a pin half written.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PinStore for MemoryPinStore {
    fn check(&self, upstream: &str, seen: Vec<(String, String)>) -> StoreFuture<Vec<PinCheck>> {
        let mut pins = self.pins();
        let checks = seen
            .into_iter()
            .map(|(tool, hash)| {
                let pin = pins
                    .entry((upstream.into(), tool.into()))
                    .or_insert_with(|| Pin {
                        pinned: hash.as_str().into(),
                        changed: None,
                    });
                if *pin.pinned == *hash {
                    pin.changed = None;
                    PinCheck::Pinned
                } else {
                    pin.changed = Some(hash.into());
                    PinCheck::Changed {
                        pinned: pin.pinned.to_string(),
                    }
                }
            })
            .collect();
        StoreFuture::ready(Ok(checks))
    }

    fn approve(&self, upstream: &str, tool: &str) -> StoreFuture<bool> {
        let mut pins = self.pins();
        let key = (Box::from(upstream), Box::from(tool));
        let approved = match pins.get_mut(&key) {
            Some(pin) => match pin.changed.take() {
                Some(seen) => {
                    pin.pinned = seen;
                    true
                }
                None => false,
            },
            None => false,
        };
        StoreFuture::ready(Ok(approved))
    }

    fn changed(&self, upstream: &str) -> StoreFuture<Vec<ChangedTool>> {
        let pins = self.pins();
        let mut changed: Vec<ChangedTool> = pins
            .iter()
            .filter(|((u, _), _)| **u == *upstream)
            .filter_map(|((u, tool), pin)| {
                Some(ChangedTool::new(
                    &**u,
                    &**tool,
                    &*pin.pinned,
                    &**pin.changed.as_ref()?,
                ))
            })
            .collect();
        changed.sort_by(|a, b| a.tool.cmp(&b.tool));
        StoreFuture::ready(Ok(changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(tool: &str, hash: &str) -> Vec<(String, String)> {
        vec![(tool.to_owned(), hash.to_owned())]
    }

    #[tokio::test]
    async fn first_hash_wins_a_change_waits_and_approval_pins_it() {
        let store = MemoryPinStore::new();
        assert_eq!(
            store.check("a", seen("t", "h1")).await.unwrap(),
            [PinCheck::Pinned]
        );
        let changed = store.check("a", seen("t", "h2")).await.unwrap();
        assert_eq!(
            changed,
            [PinCheck::Changed {
                pinned: "h1".into()
            }]
        );
        assert_eq!(
            store.changed("a").await.unwrap(),
            [ChangedTool::new("a", "t", "h1", "h2")]
        );
        assert!(store.changed("b").await.unwrap().is_empty());
        assert!(store.approve("a", "t").await.unwrap());
        assert!(!store.approve("a", "t").await.unwrap());
        assert_eq!(
            store.check("a", seen("t", "h2")).await.unwrap(),
            [PinCheck::Pinned]
        );
        assert!(store.changed("a").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn going_back_to_the_pinned_definition_clears_the_change() {
        let store = MemoryPinStore::new();
        let _ = store.check("a", seen("t", "h1")).await.unwrap();
        let _ = store.check("a", seen("t", "h2")).await.unwrap();
        assert_eq!(
            store.check("a", seen("t", "h1")).await.unwrap(),
            [PinCheck::Pinned]
        );
        assert!(store.changed("a").await.unwrap().is_empty());
        assert!(!store.approve("a", "t").await.unwrap());
    }
}
