use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{HeaderValue, Method, Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::ReplicaBody;
use super::envelope::{EnvelopeKeys, SessionEnvelope};
use super::future::ResponseFuture;
use super::set::{Backoff, Entry, ReplicaSet};
use super::table::{CachedPin, Table};
use crate::context::Principal;
use crate::error::EdgeBody;
use crate::error::{Reason, RejectedBy, Rejection};
use crate::protocol::header::{MCP_PROTOCOL_VERSION, MCP_SESSION_ID};
use crate::protocol::{Era, McpRequest, ProtocolVersion, RequestId, SessionId};
use crate::store::{Presented, SessionResolver};

/// A [`Service`] over a set of replica services that keeps every legacy MCP session on the
/// replica that created it; see the [module docs](super).
pub struct AffinityRouter<S> {
    pub(crate) replicas: ReplicaSet<S>,
    pub(crate) config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) strategy: Strategy,
    pub(crate) on_gone: OnReplicaGone,
    pub(crate) backoff: Backoff,
}

#[derive(Clone)]
pub(crate) enum Strategy {
    Envelope(Envelope),
    Table(Table),
}

/// The envelope strategy: no shared state. The session id the client sees is a sealed
/// [`SessionEnvelope`] (replica, the server's own id, principal binding, seal time), opened
/// on every request by whichever gateway receives it.
///
/// The binding is strict: a session opened with a [`Principal`] in the request extensions
/// (put there by the auth layer) takes only that issuer and subject, and one opened without
/// takes only requests without; anything else answers 404 (R32, §L.13). (The table strategy
/// follows the store's rule instead: an unbound record takes anyone.)
///
/// ```
/// use std::time::Duration;
/// use mcp_edge::affinity::{Envelope, EnvelopeKeys, SessionKey};
///
/// let key = SessionKey::from_hex(&"7f".repeat(32)).unwrap();
/// let envelope = Envelope::new(EnvelopeKeys::new(&key)).max_age(Duration::from_secs(24 * 3600));
/// ```
#[derive(Clone)]
pub struct Envelope {
    keys: Arc<EnvelopeKeys>,
    max_age: Option<Duration>,
}

impl Envelope {
    /// Sessions sealed and opened with `keys`, with no age limit.
    pub fn new(keys: EnvelopeKeys) -> Self {
        Envelope {
            keys: Arc::new(keys),
            max_age: None,
        }
    }

    /// Ids sealed longer ago than `max_age` answer 404, so the client starts over (R28).
    /// This is the session's absolute lifetime at the edge.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The keys.
    pub fn keys(&self) -> &EnvelopeKeys {
        &self.keys
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("keys", &self.keys)
            .field("max_age", &self.max_age)
            .finish()
    }
}

/// What happens to a session whose replica is no longer in the [`ReplicaSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnReplicaGone {
    /// `404` with a JSON-RPC error (and, in the table strategy, the record removed): the
    /// client starts a new session (R28). The right choice when replicas keep sessions in
    /// memory.
    #[default]
    NotFound,
    /// The session moves to another replica (the same one from every gateway: rendezvous
    /// hashing on the session id), which must be able to restore it, e.g. rmcp with a shared
    /// session store. The same applies while the session's replica is ejected.
    Reassign,
}

impl<S> AffinityRouter<S> {
    /// A router using the envelope strategy.
    pub fn envelope(replicas: ReplicaSet<S>, envelope: Envelope) -> Self {
        Self::with_strategy(replicas, Strategy::Envelope(envelope))
    }

    /// A router using the table strategy.
    pub fn table(replicas: ReplicaSet<S>, table: Table) -> Self {
        Self::with_strategy(replicas, Strategy::Table(table))
    }

    fn with_strategy(replicas: ReplicaSet<S>, strategy: Strategy) -> Self {
        AffinityRouter {
            replicas,
            config: Arc::new(Config {
                strategy,
                on_gone: OnReplicaGone::default(),
                backoff: Backoff::default(),
            }),
        }
    }

    /// What to do with sessions whose replica is gone (default: 404).
    pub fn on_replica_gone(mut self, policy: OnReplicaGone) -> Self {
        Arc::make_mut(&mut self.config).on_gone = policy;
        self
    }

