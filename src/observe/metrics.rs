//! Metric names, and the one-line hooks the layers call to record them.
//!
//! # Why the `metrics` facade
//! The [`metrics`](https://docs.rs/metrics) crate is a facade in the manner of `log`: a library
//! records through macros, the program installs one recorder (Prometheus, OpenTelemetry through
//! `metrics-exporter-opentelemetry`, StatsD, …), and until it does every call is a no-op behind
//! one atomic load. That suits a library of layers: no exporter, no global meter provider and
//! no runtime chosen for the user, a small dependency (one crate), and a stable API (the
//! `opentelemetry` metrics API changes with every 0.x release, and holding its instruments
//! would put its types in our public API). Without the `metrics` cargo feature the hooks below
//! compile to nothing.
//!
//! # Names
//! Names follow the OpenTelemetry conventions (dots; a Prometheus exporter writes them with
//! underscores: `mcp.server.operation.duration` is scraped as
//! `mcp_server_operation_duration`). Durations are in seconds. Every label value is bounded:
//! methods outside MCP's list are recorded as `_other`, and a tool name only when the server
//! answered the call (a name a client made up never becomes a series).
//!
//! | name | kind | labels |
//! |---|---|---|
//! | [`OPERATION_DURATION`] | histogram (s) | `mcp.method.name`, `gen_ai.tool.name`, `outcome`, `era` |
//! | [`SESSION_DURATION`] | histogram (s) | `ended` (`deleted`, `server_ended`) |
//! | [`REFUSALS`] | counter | `layer`, `reason` |
//! | [`SSE_STREAMS_OPEN`] | gauge | – |
//! | [`SSE_HEARTBEATS`] | counter | – |
//! | [`SSE_DRAINED`] | counter | – |
//! | [`SESSIONS_ACTIVE`] | gauge (set by [`sessions_active`]) | – |
//! | [`JWKS_FETCHES`] | counter | `result` (`ok`, `error`) |
//! | [`TOKEN_CACHE`] | counter | `result` (`hit`, `miss`) |
//! | [`REPLICA_IN_FLIGHT`] | gauge | `replica` |
//! | [`REPLICA_EJECTIONS`] | counter | `replica` |
//! | [`REPLICA_HEALTHY`] | gauge (0/1) | `replica` |
//! | [`AUDIT_DROPPED`] | counter | `sink` |
//! | [`STORE_ERRORS`] | counter | `kind` (`unavailable`, `timeout`, …) |
//! | [`LIMIT_FAIL_OPEN`] | counter | – |
//!
//! Refusals by the limit layer are [`REFUSALS`] with `layer="limit"`.

#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use std::time::Duration;

/// `mcp.server.operation.duration`: from a message's arrival to its outcome (for a stream,
/// the matching response event), per MCP message.
pub const OPERATION_DURATION: &str = "mcp.server.operation.duration";
/// `mcp.server.session.duration`: a legacy session's life, from `initialize` to its end.
pub const SESSION_DURATION: &str = "mcp.server.session.duration";
/// `mcp_edge.refusals`: requests a layer refused, by layer and reason.
pub const REFUSALS: &str = "mcp_edge.refusals";
/// `mcp_edge.sse.streams.open`: SSE responses now open.
pub const SSE_STREAMS_OPEN: &str = "mcp_edge.sse.streams.open";
/// `mcp_edge.sse.heartbeats`: heartbeat comments sent.
pub const SSE_HEARTBEATS: &str = "mcp_edge.sse.heartbeats";
/// `mcp_edge.sse.drained`: streams ended by a drain (shutdown or maximum age).
pub const SSE_DRAINED: &str = "mcp_edge.sse.drained";
/// `mcp_edge.sessions.active`: live legacy sessions in the session store (see
/// [`sessions_active`]).
pub const SESSIONS_ACTIVE: &str = "mcp_edge.sessions.active";
/// `mcp_edge.jwks.fetches`: JWK set fetches, by result.
pub const JWKS_FETCHES: &str = "mcp_edge.jwks.fetches";
/// `mcp_edge.auth.token_cache`: verified-token cache lookups, by result.
pub const TOKEN_CACHE: &str = "mcp_edge.auth.token_cache";
/// `mcp_edge.replica.in_flight`: requests under way at each replica.
pub const REPLICA_IN_FLIGHT: &str = "mcp_edge.replica.in_flight";
/// `mcp_edge.replica.ejections`: replicas ejected after connection failures.
pub const REPLICA_EJECTIONS: &str = "mcp_edge.replica.ejections";
/// `mcp_edge.replica.healthy`: 1 while a replica takes new work, 0 while it is ejected.
pub const REPLICA_HEALTHY: &str = "mcp_edge.replica.healthy";
/// `mcp_edge.audit.dropped`: audit events a queued sink dropped.
pub const AUDIT_DROPPED: &str = "mcp_edge.audit.dropped";
/// `mcp_edge.store.errors`: store operations that failed (sessions, events, limits), by kind.
pub const STORE_ERRORS: &str = "mcp_edge.store.errors";
/// `mcp_edge.limit.fail_open`: decisions the limit layer's shared store could not make, let
/// through by a fail-open rule.
pub const LIMIT_FAIL_OPEN: &str = "mcp_edge.limit.fail_open";

