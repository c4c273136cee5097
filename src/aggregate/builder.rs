//! [`AggregatorBuilder`]: the aggregator's configuration.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use super::names::{DEFAULT_SEPARATOR, Names, valid_namespace};
use super::pin::{DEFAULT_PIN_SYNC_INTERVAL, PinPolicy, Pins};
use super::service::{Aggregator, Shared};
use super::session::{DEFAULT_SESSION_IDLE, Sessions};
use super::upstream::{Upstream, UpstreamState};
use crate::store::{MemoryPinStore, PinStore};

/// The default cap on a client's request body and on an upstream answer the aggregator reads
/// whole: 4 MiB, as the inspect layer's default.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;

/// Builds an [`Aggregator`]: its upstreams, how names carry their namespace, and what the
/// aggregator says of itself.
#[derive(Debug)]
pub struct AggregatorBuilder<S> {
    upstreams: Vec<Upstream<S>>,
    separator: Cow<'static, str>,
    server_name: Cow<'static, str>,
    server_version: Cow<'static, str>,
    instructions: Option<Cow<'static, str>>,
    max_body_bytes: usize,
    session_idle: Duration,
    pins: Option<PinPolicy>,
    pin_store: Option<StoreSlot>,
    pin_sync: Duration,
    list_max_age: Option<Duration>,
}

impl<S> Default for AggregatorBuilder<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> AggregatorBuilder<S> {
    /// No upstreams yet; `__` between namespace and name; `serverInfo` named
    /// `mcp-edge-aggregator`.
    pub fn new() -> Self {
        AggregatorBuilder {
            upstreams: Vec::new(),
            separator: Cow::Borrowed(DEFAULT_SEPARATOR),
            server_name: Cow::Borrowed("mcp-edge-aggregator"),
            server_version: Cow::Borrowed(env!("CARGO_PKG_VERSION")),
            instructions: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            session_idle: DEFAULT_SESSION_IDLE,
            pins: Some(PinPolicy::Flag),
            pin_store: None,
            pin_sync: DEFAULT_PIN_SYNC_INTERVAL,
            list_max_age: None,
        }
    }

    /// Adds an upstream. Its name is its namespace; the order of upstreams is the order of
    /// merged lists.
    pub fn upstream(mut self, upstream: Upstream<S>) -> Self {
        self.upstreams.push(upstream);
        self
    }

    /// What goes between a namespace and a name (default `__`: `alpha__echo`). Keep it inside
    /// the tool-name alphabet (`[A-Za-z0-9_.-]`, R71) so namespaced tool names stay valid.
    pub fn separator(mut self, separator: impl Into<Cow<'static, str>>) -> Self {
        self.separator = separator.into();
        self
    }

    /// The `serverInfo` the aggregator answers with.
    pub fn server_info(
        mut self,
        name: impl Into<Cow<'static, str>>,
        version: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.server_name = name.into();
        self.server_version = version.into();
        self
    }

