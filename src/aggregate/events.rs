//! What the aggregator learns from its upstreams as it relays their messages:
//! "upstream X's list of kind K changed".
//!
//! Every `notifications/{tools,prompts,resources}/list_changed` an upstream sends (on a
//! routed call's stream, on a legacy GET stream, or on a 2026-07-28 `subscriptions/listen`
//! stream) drops the cached pages of that list of that upstream at once, whoever the client
//! is, so the next merged list asks the upstream again (and the merged answers built from
//! them go stale with it).

use std::sync::Arc;

use super::cache::{ListCache, MergedCache};
use crate::protocol::ListKind;

/// The list caches of one aggregator's upstreams, in its order, and the merged answers built
/// from them (cheap to clone: one `Arc`).
#[derive(Debug, Clone)]
pub(crate) struct Events {
    lists: Arc<Lists>,
}

#[derive(Debug)]
struct Lists {
    caches: Arc<[Arc<ListCache>]>,
    merged: MergedCache,
}

impl Events {
    pub(crate) fn new(caches: Arc<[Arc<ListCache>]>) -> Self {
        Events {
            lists: Arc::new(Lists {
                caches,
                merged: MergedCache::default(),
            }),
        }
    }

    /// Each upstream's list cache, in the aggregator's order.
    pub(crate) fn caches(&self) -> &[Arc<ListCache>] {
        &self.lists.caches
    }

    /// The merged answers.
    pub(crate) fn merged(&self) -> &MergedCache {
        &self.lists.merged
    }

    /// Upstream `upstream`'s list of `kind` changed: its cached pages of that list go.
    pub(crate) fn list_changed(&self, upstream: usize, kind: ListKind) {
        if let Some(cache) = self.lists.caches.get(upstream) {
            cache.invalidate(kind);
        }
    }

    /// The generation of upstream `upstream`'s list `kind` (bumped by each change).
    #[cfg(test)]
    pub(crate) fn generation(&self, upstream: usize, kind: ListKind) -> u64 {
        self.lists.caches[upstream].generation(kind)
    }

    /// Acts on what a notification from upstream `upstream` says changed, if anything.
    pub(crate) fn notification(&self, upstream: usize, method: &str) {
        for kind in lists_changed_by(method) {
            self.list_changed(upstream, *kind);
        }
    }
}

/// The lists a `notifications/*/list_changed` method names (resources: both resource lists).
pub(crate) fn lists_changed_by(method: &str) -> &'static [ListKind] {
    match method {
        "notifications/tools/list_changed" => &[ListKind::Tools],
        "notifications/prompts/list_changed" => &[ListKind::Prompts],
        "notifications/resources/list_changed" => {
            &[ListKind::Resources, ListKind::ResourceTemplates]
        }
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caches(n: usize) -> Arc<[Arc<ListCache>]> {
        (0..n).map(|_| Arc::new(ListCache::new(None))).collect()
    }

    #[test]
    fn a_change_drops_that_upstreams_cached_list_only() {
        let caches = caches(2);
        let events = Events::new(caches.clone());
        events.notification(1, "notifications/tools/list_changed");
        events.notification(0, "notifications/message");
        assert_eq!(caches[0].generation(ListKind::Tools), 0);
        assert_eq!(caches[1].generation(ListKind::Tools), 1);
        assert_eq!(caches[1].generation(ListKind::Prompts), 0);
    }

    #[test]
    fn a_resources_change_drops_both_resource_lists() {
        let caches = caches(1);
        Events::new(caches.clone()).notification(0, "notifications/resources/list_changed");
        assert_eq!(caches[0].generation(ListKind::Resources), 1);
        assert_eq!(caches[0].generation(ListKind::ResourceTemplates), 1);
        assert_eq!(caches[0].generation(ListKind::Tools), 0);
    }
}
