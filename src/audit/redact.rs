//! Redaction: what audit never records, and the opt-in capture of arguments and results.
//!
//! By default an [`AuditEvent`](super::AuditEvent) holds no header at all, so
//! `Authorization`, cookies, `DPoP` and `Mcp-Param-*` values (R60) cannot reach a sink. The
//! values of those headers are also kept, for the life of the request only, to scrub them
//! from every text audit does record (error messages, captured arguments and results): a
//! server that echoes a token or a mirrored parameter into an error message does not leak it
//! into the audit trail.

use std::borrow::Cow;

use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use std::sync::Arc;

use super::event::Scrubbed;
use crate::protocol::header::{MCP_PARAM_PREFIX, decode_value};
use crate::protocol::{ClientInfo, McpMessage, RequestId, Target};

/// What replaces a redacted value.
pub const REDACTED: &str = "[REDACTED]";

/// The default cap on a captured argument or result: 4 KiB of JSON text.
pub const DEFAULT_CAPTURE_BYTES: usize = 4096;

/// Opt-in capture of tool arguments and results (`gen_ai.tool.call.arguments` / `.result`).
///
/// Both are sensitive, so off unless asked for. Captured JSON first has every listed
/// [JSON Pointer](https://www.rfc-editor.org/rfc/rfc6901) replaced by `"[REDACTED]"`
/// (pointers are relative to the `arguments` object and to the `result` object), then every
/// string equal to or containing a credential or `Mcp-Param-*` value of the request, then is
/// cut to `max_bytes`.
///
/// ```
/// use mcp_edge::audit::{AuditLayer, Capture};
///
/// let capture = Capture::arguments_and_results()
///     .max_bytes(2048)
///     .redact("/password")
///     .redact("/structuredContent/apiKey");
/// let layer = AuditLayer::new(|_event| {}).capture(capture);
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct Capture {
    pub(crate) arguments: bool,
    pub(crate) results: bool,
    pub(crate) max_bytes: usize,
    pub(crate) redact: Vec<Box<str>>,
}

impl Capture {
    /// Capture tool arguments only.
    pub fn arguments() -> Self {
        Capture {
            arguments: true,
            results: false,
            max_bytes: DEFAULT_CAPTURE_BYTES,
            redact: Vec::new(),
        }
    }

    /// Capture tool results only.
    pub fn results() -> Self {
        Capture {
            arguments: false,
            ..Capture::arguments()
        }
        .with_results()
    }

    /// Capture both tool arguments and tool results.
    pub fn arguments_and_results() -> Self {
        Capture::arguments().with_results()
    }

    fn with_results(mut self) -> Self {
        self.results = true;
        self
    }

    /// Sets the largest captured text, in bytes (default 4 KiB); longer text is cut at a
    /// character boundary and ends with `…`.
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// Adds a JSON Pointer (RFC 6901) whose value is replaced by `"[REDACTED]"`.
    pub fn redact(mut self, pointer: impl Into<Box<str>>) -> Self {
        self.redact.push(pointer.into());
        self
    }

    /// Redacts and caps one JSON value (arguments or result), or `None` if it is not JSON.
    pub(crate) fn render(&self, json: &str, secrets: &Secrets) -> Option<Box<str>> {
        let mut value: Value = serde_json::from_str(json).ok()?;
        for pointer in &self.redact {
            if let Some(slot) = value.pointer_mut(pointer) {
                *slot = Value::String(REDACTED.to_owned());
            }
        }
        secrets.scrub_value(&mut value);
        let text = value.to_string();
        Some(cap(text, self.max_bytes))
    }
}

fn cap(mut text: String, max: usize) -> Box<str> {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text.into_boxed_str()
}

/// The request's secret values, kept only while the request is in flight so they can be
/// scrubbed from recorded text.
///
/// Built on every request, so it copies nothing: each secret is a range of a header value
/// the request already holds (a reference-counted clone, not a copy, for headers hyper
/// parsed), checked once here as visible ASCII. Only `Mcp-Param-*` values, whose decoded form
/// may differ from the raw one, are copied.
#[derive(Debug, Default)]
pub(crate) struct Secrets {
    /// The first secret: usually the only one, the bearer token (no list to allocate).
    first: Option<Secret>,
    /// The others, in header order (a boxed slice: a record keeps it as long as its stream).
    more: Box<[Secret]>,
}

