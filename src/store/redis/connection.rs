//! [`RedisSource`]: where the Redis backends connect (one server by URL, `rediss://` for TLS,
//! a connection manager you already have, or a Redis Cluster), and the one connection type
//! they all share.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, Pipeline, RedisFuture, Value};

use crate::store::StoreError;

/// Where a Redis backend ([`RedisSessionStore`](super::RedisSessionStore),
/// [`RedisEventStore`](super::RedisEventStore), [`RedisLimits`](crate::limit::RedisLimits))
/// connects. Every builder takes one (`builder(source)`), and a URL converts into one, so
/// `builder("redis://127.0.0.1:6379")` still reads as before.
///
/// - **A URL**: `redis://host:port/db`, or `rediss://host:port/db` for TLS (feature
///   `redis-tls`; the system's root certificates), connecting lazily through a
///   [`ConnectionManager`] that reconnects by itself.
/// - **A [`Client`]** you built, e.g. with [`Client::build_with_tls`] for a private CA or
///   client certificates.
/// - **A [`ConnectionManager`]** you already have (its own timeouts and retries apply; the
///   store still bounds each call by its own timeout).
/// - **A Redis Cluster**: [`RedisSource::cluster`] with some node URLs (the others are
///   discovered), a [`ClusterClient`], or a [`ClusterConnection`].
///
/// Built sources connect lazily: a Redis that is down at start-up gives store errors (a 503,
/// or the limit rules' failure policy), not a failed start, and the connection recovers when
/// Redis is back. Every attempt and response of a connection the store makes is bounded by
/// the store's timeout.
///
/// ```no_run
/// use mcp_edge::store::redis::{RedisEventStore, RedisSessionStore, RedisSource};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // One server, TLS (feature `redis-tls`):
/// let sessions = RedisSessionStore::open("rediss://redis.internal:6380")?;
/// // A cluster, from any of its nodes:
/// let cluster = RedisSource::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
/// let events = RedisEventStore::builder(cluster).open()?;
/// // A connection manager the application already has:
/// let manager = redis::Client::open("redis://127.0.0.1:6379")?.get_connection_manager().await?;
/// let sessions = RedisSessionStore::builder(manager).prefix("my-app").open()?;
/// # let _ = (sessions, events); Ok(()) }
/// ```
///
/// # Redis Cluster
///
/// Each store keeps the keys one operation touches on one hash slot (one Lua script per
/// operation, which Cluster allows only within a slot): an SSE stream's log shares its
/// session's hash tag, a caller's limit budgets share the caller's. The session store's
/// scripts also update the cap indexes (all sessions, sessions per principal), so on a
/// cluster every key of the session store carries the prefix as its hash tag
/// (`{mcp-edge}:{<id>}:session`): session records live on one shard, while event logs and
/// limit budgets spread over the cluster.
#[derive(Clone)]
pub struct RedisSource(Source);

#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // built once per store, never on a request's path
enum Source {
    Url(String),
    Client(Client),
    Manager(ConnectionManager),
    Cluster(Vec<String>),
    ClusterClient(ClusterClient),
    ClusterConnection(ClusterConnection),
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            // A URL may hold a password: show the scheme and host only.
            Source::Url(url) => f.debug_tuple("Url").field(&redacted(url)).finish(),
            Source::Client(_) => f.write_str("Client"),
            Source::Manager(_) => f.write_str("ConnectionManager"),
            Source::Cluster(nodes) => f
                .debug_tuple("Cluster")
                .field(&nodes.iter().map(|n| redacted(n)).collect::<Vec<_>>())
                .finish(),
            Source::ClusterClient(_) => f.write_str("ClusterClient"),
            Source::ClusterConnection(_) => f.write_str("ClusterConnection"),
        }
    }
}

