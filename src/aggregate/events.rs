//! What the aggregator learns from its upstreams as it relays their messages, for the parts of
//! the aggregator that keep state about them: "upstream X's list of kind K changed".
//!
//! Every `notifications/{tools,prompts,resources}/list_changed` an upstream sends (on a
//! routed call's stream, on a legacy GET stream, or on a 2026-07-28 `subscriptions/listen`
//! stream) is announced here once, whoever the client is: the upstream's list cache drops
//! the pages of that list at once, and subscribers hear of it. The channel is bounded: a
//! subscriber that falls behind gets `RecvError::Lagged` and should then forget everything
//! it holds.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::cache::ListCache;

use crate::protocol::ListKind;

/// How many announcements a slow subscriber may fall behind before it lags.
const CAPACITY: usize = 64;

/// One upstream's list of one kind changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListChanged {
    /// The upstream's index, in the aggregator's order.
    pub(crate) upstream: usize,
    pub(crate) kind: ListKind,
}

/// The announcements of one aggregator (cheap to clone: one sender, one shared slice).
#[derive(Debug, Clone)]
pub(crate) struct Events {
    sender: broadcast::Sender<ListChanged>,
    /// Each upstream's list cache, in the aggregator's order.
    caches: Arc<[Arc<ListCache>]>,
}

impl Events {
    pub(crate) fn new(caches: Arc<[Arc<ListCache>]>) -> Self {
        Events {
            sender: broadcast::channel(CAPACITY).0,
            caches,
        }
    }

    /// Announces that upstream `upstream`'s list of `kind` changed: its cached pages of that
    /// list go, then subscribers hear of it (nobody listening is fine).
    pub(crate) fn list_changed(&self, upstream: usize, kind: ListKind) {
        if let Some(cache) = self.caches.get(upstream) {
            cache.invalidate(kind);
        }
        let _ = self.sender.send(ListChanged { upstream, kind });
    }

    /// Every announcement from now on.
    #[allow(dead_code)] // for state kept outside the caches; the tests listen
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ListChanged> {
        self.sender.subscribe()
    }

    /// Announces what a notification from upstream `upstream` says changed, if anything.
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

    #[tokio::test]
    async fn a_subscriber_hears_each_list_change_once() {
        let events = Events::new(Default::default());
        let mut heard = events.subscribe();
        events.notification(1, "notifications/resources/list_changed");
        events.notification(0, "notifications/message");
        events.list_changed(0, ListKind::Tools);
        let expected = [
            (1, ListKind::Resources),
            (1, ListKind::ResourceTemplates),
            (0, ListKind::Tools),
        ];
        for (upstream, kind) in expected {
            assert_eq!(heard.recv().await.unwrap(), ListChanged { upstream, kind });
        }
        assert!(heard.try_recv().is_err());
    }

    #[test]
    fn a_change_drops_that_upstreams_cached_list_only() {
        let caches: Arc<[Arc<ListCache>]> =
            (0..2).map(|_| Arc::new(ListCache::new(None))).collect();
        let events = Events::new(caches.clone());
        let before: Vec<u64> = caches
            .iter()
            .map(|c| c.generation(ListKind::Tools))
            .collect();
        events.notification(1, "notifications/tools/list_changed");
        assert_eq!(caches[0].generation(ListKind::Tools), before[0]);
        assert!(caches[1].generation(ListKind::Tools) > before[1]);
        assert_eq!(caches[1].generation(ListKind::Prompts), 0);
    }
}
