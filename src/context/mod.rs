//! What layers tell each other: every type that travels between layers in the request or
//! response extensions.
//!
//! A layer that learns something puts it in the **request** extensions for the layers inside
//! it, and in the **response** extensions for the layers outside it; no layer imports another.
//! This module depends only on [`protocol`](crate::protocol), so stores, layers and services
//! can all share these types. The guide in the crate docs lists who puts each one there and who
//! reads it.
//!
//! | type | put there by | read by |
//! |---|---|---|
//! | [`McpRequest`](crate::protocol::McpRequest) (`Arc`) | inspect | auth, session, sse, audit, handlers |
//! | [`McpRequestSlot`] | audit (request side) | inspect fills it |
//! | [`Principal`] | auth | session (binding, via [`BindingKey`]), handlers, audit |
//! | [`SessionId`](crate::protocol::SessionId) | session | sse, affinity, audit |
//! | [`PeerAddr`] | your server, per connection | guard, audit, proxy (all through one [`PeerAddrs`] setting) |
//! | [`RequestOrigin`] / [`PublicUrl`] | guard | auth (metadata, challenges), audit |
//! | [`Replica`] | affinity | audit |
//! | [`Routed`] | aggregate (the upstream a call went to) | audit |
//! | [`PinAlert`] | aggregate (tool definitions changed since pinned) | audit |
//! | [`LimitNote`] | limit (a call let through when its shared store failed) | audit, metrics |
//! | [`Rejection`](crate::Rejection) | any layer that refuses | audit |
//!
//! With the `rmcp` feature, `Principal`, `SessionId` and `Caller` are also parameters of rmcp
//! tool and prompt handlers (module `context::rmcp`).

mod binding;
mod limit;
mod peer;
mod pinned;
mod principal;
mod public_url;
mod replica;
#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub mod rmcp;
mod routed;
mod slot;

pub use binding::BindingKey;
pub use limit::LimitNote;
pub use peer::{PeerAddr, PeerAddrSource, PeerAddrs};
pub use pinned::PinAlert;
pub use principal::Principal;
pub use public_url::{PublicUrl, RequestOrigin, public_url};
pub use replica::Replica;
#[cfg(feature = "rmcp")]
#[cfg_attr(docsrs, doc(cfg(feature = "rmcp")))]
pub use rmcp::Caller;
pub use routed::Routed;
pub use slot::McpRequestSlot;
