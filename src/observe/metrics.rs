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
//! `mcp_server_operation_duration`). Durations are in seconds.
//!
//! # Cardinality
//! Every label value is bounded. Methods outside MCP's list are recorded as `_other`. A tool
//! name becomes a label only when the server answered the call (a name a client made up never
//! becomes a series), only up to [`MAX_TOOL_LABEL_LEN`] bytes, and only for the first
//! [`MAX_TOOL_LABELS`] distinct names of the process; any other tool is recorded as `_other`.
//! So [`OPERATION_DURATION`] has at most a few thousand series, whatever clients send.
//!
//! # Cost
//! A hook resolves its handle (`metrics::Histogram`, `Counter`, `Gauge`) once per label set
//! and recorder for the process, and keeps it in a small table keyed by the recorder's
//! address and those of its `&'static str` label values; each thread keeps a copy of the
//! entries it used. A call then costs a lookup in its own thread's table hashing a few
//! pointers (and, for a tool name, one string hash in the thread's copy of the interned
//! names) and the recorder's own update: no lock, no allocation, and no write to memory
//! another core shares except the recorder's. A recorder installed after the first call, or
//! a thread-local one (`metrics::with_local_recorder`, in tests), gets handles of its own.
//! Without a recorder the handles are the no-op ones; without the `metrics` feature nothing
//! is compiled.
//!
//! What the recorder then costs is its own: `metrics-exporter-prometheus` adds one to an
//! atomic per counter and, per histogram sample, reads a clock and pushes the sample into a
//! lock-free bucket (its upkeep, every few seconds, sorts the samples into the buckets).
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

/// Distinct tool names recorded as a `gen_ai.tool.name` label, per process; later names are
/// recorded as `_other`.
pub const MAX_TOOL_LABELS: usize = 256;
/// The longest tool name recorded as a label (MCP's own limit is 128 characters); a longer one
/// is recorded as `_other`.
pub const MAX_TOOL_LABEL_LEN: usize = 128;

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
        let tool = tool.map_or("", series::tool_label);
        series::HISTOGRAMS
            .get([OPERATION_DURATION, method, tool, outcome, era], || {
                metrics::histogram!(
                    OPERATION_DURATION,
                    "mcp.method.name" => method,
                    "gen_ai.tool.name" => tool,
                    "outcome" => outcome,
                    "era" => era,
                )
            })
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
        series::HISTOGRAMS
            .get(
                [SESSION_DURATION, ended, "", "", ""],
                || metrics::histogram!(SESSION_DURATION, "ended" => ended),
            )
            .record(age.as_secs_f64());
    }
}

/// A refusal (called where every [`Rejection`](crate::Rejection) response is built).
#[inline]
pub(crate) fn refused(layer: &'static str, reason: &'static str) {
    #[cfg(feature = "metrics")]
    series::count(
        [REFUSALS, layer, reason],
        || metrics::counter!(REFUSALS, "layer" => layer, "reason" => reason),
    );
}

/// A heartbeat comment sent.
#[inline]
pub(crate) fn heartbeat() {
    #[cfg(feature = "metrics")]
    series::count([SSE_HEARTBEATS, "", ""], || {
        metrics::counter!(SSE_HEARTBEATS)
    });
}

/// A stream ended by a drain.
#[inline]
pub(crate) fn drained() {
    #[cfg(feature = "metrics")]
    series::count([SSE_DRAINED, "", ""], || metrics::counter!(SSE_DRAINED));
}

/// A JWK set fetch ended.
#[inline]
#[cfg_attr(not(feature = "jwks-fetch"), allow(dead_code))]
pub(crate) fn jwks_fetch(ok: bool) {
    #[cfg(feature = "metrics")]
    {
        let result = if ok { "ok" } else { "error" };
        series::count(
            [JWKS_FETCHES, result, ""],
            || metrics::counter!(JWKS_FETCHES, "result" => result),
        );
    }
}

/// A verified-token cache lookup.
#[inline]
pub(crate) fn token_cache(hit: bool) {
    #[cfg(feature = "metrics")]
    {
        let result = if hit { "hit" } else { "miss" };
        series::count(
            [TOKEN_CACHE, result, ""],
            || metrics::counter!(TOKEN_CACHE, "result" => result),
        );
    }
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
    series::count(
        [AUDIT_DROPPED, sink, ""],
        || metrics::counter!(AUDIT_DROPPED, "sink" => sink),
    );
}

/// A store operation failed (counted where the [`StoreError`](crate::store::StoreError) is
/// made).
#[inline]
pub(crate) fn store_error(kind: &'static str) {
    #[cfg(feature = "metrics")]
    series::count(
        [STORE_ERRORS, kind, ""],
        || metrics::counter!(STORE_ERRORS, "kind" => kind),
    );
}

