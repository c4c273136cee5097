//! Fixtures for the aggregator tests: two different real rmcp upstreams over TCP (the demo
//! tools as `alpha`, [`BetaTools`] as `beta`, both with a tool named `echo`), each behind a
//! recorder of what reached it, and the aggregator served over TCP in front of them.
//!
//! Include with `#[path = "common/aggregate.rs"] mod aggregate;` after `mod common;`.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use mcp_edge::aggregate::{Aggregator, AggregatorBuilder, Upstream};
use mcp_edge::proxy::HttpUpstream;
use rmcp::{
    ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{Implementation, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tower::{Service, ServiceExt};

use crate::common::{TestServer, rmcp_config, rmcp_service, serve_listener, serve_service};

/// What the aggregator's upstreams are reached through.
pub type Up = HttpUpstream<Full<Bytes>>;

/// Arguments of beta's `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BetaEchoArgs {
    /// The text to send back.
    pub text: String,
}

/// Arguments of `add`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddArgs {
    pub a: i64,
    pub b: i64,
}

/// The second upstream: `echo` (answers `beta: {text}`) and `add`.
#[derive(Debug, Clone)]
pub struct BetaTools {
    tool_router: ToolRouter<Self>,
}

impl Default for BetaTools {
    fn default() -> Self {
        BetaTools {
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl BetaTools {
    /// Echo, marked as beta's.
    #[tool(description = "Returns `beta: {text}`.")]
    async fn echo(&self, Parameters(args): Parameters<BetaEchoArgs>) -> String {
        format!("beta: {}", args.text)
    }

    /// Adds two integers.
    #[tool(description = "Returns a + b.")]
    async fn add(&self, Parameters(args): Parameters<AddArgs>) -> String {
        (args.a + args.b).to_string()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for BetaTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("beta", "1.0.0"))
            .with_instructions("Beta tools: echo, add.")
    }
}

/// A hand-written upstream (both eras) with `tools` tools served two per page, one prompt,
/// one resource and one template, all named after the upstream.
#[derive(Clone)]
pub struct Fake {
    name: &'static str,
    tools: usize,
    delay: std::time::Duration,
    /// Goes into tool `t0`'s description: bump it to change that definition.
    revision: Arc<std::sync::atomic::AtomicU32>,
}

impl Fake {
    /// An upstream named `name` with `tools` tools.
    pub fn new(name: &'static str, tools: usize) -> Fake {
        Fake::slow(name, tools, std::time::Duration::ZERO)
    }

    /// The same, answering every request `delay` late.
    pub fn slow(name: &'static str, tools: usize, delay: std::time::Duration) -> Fake {
        Fake {
            name,
            tools,
            delay,
            revision: Arc::default(),
        }
    }

    /// Changes tool `t0`'s definition (its description), as a "rug pull" would.
    pub fn change_t0(&self) {
        self.revision
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn answer(&self, message: &Value) -> Option<Value> {
        let name = self.name;
        let params = &message["params"];
        let result = match message["method"].as_str()? {
            "initialize" => json!({
                "protocolVersion": params["protocolVersion"],
                "capabilities": {"tools": {}, "prompts": {}, "resources": {}},
                "serverInfo": {"name": name, "version": "1"},
            }),
            "server/discover" => json!({
                "supportedVersions": ["2025-11-25", "2026-07-28"],
                "capabilities": {"tools": {}, "prompts": {}, "resources": {}},
            }),
            "tools/list" => {
                let start: usize = params["cursor"].as_str().map_or(0, |c| c.parse().unwrap());
                let end = (start + 2).min(self.tools);
                let tools: Vec<Value> = (start..end)
                    .map(|i| {
                        let revision = self.revision.load(std::sync::atomic::Ordering::Relaxed);
                        let description = if i == 0 { format!("rev {revision}") } else { "plain".into() };
                        json!({"name": format!("t{i}"), "description": description, "inputSchema": {"type": "object"}})
                    })
                    .collect();
                let mut result = json!({"tools": tools});
                if end < self.tools {
                    result["nextCursor"] = json!(end.to_string());
                }
                result
            }
            "tools/call" => {
                json!({"content": [{"type": "text", "text": format!("{name}:{}", params["name"].as_str()?)}]})
            }
            "prompts/list" => json!({"prompts": [{"name": "greet"}]}),
            "prompts/get" => json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": format!("{name}:{}", params["name"].as_str()?)}}]
            }),
            "resources/list" => {
                json!({"resources": [{"uri": format!("file:///{name}/a.txt"), "name": "a"}]})
            }
            "resources/templates/list" => {
                json!({"resourceTemplates": [{"uriTemplate": format!("file:///{name}/{{path}}"), "name": "any"}]})
            }
            "resources/read" => {
                json!({"contents": [{"uri": params["uri"], "text": format!("read by {name}")}]})
            }
            _ => return None,
        };
        Some(json!({"jsonrpc": "2.0", "id": message["id"], "result": result}))
    }
}

impl Service<Request<Full<Bytes>>> for Fake {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let fake = self.clone();
        Box::pin(async move {
            tokio::time::sleep(fake.delay).await;
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let message: Value = serde_json::from_slice(&body).unwrap_or_default();
            let mut response = match fake.answer(&message) {
                Some(answer) => Response::new(Full::new(Bytes::from(answer.to_string()))),
                None => {
                    let mut r = Response::new(Full::default());
                    *r.status_mut() = http::StatusCode::ACCEPTED;
                    r
                }
            };
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            if message["method"] == "initialize" {
                let session = format!("s-{}", fake.name);
                response
                    .headers_mut()
                    .insert("mcp-session-id", session.parse().unwrap());
            }
            Ok(response)
        })
    }
}

