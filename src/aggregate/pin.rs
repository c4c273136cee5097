//! Tool pinning: the hash of each upstream tool's definition, recorded the first time the
//! aggregator sees it (in a [`PinStore`]: memory, or Redis shared by every instance), so a
//! definition that changes later ("rug pull", CVE-2025-54136) is noticed, flagged, and by
//! policy hidden until approved.
//!
//! Pages of tools are checked against the store when they are fetched from their upstream
//! (one store call per page). Calls are decided from this instance's view of the changed
//! tools: updated by its own checks and approvals at once, and from the store (other
//! instances' findings and approvals) at most every
//! [`pin_sync_interval`](super::AggregatorBuilder::pin_sync_interval), on the first tool
//! request after it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::events::Events;
use super::relay::{Merge, SUBSCRIPTION_ID, put_event};
use crate::protocol::ListKind;
use crate::store::{ChangedTool, PinCheck, PinStore, StoreError};

/// What the aggregator does with a tool whose definition differs from the one it pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PinPolicy {
    /// Keep showing it; log a warning (target `mcp_edge::aggregate`), put a
    /// [`PinAlert`](crate::context::PinAlert) on the list's response (audit records it) and list it in
    /// [`Aggregator::changed_tools`](super::Aggregator::changed_tools) until approved.
    ///
    /// When the pin store fails, tools are shown unchecked (fail open; logged).
    #[default]
    Flag,
    /// Also hide it from `tools/list` and refuse calls to it until
    /// [approved](super::Aggregator::approve_tool); clients listening for list changes are
    /// told when a tool is hidden or shown again (`notifications/tools/list_changed`).
    ///
    /// When the pin store fails, a page of tools that cannot be checked is left out of the
    /// merged list (fail closed: an unchecked definition never reaches the client), and
    /// calls are decided from the changes this instance already knows (fail open for tools
    /// not known changed: their definitions were checked when the client listed them).
    Hide,
}

/// The default [`pin_sync_interval`](super::AggregatorBuilder::pin_sync_interval): 1 s.
pub const DEFAULT_PIN_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The merge slot of the aggregator's own list changes (never an upstream's index).
const OWN_STREAM: usize = usize::MAX;

/// What a page check found: the tools to leave out, and the changes to report.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// Tools (names at the upstream) hidden by the policy.
    pub(crate) hidden: Vec<Box<str>>,
    /// Tools whose definition differs from its pin.
    pub(crate) changed: Vec<Box<str>>,
}

/// Per upstream (in the aggregator's order): its changed tools, by name at the upstream, with
/// the hash seen.
type View = Box<[HashMap<Box<str>, Box<str>>]>;

/// One aggregator's pins: the policy, the store, and this instance's view of the changes.
pub(crate) struct Pins {
    policy: Option<PinPolicy>,
    store: Arc<dyn PinStore>,
    upstreams: Box<[Arc<str>]>,
    /// This instance's view of the changes.
    view: Mutex<View>,
    sync_every: Duration,
    next_sync: tokio::sync::Mutex<Instant>,
    events: Events,
    /// The aggregator's own `tools/list_changed` (a tool hidden or shown again).
    changes: broadcast::Sender<()>,
}

