//! Reading how a JSON-RPC exchange ended, from the server's side (SPEC R67, R70).
//!
//! A response body (or the `data` of one SSE event) holds one JSON-RPC message or, in
//! 2025-03-26, an array of them. Only what tells outcomes apart is decoded: the `id`, whether
//! there is a `result` (and, for tool calls, its `isError`), and the `error`'s code and
//! message. Requests and notifications the server sends back are skipped.

use std::borrow::Cow;

use serde::Deserialize;
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
    /// The raw `result` value, when there is one (borrowed from the input).
    pub result: Option<&'a RawValue>,
}

struct WireMessage<'a> {
    id: Option<RequestId>,
    result: Option<&'a RawValue>,
    error: Option<WireError<'a>>,
}

/// Reads a message's top-level keys, and gives up at the first `method` key: requests and
/// notifications (most SSE events: progress, logging) cost a few bytes of parsing, not the
/// whole message.
impl<'de: 'a, 'a> Deserialize<'de> for WireMessage<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = WireMessage<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC message")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = WireMessage {
                    id: None,
                    result: None,
                    error: None,
                };
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => out.id = map.next_value::<Option<RequestId>>()?,
                        Key::Result => out.result = Some(map.next_value()?),
                        Key::Error => out.error = Some(map.next_value()?),
                        Key::Method => return Err(serde::de::Error::custom("not a response")),
                        Key::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
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
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "id" => Key::Id,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    "method" => Key::Method,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

#[derive(Deserialize)]
struct WireError<'a> {
    code: i64,
    #[serde(default, borrow)]
    message: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ToolResultProbe {
    #[serde(default, rename = "isError")]
    is_error: Option<bool>,
}

/// Parses the response messages in a JSON body or SSE `data` field.
///
/// `tool_call` asks for `result.isError` to be read (only `tools/call` results have it).
/// Returns `None` when the text is not JSON; messages that are not responses (server
/// requests, notifications) are skipped.
pub fn parse_responses(text: &str, tool_call: bool) -> Option<Vec<ResponseMessage<'_>>> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(trimmed).ok()?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(message) = parse_one(item.get(), tool_call) {
                out.push(message);
            }
        }
        Some(out)
    } else {
        let wire: WireMessage<'_> = serde_json::from_str(trimmed).ok()?;
        Some(from_wire(wire, tool_call).into_iter().collect())
    }
}

/// Parses one response message; `None` when it is not JSON or not a response.
pub fn parse_response(text: &str, tool_call: bool) -> Option<ResponseMessage<'_>> {
    parse_one(text, tool_call)
}

fn parse_one(text: &str, tool_call: bool) -> Option<ResponseMessage<'_>> {
    let wire: WireMessage<'_> = serde_json::from_str(text).ok()?;
    from_wire(wire, tool_call)
}

fn from_wire(wire: WireMessage<'_>, tool_call: bool) -> Option<ResponseMessage<'_>> {
    let outcome = match (&wire.result, wire.error) {
        (_, Some(error)) => ResponseOutcome::Error {
            code: error.code,
            message: error.message.into(),
        },
        (Some(result), None) => {
            let is_error = tool_call
                && serde_json::from_str::<ToolResultProbe>(result.get())
                    .ok()
                    .and_then(|p| p.is_error)
                    .unwrap_or(false);
            ResponseOutcome::Result { is_error }
        }
        (None, None) => return None,
    };
    Some(ResponseMessage {
        id: wire.id,
        outcome,
        result: wire.result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_result_tool_error_and_jsonrpc_error_apart() {
        let ok =
            parse_response(r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#, true).unwrap();
        assert_eq!(ok.id, Some(RequestId::from(1)));
        assert_eq!(ok.result.unwrap().get(), r#"{"content":[]}"#);
        assert_eq!(ok.outcome, ResponseOutcome::Result { is_error: false });
        let tool = parse_response(
            r#"{"jsonrpc":"2.0","id":"a","result":{"content":[],"isError":true}}"#,
            true,
        )
        .unwrap();
        assert_eq!(tool.outcome, ResponseOutcome::Result { is_error: true });
        let not_tool = parse_response(
            r#"{"jsonrpc":"2.0","id":"a","result":{"isError":true}}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            not_tool.outcome,
            ResponseOutcome::Result { is_error: false }
        );
        let err = parse_response(
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method \"x\" not found"}}"#,
            false,
        )
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
    fn skips_requests_and_notifications_and_reads_batches() {
        assert!(
            parse_response(
                r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
                false
            )
            .is_none()
        );
        let many = parse_responses(
            r#" [{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"p"}}]"#,
            false,
        )
        .unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[1].id, None);
        assert!(parse_responses("not json", false).is_none());
    }
}
