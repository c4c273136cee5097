//! Redis backends (feature `redis`): [`RedisSessionStore`] for session records,
//! [`RedisEventStore`] for SSE event logs and [`RedisPinStore`] for an aggregator's pinned
//! tool definitions, shared by every gateway instance.
//!
//! # Sessions
//!
//! Each session is one Redis hash, `{prefix}:{<session id>}:session`, whose key TTL Redis
//! keeps (the smaller of the idle TTL and what is left of the absolute lifetime, renewed on
//! every [`touch`](crate::store::SessionStore::touch)). Every key of a session carries the session id as a
//! hash tag, so a Redis Cluster keeps them on one slot. Two sorted sets index live sessions
//! for the caps: `{prefix}:sessions` (all) and `{prefix}:principal:<sha256 of the binding>`
//! (per principal), scored by each session's deadline.
//!
//! Every call is bounded by a timeout (1 s by default) and fails with a [`StoreError`], which
//! the session layer answers with a `503` and a JSON-RPC body: a Redis that is down or slow
//! never panics or hangs a request, and the store recovers by itself when Redis is back (the
//! connection manager reconnects).
//!
//! Every backend connects through a [`RedisSource`]: a URL (`rediss://` for TLS with the
//! `redis-tls` feature), a [`Client`](redis::Client) or a
//! [`ConnectionManager`](redis::aio::ConnectionManager) you already have, or a Redis
//! Cluster (see [`RedisSource`] for how keys are placed on its slots).
//!
//! With the `rmcp` feature, the store also implements rmcp's own
//! [`SessionStore`](rmcp::transport::streamable_http_server::session::SessionStore), so rmcp
//! servers on several replicas can restore each other's sessions: set it as
//! `StreamableHttpServerConfig::session_store`.
//!
//! ```no_run
//! use mcp_edge::session::SessionLayer;
//! use mcp_edge::store::redis::RedisSessionStore;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Runtime::new()?;
//! # rt.block_on(async {
//! let store = RedisSessionStore::open("redis://127.0.0.1:6379")?;
//! let layer = SessionLayer::with_store(store).enforce();
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok(())
//! # }
//! ```
//!
//! # Cancel safety
//!
//! Each operation is one Lua script or command, so it is applied entirely or not at all;
//! dropping the future after the command was sent may still apply it.

mod connection;
mod event;
mod pin;
mod session;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::RedisError;

use crate::store::{StoreError, StoreErrorKind};

pub(crate) use connection::RedisConnection;
pub use connection::RedisSource;
pub use event::{RedisEventStore, RedisEventStoreBuilder};
pub use pin::{RedisPinStore, RedisPinStoreBuilder};
pub use session::{RedisSessionStore, RedisSessionStoreBuilder};

/// Runs a Redis call under the timeout, mapping every failure to a [`StoreError`].
pub(crate) async fn bounded<T, F>(timeout: Duration, future: F) -> Result<T, StoreError>
where
    F: Future<Output = Result<T, RedisError>>,
{
    match tokio::time::timeout(timeout, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) if err.is_timeout() => {
            Err(StoreError::with_source(StoreErrorKind::Timeout, err))
        }
        Ok(Err(err)) => Err(unavailable(err)),
        Err(_) => Err(StoreError::timeout()),
    }
}

fn unavailable(err: RedisError) -> StoreError {
    StoreError::unavailable(err)
}

fn now_ms() -> u64 {
    to_ms(SystemTime::now())
}

fn to_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
