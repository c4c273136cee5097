//! Reading how a JSON-RPC exchange ended, from the server's side (SPEC R67, R70).
//!
//! A response body (or the `data` of one SSE event) holds one JSON-RPC message or, in
//! 2025-03-26, an array of them. Only what tells outcomes apart is decoded, in one pass: the
//! `id`, whether there is a `result` (and, for tool calls, its `isError`), and the `error`'s
//! code and message. Requests and notifications the server sends back are given up at their
//! `method` key.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::jsonrpc::RequestId;

/// How one JSON-RPC response ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// A `result`. `is_error` is `CallToolResult.isError` (absent means `false`).
    Result {
        /// `result.isError == true`: a tool error, still HTTP 200 (R70).
        is_error: bool,
    },
    /// A JSON-RPC `error`.
    Error {
        /// `error.code`.
        code: i64,
        /// `error.message`.
        message: Box<str>,
    },
}

/// One response message the server sent.
#[derive(Debug, Clone)]
pub struct ResponseMessage<'a> {
    /// The id it answers; `None` when the server could not read the request's id.
    pub id: Option<RequestId>,
    /// How it ended.
    pub outcome: ResponseOutcome,
    /// The raw `result` value, when asked for ([`ReadResponses::keep_result`]).
    pub result: Option<&'a RawValue>,
}

/// What to read from response messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadResponses {
    /// Read `result.isError` (only `tools/call` results have it).
    pub tool_call: bool,
    /// Keep the raw `result` (for capture); costs a second pass over it for `isError`.
    pub keep_result: bool,
}

