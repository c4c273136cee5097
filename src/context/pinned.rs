//! [`PinAlert`]: tool definitions that differ from their pins, noticed while answering.

use std::fmt;
use std::sync::Arc;

/// Tools whose definition differs from the one pinned when it was first seen (a possible
/// "rug pull", CVE-2025-54136), noticed while answering this request: a `tools/list` that
/// met a changed definition, or a `tools/call` refused because the tool's changed definition
/// is hidden until approved.
///
/// The [`Aggregator`](crate::aggregate::Aggregator) puts it in the response extensions; audit
/// records it (`mcp_edge.pin.changed`: the tools as `upstream/tool`, their names at the
/// upstream; `mcp_edge.pin.hidden`).
///
/// ```
/// use mcp_edge::context::PinAlert;
///
/// let alert = PinAlert::new([("alpha", "search")], true);
/// assert_eq!(alert.tools().collect::<Vec<_>>(), [("alpha", "search")]);
/// assert!(alert.hidden());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PinAlert {
    tools: Arc<[(Box<str>, Box<str>)]>,
    hidden: bool,
}

impl PinAlert {
    /// The changed tools, as `(upstream, tool name at the upstream)`; `hidden` when the pin
    /// policy hides them until approved.
    pub fn new<I, U, T>(tools: I, hidden: bool) -> Self
    where
        I: IntoIterator<Item = (U, T)>,
        U: Into<Box<str>>,
        T: Into<Box<str>>,
    {
        PinAlert {
            tools: tools
                .into_iter()
                .map(|(u, t)| (u.into(), t.into()))
                .collect(),
            hidden,
        }
    }

    /// The changed tools: `(upstream, tool name at the upstream)`.
    pub fn tools(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tools.iter().map(|(u, t)| (&**u, &**t))
    }

    /// Whether they are hidden (left out of lists, refused when called) until approved.
    pub fn hidden(&self) -> bool {
        self.hidden
    }
}

impl fmt::Debug for PinAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinAlert")
            .field("tools", &self.tools().collect::<Vec<_>>())
            .field("hidden", &self.hidden)
            .finish()
    }
}
