//! Namespaced names and URIs: how an upstream's tool, prompt and resource names appear at the
//! aggregator, and how they are read back.

use std::borrow::Cow;

/// The default separator between a namespace and a name: `alpha__echo`.
pub const DEFAULT_SEPARATOR: &str = "__";

/// The longest namespace the aggregator accepts, in bytes.
pub const MAX_NAMESPACE_BYTES: usize = 64;

/// How names and URIs carry their namespace.
///
/// - names (tools, prompts): `{namespace}{separator}{name}`, split at the first separator (a
///   namespace never contains it);
/// - URIs (resources, resource templates): the namespace and a `+` in front of the scheme,
///   `file:///a` → `alpha+file:///a`, which is still a valid URI (RFC 3986 schemes allow `+`)
///   and keeps URI templates (RFC 6570) intact; split at the first `+`.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    separator: Cow<'static, str>,
}

impl Names {
    pub(crate) fn new(separator: Cow<'static, str>) -> Self {
        Names { separator }
    }

    pub(crate) fn separator(&self) -> &str {
        &self.separator
    }

    /// `{namespace}{separator}{name}`.
    pub(crate) fn join(&self, namespace: &str, name: &str) -> String {
        let mut out = String::with_capacity(namespace.len() + self.separator.len() + name.len());
        out.push_str(namespace);
        out.push_str(&self.separator);
        out.push_str(name);
        out
    }

    /// The namespace and the upstream's own name.
    pub(crate) fn split<'a>(&self, name: &'a str) -> Option<(&'a str, &'a str)> {
        name.split_once(&*self.separator)
    }

    /// `{namespace}+{uri}`.
    pub(crate) fn join_uri(&self, namespace: &str, uri: &str) -> String {
        let mut out = String::with_capacity(namespace.len() + 1 + uri.len());
        out.push_str(namespace);
        out.push('+');
        out.push_str(uri);
        out
    }

    /// The namespace and the upstream's own URI.
    pub(crate) fn split_uri<'a>(&self, uri: &'a str) -> Option<(&'a str, &'a str)> {
        let (namespace, rest) = uri.split_once('+')?;
        valid_namespace(namespace, &self.separator).then_some((namespace, rest))
    }
}

/// A namespace is an ASCII letter then letters, digits or `-` (so it also fits in front of a
/// URI scheme), at most [`MAX_NAMESPACE_BYTES`], and never contains the separator.
pub(crate) fn valid_namespace(namespace: &str, separator: &str) -> bool {
    let mut bytes = namespace.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && namespace.len() <= MAX_NAMESPACE_BYTES
        && !namespace.contains(separator)
}

/// Per-upstream rules for its tools (MetaMCP's tool overrides): which are shown, and under
/// which name. Patterns are globs on the upstream's own names (`*` any run of characters,
/// `?` one character).
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolRules {
    include: Vec<Box<str>>,
    exclude: Vec<Box<str>>,
    /// `(own name, name shown)`.
    renames: Vec<(Box<str>, Box<str>)>,
}

impl ToolRules {
    pub(crate) fn include(&mut self, pattern: &str) {
        self.include.push(pattern.into());
    }

    pub(crate) fn exclude(&mut self, pattern: &str) {
        self.exclude.push(pattern.into());
    }

    pub(crate) fn rename(&mut self, own: &str, shown: &str) {
        self.renames.retain(|(o, _)| &**o != own);
        self.renames.push((own.into(), shown.into()));
    }

    /// Whether the upstream's tool `own` is shown at all.
    fn visible(&self, own: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| glob(p, own)))
            && !self.exclude.iter().any(|p| glob(p, own))
    }

    /// The name tool `own` is shown under (before its namespace), or `None` when hidden.
    pub(crate) fn shown<'a>(&'a self, own: &'a str) -> Option<&'a str> {
        if !self.visible(own) {
            return None;
        }
        let renamed = self.renames.iter().find(|(o, _)| &**o == own);
        Some(renamed.map_or(own, |(_, shown)| &**shown))
    }

    /// The upstream's own name for the tool shown as `shown`, or `None` when no visible tool is
    /// shown under that name.
    pub(crate) fn own<'a>(&'a self, shown: &'a str) -> Option<&'a str> {
        let own = match self.renames.iter().find(|(_, s)| &**s == shown) {
            Some((own, _)) => &**own,
            // A renamed tool is no longer reachable under its own name.
            None if self.renames.iter().any(|(o, _)| &**o == shown) => return None,
            None => shown,
        };
        self.visible(own).then_some(own)
    }
}

/// Glob match: `*` any run of characters (none included), `?` exactly one.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t) in [
            ("*", ""),
            ("*", "abc"),
            ("a*c", "abbbc"),
            ("a?c", "abc"),
            ("*_x", "a_x"),
        ] {
            assert!(glob(p, t), "{p} {t}");
        }
        for (p, t) in [("a", "b"), ("a?c", "ac"), ("a*c", "abd"), ("", "a")] {
            assert!(!glob(p, t), "{p} {t}");
        }
    }

    #[test]
    fn tool_rules_hide_and_rename_both_ways() {
        let mut rules = ToolRules::default();
        rules.exclude("who*");
        rules.rename("echo", "say");
        assert_eq!(rules.shown("echo"), Some("say"));
        assert_eq!(rules.shown("whoami"), None);
        assert_eq!(rules.shown("slow_count"), Some("slow_count"));
        assert_eq!(rules.own("say"), Some("echo"));
        assert_eq!(rules.own("echo"), None);
        assert_eq!(rules.own("whoami"), None);
        assert_eq!(rules.own("slow_count"), Some("slow_count"));

        let mut only = ToolRules::default();
        only.include("add");
        assert_eq!(only.shown("add"), Some("add"));
        assert_eq!(only.shown("echo"), None);
        assert_eq!(only.own("echo"), None);
    }

    #[test]
    fn names_and_uris_read_back_to_their_upstream() {
        let names = Names::new(Cow::Borrowed(DEFAULT_SEPARATOR));
        let tool = names.join("alpha", "echo__twice");
        assert_eq!(tool, "alpha__echo__twice");
        assert_eq!(names.split(&tool), Some(("alpha", "echo__twice")));
        assert_eq!(names.split("echo"), None);

        let uri = names.join_uri("beta", "svn+ssh://host/{path}");
        assert_eq!(uri, "beta+svn+ssh://host/{path}");
        assert_eq!(
            names.split_uri(&uri),
            Some(("beta", "svn+ssh://host/{path}"))
        );
        assert_eq!(names.split_uri("file:///a+b"), None);
    }

    #[test]
    fn namespaces_fit_a_uri_scheme_and_exclude_the_separator() {
        assert!(valid_namespace("alpha-2", "__"));
        for bad in [
            "",
            "2alpha",
            "al_pha",
            "al__pha",
            "a b",
            "a+b",
            &"a".repeat(65),
        ] {
            assert!(!valid_namespace(bad, "__"), "{bad}");
        }
        assert!(!valid_namespace("al-pha", "-"));
    }
}