impl ReadResponses {
    /// Parses the response messages in a JSON body or SSE `data` field.
    ///
    /// Returns `None` when the text is not JSON; messages that are not responses (server
    /// requests, notifications) are skipped.
    pub fn parse<'a>(self, text: &'a str) -> Option<Vec<ResponseMessage<'a>>> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            let items: Vec<&RawValue> = serde_json::from_str(trimmed).ok()?;
            Some(
                items
                    .into_iter()
                    .filter_map(|i| self.parse_one(i.get()))
                    .collect(),
            )
        } else {
            Some(self.read_one(trimmed)?.into_iter().collect())
        }
    }

    /// Parses one response message; `None` when it is not JSON or not a response.
    pub fn parse_one<'a>(self, text: &'a str) -> Option<ResponseMessage<'a>> {
        self.read_one(text).flatten()
    }

    /// Like [`parse`](Self::parse), from bytes: UTF-8 is checked as the parser goes, so a
    /// request or notification costs only the bytes up to its `method` key.
    pub fn parse_bytes<'a>(self, bytes: &'a [u8]) -> Option<Vec<ResponseMessage<'a>>> {
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
        if bytes[start] == b'[' {
            return self.parse(std::str::from_utf8(bytes).ok()?);
        }
        // The usual shape of a request or notification, as SDKs serialize it: a top-level
        // `method` key makes it no response (R67), whatever follows. No parsing at all.
        if NOT_RESPONSE_PREFIXES
            .iter()
            .any(|prefix| bytes[start..].starts_with(prefix))
        {
            return Some(Vec::new());
        }
        let rest = &bytes[start..];
        let stopped = Cell::new(false);
        let seed = MessageSeed(self, &stopped);
        // Valid UTF-8 (the usual case) is checked in one pass rather than string by string.
        let read = match std::str::from_utf8(rest) {
            Ok(text) => {
                if let Some(fast) = self.read_fast(text) {
                    return Some(fast.into_iter().collect());
                }
                seed.deserialize(&mut serde_json::Deserializer::from_str(text))
            }
            Err(_) => seed.deserialize(&mut serde_json::Deserializer::from_slice(rest)),
        };
        let Some(wire) = read_wire(read, &stopped)? else {
            return Some(Vec::new());
        };
        Some(self.finish(wire).into_iter().collect())
    }

    /// `None` when not JSON, `Some(None)` when JSON but not a response.
    fn read_one<'a>(self, text: &'a str) -> Option<Option<ResponseMessage<'a>>> {
        if let Some(fast) = self.read_fast(text) {
            return Some(fast);
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let stopped = Cell::new(false);
        let Some(wire) = read_wire(MessageSeed(self, &stopped).deserialize(&mut de), &stopped)?
        else {
            return Some(None);
        };
        Some(self.finish(wire))
    }

    fn finish(self, wire: WireMessage<'_>) -> Option<ResponseMessage<'_>> {
        let outcome = match (wire.error, &wire.result) {
            (Some(error), _) => ResponseOutcome::Error {
                code: error.code,
                message: error.message.into(),
            },
            (None, Some(result)) => ResponseOutcome::Result {
                is_error: result.is_error,
            },
            (None, None) => return None,
        };
        Some(ResponseMessage {
            id: wire.id,
            outcome,
            result: wire.result.and_then(|r| r.raw),
        })
    }

    /// The usual response, read without serde: one object whose keys are plain strings, an
    /// integer or plain string `id`, a `result` (and for a tool call its `isError` literal),
    /// every other value skipped and checked as serde_json checks what it ignores. `None`
    /// (read it with serde) for anything else: an `error` or `method` key, an escaped key,
    /// a kept result, no result, an id or `isError` of another kind, malformed JSON. So it
    /// only ever answers as the serde reader would, and answers the common case at a
    /// fraction of the cost.
    fn read_fast(self, text: &str) -> Option<Option<ResponseMessage<'_>>> {
        if self.keep_result {
            return None;
        }
        let mut scan = Scan::new(text.as_bytes());
        if scan.peek()? != b'{' {
            return None;
        }
        let mut id = None;
        let mut is_error = None;
        scan.members(b'}', |scan| {
            let key = scan.plain_str()?;
            scan.expect(b':')?;
            match key {
                b"id" => id = scan.id()?,
                b"result" if self.tool_call => is_error = Some(scan.tool_result()?),
                b"result" => {
                    scan.skip_value(0)?;
                    is_error = Some(false);
                }
                b"error" | b"method" => return None,
                _ => scan.skip_value(0)?,
            }
            Some(())
        })?;
        Some(Some(ResponseMessage {
            id,
            outcome: ResponseOutcome::Result {
                is_error: is_error?,
            },
            result: None,
        }))
    }
}

/// The deepest nesting [`Scan::skip_value`] follows before handing over to serde (whose own
/// limit is 128).
const MAX_SCAN_DEPTH: u32 = 100;

/// A forward-only reader over JSON text, for [`ReadResponses::read_fast`]: every method
/// returns `None` where serde_json would fail, or where the fast path does not go.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// How many bytes of string contents come before the first `"` or `\`; `None` when a
/// control character comes first (serde_json refuses it) or the text ends. Short runs (keys,
/// most values) take a byte loop; past 32 bytes, memchr's vectorised search.
fn string_run(rest: &[u8]) -> Option<usize> {
    let head = rest.len().min(32);
    if let Some(at) = rest[..head]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
    {
        return (rest[at] >= 0x20).then_some(at);
    }
    let len = head + memchr::memchr2(b'"', b'\\', &rest[head..])?;
    (!rest[head..len].iter().any(|&b| b < 0x20)).then_some(len)
}

