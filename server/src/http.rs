//! The HTTP application: probes and info outside the MCP service, and rmcp's
//! Streamable HTTP service on `/mcp` serving both protocol eras (2025-xx with
//! sessions, 2026-07-28 stateless) on one endpoint.
//!
//! Security layers (auth, rate limits, session guard) wrap the `/mcp` service
//! here, so a rejected request never reaches rmcp and never creates a session.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use converse_config::ServerConfig;
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::mcp::ConverseMcp;
use crate::tools::Engine;

/// State shared by the non-MCP routes.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub sessions: Arc<LocalSessionManager>,
    pub auth_strategy: String,
    pub started: Instant,
}

/// rmcp's Streamable HTTP settings from our configuration.
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

pub fn session_manager(config: &ServerConfig) -> Arc<LocalSessionManager> {
    let mut session = SessionConfig::default();
    session.keep_alive = Some(config.http.session_timeout);
    let mut manager = LocalSessionManager::default();
    manager.session_config = session;
    Arc::new(manager)
}

/// The whole application router.
pub fn router(config: &ServerConfig, engine: Arc<Engine>, shutdown: CancellationToken) -> Router {
    let sessions = session_manager(config);
    // rmcp makes a handler per session (or per stateless request): clone a
    // prototype rather than rebuilding the tool and prompt routers each time.
    let prototype = ConverseMcp::new(engine.clone());
    let mcp = StreamableHttpService::new(
        move || Ok(prototype.clone()),
        sessions.clone(),
        mcp_config(config, shutdown),
    );
    let state = AppState {
        engine,
        sessions,
        auth_strategy: config.auth.strategy.to_string(),
        started: Instant::now(),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/info", get(info))
        .with_state(state)
        .nest_service("/mcp", mcp)
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

async fn info(State(state): State<AppState>) -> impl IntoResponse {
    let providers = state.engine.router.available();
    let sessions = state.sessions.sessions.read().await.len();
    Json(json!({
        "name": "converse-server",
        "version": env!("CARGO_PKG_VERSION"),
        "transport": "http",
        "endpoints": { "mcp": "/mcp", "health": "/healthz", "ready": "/readyz", "info": "/info" },
        "authentication": { "strategy": state.auth_strategy },
        "providers": providers,
        "warnings": if providers.is_empty() {
            vec!["no LLM provider is configured: set at least one provider API key"]
        } else {
            vec![]
        },
        "sessions": sessions,
        "uptimeSeconds": state.started.elapsed().as_secs(),
    }))
}
