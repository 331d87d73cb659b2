//! The HTTP application: probes and info outside the MCP service, and rmcp's
//! Streamable HTTP service on `/mcp` serving both protocol eras (2025-xx with
//! sessions, 2026-07-28 stateless) on one endpoint, behind the [`gate`].
//!
//! Layers, outermost first: CORS (preflights answered before anything else) →
//! routes. `/mcp` alone sits behind the gate (Host/Origin, body limit, auth, rate
//! limit, sessions), so a rejected request never reaches rmcp and never creates
//! a session; probes, `/info` and the OAuth metadata stay reachable without
//! credentials.

pub mod client_ip;
pub mod gate;
pub mod rate_limit;
pub mod sessions;

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use converse_config::{AuthStrategy, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::oauth2::OAuthFlow;
use crate::auth::{AuthSetupError, Authenticator};
use crate::mcp::ConverseMcp;
use crate::tools::Engine;
use gate::Gate;
use rate_limit::Limiter;
use sessions::Sessions;

/// Headers MCP clients send; always allowed in CORS preflights.
const MCP_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "authorization",
    "x-api-key",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "mcp-method",
    "mcp-name",
];

#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error(transparent)]
    OAuth(#[from] crate::auth::oauth2::OAuthSetupError),
}

/// State shared by the non-MCP routes.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub gate: Arc<Gate>,
    pub started: Instant,
}

/// rmcp's Streamable HTTP settings from our configuration. Host and Origin are
/// checked by the gate already; rmcp checks them again (defence in depth).
pub fn mcp_config(
    config: &ServerConfig,
    shutdown: CancellationToken,
) -> StreamableHttpServerConfig {
    let http = &config.http;
    let mut mcp = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_cancellation_token(shutdown)
        .with_max_request_body_bytes(usize::try_from(http.max_request_size).unwrap_or(usize::MAX));
    mcp = if http.dns_rebinding_protection {
        mcp.with_allowed_hosts(http.allowed_hosts.clone())
    } else {
        mcp.disable_allowed_hosts()
    };
    if !http.allowed_origins.is_empty() {
        mcp = mcp.with_allowed_origins(http.allowed_origins.clone());
    }
    mcp
}

fn cors(config: &ServerConfig) -> Option<CorsLayer> {
    let c = &config.http.cors;
    if !c.enabled {
        return None;
    }
    let origins = if c.any_origin() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            c.origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let mut headers: Vec<HeaderName> = MCP_REQUEST_HEADERS
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect();
    headers.extend(
        c.headers
            .iter()
            .filter_map(|h| HeaderName::from_bytes(h.trim().as_bytes()).ok()),
    );
    headers.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    headers.dedup();
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(
                c.methods
                    .iter()
                    .filter_map(|m| m.parse::<Method>().ok())
                    .collect::<Vec<_>>(),
            )
            .allow_headers(headers)
            .expose_headers([
                HeaderName::from_static("mcp-session-id"),
                HeaderName::from_static("www-authenticate"),
            ])
            .allow_credentials(c.credentials),
    )
}

