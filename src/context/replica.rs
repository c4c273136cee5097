use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// A replica the affinity router can send requests to, named by a stable id (its name or
/// URL).
///
/// The router puts the replica a request went to in the response extensions (read by
/// audit). The id is what session pins refer to: in the table strategy it is stored in the
/// session record, in the envelope strategy a 64-bit digest of it travels inside the sealed
/// session id. So a replica that is removed and added back under the same id gets its
/// sessions back, and two gateway instances must name the same replica the same way.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Replica {
    id: Arc<str>,
    tag: u64,
}

impl Replica {
    /// A replica with this id (its name or URL).
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        let id = id.into();
        let tag = replica_tag(&id);
        Replica { id, tag }
    }

    /// The replica's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The 64-bit digest of the id that envelopes carry.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn tag(&self) -> u64 {
        self.tag
    }
}

/// The first 8 bytes of SHA-256 over the id: stable across processes and builds.
fn replica_tag(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(tag)
}

impl fmt::Debug for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Replica").field(&&*self.id).finish()
    }
}

impl fmt::Display for Replica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl From<&str> for Replica {
    fn from(id: &str) -> Self {
        Replica::new(id)
    }
}

impl From<String> for Replica {
    fn from(id: String) -> Self {
        Replica::new(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_id_same_tag_and_equality() {
        let a = Replica::new("http://10.0.0.1:8080/mcp");
        let b = Replica::from("http://10.0.0.1:8080/mcp");
        assert_eq!(a, b);
        assert_eq!(a.tag(), b.tag());
        assert_ne!(a.tag(), Replica::new("http://10.0.0.2:8080/mcp").tag());
        assert_eq!(a.to_string(), "http://10.0.0.1:8080/mcp");
    }
}
