//! [`Routed`]: which upstream an aggregated request went to.

use std::fmt;
use std::sync::Arc;

/// The upstream an [`Aggregator`](crate::aggregate::Aggregator) routed a request to (a tool
/// call, a prompt, a resource read, a completion), by its name: the namespace in front of the
/// tool's name.
///
/// The aggregator puts it in the response extensions; audit records it
/// (`mcp_edge.upstream`) next to the namespaced tool name the client used.
///
/// ```
/// use mcp_edge::context::Routed;
///
/// let routed = Routed::new("alpha");
/// assert_eq!(routed.upstream(), "alpha");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Routed {
    upstream: Arc<str>,
}

impl Routed {
    /// Routed to the upstream named `upstream`.
    pub fn new(upstream: impl Into<Arc<str>>) -> Self {
        Routed {
            upstream: upstream.into(),
        }
    }

    /// The upstream's name.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }
}

impl fmt::Debug for Routed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Routed").field(&&*self.upstream).finish()
    }
}
