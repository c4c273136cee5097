//! [`TokenVerifier`]: from a presented bearer token to a [`Principal`], or a typed failure.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::Principal;

/// Turns a bearer token into a [`Principal`].
///
/// The layer calls [`verify`](TokenVerifier::verify) with the token exactly as presented
/// (without the `Bearer ` prefix). The returned future owns what it needs: copy the token if
/// you need it across an `.await`.
///
/// A closure `Fn(&str) -> impl Future<Output = Result<Principal, VerifyError>>` is a verifier:
///
/// ```
/// use mcp_edge::auth::{Principal, TokenVerifier, VerifyError};
///
/// let verifier = |token: &str| {
///     let ok = token == "let-me-in";
///     async move {
///         if ok {
///             Ok(Principal::new("ops").with_scopes(["mcp:tools"]))
///         } else {
///             Err(VerifyError::invalid("unknown token"))
///         }
///     }
/// };
/// # fn is_verifier<V: TokenVerifier>(_: &V) {}
/// # is_verifier(&verifier);
/// ```
///
/// # Cancel safety
///
/// The layer drops the future when the client goes away. Verifiers that fetch keys over the
/// network do so in a way that survives the drop (a fetch in flight is shared, not owned by
/// one request).
pub trait TokenVerifier: Send + Sync + 'static {
    /// The verification in progress.
    type Future: Future<Output = Result<Principal, VerifyError>> + Send + 'static;

    /// Verifies `token`.
    fn verify(&self, token: &str) -> Self::Future;
}

impl<F, Fut> TokenVerifier for F
where
    F: Fn(&str) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Principal, VerifyError>> + Send + 'static,
{
    type Future = Fut;

    fn verify(&self, token: &str) -> Fut {
        self(token)
    }
}

impl<V: TokenVerifier + ?Sized> TokenVerifier for Arc<V> {
    type Future = V::Future;

    fn verify(&self, token: &str) -> V::Future {
        (**self).verify(token)
    }
}

/// Why a token was not accepted.
///
/// The description travels to the client in `error_description` (after escaping), so it must
/// never contain the token or secrets: verifiers in this crate use fixed texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    kind: VerifyErrorKind,
    description: Cow<'static, str>,
}

/// The class of a [`VerifyError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyErrorKind {
    /// The token is malformed, badly signed, not for us, or otherwise refused: `401`,
    /// `error="invalid_token"`.
    Invalid,
    /// The token has expired: `401`, `error="invalid_token"`.
    Expired,
    /// The verifier could not decide (no keys could be had, the introspection endpoint is
    /// down): still `401`, `error="invalid_token"`, never a 5xx or a hang, so clients
    /// re-authenticate rather than retry blindly.
    Unavailable,
}

impl VerifyError {
    /// A refused token.
    pub fn invalid(description: impl Into<Cow<'static, str>>) -> Self {
        VerifyError {
            kind: VerifyErrorKind::Invalid,
            description: description.into(),
        }
    }

    /// An expired token.
    pub fn expired() -> Self {
        VerifyError {
            kind: VerifyErrorKind::Expired,
            description: Cow::Borrowed("the token has expired"),
        }
    }

    /// The verifier could not decide.
    pub fn unavailable(description: impl Into<Cow<'static, str>>) -> Self {
        VerifyError {
            kind: VerifyErrorKind::Unavailable,
            description: description.into(),
        }
    }

    /// The class of failure.
    pub fn kind(&self) -> VerifyErrorKind {
        self.kind
    }

    /// A short text safe to send to the client.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::error::Error for VerifyError {}
