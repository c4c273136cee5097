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
            Ok(text) => seed.deserialize(&mut serde_json::Deserializer::from_str(text)),
            Err(_) => seed.deserialize(&mut serde_json::Deserializer::from_slice(rest)),
        };
        let Some(wire) = read_wire(read, &stopped)? else {
            return Some(Vec::new());
        };
        Some(self.finish(wire).into_iter().collect())
    }

    /// `None` when not JSON, `Some(None)` when JSON but not a response.
    fn read_one<'a>(self, text: &'a str) -> Option<Option<ResponseMessage<'a>>> {
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
