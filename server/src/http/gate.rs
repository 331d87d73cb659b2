//! The gate in front of rmcp's `/mcp` service: everything a request must pass
//! before the MCP protocol sees it, in this order —
//!
//! 1. `Host`/`Origin` (DNS-rebinding protection) → 403;
//! 2. credentials in the query string → 401;
//! 3. body size (`HTTP_MAX_REQUEST_SIZE`) → 413, body read time (`HTTP_REQUEST_TIMEOUT`) → 408;
//! 4. authentication → 401 / 403 (scope) / 503 (identity provider down);
//! 5. rate limit per principal, or per client IP when unauthenticated → 429;
//! 6. sessions: cap → 503, another principal's session → 404.
//!
//! Every refusal carries a JSON-RPC error body. The request's duration is not
//! limited here: a tool call may legitimately run for minutes, and SSE streams
//! stay open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client_ip::client_ip;
use super::rate_limit::Limiter;
use super::sessions::{Access, Admission, Owner, Sessions};
use crate::auth::{AuthError, Authenticator, credentials_in_query};
use crate::principal::Principal;

const SESSION_HEADER: &str = "mcp-session-id";

#[derive(Debug)]
pub struct Gate {
    pub auth: Authenticator,
    /// `MCP_AUTH_REQUIRE`: unauthenticated requests are refused…
    pub required: bool,
    /// …except `initialize` when `MCP_SESSION_AUTH_REQUIRE_FOR_SESSION` is false
    /// (`session_auth_enabled`), and except operations when
    /// `MCP_SESSION_AUTH_REQUIRE_FOR_OPERATIONS` is false.
    pub session_auth_enabled: bool,
    pub require_for_session: bool,
    pub require_for_operations: bool,
    pub limiter: Option<Limiter>,
    pub sessions: Arc<Sessions>,
    pub max_body: u64,
    pub body_timeout: Duration,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub allowed_hosts: Option<Vec<String>>,
    pub allowed_origins: Vec<String>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// A refusal: HTTP status plus a JSON-RPC error body (no id: the request may
/// not even have been parsed).
pub fn refusal(status: StatusCode, code: i64, message: impl Into<String>) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "error": { "code": code, "message": message.into() },
        "id": Value::Null,
    });
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    response.extensions_mut().insert(RefusedByGate);
    response
}

fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    let secs = wait.as_secs().max(1).to_string();
    if let Ok(v) = HeaderValue::from_str(&secs) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

#[derive(Deserialize)]
struct Probe {
    method: Option<String>,
}

/// The `host` part of a Host header value (`[::1]:3157` → `::1`).
fn host_only(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Allowed when the full authority or its host part is listed (case-insensitive).
pub fn host_allowed(authority: &str, allowed: &[String]) -> bool {
    let host = host_only(authority);
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(authority) || a.eq_ignore_ascii_case(host))
}

fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        a.eq_ignore_ascii_case(origin)
            || a.strip_suffix(":*").is_some_and(|base| {
                origin.get(..base.len()).is_some_and(|p| {
                    p.eq_ignore_ascii_case(base) && origin[base.len()..].starts_with(':')
                }) || origin.eq_ignore_ascii_case(base)
            })
    })
}

impl Gate {
    /// `Some(refusal)` when Host or Origin is not allowed.
    fn check_origin(&self, headers: &HeaderMap) -> Option<Response> {
        if let Some(allowed) = &self.allowed_hosts {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !host_allowed(host, allowed) {
                return Some(refusal(
                    StatusCode::FORBIDDEN,
                    -32000,
                    format!("Host {host:?} is not allowed (HTTP_ALLOWED_HOSTS)"),
                ));
            }
        }
        if !self.allowed_origins.is_empty()
            && let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
            && !origin_allowed(origin, &self.allowed_origins)
        {
            return Some(refusal(
                StatusCode::FORBIDDEN,
                -32000,
                format!("Origin {origin:?} is not allowed (HTTP_ALLOWED_ORIGINS)"),
            ));
        }
        None
    }

