//! Replica affinity: every legacy session on the replica that created it.

mod replica;

pub use replica::Replica;
