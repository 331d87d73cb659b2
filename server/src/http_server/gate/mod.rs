//! The gate in front of rmcp's `/mcp` service: everything a request must pass before the MCP
//! protocol sees it, as a stack of layers, one module each. [`super::router`] stacks them, in
//! this order (outermost first):
//!
//! 1. [`client_ip`]: who is calling, as far as the network says (trusted proxies only);
//! 2. [`origin`]: `Host`/`Origin` (DNS-rebinding protection) → 403;
//! 3. [`in_flight`]: more requests in flight than `HTTP_MAX_CONCURRENT_REQUESTS` → 503;
//! 4. [`body_limit`]: a declared body over `HTTP_MAX_REQUEST_SIZE` → 413 at once; the body is
//!    capped for whoever reads it (nothing is read here);
//! 5. [`authentication`]: credentials from the headers only, before any body byte is read →
//!    401 / 403 (scope) / 503 (identity provider down);
//! 6. [`rate_limit`]: per principal, or per client IP when unauthenticated → 429;
//! 7. [`session_admission`]: reads the body (size and time limits → 413 / 408), then the
//!    session cap → 503 and binding to the principal → 404.
//!
//! Every refusal carries a JSON-RPC error body, and [`count_refusals`] (around the stack)
//! counts them by reason. The request's duration is not limited here: a tool call may
//! legitimately run for minutes, and SSE streams stay open.

pub mod authentication;
pub mod body_limit;
pub mod client_ip;
pub mod in_flight;
pub mod origin;
pub mod rate_limit;
pub mod session_admission;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::metrics::Metrics;
use crate::principal::Principal;

/// The legacy-era session header.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// A refusal: HTTP status plus a JSON-RPC error body (no id: the request may not even have
/// been parsed), marked so [`count_refusals`] counts it.
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

/// Adds `Retry-After` (whole seconds, at least 1).
pub fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    let secs = wait.as_secs().max(1).to_string();
    if let Ok(v) = HeaderValue::from_str(&secs) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The key a principal's rate-limit bucket and session ownership are recorded under.
pub fn owner_key(principal: &Principal) -> String {
    format!("{}:{}", principal.strategy, principal.id)
}

/// Marks responses the gate produced itself, so refusals can be counted.
#[derive(Clone, Copy)]
struct RefusedByGate;

/// Counts every refusal of the layers inside it, by reason.
pub async fn count_refusals(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
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
        metrics.refused(reason);
    }
    response
}
