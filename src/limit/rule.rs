//! [`Rule`]: what one limit matches, what it keys on, and its budget; and the text form
//! `METHOD[:TOOL_GLOB]=N/(s|min|h) per (principal|session|client|ip)`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What a rule keys its budget on: any combination of the caller's parts and the message's
/// method and tool name ([`Per::GLOBAL`], the empty set, is one budget for everyone).
///
/// A caller part the request lacks (no [`Principal`](crate::Principal) on an open endpoint,
/// no client id in the token, no session on a 2026-07-28 request) is replaced by the client
/// address, so an anonymous caller is limited per address and never shares a budget with a
/// known one.
///
/// ```
/// use mcp_edge::limit::Per;
///
/// let per = Per::PRINCIPAL.and(Per::TOOL);
/// assert!(per.contains(Per::TOOL));
/// assert_eq!(per.to_string(), "principal+tool");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Per(u8);

impl Per {
    /// One budget for all callers.
    pub const GLOBAL: Per = Per(0);
    /// The principal: issuer and subject (the key sessions are bound to).
    pub const PRINCIPAL: Per = Per(1);
    /// The token's client id (`client_id` / `azp`).
    pub const CLIENT: Per = Per(2);
    /// The legacy session (`Mcp-Session-Id`).
    pub const SESSION: Per = Per(4);
    /// The client address (the guard's client IP behind trusted proxies, else the peer).
    pub const IP: Per = Per(8);
    /// The tool a `tools/call` names (each tool its own budget).
    pub const TOOL: Per = Per(16);
    /// The JSON-RPC method (each method its own budget).
    pub const METHOD: Per = Per(32);