/// Buckets for [`OPERATION_DURATION`], in seconds (the OpenTelemetry MCP conventions' advice).
pub const OPERATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Registers the description and unit of every metric with the installed recorder (for
/// `# HELP` lines); call it once after installing one. Without the `metrics` feature it does
/// nothing.
pub fn describe() {
    #[cfg(feature = "metrics")]
    {
        use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
        describe_histogram!(
            OPERATION_DURATION,
            Unit::Seconds,
            "MCP messages, from arrival to outcome"
        );
        describe_histogram!(SESSION_DURATION, Unit::Seconds, "MCP session lifetimes");
        describe_counter!(REFUSALS, "Requests refused by an mcp-edge layer");
        describe_gauge!(SSE_STREAMS_OPEN, "SSE responses open");
        describe_counter!(SSE_HEARTBEATS, "SSE heartbeat comments sent");
        describe_counter!(SSE_DRAINED, "SSE streams ended by a drain");
        describe_gauge!(SESSIONS_ACTIVE, "Live sessions in the session store");
        describe_counter!(JWKS_FETCHES, "JWK set fetches");
        describe_counter!(TOKEN_CACHE, "Verified-token cache lookups");
        describe_gauge!(REPLICA_IN_FLIGHT, "Requests under way per replica");
        describe_counter!(REPLICA_EJECTIONS, "Replica ejections");
        describe_gauge!(REPLICA_HEALTHY, "1 while a replica takes new work");
        describe_counter!(AUDIT_DROPPED, "Audit events dropped");
        describe_counter!(STORE_ERRORS, "Store operations that failed");
        describe_counter!(
            LIMIT_FAIL_OPEN,
            "Limit decisions let through on a store failure"
        );
    }
}

/// One MCP message's outcome (`method` already bounded by the caller, `tool` only when the
/// server answered).
#[inline]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn operation(
    method: &'static str,
    tool: Option<&str>,
    outcome: &'static str,
    era: &'static str,
    duration: Duration,
) {
    #[cfg(feature = "metrics")]
    {
        let tool = metrics::SharedString::from(tool.map(str::to_owned).unwrap_or_default());
        metrics::histogram!(
            OPERATION_DURATION,
            "mcp.method.name" => method,
            "gen_ai.tool.name" => tool,
            "outcome" => outcome,
            "era" => era,
        )
        .record(duration.as_secs_f64());
    }
}

/// A session ended: by the client's `DELETE` (`deleted`), or because the server no longer
/// knew it (`server_ended`); `created` is when it began, when known.
#[inline]
pub(crate) fn session_ended(deleted: bool, created: Option<std::time::SystemTime>) {
    #[cfg(feature = "metrics")]
    if let Some(age) = created.and_then(|c| c.elapsed().ok()) {
        let ended = if deleted { "deleted" } else { "server_ended" };
        metrics::histogram!(SESSION_DURATION, "ended" => ended).record(age.as_secs_f64());
    }
}

/// A refusal (called where every [`Rejection`](crate::Rejection) response is built).
#[inline]
pub(crate) fn refused(layer: &'static str, reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(REFUSALS, "layer" => layer, "reason" => reason).increment(1);
}

/// A heartbeat comment sent.
#[inline]
pub(crate) fn heartbeat() {
    #[cfg(feature = "metrics")]
    metrics::counter!(SSE_HEARTBEATS).increment(1);
}

/// A stream ended by a drain.
#[inline]
pub(crate) fn drained() {
    #[cfg(feature = "metrics")]
    metrics::counter!(SSE_DRAINED).increment(1);
}