    /// How long a replica that failed to connect is left out (default: 1 s, doubling up to
    /// 30 s).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        Arc::make_mut(&mut self.config).backoff = backoff;
        self
    }

    /// The replica set: clone it to add and remove replicas at runtime.
    pub fn replicas(&self) -> &ReplicaSet<S> {
        &self.replicas
    }
}

impl<S> Clone for AffinityRouter<S> {
    fn clone(&self) -> Self {
        AffinityRouter {
            replicas: self.replicas.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S> fmt::Debug for AffinityRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strategy = match self.config.strategy {
            Strategy::Envelope(_) => "envelope",
            Strategy::Table(_) => "table",
        };
        f.debug_struct("AffinityRouter")
            .field("strategy", &strategy)
            .field("replicas", &self.replicas)
            .field("on_replica_gone", &self.config.on_gone)
            .finish()
    }
}

impl<S, B, RB> Service<Request<B>> for AffinityRouter<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone,
    RB: Body,
{
    type Response = Response<EdgeBody<ReplicaBody<RB>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    /// Always ready: each replica's own readiness is awaited inside the response future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        self.route(request)
    }
}

/// What the router must do with the response, decided on the way in.
pub(crate) enum Learn {
    /// Modern, or a request that cannot create a session.
    Nothing,
    /// No session id came in: one in the response is a new session on this replica.
    NewSession { principal: Option<Principal> },
    /// An envelope was opened: the server's id is mapped back to the client's.
    Envelope {
        client: HeaderValue,
        server: SessionId,
        principal: Option<[u8; 16]>,
    },
    /// A table pin was followed (`repin` when the session moved to this replica).
    Table { session: SessionId, repin: bool },
}

/// What the response future does after [`AffinityRouter::learn`].
pub(crate) enum Learned {
    /// Hand the response out.
    Done,
    /// Wait for a store write first.
    Write(super::future::PendingWrite),
    /// Answer with this refusal instead.
    Reject(Rejection),
    /// Answer with this refusal once the session's record is removed.
    Remove(crate::store::StoreFuture<bool>, Rejection),
}

/// Everything the response future needs once the replica answers.
pub(crate) struct Call<S> {
    pub(crate) router: AffinityRouter<S>,
    pub(crate) entry: Arc<Entry<S>>,
    pub(crate) learn: Learn,
    pub(crate) is_delete: bool,
}

/// The outcome of resolving a session id.
pub(crate) enum Resolved<S> {
    Replica(Arc<Entry<S>>, bool),
    Reject(Rejection),
}

impl<S> AffinityRouter<S> {
    pub(crate) fn route<B>(&self, mut request: Request<B>) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>> + Clone,
    {
        let mcp = request.extensions().get::<Arc<McpRequest>>().cloned();
        let id = mcp.as_ref().and_then(|mcp| mcp.id().cloned());
        let modern = match &mcp {
            Some(mcp) => mcp.era() == Era::Modern,
            None => request
                .headers()
                .get(MCP_PROTOCOL_VERSION)
                .and_then(|v| ProtocolVersion::from_header(v.as_bytes()).ok())
                .is_some_and(|v| v.era() == Era::Modern),
        };
        let initialize = mcp.as_ref().is_some_and(|mcp| mcp.is_initialize());
        if initialize {
            // An initialize always starts a new session, wherever it lands; a stale id sent
            // with it must not turn it into a 404 (R45).
            request.headers_mut().remove(MCP_SESSION_ID);
        }
        // The id an outer session layer already read, else the header; an initialize always
        // starts a new session and a modern request has none.
        let presented = if modern || initialize {
            Presented::Absent
        } else {
            Presented::of(&request)
        };
        let session = match presented {
            Presented::Id(session) => session,
            Presented::Invalid => {
                return ResponseFuture::rejected(Rejection::invalid_session_id(
                    RejectedBy::Affinity,
                    id,
                ));
            }
            Presented::Absent => {
                let Some(entry) = self.replicas.least_loaded() else {
                    return ResponseFuture::rejected(self.no_replica(id));
                };
                let learn = if modern {
                    Learn::Nothing
                } else {
                    Learn::NewSession {
                        principal: request.extensions().get::<Principal>().cloned(),
                    }
                };
                return self.dispatch(entry, request, learn);
            }
        };
        match &self.config.strategy {
            Strategy::Envelope(envelope) => self.route_envelope(envelope, request, &session, id),
            Strategy::Table(table) => {
                let principal = request.extensions().get::<Principal>();
                match table.cached(&session) {
                    Some(pin) => {
                        if !pin.is_bound_to(principal) {
                            return ResponseFuture::rejected(Rejection::session_foreign(
                                RejectedBy::Affinity,
                                id,
                            ));
                        }
                        table.refresh(&session, &pin);
                        let resolved = self.follow_pin(&session, Some(pin.replica()), id);
                        self.dispatch_resolved(resolved, request, session)
                    }
                    None => {
                        let lookup = table.resolver().get(&session);
                        ResponseFuture::lookup(self.clone(), lookup, request, session, id)
                    }
                }
            }
        }
    }

