//! The `oauth2` login flow converse 1.3.2 documented, made safe: the `state` is kept
//! server-side, accepted once and only from the browser that started the login ([`pending`]);
//! PKCE (S256) protects the code exchange; the callback URL is exact and absolute; only the
//! accounts `MCP_OAUTH_ALLOWED_USERS` names get a token ([`identity`]: anyone can make an
//! account at GitHub or Google); and the token the user receives is a JWT signed by this server
//! that does NOT contain the upstream access token (which never leaves the server).

mod identity;
mod pending;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use converse_config::{AllowedUser, AuthConfig, JwtAlgorithm};
use ipnet::IpNet;
use jsonwebtoken::{EncodingKey, Header};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::jwt::algorithm;
use crate::http_server::gate::client_ip::{ClientIp, client_ip};
use crate::http_server::gate::rate_limit::Limiter;
use crate::http_server::gate::with_retry_after;
pub use identity::Identity;
use pending::{PendingLogins, Refused, STATE_TTL};

/// The cookie that binds a login to the browser that started it.
const LOGIN_COOKIE: &str = "converse_oauth_login";
/// Logins a client address may start per minute: a person needs a few; more is a flood.
const AUTHORIZE_PER_MINUTE: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum OAuthSetupError {
    #[error("{0} is required for MCP_AUTH_STRATEGY=oauth2")]
    Missing(&'static str),
}

pub struct OAuthFlow {
    client_id: String,
    client_secret: SecretString,
    auth_url: Url,
    token_url: Url,
    userinfo_url: Option<Url>,
    callback_url: Url,
    scope: String,
    allowed_users: Vec<AllowedUser>,
    issuer: String,
    audience: Option<String>,
    expires_in: Duration,
    algorithm: JwtAlgorithm,
    signing_key: EncodingKey,
    http: reqwest::Client,
    pending: PendingLogins,
    /// `/oauth/authorize` per client address.
    limiter: Arc<Limiter>,
    trusted_proxies: Vec<IpNet>,
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

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
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
            allowed_users: o.allowed_users.clone(),
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
            pending: PendingLogins::default(),
            limiter: Arc::new(
                Limiter::new(Duration::from_secs(60), AUTHORIZE_PER_MINUTE)
                    .ok_or(OAuthSetupError::Missing("a valid rate limit"))?,
            ),
            trusted_proxies: Vec::new(),
        })
    }

    /// Believe `X-Forwarded-For` from these proxies when limiting `/oauth/authorize`.
    pub fn with_trusted_proxies(mut self, proxies: Vec<IpNet>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// The `/oauth/authorize` limiter, for the housekeeping that forgets idle addresses.
    pub fn limiter(&self) -> Arc<Limiter> {
        self.limiter.clone()
    }

    /// The URL a user's browser is sent to, with a fresh state and PKCE challenge, and the
    /// login cookie's value for that browser.
    fn start(&self) -> (Url, String) {
        let state = random_token();
        let verifier = random_token();
        let browser = random_token();
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        self.pending
            .insert(state.clone(), verifier, browser.clone());
        let mut url = self.auth_url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", self.callback_url.as_str())
            .append_pair("scope", &self.scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        (url, browser)
    }

    /// `Set-Cookie` for the login cookie: only sent back to the callback, never to scripts,
    /// over HTTPS when the callback is HTTPS. `Lax` still sends it on the identity provider's
    /// top-level redirect to the callback.
    fn login_cookie(&self, value: &str, max_age: Duration) -> Option<HeaderValue> {
        let secure = if self.callback_url.scheme() == "https" {
            "; Secure"
        } else {
            ""
        };
        HeaderValue::from_str(&format!(
            "{LOGIN_COOKIE}={value}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.callback_url.path(),
            max_age.as_secs()
        ))
        .ok()
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

    async fn get_json(&self, url: &Url, access_token: &str) -> Option<Value> {
        let result = self
            .http
            .get(url.clone())
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .and_then(|r| r.error_for_status());
        match result {
            Ok(r) => r.json().await.ok(),
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "identity provider request failed");
                None
            }
        }
    }

    /// The user info, and who it names. GitHub's `/user` does not say whether its e-mail is
    /// verified; its verified addresses are listed at `/user/emails` (scope `user:email`).
    async fn identify(&self, access_token: &str) -> (Value, Identity) {
        let Some(url) = &self.userinfo_url else {
            return (json!({}), Identity::default());
        };
        let user = self.get_json(url, access_token).await.unwrap_or(json!({}));
        let mut identity = Identity::from_userinfo(&user);
        if Identity::needs_email_list(&user) && url.path().ends_with("/user") {
            let mut emails = url.clone();
            emails.set_path(&format!("{}/emails", url.path()));
            if let Some(list) = self.get_json(&emails, access_token).await {
                identity.add_listed_emails(&list);
            }
        }
        (user, identity)
    }

    /// Signs this server's own token for the user. Only identity claims go in; the e-mail only
    /// when verified.
    fn mint(&self, identity: &Identity) -> Option<Result<String, jsonwebtoken::errors::Error>> {
        let sub = identity.principal()?;
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": sub,
            "oauth2": true,
            "iat": now,
            "nbf": now,
            "exp": now + self.expires_in.as_secs(),
        });
        if let Some(email) = identity.verified_emails.first() {
            claims["email"] = json!(email);
        }
        if let Some(name) = identity.name.as_ref().or(identity.login.as_ref()) {
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

/// `GET /oauth/authorize`: sends the browser to the identity provider, with the login cookie.
/// Limited per client address: each call holds a pending login for [`STATE_TTL`].
pub async fn authorize(
    State(flow): State<Arc<OAuthFlow>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let ip = client_ip(peer, &headers, &flow.trusted_proxies);
    if let Err(wait) = flow.limiter.check(&ClientIp::bucket_of(Some(ClientIp(ip)))) {
        return with_retry_after(
            error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "too many logins started from this address; try again later",
            ),
            wait,
        );
    }
    let (url, browser) = flow.start();
    let mut response = Redirect::to(url.as_str()).into_response();
    if let Some(cookie) = flow.login_cookie(&browser, STATE_TTL) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /oauth/callback`: checks the state and the browser, exchanges the code, checks the
/// allow-list, answers with this server's token.
pub async fn callback(
    State(flow): State<Arc<OAuthFlow>>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let mut response = finish_login(&flow, cookie(&headers, LOGIN_COOKIE), params).await;
    // The login is over, whichever way: the cookie has done its work.
    if let Some(expired) = flow.login_cookie("", Duration::ZERO) {
        response.headers_mut().insert(header::SET_COOKIE, expired);
    }
    response
}

async fn finish_login(flow: &OAuthFlow, browser: Option<&str>, params: CallbackParams) -> Response {
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
    let verifier = match flow.pending.take(&state, browser) {
        Ok(verifier) => verifier,
        Err(Refused::UnknownState) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_state",
                "unknown, expired or already used state; start again at /oauth/authorize",
            );
        }
        Err(Refused::OtherBrowser) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_state",
                "this login was not started in this browser (login cookie missing or different); \
                 start again at /oauth/authorize",
            );
        }
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
    let (user, identity) = flow.identify(&upstream).await;
    if identity.principal().is_some() && !identity.is_allowed(&flow.allowed_users) {
        tracing::info!(
            subject = identity.subject.as_deref().unwrap_or("-"),
            login = identity.login.as_deref().unwrap_or("-"),
            "oauth2 login refused: not in MCP_OAUTH_ALLOWED_USERS"
        );
        return error_page(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this account may not use this server (it is not in MCP_OAUTH_ALLOWED_USERS)",
        );
    }
    match flow.mint(&identity) {
        None => error_page(
            StatusCode::BAD_GATEWAY,
            "no_identity",
            "the identity provider did not say who logged in (no subject, login or verified \
             e-mail); check MCP_OAUTH_USERINFO_URL and MCP_OAUTH_SCOPE",
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