/// A limit decision let through because the shared store failed under a fail-open rule.
#[inline]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn limit_fail_open() {
    #[cfg(feature = "metrics")]
    series::count([LIMIT_FAIL_OPEN, "", ""], || {
        metrics::counter!(LIMIT_FAIL_OPEN)
    });
}

/// Holds one unit of a gauge ([`SSE_STREAMS_OPEN`], [`SESSIONS_ACTIVE`]) and gives it back on
/// drop. Zero-sized without the `metrics` feature.
#[derive(Debug)]
pub(crate) struct GaugeUnit {
    #[cfg(feature = "metrics")]
    gauge: &'static metrics::Gauge,
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
            let gauge = series::GAUGES.get([name, "", "", "", ""], || metrics::gauge!(name));
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

/// The handle tables (see "Cost" in the module docs).
#[cfg(feature = "metrics")]
mod series {
    use std::cell::RefCell;
    use std::collections::{HashMap, HashSet};
    use std::hash::BuildHasherDefault;
    use std::sync::{LazyLock, RwLock};
    use std::thread::LocalKey;

    use super::{MAX_TOOL_LABEL_LEN, MAX_TOOL_LABELS};

    /// A metric's name and up to four label values (`""` for none).
    type Labels<const N: usize> = [&'static str; N];

    /// One table of handles by key: the process's, and each thread's copy of what it used.
    type Table<H> = HashMap<Key, &'static H, BuildHasherDefault<AddressHasher>>;

    thread_local! {
        static LOCAL_HISTOGRAMS: RefCell<Table<metrics::Histogram>> = RefCell::default();
        static LOCAL_COUNTERS: RefCell<Table<metrics::Counter>> = RefCell::default();
        static LOCAL_GAUGES: RefCell<Table<metrics::Gauge>> = RefCell::default();
        static LOCAL_TOOLS: RefCell<HashSet<&'static str>> = RefCell::default();
    }

    pub(super) static HISTOGRAMS: Handles<metrics::Histogram> = Handles::new(&LOCAL_HISTOGRAMS);
    pub(super) static COUNTERS: Handles<metrics::Counter> = Handles::new(&LOCAL_COUNTERS);
    pub(super) static GAUGES: Handles<metrics::Gauge> = Handles::new(&LOCAL_GAUGES);

    /// Adds one to the counter of `labels` (a name and two label values).
    #[inline]
    pub(super) fn count(labels: Labels<3>, register: impl FnOnce() -> metrics::Counter) {
        let [name, a, b] = labels;
        COUNTERS.get([name, a, b, "", ""], register).increment(1);
    }

    /// The label of tool `name`: the name itself, interned for the process (bounded by
    /// [`MAX_TOOL_LABELS`] and [`MAX_TOOL_LABEL_LEN`]), or `_other`. Found in the thread's
    /// copy of the set first, so a name seen before takes no lock.
    pub(super) fn tool_label(name: &str) -> &'static str {
        const OTHER: &str = "_other";
        static NAMES: LazyLock<RwLock<HashSet<&'static str>>> = LazyLock::new(Default::default);
        if name.len() > MAX_TOOL_LABEL_LEN {
            return OTHER;
        }
        if let Ok(Some(label)) = LOCAL_TOOLS.try_with(|l| l.borrow().get(name).copied()) {
            return label;
        }
        let label = 'global: {
            if let Some(label) = NAMES.read().unwrap_or_else(|p| p.into_inner()).get(name) {
                break 'global *label;
            }
            let mut names = NAMES.write().unwrap_or_else(|p| p.into_inner());
            if let Some(label) = names.get(name) {
                break 'global *label;
            }
            if names.len() >= MAX_TOOL_LABELS {
                return OTHER;
            }
            // Kept for the process: at most MAX_TOOL_LABELS × MAX_TOOL_LABEL_LEN bytes.
            let label: &'static str = Box::leak(name.into());
            names.insert(label);
            label
        };
        // Interned names only: a thread's copy is bounded like the set.
        let _ = LOCAL_TOOLS.try_with(|l| l.borrow_mut().insert(label));
        label
    }