    fn route_envelope<B>(
        &self,
        envelope: &Envelope,
        mut request: Request<B>,
        session: &SessionId,
        id: Option<RequestId>,
    ) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>> + Clone,
    {
        let opened = match envelope.keys.open(session.as_str().as_bytes()) {
            Ok(opened) => opened,
            Err(_) => {
                return ResponseFuture::rejected(Rejection::session_not_found(
                    RejectedBy::Affinity,
                    id,
                ));
            }
        };
        if envelope
            .max_age
            .is_some_and(|max_age| opened.is_expired(max_age, SystemTime::now()))
        {
            return ResponseFuture::rejected(Rejection::session_not_found(
                RejectedBy::Affinity,
                id,
            ));
        }
        // Stricter than the store's rule: see `SessionEnvelope::is_bound_to`.
        if !opened.is_bound_to(request.extensions().get::<Principal>()) {
            return ResponseFuture::rejected(Rejection::session_foreign(RejectedBy::Affinity, id));
        }
        let found = self.replicas.by_tag(opened.replica_tag());
        let entry = match (found, self.config.on_gone) {
            (Some((entry, true)), _) => entry,
            (Some((entry, false)), OnReplicaGone::NotFound) => match self.ejected_pin(entry, id) {
                Resolved::Replica(entry, _) => entry,
                Resolved::Reject(rejection) => return ResponseFuture::rejected(rejection),
            },
            (None, OnReplicaGone::NotFound) => {
                return ResponseFuture::rejected(Rejection::replica_gone(RejectedBy::Affinity, id));
            }
            (_, OnReplicaGone::Reassign) => {
                let key = opened.session().as_str().as_bytes();
                match self.replicas.rendezvous(key) {
                    Some(entry) => entry,
                    None => return ResponseFuture::rejected(self.no_replica(id)),
                }
            }
        };
        // The client's own header value comes back out (no copy of the id).
        let client = request
            .headers_mut()
            .insert(MCP_SESSION_ID, opened.session().to_header_value())
            .unwrap_or_else(|| session.to_header_value());
        let learn = Learn::Envelope {
            client,
            server: opened.session().clone(),
            principal: opened.principal_tag(),
        };
        self.dispatch(entry, request, learn)
    }

    /// Where a table pin leads: its replica, another one (reassign), or a refusal.
    pub(crate) fn follow_pin(
        &self,
        session: &SessionId,
        replica: Option<&str>,
        id: Option<RequestId>,
    ) -> Resolved<S> {
        let found = replica.and_then(|replica| self.replicas.by_id(replica));
        match (found, self.config.on_gone) {
            (Some((entry, true)), _) => Resolved::Replica(entry, false),
            (Some((entry, false)), OnReplicaGone::NotFound) => self.ejected_pin(entry, id),
            (None, OnReplicaGone::NotFound) => {
                Resolved::Reject(Rejection::replica_gone(RejectedBy::Affinity, id))
            }
            (_, OnReplicaGone::Reassign) => {
                match self.replicas.rendezvous(session.as_str().as_bytes()) {
                    Some(entry) => Resolved::Replica(entry, true),
                    None => Resolved::Reject(self.no_replica(id)),
                }
            }
        }
    }

