//! The list cache: merged lists served from each upstream's cached pages, honouring the
//! 2026-07-28 caching hints (`ttlMs`, `cacheScope`, R64), dropped on `list_changed` and on
//! failure, with pagination intact.
#![cfg(feature = "aggregator")]

#[path = "common/aggregate.rs"]
mod aggregate;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aggregate::modern_request;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use mcp_edge::Principal;
use mcp_edge::aggregate::{Aggregator, Upstream};
use mcp_edge::protocol::ListKind;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

type Up = BoxCloneSyncService<Request<Full<Bytes>>, Response<Full<Bytes>>, std::io::Error>;

/// A hand-written upstream whose `tools/list` answers carry the hints it is given.
#[derive(Clone, Default)]
struct Hinting {
    name: &'static str,
    /// `ttlMs` and `cacheScope` put on list results (none when `None`).
    hints: Option<(i64, &'static str)>,
    /// Declares `tools.listChanged`.
    announces: bool,
    /// Answers tools/list as an SSE stream carrying `notifications/tools/list_changed` first.
    notes_change: Arc<AtomicBool>,
    /// Fails every request (connection refused).
    down: Arc<AtomicBool>,
    /// Bumped into every tool's description, and counts `tools/list` requests.
    lists: Arc<AtomicUsize>,
}

impl Hinting {
    fn new(name: &'static str, hints: Option<(i64, &'static str)>) -> Self {
        Hinting {
            name,
            hints,
            ..Hinting::default()
        }
    }

    fn lists(&self) -> usize {
        self.lists.load(Ordering::SeqCst)
    }

    fn service(&self) -> Up {
        let this = self.clone();
        BoxCloneSyncService::new(tower::service_fn(move |request: Request<Full<Bytes>>| {
            let this = this.clone();
            async move {
                if this.down.load(Ordering::SeqCst) {
                    return Err(std::io::Error::other("connection refused"));
                }
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let message: Value = serde_json::from_slice(&body).unwrap();
                let (answer, sse) = this.answer(&message);
                let mut response = Response::new(Full::new(Bytes::from(answer)));
                let content_type = if sse {
                    "text/event-stream"
                } else {
                    "application/json"
                };
                response
                    .headers_mut()
                    .insert("content-type", content_type.parse().unwrap());
                Ok::<_, std::io::Error>(response)
            }
        }))
    }

    fn answer(&self, message: &Value) -> (String, bool) {
        let params = &message["params"];
        let mut result = match message["method"].as_str().unwrap() {
            "server/discover" => json!({
                "supportedVersions": ["2026-07-28"],
                "capabilities": {"tools": {"listChanged": self.announces}},
            }),
            "tools/list" => {
                let n = self.lists.fetch_add(1, Ordering::SeqCst);
                // Two pages of two tools: cursor "2" continues.
                let start = if params["cursor"] == "2" { 2 } else { 0 };
                let tools: Vec<Value> = (start..start + 2)
                    .map(|i| json!({"name": format!("t{i}"), "description": format!("fetch {n}"), "inputSchema": {"type": "object"}}))
                    .collect();
                let mut result = json!({"tools": tools});
                if start == 0 {
                    result["nextCursor"] = json!("2");
                }
                if let Some((ttl, scope)) = self.hints {
                    result["ttlMs"] = json!(ttl);
                    result["cacheScope"] = json!(scope);
                }
                result
            }
            "tools/call" => json!({"content": [{"type": "text", "text": self.name}]}),
            _ => json!({}),
        };
        if let Some(object) = result.as_object_mut() {
            object.insert("resultType".into(), json!("complete"));
        }
        let answer = json!({"jsonrpc": "2.0", "id": message["id"], "result": result}).to_string();
        if message["method"] == "tools/list" && self.notes_change.swap(false, Ordering::SeqCst) {
            let note = r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#;
            return (format!("data: {note}\n\ndata: {answer}\n\n"), true);
        }
        (answer, false)
    }
}

