use std::fmt;

/// What the limit layer did with a call it let through without a full decision: put in the
/// **response** extensions (and the request's, for the layers and handlers inside) so that
/// audit records it and metrics count it.
///
/// A call that passed every rule normally carries no note; a refused call carries a
/// [`Rejection`](crate::Rejection) instead.
///
/// ```
/// use mcp_edge::LimitNote;
///
/// assert_eq!(LimitNote::StoreFailedOpen.as_str(), "store_failed_open");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitNote {
    /// The shared store (Redis) could not decide in time and every rule the call met fails
    /// open: the call went through unchecked.
    StoreFailedOpen,
}

impl LimitNote {
    /// A stable name for logs, audit records and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitNote::StoreFailedOpen => "store_failed_open",
        }
    }
}

impl fmt::Display for LimitNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