    pub(crate) fn dispatch_resolved<B>(
        &self,
        resolved: Resolved<S>,
        request: Request<B>,
        session: SessionId,
    ) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>> + Clone,
    {
        match resolved {
            Resolved::Replica(entry, repin) => {
                self.dispatch(entry, request, Learn::Table { session, repin })
            }
            Resolved::Reject(rejection) => {
                let gone = rejection.reason() == Reason::ReplicaGone;
                if let Strategy::Table(table) = &self.config.strategy
                    && gone
                {
                    return ResponseFuture::removing(table.unpin(&session), rejection);
                }
                ResponseFuture::rejected(rejection)
            }
        }
    }

    pub(crate) fn dispatch<B>(
        &self,
        entry: Arc<Entry<S>>,
        mut request: Request<B>,
        learn: Learn,
    ) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>> + Clone,
    {
        request.extensions_mut().insert(entry.replica.clone());
        let is_delete = request.method() == Method::DELETE;
        let service = entry.service.clone();
        let in_flight = entry.load.start();
        let call = Call {
            router: self.clone(),
            entry,
            learn,
            is_delete,
        };
        ResponseFuture::calling(service, request, call, in_flight)
    }

    fn no_replica(&self, id: Option<RequestId>) -> Rejection {
        let retry_after = self
            .replicas
            .retry_after()
            .map_or(1, |wait| wait.as_secs().max(1));
        Rejection::of(RejectedBy::Affinity, Reason::NoReplica)
            .with_id(id)
            .with_header(RETRY_AFTER, HeaderValue::from(retry_after))
    }

    /// A pinned session whose replica is ejected: 404 when the replica is proven down (its
    /// sessions are gone, R28), else the replica is tried anyway (a timeout or a connection
    /// lost mid-request proves nothing, and the session lives nowhere else).
    fn ejected_pin(&self, entry: Arc<Entry<S>>, id: Option<RequestId>) -> Resolved<S> {
        if entry.load.is_down() {
            Resolved::Reject(Rejection::replica_gone(RejectedBy::Affinity, id))
        } else {
            Resolved::Replica(entry, false)
        }
    }

    /// Applies what the replica's answer teaches: ejection, the sealed id, a store write to
    /// await for the table strategy.
    pub(crate) fn learn<RB>(&self, call: &Call<S>, response: &mut Response<RB>) -> Learned {
        use super::future::PendingWrite;
        match Failed::of(response) {
            Failed::Refused => {
                self.replicas.down(&call.entry.load, self.config.backoff);
                if let Some(gone) = self.refused_pin(call, response) {
                    return gone;
                }
            }
            Failed::Other => self.replicas.eject(&call.entry.load, self.config.backoff),
            Failed::No => self.replicas.recovered(&call.entry.load),
        }
        response.extensions_mut().insert(call.entry.replica.clone());
        let status = response.status();
        match (&self.config.strategy, &call.learn) {
            (_, Learn::Nothing) => Learned::Done,
            (Strategy::Envelope(envelope), Learn::NewSession { principal }) => {
                let Some(issued) = new_session_id(response) else {
                    return Learned::Done;
                };
                let sealed = SessionEnvelope::new(
                    &call.entry.replica,
                    issued,
                    principal.as_ref(),
                    SystemTime::now(),
                );
                issue_sealed(&envelope.keys, &sealed, response)
            }
            (
                Strategy::Envelope(envelope),
                Learn::Envelope {
                    client,
                    server,
                    principal,
                },
            ) => {
                let Some(value) = response.headers().get(MCP_SESSION_ID) else {
                    return Learned::Done;
                };
                if value.as_bytes() == server.as_str().as_bytes() {
                    response
                        .headers_mut()
                        .insert(MCP_SESSION_ID, client.clone());
                    return Learned::Done;
                }
                // The replica answered with another session id: seal that one.
                let Some(issued) = new_session_id(response) else {
                    return Learned::Done;
                };
                let sealed = SessionEnvelope::from_parts(
                    call.entry.replica.tag(),
                    issued,
                    *principal,
                    SystemTime::now(),
                );
                issue_sealed(&envelope.keys, &sealed, response)
            }
            (Strategy::Table(table), Learn::NewSession { principal }) => {
                let Some(issued) = new_session_id(response) else {
                    return Learned::Done;
                };
                let pin = CachedPin::new(call.entry.replica.clone(), principal.as_ref());
                let write = table.record(issued.clone(), &pin, principal.as_ref());
                table.remember(issued, pin);
                Learned::Write(PendingWrite::fail_closed(write))
            }
            (Strategy::Table(table), Learn::Table { session, repin }) => {
                if SessionResolver::ends(call.is_delete, status) {
                    table.forget(session);
                    return Learned::Write(PendingWrite::best_effort(
                        table.resolver().end(session).map(|_| ()),
                    ));
                }
                if *repin {
                    table.repin(session, &call.entry.replica);
                    return Learned::Write(PendingWrite::best_effort(
                        table
                            .store()
                            .set_replica(session, Some(call.entry.replica.clone()))
                            .map(|_| ()),
                    ));
                }
                Learned::Done
            }
            // A strategy never produces the other strategy's learning.
            (Strategy::Envelope(_), Learn::Table { .. })
            | (Strategy::Table(_), Learn::Envelope { .. }) => Learned::Done,
        }
    }
}