impl<'a> Scan<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Scan { bytes, at: 0 }
    }

    /// The next byte that is not JSON whitespace (not consumed).
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.peek()?;
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A string without escapes, its contents returned.
    fn plain_str(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let rest = &self.bytes[self.at..];
        let len = string_run(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.at += len + 1;
        Some(&rest[..len])
    }

    /// Any string, its escapes checked as serde_json checks an ignored string.
    fn skip_str(&mut self) -> Option<()> {
        self.expect(b'"')?;
        loop {
            let rest = &self.bytes[self.at..];
            let len = string_run(rest)?;
            self.at += len + 1;
            if rest[len] == b'"' {
                return Some(());
            }
            match *self.bytes.get(self.at)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => {
                    let hex = self.bytes.get(self.at + 1..self.at + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 5;
                }
                _ => return None,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        self.at - start
    }

    /// A JSON number: `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?
    fn skip_number(&mut self) -> Option<()> {
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let first = *self.bytes.get(self.at)?;
        let int = self.digits();
        if int == 0 || (first == b'0' && int > 1) {
            return None;
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// The members of the object or array that opens here, each read by `member`, up to and
    /// including `close`.
    fn members(
        &mut self,
        close: u8,
        mut member: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.at += 1;
        if self.peek()? != close {
            loop {
                member(self)?;
                match self.peek()? {
                    b',' => self.at += 1,
                    byte if byte == close => break,
                    _ => return None,
                }
            }
        }
        self.at += 1;
        Some(())
    }

    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_str(),
            b'{' | b'[' if depth >= MAX_SCAN_DEPTH => None,
            b'{' => self.members(b'}', |scan| {
                scan.skip_str()?;
                scan.expect(b':')?;
                scan.skip_value(depth + 1)
            }),
            b'[' => self.members(b']', |scan| scan.skip_value(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// An `id`: `null`, an integer that fits `i64`, or a plain string.
    fn id(&mut self) -> Option<Option<RequestId>> {
        match self.peek()? {
            b'n' => self.literal(b"null").map(|()| None),
            b'"' => {
                let text = std::str::from_utf8(self.plain_str()?).ok()?;
                Some(Some(RequestId::from(text)))
            }
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                self.skip_number()?;
                let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
                // A fraction or exponent makes it no integer, and serde_json reads `-0` as a
                // float: serde's error, not ours.
                let n = text.parse::<i64>().ok()?;
                (n != 0 || !text.starts_with('-')).then_some(Some(RequestId::Number(n)))
            }
            _ => None,
        }
    }

    /// A tool call's `result`: its `isError` literal (`null` or absent: `false`); a result
    /// that is not an object is no tool error.
    fn tool_result(&mut self) -> Option<bool> {
        if self.peek()? != b'{' {
            self.skip_value(1)?;
            return Some(false);
        }
        let mut is_error = false;
        self.members(b'}', |scan| {
            let key = scan.plain_str()?;
            scan.expect(b':')?;
            if key == b"isError" {
                is_error = match scan.peek()? {
                    b't' => scan.literal(b"true").map(|()| true)?,
                    b'f' => scan.literal(b"false").map(|()| false)?,
                    _ => scan.literal(b"null").map(|()| false)?,
                };
                Some(())
            } else {
                scan.skip_value(2)
            }
        })?;
        Some(is_error)
    }
}

const NOT_RESPONSE_PREFIXES: [&[u8]; 2] = [br#"{"jsonrpc":"2.0","method":"#, br#"{"method":"#];

/// `None` when not JSON; `Some(None)` when the message is a request or notification (the
/// parser gave up at its `method` key, which serde_json then reports as an error).
fn read_wire<'a>(
    result: Result<Option<WireMessage<'a>>, serde_json::Error>,
    stopped: &Cell<bool>,
) -> Option<Option<WireMessage<'a>>> {
    match result {
        Ok(wire) => Some(wire),
        Err(_) if stopped.get() => Some(None),
        Err(_) => None,
    }
}

struct WireMessage<'a> {
    id: Option<RequestId>,
    result: Option<WireResult<'a>>,
    error: Option<WireError<'a>>,
}

#[derive(Clone, Copy)]
struct WireResult<'a> {
    is_error: bool,
    raw: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireError<'a> {
    code: i64,
    #[serde(default, borrow)]
    message: Cow<'a, str>,
}

/// A message's top-level keys; `None` (not an error: no allocation) at a `method` key.
struct MessageSeed<'s>(ReadResponses, &'s Cell<bool>);

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = Option<WireMessage<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = Option<WireMessage<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = WireMessage {
            id: None,
            result: None,
            error: None,
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Id => out.id = map.next_value::<Option<RequestId>>()?,
                Key::Result => out.result = Some(map.next_value_seed(ResultSeed(self.0))?),
                Key::Error => out.error = Some(map.next_value()?),
                // A request or notification: stop here (the caller drops the rest).
                Key::Method => {
                    self.1.set(true);
                    return Ok(None);
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(out))
    }
}