    fn auth_refusal(&self, error: &AuthError) -> Response {
        let (status, code) = match error {
            AuthError::InsufficientScope { .. } => (StatusCode::FORBIDDEN, -32003),
            AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, -32000),
            _ => (StatusCode::UNAUTHORIZED, -32001),
        };
        let mut response = refusal(status, code, error.to_string());
        if let Ok(v) = HeaderValue::from_str(&self.auth.challenge(error)) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response = with_retry_after(response, Duration::from_secs(5));
        }
        response
    }

    /// Reads the whole body within the size and time limits.
    async fn read_body(&self, body: Body, declared: Option<u64>) -> Result<Bytes, Response> {
        let too_large = || {
            refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                -32000,
                format!(
                    "request body larger than {} bytes (HTTP_MAX_REQUEST_SIZE)",
                    self.max_body
                ),
            )
        };
        if declared.is_some_and(|n| n > self.max_body) {
            return Err(too_large());
        }
        let limited = http_body_util::Limited::new(
            body,
            usize::try_from(self.max_body).unwrap_or(usize::MAX),
        );
        match tokio::time::timeout(self.body_timeout, limited.collect()).await {
            Err(_) => Err(refusal(
                StatusCode::REQUEST_TIMEOUT,
                -32000,
                "request body not received in time (HTTP_REQUEST_TIMEOUT)",
            )),
            Ok(Err(e))
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                Err(too_large())
            }
            Ok(Err(_)) => Err(refusal(
                StatusCode::BAD_REQUEST,
                -32700,
                "could not read the request body",
            )),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }
}

/// Marks responses the gate produced itself, so refusals can be counted.
#[derive(Clone, Copy)]
struct RefusedByGate;

/// The middleware: [`admit`] plus a metric of every refusal by reason.
pub async fn gate(
    State(gate): State<Arc<Gate>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let response = admit(gate.clone(), peer, request, next).await;
    if response.extensions().get::<RefusedByGate>().is_some() {
        let reason = match response.status() {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "session_not_found",
            StatusCode::REQUEST_TIMEOUT => "body_timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "bad_request",
        };
        gate.metrics.refused(reason);
    }
    response
}