/// A JWK set fetch ended.
#[inline]
#[cfg_attr(not(feature = "jwks-fetch"), allow(dead_code))]
pub(crate) fn jwks_fetch(ok: bool) {
    #[cfg(feature = "metrics")]
    metrics::counter!(JWKS_FETCHES, "result" => if ok { "ok" } else { "error" }).increment(1);
}

/// A verified-token cache lookup.
#[inline]
pub(crate) fn token_cache(hit: bool) {
    #[cfg(feature = "metrics")]
    metrics::counter!(TOKEN_CACHE, "result" => if hit { "hit" } else { "miss" }).increment(1);
}

/// One replica's series ([`REPLICA_IN_FLIGHT`], [`REPLICA_EJECTIONS`], [`REPLICA_HEALTHY`]),
/// registered once when the replica joins the set, so a call costs no key lookup. Zero-sized
/// without the `metrics` feature.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "gateway"), allow(dead_code))]
pub(crate) struct ReplicaGauges {
    #[cfg(feature = "metrics")]
    series: Option<ReplicaSeries>,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct ReplicaSeries {
    in_flight: metrics::Gauge,
    healthy: metrics::Gauge,
    ejections: metrics::Counter,
}

#[cfg_attr(not(feature = "gateway"), allow(dead_code))]
impl ReplicaGauges {
    /// The series of replica `id` (healthy to start with).
    pub(crate) fn new(id: &str) -> Self {
        #[cfg(feature = "metrics")]
        {
            let label = || [metrics::Label::new("replica", id.to_owned())];
            let series = ReplicaSeries {
                in_flight: metrics::gauge!(REPLICA_IN_FLIGHT, label().iter()),
                healthy: metrics::gauge!(REPLICA_HEALTHY, label().iter()),
                ejections: metrics::counter!(REPLICA_EJECTIONS, label().iter()),
            };
            series.healthy.set(1.0);
            ReplicaGauges {
                series: Some(series),
            }
        }
        #[cfg(not(feature = "metrics"))]
        ReplicaGauges {}
    }

    /// A request started (`1.0`) or ended (`-1.0`) at the replica.
    #[inline]
    pub(crate) fn in_flight(&self, delta: f64) {
        #[cfg(feature = "metrics")]
        if let Some(series) = &self.series {
            series.in_flight.increment(delta);
        }
    }

    /// The replica was ejected (`false`) or took work again (`true`).
    #[inline]
    pub(crate) fn health(&self, healthy: bool) {
        #[cfg(feature = "metrics")]
        if let Some(series) = &self.series {
            if !healthy {
                series.ejections.increment(1);
            }
            series.healthy.set(if healthy { 1.0 } else { 0.0 });
        }
    }
}

/// An audit event dropped by a queued sink.
#[inline]
pub(crate) fn audit_dropped(sink: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(AUDIT_DROPPED, "sink" => sink).increment(1);
}

/// A store operation failed (counted where the [`StoreError`](crate::store::StoreError) is
/// made).
#[inline]
pub(crate) fn store_error(kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(STORE_ERRORS, "kind" => kind).increment(1);
}

/// A limit decision let through because the shared store failed under a fail-open rule.
#[inline]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn limit_fail_open() {
    #[cfg(feature = "metrics")]
    metrics::counter!(LIMIT_FAIL_OPEN).increment(1);
}

/// Holds one unit of a gauge ([`SSE_STREAMS_OPEN`], [`SESSIONS_ACTIVE`]) and gives it back on
/// drop. Zero-sized without the `metrics` feature.
#[derive(Debug)]
pub(crate) struct GaugeUnit {
    #[cfg(feature = "metrics")]
    gauge: metrics::Gauge,
}

impl GaugeUnit {
    /// One more SSE stream open, until the returned value drops.
    #[inline]
    pub(crate) fn sse_stream() -> Self {
        Self::of(SSE_STREAMS_OPEN)
    }

    #[inline]
    fn of(name: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        {
            let gauge = metrics::gauge!(name);
            gauge.increment(1.0);
            GaugeUnit { gauge }
        }
        #[cfg(not(feature = "metrics"))]
        GaugeUnit {}
    }
}

impl Drop for GaugeUnit {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        self.gauge.decrement(1.0);
    }
}

/// Sets [`SESSIONS_ACTIVE`] to `total`: the live sessions of the session store
/// ([`SessionStore::count`](crate::store::SessionStore::count)), which knows about expiry and,
/// with Redis, about every instance. Call it when the metrics are scraped.
pub fn sessions_active(total: u64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!(SESSIONS_ACTIVE).set(total as f64);
}
