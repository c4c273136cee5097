//! Authentication and authorization at the door: bearer tokens to [`Principal`]s, scope
//! policy per method and tool, and the exact challenges clients act on.

mod principal;

pub use principal::Principal;
