//! The scope policy: which scopes each MCP operation needs (R57, R58).
//!
//! [`Authorize`] is the extension point (a closure is one); [`ScopePolicy`] is the built-in
//! rule table with globs on the target, a default for unlisted calls, and scope hierarchies.
//! The same decision drives both refusals of calls and the filtering of `tools/list`,
//! `prompts/list` and `resources/list` results, so list and call never disagree.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::Principal;

/// One operation to authorize: a JSON-RPC method and, for calls, what it acts on (the tool or
/// prompt name, the resource URI, the task id), always taken from the body (R42).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// The JSON-RPC method, e.g. `tools/call`.
    pub method: &'a str,
    /// The tool or prompt name, resource URI or task id, when the method has one.
    pub name: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A call of `method` on `name`.
    pub fn new(method: &'a str, name: Option<&'a str>) -> Self {
        Call { method, name }
    }
}

/// Scopes, shared: what a rule requires, or what a refusal lists.
pub type Scopes = Arc<[Box<str>]>;

/// The outcome of [`Authorize::authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The principal may go on.
    Allow,
    /// The principal may not: `403` with `error="insufficient_scope"` and these scopes, which
    /// are **all** the scopes the operation needs, not only the missing ones (R58).
    Deny(Scopes),
}

impl Decision {
    /// Whether the decision allows.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// Decides whether a verified principal may perform one operation.
///
/// A closure `Fn(&Principal, Call<'_>) -> Decision` is an `Authorize`:
///
/// ```
/// use mcp_edge::auth::{Authorize, Call, Decision, Principal};
///
/// let only_admins = |p: &Principal, call: Call<'_>| {
///     if call.method == "tools/call" && !p.has_scope("admin") {
///         Decision::Deny(["admin".into()].into())
///     } else {
///         Decision::Allow
///     }
/// };
/// let call = Call::new("tools/call", Some("echo"));
/// assert!(!only_admins.authorize(&Principal::new("bob"), call).is_allow());
/// ```
pub trait Authorize: Send + Sync + 'static {
    /// Whether `principal` may perform `call`.
    fn authorize(&self, principal: &Principal, call: Call<'_>) -> Decision;

    /// The scopes `call` needs, for the `scope` of a 401 challenge (R53). `None` by default.
    fn required_scopes(&self, call: Call<'_>) -> Option<Scopes> {
        let _ = call;
        None
    }

    /// Whether list results (`tools/list`, …) must be filtered through this policy. `true`
    /// by default; [`AllowAll`] says `false` so its lists pass untouched.
    fn filters_lists(&self) -> bool {
        true
    }
}

impl<F> Authorize for F
where
    F: Fn(&Principal, Call<'_>) -> Decision + Send + Sync + 'static,
{
    fn authorize(&self, principal: &Principal, call: Call<'_>) -> Decision {
        self(principal, call)
    }
}

impl<A: Authorize + ?Sized> Authorize for Arc<A> {
    fn authorize(&self, principal: &Principal, call: Call<'_>) -> Decision {
        (**self).authorize(principal, call)
    }
    fn required_scopes(&self, call: Call<'_>) -> Option<Scopes> {
        (**self).required_scopes(call)
    }
    fn filters_lists(&self) -> bool {
        (**self).filters_lists()
    }
}

/// The policy that allows every authenticated principal everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorize for AllowAll {
    fn authorize(&self, _: &Principal, _: Call<'_>) -> Decision {
        Decision::Allow
    }
    fn filters_lists(&self) -> bool {
        false
    }
}

/// Rules from (method, target) to required scopes.
///
/// - `tool("deploy_*", ["mcp:deploy"])`: `tools/call` on a matching tool needs `mcp:deploy`
///   (also `prompt`, `resource` for `prompts/get` and `resources/read`, and
///   [`rule`](ScopePolicy::rule) for any method). Patterns are globs: `*` matches any run of
///   characters, `?` one character. A rule with an exact name wins over glob rules; among glob
///   rules the first added wins. Two rules for the same exact name add up.
/// - `method("tools/call", ["mcp:tools"])`: every call of a method (globs allowed, e.g.
///   `tasks/*`) needs these scopes, **in addition** to the scopes of the target's rule.
/// - `default_scopes([...])`: what a call (`tools/call`, `prompts/get`, `resources/read`,
///   `resources/subscribe`) needs when no target rule matches. Without it, unlisted calls need
///   nothing beyond a valid token.
/// - `implies("mcp:admin", ["mcp:deploy"])`: a broader scope satisfies narrower ones
///   (transitively, R58); [`prefix_hierarchy`](ScopePolicy::prefix_hierarchy) makes `mcp:tools`
///   satisfy `mcp:tools:deploy`.
///
/// The decision depends only on the name in the body, never on whether the tool exists, so a
/// refused call answers the same for a hidden tool and a missing one.
///
/// ```
/// use mcp_edge::auth::{Authorize, Call, Decision, Principal, ScopePolicy};
///
/// let policy = ScopePolicy::new()
///     .method("tools/call", ["mcp:tools"])
///     .tool("deploy_*", ["mcp:deploy"])
///     .implies("mcp:admin", ["mcp:tools", "mcp:deploy"]);
/// let alice = Principal::new("alice").with_scopes(["mcp:tools"]);
/// let call = Call::new("tools/call", Some("deploy_prod"));
/// let Decision::Deny(needed) = policy.authorize(&alice, call) else { panic!() };
/// assert_eq!(&*needed, &["mcp:tools".into(), "mcp:deploy".into()]);
/// let root = Principal::new("root").with_scopes(["mcp:admin"]);
/// assert!(policy.authorize(&root, call).is_allow());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ScopePolicy {
    by_method: HashMap<Box<str>, MethodRules>,
    method_globs: Vec<(Pattern, Scopes)>,
    default_call: Option<Scopes>,
    implied_by: HashMap<Box<str>, Box<[Box<str>]>>,
    implies: HashMap<Box<str>, BTreeSet<Box<str>>>,
    prefix_separator: Option<char>,
}