/// A `result`: its `isError` read in the same pass, or kept raw (and probed) for capture.
struct ResultSeed(ReadResponses);

impl<'de> DeserializeSeed<'de> for ResultSeed {
    type Value = WireResult<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.0.keep_result {
            let raw = <&RawValue>::deserialize(d)?;
            let is_error = self.0.tool_call
                && serde_json::from_str::<ToolResultProbe>(raw.get())
                    .ok()
                    .and_then(|p| p.is_error)
                    .unwrap_or(false);
            Ok(WireResult {
                is_error,
                raw: Some(raw),
            })
        } else if self.0.tool_call {
            let probe = ToolResultProbe::deserialize(d)?;
            Ok(WireResult {
                is_error: probe.is_error.unwrap_or(false),
                raw: None,
            })
        } else {
            IgnoredAny::deserialize(d)?;
            Ok(WireResult {
                is_error: false,
                raw: None,
            })
        }
    }
}

/// `isError` of a `CallToolResult`; anything else in it is skipped. A non-object result is
/// not a tool error.
struct ToolResultProbe {
    is_error: Option<bool>,
}

impl<'de> Deserialize<'de> for ToolResultProbe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ToolResultProbe;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a result")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ToolResultProbe, A::Error> {
                let mut is_error = None;
                while let Some(key) = map.next_key::<ProbeKey>()? {
                    match key {
                        ProbeKey::IsError => is_error = map.next_value::<Option<bool>>()?,
                        ProbeKey::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(ToolResultProbe { is_error })
            }
            fn visit_unit<E: de::Error>(self) -> Result<ToolResultProbe, E> {
                Ok(ToolResultProbe { is_error: None })
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ToolResultProbe, E> {
                Ok(ToolResultProbe { is_error: None })
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<ToolResultProbe, E> {
                Ok(ToolResultProbe { is_error: None })
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<ToolResultProbe, E> {
                Ok(ToolResultProbe { is_error: None })
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ToolResultProbe, E> {
                Ok(ToolResultProbe { is_error: None })
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ToolResultProbe, E> {
                Ok(ToolResultProbe { is_error: None })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ToolResultProbe, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ToolResultProbe { is_error: None })
            }
        }
        d.deserialize_any(V)
    }
}

enum ProbeKey {
    IsError,
    Other,
}

impl<'de> Deserialize<'de> for ProbeKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_key(d, |v| match v {
            "isError" => ProbeKey::IsError,
            _ => ProbeKey::Other,
        })
    }
}

enum Key {
    Id,
    Result,
    Error,
    Method,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_key(d, |v| match v {
            "id" => Key::Id,
            "result" => Key::Result,
            "error" => Key::Error,
            "method" => Key::Method,
            _ => Key::Other,
        })
    }
}

