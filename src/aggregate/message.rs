//! JSON-RPC messages as the aggregator reads, edits and answers them.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::protocol::jsonrpc::code;

/// A JSON object: a whole message, its `params` or its `result`.
pub(crate) type Object = Map<String, Value>;

/// `{"jsonrpc":"2.0","id":…,"result":…}`.
pub(crate) fn result(id: &Value, result: Value) -> Bytes {
    to_bytes(&json!({ "jsonrpc": "2.0", "id": id, "result": result }))
}

/// `{"jsonrpc":"2.0","id":…,"error":{"code":…,"message":…,"data"?:…}}`.
pub(crate) fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Bytes {
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    to_bytes(&json!({ "jsonrpc": "2.0", "id": id, "error": error }))
}

/// The error a call gets when its upstream failed: `-32603` (a middleware error, R70) whose
/// message and `data.upstream` name the upstream.
pub(crate) fn upstream_error(id: &Value, upstream: &str, what: &dyn std::fmt::Display) -> Bytes {
    error(
        id,
        code::INTERNAL_ERROR,
        &format!("upstream `{upstream}` failed: {what}"),
        Some(json!({ "upstream": upstream })),
    )
}

pub(crate) fn to_bytes(value: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("JSON values always serialize"))
}

/// The message's `params`, created empty when absent (or not an object).
pub(crate) fn params_mut(message: &mut Object) -> &mut Object {
    let params = message
        .entry("params")
        .or_insert_with(|| Value::Object(Map::new()));
    if !params.is_object() {
        *params = Value::Object(Map::new());
    }
    params.as_object_mut().expect("made an object above")
}

/// A string field of the message's `params`.
pub(crate) fn param_str<'a>(message: &'a Object, field: &str) -> Option<&'a str> {
    message.get("params")?.get(field)?.as_str()
}

/// Whether a message is a response (a result or an error).
pub(crate) fn is_response(message: &Object) -> bool {
    message.contains_key("result") || message.contains_key("error")
}

/// Rewrites one message an upstream sent on a routed call's stream: the response to
/// `upstream_id` gets the client's id back. Anything else (notifications, and what cannot be
/// read) goes through unchanged.
pub(crate) fn restore_id(data: &[u8], upstream_id: i64, client_id: &Value) -> Option<Bytes> {
    if let Some(envelope) = Envelope::read(data) {
        // Only the id's bytes change: the result is never parsed into a tree.
        return (envelope.is_response() && envelope.id_i64() == Some(upstream_id))
            .then(|| envelope.with_id(data, client_id))
            .flatten();
    }
    let mut message: Object = serde_json::from_slice(data).ok()?;
    if is_response(&message) && message.get("id").and_then(Value::as_i64) == Some(upstream_id) {
        message.insert("id".into(), client_id.clone());
        return Some(to_bytes(&message));
    }
    None
}

/// A value's place in a message's bytes.
type Span = std::ops::Range<usize>;

/// Where `raw`, borrowed from `within`, sits in it.
fn span_in(within: &[u8], raw: &RawValue) -> Span {
    let start = raw.get().as_ptr().addr() - within.as_ptr().addr();
    start..start + raw.get().len()
}

/// A present field's raw value, `null` included (`Option<&RawValue>` would read `null` as
/// absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The top-level fields of a JSON-RPC message the aggregator decides on, each as its raw JSON
/// borrowed from the message's bytes: read in one pass without building a tree, so a message
/// can be passed on with only its id's (or name's) bytes replaced. A message that is not one
/// JSON object, or that repeats one of these fields, does not read (callers then parse it
/// whole, as before).
#[derive(Deserialize)]
pub(crate) struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// `params.name` and `params.uri`, raw.
#[derive(Deserialize)]
struct TargetFields<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    name: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    uri: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// The envelope of one message, if it reads as one (an object: serde would also read an
    /// array into these fields, by position).
    pub(crate) fn read(data: &'a [u8]) -> Option<Self> {
        is_object(data).then(|| serde_json::from_slice(data).ok())?
    }

    /// The method, when there is one and it is a string.
    pub(crate) fn method(&self) -> Option<Cow<'a, str>> {
        serde_json::from_str(self.method?.get()).ok()
    }

    /// Whether the message has a `method` field at all.
    pub(crate) fn has_method(&self) -> bool {
        self.method.is_some()
    }

    /// Whether the message has an `id` field (`null` included).
    pub(crate) fn has_id(&self) -> bool {
        self.id.is_some()
    }

    /// A response: a result or an error (as [`is_response`] reads it).
    pub(crate) fn is_response(&self) -> bool {
        self.result.is_some() || self.error.is_some()
    }

    /// The id, when it is an integer.
    pub(crate) fn id_i64(&self) -> Option<i64> {
        serde_json::from_str(self.id?.get()).ok()
    }

    /// `data` (the bytes this envelope was read from) with its id replaced by `id`.
    pub(crate) fn with_id(&self, data: &[u8], id: &Value) -> Option<Bytes> {
        let span = span_in(data, self.id?);
        let mut out = Vec::with_capacity(data.len() + 16);
        out.extend_from_slice(&data[..span.start]);
        serde_json::to_writer(&mut out, id).ok()?;
        out.extend_from_slice(&data[span.end..]);
        Some(Bytes::from(out))
    }
}