    const NAMES: [(Per, &'static str); 6] = [
        (Per::PRINCIPAL, "principal"),
        (Per::CLIENT, "client"),
        (Per::SESSION, "session"),
        (Per::IP, "ip"),
        (Per::TOOL, "tool"),
        (Per::METHOD, "method"),
    ];

    /// Both sets of parts.
    pub const fn and(self, other: Per) -> Per {
        Per(self.0 | other.0)
    }

    /// Whether every part of `other` is in `self`.
    pub const fn contains(self, other: Per) -> bool {
        self.0 & other.0 == other.0
    }

    /// The parts that name a caller (principal, client, session, ip).
    pub(crate) const fn caller_parts(self) -> Per {
        Per(self.0 & 0b1111)
    }
}

impl fmt::Display for Per {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Per::GLOBAL {
            return f.write_str("global");
        }
        let mut first = true;
        for (part, name) in Per::NAMES {
            if self.contains(part) {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// A name pattern: `*` matches any run of characters (also none), `?` any one character,
/// everything else itself (case-sensitive, as MCP tool names are, R71).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<str>,
    /// Read once: most patterns are a name, a prefix or a suffix, matched without the loop.
    shape: Shape,
}

/// The kind of a [`Glob`], read when it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `*`.
    Any,
    /// No wildcard.
    Exact,
    /// `prefix*`.
    Prefix,
    /// `*suffix`.
    Suffix,
    /// Anything else.
    General,
}

impl Glob {
    /// A pattern.
    pub fn new(pattern: impl Into<Box<str>>) -> Self {
        let pattern = pattern.into();
        let bytes = pattern.as_bytes();
        let wild = |b: &u8| *b == b'*' || *b == b'?';
        let shape = match bytes {
            b"*" => Shape::Any,
            _ if !bytes.iter().any(wild) => Shape::Exact,
            [head @ .., b'*'] if !head.iter().any(wild) => Shape::Prefix,
            [b'*', tail @ ..] if !tail.iter().any(wild) => Shape::Suffix,
            _ => Shape::General,
        };
        Glob { pattern, shape }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `*` alone: matches everything.
    pub fn is_any(&self) -> bool {
        self.shape == Shape::Any
    }

    /// Whether `name` matches. Linear in practice (one backtrack point, the last `*`).
    #[inline]
    pub fn matches(&self, name: &str) -> bool {
        let (p, n) = (self.pattern.as_bytes(), name.as_bytes());
        match self.shape {
            Shape::Any => true,
            Shape::Exact => p == n,
            Shape::Prefix => n.starts_with(&p[..p.len() - 1]),
            Shape::Suffix => n.ends_with(&p[1..]),
            Shape::General => general_match(p, n),
        }
    }
}

/// The glob loop: `*` remembers where it was to backtrack to.
fn general_match(p: &[u8], n: &[u8]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// How much a rule lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Budget {
    /// A rate with a burst (GCRA): one unit of cost every `interval` on average, up to
    /// `burst` units at once after a quiet spell.
    Rate {
        /// Time per unit of cost (a window divided by its count).
        interval: Duration,
        /// Units that may pass back to back.
        burst: u32,
    },
    /// At most `max` units of cost per fixed `window` (windows start at multiples of the
    /// window length since the Unix epoch, so every instance agrees on them).
    Quota {
        /// Units per window.
        max: u64,
        /// The window.
        window: Duration,
    },
    /// At most `max` calls in flight at once; a call holds its place until its response
    /// body ends or the client leaves (a whole SSE stream, not just the response head).
    Concurrent {
        /// Calls (or streams) at once.
        max: u32,
    },
}

/// What a rule does when its shared store (Redis) cannot be reached in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailPolicy {
    /// Let the call through (the default): a limit is a guard against abuse, and an outage of
    /// its store should not become an outage of the service.
    #[default]
    Open,
    /// Refuse the call with `503` and `Retry-After: 1`.
    Closed,
}

/// One limit: which messages it counts, what it keys on, and its [`Budget`].
///
/// ```
/// use std::time::Duration;
/// use mcp_edge::limit::{Per, Rule};
///
/// // Ten deploys a minute per user, in bursts of at most three.
/// let deploys = Rule::rate(10, Duration::from_secs(60))
///     .burst(3)
///     .method("tools/call")
///     .tool("deploy_*")
///     .per(Per::PRINCIPAL);
/// // The same, from the text form the examples take with `--limit`.
/// let parsed: Rule = "tools/call:deploy_*=10/min per principal burst 3".parse().unwrap();
/// assert_eq!(parsed.budget(), deploys.budget());
///
/// // At most two open streams per user, each for at most an hour, idle for 5 minutes.
/// let streams = Rule::concurrent(2)
///     .per(Per::PRINCIPAL)
///     .lifetime(Duration::from_secs(3600))
///     .idle(Duration::from_secs(300));
/// # let _ = streams;
/// ```
#[derive(Debug, Clone)]
pub struct Rule {
    pub(crate) name: Option<Box<str>>,
    pub(crate) method: Glob,
    pub(crate) tool: Option<Glob>,
    pub(crate) per: Per,
    pub(crate) budget: Budget,
    pub(crate) costs: Vec<(Glob, u32)>,
    pub(crate) lifetime: Option<Duration>,
    pub(crate) idle: Option<Duration>,
    pub(crate) fail: FailPolicy,
}

impl Rule {
    fn with_budget(budget: Budget) -> Self {
        Rule {
            name: None,
            method: Glob::new("*"),
            tool: None,
            per: Per::PRINCIPAL,
            budget,
            costs: Vec::new(),
            lifetime: None,
            idle: None,
            fail: FailPolicy::Open,
        }
    }

    /// `count` units of cost per `window` on average, with a burst of `count` (a quiet caller
    /// may spend a whole window's worth at once). Per principal, every method, until told
    /// otherwise. Panics if `count` is 0 or `window` is zero.
    pub fn rate(count: u32, window: Duration) -> Self {
        assert!(
            count > 0 && !window.is_zero(),
            "a rate needs a count and a window"
        );
        Rule::with_budget(Budget::Rate {
            interval: window / count,
            burst: count,
        })
    }

    /// At most `max` units of cost per fixed `window`. Panics if `window` is zero.
    pub fn quota(max: u64, window: Duration) -> Self {
        assert!(!window.is_zero(), "a quota needs a window");
        Rule::with_budget(Budget::Quota { max, window })
    }

