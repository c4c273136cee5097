//! The `WWW-Authenticate: Bearer …` challenges of R52, R53 and R58 (RFC 6750 §3, RFC 9728 §5.1).

use std::fmt::Write;

use http::HeaderValue;

/// What a challenge says. Parameters are written in a fixed order:
/// `error`, `error_description` (401) / `scope` (403), `resource_metadata`, `scope`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Challenge<'a> {
    /// No bearer token was presented: no `error` (RFC 6750 §3.1).
    Missing,
    /// A token was presented and refused.
    InvalidToken(&'a str),
    /// The request itself was malformed (a token in the query, several tokens).
    InvalidRequest(&'a str),
    /// The token lacks scopes (403).
    InsufficientScope,
}

/// Builds the header value. `scope` is the space-separated list; quoting and escaping follow
/// RFC 9110 quoted-string, and anything that is not a visible ASCII character or a space is
/// dropped, so no reflected input can break the header.
pub(crate) fn www_authenticate(
    challenge: Challenge<'_>,
    resource_metadata: Option<&str>,
    scope: Option<&str>,
) -> HeaderValue {
    let mut out = String::with_capacity(128);
    out.push_str("Bearer");
    let mut first = true;
    let mut param = |out: &mut String, name: &str, value: &str| {
        out.push_str(if first { " " } else { ", " });
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        push_quoted(out, value);
        out.push('"');
    };
    let scope = scope.filter(|s| !s.is_empty());
    match challenge {
        Challenge::Missing => {}
        Challenge::InvalidToken(description) => {
            param(&mut out, "error", "invalid_token");
            param(&mut out, "error_description", description);
        }
        Challenge::InvalidRequest(description) => {
            param(&mut out, "error", "invalid_request");
            param(&mut out, "error_description", description);
        }
        Challenge::InsufficientScope => {
            param(&mut out, "error", "insufficient_scope");
            if let Some(scope) = scope {
                param(&mut out, "scope", scope);
            }
            if let Some(url) = resource_metadata {
                param(&mut out, "resource_metadata", url);
            }
            return to_value(out);
        }
    }
    if let Some(url) = resource_metadata {
        param(&mut out, "resource_metadata", url);
    }
    if let Some(scope) = scope {
        param(&mut out, "scope", scope);
    }
    to_value(out)
}

fn to_value(out: String) -> HeaderValue {
    // Every byte pushed is visible ASCII or a space, so this cannot fail.
    HeaderValue::try_from(out).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// Appends `value` escaped for a quoted-string: `"` and `\` get a backslash, and only
/// printable ASCII and spaces are kept.
fn push_quoted(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "?");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://h.example/.well-known/oauth-protected-resource/mcp";

    #[test]
    fn missing_token_has_no_error() {
        let v = www_authenticate(Challenge::Missing, Some(URL), Some("mcp:tools mcp:read"));
        assert_eq!(
            v,
            "Bearer resource_metadata=\"https://h.example/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools mcp:read\""
        );
        assert_eq!(www_authenticate(Challenge::Missing, None, None), "Bearer");
    }

    #[test]
    fn invalid_token_adds_error_and_escapes() {
        let v = www_authenticate(
            Challenge::InvalidToken("bad \"sig\" \\ here\n\u{e9}"),
            Some(URL),
            None,
        );
        assert_eq!(
            v,
            "Bearer error=\"invalid_token\", error_description=\"bad \\\"sig\\\" \\\\ here??\", resource_metadata=\"https://h.example/.well-known/oauth-protected-resource/mcp\""
        );
    }

    #[test]
    fn insufficient_scope_lists_scope_then_metadata() {
        let v = www_authenticate(Challenge::InsufficientScope, Some(URL), Some("a b"));
        assert_eq!(
            v,
            "Bearer error=\"insufficient_scope\", scope=\"a b\", resource_metadata=\"https://h.example/.well-known/oauth-protected-resource/mcp\""
        );
    }
}