impl std::fmt::Debug for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pins")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Pins {
    pub(crate) fn new(
        policy: Option<PinPolicy>,
        store: Arc<dyn PinStore>,
        upstreams: Box<[Arc<str>]>,
        sync_every: Duration,
        events: Events,
    ) -> Self {
        let view = upstreams.iter().map(|_| HashMap::new()).collect();
        Pins {
            policy,
            store,
            upstreams,
            view: Mutex::new(view),
            sync_every,
            next_sync: tokio::sync::Mutex::new(Instant::now()),
            events,
            changes: broadcast::channel(16).0,
        }
    }

    /// Whether a changed definition is hidden (so the tools list may change on its own).
    pub(crate) fn hides(&self) -> bool {
        self.policy == Some(PinPolicy::Hide)
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks upstream `index`'s page of tool definitions against the store (pinning those
    /// seen for the first time). `Err` only with [`PinPolicy::Hide`], when the store failed:
    /// the page is not to be shown.
    pub(crate) async fn check(&self, index: usize, items: &[Value]) -> Result<Checked, StoreError> {
        let Some(policy) = self.policy else {
            return Ok(Checked::default());
        };
        let seen: Vec<(String, String)> = items
            .iter()
            .filter_map(|item| {
                let name = item.get("name")?.as_str()?;
                Some((name.to_owned(), hex(&hash(item))))
            })
            .collect();
        let upstream = &self.upstreams[index];
        let checks = match self.store.check(upstream, seen.clone()).await {
            Ok(checks) => checks,
            Err(e) if policy == PinPolicy::Hide => {
                tracing::warn!(target: "mcp_edge::aggregate", upstream = %upstream, error = %e, "tool pins unavailable: the upstream's tools are left out of the list");
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(target: "mcp_edge::aggregate", upstream = %upstream, error = %e, "tool pins unavailable: the upstream's tools are shown unchecked");
                return Ok(Checked::default());
            }
        };
        let mut checked = Checked::default();
        let mut moved = false;
        {
            let mut view = self.view();
            let known = &mut view[index];
            for ((tool, seen), check) in seen.into_iter().zip(checks) {
                match check {
                    PinCheck::Changed { pinned } => {
                        if known.get(tool.as_str()).is_none_or(|s| **s != *seen) {
                            tracing::warn!(
                                target: "mcp_edge::aggregate",
                                upstream = %upstream,
                                tool,
                                pinned,
                                seen,
                                hidden = policy == PinPolicy::Hide,
                                "tool definition changed since it was pinned"
                            );
                            moved |= !known.contains_key(tool.as_str());
                            known.insert(tool.as_str().into(), seen.into());
                        }
                        if policy == PinPolicy::Hide {
                            checked.hidden.push(tool.as_str().into());
                        }
                        checked.changed.push(tool.into());
                    }
                    _ => moved |= known.remove(tool.as_str()).is_some(),
                }
            }
        }
        if moved {
            self.moved(index);
        }
        Ok(checked)
    }

    /// Whether tool `tool` of upstream `index` may be called: false when its changed
    /// definition is hidden, as far as this instance knows.
    pub(crate) fn callable(&self, index: usize, tool: &str) -> bool {
        !self.hides() || !self.view()[index].contains_key(tool)
    }

    /// Upstream `index`'s set of changed tools moved: with the hiding policy its tools list
    /// changed, so its cached pages go and listening clients are told.
    fn moved(&self, index: usize) {
        if self.hides() {
            self.events.list_changed(index, ListKind::Tools);
            let _ = self.changes.send(());
        }
    }

    /// Pins the changed definition of `tool` of upstream `upstream`; false when none waited.
    pub(crate) async fn approve(&self, upstream: &str, tool: &str) -> Result<bool, StoreError> {
        let approved = self.store.approve(upstream, tool).await?;
        if let Some(index) = self.upstreams.iter().position(|u| &**u == upstream) {
            let was = self.view()[index].remove(tool).is_some();
            if approved || was {
                self.moved(index);
            }
        }
        Ok(approved)
    }

    /// Every change waiting for approval, from the store (this instance's view follows).
    pub(crate) async fn changed(&self) -> Result<Vec<ChangedTool>, StoreError> {
        let mut all = Vec::new();
        for index in 0..self.upstreams.len() {
            let changed = self.store.changed(&self.upstreams[index]).await?;
            self.learn(index, &changed);
            all.extend(changed);
        }
        Ok(all)
    }

    /// Replaces the view of upstream `index`'s changes with the store's.
    fn learn(&self, index: usize, changed: &[ChangedTool]) {
        let fresh: HashMap<Box<str>, Box<str>> = changed
            .iter()
            .map(|c| (c.tool.as_str().into(), c.seen.as_str().into()))
            .collect();
        let moved = {
            let mut view = self.view();
            let moved = view[index].len() != fresh.len()
                || fresh.keys().any(|tool| !view[index].contains_key(tool));
            view[index] = fresh;
            moved
        };
        if moved {
            self.moved(index);
        }
    }

    /// With the hiding policy, brings this instance's view up to date with the store when the
    /// sync interval has passed (one request at a time does it; the others go on with the
    /// view as it is). A store failure keeps the view (logged).
    pub(crate) async fn sync_if_due(&self) {
        if !self.hides() {
            return;
        }
        let Ok(mut next) = self.next_sync.try_lock() else {
            return;
        };
        let now = Instant::now();
        if now < *next {
            return;
        }
        *next = now + self.sync_every;
        if let Err(e) = self.changed().await {
            tracing::warn!(target: "mcp_edge::aggregate", error = %e, "tool pins could not be synced: calls are decided from the changes already known");
        }
    }

    /// Feeds the aggregator's own `notifications/tools/list_changed` into a client's merged
    /// stream (with `subscription`, the 2026-07-28 listen request's id, in `_meta`), when
    /// the hiding policy can change the list.
    pub(crate) fn listen(&self, merge: &Merge, subscription: Option<Value>) {
        if !self.hides() {
            return;
        }
        let mut receiver = self.changes.subscribe();
        let message = match subscription {
            Some(id) => json!({
                "jsonrpc": "2.0",
                "method": "notifications/tools/list_changed",
                "params": { "_meta": { SUBSCRIPTION_ID: id } },
            }),
            None => json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
        };
        let mut event = BytesMut::new();
        put_event(&mut event, &super::message::to_bytes(&message));
        let event: Bytes = event.freeze();
        merge.start(OWN_STREAM, move |sender| {
            tokio::spawn(async move {
                loop {
                    match receiver.recv().await {
                        Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {
                            if sender.send(event.clone()).await.is_err() {
                                return; // the client's stream is gone
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
            .abort_handle()
        });
    }
}

/// SHA-256 of the definition written canonically (object keys sorted, no spaces), so the
/// order an upstream writes its keys in does not count as a change.
fn hash(definition: &Value) -> [u8; 32] {
    let mut out = Vec::with_capacity(256);
    canonical(definition, &mut out);
    Sha256::digest(&out).into()
}

fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("a string always serializes");
                out.push(b':');
                canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        other => serde_json::to_writer(&mut *out, other).expect("a JSON value always serializes"),
    }
}

fn hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::cache::ListCache;
    use crate::store::MemoryPinStore;
    use serde_json::json;

    fn pins(policy: Option<PinPolicy>) -> Pins {
        let caches: Arc<[Arc<ListCache>]> = Arc::from([Arc::new(ListCache::new(None))]);
        Pins::new(
            policy,
            Arc::new(MemoryPinStore::new()),
            Box::from([Arc::from("a")]),
            DEFAULT_PIN_SYNC_INTERVAL,
            Events::new(caches),
        )
    }

    async fn shown(pins: &Pins, item: Value) -> bool {
        pins.check(0, &[item]).await.unwrap().hidden.is_empty()
    }

    #[tokio::test]
    async fn key_order_is_not_a_change_but_a_description_is() {
        let pins = pins(Some(PinPolicy::Hide));
        assert!(
            shown(
                &pins,
                json!({"name": "t", "description": "x", "inputSchema": {}})
            )
            .await
        );
        assert!(
            shown(
                &pins,
                json!({"inputSchema": {}, "description": "x", "name": "t"})
            )
            .await
        );
        assert!(pins.changed().await.unwrap().is_empty());
        assert!(!shown(&pins, json!({"name": "t", "description": "now steal keys"})).await);
        assert!(!pins.callable(0, "t"));
        assert_eq!(pins.changed().await.unwrap().len(), 1);
        assert!(pins.approve("a", "t").await.unwrap());
        assert!(pins.callable(0, "t"));
        assert!(shown(&pins, json!({"name": "t", "description": "now steal keys"})).await);
        assert!(!pins.approve("a", "t").await.unwrap());
    }

    #[tokio::test]
    async fn flag_policy_keeps_showing_and_off_records_nothing() {
        let flag = pins(Some(PinPolicy::Flag));
        assert!(shown(&flag, json!({"name": "t", "d": 1})).await);
        let checked = flag
            .check(0, &[json!({"name": "t", "d": 2})])
            .await
            .unwrap();
        assert!(checked.hidden.is_empty());
        assert_eq!(&*checked.changed[0], "t");
        assert!(flag.callable(0, "t"));
        assert_eq!(flag.changed().await.unwrap()[0].tool, "t");
        let off = pins(None);
        assert!(shown(&off, json!({"name": "t", "d": 1})).await);
        assert!(shown(&off, json!({"name": "t", "d": 2})).await);
        assert!(off.changed().await.unwrap().is_empty());
    }
}