    /// At most `max` calls or streams in flight at once; each holds its place until its
    /// response body ends or its client leaves.
    pub fn concurrent(max: u32) -> Self {
        Rule::with_budget(Budget::Concurrent { max })
    }

    /// The burst of a [`rate`](Rule::rate) rule (at least 1); no effect on other budgets.
    pub fn burst(mut self, burst: u32) -> Self {
        if let Budget::Rate { burst: b, .. } = &mut self.budget {
            *b = burst.max(1);
        }
        self
    }

    /// Counts only messages whose JSON-RPC method matches `glob` (default `*`). A GET or
    /// DELETE, which carries no message, counts as the method `GET` or `DELETE`.
    pub fn method(mut self, glob: impl Into<Box<str>>) -> Self {
        self.method = Glob::new(glob);
        self
    }

    /// Counts only messages that name a tool matching `glob` (`tools/call`'s `params.name`).
    pub fn tool(mut self, glob: impl Into<Box<str>>) -> Self {
        self.tool = Some(Glob::new(glob));
        self
    }

    /// What the budget is kept per (default [`Per::PRINCIPAL`]).
    pub fn per(mut self, per: Per) -> Self {
        self.per = per;
        self
    }

    /// A call of a tool matching `tool` costs `weight` units instead of 1 (rate and quota
    /// rules; the first matching weight wins). A weight above a rate's burst is counted as the
    /// burst, so such a call can still pass after a quiet spell.
    pub fn cost(mut self, tool: impl Into<Box<str>>, weight: u32) -> Self {
        self.costs.push((Glob::new(tool), weight));
        self
    }

    /// Ends an SSE stream this rule matched after `lifetime`, at an event boundary.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Ends an SSE stream this rule matched after `idle` without an event (comments, such as
    /// heartbeats, do not count as activity).
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Refuse calls (503) when the shared store cannot decide (default: let them through).
    pub fn fail_closed(mut self) -> Self {
        self.fail = FailPolicy::Closed;
        self
    }

    /// Let calls through when the shared store cannot decide (the default).
    pub fn fail_open(mut self) -> Self {
        self.fail = FailPolicy::Open;
        self
    }

    /// Names the rule in refusals, audit records and Redis keys (default: its text form).
    /// Two instances that share a Redis share a budget when their rules have the same name.
    pub fn named(mut self, name: impl Into<Box<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The rule's name: the one given with [`named`](Rule::named), else its text form.
    pub fn name(&self) -> String {
        match &self.name {
            Some(name) => name.to_string(),
            None => self.to_string(),
        }
    }

    /// The budget.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// What the budget is kept per.
    pub fn keyed_per(&self) -> Per {
        self.per
    }

    /// The policy when the shared store fails.
    pub fn fail_policy(&self) -> FailPolicy {
        self.fail
    }

    /// Whether a message with this method (and tool, for `tools/call`) counts against the rule.
    pub(crate) fn matches(&self, method: &str, tool: Option<&str>) -> bool {
        self.method.matches(method)
            && match &self.tool {
                None => true,
                Some(glob) => tool.is_some_and(|tool| glob.matches(tool)),
            }
    }

    /// The cost of one message naming `tool`.
    pub(crate) fn cost_of(&self, tool: Option<&str>) -> u32 {
        let Some(tool) = tool else { return 1 };
        self.costs
            .iter()
            .find(|(glob, _)| glob.matches(tool))
            .map_or(1, |(_, weight)| *weight)
    }
}

/// The text form: `METHOD[:TOOL_GLOB]=N/UNIT per PARTS[ burst B]`, or for other budgets
/// `…=N concurrent per PARTS` and `…=N/UNIT quota per PARTS`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method.as_str())?;
        if let Some(tool) = &self.tool {
            write!(f, ":{tool}")?;
        }
        match self.budget {
            Budget::Rate { interval, burst } => {
                let (count, unit) = per_unit(interval);
                if count == u64::from(burst) {
                    write!(f, "={count}/{unit} per {}", self.per)
                } else {
                    write!(f, "={count}/{unit} per {} burst {burst}", self.per)
                }
            }
            Budget::Quota { max, window } => {
                let unit = match window.as_secs() {
                    1 => "s".to_owned(),
                    60 => "min".to_owned(),
                    3600 => "h".to_owned(),
                    86400 => "d".to_owned(),
                    _ => format!("{}s", window.as_secs_f64()),
                };
                write!(f, "={max}/{unit} quota per {}", self.per)
            }
            Budget::Concurrent { max } => write!(f, "={max} concurrent per {}", self.per),
        }
    }
}

/// A rate's interval as `count/unit` in the smallest unit that holds a whole count of them.
fn per_unit(interval: Duration) -> (u64, &'static str) {
    let step = interval.as_nanos().max(1);
    for (unit, name) in [
        (1_000_000_000u128, "s"),
        (60_000_000_000, "min"),
        (3_600_000_000_000, "h"),
    ] {
        if unit % step == 0 {
            return ((unit / step) as u64, name);
        }
    }
    ((3_600_000_000_000 / step).max(1) as u64, "h")
}

/// Why a rule's text form could not be read; the message says what was expected where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseRuleError {
    message: String,
}

