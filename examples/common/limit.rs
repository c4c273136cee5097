//! The `--limit` flag of `examples/server.rs` and `examples/gateway.rs`: rate limits in the
//! text form `METHOD[:TOOL_GLOB]=N/(s|min|h) per (principal|session|client|ip)`, repeatable,
//! kept in memory or (with `--redis URL`, feature `redis`) in Redis, shared by every instance.
//! Without the flag the layer is `None`, and `McpEdge::limit_opt` keeps one router either way.

use mcp_edge::limit::{LimitLayer, Rule};

pub const LIMIT_USAGE: &str =
    "  --limit RULE        limit calls, e.g. 'tools/call:deploy_*=10/min per principal'
                      (repeatable; METHOD[:TOOL_GLOB]=N/(s|min|h) per principal|session|
                      client|ip, `+` to combine, `burst B` to set the burst, `N concurrent`
                      for calls and streams in flight); with --redis URL the budgets are
                      kept in Redis and shared by every instance; over a limit: 429";

/// The `--limit` rules given on the command line.
#[derive(Default)]
pub struct LimitOptions {
    rules: Vec<Rule>,
}

impl LimitOptions {
    /// Takes `--limit RULE`; `Ok(false)` for any other flag.
    pub fn parse_flag(
        &mut self,
        flag: &str,
        mut value: impl FnMut() -> Option<String>,
    ) -> Result<bool, String> {
        if flag != "--limit" {
            return Ok(false);
        }
        let text = value().ok_or("--limit needs a rule, e.g. 'tools/call=10/min per principal'")?;
        let rule: Rule = text.parse().map_err(|e| format!("--limit: {e}"))?;
        self.rules.push(rule);
        Ok(true)
    }

    /// The layer (`None` without rules) and a line saying what it does.
    pub fn build(self, redis: Option<&str>) -> Result<(Option<LimitLayer>, String), String> {
        if self.rules.is_empty() {
            return Ok((None, "no limits (add --limit RULE)".to_owned()));
        }
        let names: Vec<String> = self.rules.iter().map(Rule::name).collect();
        let layer = LimitLayer::new().rules(self.rules);
        let (layer, place) = match redis {
            None => (layer, "in memory"),
            #[cfg(feature = "redis")]
            Some(url) => {
                let store = mcp_edge::limit::RedisLimits::open(url)
                    .map_err(|e| format!("--redis (limits): {e}"))?;
                (layer.redis(store), "in Redis, shared")
            }
            #[cfg(not(feature = "redis"))]
            Some(_) => (layer, "in memory (--redis needs the redis feature)"),
        };
        Ok((Some(layer), format!("{} ({place})", names.join("; "))))
    }
}