/// One secret value.
#[derive(Debug)]
enum Secret {
    /// `value[start..end]`, visible ASCII.
    Slice {
        value: HeaderValue,
        start: u32,
        end: u32,
    },
    /// A value that is not a slice of a header (a decoded `Mcp-Param-*`).
    Owned(Box<str>),
}

impl Secret {
    /// `part` of `value`'s text `text` (`text` is `value.to_str()`).
    fn slice(value: &HeaderValue, text: &str, part: &str) -> Option<Secret> {
        if part.is_empty() {
            return None;
        }
        let start = part.as_ptr() as usize - text.as_ptr() as usize;
        Some(Secret::Slice {
            value: value.clone(),
            start: u32::try_from(start).ok()?,
            end: u32::try_from(start + part.len()).ok()?,
        })
    }

    fn owned(text: &str) -> Option<Secret> {
        (!text.is_empty()).then(|| Secret::Owned(text.into()))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Secret::Slice { value, start, end } => {
                &value.as_bytes()[*start as usize..*end as usize]
            }
            Secret::Owned(text) => text.as_bytes(),
        }
    }

    /// The secret as text; only the scrubbing paths (which copy anyway) need it.
    fn text(&self) -> &str {
        match self {
            // Checked as visible ASCII when the secret was taken.
            Secret::Slice { .. } => std::str::from_utf8(self.bytes()).unwrap_or_default(),
            Secret::Owned(text) => text,
        }
    }

    /// Whether `text` holds this secret (as [`Secrets::scrub`] would replace it).
    fn taints(&self, text: &[u8]) -> bool {
        let secret = self.bytes();
        if text.len() <= secret.len() {
            // Most recorded values (methods, ids, names) are shorter than a token.
            return text == secret;
        }
        secret.len() >= MIN_SUBSTRING_LEN
            && if text.len() < 4 * secret.len() {
                text.windows(secret.len()).any(|w| w == secret)
            } else {
                memchr::memmem::find(text, secret).is_some()
            }
    }
}

/// [`Secrets`] while they are collected.
#[derive(Default)]
struct Collected {
    first: Option<Secret>,
    more: Vec<Secret>,
}

impl Collected {
    fn push(&mut self, secret: Option<Secret>) {
        let Some(secret) = secret else { return };
        if self.first.is_none() {
            self.first = Some(secret);
        } else {
            self.more.push(secret);
        }
    }
}

/// How a sensitive header holds its secrets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `Authorization`, `Proxy-Authorization`: the credential after the scheme.
    Credential,
    /// `Cookie`: every value.
    Cookie,
    /// `DPoP`: the whole value.
    Whole,
    /// `Mcp-Param-*`: the decoded value and the raw one.
    Param,
}

/// Shorter values are only redacted where a whole JSON string equals them: scrubbing every
/// `"1"` from free text would destroy it and protect nothing.
const MIN_SUBSTRING_LEN: usize = 4;

impl Secrets {
    /// Copies the secrets that are slices of the request's header values into their own
    /// allocations (the secret only, not the rest of its header). A header value hyper parsed
    /// shares the connection's whole read buffer (kilobytes): a record that outlives the
    /// request head (a stream) must not keep it alive.
    pub(crate) fn detach(&mut self) {
        for secret in self.first.iter_mut().chain(self.more.iter_mut()) {
            if let Secret::Slice { .. } = secret {
                *secret = Secret::Owned(secret.text().into());
            }
        }
    }

