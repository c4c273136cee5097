//! [`SessionResolver`]: how a request's legacy session is found, checked and ended, written
//! once for every layer that needs it.
//!
//! The session layer and the affinity router (table strategy) both take a request presenting
//! an `Mcp-Session-Id`, look its record up, apply the binding rule (R32) and answer the same
//! refusals (R26, R27, §L.13); both end the record when the server answers `404` for the
//! session or accepts its `DELETE` (R28). Those steps live here, under `store/`, and not in
//! `session/`: a layer folder never imports another layer folder, and both layers already
//! depend on the store, so this is the one place both can call without an arrow between
//! layers.
//!
//! 1. [`Presented::of`]: the id, from the request extensions when an outer layer already
//!    parsed it into a [`SessionId`] (the session layer does, for the router inside it), else
//!    from the header, read once. Absent, invalid (not an id, or sent twice), or an id.
//! 2. [`SessionResolver::touch`] (counts as activity) or [`SessionResolver::get`] (does not):
//!    the store's answer.
//! 3. [`Resolution::judge`]: admitted, unknown, foreign (through [`BindingKey::admits`]) or
//!    unavailable (the store failed).
//! 4. [`Resolution::refusal`]: the answer when the caller refuses, built by the named
//!    [`Rejection`] constructors (a missing or invalid id is refused with
//!    [`Rejection::session_required`] and [`Rejection::invalid_session_id`]).
//! 5. [`SessionResolver::ends`] and [`SessionResolver::end`]: the record goes after a `404`
//!    from the server or an accepted `DELETE`.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, StatusCode};
//! use mcp_edge::store::{MemorySessionStore, Presented, Resolution, SessionRecord, SessionResolver, SessionStore};
//! use mcp_edge::{Principal, Reason, RejectedBy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = MemorySessionStore::new();
//! let alice = Principal::new("alice").with_issuer("https://as.example");
//! store.insert(SessionRecord::new("s1".parse().unwrap()).with_principal(&alice)).await.unwrap();
//! let resolver = SessionResolver::new(Arc::new(store));
//!
//! let request = Request::get("/mcp").header("mcp-session-id", "s1").body(()).unwrap();
//! let Presented::Id(id) = Presented::of(&request) else { unreachable!() };
//! let answer = resolver.touch(&id).await;
//! assert!(matches!(Resolution::judge(answer, Some(&alice)), Resolution::Admitted(_)));
//!
//! let bob = Principal::new("bob").with_issuer("https://as.example");
//! let foreign = Resolution::judge(resolver.get(&id).await, Some(&bob));
//! let refusal = foreign.refusal(RejectedBy::Session, None).unwrap();
//! assert_eq!(refusal.status(), StatusCode::NOT_FOUND);
//! assert_eq!(refusal.reason(), Reason::SessionPrincipalMismatch);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, StatusCode};

use super::{SessionRecord, SessionStore, StoreError, StoreFuture};
use crate::context::{BindingKey, Principal};
use crate::error::{RejectedBy, Rejection};
use crate::protocol::header::MCP_SESSION_ID;
use crate::protocol::{RequestId, SessionId};

/// The session id a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No `Mcp-Session-Id`.
    Absent,
    /// An `Mcp-Session-Id` that is not a valid id, or more than one.
    Invalid,
    /// A valid id.
    Id(SessionId),
}

impl Presented {
    /// The id `request` presents: the [`SessionId`] in its extensions when an outer layer put
    /// one there, else its `Mcp-Session-Id` header.
    pub fn of<B>(request: &http::Request<B>) -> Self {
        Self::from_parts(request.extensions(), request.headers())
    }

    /// As [`Presented::of`], from a request's extensions and headers.
    pub fn from_parts(extensions: &Extensions, headers: &HeaderMap) -> Self {
        if let Some(id) = extensions.get::<SessionId>() {
            return Presented::Id(id.clone());
        }
        let mut values = headers.get_all(MCP_SESSION_ID).iter();
        match (values.next(), values.next()) {
            (None, _) => Presented::Absent,
            (Some(value), None) => match SessionId::from_header(value) {
                Ok(id) => Presented::Id(id),
                Err(_) => Presented::Invalid,
            },
            (Some(_), Some(_)) => Presented::Invalid,
        }
    }
}

