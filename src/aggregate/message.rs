//! JSON-RPC messages as the aggregator reads, edits and answers them.

use bytes::Bytes;
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
    let mut message: Object = serde_json::from_slice(data).ok()?;
    if is_response(&message) && message.get("id").and_then(Value::as_i64) == Some(upstream_id) {
        message.insert("id".into(), client_id.clone());
        return Some(to_bytes(&message));
    }
    None
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
