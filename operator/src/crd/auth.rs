//! `spec.auth`: a discriminated union. `strategy` names the strategy; the block of the same name
//! holds its settings; CEL rules require that block and forbid the others.

use converse_config::vars::{
    MCP_API_KEYS, MCP_JWT_PUBLIC_KEY, MCP_JWT_SECRET, MCP_OAUTH_CLIENT_SECRET,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;
use super::rules;
use super::schema::{self, DURATION_PATTERN, MAX_URL};

/// How MCP clients authenticate.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[schemars(transform = rules::auth)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// none: no authentication. bearer: JWTs signed with a shared secret or a private key.
    /// apiKey: static keys in `X-API-Key` or `Authorization: Bearer`. oauth2: a login flow at an
    /// external provider, after which the server issues its own JWTs. oidc: an OAuth 2.0
    /// resource server as the MCP specification describes, accepting tokens of an external
    /// identity provider (checked against its JWKS).
    #[serde(default)]
    pub strategy: AuthStrategy,

    /// Reject unauthenticated requests (`MCP_AUTH_REQUIRE`). Default true unless the strategy
    /// is none; true with none is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,

    /// Settings of strategy apiKey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyAuth>,

    /// Settings of strategy bearer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<BearerAuth>,

    /// Settings of strategy oauth2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Auth>,

    /// Settings of strategy oidc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcAuth>,

    /// Which MCP requests need credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_auth: Option<SessionAuth>,
}

/// An authentication strategy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum AuthStrategy {
    /// No authentication.
    #[default]
    #[serde(rename = "none")]
    None,
    /// JWTs verified with a pinned algorithm.
    #[serde(rename = "bearer")]
    Bearer,
    /// Static API keys.
    #[serde(rename = "apiKey")]
    ApiKey,
    /// Login at an external OAuth2 provider; the server issues its own JWTs.
    #[serde(rename = "oauth2")]
    OAuth2,
    /// MCP-spec resource server for an external identity provider.
    #[serde(rename = "oidc")]
    Oidc,
}

impl AuthStrategy {
    pub const ALL: &'static [AuthStrategy] = &[
        AuthStrategy::None,
        AuthStrategy::Bearer,
        AuthStrategy::ApiKey,
        AuthStrategy::OAuth2,
        AuthStrategy::Oidc,
    ];

    /// The spelling in the CRD (and in `status.authStrategy`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthStrategy::None => "none",
            AuthStrategy::Bearer => "bearer",
            AuthStrategy::ApiKey => "apiKey",
            AuthStrategy::OAuth2 => "oauth2",
            AuthStrategy::Oidc => "oidc",
        }
    }

    /// The field of [`Auth`] holding this strategy's settings.
    pub fn block(self) -> Option<&'static str> {
        match self {
            AuthStrategy::None => None,
            AuthStrategy::Bearer => Some("bearer"),
            AuthStrategy::ApiKey => Some("apiKey"),
            AuthStrategy::OAuth2 => Some("oauth2"),
            AuthStrategy::Oidc => Some("oidc"),
        }
    }

    /// The server's own strategy type, which owns how it is spelled in the environment.
    pub fn to_config(self) -> converse_config::AuthStrategy {
        match self {
            AuthStrategy::None => converse_config::AuthStrategy::None,
            AuthStrategy::Bearer => converse_config::AuthStrategy::Bearer,
            AuthStrategy::ApiKey => converse_config::AuthStrategy::ApiKey,
            AuthStrategy::OAuth2 => converse_config::AuthStrategy::OAuth2,
            AuthStrategy::Oidc => converse_config::AuthStrategy::Oidc,
        }
    }
}

/// One Secret key the auth settings reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthSecretKey<'a> {
    /// Path of the referencing field under `spec.`, for messages and env origins.
    pub field: &'static str,
    pub secret: &'a SecretKeyRef,
    /// The variable the server reads the value from.
    pub var: &'static str,
    /// Fewest bytes the value must have (1: not empty).
    pub min_bytes: usize,
}

impl Auth {
    /// The Secret keys the selected strategy's settings reference, in the order the environment
    /// lists them. This is the one list of them: the dereference phase fetches and checks these
    /// (`references`), the environment reads each from its variable (`desired::env`). Blocks of
    /// other strategies are ignored (CEL forbids them anyway). The oauth2 signing secret the
    /// operator generates when `jwtSecretRef` is omitted is not the spec's, so not listed.
    pub fn secret_keys(&self) -> Vec<AuthSecretKey<'_>> {
        // The server refuses shorter HMAC keys; checking the length up front names the field.
        let jwt_min = converse_config::auth::MIN_JWT_SECRET_BYTES;
        let key = |field, secret, var, min_bytes| AuthSecretKey {
            field,
            secret,
            var,
            min_bytes,
        };
        let mut keys = Vec::new();
        match self.strategy {
            AuthStrategy::None | AuthStrategy::Oidc => {}
            AuthStrategy::ApiKey => {
                if let Some(a) = &self.api_key {
                    keys.push(key("auth.apiKey.secretRef", &a.secret_ref, MCP_API_KEYS, 1));
                }
            }
            AuthStrategy::Bearer => {
                if let Some(b) = &self.bearer {
                    if let Some(r) = &b.secret_ref {
                        keys.push(key("auth.bearer.secretRef", r, MCP_JWT_SECRET, jwt_min));
                    }
                    if let Some(r) = &b.public_key_secret_ref {
                        let field = "auth.bearer.publicKeySecretRef";
                        keys.push(key(field, r, MCP_JWT_PUBLIC_KEY, 1));
                    }
                }
            }
            AuthStrategy::OAuth2 => {
                if let Some(o) = &self.oauth2 {
                    let field = "auth.oauth2.clientSecretRef";
                    keys.push(key(field, &o.client_secret_ref, MCP_OAUTH_CLIENT_SECRET, 1));
                    if let Some(r) = &o.jwt_secret_ref {
                        keys.push(key("auth.oauth2.jwtSecretRef", r, MCP_JWT_SECRET, jwt_min));
                    }
                }
            }
        }
        keys
    }
}

