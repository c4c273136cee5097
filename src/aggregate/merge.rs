//! Merging what several upstreams answered into one answer: capabilities, instructions, and
//! list pages (with the opaque cursor that continues every upstream's list at once).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::cache::{Merged, Page};
use super::message::Object;
use super::names::{Names, ToolRules};
use crate::protocol::ListKind;

/// The server capabilities the aggregator passes on: those it can serve through its routing.
const MERGED_CAPABILITIES: [&str; 5] = ["tools", "prompts", "resources", "completions", "logging"];

/// The union of the upstreams' capabilities (see [`MERGED_CAPABILITIES`]). `listChanged` is
/// promised for a list when any upstream promises it, since upstreams' `list_changed`
/// notifications reach listening clients (GET and listen streams); `subscribe` is not, since
/// resource subscriptions are not relayed.
pub(crate) fn capabilities<'a>(upstreams: impl IntoIterator<Item = &'a Object>) -> Object {
    let mut merged = Object::new();
    for capabilities in upstreams {
        for name in MERGED_CAPABILITIES {
            let Some(declared) = capabilities.get(name) else {
                continue;
            };
            let entry = merged
                .entry(name)
                .or_insert_with(|| Value::Object(Map::new()));
            if declared.get("listChanged") == Some(&Value::Bool(true))
                && let Some(entry) = entry.as_object_mut()
            {
                entry.insert("listChanged".into(), Value::Bool(true));
            }
        }
    }
    merged
}

/// The aggregator's own instructions, then each upstream's under its name.
pub(crate) fn instructions<'a>(
    own: Option<&str>,
    upstreams: impl IntoIterator<Item = (&'a str, &'a str)>,
    names: &Names,
) -> Option<String> {
    let mut out = own.map(str::to_owned).unwrap_or_default();
    for (name, text) in upstreams {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&format!(
            "Tools, prompts and resources of `{name}` are named `{name}{}…` (URIs `{name}+…`):\n{text}",
            names.separator()
        ));
    }
    (!out.is_empty()).then_some(out)
}

/// Gives a list entry from upstream `namespace` its namespaced name (or URI). Returns false
/// for an entry without the field that names it (dropped: it could not be routed back).
pub(crate) fn namespace_entry(
    kind: ListKind,
    names: &Names,
    namespace: &str,
    entry: &mut Value,
) -> bool {
    let key = kind.entry_key();
    let Some(own) = entry.get(key).and_then(Value::as_str) else {
        return false;
    };
    let renamed = match kind {
        ListKind::Resources | ListKind::ResourceTemplates => names.join_uri(namespace, own),
        _ => names.join(namespace, own),
    };
    entry[key] = Value::String(renamed);
    true
}

/// One upstream's list entries as the merged list shows them, written as JSON separated by
/// commas: tools filtered by the upstream's rules and renamed (those `hidden` by the pin
/// policy left out), then every entry namespaced (entries without a name are dropped).
pub(crate) fn write_entries(
    kind: ListKind,
    names: &Names,
    upstream: &Arc<str>,
    rules: &ToolRules,
    hidden: &[Box<str>],
    items: Vec<Value>,
) -> Bytes {
    let mut out = Vec::with_capacity(items.len() * 128);
    for mut item in items {
        if kind == ListKind::Tools {
            let own = item.get("name").and_then(Value::as_str);
            if let Some(own) = own
                && hidden.iter().any(|h| **h == *own)
            {
                continue;
            }
            match own.and_then(|own| rules.shown(own)) {
                Some(shown) if Some(shown) != own => {
                    item["name"] = Value::String(shown.to_owned());
                }
                Some(_) => {}
                None => continue,
            }
        }
        if namespace_entry(kind, names, upstream, &mut item) {
            if !out.is_empty() {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, &item).expect("JSON values always serialize");
        }
    }
    Bytes::from(out)
}

/// The 2026-07-28 caching hints of a merged list: how long every page stays fresh, and whether
/// every page was public.
pub(crate) struct Hints {
    pub(crate) ttl: Duration,
    pub(crate) public: bool,
}