/// What the store's answer means for the request that presented the id.
#[derive(Debug)]
pub enum Resolution {
    /// Live, and the request's principal may use it.
    Admitted(SessionRecord),
    /// Unknown, expired or ended (R27).
    Unknown,
    /// Live, but bound to another principal (R32).
    Foreign(SessionRecord),
    /// The store failed.
    Unavailable(StoreError),
}

impl Resolution {
    /// Judges the store's answer for a request made by `principal` (or by no one), with the
    /// binding rule of [`BindingKey::admits`]: an unbound session takes anyone, a bound one
    /// only the same issuer and subject.
    pub fn judge(
        answer: Result<Option<SessionRecord>, StoreError>,
        principal: Option<&Principal>,
    ) -> Self {
        match answer {
            Err(err) => Resolution::Unavailable(err),
            Ok(None) => Resolution::Unknown,
            Ok(Some(record)) if BindingKey::admits(record.binding(), principal) => {
                Resolution::Admitted(record)
            }
            Ok(Some(record)) => Resolution::Foreign(record),
        }
    }

    /// The refusal when the caller refuses anything but an admitted session: `404` "Session
    /// not found" for an unknown session and, indistinguishably, a foreign one (§L.13; the
    /// owner rides along for audit only, [`Rejection::owner`]); `503`
    /// with `Retry-After` when the store failed. `None` when admitted.
    pub fn refusal(&self, by: RejectedBy, id: Option<RequestId>) -> Option<Rejection> {
        match self {
            Resolution::Admitted(_) => None,
            Resolution::Unknown => Some(Rejection::session_not_found(by, id)),
            Resolution::Foreign(record) => {
                let refusal = Rejection::session_foreign(by, id);
                // For audit only: the answer itself is that of an unknown session.
                Some(match record.binding() {
                    Some(owner) => refusal.with_owner(owner.clone()),
                    None => refusal,
                })
            }
            Resolution::Unavailable(err) => Some(err.to_rejection(by).with_id(id)),
        }
    }

    /// The admitted record, or the refusal of anything else: for callers that never let
    /// an unknown or foreign session through.
    pub fn into_admitted(
        self,
        by: RejectedBy,
        id: Option<RequestId>,
    ) -> Result<SessionRecord, Rejection> {
        match self.refusal(by, id) {
            None => Ok(self
                .into_record()
                .expect("an admitted session has its record")),
            Some(rejection) => Err(rejection),
        }
    }

    /// The record, when the store had a live one (admitted or foreign).
    pub fn into_record(self) -> Option<SessionRecord> {
        match self {
            Resolution::Admitted(record) | Resolution::Foreign(record) => Some(record),
            Resolution::Unknown | Resolution::Unavailable(_) => None,
        }
    }
}

/// Finds, checks and ends the sessions requests present, over a [`SessionStore`]; see the
/// module docs.
///
/// Cheap to clone (one reference count).
#[derive(Clone)]
pub struct SessionResolver {
    store: Arc<dyn SessionStore>,
}

impl SessionResolver {
    /// A resolver over `store`.
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        SessionResolver { store }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The live record of `id`, counted as activity (its idle deadline moves): for the layer
    /// that owns the session's lifetime. Judge the answer with [`Resolution::judge`].
    ///
    /// # Failure
    ///
    /// As [`SessionStore::touch`]; [`Resolution::judge`] turns the error into
    /// [`Resolution::Unavailable`].
    pub fn touch(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>> {
        self.store.touch(id)
    }

    /// The live record of `id`, counted as activity only when it admits `principal` (judged
    /// in the store's atomic step, [`SessionStore::touch_as`]): a foreign request never
    /// moves the owner's idle deadline. Judge the answer with [`Resolution::judge`].
    ///
    /// # Failure
    ///
    /// As [`SessionStore::touch_as`].
    pub fn touch_as(
        &self,
        id: &SessionId,
        principal: Option<&Principal>,
    ) -> StoreFuture<Option<SessionRecord>> {
        self.store.touch_as(id, principal)
    }

    /// The live record of `id`, not counted as activity: for a router that only follows it.
    ///
    /// # Failure
    ///
    /// As [`SessionStore::get`].
    pub fn get(&self, id: &SessionId) -> StoreFuture<Option<SessionRecord>> {
        self.store.get(id)
    }

    /// Whether the server's answer ends the session: a `404` (it no longer knows the session,
    /// R28) or an accepted (2xx) `DELETE`.
    /// `deleting` says whether the request was a `DELETE`.
    pub fn ends(deleting: bool, status: StatusCode) -> bool {
        status == StatusCode::NOT_FOUND || (deleting && status.is_success())
    }

    /// Ends the record of `id`; resolves to whether a live record was there.
    ///
    /// # Cancel safety
    ///
    /// As [`SessionStore::remove`]: dropped early, the record may or may not be gone.
    pub fn end(&self, id: &SessionId) -> StoreFuture<bool> {
        self.store.remove(id)
    }
}

impl fmt::Debug for SessionResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionResolver").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemorySessionStore;

