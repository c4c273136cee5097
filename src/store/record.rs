//! [`SessionRecord`]: what the edge keeps about one legacy session.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::context::{BindingKey, Principal, Replica};
use crate::protocol::{ClientInfo, ProtocolVersion, SessionId};

/// What the edge knows of one legacy MCP session.
///
/// Times are wall-clock ([`SystemTime`]) so that records can travel between gateway
/// instances; the stores measure expiry on their own clocks (the memory store on tokio's,
/// so paused-clock tests work; Redis with key TTLs).
///
/// Cheap to clone (one reference count): stores hand out copies on every lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    inner: Arc<RecordInner>,
}

#[derive(Debug, Clone, PartialEq)]
struct RecordInner {
    id: SessionId,
    binding: Option<BindingKey>,
    protocol_version: ProtocolVersion,
    client_info: Option<ClientInfo>,
    replica: Option<Replica>,
    created_at: SystemTime,
    last_seen: SystemTime,
    idle_ttl: Duration,
    max_lifetime: Duration,
}

impl SessionRecord {
    /// Idle TTL used when none is set: 30 minutes.
    pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(30 * 60);
    /// Absolute lifetime used when none is set: 24 hours.
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

    /// A record of `id` created now: no principal, protocol 2025-03-26, default TTLs.
    pub fn new(id: SessionId) -> Self {
        let now = SystemTime::now();
        let inner = RecordInner {
            id,
            binding: None,
            protocol_version: ProtocolVersion::DEFAULT_LEGACY,
            client_info: None,
            replica: None,
            created_at: now,
            last_seen: now,
            idle_ttl: Self::DEFAULT_IDLE_TTL,
            max_lifetime: Self::DEFAULT_MAX_LIFETIME,
        };
        SessionRecord {
            inner: Arc::new(inner),
        }
    }

    fn inner_mut(&mut self) -> &mut RecordInner {
        Arc::make_mut(&mut self.inner)
    }

    /// In place: no copy unless a clone of this record is still held elsewhere.
    pub(crate) fn set_last_seen(&mut self, at: SystemTime) {
        self.inner_mut().last_seen = at;
    }

    /// In place, as [`Self::set_last_seen`].
    pub(crate) fn set_replica(&mut self, replica: Option<Replica>) {
        self.inner_mut().replica = replica;
    }

    /// Binds the session to `principal` (its [`BindingKey`], R32).
    pub fn with_principal(self, principal: &Principal) -> Self {
        self.with_binding(Some(BindingKey::of(principal)))
    }

    /// Binds the session to `binding`, or unbinds it.
    pub fn with_binding(mut self, binding: Option<BindingKey>) -> Self {
        self.inner_mut().binding = binding;
        self
    }

    /// Binds the session to a binding key as stores record it ([`BindingKey::as_str`]), or
    /// unbinds it.
    pub fn with_principal_key(self, key: Option<Arc<str>>) -> Self {
        self.with_binding(key.map(BindingKey::from_stored))
    }

    /// Sets the negotiated protocol version.
    pub fn with_protocol_version(mut self, version: ProtocolVersion) -> Self {
        self.inner_mut().protocol_version = version;
        self
    }

    /// Sets the client's self-reported `clientInfo`.
    pub fn with_client_info(mut self, info: Option<ClientInfo>) -> Self {
        self.inner_mut().client_info = info;
        self
    }

    /// Sets the replica serving the session.
    pub fn with_replica(mut self, replica: Option<Replica>) -> Self {
        self.inner_mut().replica = replica;
        self
    }

    /// Sets when the session was created.
    pub fn with_created_at(mut self, at: SystemTime) -> Self {
        self.inner_mut().created_at = at;
        self
    }

    /// Sets when the session was last seen.
    pub fn with_last_seen(mut self, at: SystemTime) -> Self {
        self.inner_mut().last_seen = at;
        self
    }

    /// Sets the idle TTL: the session ends after this long without a request.
    pub fn with_idle_ttl(mut self, ttl: Duration) -> Self {
        self.inner_mut().idle_ttl = ttl;
        self
    }