#[derive(Debug, Clone, Default)]
struct MethodRules {
    method: Option<Scopes>,
    exact: HashMap<Box<str>, Scopes>,
    globs: Vec<(Pattern, Scopes)>,
}

impl ScopePolicy {
    /// An empty policy: every valid token may do everything.
    pub fn new() -> Self {
        ScopePolicy::default()
    }

    /// `method` on targets matching `pattern` needs `scopes`.
    pub fn rule<I, T>(mut self, method: &str, pattern: &str, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Box<str>>,
    {
        let scopes = collect(scopes);
        let rules = self.by_method.entry(method.into()).or_default();
        let pattern = Pattern::new(pattern);
        match pattern {
            Pattern::Exact(name) => {
                let merged = match rules.exact.get(&name) {
                    Some(old) => collect(old.iter().chain(scopes.iter()).cloned()),
                    None => scopes,
                };
                rules.exact.insert(name, merged);
            }
            glob => rules.globs.push((glob, scopes)),
        }
        self
    }

    /// `tools/call` on tools matching `pattern` needs `scopes`.
    pub fn tool<I, T>(self, pattern: &str, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Box<str>>,
    {
        self.rule("tools/call", pattern, scopes)
    }

    /// `prompts/get` on prompts matching `pattern` needs `scopes`.
    pub fn prompt<I, T>(self, pattern: &str, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Box<str>>,
    {
        self.rule("prompts/get", pattern, scopes)
    }

    /// `resources/read` (and `resources/subscribe`) on URIs matching `pattern` needs `scopes`.
    pub fn resource<I, T>(self, pattern: &str, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Box<str>> + Clone,
    {
        let scopes: Vec<T> = scopes.into_iter().collect();
        self.rule("resources/read", pattern, scopes.clone()).rule(
            "resources/subscribe",
            pattern,
            scopes,
        )
    }

    /// Every call of a method matching `pattern` needs `scopes`, on top of its target's rule.
    pub fn method<I, T>(mut self, pattern: &str, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Box<str>>,
    {
        let scopes = collect(scopes);
        match Pattern::new(pattern) {
            Pattern::Exact(method) => {
                self.by_method.entry(method).or_default().method = Some(scopes);
            }
            glob => self.method_globs.push((glob, scopes)),
        }
        self
    }

    /// What a call on a target no rule names needs.
    pub fn default_scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Box<str>>,
    {
        self.default_call = Some(collect(scopes));
        self
    }

    /// `broader` satisfies each of `narrower` (and, transitively, what they imply).
    pub fn implies<I, T>(mut self, broader: &str, narrower: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Box<str>>,
    {
        let set = self.implies.entry(broader.into()).or_default();
        set.extend(narrower.into_iter().map(Into::into));
        self.rebuild_implied_by();
        self
    }

    /// Treats scopes as paths split by `separator`: `mcp:tools` satisfies `mcp:tools:deploy`.
    pub fn prefix_hierarchy(mut self, separator: char) -> Self {
        self.prefix_separator = Some(separator);
        self
    }

    fn rebuild_implied_by(&mut self) {
        // For each narrow scope, every scope that implies it, transitively.
        let mut implied_by: HashMap<Box<str>, BTreeSet<Box<str>>> = HashMap::new();
        for broad in self.implies.keys() {
            let mut stack: Vec<&Box<str>> = self.implies[broad].iter().collect();
            let mut seen = BTreeSet::new();
            while let Some(narrow) = stack.pop() {
                if !seen.insert(narrow.clone()) {
                    continue;
                }
                implied_by
                    .entry(narrow.clone())
                    .or_default()
                    .insert(broad.clone());
                if let Some(next) = self.implies.get(narrow) {
                    stack.extend(next.iter());
                }
            }
        }
        self.implied_by = implied_by
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
    }

    /// Whether `principal` holds `scope` or a broader one.
    pub fn satisfies(&self, principal: &Principal, scope: &str) -> bool {
        if principal.has_scope(scope) {
            return true;
        }
        if self.implied_by_holds(principal, scope) {
            return true;
        }
        if let Some(sep) = self.prefix_separator {
            let mut rest = scope;
            while let Some(at) = rest.rfind(sep) {
                rest = &scope[..at];
                if principal.has_scope(rest) || self.implied_by_holds(principal, rest) {
                    return true;
                }
            }
        }
        false
    }

    fn implied_by_holds(&self, principal: &Principal, scope: &str) -> bool {
        self.implied_by
            .get(scope)
            .is_some_and(|b| b.iter().any(|b| principal.has_scope(b)))
    }

    /// The two scope sets a call needs: the method's, and the target's (or the default).
    fn parts(&self, call: Call<'_>) -> (Option<&Scopes>, Option<&Scopes>) {
        let rules = self.by_method.get(call.method);
        let method = rules.and_then(|r| r.method.as_ref()).or_else(|| {
            self.method_globs
                .iter()
                .find(|(p, _)| p.matches(call.method))
                .map(|(_, s)| s)
        });
        let target = call.name.and_then(|name| {
            let rules = rules?;
            rules.exact.get(name).or_else(|| {
                rules
                    .globs
                    .iter()
                    .find(|(p, _)| p.matches(name))
                    .map(|(_, s)| s)
            })
        });
        let target = target.or_else(|| {
            is_call(call.method)
                .then_some(self.default_call.as_ref())
                .flatten()
        });
        (method, target)
    }

    fn holds_all(&self, principal: &Principal, scopes: Option<&Scopes>) -> bool {
        scopes.is_none_or(|s| s.iter().all(|s| self.satisfies(principal, s)))
    }
}

fn merge(a: Option<&Scopes>, b: Option<&Scopes>) -> Option<Scopes> {
    match (a, b) {
        (None, None) => None,
        (Some(s), None) | (None, Some(s)) => Some(Arc::clone(s)),
        (Some(a), Some(b)) => {
            let mut all: Vec<Box<str>> = a.to_vec();
            for s in b.iter() {
                if !all.contains(s) {
                    all.push(s.clone());
                }
            }
            Some(all.into())
        }
    }
}

impl Authorize for ScopePolicy {
    fn authorize(&self, principal: &Principal, call: Call<'_>) -> Decision {
        let (method, target) = self.parts(call);
        if self.holds_all(principal, method) && self.holds_all(principal, target) {
            Decision::Allow
        } else {
            Decision::Deny(merge(method, target).unwrap_or_else(|| Arc::from([])))
        }
    }

    fn required_scopes(&self, call: Call<'_>) -> Option<Scopes> {
        let (method, target) = self.parts(call);
        merge(method, target)
    }
}

/// The methods that act on one named target, to which `default_scopes` applies.
fn is_call(method: &str) -> bool {
    matches!(
        method,
        "tools/call" | "prompts/get" | "resources/read" | "resources/subscribe"
    )
}

fn collect<I, T>(scopes: I) -> Scopes
where
    I: IntoIterator<Item = T>,
    T: Into<Box<str>>,
{
    let mut out: Vec<Box<str>> = Vec::new();
    for s in scopes {
        let s = s.into();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.into()
}

/// A target pattern: an exact name, or a glob with `*` and `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(Box<str>),
    Glob { glob: Box<[u8]>, prefix: usize },
}

impl Pattern {
    fn new(pattern: &str) -> Self {
        match pattern.find(['*', '?']) {
            None => Pattern::Exact(pattern.into()),
            Some(prefix) => Pattern::Glob {
                glob: pattern.as_bytes().into(),
                prefix,
            },
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Exact(name) => **name == *text,
            Pattern::Glob { glob, prefix } => {
                let text = text.as_bytes();
                text.starts_with(&glob[..*prefix]) && glob_match(&glob[*prefix..], &text[*prefix..])
            }
        }
    }
}

/// Iterative glob matching with single-star backtracking: linear in practice, no recursion.
/// `?` matches one byte; names are matched bytewise (patterns are usually ASCII).
fn glob_match(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && (glob[g] == b'?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == b'*' {
            star = Some((g, t));
            g += 1;
        } else if let Some((sg, st)) = star {
            g = sg + 1;
            t = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(d: Decision) -> Vec<String> {
        match d {
            Decision::Allow => vec![],
            Decision::Deny(s) => s.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn globs_match_as_expected() {
        let p = Pattern::new("deploy_*");
        assert!(p.matches("deploy_prod"));
        assert!(p.matches("deploy_"));
        assert!(!p.matches("redeploy_x"));
        let p = Pattern::new("*_admin?");
        assert!(p.matches("db_admin1"));
        assert!(!p.matches("db_admin"));
        let p = Pattern::new("file:///*/secret*");
        assert!(p.matches("file:///etc/secrets.txt"));
        assert!(!p.matches("file:///etc/public"));
        assert!(Pattern::new("*").matches(""));
        assert!(Pattern::new("a*b*c").matches("aXbYbZc"));
        assert!(!Pattern::new("a*b*c").matches("aXbYbZ"));
    }

    #[test]
    fn exact_beats_glob_and_first_glob_wins() {
        let policy = ScopePolicy::new()
            .tool("deploy_*", ["deploy"])
            .tool("deploy_*_fast", ["never"])
            .tool("deploy_dry_run", ["read"]);
        let p = Principal::new("x");
        let call = |n| Call::new("tools/call", Some(n));
        assert_eq!(
            scopes(policy.authorize(&p, call("deploy_dry_run"))),
            ["read"]
        );
        assert_eq!(
            scopes(policy.authorize(&p, call("deploy_x_fast"))),
            ["deploy"]
        );
        assert_eq!(
            scopes(policy.authorize(&p, call("echo"))),
            Vec::<String>::new()
        );
        assert!(policy.authorize(&p, call("echo")).is_allow());
    }

    #[test]
    fn method_scopes_add_to_target_scopes_and_default_covers_unlisted_calls() {
        let policy = ScopePolicy::new()
            .method("tools/call", ["mcp:tools"])
            .tool("deploy_*", ["mcp:deploy"])
            .default_scopes(["mcp:basic"]);
        let none = Principal::new("x");
        let call = |n| Call::new("tools/call", Some(n));
        assert_eq!(
            scopes(policy.authorize(&none, call("deploy_a"))),
            ["mcp:tools", "mcp:deploy"]
        );
        assert_eq!(
            scopes(policy.authorize(&none, call("nothing_here"))),
            ["mcp:tools", "mcp:basic"]
        );
        // Not a call: no default; tools/list needs nothing.
        assert!(
            policy
                .authorize(&none, Call::new("tools/list", None))
                .is_allow()
        );
        let tools = Principal::new("y").with_scopes(["mcp:tools", "mcp:basic"]);
        assert!(policy.authorize(&tools, call("echo")).is_allow());
        assert!(!policy.authorize(&tools, call("deploy_a")).is_allow());
    }

    #[test]
    fn hierarchies_are_honoured_transitively() {
        let policy = ScopePolicy::new()
            .tool("deploy", ["mcp:deploy"])
            .tool("read", ["files:read:etc"])
            .implies("mcp:admin", ["mcp:write"])
            .implies("mcp:write", ["mcp:deploy"])
            .prefix_hierarchy(':');
        let admin = Principal::new("a").with_scopes(["mcp:admin"]);
        assert!(
            policy
                .authorize(&admin, Call::new("tools/call", Some("deploy")))
                .is_allow()
        );
        let files = Principal::new("f").with_scopes(["files"]);
        assert!(
            policy
                .authorize(&files, Call::new("tools/call", Some("read")))
                .is_allow()
        );
        let other = Principal::new("o").with_scopes(["files:write"]);
        assert!(
            !policy
                .authorize(&other, Call::new("tools/call", Some("read")))
                .is_allow()
        );
    }

    #[test]
    fn method_globs_apply() {
        let policy = ScopePolicy::new().method("tasks/*", ["mcp:tasks"]);
        let p = Principal::new("x");
        assert_eq!(
            scopes(policy.authorize(&p, Call::new("tasks/get", Some("t1")))),
            ["mcp:tasks"]
        );
        assert_eq!(
            policy
                .required_scopes(Call::new("tasks/list", None))
                .as_deref()
                .map(|s| s.len()),
            Some(1)
        );
    }
}