/// How a replica's answer failed, from its response head.
enum Failed {
    /// It answered.
    No,
    /// Its connection was refused: nothing listens there, the replica is down. The replica
    /// service says so with [`io::ErrorKind::ConnectionRefused`](std::io::ErrorKind) in the
    /// extensions of its `502` (as [`HttpUpstream`](crate::proxy::HttpUpstream) does).
    Refused,
    /// It could not be reached, or the connection failed before a response head.
    Other,
}

impl Failed {
    fn of<RB>(response: &Response<RB>) -> Failed {
        let extensions = response.extensions();
        if !extensions
            .get::<Rejection>()
            .is_some_and(|r| r.reason() == Reason::UpstreamUnavailable)
        {
            return Failed::No;
        }
        match extensions.get::<std::io::ErrorKind>() {
            Some(std::io::ErrorKind::ConnectionRefused) => Failed::Refused,
            _ => Failed::Other,
        }
    }
}

impl<S> AffinityRouter<S> {
    /// A pinned session's request whose replica refused the connection (nothing was sent):
    /// 404 at once, the table pin removed, so the client starts over on a live replica (R28).
    /// `None` when the request had no pin or the policy reassigns sessions.
    fn refused_pin<RB>(&self, call: &Call<S>, response: &Response<RB>) -> Option<Learned> {
        if self.config.on_gone != OnReplicaGone::NotFound {
            return None;
        }
        let id = response
            .extensions()
            .get::<Rejection>()
            .and_then(|r| r.id().cloned());
        let rejection = Rejection::replica_gone(RejectedBy::Affinity, id);
        match (&self.config.strategy, &call.learn) {
            (_, Learn::Envelope { .. }) => Some(Learned::Reject(rejection)),
            (Strategy::Table(table), Learn::Table { session, .. }) => {
                Some(Learned::Remove(table.unpin(session), rejection))
            }
            _ => None,
        }
    }
}

/// A valid session id in the response head, if the replica issued one.
fn new_session_id<RB>(response: &Response<RB>) -> Option<SessionId> {
    let value = response.headers().get(MCP_SESSION_ID)?;
    match SessionId::from_header(value) {
        Ok(id) => Some(id),
        Err(_) => {
            tracing::warn!("replica issued an invalid Mcp-Session-Id; passed through unrouted");
            None
        }
    }
}

/// Seals `envelope` into the response's `Mcp-Session-Id`, or refuses when it does not fit.
fn issue_sealed<RB>(
    keys: &EnvelopeKeys,
    envelope: &SessionEnvelope,
    response: &mut Response<RB>,
) -> Learned {
    let Ok(sealed) = keys.seal(envelope) else {
        return Learned::Reject(unsealable());
    };
    response
        .headers_mut()
        .insert(MCP_SESSION_ID, sealed.to_header_value());
    Learned::Done
}

fn unsealable() -> Rejection {
    Rejection::of(RejectedBy::Affinity, Reason::UpstreamUnavailable)
        .with_message("Bad Gateway: the replica's session id is too long to seal")
}