    /// Sets the absolute lifetime: the session ends this long after creation, however busy.
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> Self {
        self.inner_mut().max_lifetime = lifetime;
        self
    }

    /// The session id.
    pub fn id(&self) -> &SessionId {
        &self.inner.id
    }
    /// The binding key of the principal the session belongs to, as stores record it
    /// ([`BindingKey::as_str`]), if bound.
    pub fn principal(&self) -> Option<&str> {
        self.inner.binding.as_ref().map(BindingKey::as_str)
    }
    /// The principal the session belongs to, if bound.
    pub fn binding(&self) -> Option<&BindingKey> {
        self.inner.binding.as_ref()
    }
    /// Whether `principal` (or no principal) may use this session ([`BindingKey::admits`]):
    /// an unbound session takes anyone, a bound one only the same issuer and subject.
    pub fn is_bound_to(&self, principal: Option<&Principal>) -> bool {
        BindingKey::admits(self.binding(), principal)
    }
    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.inner.protocol_version
    }
    /// The client's self-reported `clientInfo`.
    pub fn client_info(&self) -> Option<&ClientInfo> {
        self.inner.client_info.as_ref()
    }
    /// The replica serving the session.
    pub fn replica(&self) -> Option<&Replica> {
        self.inner.replica.as_ref()
    }
    /// When the session was created.
    pub fn created_at(&self) -> SystemTime {
        self.inner.created_at
    }
    /// When the session was last seen (as of the last store write).
    pub fn last_seen(&self) -> SystemTime {
        self.inner.last_seen
    }
    /// The idle TTL.
    pub fn idle_ttl(&self) -> Duration {
        self.inner.idle_ttl
    }
    /// The absolute lifetime.
    pub fn max_lifetime(&self) -> Duration {
        self.inner.max_lifetime
    }
}

/// Live session counts, from [`SessionStore::count`](super::SessionStore::count).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCount {
    /// All live sessions.
    pub total: u64,
    /// Live sessions of the principal asked about (0 when none was given).
    pub principal: u64,
}

/// Session caps an insert must stay within, for [`SessionStore::insert_within`]: checked
/// and applied in one atomic step, so concurrent `initialize`s never overshoot them.
///
/// [`SessionStore::insert_within`]: super::SessionStore::insert_within
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCaps {
    /// At most this many live sessions in total.
    pub total: Option<u64>,
    /// At most this many live sessions bound to the record's principal (ignored for an
    /// unbound record).
    pub per_principal: Option<u64>,
}

impl SessionCaps {
    /// Whether no cap is set.
    pub fn is_none(&self) -> bool {
        self.total.is_none() && self.per_principal.is_none()
    }
}

/// What [`SessionStore::insert_within`] did.
///
/// [`SessionStore::insert_within`]: super::SessionStore::insert_within
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capped {
    /// The record was inserted.
    Inserted,
    /// Not inserted: its principal already has [`SessionCaps::per_principal`] live sessions.
    PrincipalFull,
    /// Not inserted: [`SessionCaps::total`] sessions are live.
    TotalFull,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_matches_issuer_and_subject_only() {
        let alice = Principal::new("alice").with_issuer("https://as.example");
        let record = SessionRecord::new("s1".parse().unwrap()).with_principal(&alice);
        assert!(record.is_bound_to(Some(&alice.clone().with_scopes(["x"]))));
        assert!(!record.is_bound_to(Some(&Principal::new("alice"))));
        assert!(!record.is_bound_to(Some(
            &Principal::new("bob").with_issuer("https://as.example")
        )));
        assert!(!record.is_bound_to(Some(
            &Principal::new("alice").with_issuer("https://other.example")
        )));
        assert!(!record.is_bound_to(None));
        let unbound = SessionRecord::new("s2".parse().unwrap());
        assert!(unbound.is_bound_to(None));
        assert!(unbound.is_bound_to(Some(&alice)));
    }
}