/// Whether JSON text is an object (its first byte past any whitespace is `{`).
pub(crate) fn is_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// A routed request as its upstream gets it, written by replacing bytes of the client's
/// message: its id becomes `id`, and its `params.<field>` (`"name"` or `"uri"`) becomes `own`.
/// Everything else (arguments, `_meta`) goes on exactly as the client wrote it. `None` when
/// the message does not read that way (the caller then edits the parsed message).
pub(crate) fn splice_request(data: &[u8], field: &str, id: i64, own: &str) -> Option<Bytes> {
    let envelope = Envelope::read(data)?;
    let id_span = span_in(data, envelope.id?);
    let params = envelope.params?.get();
    if !is_object(params.as_bytes()) {
        return None;
    }
    let target: TargetFields<'_> = serde_json::from_str(params).ok()?;
    let raw = match field {
        "name" => target.name?,
        "uri" => target.uri?,
        _ => return None,
    };
    if !raw.get().starts_with('"') {
        return None;
    }
    let target_span = span_in(data, raw);
    let mut out = Vec::with_capacity(data.len() + own.len() + 16);
    // The id is at the top level and the target inside `params`: the spans never overlap.
    let (first, second) = if id_span.start < target_span.start {
        (&id_span, &target_span)
    } else {
        (&target_span, &id_span)
    };
    let write = |out: &mut Vec<u8>, span: &Span| {
        if *span == id_span {
            serde_json::to_writer(out, &id)
        } else {
            serde_json::to_writer(out, own)
        }
    };
    out.extend_from_slice(&data[..first.start]);
    write(&mut out, first).ok()?;
    out.extend_from_slice(&data[first.end..second.start]);
    write(&mut out, second).ok()?;
    out.extend_from_slice(&data[second.end..]);
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_matching_response_gets_the_client_id_back() {
        let client = json!("c-1");
        let out = restore_id(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#, 7, &client).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out, json!({ "jsonrpc": "2.0", "id": "c-1", "result": {} }));
        assert!(restore_id(br#"{"jsonrpc":"2.0","id":8,"result":{}}"#, 7, &client).is_none());
        let note = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#;
        assert!(restore_id(note, 7, &client).is_none());
        assert!(restore_id(b"not json", 7, &client).is_none());
    }

    #[test]
    fn a_routed_request_changes_only_its_id_and_name() {
        let body = br#"{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"a__echo","arguments":{"name":"x","id":2}}}"#;
        let out = splice_request(body, "name", 41, "echo").unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"echo","arguments":{"name":"x","id":2}}}"#
        );
        // Spacing, key order and escapes as the client wrote them; the id after the params.
        let body = br#"{ "params" : {"uri": "b+file:///\u0061", "_meta": {}}, "method":"resources/read", "id" : 7 }"#;
        let out = splice_request(body, "uri", 9, "file:///\"quoted\"").unwrap();
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["id"], 9);
        assert_eq!(value["params"]["uri"], r#"file:///"quoted""#);
        assert_eq!(value["params"]["_meta"], json!({}));
        // Not what it expects: left to the parsed path.
        let number = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#;
        assert!(splice_request(number, "name", 2, "x").is_none());
        let twice = br#"{"id":1,"id":2,"method":"tools/call","params":{"name":"a__b"}}"#;
        assert!(splice_request(twice, "name", 2, "x").is_none());
        let array = br#"{"id":1,"method":"tools/call","params":["a__b"]}"#;
        assert!(splice_request(array, "name", 2, "x").is_none());
    }

    #[test]
    fn the_envelope_reads_null_ids_as_present() {
        let note = Envelope::read(br#"{"jsonrpc":"2.0","method":"x","id":null}"#).unwrap();
        assert!(note.has_id() && note.has_method() && !note.is_response());
        assert_eq!(note.id_i64(), None);
        assert_eq!(note.method().as_deref(), Some("x"));
        let answer = Envelope::read(br#"{"id":5,"error":{"code":1,"message":"m"}}"#).unwrap();
        assert!(answer.is_response());
        assert_eq!(answer.id_i64(), Some(5));
        assert!(Envelope::read(b"[1]").is_none());
    }

    #[test]
    fn upstream_errors_name_the_upstream() {
        let body = upstream_error(&json!(3), "beta", &"timed out");
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["id"], 3);
        assert_eq!(value["error"]["code"], code::INTERNAL_ERROR);
        assert_eq!(value["error"]["data"]["upstream"], "beta");
        assert!(
            value["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`beta`")
        );
    }
}
