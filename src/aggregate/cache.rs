//! The list cache: each upstream's list pages, kept as the aggregator will send them (entries
//! already filtered, renamed, namespaced and written as JSON), so a merged list from cache is
//! a few copies of bytes, not a JSON serialization.
//!
//! # Freshness
//!
//! A page lives as long as its upstream says (`ttlMs`, the 2026-07-28 caching hint; `0` keeps
//! nothing). A page without a hint (every legacy upstream) lives
//! [`list_max_age`](super::AggregatorBuilder::list_max_age) when one is set; without that
//! setting, [`DEFAULT_LIST_MAX_AGE`] when the upstream declared `listChanged` for that list
//! (it promised to say when the list changes), and not at all otherwise (nothing would ever
//! tell the aggregator, or its tool pins, that the list changed). A page is dropped before its
//! time when the upstream says its list changed (`notifications/…/list_changed`, seen in any
//! answer the aggregator reads, or passed to [`Aggregator::invalidate`](super::Aggregator::invalidate)),
//! and every page of an upstream when a request to it fails (so a dead upstream leaves the
//! merged list at once).
//!
//! # Who may see a page
//!
//! A page the upstream marked `cacheScope: "public"` is served to every client. Any other page
//! (`"private"`, or no hint: the safe reading) is served only within the authorization context
//! it was fetched in (R64): the same principal (issuer and subject), and for an upstream that
//! gets the client's own token, the same token. Results of retried requests
//! (`inputResponses` / `requestState`) are never cached (R64).
//!
//! # Merged answers
//!
//! A merged list answered from every upstream's cached page is itself kept ([`MergedCache`]),
//! written up to its id and freshness hints, so the next one costs a lookup and one copy. It
//! is served while no upstream's lists changed since (each cache counts its changes: a page
//! kept or dropped, an invalidation, new capabilities learned) and until its first page
//! expires; to everyone when every page was public, otherwise only within the authorization
//! context of the request that merged it (its principal, and its token when any upstream gets
//! the client's token).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::context::{BindingKey, Principal};
use crate::protocol::{ListKind, ProtocolVersion};

/// How long a list page without a freshness hint is kept when its upstream declared
/// `listChanged` for that list and no [`list_max_age`](super::AggregatorBuilder::list_max_age)
/// is set: 5 minutes (a bound in case a `list_changed` notification is lost).
pub const DEFAULT_LIST_MAX_AGE: Duration = Duration::from_secs(300);

/// The most pages one upstream's cache holds (private pages are kept per principal); past it,
/// expired pages are dropped, and new pages are not kept until there is room.
const MAX_PAGES: usize = 4096;

/// Who may be served a page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Audience {
    /// Anyone (`cacheScope: "public"`).
    Public,
    /// One authorization context: the principal (none without an auth layer), and the digest
    /// of the client's `Authorization` when the upstream gets it.
    Private(Option<BindingKey>, Option<[u8; 32]>),
}

impl Audience {
    /// The authorization context of a client request, toward an upstream that gets the
    /// client's token (`with_token`) or not.
    pub(crate) fn private(
        principal: Option<&Principal>,
        client: &HeaderMap,
        with_token: bool,
    ) -> Self {
        let token = with_token
            .then(|| client.get(http::header::AUTHORIZATION))
            .flatten()
            .map(|value| Sha256::digest(value.as_bytes()).into());
        Audience::Private(principal.map(BindingKey::of), token)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Key {
    kind: ListKind,
    version: ProtocolVersion,
    cursor: Option<Box<str>>,
    audience: Audience,
}

/// One upstream's page, ready to merge.
#[derive(Debug)]
pub(crate) struct Page {
    /// The entries, each a JSON object, separated by commas (no brackets); empty for none.
    pub(crate) entries: Bytes,
    /// The upstream's own cursor for its next page.
    pub(crate) next: Option<String>,
    /// Whether the upstream marked it `cacheScope: "public"`.
    pub(crate) public: bool,
    /// Until when it may be served; `None` when it is not kept.
    pub(crate) expires: Option<Instant>,
}

impl Page {
    /// How much longer a client may keep it (what the merged `ttlMs` says).
    pub(crate) fn fresh_for(&self, now: Instant) -> Duration {
        self.expires
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now))
    }
}

/// The list pages of one upstream.
#[derive(Debug)]
pub(crate) struct ListCache {
    pages: Mutex<HashMap<Key, std::sync::Arc<Page>>>,
    /// One generation per list kind, bumped by every invalidation: a page fetched before an
    /// invalidation is not stored after it.
    generations: [AtomicU64; 4],
    /// One count per list kind of the changes to its pages (kept, dropped), for the merged
    /// answers built from them.
    changes: [AtomicU64; 4],
    /// The max age of a page without a hint, when configured.
    max_age: Option<Duration>,
}

