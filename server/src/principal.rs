//! Who is calling. The HTTP auth layer puts a [`Principal`] into the request's
//! extensions; the tools read it (through rmcp's copy of the HTTP request parts)
//! to bind conversations to their owner.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable id: a key id, a JWT `sub`, … Never a secret.
    pub id: String,
    /// The strategy that authenticated it (`api_key`, `bearer`, `oauth2`, `oidc`).
    pub strategy: &'static str,
    pub scopes: Vec<String>,
}
