//! The inbound HTTP server: probes and info outside the MCP service, and rmcp's
//! Streamable HTTP service on `/mcp` serving both protocol eras (2025-xx with
//! sessions, 2026-07-28 stateless) on one endpoint, behind the [`gate`].
//!
//! Layers, outermost first: CORS (preflights answered before anything else) →
//! routes. `/mcp` alone sits behind the gate's layers (stacked in [`router`]),
//! so a rejected request never reaches rmcp and never creates a session; probes,
//! `/info` and the OAuth metadata stay reachable without credentials.

pub mod gate;
pub mod sessions;

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::from_fn_with_state;
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
use gate::authentication::Authentication;
use gate::body_limit::BodyLimit;
use gate::client_ip::TrustedProxies;
use gate::in_flight::InFlight;
use gate::origin::OriginPolicy;
use gate::rate_limit::Limiter;
use gate::session_admission::SessionAdmission;
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
    pub authn: Arc<Authentication>,
    pub sessions: Arc<Sessions>,
    pub started: Instant,
}

/// rmcp's Streamable HTTP settings from our configuration. Host is checked by the gate
/// already; rmcp checks it again (defence in depth). Origin is the gate's alone: its rule
/// (listed, or the server's own origin) is one rmcp's list cannot express.
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
    let limiter = http
        .rate_limit
        .enabled
        .then(|| Limiter::new(http.rate_limit.window, http.rate_limit.max_requests))
        .flatten()
        .map(Arc::new);
    let authn = Arc::new(authentication(config, limiter.clone())?);
    let sessions = Sessions::new(manager.clone(), http.max_concurrent_sessions as usize);

    // rmcp makes a handler per session (or per stateless request): clone a
    // prototype rather than rebuilding the tool and prompt routers each time.
    let prototype = ConverseMcp::new(engine.clone()).with_server_info(
        config.server_name.as_deref(),
        config.server_version.as_deref(),
    );
    let mcp = StreamableHttpService::new(
        move || Ok(prototype.clone()),
        manager,
        mcp_config(config, shutdown.clone()),
    );
    let mcp = behind_the_gate(mcp, config, &engine, &authn, &limiter, &sessions);

    let state = AppState {
        engine,
        authn: authn.clone(),
        sessions: sessions.clone(),
        started: Instant::now(),
    };
    // What browser clients call gets CORS; probes, /info and /metrics never do.
    let mut browser_facing = metadata_routes(&authn.auth)
        .with_state(state.clone())
        .nest_service("/mcp", mcp);
    if let Some(cors) = cors(config) {
        browser_facing = browser_facing.layer(cors);
    }
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        // converse 1.3.2's name: health checks and monitors written for it keep working.
        .route("/health", get(healthz))
        .route("/readyz", get(readyz))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(browser_facing);
    let mut limiters: Vec<Arc<Limiter>> = limiter.into_iter().collect();
    if config.auth.strategy == AuthStrategy::OAuth2 {
        let flow = Arc::new(
            OAuthFlow::new(&config.auth)?.with_trusted_proxies(http.trusted_proxies.clone()),
        );
        limiters.push(flow.limiter());
        app = app.merge(
            Router::new()
                .route("/oauth/authorize", get(crate::auth::oauth2::authorize))
                .route("/oauth/callback", get(crate::auth::oauth2::callback))
                .with_state(flow),
        );
    }
    let housekeeping = housekeeping(http.session_cleanup_interval, limiters, sessions, shutdown);
    Ok((app, housekeeping))
}

