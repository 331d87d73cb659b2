//! `oidc`: the MCP authorization spec's OAuth 2.1 resource server. Tokens come
//! from an external identity provider (Keycloak, Auth0, …) and are validated
//! against its JWKS; clients find the provider through the RFC 9728 Protected
//! Resource Metadata this server publishes.

use std::time::Duration;

use converse_config::OidcConfig;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::OnceCell;
use url::Url;

use super::jwks::{JwksCache, JwksError, MIN_REFRESH_INTERVAL, RecentFailure};
use super::jwt::{Claims, describe, validation};
use super::{AuthError, AuthSetupError};
use crate::principal::Principal;

#[derive(Debug)]
pub struct Oidc {
    issuer: Url,
    /// The resource identifier: the canonical URL of `/mcp` (RFC 9728 `resource`).
    public_url: Url,
    audience: String,
    jwks_url: Option<Url>,
    required_scopes: Vec<String>,
    http: reqwest::Client,
    /// Discovered once: the issuer string as the IdP spells it, and its JWKS URL.
    discovered: OnceCell<(String, String)>,
    /// A failed discovery is retried after an interval, not on every request.
    discovery_failure: RecentFailure,
    pub jwks: JwksCache,
}

#[derive(Deserialize)]
struct ProviderMetadata {
    issuer: String,
    jwks_uri: String,
}

/// The issuer as a string without the trailing slash `url` adds to a bare host.
fn issuer_text(url: &Url) -> String {
    let s = url.as_str();
    if url.path() == "/" {
        s.trim_end_matches('/').to_string()
    } else {
        s.to_string()
    }
}

impl Oidc {
    pub fn new(config: &OidcConfig) -> Result<Self, AuthSetupError> {
        let issuer = config.issuer.clone().ok_or(AuthSetupError::Key {
            var: "MCP_OIDC_ISSUER",
            message: "required for MCP_AUTH_STRATEGY=oidc".into(),
        })?;
        let public_url = config.public_url.clone().ok_or(AuthSetupError::Key {
            var: "MCP_PUBLIC_URL",
            message: "required for MCP_AUTH_STRATEGY=oidc".into(),
        })?;
        let audience = config
            .effective_audience()
            .unwrap_or_else(|| public_url.to_string());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(Self {
            issuer,
            public_url,
            audience,
            jwks_url: config.jwks_url.clone(),
            required_scopes: config.required_scopes.clone(),
            jwks: JwksCache::new(http.clone(), MIN_REFRESH_INTERVAL),
            http,
            discovered: OnceCell::new(),
            discovery_failure: RecentFailure::new(MIN_REFRESH_INTERVAL),
        })
    }

    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// The path of the Protected Resource Metadata of the MCP endpoint: the
    /// well-known prefix with the resource's path appended (RFC 9728 §3.1).
    pub fn metadata_path(&self) -> String {
        format!(
            "/.well-known/oauth-protected-resource{}",
            self.public_url.path().trim_end_matches('/')
        )
    }

    /// The absolute URL of that document, as advertised in 401 challenges.
    pub fn metadata_url(&self) -> String {
        format!(
            "{}{}",
            self.public_url.origin().ascii_serialization(),
            self.metadata_path()
        )
    }

    /// The RFC 9728 document. The issuer is the one the IdP's own metadata
    /// names when discovery has run (clients compare it byte for byte).
    pub async fn metadata(&self) -> serde_json::Value {
        let issuer = match self.discover().await {
            Ok((issuer, _)) => issuer.clone(),
            Err(_) => issuer_text(&self.issuer),
        };
        let mut doc = json!({
            "resource": self.public_url.as_str(),
            "authorization_servers": [issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "Converse MCP server",
        });
        if !self.required_scopes.is_empty() {
            doc["scopes_supported"] = json!(self.required_scopes);
        }
        doc
    }

    /// Issuer and JWKS URL: configured, or from the IdP's metadata (OIDC
    /// discovery, then RFC 8414).
    async fn discover(&self) -> Result<&(String, String), AuthError> {
        if let Some(error) = self.discovery_failure.recent()
            && !self.discovered.initialized()
        {
            return Err(AuthError::Unavailable(error));
        }
        let result = self
            .discovered
            .get_or_try_init(|| async {
                let issuer = issuer_text(&self.issuer);
                if let Some(jwks) = &self.jwks_url {
                    return Ok((issuer, jwks.to_string()));
                }
                let candidates = [
                    format!("{issuer}/.well-known/openid-configuration"),
                    format!(
                        "{}/.well-known/oauth-authorization-server{}",
                        self.issuer.origin().ascii_serialization(),
                        self.issuer.path().trim_end_matches('/')
                    ),
                ];
                let mut last_error = String::new();
                for url in candidates {
                    match self.fetch_metadata(&url).await {
                        Ok(meta) if meta.issuer.trim_end_matches('/') == issuer => {
                            return Ok((meta.issuer, meta.jwks_uri));
                        }
                        Ok(meta) => {
                            last_error =
                                format!("{url} names issuer {} instead of {issuer}", meta.issuer)
                        }
                        Err(e) => last_error = e,
                    }
                }
                Err(format!("identity provider discovery failed: {last_error}"))
            })
            .await;
        self.discovery_failure.record(&result);
        result.map_err(AuthError::Unavailable)
    }

    async fn fetch_metadata(&self, url: &str) -> Result<ProviderMetadata, String> {
        self.http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.without_url().to_string())?
            .json()
            .await
            .map_err(|e| e.without_url().to_string())
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(describe(&e)))?;
        // Only asymmetric algorithms: an IdP never shares an HMAC secret with us,
        // and accepting HS* here is the classic algorithm-confusion hole.
        if header.alg.family() == AlgorithmFamily::Hmac {
            return Err(AuthError::Invalid(
                "the token's algorithm is not accepted".into(),
            ));
        }
        let (issuer, jwks_url) = self.discover().await?;
        let key = self
            .jwks
            .key(jwks_url, header.kid.as_deref())
            .await
            .map_err(|e| match e {
                JwksError::Fetch(m) => AuthError::Unavailable(m),
                JwksError::UnknownKey(_) => {
                    AuthError::Invalid("the token's signing key (kid) is not known".into())
                }
            })?;
        let alg: Algorithm = key.algorithm.unwrap_or(header.alg);
        if alg != header.alg || alg.family() != key.key.family() {
            return Err(AuthError::Invalid(
                "the token's algorithm does not match its key".into(),
            ));
        }
        // `https://idp.example.com` and `https://idp.example.com/` name the same
        // issuer; IdPs differ in which one their tokens carry.
        let issuers = [
            issuer.trim_end_matches('/').to_string(),
            format!("{}/", issuer.trim_end_matches('/')),
        ];
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &key.key,
            &validation(alg, &issuers, Some(&self.audience)),
        )
        .map_err(|e| AuthError::Invalid(describe(&e)))?;
        let scopes = data.claims.scopes();
        if !self.required_scopes.iter().all(|s| scopes.contains(s)) {
            return Err(AuthError::InsufficientScope {
                required: self.required_scopes.clone(),
            });
        }
        Ok(Principal {
            id: data.claims.principal_id()?,
            strategy: "oidc",
            scopes,
        })
    }
}