    /// Collects the bearer token (and any other `Authorization` credential), cookie values,
    /// `DPoP` proofs and `Mcp-Param-*` values of a request.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Secrets {
        let mut secrets = Collected::default();
        for (name, value) in headers {
            let name = name.as_str();
            let kind = match name {
                "authorization" | "proxy-authorization" => Kind::Credential,
                "cookie" => Kind::Cookie,
                "dpop" => Kind::Whole,
                _ if name.starts_with(MCP_PARAM_PREFIX) => Kind::Param,
                _ => continue,
            };
            if kind == Kind::Param
                && let Some(decoded) = decode_value(value.as_bytes())
            {
                // Raw UTF-8 or the `=?base64?…?=` form: keep the decoded value, then the raw one.
                secrets.push(Secret::owned(&decoded));
            }
            let Ok(text) = value.to_str() else {
                // Not visible ASCII: not recordable as text, so it cannot leak as text either.
                continue;
            };
            match kind {
                Kind::Credential => {
                    let credential = text.split_once(' ').map_or(text, |(_, rest)| rest).trim();
                    secrets.push(Secret::slice(value, text, credential));
                }
                Kind::Cookie => {
                    for pair in text.split(';') {
                        if let Some((_, v)) = pair.split_once('=') {
                            secrets.push(Secret::slice(value, text, v.trim().trim_matches('"')));
                        }
                    }
                }
                Kind::Whole | Kind::Param => {
                    secrets.push(Secret::slice(value, text, text.trim()));
                }
            }
        }
        Secrets {
            first: secrets.first,
            more: secrets.more.into_boxed_slice(),
        }
    }

    /// The secrets, in header order.
    fn iter(&self) -> impl Iterator<Item = &Secret> {
        self.first.iter().chain(&self.more)
    }

    /// Whether there is nothing to scrub.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Whether `text` holds a secret (as [`scrub`](Self::scrub) would replace it).
    pub(crate) fn taints(&self, text: &str) -> bool {
        self.iter().any(|s| s.taints(text.as_bytes()))
    }

    /// Whether `text` is, whole, one of the secrets.
    fn equals(&self, text: &str) -> bool {
        self.iter().any(|s| s.bytes() == text.as_bytes())
    }

    /// The scrubbed forms of the client-sent values of `message` that hold a secret.
    pub(crate) fn scrub_message(&self, message: &McpMessage) -> Option<Box<Scrubbed>> {
        if self.is_empty() {
            return None;
        }
        let mut out = Scrubbed::default();
        let mut any = false;
        if let Some(method) = message.method().filter(|m| self.taints(m)) {
            out.method = Some(self.scrub(method).into());
            any = true;
        }
        if let Some(RequestId::String(id)) = message.id().filter(|id| match id {
            RequestId::String(s) => self.taints(s),
            RequestId::Number(_) => false,
        }) {
            out.id = Some(RequestId::String(Arc::from(&*self.scrub(id))));
            any = true;
        }
        if let Some(target) = message.target().filter(|t| self.taints(t.name())) {
            let name: Box<str> = self.scrub(target.name()).into();
            out.target = Some(match target {
                Target::Tool(_) => Target::Tool(name),
                Target::Prompt(_) => Target::Prompt(name),
                Target::Resource(_) => Target::Resource(name),
                _ => Target::Task(name),
            });
            any = true;
        }
        if let Some(info) = message.client_info() {
            let tainted = |v: &Option<Box<str>>| v.as_deref().is_some_and(|v| self.taints(v));
            if tainted(&info.name) || tainted(&info.version) || tainted(&info.title) {
                let clean = |v: &Option<Box<str>>| v.as_deref().map(|v| self.scrub(v).into());
                out.client_info = Some(ClientInfo {
                    name: clean(&info.name),
                    version: clean(&info.version),
                    title: clean(&info.title),
                });
                any = true;
            }
        }
        if let Some(meta) = message.meta() {
            let tainted = |v: &Option<Box<str>>| v.as_deref().is_some_and(|v| self.taints(v));
            if tainted(&meta.traceparent) || tainted(&meta.tracestate) {
                out.trace_context = true;
                any = true;
            }
        }
        any.then(|| Box::new(out))
    }

    /// Replaces every secret inside `text` by `[REDACTED]`.
    pub(crate) fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for secret in self.iter() {
            if !secret.taints(out.as_bytes()) {
                continue;
            }
            let secret = secret.text();
            if secret.len() >= MIN_SUBSTRING_LEN && out.contains(secret) {
                out = Cow::Owned(out.replace(secret, REDACTED));
            } else if secret == out {
                out = Cow::Borrowed(REDACTED);
            }
        }
        out
    }

    /// Scrubs every string (and number or boolean whose text is a secret) in a JSON value.
    pub(crate) fn scrub_value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.scrub(s) {
                    *s = clean;
                } else if self.equals(s) {
                    *s = REDACTED.to_owned();
                }
            }
            Value::Number(n) => {
                let text = n.to_string();
                if self.equals(&text) {
                    *value = Value::String(REDACTED.to_owned());
                }
            }
            Value::Bool(b) => {
                let text = if *b { "true" } else { "false" };
                if self.equals(text) {
                    *value = Value::String(REDACTED.to_owned());
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.scrub_value(v)),
            Value::Null => {}
        }
    }
}

