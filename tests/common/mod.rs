//! Shared fixtures for the integration tests: real rmcp servers and clients over TCP on
//! 127.0.0.1, raw HTTP helpers, and launchers for real `redis-server` / `nginx` processes.
//!
//! Use it with `mod common;` at the top of a test file. Every item is re-exported here:
//!
//! - [`rmcp_router`] / [`rmcp_service`] / [`rmcp_config`]: the demo tool server
//!   (`echo`, `slow_count`, `whoami`, from `examples/common/tools.rs`) as rmcp's
//!   `StreamableHttpService`, Host check off (our guard owns it);
//! - [`serve`] / [`serve_service`] → [`TestServer`] (`.addr`, `.url`), shut down on drop;
//! - [`legacy_client`] (pinned to 2025-11-25, sessions) and [`modern_client`] (2026-07-28,
//!   rmcp's default), `*_with_auth` variants taking an `Authorization` header value;
//! - [`http_client`] and [`post_json`] for raw probing;
//! - [`handwritten_router`]: a plain-axum MCP endpoint with none of the SSE hygiene (SSE tests);
//! - [`ExampleProcess`]: an example binary (`server --bare`, …) as an OS process, killed
//!   with SIGKILL and restarted on the same port at will;
//! - [`Redis::start`] and [`Nginx::start`]: real `redis-server` / `nginx` processes on free
//!   ports, killed on drop; `None` with a printed reason when the binary is absent, a panic
//!   when `MCP_EDGE_REQUIRE_SERVERS=1`.
#![allow(dead_code, unused_imports)]

#[path = "../../examples/common/tools.rs"]
pub mod tools;

#[cfg(feature = "jwt")]
pub mod auth;
mod client;
mod example;
mod guard;
mod handwritten;
mod http;
mod nginx;
mod process;
mod redis;
mod resume;
mod server;
mod session;
mod streams;

pub use client::*;
pub use example::*;
pub use guard::*;
pub use handwritten::*;
pub use http::*;
pub use nginx::*;
pub use process::{
    KillOnDrop, REQUIRE_SERVERS_ENV, TempDir, example_binary, find_binary, free_port, skip_or_fail,
};
pub use redis::*;
pub use resume::*;
pub use server::*;
pub use session::*;
pub use streams::*;
pub use tools::DemoTools;
