//! [`Aggregator`] (feature `aggregator`): one MCP endpoint in front of many MCP servers.
//!
//! A client that needs the tools of several MCP servers connects to each, keeps a session
//! with each, and sees colliding tool names. The aggregator is a tower [`Service`] that
//! presents one MCP server made of named upstreams (each a
//! [`proxy::HttpUpstream`](crate::proxy::HttpUpstream) to a remote server, or any tower
//! HTTP service), so the layers in front of it (auth, audit, limits) see one endpoint and
//! namespaced names.
//!
//! # What it does
//!
//! - **Both eras at once.** A legacy client (`initialize`, `Mcp-Session-Id`) gets an
//!   aggregator session; the aggregator holds one upstream session per client session per
//!   upstream, opened when first needed (an upstream whose capabilities are not known yet is
//!   asked at the client's `initialize`), and ended when the client DELETEs its session or
//!   the session stays unused for [`session_idle_timeout`](AggregatorBuilder::session_idle_timeout).
//!   A 2026-07-28 client is served statelessly and its requests reach the upstreams as
//!   2026-07-28 requests (its `_meta` and the `Mcp-Method` / `Mcp-Name` headers, R36, R38).
//! - **Versions negotiated per upstream.** An upstream session uses the version the upstream
//!   chose in its own `initialize` (`MCP-Protocol-Version` follows it), whatever the client's.
//! - **Merged `initialize` / `server/discover`**: the union of the upstreams' capabilities
//!   (`tools`, `prompts`, `resources`, `completions`, `logging`; `listChanged` for a list when
//!   an upstream promises it, and for tools when [`PinPolicy::Hide`] may hide some; not
//!   `subscribe`), and the instructions of each upstream under its namespace.
//! - **Merged lists** (`tools/list`, `prompts/list`, `resources/list`,
//!   `resources/templates/list`): each upstream is asked at once, its entries renamed
//!   `{namespace}__{name}` (the separator is [configurable](AggregatorBuilder::separator)),
//!   resource URIs and templates `{namespace}+{uri}` (still a URI, and reversible). When
//!   upstreams have more pages, the result's `nextCursor` is an opaque cursor holding each
//!   upstream's own cursor; the next call continues all of them at once.
//! - **Lists cached per upstream**: each upstream's page is kept as long as its `ttlMs` hint
//!   says (or [`list_max_age`](AggregatorBuilder::list_max_age); without either, only for an
//!   upstream that declared `listChanged`, [`DEFAULT_LIST_MAX_AGE`]), served only within the
//!   authorization context it was fetched in unless marked `cacheScope: "public"` (R64), and
//!   dropped on `notifications/…/list_changed`, on [`Aggregator::invalidate`] and when a
//!   request to its upstream fails. A merged list from cache costs a few µs.
//! - **Tool rules per upstream** (MetaMCP's tool overrides):
//!   [`include_tools`](Upstream::include_tools) / [`exclude_tools`](Upstream::exclude_tools)
//!   globs on the upstream's own names, and [`rename_tool`](Upstream::rename_tool). A tool
//!   that is not shown cannot be called either.
//! - **Routed calls**: `tools/call`, `prompts/get`, `resources/read` (and `subscribe`),
//!   `completion/complete` go to the upstream their name's namespace names, with the name it
//!   knows. Every request to an upstream carries a fresh id from one counter, and the answer
//!   gets the client's id back, so concurrent calls whose ids collide never cross. A streamed
//!   (SSE) answer is passed on event by event as it comes: progress notifications and log
//!   messages reach the caller whose call they belong to (each call has its own stream, so
//!   two callers using the same `progressToken` never see each other's progress; tokens are
//!   not rewritten). In 2026-07-28, closing the stream drops the upstream stream, which
//!   cancels the upstream request (R12).
//! - **Relayed messages** (legacy sessions): a request an upstream sends the client
//!   (`sampling/createMessage`, `elicitation/create`, `roots/list`, on a call's stream or on
//!   its GET stream) reaches the client under a fresh id of the client's session, and the
//!   answer the client POSTs goes back to that upstream session with the upstream's own id;
//!   the upstream cancelling it (`notifications/cancelled`) reaches the client with the id
//!   the client knows. The client's `notifications/cancelled` reaches the upstream running
//!   the call, with the id that upstream got; `notifications/roots/list_changed` reaches every
//!   upstream session. The client's `sampling`, `elicitation` and `roots` capabilities are
//!   passed on to the upstreams in its `initialize`. In 2026-07-28 there are no such requests
//!   on streams: an upstream asks with an `InputRequiredResult`, which reaches the client
//!   unchanged, and the client's retry (`inputResponses`, `requestState`) is routed by name
//!   to the same upstream like any call.
//! - **The client's GET stream** (legacy): it merges the GET streams of the client's upstream
//!   sessions, each opened when the client opens its GET (for the upstream sessions open
//!   then) or when an upstream session opens while it is open; it carries what upstreams send
//!   outside calls (`notifications/message`, `notifications/*/list_changed`, requests to the
//!   client). It ends when the client closes it, opens another, or its session ends (DELETE or
//!   idle expiry); a GET without a session gets 405.
//! - **`subscriptions/listen`** (2026-07-28, R15): acknowledged at once with the list changes
//!   asked for (`toolsListChanged`, `promptsListChanged`, `resourcesListChanged`; resource
//!   subscriptions are not relayed and left out of the acknowledgement), then each upstream's
//!   own listen stream for them is opened and merged in, every notification tagged with the
//!   client's subscription id. An upstream that refuses the method adds nothing.
//!
//! - **Failure isolation**: an upstream that fails or is slower than its
//!   [`timeout`](Upstream::timeout) is left out of merged lists (logged), and a call routed
//!   to it gets a JSON-RPC error (`-32603`) whose message and `data.upstream` name it, in an
//!   HTTP 200: one upstream never turns the endpoint into a 5xx. An upstream that forgot a
//!   session (404) gets a new one and the request once more.
//!
//! - **Pinned tool definitions** (against "rug pulls", CVE-2025-54136): the SHA-256 of each
//!   upstream tool's definition (keys in canonical order) is recorded the first time a list
//!   shows it, in a [`PinStore`](crate::store::PinStore)
//!   ([`pin_store`](AggregatorBuilder::pin_store): this process's memory by default, or
//!   `RedisPinStore` shared by every aggregator instance, which then agree on the first
//!   definition and keep pins across restarts). A later different definition is logged
//!   (target `mcp_edge::aggregate`), flagged in the audit record of the list that met it (a
//!   [`PinAlert`](crate::context::PinAlert) on the response: `mcp_edge.pin.changed`) and
//!   listed by [`Aggregator::changed_tools`] until [`Aggregator::approve_tool`] pins it. With
//!   [`PinPolicy::Hide`] it is also left out of lists and refused when called (a `-32602`
//!   error naming it, with a `PinAlert`), and clients listening for list changes (the GET
//!   stream, `subscriptions/listen`) get `notifications/tools/list_changed` when a tool is
//!   hidden or shown again. Lists fetched from an upstream are checked against the store;
//!   calls go by this instance's view of the changes, which follows the store (other
//!   instances' changes and approvals) within [`pin_sync_interval`](AggregatorBuilder::pin_sync_interval).
//!   When the store fails: with `Hide`, a page of tools that cannot be checked is left out
//!   (fail closed) and calls are decided from the changes already known; with `Flag`, tools
//!   are shown unchecked.
//!
//! - **Upstream streams reopened**: an upstream GET or listen stream merged into a client's
//!   stream that ends or breaks is opened again while the client's stream lives (a GET with
//!   `Last-Event-ID` when the upstream gave event ids; a listen request under a fresh id),
//!   after the upstream's `retry:` or a bounded backoff.
//!
//! Not yet: the upstreams' event ids are not passed on to the client, the client's GET
//! stream cannot be resumed with `Last-Event-ID`, and `tasks/list` is not merged.
//! JSON batches (2025-03-26) are refused with 400.
//!
//! # In a stack
//!
//! The aggregator takes the place of your MCP service: put mcp-edge's layers in front of it
//! ([`McpEdge`](crate::McpEdge)), and they see the namespaced names (a scope policy's tool
//! globs match `alpha__*`), and a routed call's response carries
//! [`Routed`](crate::context::Routed) naming its upstream (audit records it as
//! `mcp_edge.upstream`). It reads the `Arc<McpRequest>` the inspect layer left (or
//! classifies the body itself when used alone), binds its sessions to the [`Principal`]
//! when an auth layer runs in front (a session used by another principal gets 404), and
//! refuses with a [`Rejection`](crate::Rejection) by [`RejectedBy::Aggregate`](crate::RejectedBy::Aggregate).
//! The client's `Authorization` header is never sent to an upstream (R59) unless that upstream
//! is configured for it ([`Upstream::forward_authorization`]). Give each upstream its own
//! credentials instead: static headers ([`Upstream::header`], secrets from the environment
//! with [`env_secret`]), or with the `aggregator-oauth` feature an OAuth 2.0 token the
//! aggregator obtains for that upstream (`Upstream::oauth` with an `OAuthClient`: client
//! credentials, or the client's token exchanged at the authorization server, RFC 8693),
//! cached until shortly before it expires.
//!
//! [`Principal`]: crate::Principal
//!
//! # Runtime, failure and cancellation
//!
//! Needs a Tokio runtime (timers; expired sessions' upstream sessions are ended on a spawned
//! task; each upstream stream merged into a GET or listen stream is read by a spawned task,
//! stopped when that stream ends). Each request costs one boxed future. Dropping the response future (the client left)
//! drops the upstream requests in flight; an upstream session being opened then is not
//! recorded, and the upstream forgets it on its own.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use mcp_edge::aggregate::{Aggregator, Upstream};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A stand-in upstream that knows one tool; any tower HTTP service will do.
//! let upstream = tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
//!     let body = request.into_body().collect().await.unwrap().to_bytes();
//!     let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
//!     let result = serde_json::json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]});
//!     let answer = serde_json::json!({"jsonrpc": "2.0", "id": message["id"], "result": result});
//!     let response = http::Response::builder()
//!         .header("content-type", "application/json")
//!         .body(Full::new(Bytes::from(answer.to_string())))
//!         .unwrap();
//!     Ok::<_, std::convert::Infallible>(response)
//! });
//! let aggregator = Aggregator::builder()
//!     .upstream(Upstream::new("alpha", upstream.clone()))
//!     .upstream(Upstream::new("beta", upstream))
//!     .build()
//!     .unwrap();
//!
//! let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{
//!     "io.modelcontextprotocol/protocolVersion":"2026-07-28",
//!     "io.modelcontextprotocol/clientCapabilities":{}}}}"#;
//! let request = http::Request::post("/mcp")
//!     .header("content-type", "application/json")
//!     .header("accept", "application/json, text/event-stream")
//!     .header("mcp-protocol-version", "2026-07-28")
//!     .header("mcp-method", "tools/list")
//!     .body(Full::new(Bytes::from(list)))
//!     .unwrap();
//! let response = aggregator.oneshot(request).await.unwrap();
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! let names: Vec<&str> = answer["result"]["tools"]
//!     .as_array()
//!     .unwrap()
//!     .iter()
//!     .map(|tool| tool["name"].as_str().unwrap())
//!     .collect();
//! assert_eq!(names, ["alpha__echo", "beta__echo"]);
//! # }
//! ```
//!
//! [`Service`]: tower_service::Service

mod body;
mod builder;
mod cache;
mod credentials;
mod events;
mod merge;
mod message;
mod names;
mod pin;
mod relay;
mod service;
mod session;
mod upstream;

pub use crate::store::ChangedTool;
pub use body::{AnswerTooLarge, RoutedBody};
pub use builder::{AggregatorBuilder, DEFAULT_MAX_BODY_BYTES, InvalidAggregator};
pub use cache::DEFAULT_LIST_MAX_AGE;
pub use credentials::{MissingSecret, env_bearer, env_secret};
#[cfg(feature = "aggregator-oauth")]
#[cfg_attr(docsrs, doc(cfg(feature = "aggregator-oauth")))]
pub use credentials::{OAuthClient, OAuthError};
pub use names::{DEFAULT_SEPARATOR, MAX_NAMESPACE_BYTES};
pub use pin::{DEFAULT_PIN_SYNC_INTERVAL, PinPolicy};
pub use service::{AggregateResponse, Aggregator, ResponseFuture};
pub use session::DEFAULT_SESSION_IDLE;
pub use upstream::{DEFAULT_UPSTREAM_TIMEOUT, Upstream};