/// `value` in an allocation of its own (see [`Secrets::detach`]).
pub(crate) fn detached(value: &HeaderValue) -> HeaderValue {
    let mut copy = HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(value.as_bytes()))
        .expect("the bytes of a header value are a valid header value");
    copy.set_sensitive(value.is_sensitive());
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn detached_values_own_their_bytes() {
        // A value parsed by hyper is a slice of the connection's read buffer.
        let buffer =
            bytes::Bytes::from(b"GET / HTTP/1.1\r\nauthorization: Bearer tok-1\r\n".to_vec());
        let value = HeaderValue::from_maybe_shared(buffer.slice(31..43)).unwrap();
        let copy = detached(&value);
        assert_eq!(copy, value);
        assert_ne!(copy.as_bytes().as_ptr(), value.as_bytes().as_ptr());
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", value.clone());
        let mut secrets = Secrets::from_headers(&headers);
        secrets.detach();
        assert!(secrets.taints("the token is tok-1"));
    }
    use http::header::{AUTHORIZATION, COOKIE};

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer tok-SECRET-123"),
        );
        h.insert(
            COOKIE,
            HeaderValue::from_static("sid=cookie-VALUE; theme=dark"),
        );
        h.insert(
            "mcp-param-region",
            HeaderValue::from_static("eu-west-PARAM"),
        );
        h.insert("mcp-param-n", HeaderValue::from_static("7"));
        h.insert(
            "mcp-param-city",
            HeaderValue::from_bytes("Zürich-PARAM".as_bytes()).unwrap(),
        );
        h.insert(
            "mcp-param-note",
            HeaderValue::from_static("=?base64?c2VjcmV0LW5vdGU=?="),
        );
        h
    }

    #[test]
    fn scrubs_tokens_cookies_and_params_from_text() {
        let s = Secrets::from_headers(&headers());
        assert_eq!(
            s.scrub("bad token tok-SECRET-123 for eu-west-PARAM, cookie-VALUE"),
            "bad token [REDACTED] for [REDACTED], [REDACTED]"
        );
        assert_eq!(s.scrub("nothing here"), "nothing here");
        assert_eq!(s.scrub("in Zürich-PARAM"), "in [REDACTED]");
        assert_eq!(s.scrub("a secret-note"), "a [REDACTED]");
    }

    #[test]
    fn capture_applies_pointers_secrets_and_cap() {
        let s = Secrets::from_headers(&headers());
        let capture = Capture::arguments().redact("/password").max_bytes(200);
        let out = capture
            .render(
                r#"{"password":"hunter2","region":"eu-west-PARAM","n":7,"note":"ok"}"#,
                &s,
            )
            .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["password"], REDACTED);
        assert_eq!(v["region"], REDACTED);
        assert_eq!(v["n"], REDACTED);
        assert_eq!(v["note"], "ok");
        let small = Capture::arguments().max_bytes(10);
        let cut = small.render(r#"{"text":"ééééééééé"}"#, &s).unwrap();
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= 10 + '…'.len_utf8());
    }
}