/// Wraps a replica's response: counted until its body ends, the replica in the extensions.
pub(crate) fn finish<RB: Body>(
    response: Response<RB>,
    in_flight: super::set::InFlight,
) -> Response<EdgeBody<ReplicaBody<RB>>> {
    response.map(|body| EdgeBody::new(ReplicaBody::new(body, in_flight)))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::StatusCode;
    use http_body_util::Full;
    use tower::ServiceExt;
    use tower::util::BoxCloneService;

    use super::*;
    use crate::context::Replica;
    use crate::store::{MemorySessionStore, SessionStore};

    type Fake = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

    /// Issues `s1` to a request without a session, 404s `gone`, accepts the rest.
    fn replica() -> Fake {
        BoxCloneService::new(tower::service_fn(
            |request: Request<Full<Bytes>>| async move {
                let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
                match request.headers().get(MCP_SESSION_ID) {
                    None => {
                        response
                            .headers_mut()
                            .insert(MCP_SESSION_ID, HeaderValue::from_static("s1"));
                    }
                    Some(id) if id == "gone" => *response.status_mut() = StatusCode::NOT_FOUND,
                    Some(_) => {}
                }
                Ok(response)
            },
        ))
    }

    fn request(method: Method, session: Option<&'static str>) -> Request<Full<Bytes>> {
        let mut request = Request::builder().method(method).uri("/mcp");
        if let Some(session) = session {
            request = request.header(MCP_SESSION_ID, session);
        }
        request.body(Full::default()).unwrap()
    }

    fn table_router(store: &Arc<MemorySessionStore>) -> (AffinityRouter<Fake>, Table) {
        table_router_with(store, replica())
    }

    fn table_router_with(
        store: &Arc<MemorySessionStore>,
        replica: Fake,
    ) -> (AffinityRouter<Fake>, Table) {
        let set = ReplicaSet::new();
        set.add(Replica::new("a"), replica);
        let store: Arc<dyn SessionStore> = Arc::clone(store) as Arc<dyn SessionStore>;
        let table = Table::new(store)
            .idle_ttl(Duration::from_secs(10))
            .refresh_after(Duration::from_secs(2));
        (AffinityRouter::table(set, table.clone()), table)
    }

    #[tokio::test(start_paused = true)]
    async fn busy_cached_sessions_keep_their_record_alive() {
        let store = Arc::new(MemorySessionStore::new());
        let (router, table) = table_router(&store);
        let response = send(&router, Method::POST, None).await;
        assert_eq!(response.headers()[MCP_SESSION_ID], "s1");
        let id: SessionId = "s1".parse().unwrap();
        assert_eq!(store.replica(&id).await.unwrap(), Some(Replica::new("a")));
        // Served from the cache every 4 s for 20 s: the 10 s idle TTL never runs out.
        for _ in 0..5 {
            tokio::time::advance(Duration::from_secs(4)).await;
            let response = send(&router, Method::POST, Some("s1")).await;
            assert_eq!(response.status(), StatusCode::OK);
            tokio::task::yield_now().await;
        }
        assert!(
            store.get(&id).await.unwrap().is_some(),
            "touched in the background"
        );
        assert!(table.cached_replica(&id).is_some());
        // Idle past the TTL: the record is gone.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(store.get(&id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn delete_and_replica_404_remove_the_pin() {
        let store = Arc::new(MemorySessionStore::new());
        let (router, table) = table_router(&store);
        send(&router, Method::POST, None).await;
        let id: SessionId = "s1".parse().unwrap();
        let response = send(&router, Method::DELETE, Some("s1")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(store.get(&id).await.unwrap().is_none());
        assert!(table.cached_replica(&id).is_none());
        // Unknown to the store now: 404 from the router, without asking a replica.
        let response = send(&router, Method::POST, Some("s1")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.extensions().get::<Rejection>().unwrap().reason(),
            Reason::SessionNotFound
        );

        // A pin whose replica answers 404 (the replica lost the session) is dropped too.
        let gone = pinned(&store, "gone", "a").await;
        let response = send(&router, Method::POST, Some("gone")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(
            response.extensions().get::<Rejection>().is_none(),
            "the replica's own 404"
        );
        assert!(store.get(&gone).await.unwrap().is_none());
    }

    /// A replica that answers like [`HttpUpstream`](crate::proxy::HttpUpstream) whose
    /// connection failed (`502`, refused or not) while `fail` holds a kind, else as
    /// [`replica`].
    fn failing_replica(fail: Arc<std::sync::Mutex<Option<std::io::ErrorKind>>>) -> Fake {
        let alive = replica();
        BoxCloneService::new(tower::service_fn(move |request: Request<Full<Bytes>>| {
            let failure = *fail.lock().unwrap();
            let alive = alive.clone();
            async move {
                let Some(kind) = failure else {
                    return alive.oneshot(request).await;
                };
                let rejection = Rejection::upstream_unavailable(RejectedBy::Proxy, None);
                let (mut parts, _) = rejection.into_response::<Full<Bytes>>().into_parts();
                parts.extensions.insert(kind);
                Ok(Response::from_parts(parts, Full::default()))
            }
        }))
    }

    /// Stores a record for session `id` pinned to `replica`.
    async fn pinned(store: &MemorySessionStore, id: &str, replica: &'static str) -> SessionId {
        let id: SessionId = id.parse().unwrap();
        let record =
            crate::store::SessionRecord::new(id.clone()).with_replica(Some(Replica::new(replica)));
        store.insert(record).await.unwrap();
        id
    }

    async fn send(
        router: &AffinityRouter<Fake>,
        method: Method,
        session: Option<&'static str>,
    ) -> Response<EdgeBody<ReplicaBody<Full<Bytes>>>> {
        let request = request(method, session);
        router.clone().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn a_refused_connection_is_404_at_once_and_the_pin_goes_but_a_blip_is_not() {
        let store = Arc::new(MemorySessionStore::new());
        let fail = Arc::new(std::sync::Mutex::new(None));
        let (router, table) = table_router_with(&store, failing_replica(Arc::clone(&fail)));
        let status = || router.replicas().status()[0].clone();
        send(&router, Method::POST, None).await;
        let id: SessionId = "s1".parse().unwrap();

        // A blip (a connect timeout): 502, the replica suspect, the session still tried.
        *fail.lock().unwrap() = Some(std::io::ErrorKind::TimedOut);
        let response = send(&router, Method::POST, Some("s1")).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert!(status().is_ejected() && !status().is_down());
        *fail.lock().unwrap() = None;
        let response = send(&router, Method::POST, Some("s1")).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "a suspect replica keeps its sessions"
        );
        assert!(!status().is_ejected());

        // Refused: nothing listens there. 404 from that very request, the pin removed.
        *fail.lock().unwrap() = Some(std::io::ErrorKind::ConnectionRefused);
        let response = send(&router, Method::GET, Some("s1")).await;
        assert_replica_gone(&response, &store, &id).await;
        assert!(table.cached_replica(&id).is_none());
        assert!(status().is_down() && status().is_ejected());
    }

    #[tokio::test]
    async fn a_pin_to_a_replica_marked_down_is_404_without_trying_it() {
        let store = Arc::new(MemorySessionStore::new());
        let (router, _) = table_router(&store);
        send(&router, Method::POST, None).await;
        assert!(router.replicas().mark_down("a", Backoff::default()));
        let response = send(&router, Method::POST, Some("s1")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let id: SessionId = "s1".parse().unwrap();
        assert!(store.get(&id).await.unwrap().is_none());
        // Up again: new sessions reach it.
        assert!(router.replicas().mark_up("a"));
        let response = send(&router, Method::POST, None).await;
        assert_eq!(response.headers()[MCP_SESSION_ID], "s1");
    }

    #[tokio::test]
    async fn a_pin_to_a_removed_replica_is_404_and_the_record_goes() {
        let store = Arc::new(MemorySessionStore::new());
        let (router, _) = table_router(&store);
        let orphan = pinned(&store, "orphan", "removed").await;
        let response = send(&router, Method::GET, Some("orphan")).await;
        assert_replica_gone(&response, &store, &orphan).await;
    }

    /// 404 from the router because the session's replica is gone, and the record removed.
    async fn assert_replica_gone<B>(
        response: &Response<B>,
        store: &MemorySessionStore,
        session: &SessionId,
    ) {
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.extensions().get::<Rejection>().unwrap().reason(),
            Reason::ReplicaGone
        );
        assert!(
            store.get(session).await.unwrap().is_none(),
            "R28: record removed"
        );
    }
}
