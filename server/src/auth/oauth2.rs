//! The `oauth2` login flow converse 1.3.2 documented, made safe: the `state` is
//! kept server-side and accepted once, PKCE (S256) protects the code exchange,
//! the callback URL is exact and absolute, and the token the user receives is a
//! JWT signed by this server that does NOT contain the upstream access token
//! (the upstream token never leaves the server).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use converse_config::{AuthConfig, JwtAlgorithm};
use jsonwebtoken::{EncodingKey, Header};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use url::Url;

use super::jwt::algorithm;

/// A login must finish within this time.
const STATE_TTL: Duration = Duration::from_secs(600);
/// Pending logins kept at once; beyond it the oldest are dropped (bounded memory
/// against a flood of /oauth/authorize requests).
const MAX_PENDING: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum OAuthSetupError {
    #[error("{0} is required for MCP_AUTH_STRATEGY=oauth2")]
    Missing(&'static str),
}

struct Pending {
    verifier: String,
    created: Instant,
}

pub struct OAuthFlow {
    client_id: String,
    client_secret: SecretString,
    auth_url: Url,
    token_url: Url,
    userinfo_url: Option<Url>,
    callback_url: Url,
    scope: String,
    issuer: String,
    audience: Option<String>,
    expires_in: Duration,
    algorithm: JwtAlgorithm,
    signing_key: EncodingKey,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for OAuthFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthFlow")
            .field("client_id", &self.client_id)
            .field("auth_url", &self.auth_url.as_str())
            .finish_non_exhaustive()
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl OAuthFlow {
    pub fn new(auth: &AuthConfig) -> Result<Self, OAuthSetupError> {
        let o = &auth.oauth;
        let secret = auth
            .jwt
            .secret
            .as_ref()
            .ok_or(OAuthSetupError::Missing("MCP_JWT_SECRET"))?;
        Ok(Self {
            client_id: o
                .client_id
                .clone()
                .ok_or(OAuthSetupError::Missing("MCP_OAUTH_CLIENT_ID"))?,
            client_secret: o
                .client_secret
                .clone()
                .ok_or(OAuthSetupError::Missing("MCP_OAUTH_CLIENT_SECRET"))?,
            auth_url: o
                .auth_url
                .clone()
                .ok_or(OAuthSetupError::Missing("MCP_OAUTH_AUTH_URL"))?,
            token_url: o
                .token_url
                .clone()
                .ok_or(OAuthSetupError::Missing("MCP_OAUTH_TOKEN_URL"))?,
            userinfo_url: o.userinfo_url.clone(),
            callback_url: o
                .callback_url
                .clone()
                .ok_or(OAuthSetupError::Missing("MCP_OAUTH_CALLBACK_URL"))?,
            scope: o.scope.clone(),
            issuer: auth.jwt.issuer.clone(),
            audience: auth.jwt.audience.clone(),
            expires_in: auth.jwt.expires_in,
            algorithm: auth.jwt.algorithm,
            signing_key: EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                // GitHub's API refuses requests without a User-Agent.
                .user_agent(concat!("converse-server/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|_| OAuthSetupError::Missing("a working TLS setup"))?,
            pending: Mutex::new(HashMap::new()),
        })
    }

    /// The URL a user's browser is sent to, with a fresh state and PKCE challenge.
    async fn start(&self) -> Url {
        let state = random_token();
        let verifier = random_token();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        {
            let mut pending = self.pending.lock().await;
            pending.retain(|_, p| p.created.elapsed() < STATE_TTL);
            if pending.len() >= MAX_PENDING
                && let Some(oldest) = pending
                    .iter()
                    .min_by_key(|(_, p)| p.created)
                    .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
            pending.insert(
                state.clone(),
                Pending {
                    verifier,
                    created: Instant::now(),
                },
            );
        }
        let mut url = self.auth_url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", self.callback_url.as_str())
            .append_pair("scope", &self.scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        url
    }

    /// Accepts a state once: a replayed, unknown or expired state is refused.
    async fn take_state(&self, state: &str) -> Option<String> {
        let mut pending = self.pending.lock().await;
        let entry = pending.remove(state)?;
        (entry.created.elapsed() < STATE_TTL).then_some(entry.verifier)
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Result<String, String> {
        let response = self
            .http
            .post(self.token_url.clone())
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            // GitHub answers form-encoded unless asked for JSON.
            .header("accept", "application/json")
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.callback_url.as_str()),
                ("client_id", self.client_id.as_str()),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .map_err(|e| format!("token endpoint unreachable: {}", e.without_url()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|_| format!("token endpoint answered HTTP {status} without JSON"))?;
        if !status.is_success() || body.get("error").is_some() {
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error");
            return Err(format!("the identity provider refused the code ({error})"));
        }
        body.get("access_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "token endpoint answered without access_token".to_string())
    }

    async fn userinfo(&self, access_token: &str) -> Value {
        let Some(url) = &self.userinfo_url else {
            return json!({});
        };
        let result = self
            .http
            .get(url.clone())
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(|r| r.error_for_status());
        match result {
            Ok(r) => r.json().await.unwrap_or_else(|_| json!({})),
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "userinfo request failed");
                json!({})
            }
        }
    }

    /// Signs this server's own token for the user. Only identity claims go in.
    /// `None` when the user info names nobody: then there is no one to issue a
    /// token to (a shared fallback identity would merge every user into one).
    fn mint(&self, user: &Value) -> Option<Result<String, jsonwebtoken::errors::Error>> {
        let text = |k: &str| user.get(k).and_then(Value::as_str).map(str::to_string);
        let sub = text("sub")
            .or_else(|| {
                user.get("id")
                    .filter(|v| !v.is_null())
                    .map(|v| v.to_string().trim_matches('"').to_string())
            })
            .or_else(|| text("login"))
            .or_else(|| text("email"))
            .filter(|s| !s.is_empty())?;
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "oauth2": true,
            "iat": now,
            "nbf": now,
            "exp": now + self.expires_in.as_secs(),
        });
        if let Some(email) = text("email") {
            claims["email"] = json!(email);
        }
        if let Some(name) = text("name").or_else(|| text("login")) {
            claims["name"] = json!(name);
        }
        if let Some(aud) = &self.audience {
            claims["aud"] = json!(aud);
        }
        Some(jsonwebtoken::encode(
            &Header::new(algorithm(self.algorithm)),
            &claims,
            &self.signing_key,
        ))
    }
}

fn error_page(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// `GET /oauth/authorize`: sends the browser to the identity provider.
pub async fn authorize(State(flow): State<Arc<OAuthFlow>>) -> Response {
    Redirect::to(flow.start().await.as_str()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /oauth/callback`: checks the state, exchanges the code, answers with
/// this server's token.
pub async fn callback(
    State(flow): State<Arc<OAuthFlow>>,
    Query(params): Query<CallbackParams>,
) -> Response {
    if let Some(error) = params.error {
        return error_page(
            StatusCode::BAD_REQUEST,
            "access_denied",
            &format!("the identity provider reported: {error}"),
        );
    }
    let Some(state) = params.state.filter(|s| !s.is_empty()) else {
        return error_page(StatusCode::BAD_REQUEST, "invalid_request", "missing state");
    };
    let Some(verifier) = flow.take_state(&state).await else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_state",
            "unknown, expired or already used state; start again at /oauth/authorize",
        );
    };
    let Some(code) = params.code.filter(|c| !c.is_empty()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "missing authorization code",
        );
    };
    let upstream = match flow.exchange(&code, &verifier).await {
        Ok(token) => token,
        Err(message) => return error_page(StatusCode::BAD_GATEWAY, "upstream_error", &message),
    };
    let user = flow.userinfo(&upstream).await;
    match flow.mint(&user) {
        None => error_page(
            StatusCode::BAD_GATEWAY,
            "no_identity",
            "the identity provider did not say who logged in; set MCP_OAUTH_USERINFO_URL to its user-info endpoint",
        ),
        Some(Ok(token)) => Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": flow.expires_in.as_secs(),
            "user": user,
        }))
        .into_response(),
        Some(Err(_)) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "could not sign the token",
        ),
    }
}