/// One request as an upstream saw it.
#[derive(Debug, Clone)]
pub struct UpstreamSeen {
    pub method: http::Method,
    /// The JSON-RPC method of the body, if any.
    pub rpc: Option<String>,
    pub session: Option<String>,
    pub authorization: Option<String>,
    pub headers: http::HeaderMap,
    /// The JSON body, if it was JSON.
    pub body: Option<Value>,
}

/// What reached one upstream.
#[derive(Debug, Clone, Default)]
pub struct UpstreamLog(Arc<Mutex<Vec<UpstreamSeen>>>);

impl UpstreamLog {
    pub fn all(&self) -> Vec<UpstreamSeen> {
        self.0.lock().unwrap().clone()
    }
    /// How many requests with JSON-RPC method `rpc` arrived.
    pub fn count(&self, rpc: &str) -> usize {
        self.all()
            .iter()
            .filter(|s| s.rpc.as_deref() == Some(rpc))
            .count()
    }
    /// How many DELETEs arrived.
    pub fn deletes(&self) -> usize {
        self.all()
            .iter()
            .filter(|s| s.method == http::Method::DELETE)
            .count()
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// Records each request (its body read whole) before the service sees it.
#[derive(Clone)]
pub struct Recorded<S> {
    inner: S,
    log: UpstreamLog,
}

impl<S, RB> Service<Request<Incoming>> for Recorded<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let inner = self.inner.clone();
        let log = self.log.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let json = serde_json::from_slice::<Value>(&bytes).ok();
            let rpc = json
                .as_ref()
                .and_then(|v| v["method"].as_str().map(str::to_owned));
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            log.0.lock().unwrap().push(UpstreamSeen {
                method: parts.method.clone(),
                rpc,
                session: header("mcp-session-id"),
                authorization: header("authorization"),
                headers: parts.headers.clone(),
                body: json,
            });
            inner
                .oneshot(Request::from_parts(parts, Full::new(bytes)))
                .await
        })
    }
}

/// A real rmcp upstream on TCP, recorded.
pub struct RunningUpstream {
    pub server: Option<TestServer>,
    pub addr: SocketAddr,
    pub url: String,
    pub log: UpstreamLog,
    beta: bool,
}