/// `/mcp` behind the gate's layers. Their order is written here and only here.
fn behind_the_gate<M>(
    mcp: M,
    config: &ServerConfig,
    engine: &Engine,
    authn: &Arc<Authentication>,
    limiter: &Option<Arc<Limiter>>,
    sessions: &Arc<Sessions>,
) -> Router
where
    M: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    M::Response: IntoResponse,
    M::Future: Send + 'static,
{
    let http = &config.http;
    // The gate, outermost first (see gate's module docs for what each refuses).
    let gate = tower::ServiceBuilder::new()
        .layer(from_fn_with_state(
            engine.metrics.clone(),
            gate::count_refusals,
        ))
        .layer(from_fn_with_state(
            Arc::new(TrustedProxies(http.trusted_proxies.clone())),
            gate::client_ip::resolve,
        ))
        .layer(from_fn_with_state(
            Arc::new(OriginPolicy {
                allowed_hosts: http
                    .dns_rebinding_protection
                    .then(|| http.allowed_hosts.clone()),
                allowed_origins: [&http.allowed_origins[..], &http.cors.origins[..]].concat(),
                any_origin: http.cors.any_origin(),
            }),
            gate::origin::check,
        ))
        .layer(from_fn_with_state(
            Arc::new(InFlight::new(http.max_concurrent_requests as usize)),
            gate::in_flight::limit,
        ))
        .layer(from_fn_with_state(
            Arc::new(BodyLimit {
                max: http.max_request_size,
                read_timeout: http.request_timeout,
            }),
            gate::body_limit::limit,
        ))
        .layer(from_fn_with_state(
            authn.clone(),
            gate::authentication::authenticate,
        ))
        .layer(from_fn_with_state(limiter.clone(), gate::rate_limit::check))
        .layer(from_fn_with_state(
            Arc::new(SessionAdmission {
                sessions: sessions.clone(),
                anonymous_share: !matches!(authn.auth, Authenticator::None),
            }),
            gate::session_admission::admit,
        ));
    Router::new().fallback_service(mcp).layer(gate)
}

/// The authentication layer's settings from the configuration.
fn authentication(
    config: &ServerConfig,
    limiter: Option<Arc<Limiter>>,
) -> Result<Authentication, HttpSetupError> {
    let session_auth = &config.auth.session_auth;
    Ok(Authentication {
        auth: Authenticator::from_config(config)?,
        required: config.auth.required && config.auth.strategy != AuthStrategy::None,
        session_auth_enabled: session_auth.enabled,
        require_for_session: session_auth.require_for_session,
        require_for_operations: session_auth.require_for_operations,
        limiter,
    })
}

/// RFC 9728: the metadata of resource https://host/<path> lives at
/// /.well-known/oauth-protected-resource/<path>; the root form is served too.
fn metadata_routes(auth: &Authenticator) -> Router<AppState> {
    let mut paths = vec![
        "/.well-known/oauth-protected-resource".to_string(),
        "/.well-known/oauth-protected-resource/mcp".to_string(),
    ];
    if let Authenticator::Oidc(oidc) = auth
        && !paths.contains(&oidc.metadata_path())
    {
        paths.push(oidc.metadata_path());
    }
    paths.iter().fold(Router::new(), |app, path| {
        app.route(path, get(protected_resource))
    })
}

/// Forgets idle rate-limit keys and the owners of closed sessions, every `interval`.
async fn housekeeping(
    interval: std::time::Duration,
    limiters: Vec<Arc<Limiter>>,
    sessions: Arc<Sessions>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        for l in &limiters {
            l.forget_idle();
        }
        sessions.sweep().await;
    }
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(e) => {
            // The reason goes to the log: probes are unauthenticated, and a store error may
            // name internal addresses.
            tracing::warn!(error = %e, "not ready: the conversation store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "reason": "conversation store unavailable" })),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let metrics = &state.engine.metrics;
    metrics
        .sessions
        .set(i64::try_from(state.sessions.live()).unwrap_or(i64::MAX));
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
    match &state.authn.auth {
        Authenticator::Oidc(oidc) => Json(oidc.metadata().await).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn info(State(state): State<AppState>) -> impl IntoResponse {
    let providers = state.engine.router.available();
    let (sessions, busy) = state.sessions.counts();
    Json(json!({
        "name": "converse-server",
        "version": env!("CARGO_PKG_VERSION"),
        "transport": "http",
        "endpoints": { "mcp": "/mcp", "health": "/healthz", "ready": "/readyz", "info": "/info", "metrics": "/metrics" },
        "authentication": { "strategy": state.authn.auth.strategy(), "required": state.authn.required },
        "providers": providers,
        "warnings": if providers.is_empty() {
            vec!["no LLM provider is configured: set at least one provider API key"]
        } else {
            vec![]
        },
        "sessions": { "active": sessions, "busy": busy, "max": state.sessions.max },
        "uptimeSeconds": state.started.elapsed().as_secs(),
    }))
}