impl ParseRuleError {
    fn new(input: &str, message: impl fmt::Display) -> Self {
        ParseRuleError {
            message: format!(
                "invalid limit `{input}`: {message} \
                 (expected `METHOD[:TOOL_GLOB]=N/(s|min|h) per (principal|session|client|ip)`, \
                 e.g. `tools/call:deploy_*=10/min per principal`)"
            ),
        }
    }
}

impl fmt::Display for ParseRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseRuleError {}

/// Parses the text form:
///
/// ```text
/// METHOD[:TOOL_GLOB]=N/(s|min|h) per PARTS [burst B]     a rate (GCRA; burst N unless given)
/// METHOD[:TOOL_GLOB]=N/(s|min|h|d) quota per PARTS       a quota over a fixed window
/// METHOD[:TOOL_GLOB]=N concurrent per PARTS              calls (and streams) in flight
/// ```
///
/// `METHOD` is a glob on the JSON-RPC method (`*` for all), `PARTS` one or more of
/// `principal`, `session`, `client`, `ip`, `tool`, `method` joined by `+` (or `global`).
///
/// ```
/// use mcp_edge::limit::Rule;
///
/// let rule: Rule = "tools/call:deploy_*=10/min per principal".parse().unwrap();
/// assert_eq!(rule.to_string(), "tools/call:deploy_*=10/min per principal");
/// let err = "tools/call=10/week per principal".parse::<Rule>().unwrap_err();
/// assert!(err.to_string().contains("unit `week`"));
/// ```
impl FromStr for Rule {
    type Err = ParseRuleError;

