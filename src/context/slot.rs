//! [`McpRequestSlot`]: how a layer outside inspect learns the classified request even when
//! no response head ever comes back.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::protocol::McpRequest;

/// A write-once slot for the classified [`McpRequest`], shared between a layer outside
/// [`InspectLayer`](crate::inspect::InspectLayer) and inspect itself.
///
/// Inspect puts `Arc<McpRequest>` in the *response* extensions, which an outer layer only
/// sees once the response head arrives. When the client leaves before that (a 2026-07-28
/// client cancelling by disconnecting, a timeout), the outer layer would never learn what was
/// asked. The contract:
///
/// - an outer layer (audit does this) inserts a `McpRequestSlot` in the **request**
///   extensions and keeps a clone;
/// - inspect, when it finds one, [fills](McpRequestSlot::fill) it with the same
///   `Arc<McpRequest>` it gives the inner layers, as soon as the request is classified (before
///   the inner service is called); when there is none, the cost is one extensions lookup;
/// - the outer layer [reads](McpRequestSlot::get) it whenever it wants, e.g. when the response
///   future is dropped.
///
/// The first fill wins; cloning the slot shares it.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use http::{HeaderMap, Method};
/// use mcp_edge::{McpRequestSlot, protocol::McpRequest};
///
/// let slot = McpRequestSlot::new();
/// let kept = slot.clone(); // the outer layer keeps one, the request extensions carry the other
/// assert!(kept.get().is_none());
///
/// let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
/// let mcp = Arc::new(McpRequest::classify(&Method::POST, &HeaderMap::new(), Some(&body)).unwrap());
/// assert!(slot.fill(&mcp));
/// assert_eq!(kept.get().and_then(|m| m.method()), Some("tools/list"));
/// assert!(!slot.fill(&mcp), "the first fill wins");
/// ```
#[derive(Clone, Default)]
pub struct McpRequestSlot(Arc<OnceLock<Arc<McpRequest>>>);

impl McpRequestSlot {
    /// An empty slot.
    pub fn new() -> Self {
        McpRequestSlot::default()
    }

    /// Stores `request` if the slot is still empty; returns whether it did.
    pub fn fill(&self, request: &Arc<McpRequest>) -> bool {
        self.0.set(Arc::clone(request)).is_ok()
    }

    /// The classified request, once inspect has filled the slot.
    pub fn get(&self) -> Option<&Arc<McpRequest>> {
        self.0.get()
    }
}

impl fmt::Debug for McpRequestSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("McpRequestSlot")
            .field(&self.get().and_then(|m| m.method()))
            .finish()
    }
}
