//! [`LimitLayer`]: rate limits, quotas, concurrency and stream caps that understand MCP: per
//! principal, client, session or address, per method and per tool, shared across instances.
//!
//! One caller can starve the others: a loop of `tools/call deploy_prod`, a client that opens a
//! new SSE stream per request until the gateway runs out of memory. A generic HTTP limiter
//! sees neither the caller nor the tool (they are in the token and the body), and tower's
//! `ConcurrencyLimit` lets a stream go at its response head. This layer runs after auth, where
//! the [`Principal`](crate::Principal) is known and the body is parsed, and decides each call
//! against a list of [`Rule`]s before the server sees it.
//!
//! # Rules
//!
//! - A rule counts the messages whose method (and tool, for `tools/call`) match its globs,
//!   keyed [`Per`] principal (issuer and subject), client id, session, client address, tool
//!   or method, in any combination; a caller part the request lacks falls back to the
//!   address, so anonymous callers are limited per address.
//! - Its [`Budget`] is a rate with a burst (GCRA), a quota over a fixed window, or a cap on
//!   calls in flight. A tool can cost more than 1 ([`Rule::cost`]).
//! - A call passes only if every rule it meets lets it through, and then takes from all of
//!   them; a refused call takes nothing. A 2025-03-26 batch counts each message.
//! - A call over a limit gets `429 Too Many Requests` with `Retry-After` (whole seconds) and
//!   a JSON-RPC error body with the request's id, code `-32600`, and `error.data`
//!   `{"retryAfter": <s>, "retryAfterMs": <ms>, "rule": "<rule name>"}`; the message names
//!   the rule and the caller's key (`principal=alice`), and so does the audit record.
//!   `initialize` gets a 429 too, never 400/404/405 (R45).
//! - A concurrency place is held by the **response body** ([`LimitBody`]) until it ends,
//!   fails, or is dropped because the client left: an SSE stream holds its place for as long
//!   as it is open. A rule's [`lifetime`](Rule::lifetime) and [`idle`](Rule::idle) time end
//!   the SSE streams it met at an event boundary.
//!
//! The text form, for command lines (`--limit` in the examples), is
//! `METHOD[:TOOL_GLOB]=N/(s|min|h) per (principal|session|client|ip)`; see
//! [`Rule`'s `FromStr`](Rule#impl-FromStr-for-Rule).
//!
//! # Backends
//!
//! By default budgets live in memory, local to one instance: 64 shards of a hash map keyed by
//! a 64-bit keyed hash of (rule, key), each behind its own short lock, no global lock, no
//! allocation for a known key, spent entries swept as a shard grows. The `governor` crate was
//! the alternative and is the bench's anchor: its keyed limiter is one GCRA per limiter, with
//! no refunds (needed so a call refused by its second rule gives back what the first took),
//! no quota over a window, no concurrency places and no costs above the burst, and its state
//! would not match the Redis script's; with it, each rule would still need its own limiter and
//! the quotas and places a store of their own. The sharded GCRA here is a few dozen lines;
//! `benches/limit.rs` measures it against `governor`'s keyed check alone (about 830
//! instructions for a one-rule decision, reading the request included, against 540 for the
//! bare check; 1,400 for the whole layer with its response wrapper, 2,400 with three rules).
//! Per call, the caller's parts are hashed once (a keyed SipHash) whatever the number of
//! rules, the clock is read once, and globs were classified (name, prefix, suffix) when the
//! rule was built.
//!
//! With the `redis` feature, [`LimitLayer::redis`] keeps the rate, quota and concurrency
//! budgets in Redis (one Lua script per decision, hash-tagged keys for Redis Cluster), so
//! every instance shares one budget; a concurrency place is a lease renewed while its stream
//! lives, so a crashed instance's places come back after one lease. Each rule says what
//! happens when Redis fails ([`Rule::fail_closed`], [`Rule::fail_open`]): see
//! [`redis`] for the details.
//!
//! # Runtime, failure and cancellation
//!
//! Needs a tokio runtime for the stream timers and the Redis calls (the local decision itself
//! is synchronous). A local decision cannot fail. A call dropped before its response gives its
//! places back at once; a stream whose client leaves gives them back when hyper drops the body.
//!
//! ```
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use mcp_edge::limit::{LimitLayer, Rule};
//! use mcp_edge::{InspectLayer, Principal};
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let rule: Rule = "tools/call:deploy_*=2/min per principal".parse().unwrap();
//! let service = ServiceBuilder::new()
//!     .layer(InspectLayer::new())
//!     .map_request(|mut request: Request<_>| {
//!         // Stands in for the auth layer.
//!         request.extensions_mut().insert(Principal::new("alice"));
//!         request
//!     })
//!     .layer(LimitLayer::new().rule(rule))
//!     .service_fn(|_request| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from("{}"))))
//!     });
//!
//! let call = |id: u32| {
//!     let body = format!(
//!         r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"deploy_prod","arguments":{{}}}}}}"#
//!     );
//!     Request::post("/mcp")
//!         .header("content-type", "application/json")
//!         .header("accept", "application/json, text/event-stream")
//!         .header("mcp-protocol-version", "2025-11-25")
//!         .body(Full::new(Bytes::from(body)))
//!         .unwrap()
//! };
//! assert_eq!(service.clone().oneshot(call(1)).await.unwrap().status(), StatusCode::OK);
//! assert_eq!(service.clone().oneshot(call(2)).await.unwrap().status(), StatusCode::OK);
//! let refused = service.oneshot(call(3)).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()["retry-after"], "30");
//! # }
//! ```

mod body;
mod decide;
mod future;
mod layer;
#[cfg(feature = "redis")]
mod lease;
mod local;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
mod rule;
mod service;

pub use body::LimitBody;
pub use decide::LimitCounts;
pub use future::ResponseFuture;
pub use layer::LimitLayer;
pub use rule::{Budget, FailPolicy, Glob, ParseRuleError, Per, Rule};
pub use service::Limit;

#[cfg(feature = "redis")]
pub use self::redis::{RedisLimits, RedisLimitsBuilder};
