//! MCP wire knowledge, with no tower in it: versions and eras, the JSON-RPC envelope,
//! `McpRequest` classification, `SessionId`, the 2026-07-28 header encoding, body media types
//! ([`body_kind`]), the list methods ([`ListKind`]), and the one incremental SSE reader
//! ([`sse`]).
//!
//! The layers ask this module about MCP; this module knows nothing of layers.
//!
//! ```
//! use bytes::Bytes;
//! use http::{HeaderMap, Method};
//! use mcp_edge::protocol::{Era, McpRequest, Target};
//!
//! let body = Bytes::from_static(
//!     br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#,
//! );
//! let request = McpRequest::classify(&Method::POST, &HeaderMap::new(), Some(&body)).unwrap();
//! assert_eq!(request.era(), Era::Legacy);
//! assert_eq!(request.method(), Some("tools/call"));
//! assert_eq!(request.target(), Some(&Target::Tool("echo".into())));
//! assert_eq!(&request.message().unwrap().arguments().unwrap()[..], br#"{"text":"hi"}"#);
//! ```

pub(crate) mod authority;
pub mod header;
pub mod jsonrpc;
mod list;
mod media;
mod message;
mod request;
mod response;
mod session_id;
pub mod sse;
mod version;

pub use authority::InvalidPattern;
pub use jsonrpc::RequestId;
pub use list::ListKind;
pub use media::{APPLICATION_JSON, BodyKind, TEXT_EVENT_STREAM, body_kind};
pub use message::{
    Body, ClientInfo, MAX_BATCH, McpMessage, MessageKind, ParseError, ParseErrorKind, RequestMeta,
    Target, known_method,
};
pub use request::{McpRequest, ProtocolError, ProtocolErrorKind};
pub use response::{ReadResponses, ResponseMessage, ResponseOutcome};
pub use session_id::{InvalidSessionId, SessionId};
pub use version::{Era, ProtocolVersion, UnknownVersion};