/// Strategy apiKey.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAuth {
    /// Secret key holding the accepted keys (`MCP_API_KEYS`), separated by commas or newlines;
    /// several allow rotation. An entry `sha256:<64 hex digits>` is the SHA-256 of a key, so the
    /// Secret need not hold usable keys.
    pub secret_ref: SecretKeyRef,
}

/// Strategy bearer: JWTs verified with one pinned algorithm.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[schemars(transform = rules::bearer)]
#[serde(rename_all = "camelCase")]
pub struct BearerAuth {
    /// The only algorithm accepted (`MCP_JWT_ALGORITHM`). Default HS256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::jwt_algorithm")]
    pub algorithm: Option<converse_config::JwtAlgorithm>,

    /// `iss` claim tokens must carry (`MCP_JWT_ISSUER`). Default converse-mcp-server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub issuer: Option<String>,

    /// `aud` claim tokens must carry (`MCP_JWT_AUDIENCE`). Empty: not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub audience: Option<String>,

    /// HS256/HS384/HS512: Secret key holding the shared secret (at least 32 bytes). Exactly one
    /// of secretRef and publicKeySecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,

    /// RS*, ES*, PS*, EdDSA: Secret key holding the PEM public key. Exactly one of secretRef and
    /// publicKeySecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_secret_ref: Option<SecretKeyRef>,
}

/// Strategy oauth2: users log in at an external OAuth2 provider; the server then issues its own
/// JWTs (signed with HS256).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[schemars(transform = rules::oauth2)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Auth {
    /// Client id registered at the provider.
    #[schemars(length(min = 1, max = 1024))]
    pub client_id: String,

    /// Secret key holding the client secret.
    pub client_secret_ref: SecretKeyRef,

    /// The provider's authorization endpoint.
    #[schemars(length(min = 1, max = MAX_URL))]
    pub authorization_url: String,

    /// The provider's token endpoint.
    #[schemars(length(min = 1, max = MAX_URL))]
    pub token_url: String,

    /// The provider's user-info endpoint: it tells who logged in.
    #[schemars(length(min = 1, max = MAX_URL))]
    pub userinfo_url: String,

    /// Who may log in (`MCP_OAUTH_ALLOWED_USERS`); required, since anyone can make an account
    /// at the identity provider. Each entry is a subject id, a login, a verified e-mail address,
    /// or @example.com (every verified e-mail address of that domain); or a single entry '*'
    /// lets every account of the identity provider in (an explicit opt-in, logged as a warning).
    /// Anyone else gets 403 at the callback.
    // Optional for serde so a stored object without it still reads (validate then names the
    // field); required by a CEL rule at apply time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(min = 1, max = schema::MAX_ALLOWED_USERS),
        inner(length(min = 1, max = 320), regex(pattern = schema::ALLOWED_USER_PATTERN))
    )]
    pub allowed_users: Vec<String>,

    /// Requested scopes, space-separated. Default "openid profile email".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub scope: Option<String>,

    /// Absolute redirect URI registered at the provider. Default
    /// https://<ingress.host>/oauth/callback; required without an ingress host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_URL))]
    pub callback_url: Option<String>,

    /// Secret key holding the secret that signs the tokens the server issues (at least 32
    /// bytes). Omitted: the operator generates one and keeps it in the Secret
    /// `<name>-generated`, stable until that Secret is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_secret_ref: Option<SecretKeyRef>,

    /// Lifetime of the tokens the server issues, e.g. 24h. Default 24h.
    #[serde(default, rename = "tokenTTL", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub token_ttl: Option<String>,
}

/// Strategy oidc: the server is an OAuth 2.0 protected resource (RFC 9728), as the MCP
/// authorization specification describes; tokens come from an external identity provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcAuth {
    /// Issuer URL of the identity provider; its JWKS is discovered from it.
    #[schemars(length(min = 1, max = MAX_URL))]
    pub issuer: String,

    /// Audience tokens must carry. Default: status.url, the MCP endpoint's public URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub audience: Option<String>,

    /// JWKS URL, when discovery from the issuer is not wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_URL))]
    pub jwks_url: Option<String>,

    /// Scopes every token must carry; a token lacking one gets 403.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(min = 1, max = 256), regex(pattern = r"^\S+$"))
    )]
    pub required_scopes: Vec<String>,
}

/// Which MCP requests need credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAuth {
    /// Require credentials to open a session (`initialize`). Default false (sessions opened
    /// without credentials are limited to a quarter of the session cap), but true for oidc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_for_session: Option<bool>,

    /// Require credentials for requests inside a session. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_for_operations: Option<bool>,
}
