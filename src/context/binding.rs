//! [`BindingKey`]: the one place that knows how a session is bound to a principal (R32).

use std::fmt;
use std::sync::Arc;

use super::Principal;

/// The identity a legacy session is bound to: the principal's issuer and subject, nothing else
/// (scopes, client id and expiry change between tokens of the same user; R32 binds to the
/// user).
///
/// Stores keep it as a string (`issuer` `U+001F` `subject`), envelopes as a digest of the same
/// bytes, and every binding check in the crate goes through [`BindingKey::admits`], so the rule
/// exists once.
///
/// ```
/// use mcp_edge::context::{BindingKey, Principal};
///
/// let alice = Principal::new("alice").with_issuer("https://as.example");
/// let key = BindingKey::of(&alice);
/// assert!(key.matches(&alice.clone().with_scopes(["mcp:read"])));
/// assert!(!key.matches(&Principal::new("alice"))); // another issuer
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BindingKey(Arc<str>);

/// Separates issuer and subject; neither an issuer URL nor a `sub` claim holds it in practice,
/// and if one did, the lengths still have to agree.
const SEPARATOR: u8 = 0x1f;

impl BindingKey {
    /// The key of `principal`: its issuer (empty when none) and subject.
    pub fn of(principal: &Principal) -> Self {
        let issuer = principal.issuer().unwrap_or_default();
        let subject = principal.subject();
        let mut key = String::with_capacity(issuer.len() + 1 + subject.len());
        key.push_str(issuer);
        key.push(char::from(SEPARATOR));
        key.push_str(subject);
        BindingKey(key.into())
    }

    /// A key as a store recorded it (the string [`BindingKey::as_str`] gave).
    pub fn from_stored(key: impl Into<Arc<str>>) -> Self {
        BindingKey(key.into())
    }

    /// The key as stores record it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string, for records that keep it without copying.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }

    /// The issuer part of the key (empty when the principal had none).
    pub fn issuer(&self) -> &str {
        self.split().0
    }

    /// The subject part of the key: for audit records of a refused foreign use, never for a
    /// response.
    pub fn subject(&self) -> &str {
        self.split().1
    }

    fn split(&self) -> (&str, &str) {
        self.0
            .split_once(char::from(SEPARATOR))
            .unwrap_or(("", &self.0))
    }

    /// Whether `principal` is the one this key names (same issuer, same subject), compared
    /// without allocating.
    pub fn matches(&self, principal: &Principal) -> bool {
        let bound = self.0.as_bytes();
        let issuer = principal.issuer().unwrap_or_default().as_bytes();
        let subject = principal.subject().as_bytes();
        bound.len() == issuer.len() + 1 + subject.len()
            && bound.starts_with(issuer)
            && bound[issuer.len()] == SEPARATOR
            && bound.ends_with(subject)
    }

    /// The binding rule, for a session bound to `bound` (or to no one) and a request made by
    /// `principal` (or by no one): an unbound session takes anyone, a bound one only the same
    /// issuer and subject.
    pub fn admits(bound: Option<&BindingKey>, principal: Option<&Principal>) -> bool {
        match (bound, principal) {
            (None, _) => true,
            (Some(bound), Some(principal)) => bound.matches(principal),
            (Some(_), None) => false,
        }
    }

    /// Feeds the key's bytes of `principal` to `write` piece by piece, without building the
    /// string: for digests of the binding (sealed session envelopes).
    pub fn digest_parts(principal: &Principal, mut write: impl FnMut(&[u8])) {
        write(principal.issuer().unwrap_or_default().as_bytes());
        write(&[SEPARATOR]);
        write(principal.subject().as_bytes());
    }
}

impl fmt::Debug for BindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (issuer, subject) = self.split();
        f.debug_struct("BindingKey")
            .field("issuer", &issuer)
            .field("subject", &subject)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_issuer_and_subject_only() {
        let alice = Principal::new("alice").with_issuer("https://as.example");
        let key = BindingKey::of(&alice);
        assert!(key.matches(&alice.clone().with_scopes(["x"]).with_client_id("c")));
        assert!(!key.matches(&Principal::new("alice")));
        assert!(!key.matches(&Principal::new("bob").with_issuer("https://as.example")));
        assert!(!key.matches(&Principal::new("alice").with_issuer("https://other.example")));
        // No confusion across the separator.
        let split = Principal::new("e/alice").with_issuer("https://as.exampl");
        assert!(!key.matches(&split));
        assert_eq!(BindingKey::from_stored(key.as_str()), key);
        assert_eq!(key.issuer(), "https://as.example");
        assert_eq!(key.subject(), "alice");
        assert_eq!(BindingKey::of(&Principal::new("bob")).subject(), "bob");
    }

    #[test]
    fn unbound_admits_anyone_bound_only_its_principal() {
        let alice = Principal::new("alice").with_issuer("i");
        let key = BindingKey::of(&alice);
        assert!(BindingKey::admits(None, None));
        assert!(BindingKey::admits(None, Some(&alice)));
        assert!(BindingKey::admits(Some(&key), Some(&alice)));
        assert!(!BindingKey::admits(Some(&key), None));
        assert!(!BindingKey::admits(
            Some(&key),
            Some(&Principal::new("bob"))
        ));
    }

    #[test]
    fn digest_parts_are_the_stored_bytes() {
        let alice = Principal::new("alice").with_issuer("i");
        let mut bytes = Vec::new();
        BindingKey::digest_parts(&alice, |part| bytes.extend_from_slice(part));
        assert_eq!(bytes, BindingKey::of(&alice).as_str().as_bytes());
    }
}
