//! Authentication: one module per strategy, one [`Authenticator`] chosen by
//! `MCP_AUTH_STRATEGY`. Every strategy turns request headers into a
//! [`Principal`] or a typed [`AuthError`]; the HTTP gate turns errors into 401/403
//! responses with `WWW-Authenticate`, before rmcp ever sees the request.

pub mod api_key;
pub mod jwks;
pub mod jwt;
pub mod oauth2;
pub mod oidc;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use converse_config::{AuthConfig, AuthStrategy, ServerConfig};

use crate::principal::Principal;

/// Why a request was not authenticated. Messages are safe to show the client:
/// they never contain the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required")]
    Missing,
    #[error("invalid credentials: {0}")]
    Invalid(String),
    #[error("credentials in the URL are not accepted; send them in a header")]
    InQuery,
    #[error("insufficient scope: this server requires {}", required.join(" "))]
    InsufficientScope { required: Vec<String> },
    /// The identity provider could not be reached to check the token.
    #[error("cannot verify the token right now: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// RFC 6750 error code for `WWW-Authenticate`.
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            AuthError::Invalid(_) | AuthError::InQuery | AuthError::Unavailable(_) => {
                Some("invalid_token")
            }
            AuthError::InsufficientScope { .. } => Some("insufficient_scope"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("{var}: {message}")]
    Key { var: &'static str, message: String },
    #[error("cannot create the HTTP client for the identity provider: {0}")]
    Http(#[from] reqwest::Error),
}

/// The configured strategy, ready to check requests.
#[derive(Debug)]
pub enum Authenticator {
    None,
    ApiKey(api_key::ApiKeys),
    /// `bearer` and `oauth2` both check JWTs with a locally configured key; oauth2
    /// additionally requires the `oauth2: true` claim of the tokens it mints.
    Jwt(Box<jwt::StaticJwt>),
    Oidc(Arc<oidc::Oidc>),
}

/// The bearer token of an `Authorization` header, if any (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Query parameters that carry credentials in other servers (converse 1.3.2 took
/// `?api_key=`). They are refused outright, so a key never lands in access logs
/// unnoticed.
pub fn credentials_in_query(query: Option<&str>) -> bool {
    let Some(query) = query else { return false };
    // Names are compared decoded (`api%5Fkey` is `api_key`), and a name that
    // itself hides an `=` (`api_key%3Dsecret`) is checked up to it.
    url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| {
        let name = name
            .split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        matches!(
            name.as_str(),
            "api_key" | "apikey" | "api-key" | "access_token" | "token" | "key"
        )
    })
}

impl Authenticator {
    pub fn from_config(config: &ServerConfig) -> Result<Self, AuthSetupError> {
        let auth: &AuthConfig = &config.auth;
        Ok(match auth.strategy {
            AuthStrategy::None => Authenticator::None,
            AuthStrategy::ApiKey => Authenticator::ApiKey(api_key::ApiKeys::new(&auth.api_keys)),
            AuthStrategy::Bearer => {
                Authenticator::Jwt(Box::new(jwt::StaticJwt::bearer(&auth.jwt)?))
            }
            AuthStrategy::OAuth2 => {
                Authenticator::Jwt(Box::new(jwt::StaticJwt::oauth2(&auth.jwt)?))
            }
            AuthStrategy::Oidc => Authenticator::Oidc(Arc::new(oidc::Oidc::new(&auth.oidc)?)),
        })
    }

    pub fn strategy(&self) -> &'static str {
        match self {
            Authenticator::None => "none",
            Authenticator::ApiKey(_) => "api_key",
            Authenticator::Jwt(j) => j.strategy(),
            Authenticator::Oidc(_) => "oidc",
        }
    }

    /// `Ok(None)`: no credentials were presented (the caller decides whether that
    /// is acceptable). A presented but bad credential is always an error.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
        match self {
            Authenticator::None => Ok(None),
            Authenticator::ApiKey(keys) => keys.authenticate(headers),
            Authenticator::Jwt(jwt) => match bearer_token(headers) {
                None => Ok(None),
                Some(token) => jwt.verify(token).map(Some),
            },
            Authenticator::Oidc(oidc) => match bearer_token(headers) {
                None => Ok(None),
                Some(token) => oidc.verify(token).await.map(Some),
            },
        }
    }

    /// The `WWW-Authenticate` challenge for a failure.
    pub fn challenge(&self, error: &AuthError) -> String {
        let mut params = vec!["realm=\"mcp\"".to_string()];
        if let Authenticator::Oidc(oidc) = self {
            params.push(format!("resource_metadata=\"{}\"", oidc.metadata_url()));
            if !oidc.required_scopes().is_empty() {
                params.push(format!("scope=\"{}\"", oidc.required_scopes().join(" ")));
            }
        }
        if let Some(code) = error.oauth_error() {
            params.push(format!("error=\"{code}\""));
            // Quotes and backslashes cannot appear in a quoted-string unescaped.
            let description = error.to_string().replace(['"', '\\'], "'");
            params.push(format!("error_description=\"{description}\""));
        }
        format!("Bearer {}", params.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&h), None);
    }

    #[test]
    fn credential_query_parameters_are_detected() {
        assert!(credentials_in_query(Some("api_key=x")));
        assert!(credentials_in_query(Some("a=1&ACCESS_TOKEN=y")));
        assert!(!credentials_in_query(Some("session=1")));
        assert!(
            credentials_in_query(Some("api%5Fkey=x")),
            "percent-encoded names"
        );
        assert!(credentials_in_query(Some("api_key%3Dx")), "a hidden =");
        assert!(credentials_in_query(Some("x=1&Api-Key=2")));
        assert!(!credentials_in_query(None));
    }

    proptest::proptest! {
        #[test]
        fn header_parsing_never_panics(value in "\\PC*") {
            let mut h = HeaderMap::new();
            if let Ok(v) = value.parse() {
                h.insert(AUTHORIZATION, v);
            }
            let _ = bearer_token(&h);
            let _ = credentials_in_query(Some(&value));
        }
    }
}