    fn from_str(input: &str) -> Result<Rule, ParseRuleError> {
        let error = |message: &dyn fmt::Display| ParseRuleError::new(input.trim(), message);
        let text = input.trim();
        let (target, spec) = text
            .split_once('=')
            .ok_or_else(|| error(&"no `=` between the method and the budget"))?;
        let (method, tool) = match target.trim().split_once(':') {
            Some((method, tool)) => (method.trim(), Some(tool.trim())),
            None => (target.trim(), None),
        };
        if method.is_empty() || method.contains(char::is_whitespace) {
            return Err(error(
                &"the method is empty or has spaces (use `*` for all)",
            ));
        }
        if tool.is_some_and(|tool| tool.is_empty() || tool.contains(char::is_whitespace)) {
            return Err(error(&"the tool glob after `:` is empty or has spaces"));
        }
        let words: Vec<&str> = spec.split_whitespace().collect();
        let mut words = words.as_slice();
        let Some((amount, rest)) = words.split_first() else {
            return Err(error(&"no budget after `=`"));
        };
        words = rest;
        let budget_word = match words.first() {
            Some(&word @ ("concurrent" | "quota")) => {
                words = &words[1..];
                Some(word)
            }
            _ => None,
        };
        let mut rule = match budget_word {
            Some("concurrent") => {
                let max = amount
                    .parse::<u32>()
                    .map_err(|_| error(&format_args!("`{amount}` is not a count of calls")))?;
                Rule::concurrent(max)
            }
            _ => {
                let (count, unit) = amount.split_once('/').ok_or_else(|| {
                    error(&format_args!("`{amount}` is not a rate such as `10/min`"))
                })?;
                let count = count
                    .parse::<u32>()
                    .ok()
                    .filter(|&count| count > 0)
                    .ok_or_else(|| error(&format_args!("`{count}` is not a positive count")))?;
                let window = match unit {
                    "s" | "sec" | "second" => Duration::from_secs(1),
                    "m" | "min" | "minute" => Duration::from_secs(60),
                    "h" | "hour" => Duration::from_secs(3600),
                    "d" | "day" if budget_word == Some("quota") => Duration::from_secs(86_400),
                    other => {
                        return Err(error(&format_args!(
                            "unit `{other}` is not one of s, min, h{}",
                            if budget_word == Some("quota") {
                                ", d"
                            } else {
                                ""
                            }
                        )));
                    }
                };
                if budget_word == Some("quota") {
                    Rule::quota(u64::from(count), window)
                } else {
                    Rule::rate(count, window)
                }
            }
        };
        rule = rule.method(method);
        if let Some(tool) = tool {
            rule = rule.tool(tool);
        }
        match words {
            ["per", parts, rest @ ..] => {
                rule = rule.per(parse_per(parts).map_err(|e| error(&e))?);
                words = rest;
            }
            [] => return Err(error(&"no `per …` after the budget")),
            [other, ..] => {
                return Err(error(&format_args!("`{other}` where `per` was expected")));
            }
        }
        match words {
            [] => {}
            ["burst", burst] if budget_word.is_none() => {
                let burst = burst
                    .parse::<u32>()
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| error(&format_args!("`{burst}` is not a positive burst")))?;
                rule = rule.burst(burst);
            }
            [other, ..] => {
                return Err(error(&format_args!("unexpected `{other}` at the end")));
            }
        }
        Ok(rule.named(text))
    }
}

