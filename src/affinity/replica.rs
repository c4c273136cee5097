use std::fmt;
use std::sync::Arc;

/// The replica a request was routed to, put in the response extensions by the affinity
/// router (read by audit).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Replica {
    id: Arc<str>,
}

impl Replica {
    /// A replica with this id (its name or URL).
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Replica { id: id.into() }
    }

    /// The replica's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}