impl RunningUpstream {
    /// The demo tools (`echo`, `slow_count`, `whoami`).
    pub fn alpha() -> RunningUpstream {
        Self::start(
            false,
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            UpstreamLog::default(),
        )
    }

    /// [`BetaTools`] (`echo`, `add`).
    pub fn beta() -> RunningUpstream {
        Self::start(
            true,
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            UpstreamLog::default(),
        )
    }

    fn start(beta: bool, listener: std::net::TcpListener, log: UpstreamLog) -> RunningUpstream {
        let server = if beta {
            let rmcp: rmcp::transport::streamable_http_server::StreamableHttpService<
                BetaTools,
                rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
            > = rmcp::transport::streamable_http_server::StreamableHttpService::new(
                || Ok(BetaTools::default()),
                Default::default(),
                rmcp_config(),
            );
            serve_listener(
                listener,
                Recorded {
                    inner: rmcp,
                    log: log.clone(),
                },
            )
        } else {
            serve_listener(
                listener,
                Recorded {
                    inner: rmcp_service(),
                    log: log.clone(),
                },
            )
        };
        RunningUpstream {
            addr: server.addr,
            url: server.url.clone(),
            server: Some(server),
            log,
            beta,
        }
    }

    /// Stops it: the listener and every connection close.
    pub fn kill(&mut self) {
        self.server = None;
    }

    /// Starts it again on the same port (its sessions are gone, as after a real restart).
    pub fn revive(&mut self) {
        let listener = std::net::TcpListener::bind(self.addr).expect("rebind the same port");
        *self = Self::start(self.beta, listener, self.log.clone());
    }

    /// An `HttpUpstream` to it.
    pub fn upstream(&self) -> Up {
        HttpUpstream::new(&self.url).expect("upstream url")
    }
}

/// `alpha` and `beta` upstreams, and an aggregator over them served on TCP.
pub struct Aggregated {
    pub alpha: RunningUpstream,
    pub beta: RunningUpstream,
    pub aggregator: Aggregator<Up>,
    pub gateway: TestServer,
}

impl Aggregated {
    /// Both upstreams, aggregated with the default configuration.
    pub fn start() -> Aggregated {
        Self::start_with(|alpha, beta| Aggregator::builder().upstream(alpha).upstream(beta))
    }

    /// Both upstreams, aggregated by the builder `configure` makes of them (the two
    /// `Upstream`s, named `alpha` and `beta`, to configure further and add).
    pub fn start_with(
        configure: impl FnOnce(Upstream<Up>, Upstream<Up>) -> AggregatorBuilder<Up>,
    ) -> Aggregated {
        let alpha = RunningUpstream::alpha();
        let beta = RunningUpstream::beta();
        let builder = configure(
            Upstream::new("alpha", alpha.upstream()),
            Upstream::new("beta", beta.upstream()),
        );
        let aggregator = builder.build().expect("valid aggregator");
        let gateway = serve_service(aggregator.clone());
        Aggregated {
            alpha,
            beta,
            aggregator,
            gateway,
        }
    }
}

/// A 2026-07-28 POST of `method` with `params` (the `_meta` the era needs added), with the
/// `Mcp-Method` / `Mcp-Name` headers (R38).
pub fn modern_request(method: &str, params: Value, id: Value) -> Request<Full<Bytes>> {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let mut request = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        request = request.header("mcp-name", name);
    }
    request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A legacy and a 2026-07-28 rmcp client, both sending `authorization`, each calling every
/// tool of `tools` (with `{"text": "x"}`) through the aggregator at `url`.
pub async fn call_in_both_eras(url: &str, authorization: &str, tools: &[&'static str]) {
    for client in [
        crate::common::legacy_client_with_auth(url, authorization).await,
        crate::common::modern_client_with_auth(url, authorization).await,
    ] {
        for tool in tools {
            crate::common::call_tool(&client, tool, json!({"text": "x"}))
                .await
                .unwrap();
        }
        client.cancel().await.unwrap();
    }
}