/// An object key, named by `name` (the keys the readers look for, and `Other`), without
/// allocating for it.
fn deserialize_key<'de, D, T, F>(d: D, name: F) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> T,
{
    struct V<T, F>(F, std::marker::PhantomData<T>);
    impl<T, F: FnOnce(&str) -> T> Visitor<'_> for V<T, F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            Ok((self.0)(v))
        }
    }
    d.deserialize_identifier(V(name, std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOL: ReadResponses = ReadResponses {
        tool_call: true,
        keep_result: false,
    };
    const PLAIN: ReadResponses = ReadResponses {
        tool_call: false,
        keep_result: false,
    };

    #[test]
    fn tells_result_tool_error_and_jsonrpc_error_apart() {
        let ok = TOOL
            .parse_one(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#)
            .unwrap();
        assert_eq!(ok.id, Some(RequestId::from(1)));
        assert_eq!(ok.outcome, ResponseOutcome::Result { is_error: false });
        assert!(ok.result.is_none());
        let tool = TOOL
            .parse_one(r#"{"jsonrpc":"2.0","id":"a","result":{"content":[{"isError":false}],"isError":true}}"#)
            .unwrap();
        assert_eq!(tool.outcome, ResponseOutcome::Result { is_error: true });
        let not_tool = PLAIN
            .parse_one(r#"{"jsonrpc":"2.0","id":"a","result":{"isError":true}}"#)
            .unwrap();
        assert_eq!(
            not_tool.outcome,
            ResponseOutcome::Result { is_error: false }
        );
        let err = PLAIN
            .parse_one(r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method \"x\" not found"}}"#)
            .unwrap();
        assert_eq!(
            err.outcome,
            ResponseOutcome::Error {
                code: -32601,
                message: "Method \"x\" not found".into()
            }
        );
    }

    /// The serde reader alone, for comparison with the fast path.
    fn by_serde(read: ReadResponses, text: &str) -> Option<Option<ResponseMessage<'_>>> {
        let mut de = serde_json::Deserializer::from_str(text);
        let stopped = Cell::new(false);
        let wire = read_wire(MessageSeed(read, &stopped).deserialize(&mut de), &stopped)?;
        Some(wire.and_then(|wire| read.finish(wire)))
    }

    type Read = Option<Option<(Option<RequestId>, ResponseOutcome, Option<String>)>>;

    fn key(read: Option<Option<ResponseMessage<'_>>>) -> Read {
        read.map(|m| m.map(|m| (m.id, m.outcome, m.result.map(|r| r.get().to_owned()))))
    }

    #[test]
    fn the_fast_path_answers_as_serde_or_not_at_all() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"hello"}],"isError":false}}"#,
            r#"{"jsonrpc":"2.0","id":"a-1","result":{"content":[],"isError":true}}"#,
            r#" { "jsonrpc" : "2.0" , "id" : -7 , "result" : { "isError" : null } } trailing"#,
            r#"{"id":1,"result":{"isError":true},"result":{}}"#,
            r#"{"id":1,"id":null,"result":[1,2,{"a":[true,false,null,-1.5e+3]}]}"#,
            r#"{"id":1,"result":"text","x":{"y":"\u00e9\n\"q\""}}"#,
            r#"{"id":1,"result":{"isError":true,"isError":false}}"#,
            r#"{"id":-0,"result":{}}"#,
            r#"{"id":1.0,"result":{}}"#,
            r#"{"id":9223372036854775808,"result":{}}"#,
            r#"{"id":-9223372036854775808,"result":{}}"#,
            r#"{"id":01,"result":{}}"#,
            r#"{"id":1,"result":{"isError":"yes"}}"#,
            r#"{"id":1,"result":{"is\u0045rror":true}}"#,
            r#"{"i\u0064":1,"result":{}}"#,
            r#"{"id":1,"result":{},"error":{"code":1,"message":"m"}}"#,
            r#"{"id":1,"method":"x","result":{}}"#,
            r#"{"id":1,"result":{"a":"bad \x escape"}}"#,
            r#"{"id":1,"result":{"a":"\u12G4"}}"#,
            r#"{"id":1,"result":{"a":1.}}"#,
            r#"{"id":1,"result":{"a":-}}"#,
            r#"{"id":1,"result":{"a":1e}}"#,
            r#"{"id":1,"result":{"a":[1,]}}"#,
            r#"{"id":1,"result":{"a":{"b":1,}}}"#,
            r#"{"id":1,"result":{"a":tru}}"#,
            r#"{"id":1,"result":{}"#,
            r#"{"id":1,"result":{}} "#,
            r#"{"id":1}"#,
            r#"{}"#,
            r#"[]"#,
            "{\"id\":1,\"result\":{\"a\":\"ctrl\u{1}\"}}",
            "{\"id\":\"tab\there\",\"result\":{}}",
        ];
        for read in [TOOL, PLAIN] {
            for text in cases {
                let fast = read.read_fast(text);
                if fast.is_some() {
                    assert_eq!(key(fast), key(by_serde(read, text)), "{text}");
                }
                assert_eq!(
                    key(read.read_one(text)),
                    key(by_serde(read, text)),
                    "{text}"
                );
            }
        }
        // The usual answers take the fast path.
        assert!(TOOL.read_fast(cases[0]).is_some());
        assert!(TOOL.read_fast(cases[1]).is_some());
        assert!(PLAIN.read_fast(cases[4]).is_some());
    }

    mod fast_path_props {
        use super::*;
        use proptest::prelude::*;

        fn json() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                (-1e6f64..1e6).prop_map(serde_json::Value::from),
                "[a-z\"\\\\\u{e9}\n ]{0,6}".prop_map(serde_json::Value::from),
            ];
            leaf.prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                    prop::collection::btree_map("(isError|id|[a-z]{1,3})", inner, 0..4)
                        .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn fast_path_agrees_with_serde(
                id in json(),
                result in json(),
                extra in json(),
                cut in any::<prop::sample::Index>(),
                byte in prop::sample::select(b"{}[],:\"\\ 0-.etnu".to_vec()),
                mutate in 0u8..3,
            ) {
                let mut text = format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"result":{result},"x":{extra}}}"#
                );
                let at = cut.index(text.len() + 1);
                if text.is_char_boundary(at) {
                    match mutate {
                        1 => text.insert(at, byte as char),
                        2 if at < text.len() && text.is_char_boundary(at + 1) => {
                            text.remove(at);
                        }
                        _ => {}
                    }
                }
                for read in [TOOL, PLAIN] {
                    if let Some(fast) = read.read_fast(&text) {
                        prop_assert_eq!(key(Some(fast)), key(by_serde(read, &text)), "{}", text);
                    }
                }
            }
        }
    }

    #[test]
    fn keeps_the_raw_result_when_asked() {
        let read = ReadResponses {
            tool_call: true,
            keep_result: true,
        };
        let kept = read
            .parse_one(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#)
            .unwrap();
        assert_eq!(
            kept.result.unwrap().get(),
            r#"{"content":[],"isError":true}"#
        );
        assert_eq!(kept.outcome, ResponseOutcome::Result { is_error: true });
        let odd = TOOL
            .parse_one(r#"{"jsonrpc":"2.0","id":1,"result":[1,2]}"#)
            .unwrap();
        assert_eq!(odd.outcome, ResponseOutcome::Result { is_error: false });
    }

    #[test]
    fn skips_requests_and_notifications_and_reads_batches() {
        assert!(
            PLAIN
                .parse_one(r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#)
                .is_none()
        );
        assert!(
            PLAIN
                .parse_one(r#"{"jsonrpc":"2.0","id":4,"method":"sampling/createMessage"}"#)
                .is_none()
        );
        let many = PLAIN
            .parse(r#" [{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"p"}}]"#)
            .unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[1].id, None);
        assert!(PLAIN.parse("not json").is_none());
        assert!(PLAIN.parse_bytes(b"\xff{").is_none());
        let from_bytes = TOOL
            .parse_bytes(br#" {"jsonrpc":"2.0","id":3,"result":{"isError":true}}"#)
            .unwrap();
        assert_eq!(
            from_bytes[0].outcome,
            ResponseOutcome::Result { is_error: true }
        );
        assert!(
            PLAIN
                .parse_bytes(br#"{"jsonrpc":"2.0","method":"notifications/progress"}"#)
                .unwrap()
                .is_empty()
        );
    }
}