    /// The recorder now in effect (thread-local, else global, else the no-op one), by address.
    fn recorder() -> usize {
        metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>() as usize)
    }

    /// The recorder's address, the name's and each label value's.
    type Key = [usize; 6];

    /// The handles of one kind, by recorder, name and label values. A handle is registered
    /// once per key for the process and kept for its life (label values are bounded, so are
    /// the keys), and each thread keeps its own copy of the keys it used: a call then reads
    /// only memory of its own thread, and the only shared memory it writes is the
    /// recorder's. (A thread-local recorder dropped, and another made at the same address,
    /// would find the first one's handles: tests that swap local recorders should keep them
    /// alive.)
    pub(super) struct Handles<H: 'static> {
        table: RwLock<Table<H>>,
        local: &'static LocalKey<RefCell<Table<H>>>,
    }

    impl<H> Handles<H> {
        const fn new(local: &'static LocalKey<RefCell<Table<H>>>) -> Self {
            Handles {
                table: RwLock::new(HashMap::with_hasher(BuildHasherDefault::new())),
                local,
            }
        }

        /// The handle of `labels`, registered with `register` on first use (per recorder).
        #[inline]
        pub(super) fn get(&self, labels: Labels<5>, register: impl FnOnce() -> H) -> &'static H {
            // Label values are literals or interned names: their addresses identify them.
            let [name, a, b, c, d] = labels.map(|l| l.as_ptr() as usize);
            let key = [recorder(), name, a, b, c, d];
            // `try_with`: while a thread's locals are torn down (a body dropped then), the
            // process's table still answers.
            if let Ok(Some(handle)) = self.local.try_with(|l| l.borrow().get(&key).copied()) {
                return handle;
            }
            self.get_slow(key, register)
        }

        #[cold]
        fn get_slow(&self, key: Key, register: impl FnOnce() -> H) -> &'static H {
            let found = self
                .table
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .copied();
            let handle = match found {
                Some(handle) => handle,
                None => {
                    let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
                    *table
                        .entry(key)
                        .or_insert_with(|| Box::leak(Box::new(register())))
                }
            };
            let _ = self.local.try_with(|l| l.borrow_mut().insert(key, handle));
            handle
        }
    }

    /// FxHash's multiply-and-rotate over the key's words: they are addresses, not input an
    /// attacker chooses.
    #[derive(Default)]
    struct AddressHasher(u64);

    impl std::hash::Hasher for AddressHasher {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.write_u64(u64::from(b));
            }
        }
        fn write_usize(&mut self, n: usize) {
            self.write_u64(n as u64);
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };

    use super::*;

    /// Counts registrations and keeps one counter per key.
    #[derive(Default)]
    struct Counting {
        registered: AtomicU64,
        counters: Mutex<Vec<(Key, Arc<AtomicU64>)>>,
    }

    impl Counting {
        fn value(&self, name: &str, label: &str) -> u64 {
            let counters = self.counters.lock().unwrap();
            let found = counters
                .iter()
                .find(|(key, _)| key.name() == name && key.labels().any(|l| l.value() == label));
            found.map_or(0, |(_, value)| value.load(Ordering::Relaxed))
        }
    }

    impl Recorder for Counting {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.registered.fetch_add(1, Ordering::Relaxed);
            let value = Arc::new(AtomicU64::new(0));
            self.counters
                .lock()
                .unwrap()
                .push((key.clone(), value.clone()));
            Counter::from_arc(value)
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn a_handle_is_registered_once_per_label_set_and_recorder() {
        let first = Counting::default();
        metrics::with_local_recorder(&first, || {
            for _ in 0..3 {
                refused("guard", "host_not_allowed");
                token_cache(true);
            }
            token_cache(false);
        });
        assert_eq!(first.registered.load(Ordering::Relaxed), 3);
        assert_eq!(first.value(REFUSALS, "host_not_allowed"), 3);
        assert_eq!(first.value(TOKEN_CACHE, "hit"), 3);
        assert_eq!(first.value(TOKEN_CACHE, "miss"), 1);

        // Another recorder gets handles of its own, not the first one's.
        let second = Counting::default();
        metrics::with_local_recorder(&second, || token_cache(true));
        assert_eq!(second.value(TOKEN_CACHE, "hit"), 1);
        assert_eq!(first.value(TOKEN_CACHE, "hit"), 3);
    }

    #[test]
    fn tool_labels_are_bounded_in_length_and_number() {
        assert_eq!(
            series::tool_label(&"x".repeat(MAX_TOOL_LABEL_LEN + 1)),
            "_other"
        );
        let echo = series::tool_label("echo");
        assert_eq!(echo, "echo");
        // The same name is the same interned label.
        assert!(std::ptr::eq(echo, series::tool_label("echo")));
        for i in 0..MAX_TOOL_LABELS {
            series::tool_label(&format!("tool_{i}"));
        }
        assert_eq!(series::tool_label("one_too_many"), "_other");
        assert_eq!(series::tool_label("echo"), "echo");
    }
}
