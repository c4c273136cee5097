use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::Session;
use crate::store::{MemorySessionStore, SessionRecord, SessionResolver, SessionStore};

/// Who is the authority on legacy sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionMode {
    /// Record and annotate, never refuse: the server stays the authority. Store errors are
    /// logged and the request goes on.
    #[default]
    Observe,
    /// The edge is the authority: missing id → 400, unknown, expired, ended or foreign
    /// session → 404, session caps, store errors → 503.
    Enforce,
}

/// Tracks legacy MCP sessions; see the [module docs](super).
#[derive(Clone)]
pub struct SessionLayer {
    pub(crate) config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    /// Finds and ends sessions; holds the store.
    pub(crate) resolver: SessionResolver,
    pub(crate) mode: SessionMode,
    pub(crate) idle_ttl: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) max_per_principal: Option<u64>,
    pub(crate) max_total: Option<u64>,
}

impl SessionLayer {
    /// A session layer in [`SessionMode::Observe`] over a new [`MemorySessionStore`], with
    /// [`SessionRecord::DEFAULT_IDLE_TTL`] and [`SessionRecord::DEFAULT_MAX_LIFETIME`] and
    /// no caps.
    pub fn new() -> Self {
        SessionLayer::with_store(MemorySessionStore::new())
    }

    /// A session layer over `store`.
    pub fn with_store<St: SessionStore>(store: St) -> Self {
        Self::with_shared_store(Arc::new(store))
    }

    /// A session layer over a store shared with others (an affinity router's table, another
    /// stack), without wrapping it again.
    pub fn with_shared_store(store: Arc<dyn SessionStore>) -> Self {
        SessionLayer {
            config: Arc::new(Config {
                resolver: SessionResolver::new(store),
                mode: SessionMode::Observe,
                idle_ttl: SessionRecord::DEFAULT_IDLE_TTL,
                max_lifetime: SessionRecord::DEFAULT_MAX_LIFETIME,
                max_per_principal: None,
                max_total: None,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Sets the store.
    pub fn store<St: SessionStore>(mut self, store: St) -> Self {
        self.config_mut().resolver = SessionResolver::new(Arc::new(store));
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: SessionMode) -> Self {
        self.config_mut().mode = mode;
        self
    }

    /// Shorthand for `.mode(SessionMode::Enforce)`.
    pub fn enforce(self) -> Self {
        self.mode(SessionMode::Enforce)
    }

    /// Shorthand for `.mode(SessionMode::Observe)`.
    pub fn observe(self) -> Self {
        self.mode(SessionMode::Observe)
    }

    /// Ends a session after this long without a request (enforced in
    /// [`SessionMode::Enforce`]; in observe mode the record just goes).
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.config_mut().idle_ttl = ttl;
        self
    }

    /// Ends a session this long after its `initialize`, however busy.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.config_mut().max_lifetime = lifetime;
        self
    }

    /// Refuses an `initialize` with `429 Too Many Requests` when its principal already has
    /// `max` live sessions, in every mode (the cap is the edge's own rule).
    pub fn max_sessions_per_principal(mut self, max: u64) -> Self {
        self.config_mut().max_per_principal = Some(max);
        self
    }

    /// Refuses an `initialize` with `503 Service Unavailable` when `max` sessions are live
    /// in total, in every mode.
    pub fn max_sessions(mut self, max: u64) -> Self {
        self.config_mut().max_total = Some(max);
        self
    }

    /// The store.
    pub fn session_store(&self) -> &Arc<dyn SessionStore> {
        self.config.resolver.store()
    }

    /// The mode.
    pub fn session_mode(&self) -> SessionMode {
        self.config.mode
    }
}

impl Default for SessionLayer {
    fn default() -> Self {
        SessionLayer::new()
    }
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("mode", &self.config.mode)
            .field("idle_ttl", &self.config.idle_ttl)
            .field("max_lifetime", &self.config.max_lifetime)
            .field("max_per_principal", &self.config.max_per_principal)
            .field("max_total", &self.config.max_total)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = Session<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Session {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}