async fn admit(gate: Arc<Gate>, peer: SocketAddr, request: Request, next: Next) -> Response {
    if let Some(refused) = gate.check_origin(request.headers()) {
        return refused;
    }
    let ip = client_ip(peer, request.headers(), &gate.trusted_proxies);
    // Requests that fail authentication spend their client IP's budget, so
    // guessing credentials is throttled too. `Some` is the 429 to send.
    let limit_ip = |gate: &Gate| -> Option<Response> {
        let wait = gate.limiter.as_ref()?.check(&format!("ip:{ip}")).err()?;
        Some(with_retry_after(
            refusal(StatusCode::TOO_MANY_REQUESTS, -32000, "rate limit exceeded"),
            wait,
        ))
    };
    if credentials_in_query(request.uri().query()) {
        return limit_ip(&gate).unwrap_or_else(|| gate.auth_refusal(&AuthError::InQuery));
    }

    let (mut parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bytes = if parts.method == Method::POST {
        match gate.read_body(body, declared).await {
            Ok(b) => b,
            Err(r) => return r,
        }
    } else {
        Bytes::new()
    };
    let method = serde_json::from_slice::<Probe>(&bytes)
        .ok()
        .and_then(|p| p.method);
    let session_id = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let is_initialize = parts.method == Method::POST
        && session_id.is_none()
        && method.as_deref() == Some("initialize");

    let principal: Option<Principal> = match gate.auth.authenticate(&parts.headers).await {
        Ok(p) => p,
        Err(e) => {
            // The reason and the client, never the credential.
            tracing::info!(client = %ip, strategy = gate.auth.strategy(), reason = %e, "authentication failed");
            return limit_ip(&gate).unwrap_or_else(|| gate.auth_refusal(&e));
        }
    };
    if let Some(p) = &principal {
        tracing::debug!(principal = %p.id, strategy = p.strategy, "authenticated");
    }
    if principal.is_none() && gate.required {
        let allowed = gate.session_auth_enabled
            && if is_initialize {
                !gate.require_for_session
            } else {
                !gate.require_for_operations
            };
        if !allowed {
            return limit_ip(&gate).unwrap_or_else(|| gate.auth_refusal(&AuthError::Missing));
        }
    }
    let owner_key = principal
        .as_ref()
        .map(|p| format!("{}:{}", p.strategy, p.id));

    if let Some(limiter) = &gate.limiter {
        let key = owner_key.clone().unwrap_or_else(|| format!("ip:{ip}"));
        if let Err(wait) = limiter.check(&key) {
            return with_retry_after(
                refusal(StatusCode::TOO_MANY_REQUESTS, -32000, "rate limit exceeded"),
                wait,
            );
        }
    }

    let mut reservation = None;
    if let Some(id) = &session_id {
        if let Access::NotFound = gate.sessions.access(id, owner_key.as_deref()).await {
            return refusal(StatusCode::NOT_FOUND, -32001, "session not found");
        }
    } else if is_initialize {
        // With an auth strategy in place, a session opened without credentials
        // is "anonymous" and held to the smaller cap, so such clients cannot fill
        // the server; under `none` everyone is anonymous and the full cap applies.
        let anonymous = owner_key.is_none() && !matches!(gate.auth, Authenticator::None);
        match gate.sessions.admit(anonymous).await {
            Admission::Admitted(r) => reservation = Some(r),
            Admission::Full => {
                return with_retry_after(
                    refusal(
                        StatusCode::SERVICE_UNAVAILABLE,
                        -32000,
                        "maximum concurrent sessions reached (HTTP_MAX_CONCURRENT_SESSIONS); retry later",
                    ),
                    Duration::from_secs(30),
                );
            }
        }
    }

    if let Some(p) = principal {
        parts.extensions.insert(p);
    }
    let is_delete = parts.method == Method::DELETE;
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // rmcp answers an unknown or expired session with a plain-text 404; clients
    // get the same JSON-RPC error shape as for every other refusal.
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status() == StatusCode::NOT_FOUND && !is_json {
        return refusal(
            StatusCode::NOT_FOUND,
            -32001,
            "session not found (expired or closed); initialize a new one",
        );
    }

    if let Some(id) = session_id
        .as_deref()
        .filter(|_| is_delete && response.status().is_success())
    {
        gate.sessions.forget(id).await;
    }
    if reservation.is_some()
        && let Some(id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        let owner = owner_key.map_or(Owner::Unclaimed, Owner::Principal);
        gate.sessions.record(id, owner).await;
    }
    drop(reservation);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_with_or_without_port() {
        let allowed = vec![
            "localhost".to_string(),
            "mcp.example.com:8443".to_string(),
            "::1".to_string(),
        ];
        assert!(host_allowed("localhost:3157", &allowed));
        assert!(host_allowed("LOCALHOST", &allowed));
        assert!(host_allowed("mcp.example.com:8443", &allowed));
        assert!(!host_allowed("mcp.example.com:9999", &allowed));
        assert!(host_allowed("[::1]:3157", &allowed));
        assert!(!host_allowed("evil.example.com", &allowed));
        assert!(!host_allowed("localhost.evil.com", &allowed));
    }

    #[test]
    fn origins_match_exactly_or_by_port_wildcard() {
        let allowed = vec![
            "https://app.example.com".to_string(),
            "http://localhost:*".to_string(),
        ];
        assert!(origin_allowed("https://app.example.com", &allowed));
        assert!(origin_allowed("http://localhost:5173", &allowed));
        assert!(!origin_allowed("http://localhost.evil.com", &allowed));
        assert!(!origin_allowed("https://evil.com", &allowed));
    }

    proptest::proptest! {
        #[test]
        fn host_matching_never_panics(h in "\\PC*") {
            let _ = host_allowed(&h, &["localhost".to_string()]);
            let _ = origin_allowed(&h, &["http://localhost:*".to_string()]);
        }
    }
}