    fn request(values: &[&str]) -> http::Request<()> {
        let mut request = http::Request::new(());
        for value in values {
            request
                .headers_mut()
                .append(MCP_SESSION_ID, value.parse().unwrap());
        }
        request
    }

    #[test]
    fn the_id_is_read_from_the_extensions_first_then_from_one_header() {
        assert_eq!(Presented::of(&request(&[])), Presented::Absent);
        assert_eq!(
            Presented::of(&request(&["s1"])),
            Presented::Id("s1".parse().unwrap())
        );
        assert_eq!(Presented::of(&request(&["s1", "s2"])), Presented::Invalid);
        let mut invalid = request(&[]);
        invalid.headers_mut().insert(
            MCP_SESSION_ID,
            http::HeaderValue::from_bytes(b"a b").unwrap(),
        );
        assert_eq!(Presented::of(&invalid), Presented::Invalid);
        let mut parsed = request(&["ignored"]);
        parsed
            .extensions_mut()
            .insert::<SessionId>("s9".parse().unwrap());
        assert_eq!(Presented::of(&parsed), Presented::Id("s9".parse().unwrap()));
    }

    #[tokio::test]
    async fn judged_with_the_binding_rule() {
        let store = MemorySessionStore::new();
        let alice = Principal::new("alice").with_issuer("i");
        let bob = Principal::new("bob").with_issuer("i");
        let bound: SessionId = "bound".parse().unwrap();
        let open: SessionId = "open".parse().unwrap();
        store
            .insert(SessionRecord::new(bound.clone()).with_principal(&alice))
            .await
            .unwrap();
        store
            .insert(SessionRecord::new(open.clone()))
            .await
            .unwrap();
        let resolver = SessionResolver::new(Arc::new(store));
        let judge = |id: &SessionId, p: Option<&Principal>| {
            Resolution::judge(resolver.store().get(id).into_ready().unwrap(), p)
        };
        assert!(matches!(
            judge(&bound, Some(&alice)),
            Resolution::Admitted(_)
        ));
        assert!(matches!(judge(&bound, Some(&bob)), Resolution::Foreign(_)));
        assert!(matches!(judge(&bound, None), Resolution::Foreign(_)));
        assert!(matches!(judge(&open, Some(&bob)), Resolution::Admitted(_)));
        assert!(matches!(judge(&open, None), Resolution::Admitted(_)));
        let unknown = judge(&"nope".parse().unwrap(), None);
        let refusal = unknown.refusal(RejectedBy::Affinity, None).unwrap();
        assert_eq!(refusal.status(), StatusCode::NOT_FOUND);
        assert_eq!(refusal.rejected_by(), RejectedBy::Affinity);
        assert!(
            Resolution::judge(Err(StoreError::timeout()), None)
                .refusal(RejectedBy::Session, None)
                .is_some_and(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        );
    }

    #[test]
    fn a_404_or_an_accepted_delete_ends_the_session() {
        assert!(SessionResolver::ends(false, StatusCode::NOT_FOUND));
        assert!(SessionResolver::ends(true, StatusCode::OK));
        assert!(SessionResolver::ends(true, StatusCode::NO_CONTENT));
        assert!(!SessionResolver::ends(true, StatusCode::METHOD_NOT_ALLOWED));
        assert!(!SessionResolver::ends(false, StatusCode::OK));
    }
}
