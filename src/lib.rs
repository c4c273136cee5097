#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code, unreachable_pub)]
#![warn(missing_docs)]

pub mod affinity;
pub mod auth;
pub mod body;
pub mod error;
pub mod guard;
pub mod inspect;
pub mod protocol;
#[cfg(feature = "proxy")]
#[cfg_attr(docsrs, doc(cfg(feature = "proxy")))]
pub mod proxy;
pub mod session;
pub mod store;

pub use affinity::Replica;
pub use auth::Principal;
pub use body::EdgeBody;
pub use error::{Reason, RejectedBy, Rejection};
pub use guard::{GuardLayer, PublicUrl, RequestOrigin, TrustedProxies};
pub use protocol::{Era, McpRequest, ProtocolVersion, SessionId};
