//! [`StaticTokens`]: API keys for internal deployments.

use std::future::{Ready, ready};

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{Principal, TokenVerifier, VerifyError};

/// A fixed set of API keys, each mapped to a [`Principal`] (with its scopes).
///
/// Keys are kept only as SHA-256 digests, and a presented token is compared with **every**
/// digest in constant time (no early exit), so neither memory nor timing gives a key away.
/// Meant for a handful of keys: the check is linear in their number.
///
/// ```
/// use mcp_edge::auth::{Principal, StaticTokens, TokenVerifier};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let tokens = StaticTokens::new()
///     .token("s3cret-key", Principal::new("ci").with_scopes(["mcp:tools"]));
/// assert_eq!(tokens.verify("s3cret-key").await.unwrap().subject(), "ci");
/// assert!(tokens.verify("guess").await.is_err());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct StaticTokens {
    entries: Vec<([u8; 32], Principal)>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("keys", &self.entries.len())
            .finish()
    }
}

impl StaticTokens {
    /// No keys yet.
    pub fn new() -> Self {
        StaticTokens::default()
    }

    /// Accepts `token` as `principal`. The token itself is not kept.
    pub fn token(mut self, token: impl AsRef<[u8]>, principal: Principal) -> Self {
        self.entries.push((digest(token.as_ref()), principal));
        self
    }

    /// Accepts a key already stored as its SHA-256 digest (e.g. from a secrets file).
    pub fn sha256(mut self, digest: [u8; 32], principal: Principal) -> Self {
        self.entries.push((digest, principal));
        self
    }

    /// The principal of `token`, if it is one of the keys.
    pub fn lookup(&self, token: &str) -> Option<&Principal> {
        let presented = digest(token.as_bytes());
        // The index of the matching key, chosen without a branch on any comparison.
        let mut found = 0u64;
        let mut any = subtle::Choice::from(0);
        for (index, (stored, _)) in (0u64..).zip(&self.entries) {
            let equal = stored.ct_eq(&presented);
            found.conditional_assign(&index, equal);
            any |= equal;
        }
        let found = usize::try_from(found).ok()?;
        bool::from(any).then(|| &self.entries[found].1)
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl TokenVerifier for StaticTokens {
    type Future = Ready<Result<Principal, VerifyError>>;

    fn verify(&self, token: &str) -> Self::Future {
        ready(
            self.lookup(token)
                .cloned()
                .ok_or_else(|| VerifyError::invalid("unknown token")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_only_by_their_exact_value() {
        let tokens = StaticTokens::new()
            .token("alpha", Principal::new("a"))
            .token("beta", Principal::new("b"));
        assert_eq!(tokens.lookup("beta").unwrap().subject(), "b");
        assert!(tokens.lookup("bet").is_none());
        assert!(tokens.lookup("").is_none());
        let pre = StaticTokens::new().sha256(digest(b"gamma"), Principal::new("g"));
        assert_eq!(pre.lookup("gamma").unwrap().subject(), "g");
        assert!(!format!("{tokens:?}").contains("alpha"));
    }
}