    /// Instructions put before the upstreams' own (each under its namespace).
    pub fn instructions(mut self, instructions: impl Into<Cow<'static, str>>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// The largest client body, and upstream answer read whole, in bytes (default
    /// [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// How long an unused aggregator session lives (default one hour); its upstream sessions
    /// end with it.
    pub fn session_idle_timeout(mut self, idle: Duration) -> Self {
        self.session_idle = idle;
        self
    }

    /// What to do when a tool's definition differs from the one pinned the first time it was
    /// listed (default [`PinPolicy::Flag`]: log it and list it in
    /// [`Aggregator::changed_tools`]; [`PinPolicy::Hide`] also hides it until approved).
    pub fn pin_tools(mut self, policy: PinPolicy) -> Self {
        self.pins = Some(policy);
        self
    }

    /// Where tool pins are kept (default a [`MemoryPinStore`] of this aggregator's own).
    /// Give every aggregator instance the same `RedisPinStore` (feature `redis`) so they
    /// agree on the first definition of each tool, share changes and approvals, and keep
    /// pins across restarts.
    pub fn pin_store(mut self, store: impl PinStore) -> Self {
        self.pin_store = Some(StoreSlot(Arc::new(store)));
        self
    }

    /// How often, at most, this instance reads from the pin store the changes and approvals
    /// other instances made, for calls (default [`DEFAULT_PIN_SYNC_INTERVAL`](super::DEFAULT_PIN_SYNC_INTERVAL), 1 s): the
    /// first `tools/list` or `tools/call` after the interval does it (one store call per
    /// upstream). Only with [`PinPolicy::Hide`]; a list fetched from an upstream is always
    /// checked against the store.
    pub fn pin_sync_interval(mut self, interval: Duration) -> Self {
        self.pin_sync = interval;
        self
    }

    /// How long a list page whose upstream gave no freshness hint (`ttlMs`; no legacy
    /// upstream does) is served from cache. Unset (the default): [`DEFAULT_LIST_MAX_AGE`](super::DEFAULT_LIST_MAX_AGE) when
    /// the upstream declared `listChanged` for that list, since it will say when the list
    /// changes, and no caching otherwise. A hint always wins; `Duration::ZERO` caches only
    /// hinted pages. A page is dropped earlier on `list_changed`, on
    /// [`Aggregator::invalidate`], and when a request to its upstream fails.
    ///
    /// With tool pins, a changed definition is noticed when a list is fetched: a longer max
    /// age notices later.
    pub fn list_max_age(mut self, max_age: Duration) -> Self {
        self.list_max_age = Some(max_age);
        self
    }

    /// Records no tool definitions at all.
    pub fn no_tool_pins(mut self) -> Self {
        self.pins = None;
        self
    }

    /// The aggregator, or why this configuration cannot work: an empty separator, or an
    /// upstream name that is not a valid namespace (an ASCII letter, then letters, digits or
    /// `-`, at most 64 bytes, without the separator) or is used twice.
    pub fn build(self) -> Result<Aggregator<S>, InvalidAggregator> {
        if self.separator.is_empty() {
            return Err(InvalidAggregator("the separator is empty".into()));
        }
        for (i, upstream) in self.upstreams.iter().enumerate() {
            if !valid_namespace(&upstream.name, &self.separator) {
                return Err(InvalidAggregator(format!(
                    "upstream name {:?} is not a valid namespace",
                    upstream.name
                )));
            }
            if self.upstreams[..i].iter().any(|u| u.name == upstream.name) {
                return Err(InvalidAggregator(format!(
                    "upstream name {:?} is used twice",
                    upstream.name
                )));
            }
        }
        let upstreams: Box<[_]> = self
            .upstreams
            .into_iter()
            .map(|upstream| UpstreamState::new(upstream, self.list_max_age))
            .collect();
        let events =
            super::events::Events::new(upstreams.iter().map(|u| u.lists.clone()).collect());
        let pins = Pins::new(
            self.pins,
            self.pin_store
                .map_or_else(|| Arc::new(MemoryPinStore::new()) as _, |s| s.0),
            upstreams.iter().map(|u| Arc::clone(&u.name)).collect(),
            self.pin_sync,
            events.clone(),
        );
        let shared = Shared {
            upstreams,
            names: Names::new(self.separator),
            sessions: Sessions::new(self.session_idle),
            server_name: self.server_name,
            server_version: self.server_version,
            instructions: self.instructions,
            max_body_bytes: self.max_body_bytes,
            next_id: AtomicI64::new(1),
            pins,
            events,
        };
        Ok(Aggregator {
            shared: Arc::new(shared),
        })
    }
}

/// The pin store a builder was given (shown by name only).
struct StoreSlot(Arc<dyn PinStore>);

impl fmt::Debug for StoreSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinStore")
    }
}

/// Why [`AggregatorBuilder::build`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAggregator(String);

impl fmt::Display for InvalidAggregator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid aggregator: {}", self.0)
    }
}

impl std::error::Error for InvalidAggregator {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_and_duplicates_are_refused() {
        let build = |names: &[&str]| {
            names
                .iter()
                .fold(AggregatorBuilder::new(), |b, n| {
                    b.upstream(Upstream::new(*n, ()))
                })
                .build()
                .map(|_| ())
        };
        assert!(build(&["alpha", "beta-2"]).is_ok());
        assert!(build(&["alpha", "alpha"]).is_err());
        assert!(build(&["al__pha"]).is_err());
        assert!(build(&["9lives"]).is_err());
        let empty = AggregatorBuilder::<()>::new().separator("").build();
        assert!(empty.is_err());
    }
}
