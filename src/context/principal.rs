//! [`Principal`]: who a verified token says the caller is.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

/// The caller, as established from a verified token by the auth layer.
///
/// Put in the request extensions (for the session layer's binding and your handlers) and in
/// the response extensions (for audit). Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    inner: Arc<PrincipalInner>,
}

#[derive(Debug, Clone, PartialEq)]
struct PrincipalInner {
    issuer: Option<Box<str>>,
    subject: Box<str>,
    client_id: Option<Box<str>>,
    scopes: BTreeSet<Box<str>>,
    audience: Vec<Box<str>>,
    expires_at: Option<SystemTime>,
    claims: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Principal {
    /// A principal with only a subject; add the rest with the `with_*` methods.
    pub fn new(subject: impl Into<Box<str>>) -> Self {
        Principal {
            inner: Arc::new(PrincipalInner {
                issuer: None,
                subject: subject.into(),
                client_id: None,
                scopes: BTreeSet::new(),
                audience: Vec::new(),
                expires_at: None,
                claims: None,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut PrincipalInner {
        Arc::make_mut(&mut self.inner)
    }

    /// Sets the issuer (`iss`).
    pub fn with_issuer(mut self, issuer: impl Into<Box<str>>) -> Self {
        self.inner_mut().issuer = Some(issuer.into());
        self
    }
    /// Sets the OAuth client id (`client_id` / `azp`).
    pub fn with_client_id(mut self, client_id: impl Into<Box<str>>) -> Self {
        self.inner_mut().client_id = Some(client_id.into());
        self
    }
    /// Sets the granted scopes.
    pub fn with_scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Box<str>>,
    {
        self.inner_mut().scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the audiences (`aud`).
    pub fn with_audience<I, T>(mut self, audience: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Box<str>>,
    {
        self.inner_mut().audience = audience.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the expiry (`exp`).
    pub fn with_expires_at(mut self, at: SystemTime) -> Self {
        self.inner_mut().expires_at = Some(at);
        self
    }
    /// Sets the raw claims.
    pub fn with_claims(mut self, claims: serde_json::Map<String, serde_json::Value>) -> Self {
        self.inner_mut().claims = Some(claims);
        self
    }

    /// The issuer, when the token had one.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }
    /// The subject.
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }
    /// The OAuth client id.
    pub fn client_id(&self) -> Option<&str> {
        self.inner.client_id.as_deref()
    }
    /// The granted scopes.
    pub fn scopes(&self) -> impl ExactSizeIterator<Item = &str> {
        self.inner.scopes.iter().map(|s| &**s)
    }
    /// Whether the principal holds exactly this scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.contains(scope)
    }
    /// The audiences.
    pub fn audience(&self) -> impl ExactSizeIterator<Item = &str> {
        self.inner.audience.iter().map(|s| &**s)
    }
    /// When the token expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.inner.expires_at
    }
    /// The raw claims, when the verifier keeps them.
    pub fn claims(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.inner.claims.as_ref()
    }

    /// A principal from verified token claims (a JWT payload, an introspection answer):
    /// `sub` (required), `iss`, `client_id` or `azp`, `scope` (space-separated) and/or `scp`
    /// (array), `aud` (string or array), `exp`; the claims themselves are kept.
    /// `None` without a string `sub`.
    pub fn from_claims(claims: serde_json::Map<String, serde_json::Value>) -> Option<Principal> {
        use serde_json::Value;
        let mut principal = Principal::new(claims.get("sub")?.as_str()?);
        if let Some(iss) = claims.get("iss").and_then(Value::as_str) {
            principal = principal.with_issuer(iss);
        }
        if let Some(client) = claims
            .get("client_id")
            .or_else(|| claims.get("azp"))
            .and_then(Value::as_str)
        {
            principal = principal.with_client_id(client);
        }
        let mut scopes: Vec<&str> = Vec::new();
        if let Some(scope) = claims.get("scope").and_then(Value::as_str) {
            scopes.extend(scope.split(' ').filter(|s| !s.is_empty()));
        }
        if let Some(Value::Array(scp)) = claims.get("scp") {
            scopes.extend(scp.iter().filter_map(Value::as_str));
        }
        principal = principal.with_scopes(scopes);
        match claims.get("aud") {
            Some(Value::String(aud)) => principal = principal.with_audience([aud.as_str()]),
            Some(Value::Array(aud)) => {
                principal = principal.with_audience(aud.iter().filter_map(Value::as_str))
            }
            _ => {}
        }
        if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
            principal = principal
                .with_expires_at(std::time::UNIX_EPOCH + std::time::Duration::from_secs(exp));
        }
        Some(principal.with_claims(claims))
    }

    /// The identity a session is bound to: issuer and subject (R32), as stores record it.
    /// See [`BindingKey`](super::BindingKey), which owns the rule.
    pub fn binding_key(&self) -> String {
        super::BindingKey::of(self).as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_and_accessors() {
        let p = Principal::new("alice")
            .with_issuer("https://as.example")
            .with_scopes(["mcp:read", "mcp:deploy"])
            .with_client_id("cli");
        assert_eq!(p.subject(), "alice");
        assert_eq!(p.issuer(), Some("https://as.example"));
        assert!(p.has_scope("mcp:deploy"));
        assert!(!p.has_scope("mcp:admin"));
        assert_eq!(p.scopes().len(), 2);
        assert_ne!(p.binding_key(), Principal::new("alice").binding_key());
    }
}
