use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::{AuditBody, CountingBody};
use super::event::ClientAddr;
use super::future::ResponseFuture;
use super::layer::Config;
use super::record::{BeforeHead, KeptId, Record, RequestBytes, unix_nanos};
use super::redact::Secrets;
use super::sink::AuditSink;
use super::telemetry::Spans;
use crate::context::{McpRequestSlot, RequestOrigin};
use crate::protocol::header::MCP_SESSION_ID;

/// `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-sent request id kept; longer ones are replaced.
const MAX_REQUEST_ID: usize = 128;

/// The service built by [`AuditLayer`](super::AuditLayer).
pub struct Audit<S, K> {
    pub(super) inner: S,
    pub(super) sink: Arc<K>,
    pub(super) config: Arc<Config>,
}

impl<S: Clone, K> Clone for Audit<S, K> {
    fn clone(&self) -> Self {
        Audit {
            inner: self.inner.clone(),
            sink: Arc::clone(&self.sink),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: std::fmt::Debug, K> std::fmt::Debug for Audit<S, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S, K, ReqBody, ResBody> Service<Request<ReqBody>> for Audit<S, K>
where
    S: Service<Request<CountingBody<ReqBody>>, Response = Response<ResBody>>,
    K: AuditSink,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<AuditBody<ResBody, K>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, K>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let started_at = unix_nanos(SystemTime::now());
        let (mut parts, body) = request.into_parts();
        let secrets = Secrets::from_headers(&parts.headers);
        let request_id = match parts
            .headers
            .get(X_REQUEST_ID)
            .filter(|v| usable_id(v) && !v.to_str().is_ok_and(|v| secrets.taints(v)))
        {
            Some(id) => id.clone(),
            None => {
                let id = generate_request_id();
                parts.headers.insert(X_REQUEST_ID, id.clone());
                id
            }
        };
        let peer = self.config.peer_addr.peer_addr(&parts.extensions);
        // A guard outside audit has already said who the client is; one inside says it in
        // the response (see `Record::on_head`).
        let client = match parts.extensions.get::<RequestOrigin>() {
            Some(origin) => ClientAddr::of_origin(origin),
            None => ClientAddr::of_peer(peer),
        };
        // Parsed only if no inner layer names the session (see `Record::on_head`); a clone of
        // a header hyper parsed is a reference count, not a copy.
        let session_header = parts.headers.get(MCP_SESSION_ID).cloned();
        let counter = Arc::new(AtomicU64::new(0));
        // Inspect fills it, so the event names the request even if no head comes back.
        let mcp_slot = McpRequestSlot::new();
        parts.extensions.insert(mcp_slot.clone());
        let spans = Spans::start(&self.config, &parts.headers);
        let record = Box::new(Record {
            sink: Arc::clone(&self.sink),
            config: Arc::clone(&self.config),
            start,
            started_at,
            request_id: KeptId::Header(request_id),
            peer,
            client,
            method: parts.method.clone(),
            version: parts.version,
            secrets,
            request_bytes: RequestBytes::Counting(Arc::clone(&counter)),
            head: Default::default(),
            spans,
        });
        let before = BeforeHead {
            session_header,
            mcp_slot,
        };
        let body = CountingBody::new(body, counter);
        let future = self.inner.call(Request::from_parts(parts, body));
        ResponseFuture::new(future, record, before)
    }
}

fn usable_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// A 32-hex-digit id: a random 64-bit prefix drawn once per process, then a counter.
/// Unique within a process and unlikely to collide across processes; not a secret.
fn generate_request_id() -> HeaderValue {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            // No OS randomness: fall back to the clock, still unique per process start.
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            seed = (nanos as u64 ^ u64::from(std::process::id())).to_le_bytes();
        }
        u64::from_le_bytes(seed)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut text = [0u8; 32];
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in prefix
        .to_be_bytes()
        .iter()
        .chain(n.to_be_bytes().iter())
        .enumerate()
    {
        text[2 * i] = DIGITS[usize::from(byte >> 4)];
        text[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
    }
    // Owned by its `Bytes`: one allocation, and the clones (request header, record, response
    // header, events) only count references.
    HeaderValue::from_maybe_shared(Bytes::from_owner(text))
        .expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_hex() {
        let a = generate_request_id();
        let b = generate_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert!(usable_id(&a));
        assert!(!usable_id(&HeaderValue::from_static("has space")));
        assert!(!usable_id(&HeaderValue::from_static("")));
    }
}