/// `scheme://host:port/…` without any `user:password@`.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl RedisSource {
    /// One server at `url` (`redis://`, or `rediss://` with the `redis-tls` feature).
    pub fn url(url: impl Into<String>) -> Self {
        RedisSource(Source::Url(url.into()))
    }

    /// One server through a [`Client`] you built (TLS with your own roots or client
    /// certificates: [`Client::build_with_tls`]).
    pub fn client(client: Client) -> Self {
        RedisSource(Source::Client(client))
    }

    /// A Redis Cluster reached through any of `nodes` (`redis://` or `rediss://` URLs); the
    /// other nodes and the slot map are discovered, and followed as they change.
    pub fn cluster<I, U>(nodes: I) -> Self
    where
        I: IntoIterator<Item = U>,
        U: Into<String>,
    {
        RedisSource(Source::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    /// A Redis Cluster through a [`ClusterClient`] you built (credentials, TLS, read
    /// routing).
    pub fn cluster_client(client: ClusterClient) -> Self {
        RedisSource(Source::ClusterClient(client))
    }

    /// Whether this source is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(
            self.0,
            Source::Cluster(_) | Source::ClusterClient(_) | Source::ClusterConnection(_)
        )
    }

    /// The connection, made lazily, every attempt and response bounded by `timeout` (a ready
    /// connection is taken as it is). Fails only on a bad URL.
    pub(crate) fn connect(self, timeout: Duration) -> Result<RedisConnection, StoreError> {
        #[cfg(feature = "redis-tls")]
        install_tls_provider();
        let single = |client: Client| {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(500));
            ConnectionManager::new_lazy_with_config(client, config)
                .map(RedisConnection::Single)
                .map_err(StoreError::unavailable)
        };
        let cluster = |client: ClusterClient| {
            let config = ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            RedisConnection::Cluster(client.get_pending_async_connection_with_config(config))
        };
        match self.0 {
            Source::Url(url) => {
                single(Client::open(url.as_str()).map_err(StoreError::unavailable)?)
            }
            Source::Client(client) => single(client),
            Source::Manager(manager) => Ok(RedisConnection::Single(manager)),
            Source::Cluster(nodes) => {
                let client = ClusterClient::new(nodes.iter().map(String::as_str))
                    .map_err(StoreError::unavailable)?;
                Ok(cluster(client))
            }
            Source::ClusterClient(client) => Ok(cluster(client)),
            Source::ClusterConnection(conn) => Ok(RedisConnection::Cluster(conn)),
        }
    }
}

impl From<&str> for RedisSource {
    fn from(url: &str) -> Self {
        RedisSource::url(url)
    }
}

impl From<String> for RedisSource {
    fn from(url: String) -> Self {
        RedisSource::url(url)
    }
}

impl From<&String> for RedisSource {
    fn from(url: &String) -> Self {
        RedisSource::url(url.as_str())
    }
}

impl From<Client> for RedisSource {
    fn from(client: Client) -> Self {
        RedisSource::client(client)
    }
}

impl From<ConnectionManager> for RedisSource {
    fn from(manager: ConnectionManager) -> Self {
        RedisSource(Source::Manager(manager))
    }
}

impl From<ClusterClient> for RedisSource {
    fn from(client: ClusterClient) -> Self {
        RedisSource::cluster_client(client)
    }
}

impl From<ClusterConnection> for RedisSource {
    fn from(conn: ClusterConnection) -> Self {
        RedisSource(Source::ClusterConnection(conn))
    }
}

/// rustls needs one process-wide crypto provider when several are compiled in (reqwest's
/// aws-lc-rs beside ours): install ring's unless the application installed one.
#[cfg(feature = "redis-tls")]
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// The connection every Redis backend holds: one server or a cluster. Cheap to clone (both
/// are multiplexed handles).
#[derive(Clone)]
pub(crate) enum RedisConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisConnection {
    /// Whether keys must share a hash slot to be used in one script.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, RedisConnection::Cluster(_))
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_command(cmd),
            RedisConnection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(conn) => conn.get_db(),
            RedisConnection::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        let source = RedisSource::url("redis://user:secret@redis.internal:6379/0");
        let shown = format!("{source:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("redis.internal:6379/0"), "{shown}");
        assert!(RedisSource::cluster(["redis://a:7000"]).is_cluster());
        assert!(!RedisSource::from("redis://a:6379").is_cluster());
    }
}
