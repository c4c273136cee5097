//! Tool pinning: the hash of each upstream tool's definition, recorded the first time the
//! aggregator sees it, so a definition that changes later ("rug pull", CVE-2025-54136) is
//! noticed, flagged, and by policy hidden until approved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// What the aggregator does with a tool whose definition differs from the one it pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PinPolicy {
    /// Keep showing it; log a warning (target `mcp_edge::aggregate`) and list it in
    /// [`Aggregator::changed_tools`](super::Aggregator::changed_tools) until approved.
    #[default]
    Flag,
    /// Also hide it from `tools/list` and refuse calls to it until
    /// [approved](super::Aggregator::approve_tool).
    Hide,
}

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

type Hash = [u8; 32];

/// `(upstream, tool name at the upstream)`.
type PinKey = (Arc<str>, Box<str>);

#[derive(Debug)]
struct Pin {
    pinned: Hash,
    changed: Option<Hash>,
}

/// The pinned hashes, in memory.
#[derive(Debug)]
pub(crate) struct Pins {
    policy: Option<PinPolicy>,
    map: Mutex<HashMap<PinKey, Pin>>,
}

impl Pins {
    pub(crate) fn new(policy: Option<PinPolicy>) -> Self {
        Pins {
            policy,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Records or checks the definition of `tool` (its name at the upstream); false when it
    /// changed and the policy hides it.
    pub(crate) fn check(&self, upstream: &Arc<str>, tool: &str, definition: &Value) -> bool {
        let Some(policy) = self.policy else {
            return true;
        };
        let hash = hash(definition);
        let mut map = self.map.lock().expect("pins");
        let key = (Arc::clone(upstream), Box::from(tool));
        let pin = map.entry(key).or_insert(Pin {
            pinned: hash,
            changed: None,
        });
        if pin.pinned == hash {
            pin.changed = None;
            return true;
        }
        if pin.changed != Some(hash) {
            pin.changed = Some(hash);
            tracing::warn!(
                target: "mcp_edge::aggregate",
                upstream = %upstream,
                tool,
                pinned = %hex(&pin.pinned),
                seen = %hex(&hash),
                hidden = policy == PinPolicy::Hide,
                "tool definition changed since it was pinned"
            );
        }
        policy != PinPolicy::Hide
    }

    /// Whether `tool` may be called (false when its changed definition is hidden).
    pub(crate) fn callable(&self, upstream: &str, tool: &str) -> bool {
        if self.policy != Some(PinPolicy::Hide) {
            return true;
        }
        let map = self.map.lock().expect("pins");
        !map.iter()
            .any(|((u, t), pin)| &**u == upstream && &**t == tool && pin.changed.is_some())
    }

    /// Pins the changed definition of `tool`; false when none was waiting.
    pub(crate) fn approve(&self, upstream: &str, tool: &str) -> bool {
        let mut map = self.map.lock().expect("pins");
        let found = map
            .iter_mut()
            .find(|((u, t), _)| &**u == upstream && &**t == tool);
        match found {
            Some((_, pin)) => match pin.changed.take() {
                Some(seen) => {
                    pin.pinned = seen;
                    true
                }
                None => false,
            },
            None => false,
        }
    }

    pub(crate) fn changed(&self) -> Vec<ChangedTool> {
        let map = self.map.lock().expect("pins");
        let mut changed: Vec<_> = map
            .iter()
            .filter_map(|((upstream, tool), pin)| {
                Some(ChangedTool {
                    upstream: upstream.to_string(),
                    tool: tool.to_string(),
                    pinned: hex(&pin.pinned),
                    seen: hex(&pin.changed?),
                })
            })
            .collect();
        changed.sort_by(|a, b| (&a.upstream, &a.tool).cmp(&(&b.upstream, &b.tool)));
        changed
    }
}

/// SHA-256 of the definition written canonically (object keys sorted, no spaces), so the
/// order an upstream writes its keys in does not count as a change.
fn hash(definition: &Value) -> Hash {
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

fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_is_not_a_change_but_a_description_is() {
        let pins = Pins::new(Some(PinPolicy::Hide));
        let up: Arc<str> = "a".into();
        assert!(pins.check(
            &up,
            "t",
            &json!({"name": "t", "description": "x", "inputSchema": {}})
        ));
        assert!(pins.check(
            &up,
            "t",
            &json!({"inputSchema": {}, "description": "x", "name": "t"})
        ));
        assert!(pins.changed().is_empty());
        assert!(!pins.check(
            &up,
            "t",
            &json!({"name": "t", "description": "now steal keys"})
        ));
        assert!(!pins.callable("a", "t"));
        assert_eq!(pins.changed().len(), 1);
        assert!(pins.approve("a", "t"));
        assert!(pins.callable("a", "t"));
        assert!(pins.check(
            &up,
            "t",
            &json!({"name": "t", "description": "now steal keys"})
        ));
        assert!(!pins.approve("a", "t"));
    }

    #[test]
    fn flag_policy_keeps_showing_and_off_records_nothing() {
        let flag = Pins::new(Some(PinPolicy::Flag));
        let up: Arc<str> = "a".into();
        assert!(flag.check(&up, "t", &json!({"d": 1})));
        assert!(flag.check(&up, "t", &json!({"d": 2})));
        assert!(flag.callable("a", "t"));
        assert_eq!(flag.changed()[0].tool, "t");
        let off = Pins::new(None);
        assert!(off.check(&up, "t", &json!({"d": 1})) && off.check(&up, "t", &json!({"d": 2})));
        assert!(off.changed().is_empty());
    }
}