fn parse_per(parts: &str) -> Result<Per, String> {
    if parts == "global" {
        return Ok(Per::GLOBAL);
    }
    let mut per = Per::GLOBAL;
    for part in parts.split('+') {
        let found = Per::NAMES
            .iter()
            .find(|(_, name)| *name == part)
            .ok_or_else(|| {
                format!("`{part}` is not one of principal, session, client, ip, tool, method")
            })?;
        per = per.and(found.0);
    }
    Ok(per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_stars_and_question_marks() {
        let g = Glob::new("deploy_*");
        assert!(g.matches("deploy_") && g.matches("deploy_prod"));
        assert!(!g.matches("deplo") && !g.matches("xdeploy_prod"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a*b*c").matches("aXbYbZc"));
        assert!(!Glob::new("a*b*c").matches("aXbYbZ"));
        assert!(Glob::new("tools/?all").matches("tools/call"));
        assert!(Glob::new("*_prod").matches("deploy_prod"));
        assert!(!Glob::new("Echo").matches("echo"));
        // Each shape, and the general loop for the rest.
        assert!(Glob::new("echo").matches("echo") && !Glob::new("echo").matches("echo2"));
        assert!(Glob::new("**").matches("") && Glob::new("a*").matches("a"));
        assert!(Glob::new("*x").matches("x") && !Glob::new("*x").matches("xy"));
        assert!(Glob::new("a?c*").matches("abcd") && !Glob::new("a?c*").matches("ac"));
        assert!(Glob::new("*a*").matches("bab") && !Glob::new("*a*").matches("bbb"));
    }

    #[test]
    fn the_issues_example_parses_to_a_rate_per_principal() {
        let rule: Rule = "tools/call:deploy_*=10/min per principal".parse().unwrap();
        assert_eq!(
            rule.budget(),
            Budget::Rate {
                interval: Duration::from_secs(6),
                burst: 10
            }
        );
        assert_eq!(rule.keyed_per(), Per::PRINCIPAL);
        assert!(rule.matches("tools/call", Some("deploy_prod")));
        assert!(!rule.matches("tools/call", Some("echo")));
        assert!(!rule.matches("tools/list", None));
        assert_eq!(rule.name(), "tools/call:deploy_*=10/min per principal");
    }

    #[test]
    fn every_unit_part_and_budget_parses() {
        for (text, budget, per) in [
            (
                "*=5/s per ip",
                Budget::Rate {
                    interval: Duration::from_millis(200),
                    burst: 5,
                },
                Per::IP,
            ),
            (
                "tools/*=100/h per session burst 2",
                Budget::Rate {
                    interval: Duration::from_secs(36),
                    burst: 2,
                },
                Per::SESSION,
            ),
            (
                "tools/call=1000/d quota per client+tool",
                Budget::Quota {
                    max: 1000,
                    window: Duration::from_secs(86_400),
                },
                Per::CLIENT.and(Per::TOOL),
            ),
            (
                "GET=2 concurrent per principal",
                Budget::Concurrent { max: 2 },
                Per::PRINCIPAL,
            ),
            (
                " initialize=3/min per global ",
                Budget::Rate {
                    interval: Duration::from_secs(20),
                    burst: 3,
                },
                Per::GLOBAL,
            ),
        ] {
            let rule: Rule = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((rule.budget(), rule.keyed_per()), (budget, per), "{text}");
            assert_eq!(rule.name(), text.trim());
        }
    }

    #[test]
    fn bad_text_says_what_is_wrong() {
        for (text, says) in [
            ("tools/call 10/min per principal", "no `=`"),
            ("tools/call=10/week per principal", "unit `week`"),
            (
                "tools/call=0/min per principal",
                "`0` is not a positive count",
            ),
            (
                "tools/call=ten/min per principal",
                "`ten` is not a positive count",
            ),
            ("tools/call=10 per principal", "not a rate such as `10/min`"),
            ("tools/call=10/min", "no `per"),
            (
                "tools/call=10/min by principal",
                "`by` where `per` was expected",
            ),
            ("tools/call=10/min per user", "`user` is not one of"),
            (
                "tools/call=10/min per principal burst 0",
                "not a positive burst",
            ),
            (
                "tools/call=10/min per principal extra",
                "unexpected `extra`",
            ),
            ("tools/call:=10/min per principal", "tool glob"),
            ("=10/min per principal", "method is empty"),
            ("tools/call=", "no budget"),
        ] {
            let err = text.parse::<Rule>().unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
            assert!(err.contains("expected `METHOD[:TOOL_GLOB]"), "{err}");
        }
    }

    #[test]
    fn rules_built_in_code_print_their_text_form() {
        let rule = Rule::rate(10, Duration::from_secs(60))
            .method("tools/call")
            .tool("deploy_*");
        assert_eq!(rule.to_string(), "tools/call:deploy_*=10/min per principal");
        let rule = rule.burst(3);
        assert_eq!(
            rule.to_string(),
            "tools/call:deploy_*=10/min per principal burst 3"
        );
        assert_eq!(
            Rule::concurrent(2).per(Per::IP).to_string(),
            "*=2 concurrent per ip"
        );
        assert_eq!(Rule::rate(5, Duration::from_secs(1)).named("x").name(), "x");
    }

    #[test]
    fn costs_pick_the_first_matching_weight() {
        let rule = Rule::rate(10, Duration::from_secs(1))
            .cost("deploy_*", 5)
            .cost("*", 2);
        assert_eq!(rule.cost_of(Some("deploy_prod")), 5);
        assert_eq!(rule.cost_of(Some("echo")), 2);
        assert_eq!(rule.cost_of(None), 1);
    }
}
