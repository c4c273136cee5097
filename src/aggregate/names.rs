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

#[cfg(test)]
mod tests {
    use super::*;

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
