//! The aggregator's own legacy sessions (downstream), each holding one upstream session per
//! upstream, opened when first needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderValue, Uri};
use tokio::time::Instant;

use super::message::Object;
use super::relay::Relay;
use crate::context::BindingKey;
use crate::protocol::ProtocolVersion;

/// How long an aggregator session may stay unused before it ends (and its upstream sessions
/// with it): one hour.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(3600);

/// One upstream's session for one downstream session.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamSession {
    /// The upstream's `Mcp-Session-Id`; `None` when the upstream issued none (it serves the
    /// legacy era without sessions).
    pub(crate) id: Option<HeaderValue>,
    /// The version the upstream chose in `initialize`.
    pub(crate) version: ProtocolVersion,
}

/// A client's session with the aggregator.
#[derive(Debug)]
pub(crate) struct Downstream {
    pub(crate) id: Arc<str>,
    pub(crate) version: ProtocolVersion,
    /// `capabilities` and `clientInfo` of the client's `initialize`, sent on to upstreams.
    pub(crate) client: Object,
    /// The principal that opened it, when an auth layer runs in front.
    pub(crate) owner: Option<BindingKey>,
    /// The path (and query) the client used, for requests the aggregator makes on its own.
    pub(crate) uri: Uri,
    last_seen: Mutex<Instant>,
    /// One slot per upstream, in the aggregator's order; the lock is held while the session
    /// is opened, so one downstream session never opens two sessions with one upstream.
    pub(crate) upstreams: Box<[tokio::sync::Mutex<Option<UpstreamSession>>]>,
    /// What is being relayed between the client and its upstream sessions.
    pub(crate) relay: Relay,
}

impl Downstream {
    fn new(
        version: ProtocolVersion,
        client: Object,
        owner: Option<BindingKey>,
        uri: Uri,
        upstreams: usize,
    ) -> Arc<Self> {
        Arc::new(Downstream {
            id: new_session_id(),
            version,
            client,
            owner,
            uri,
            last_seen: Mutex::new(Instant::now()),
            upstreams: (0..upstreams)
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            relay: Relay::default(),
        })
    }

    /// A session in no table, for unit tests.
    #[cfg(test)]
    pub(crate) fn detached() -> Arc<Self> {
        let v = ProtocolVersion::V2025_11_25;
        Downstream::new(v, Object::new(), None, Uri::from_static("/mcp"), 2)
    }
}

/// What a session id led to.
pub(crate) enum Lookup {
    Found(Arc<Downstream>),
    /// It had been idle too long: removed now; its upstream sessions are to be ended.
    Expired(Arc<Downstream>),
    Unknown,
}

/// The session table.
#[derive(Debug)]
pub(crate) struct Sessions {
    map: Mutex<Table>,
    idle: Duration,
}

#[derive(Debug)]
struct Table {
    sessions: HashMap<Arc<str>, Arc<Downstream>>,
    last_sweep: Instant,
}

impl Sessions {
    pub(crate) fn new(idle: Duration) -> Self {
        Sessions {
            map: Mutex::new(Table {
                sessions: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            idle,
        }
    }

    /// A new session, and the sessions found expired on the way (at most one sweep a minute).
    pub(crate) fn create(
        &self,
        version: ProtocolVersion,
        client: Object,
        owner: Option<BindingKey>,
        uri: Uri,
        upstreams: usize,
    ) -> (Arc<Downstream>, Vec<Arc<Downstream>>) {
        let now = Instant::now();
        let session = Downstream::new(version, client, owner, uri, upstreams);
        let mut table = self.map.lock().expect("session table");
        let mut expired = Vec::new();
        if now.duration_since(table.last_sweep) >= Duration::from_secs(60) {
            table.last_sweep = now;
            table.sessions.retain(|_, s| {
                let keep = now.duration_since(*s.last_seen.lock().expect("last seen")) < self.idle;
                if !keep {
                    expired.push(Arc::clone(s));
                }
                keep
            });
        }
        table
            .sessions
            .insert(Arc::clone(&session.id), Arc::clone(&session));
        (session, expired)
    }

    /// The session `id`, marked as used now.
    pub(crate) fn get(&self, id: &str) -> Lookup {
        let now = Instant::now();
        let mut table = self.map.lock().expect("session table");
        let Some(session) = table.sessions.get(id) else {
            return Lookup::Unknown;
        };
        let mut last_seen = session.last_seen.lock().expect("last seen");
        if now.duration_since(*last_seen) >= self.idle {
            drop(last_seen);
            let session = table.sessions.remove(id).expect("found above");
            return Lookup::Expired(session);
        }
        *last_seen = now;
        drop(last_seen);
        Lookup::Found(Arc::clone(session))
    }

    /// Removes the session `id`.
    pub(crate) fn remove(&self, id: &str) -> Option<Arc<Downstream>> {
        self.map.lock().expect("session table").sessions.remove(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.lock().expect("session table").sessions.len()
    }
}

/// 128 random bits, hex: visible ASCII (R24), unguessable.
fn new_session_id() -> Arc<str> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source");
    let mut id = String::with_capacity(32);
    for b in bytes {
        id.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        id.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    id.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_idle_session_expires_and_a_used_one_stays() {
        let sessions = Sessions::new(Duration::from_secs(10));
        let uri = Uri::from_static("/mcp");
        let v = ProtocolVersion::V2025_11_25;
        let (a, _) = sessions.create(v, Object::new(), None, uri.clone(), 2);
        let (b, _) = sessions.create(v, Object::new(), None, uri, 2);
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 32);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(matches!(sessions.get(&b.id), Lookup::Found(_)));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(matches!(sessions.get(&a.id), Lookup::Expired(_)));
        assert!(matches!(sessions.get(&a.id), Lookup::Unknown));
        assert!(matches!(sessions.get(&b.id), Lookup::Found(_)));
        assert!(sessions.remove(&b.id).is_some());
        assert_eq!(sessions.len(), 0);
    }
}