/// A 2026-07-28 `tools/list` (or another method), as `principal` when given.
async fn ask(
    aggregator: &Aggregator<Up>,
    method: &str,
    params: Value,
    principal: Option<&str>,
) -> Value {
    let mut request = modern_request(method, params, json!(5));
    if let Some(subject) = principal {
        request
            .extensions_mut()
            .insert(Principal::new(subject).with_issuer("https://as.example"));
    }
    let response = aggregator.clone().oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

async fn list(aggregator: &Aggregator<Up>, principal: Option<&str>) -> Value {
    ask(aggregator, "tools/list", json!({}), principal).await
}

fn names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn aggregator(upstreams: &[&Hinting]) -> Aggregator<Up> {
    upstreams
        .iter()
        .fold(Aggregator::builder(), |b, u| {
            b.upstream(Upstream::new(u.name, u.service()))
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_public_page_is_served_from_cache_to_everyone_with_pagination_intact() {
    let one = Hinting::new("one", Some((60_000, "public")));
    let two = Hinting::new("two", Some((60_000, "public")));
    let aggregator = aggregator(&[&one, &two]);
    let first = list(&aggregator, Some("alice")).await;
    assert_eq!(names(&first), ["one__t0", "one__t1", "two__t0", "two__t1"]);
    assert_eq!(first["result"]["cacheScope"], "public");
    let ttl = first["result"]["ttlMs"].as_u64().unwrap();
    assert!(ttl > 50_000 && ttl <= 60_000, "{ttl}");
    let cursor = first["result"]["nextCursor"].as_str().unwrap().to_owned();
    assert_eq!((one.lists(), two.lists()), (1, 1));

    // The remaining freshness (ttlMs) counts down between answers; the rest is the same.
    let without_ttl = |mut answer: Value| {
        answer["result"]["ttlMs"].take();
        answer
    };
    for who in [Some("alice"), Some("bob"), None] {
        assert_eq!(
            without_ttl(list(&aggregator, who).await),
            without_ttl(first.clone()),
            "from cache"
        );
        let second = ask(&aggregator, "tools/list", json!({"cursor": cursor}), who).await;
        assert_eq!(names(&second), ["one__t2", "one__t3", "two__t2", "two__t3"]);
        assert!(second["result"].get("nextCursor").is_none());
    }
    // Each upstream was asked once per page.
    assert_eq!((one.lists(), two.lists()), (2, 2));
}

#[tokio::test]
async fn a_private_page_is_never_shared_across_principals() {
    let one = Hinting::new("one", Some((60_000, "private")));
    let aggregator = aggregator(&[&one]);
    let alice = list(&aggregator, Some("alice")).await;
    assert_eq!(alice["result"]["cacheScope"], "private");
    assert_eq!(list(&aggregator, Some("alice")).await, alice);
    assert_eq!(one.lists(), 1);
    let bob = list(&aggregator, Some("bob")).await;
    assert_eq!(
        one.lists(),
        2,
        "bob's list was asked for, not alice's served"
    );
    assert_ne!(
        bob["result"]["tools"][0]["description"],
        alice["result"]["tools"][0]["description"]
    );
    list(&aggregator, None).await;
    assert_eq!(one.lists(), 3, "nor an anonymous client's");
}

#[tokio::test]
async fn no_hint_means_no_cache_unless_the_upstream_announces_changes_or_a_max_age_is_set() {
    let quiet = Hinting::new("quiet", None);
    let mut announcing = Hinting::new("loud", None);
    announcing.announces = true;
    let aggregator = aggregator(&[&quiet, &announcing]);
    ask(&aggregator, "server/discover", json!({}), None).await;
    let first = list(&aggregator, None).await;
    assert_eq!(first["result"]["ttlMs"], 0, "one page is not kept");
    list(&aggregator, None).await;
    assert_eq!((quiet.lists(), announcing.lists()), (2, 1));

    let set = Hinting::new("set", None);
    let aggregator = aggregator_with_max_age(&set);
    list(&aggregator, None).await;
    list(&aggregator, None).await;
    assert_eq!(set.lists(), 1);
    // R64: a retried request is neither served from cache nor kept.
    ask(
        &aggregator,
        "tools/list",
        json!({"requestState": "x"}),
        None,
    )
    .await;
    assert_eq!(set.lists(), 2);

    let zero = Hinting::new("zero", Some((0, "public")));
    let aggregator = aggregator_with_max_age(&zero);
    list(&aggregator, None).await;
    list(&aggregator, None).await;
    assert_eq!(zero.lists(), 2, "ttlMs 0 wins over the configured max age");
}

fn aggregator_with_max_age(upstream: &Hinting) -> Aggregator<Up> {
    Aggregator::builder()
        .upstream(Upstream::new(upstream.name, upstream.service()))
        .list_max_age(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn list_changed_and_invalidate_drop_the_page() {
    let one = Hinting::new("one", Some((60_000, "public")));
    let two = Hinting::new("two", Some((60_000, "public")));
    let aggregator = aggregator(&[&one, &two]);
    list(&aggregator, None).await;
    assert!(aggregator.invalidate("one", ListKind::Tools));
    assert!(!aggregator.invalidate("nobody", ListKind::Tools));
    list(&aggregator, None).await;
    assert_eq!((one.lists(), two.lists()), (2, 1));

    // A list_changed notification seen in an upstream's stream drops that upstream's page.
    aggregator.invalidate("two", ListKind::Tools);
    two.notes_change.store(true, Ordering::SeqCst);
    let listed = list(&aggregator, None).await;
    assert_eq!(names(&listed).len(), 4);
    assert_eq!(two.lists(), 2);
    list(&aggregator, None).await;
    assert_eq!(
        two.lists(),
        3,
        "the page fetched with the notification was not kept"
    );
    list(&aggregator, None).await;
    assert_eq!((one.lists(), two.lists()), (2, 3));
}

#[tokio::test]
async fn a_failed_upstream_leaves_the_cached_list_and_comes_back() {
    let one = Hinting::new("one", Some((60_000, "public")));
    let two = Hinting::new("two", Some((60_000, "public")));
    let aggregator = aggregator(&[&one, &two]);
    assert_eq!(names(&list(&aggregator, None).await).len(), 4);
    two.down.store(true, Ordering::SeqCst);
    // A failed call drops the upstream's cached pages: the next list asks it, and leaves it out.
    let call = ask(&aggregator, "tools/call", json!({"name": "two__t0"}), None).await;
    assert_eq!(call["error"]["data"]["upstream"], "two");
    let listed = list(&aggregator, None).await;
    assert_eq!(names(&listed), ["one__t0", "one__t1"]);
    assert!(listed["result"]["nextCursor"].as_str().is_some());
    assert_eq!(
        one.lists(),
        1,
        "the healthy upstream still comes from cache"
    );
    two.down.store(false, Ordering::SeqCst);
    assert_eq!(names(&list(&aggregator, None).await).len(), 4);
}
