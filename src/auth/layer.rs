use std::sync::Arc;

use tower_layer::Layer;

use super::metadata::ProtectedResource;
use super::policy::{AllowAll, Authorize, Scopes};
use super::service::Auth;
use super::verifier::TokenVerifier;

/// Default largest list response body the layer buffers to filter (1 MiB).
pub const DEFAULT_MAX_LIST_BYTES: usize = 1024 * 1024;

/// Checks the bearer token of every request and applies a scope policy; see the
/// [module docs](super).
pub struct AuthLayer<V, P = AllowAll> {
    pub(crate) verifier: Arc<V>,
    pub(crate) shared: Arc<Shared<P>>,
}

/// Configuration shared by every clone of the layer and its services.
pub(crate) struct Shared<P> {
    pub(crate) policy: Arc<P>,
    pub(crate) resource: ProtectedResource,
    pub(crate) challenge_scopes: Option<Box<str>>,
    pub(crate) filter_lists: bool,
    pub(crate) max_list_bytes: usize,
    pub(crate) forward_token: bool,
}

impl<P> Shared<P> {
    fn with_policy<Q>(&self, policy: Arc<Q>) -> Shared<Q> {
        Shared {
            policy,
            resource: self.resource.clone(),
            challenge_scopes: self.challenge_scopes.clone(),
            filter_lists: self.filter_lists,
            max_list_bytes: self.max_list_bytes,
            forward_token: self.forward_token,
        }
    }
    fn copy(&self) -> Shared<P> {
        self.with_policy(Arc::clone(&self.policy))
    }
}

impl<V, P> Clone for AuthLayer<V, P> {
    fn clone(&self) -> Self {
        AuthLayer {
            verifier: Arc::clone(&self.verifier),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<V, P> std::fmt::Debug for AuthLayer<V, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("resource", &self.shared.resource)
            .field("challenge_scopes", &self.shared.challenge_scopes)
            .field("filter_lists", &self.shared.filter_lists)
            .finish_non_exhaustive()
    }
}

impl<V: TokenVerifier> AuthLayer<V> {
    /// An auth layer that accepts what `verifier` accepts and allows every verified principal
    /// everything (add a policy with [`policy`](AuthLayer::policy)).
    ///
    /// Challenges carry no `resource_metadata` until
    /// [`protected_resource`](AuthLayer::protected_resource) names at least one authorization
    /// server (there is no metadata to point at before that).
    pub fn new(verifier: V) -> Self {
        AuthLayer {
            verifier: Arc::new(verifier),
            shared: Arc::new(Shared {
                policy: Arc::new(AllowAll),
                resource: ProtectedResource::default(),
                challenge_scopes: None,
                filter_lists: true,
                max_list_bytes: DEFAULT_MAX_LIST_BYTES,
                forward_token: false,
            }),
        }
    }
}

impl<V: TokenVerifier, P: Authorize> AuthLayer<V, P> {
    /// Uses `policy` to decide each operation (and to filter list results).
    pub fn policy<Q: Authorize>(self, policy: Q) -> AuthLayer<V, Q> {
        AuthLayer {
            verifier: self.verifier,
            shared: Arc::new(self.shared.with_policy(Arc::new(policy))),
        }
    }

    /// Where the protected resource metadata lives and what `resource` is: used for the
    /// `resource_metadata` parameter of every challenge (left out when `resource` has no
    /// authorization server). Use the same value for the
    /// [`ProtectedResourceMetadata`](super::ProtectedResourceMetadata) service, and its
    /// `resource` URL as your verifier's audience.
    pub fn protected_resource(mut self, resource: ProtectedResource) -> Self {
        self.edit(|s| s.resource = resource);
        self
    }

    /// The `scope` of 401 challenges when the policy names none for the request (R53), e.g.
    /// the baseline scopes of your `scopes_supported`.
    pub fn challenge_scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let joined = join(scopes.into_iter());
        self.edit(|s| s.challenge_scopes = (!joined.is_empty()).then(|| joined.into()));
        self
    }

    /// Whether `tools/list`, `prompts/list` and `resources/list` results are filtered to what
    /// the principal may call (default `true`).
    pub fn filter_lists(mut self, filter: bool) -> Self {
        self.edit(|s| s.filter_lists = filter);
        self
    }

    /// The largest list response (a JSON body, or one SSE event) buffered for filtering
    /// (default 1 MiB). A larger one is replaced by a JSON-RPC error: an unfiltered list is
    /// never let through.
    pub fn max_list_bytes(mut self, limit: usize) -> Self {
        self.edit(|s| s.max_list_bytes = limit);
        self
    }

    /// Whether the inner service still receives the `Authorization` header (default `false`:
    /// it is removed once verified, so no inner proxy or handler can pass the client's token
    /// upstream, R59; handlers get the [`Principal`](super::Principal) instead).
    pub fn forward_token(mut self, forward: bool) -> Self {
        self.edit(|s| s.forward_token = forward);
        self
    }

    fn edit(&mut self, f: impl FnOnce(&mut Shared<P>)) {
        let mut shared = self.shared.copy();
        f(&mut shared);
        self.shared = Arc::new(shared);
    }
}

pub(crate) fn join<T: AsRef<str>>(scopes: impl Iterator<Item = T>) -> String {
    let mut out = String::new();
    for s in scopes {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(s.as_ref());
    }
    out
}

pub(crate) fn join_scopes(scopes: &Scopes) -> String {
    join(scopes.iter())
}

impl<S, V, P> Layer<S> for AuthLayer<V, P> {
    type Service = Auth<S, V, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            verifier: Arc::clone(&self.verifier),
            shared: Arc::clone(&self.shared),
        }
    }
}