/// The whole application router, and a task that must run alongside it to
/// forget idle rate-limit keys and closed sessions.
pub fn router(
    config: &ServerConfig,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
) -> Result<(Router, impl Future<Output = ()> + Send + 'static), HttpSetupError> {
    let mut session_config = SessionConfig::default();
    session_config.keep_alive = Some(config.http.session_timeout);
    let mut manager = LocalSessionManager::default();
    manager.session_config = session_config;
    let manager = Arc::new(manager);

    let http = &config.http;
    let auth = Authenticator::from_config(config)?;
    let session_auth = &config.auth.session_auth;
    let gate = Arc::new(Gate {
        required: config.auth.required && config.auth.strategy != AuthStrategy::None,
        session_auth_enabled: session_auth.enabled,
        require_for_session: session_auth.require_for_session,
        require_for_operations: session_auth.require_for_operations,
        limiter: http
            .rate_limit
            .enabled
            .then(|| Limiter::new(http.rate_limit.window, http.rate_limit.max_requests))
            .flatten(),
        sessions: Sessions::new(manager.clone(), http.max_concurrent_sessions as usize),
        max_body: http.max_request_size,
        body_timeout: http.request_timeout,
        trusted_proxies: http.trusted_proxies.clone(),
        allowed_hosts: http
            .dns_rebinding_protection
            .then(|| http.allowed_hosts.clone()),
        allowed_origins: http.allowed_origins.clone(),
        metrics: engine.metrics.clone(),
        auth,
    });

    // rmcp makes a handler per session (or per stateless request): clone a
    // prototype rather than rebuilding the tool and prompt routers each time.
    let prototype = ConverseMcp::new(engine.clone());
    let mcp = StreamableHttpService::new(
        move || Ok(prototype.clone()),
        manager,
        mcp_config(config, shutdown.clone()),
    );
    let mcp = Router::new()
        .fallback_service(mcp)
        .layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            gate::gate,
        ));

    let state = AppState {
        engine,
        gate: gate.clone(),
        started: Instant::now(),
    };
    // RFC 9728: the metadata of resource https://host/<path> lives at
    // /.well-known/oauth-protected-resource/<path>; the root form is served too.
    let mut metadata_paths = vec![
        "/.well-known/oauth-protected-resource".to_string(),
        "/.well-known/oauth-protected-resource/mcp".to_string(),
    ];
    if let Authenticator::Oidc(oidc) = &gate.auth
        && !metadata_paths.contains(&oidc.metadata_path())
    {
        metadata_paths.push(oidc.metadata_path());
    }
    let mut app = Router::new();
    for path in &metadata_paths {
        app = app.route(path, get(protected_resource));
    }
    let mut app = app
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .with_state(state)
        .nest_service("/mcp", mcp);
    if config.auth.strategy == AuthStrategy::OAuth2 {
        let flow = Arc::new(OAuthFlow::new(&config.auth)?);
        app = app.merge(
            Router::new()
                .route("/oauth/authorize", get(crate::auth::oauth2::authorize))
                .route("/oauth/callback", get(crate::auth::oauth2::callback))
                .with_state(flow),
        );
    }
    if let Some(cors) = cors(config) {
        app = app.layer(cors);
    }

    let interval = http.session_cleanup_interval;
    let housekeeping = async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = shutdown.cancelled() => return,
            }
            if let Some(l) = &gate.limiter {
                l.forget_idle();
            }
            gate.sessions.sweep().await;
        }
    };
    Ok((app, housekeeping))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reason": e.to_string() })),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let metrics = &state.engine.metrics;
    metrics
        .sessions
        .set(i64::try_from(state.gate.sessions.live().await).unwrap_or(i64::MAX));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.encode(),
    )
}

/// RFC 9728 Protected Resource Metadata, only in `oidc` mode.
async fn protected_resource(State(state): State<AppState>) -> impl IntoResponse {
    match &state.gate.auth {
        Authenticator::Oidc(oidc) => Json(oidc.metadata().await).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn info(State(state): State<AppState>) -> impl IntoResponse {
    let providers = state.engine.router.available();
    let sessions = state.gate.sessions.live().await;
    Json(json!({
        "name": "converse-server",
        "version": env!("CARGO_PKG_VERSION"),
        "transport": "http",
        "endpoints": { "mcp": "/mcp", "health": "/healthz", "ready": "/readyz", "info": "/info", "metrics": "/metrics" },
        "authentication": { "strategy": state.gate.auth.strategy(), "required": state.gate.required },
        "providers": providers,
        "warnings": if providers.is_empty() {
            vec!["no LLM provider is configured: set at least one provider API key"]
        } else {
            vec![]
        },
        "sessions": { "active": sessions, "max": state.gate.sessions.max },
        "uptimeSeconds": state.started.elapsed().as_secs(),
    }))
}
