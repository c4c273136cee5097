//! Fixtures for the affinity tests: real rmcp replicas that log what reaches them, gateways
//! (inspect → test principal → `AffinityRouter` → `HttpUpstream`) that log what they answer,
//! and a front that alternates requests between gateways.
//!
//! Include with `#[path = "common/affinity.rs"] mod affinity;` after `mod common;`.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Method, Request, Response};
use hyper::body::Incoming;
use mcp_edge::affinity::{AffinityRouter, ReplicaSet};
use mcp_edge::inspect::Inspect;
use mcp_edge::protocol::McpRequest;
use mcp_edge::proxy::HttpUpstream;
use mcp_edge::{EdgeBody, Principal, Rejection, Replica};
use tower::{Service, ServiceExt};

use crate::common::{TestServer, rmcp_router, serve_service};

/// What a gateway passes to its replicas.
pub type Upstream = HttpUpstream<EdgeBody<Incoming>>;
/// A gateway's router.
pub type Router = AffinityRouter<Upstream>;

/// One request as a gateway or a replica saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Who logged it: the replica's name, or the gateway's.
    pub at: String,
    pub method: Method,
    /// The JSON-RPC method, when the inspect layer ran before the logger.
    pub rpc: Option<String>,
    pub session_in: Option<String>,
    pub session_out: Option<String>,
    pub status: u16,
    /// The replica the gateway routed to (gateway logs only).
    pub replica: Option<String>,
    /// Why the edge refused, if it did.
    pub rejected: Option<String>,
}

/// A shared request log.
#[derive(Debug, Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
    fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push(seen);
    }
}

/// Logs every request and response head that passes through.
#[derive(Clone)]
pub struct Logged<S> {
    inner: S,
    at: String,
    log: Log,
}

impl<S> Logged<S> {
    pub fn new(inner: S, at: impl Into<String>, log: Log) -> Self {
        Logged {
            inner,
            at: at.into(),
            log,
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<Request<B>> for Logged<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let method = request.method().clone();
        let session_in = header(request.headers(), "mcp-session-id");
        let rpc = request
            .extensions()
            .get::<Arc<McpRequest>>()
            .and_then(|m| m.method().map(str::to_owned));
        let inner = self.inner.clone();
        // Replicas log under their URL, which the Host header (set from the upstream URL)
        // gives.
        let at = match (self.at.as_str(), header(request.headers(), "host")) {
            ("replica", Some(host)) => format!("http://{host}/mcp"),
            _ => self.at.clone(),
        };
        let log = self.log.clone();
        Box::pin(async move {
            let response = inner.oneshot(request).await?;
            let rpc = rpc.or_else(|| {
                response
                    .extensions()
                    .get::<Arc<McpRequest>>()
                    .and_then(|m| m.method().map(str::to_owned))
            });
            log.push(Seen {
                at,
                method,
                rpc,
                session_in,
                session_out: header(response.headers(), "mcp-session-id"),
                status: response.status().as_u16(),
                replica: response
                    .extensions()
                    .get::<Replica>()
                    .map(|r| r.id().to_owned()),
                rejected: response
                    .extensions()
                    .get::<Rejection>()
                    .map(|r| format!("{}:{}", r.rejected_by(), r.reason())),
            });
            Ok(response)
        })
    }
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Real rmcp replicas, each keeping its sessions in its own memory, logging to one log.
pub struct Replicas {
    pub servers: Vec<TestServer>,
    pub log: Log,
}

impl Replicas {
    pub fn start(n: usize) -> Replicas {
        let log = Log::default();
        let servers = (0..n)
            .map(|_| serve_service(Logged::new(rmcp_router(), "replica", log.clone())))
            .collect::<Vec<_>>();
        Replicas { servers, log }
    }

    /// Starts one more replica and returns its index.
    pub fn start_one(&mut self) -> usize {
        self.servers.push(serve_service(Logged::new(
            rmcp_router(),
            "replica",
            self.log.clone(),
        )));
        self.servers.len() - 1
    }

    /// The replica id used in every gateway: the replica's URL.
    pub fn id(&self, index: usize) -> String {
        self.servers[index].url.clone()
    }

    /// A replica set with all of them.
    pub fn set(&self) -> ReplicaSet<Upstream> {
        let set = ReplicaSet::new();
        for server in &self.servers {
            set.add(Replica::new(server.url.clone()), upstream(&server.url));
        }
        set
    }

    /// Which replica holds the server-side session `id`, from the replica log.
    pub fn holder_of(&self, server_session: &str) -> Option<String> {
        self.log
            .all()
            .into_iter()
            .find(|s| s.session_out.as_deref() == Some(server_session))
            .map(|s| s.at)
    }
}

pub fn upstream(url: &str) -> Upstream {
    HttpUpstream::new(url).expect("upstream url")
}

/// Serves `router` as a gateway: logged → inspect → principal from `x-test-user` → router.
/// Returns the server and the gateway's log.
pub fn serve_gateway(router: Router, name: &str) -> (TestServer, Log) {
    let log = Log::default();
    let with_principal = tower::util::MapRequest::new(router, principal_from_header);
    let service = Logged::new(Inspect::new(with_principal), name, log.clone());
    (serve_service(service), log)
}

/// A stand-in for the auth layer: `x-test-user: NAME` becomes `Principal(NAME)`.
fn principal_from_header<B>(mut request: Request<B>) -> Request<B> {
    if let Some(user) = request
        .headers()
        .get("x-test-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    {
        request
            .extensions_mut()
            .insert(Principal::new(user).with_issuer("https://as.test"));
    }
    request
}

/// A front that sends each request to the next gateway in turn (round robin), so one
/// client's requests alternate between gateway instances.
#[derive(Clone)]
pub struct Alternate {
    gateways: Arc<Vec<HttpUpstream<Incoming>>>,
    next: Arc<AtomicUsize>,
}

impl Alternate {
    pub fn new(urls: &[String]) -> Alternate {
        Alternate {
            gateways: Arc::new(
                urls.iter()
                    .map(|u| HttpUpstream::new(u).expect("gateway url"))
                    .collect(),
            ),
            next: Arc::default(),
        }
    }
}

impl Service<Request<Incoming>> for Alternate {
    type Response = Response<EdgeBody<Incoming>>;
    type Error = std::convert::Infallible;
    type Future = mcp_edge::proxy::ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.gateways.len();
        self.gateways[i].clone().call(request)
    }
}