/// What follows the id in a merged list answer, up to its freshness hints, written from the
/// pages' entries without parsing them again: `,"result":{"<field>":[…]`, then
/// `,"nextCursor":…` when there is one.
pub(crate) fn merged_body(kind: ListKind, pages: &[Arc<Page>], cursor: Option<&str>) -> Bytes {
    let entries: usize = pages.iter().map(|p| p.entries.len() + 1).sum();
    let mut out = Vec::with_capacity(entries + 64 + cursor.map_or(0, str::len));
    out.extend_from_slice(br#","result":{""#);
    out.extend_from_slice(kind.result_field().as_bytes());
    out.extend_from_slice(br#"":["#);
    for (i, page) in pages.iter().filter(|p| !p.entries.is_empty()).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&page.entries);
    }
    out.push(b']');
    if let Some(cursor) = cursor {
        out.extend_from_slice(br#","nextCursor":"#);
        put_json(&mut out, cursor);
    }
    Bytes::from(out)
}

/// The merged list answer: `{"jsonrpc":"2.0","id":…` and `body` (see [`merged_body`]), then
/// the 2026-07-28 hints when given, and `}}`.
pub(crate) fn answer(id: &Value, body: &[u8], hints: Option<Hints>) -> Bytes {
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    put_json(&mut out, id);
    out.extend_from_slice(body);
    if let Some(hints) = hints {
        put_hints(&mut out, &hints);
    }
    out.extend_from_slice(b"}}");
    Bytes::from(out)
}

/// A merged answer from the merged cache, with its hints as of `now` (2026-07-28 only), in
/// three parts: what goes before the kept bytes, the kept bytes themselves (shared, not
/// copied), and what follows them.
pub(crate) fn merged_answer(id: &Value, merged: &Merged, now: Option<Instant>) -> [Bytes; 3] {
    let mut head = Vec::with_capacity(48);
    head.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    put_json(&mut head, id);
    let tail = match now {
        None => Bytes::from_static(b"}}"),
        Some(now) => {
            let hints = Hints {
                ttl: merged.expires.saturating_duration_since(now),
                public: merged.public,
            };
            let mut tail = Vec::with_capacity(80);
            put_hints(&mut tail, &hints);
            tail.extend_from_slice(b"}}");
            Bytes::from(tail)
        }
    };
    [Bytes::from(head), merged.body.clone(), tail]
}

/// `,"resultType":"complete","ttlMs":…,"cacheScope":…`.
fn put_hints(out: &mut Vec<u8>, hints: &Hints) {
    out.extend_from_slice(br#","resultType":"complete","ttlMs":"#);
    put_json(
        out,
        &u64::try_from(hints.ttl.as_millis()).unwrap_or(u64::MAX),
    );
    out.extend_from_slice(if hints.public {
        br#","cacheScope":"public""#
    } else {
        br#","cacheScope":"private""#
    });
}

fn put_json(out: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    serde_json::to_writer(out, value).expect("JSON values always serialize");
}

/// Where each upstream's list continues: `(upstream name, its cursor)`.
pub(crate) type Continuations = Vec<(String, String)>;

/// The opaque cursor the client gets: base64url of the JSON list of continuations.
pub(crate) fn encode_cursor(next: &Continuations) -> Option<String> {
    if next.is_empty() {
        return None;
    }
    let json = serde_json::to_vec(next).expect("strings always serialize");
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

/// The continuations a cursor stands for; `None` for a cursor the aggregator did not make.
pub(crate) fn decode_cursor(cursor: &str) -> Option<Continuations> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let next: Continuations = serde_json::from_slice(&json).ok()?;
    (!next.is_empty()).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::borrow::Cow;

    #[test]
    fn capabilities_are_the_union_with_list_changed_but_no_subscribe() {
        let a = json!({"tools": {"listChanged": true}, "logging": {}, "resources": {"subscribe": true}});
        let b = json!({"tools": {}, "prompts": {"listChanged": false}, "experimental": {"x": {}}});
        let merged = capabilities([a.as_object().unwrap(), b.as_object().unwrap()]);
        assert_eq!(
            Value::Object(merged),
            json!({"tools": {"listChanged": true}, "logging": {}, "prompts": {}, "resources": {}})
        );
    }

    #[test]
    fn entries_get_their_namespace_by_kind() {
        let names = Names::new(Cow::Borrowed("__"));
        let mut tool = json!({"name": "echo", "description": "d"});
        assert!(namespace_entry(ListKind::Tools, &names, "a", &mut tool));
        assert_eq!(tool["name"], "a__echo");
        let mut template = json!({"uriTemplate": "file:///{path}"});
        assert!(namespace_entry(
            ListKind::ResourceTemplates,
            &names,
            "b",
            &mut template
        ));
        assert_eq!(template["uriTemplate"], "b+file:///{path}");
        assert!(!namespace_entry(
            ListKind::Prompts,
            &names,
            "a",
            &mut json!({})
        ));
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let next = vec![
            ("alpha".to_owned(), "2".to_owned()),
            ("beta".to_owned(), "x".to_owned()),
        ];
        let cursor = encode_cursor(&next).unwrap();
        assert_eq!(decode_cursor(&cursor), Some(next));
        assert_eq!(encode_cursor(&Vec::new()), None);
        assert_eq!(decode_cursor("not-ours"), None);
        assert_eq!(decode_cursor(""), None);
    }
}
