//! [`LimitLayer`]: the rules and where their budgets live.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;

use super::decide::{LimitCounts, Limiter};
use super::rule::Rule;
use super::service::Limit;

/// Rate limits, quotas, concurrency and stream caps for the calls behind it; see the
/// [module docs](super).
///
/// Cheap to clone: clones share the rules and the budgets (every service built from one layer
/// draws on the same budgets).
#[derive(Debug, Clone)]
pub struct LimitLayer {
    pub(crate) limiter: Arc<Limiter>,
    #[cfg(feature = "redis")]
    pub(crate) remote: Option<super::redis::RedisLimits>,
}

impl Default for LimitLayer {
    fn default() -> Self {
        LimitLayer::new()
    }
}

impl LimitLayer {
    /// A layer with no rules yet (it lets everything through).
    pub fn new() -> Self {
        LimitLayer {
            limiter: Arc::new(Limiter::new(Vec::new(), false)),
            #[cfg(feature = "redis")]
            remote: None,
        }
    }

    /// At most `calls` calls per principal per `window` on average, in bursts of at most
    /// `calls` (anonymous callers per client address).
    pub fn per_principal(calls: u32, window: Duration) -> Self {
        LimitLayer::new().rule(Rule::rate(calls, window))
    }

    /// Adds a rule. A call passes only if every rule it meets lets it through; a refused call
    /// takes nothing from any budget.
    pub fn rule(self, rule: Rule) -> Self {
        self.rules([rule])
    }

    /// Adds rules.
    pub fn rules(self, rules: impl IntoIterator<Item = Rule>) -> Self {
        let mut all = self.limiter.rules.to_vec();
        all.extend(rules);
        self.rebuild(all)
    }

    /// Keeps the budgets in Redis, shared by every instance that uses the same Redis and the
    /// same rule names: rates, quotas, and concurrency places (leases renewed while their
    /// calls and streams live; see [`RedisLimits`](super::RedisLimits)). When
    /// Redis does not answer within its timeout, each rule's [`FailPolicy`](super::FailPolicy)
    /// decides.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(mut self, store: super::redis::RedisLimits) -> Self {
        self.remote = Some(store);
        let rules = self.limiter.rules.to_vec();
        self.rebuild(rules)
    }

    fn rebuild(self, rules: Vec<Rule>) -> Self {
        #[cfg(feature = "redis")]
        let remote = self.remote.is_some();
        #[cfg(not(feature = "redis"))]
        let remote = false;
        LimitLayer {
            limiter: Arc::new(Limiter::new(rules, remote)),
            #[cfg(feature = "redis")]
            remote: self.remote,
        }
    }

    /// The rules, in order.
    pub fn rule_list(&self) -> &[Rule] {
        &self.limiter.rules
    }

    /// What the layer has decided so far (refusals, shared-store failures), for metrics.
    pub fn counts(&self) -> LimitCounts {
        self.limiter.counters.snapshot()
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limit<S>;

    fn layer(&self, inner: S) -> Limit<S> {
        Limit {
            inner,
            config: self.clone(),
        }
    }
}