fn slot(kind: ListKind) -> usize {
    match kind {
        ListKind::Tools => 0,
        ListKind::Prompts => 1,
        ListKind::Resources => 2,
        _ => 3,
    }
}

impl ListCache {
    pub(crate) fn new(max_age: Option<Duration>) -> Self {
        ListCache {
            pages: Mutex::new(HashMap::new()),
            generations: Default::default(),
            changes: Default::default(),
            max_age,
        }
    }

    /// The generation to hand back to [`ListCache::put`] with a page fetched from now on.
    pub(crate) fn generation(&self, kind: ListKind) -> u64 {
        self.generations[slot(kind)].load(Ordering::Acquire)
    }

    /// How many times the pages of list `kind` changed (see [`MergedCache`]).
    pub(crate) fn changes(&self, kind: ListKind) -> u64 {
        self.changes[slot(kind)].load(Ordering::Acquire)
    }

    /// Every list counts as changed (what the upstream serves may differ now).
    pub(crate) fn touch(&self) {
        for changes in &self.changes {
            changes.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A fresh public page (what [`ListCache::get`] looks at first), without an audience.
    pub(crate) fn get_public(
        &self,
        kind: ListKind,
        version: ProtocolVersion,
        cursor: Option<&str>,
    ) -> Option<std::sync::Arc<Page>> {
        let now = Instant::now();
        let key = Key {
            kind,
            version,
            cursor: cursor.map(Box::from),
            audience: Audience::Public,
        };
        let pages = self.pages.lock().expect("list cache");
        pages
            .get(&key)
            .filter(|page| page.expires.is_some_and(|at| at > now))
            .cloned()
    }

    /// A fresh page for `audience` (a public page first, then the private one).
    pub(crate) fn get(
        &self,
        kind: ListKind,
        version: ProtocolVersion,
        cursor: Option<&str>,
        audience: &Audience,
    ) -> Option<std::sync::Arc<Page>> {
        let now = Instant::now();
        let mut key = Key {
            kind,
            version,
            cursor: cursor.map(Box::from),
            audience: Audience::Public,
        };
        let mut pages = self.pages.lock().expect("list cache");
        for audience in [Audience::Public, audience.clone()] {
            key.audience = audience;
            match pages.get(&key) {
                Some(page) if page.expires.is_some_and(|at| at > now) => {
                    return Some(std::sync::Arc::clone(page));
                }
                Some(_) => {
                    pages.remove(&key);
                }
                None => {}
            }
        }
        None
    }

    /// How long a page with the upstream's hint `ttl` (`ttlMs`) may be kept; `declared`
    /// says whether the upstream declared `listChanged` for this list.
    pub(crate) fn max_age(&self, ttl: Option<Duration>, declared: bool) -> Duration {
        match (ttl, self.max_age) {
            (Some(ttl), _) => ttl,
            (None, Some(max_age)) => max_age,
            (None, None) if declared => DEFAULT_LIST_MAX_AGE,
            (None, None) => Duration::ZERO,
        }
    }

    /// Keeps `page` (when it has an expiry) unless its list was invalidated since
    /// `generation`.
    pub(crate) fn put(
        &self,
        kind: ListKind,
        version: ProtocolVersion,
        cursor: Option<&str>,
        audience: Audience,
        page: std::sync::Arc<Page>,
        generation: u64,
    ) {
        if page.expires.is_none() {
            return;
        }
        let mut pages = self.pages.lock().expect("list cache");
        if self.generation(kind) != generation {
            return;
        }
        if pages.len() >= MAX_PAGES {
            let now = Instant::now();
            pages.retain(|_, page| page.expires.is_some_and(|at| at > now));
            if pages.len() >= MAX_PAGES {
                return;
            }
        }
        let key = Key {
            kind,
            version,
            cursor: cursor.map(Box::from),
            audience,
        };
        pages.insert(key, page);
        self.changes[slot(kind)].fetch_add(1, Ordering::AcqRel);
    }

    /// Drops every page of list `kind` (`resources/list_changed` covers resource templates
    /// too: the caller passes both).
    pub(crate) fn invalidate(&self, kind: ListKind) {
        let mut pages = self.pages.lock().expect("list cache");
        self.generations[slot(kind)].fetch_add(1, Ordering::AcqRel);
        self.changes[slot(kind)].fetch_add(1, Ordering::AcqRel);
        pages.retain(|key, _| key.kind != kind);
    }

    /// Drops every page (the upstream failed).
    pub(crate) fn clear(&self) {
        let mut pages = self.pages.lock().expect("list cache");
        if pages.is_empty() {
            return;
        }
        for generation in &self.generations {
            generation.fetch_add(1, Ordering::AcqRel);
        }
        self.touch();
        pages.clear();
    }
}

/// The most merged answers kept (private ones are kept per authorization context); past it,
/// stale ones are dropped, and new ones are not kept until there is room.
const MAX_MERGED: usize = 1024;

/// A merged list answer kept whole: what follows its id, up to the freshness hints, so a
/// merged list from cache is the id and the hints written around one shared buffer.
#[derive(Debug)]
pub(crate) struct Merged {
    /// `,"result":{"<field>":[…]`, then `,"nextCursor":"…"` when there is one.
    pub(crate) body: Bytes,
    /// Whether every page was public.
    pub(crate) public: bool,
    /// When its first page expires.
    pub(crate) expires: Instant,
    /// Every upstream's change count when its pages were read: a change to any upstream's
    /// lists since (a page kept or dropped, its capabilities learned anew) makes it stale.
    seen: Box<[u64]>,
}

impl Merged {
    /// A merged answer of pages read while the upstreams' change counts were `seen`.
    pub(crate) fn new(body: Bytes, public: bool, expires: Instant, seen: Box<[u64]>) -> Self {
        Merged {
            body,
            public,
            expires,
            seen,
        }
    }

    fn valid(&self, caches: &[Arc<ListCache>], kind: ListKind, now: Instant) -> bool {
        self.expires > now
            && self.seen.len() == caches.len()
            && caches
                .iter()
                .zip(&self.seen)
                .all(|(cache, seen)| cache.changes(kind) == *seen)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct MergedKey {
    kind: ListKind,
    version: ProtocolVersion,
    cursor: Option<Box<str>>,
    audience: Audience,
}

/// The merged answers of the list methods, kept beside the upstreams' [`ListCache`]s: one is
/// served while no upstream's list changed since it was merged and none of its pages expired.
/// It is kept for everyone when every page was public, otherwise for the authorization
/// context of the request that merged it (R64).
#[derive(Debug, Default)]
pub(crate) struct MergedCache {
    entries: Mutex<HashMap<MergedKey, Arc<Merged>>>,
}

impl MergedCache {
    /// The merged answer for the request's context (`audience`, asked only when no public
    /// answer is kept), if still valid.
    pub(crate) fn get(
        &self,
        caches: &[Arc<ListCache>],
        kind: ListKind,
        version: ProtocolVersion,
        cursor: Option<&str>,
        audience: impl FnOnce() -> Audience,
        now: Instant,
    ) -> Option<Arc<Merged>> {
        let mut key = MergedKey {
            kind,
            version,
            cursor: cursor.map(Box::from),
            audience: Audience::Public,
        };
        let mut entries = self.entries.lock().expect("merged cache");
        if let Some(merged) = entries.get(&key) {
            if merged.valid(caches, kind, now) {
                return Some(Arc::clone(merged));
            }
            entries.remove(&key);
        }
        drop(entries);
        key.audience = audience();
        let mut entries = self.entries.lock().expect("merged cache");
        match entries.get(&key) {
            Some(merged) if merged.valid(caches, kind, now) => Some(Arc::clone(merged)),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Keeps `merged` for `audience` (ignored when every page was public: then for everyone).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn put(
        &self,
        caches: &[Arc<ListCache>],
        kind: ListKind,
        version: ProtocolVersion,
        cursor: Option<&str>,
        audience: Audience,
        merged: Arc<Merged>,
        now: Instant,
    ) {
        let mut entries = self.entries.lock().expect("merged cache");
        if entries.len() >= MAX_MERGED {
            entries.retain(|key, merged| merged.valid(caches, key.kind, now));
            if entries.len() >= MAX_MERGED {
                return;
            }
        }
        let key = MergedKey {
            kind,
            version,
            cursor: cursor.map(Box::from),
            audience: if merged.public {
                Audience::Public
            } else {
                audience
            },
        };
        entries.insert(key, merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const V: ProtocolVersion = ProtocolVersion::V2026_07_28;

    fn page(entries: &'static str, public: bool, age: Duration) -> Arc<Page> {
        Arc::new(Page {
            entries: Bytes::from_static(entries.as_bytes()),
            next: None,
            public,
            expires: Some(Instant::now() + age),
        })
    }

    fn alice() -> Audience {
        Audience::private(Some(&Principal::new("alice")), &HeaderMap::new(), false)
    }

    fn bob() -> Audience {
        Audience::private(Some(&Principal::new("bob")), &HeaderMap::new(), false)
    }

    #[tokio::test(start_paused = true)]
    async fn private_pages_stay_in_their_context_and_public_ones_are_shared() {
        let cache = ListCache::new(None);
        let g = cache.generation(ListKind::Tools);
        let a = alice();
        cache.put(
            ListKind::Tools,
            V,
            None,
            a.clone(),
            page("{}", false, Duration::from_secs(5)),
            g,
        );
        assert!(cache.get(ListKind::Tools, V, None, &a).is_some());
        assert!(cache.get(ListKind::Tools, V, None, &bob()).is_none());
        assert!(cache.get(ListKind::Tools, V, Some("2"), &a).is_none());
        cache.put(
            ListKind::Prompts,
            V,
            None,
            Audience::Public,
            page("[]", true, Duration::from_secs(5)),
            g,
        );
        assert!(cache.get(ListKind::Prompts, V, None, &bob()).is_some());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(cache.get(ListKind::Tools, V, None, &a).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalidation_drops_pages_and_the_fetch_it_overtook() {
        let cache = ListCache::new(None);
        let a = alice();
        let put = |generation| {
            let page = page("{}", false, Duration::from_secs(5));
            cache.put(ListKind::Tools, V, None, a.clone(), page, generation);
        };
        let kept = || cache.get(ListKind::Tools, V, None, &a).is_some();
        let before = cache.generation(ListKind::Tools);
        put(before);
        cache.invalidate(ListKind::Tools);
        assert!(!kept());
        // A fetch that started before the invalidation is not kept.
        put(before);
        assert!(!kept());
        put(cache.generation(ListKind::Tools));
        assert!(kept());
        cache.clear();
        assert!(!kept());
    }

    #[tokio::test(start_paused = true)]
    async fn a_merged_answer_lasts_until_a_page_changes_or_expires() {
        let caches: Vec<Arc<ListCache>> = (0..2).map(|_| Arc::new(ListCache::new(None))).collect();
        let merged = MergedCache::default();
        let now = Instant::now();
        let seen: Box<[u64]> = caches.iter().map(|c| c.changes(ListKind::Tools)).collect();
        let keep = |public, seen: Box<[u64]>, audience| {
            let answer = Merged::new(Bytes::new(), public, now + Duration::from_secs(5), seen);
            merged.put(
                &caches,
                ListKind::Tools,
                V,
                None,
                audience,
                Arc::new(answer),
                now,
            );
        };
        let get = |audience: Audience| {
            let now = Instant::now();
            merged.get(&caches, ListKind::Tools, V, None, || audience, now)
        };
        // Private: only alice's context; public: everyone's.
        keep(false, seen.clone(), alice());
        assert!(get(alice()).is_some());
        assert!(get(bob()).is_none());
        keep(true, seen.clone(), alice());
        assert!(get(bob()).is_some());
        // Another list's change leaves it; a change to one of its upstreams' tools does not.
        caches[1].invalidate(ListKind::Prompts);
        assert!(get(bob()).is_some());
        caches[1].invalidate(ListKind::Tools);
        assert!(get(bob()).is_none() && get(alice()).is_none());
        // Kept again, it expires with its first page.
        let seen: Box<[u64]> = caches.iter().map(|c| c.changes(ListKind::Tools)).collect();
        keep(true, seen, alice());
        assert!(get(bob()).is_some());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(get(bob()).is_none());
    }

    #[test]
    fn max_age_follows_the_hint_then_the_setting_then_list_changed() {
        let unset = ListCache::new(None);
        assert_eq!(
            unset.max_age(Some(Duration::from_secs(2)), false),
            Duration::from_secs(2)
        );
        assert_eq!(unset.max_age(None, true), DEFAULT_LIST_MAX_AGE);
        assert_eq!(unset.max_age(None, false), Duration::ZERO);
        let set = ListCache::new(Some(Duration::from_secs(9)));
        assert_eq!(set.max_age(None, false), Duration::from_secs(9));
        assert_eq!(set.max_age(Some(Duration::ZERO), true), Duration::ZERO);
        assert_eq!(
            super::super::events::lists_changed_by("notifications/resources/list_changed").len(),
            2
        );
        assert!(super::super::events::lists_changed_by("notifications/progress").is_empty());
    }

    #[test]
    fn the_token_counts_only_when_the_upstream_gets_it() {
        let mut a = HeaderMap::new();
        a.insert(http::header::AUTHORIZATION, "Bearer a".parse().unwrap());
        let mut b = HeaderMap::new();
        b.insert(http::header::AUTHORIZATION, "Bearer b".parse().unwrap());
        assert_eq!(
            Audience::private(None, &a, false),
            Audience::private(None, &b, false)
        );
        assert_ne!(
            Audience::private(None, &a, true),
            Audience::private(None, &b, true)
        );
    }
}
