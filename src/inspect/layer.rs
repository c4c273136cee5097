use std::time::Duration;

use tower_layer::Layer;

use super::deadline::BodyBudget;
use super::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MIN_BODY_RATE,
    DEFAULT_MIN_BODY_RATE_GRACE, Inspect,
};

/// Classifies MCP requests and reads POST bodies once; see the [module docs](super).
#[derive(Debug, Clone, Copy)]
pub struct InspectLayer {
    pub(crate) max_body_bytes: usize,
    pub(super) body_budget: BodyBudget,
}

impl InspectLayer {
    /// An inspect layer with the defaults: a 4 MiB body limit, read within 10 s, at least
    /// 1 KiB/s on average after the first 2 s.
    pub fn new() -> Self {
        InspectLayer {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_budget: BodyBudget {
                total: Some(DEFAULT_BODY_TIMEOUT),
                min_bytes_per_second: DEFAULT_MIN_BODY_RATE,
                grace: DEFAULT_MIN_BODY_RATE_GRACE,
            },
        }
    }

    /// Sets the largest POST body accepted; larger bodies get `413 Payload Too Large`.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Sets the time a whole POST body may take to arrive, counted from the first moment the
    /// layer waits for it (default 10 s); a slower body gets `408 Request Timeout` with a
    /// JSON-RPC error body and the connection is closed. `None` removes the budget.
    pub fn body_timeout(mut self, budget: impl Into<Option<Duration>>) -> Self {
        self.body_budget.total = budget.into();
        self
    }

    /// Sets the slowest average rate a POST body may arrive at once `grace` has passed
    /// (default 1024 bytes per second after 2 s): a body that trickles in below it gets `408`
    /// well before the total budget. `0` bytes per second removes the minimum.
    pub fn min_body_rate(mut self, bytes_per_second: u64, grace: Duration) -> Self {
        self.body_budget.min_bytes_per_second = bytes_per_second;
        self.body_budget.grace = grace;
        self
    }
}

impl Default for InspectLayer {
    fn default() -> Self {
        InspectLayer::new()
    }
}

impl<S> Layer<S> for InspectLayer {
    type Service = Inspect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Inspect {
            inner,
            config: *self,
        }
    }
}
