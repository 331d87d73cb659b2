//! Authentication from the request headers, before any body byte is read: a refused request
//! costs the server no body buffering. The [`Principal`] goes into the request's extensions.
//!
//! Without credentials, `MCP_AUTH_REQUIRE` refuses the request, except where converse 1.3.2's
//! session-auth settings let it through: an `initialize` when
//! `MCP_SESSION_AUTH_REQUIRE_FOR_SESSION` is false, other requests when
//! `MCP_SESSION_AUTH_REQUIRE_FOR_OPERATIONS` is false. Whether a POST without a session is an
//! `initialize` shows only in its body; when the answer matters, the request carries
//! [`AnonymousUnlessInitialize`] and session admission decides once it has read the method.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::body_limit::BodyLimit;
use super::client_ip::ClientIp;
use super::rate_limit::Limiter;
use super::{SESSION_HEADER, refusal, with_retry_after};
use crate::auth::{AuthError, Authenticator, credentials_in_query};

/// The authentication layer's settings.
#[derive(Debug)]
pub struct Authentication {
    pub auth: Authenticator,
    /// `MCP_AUTH_REQUIRE` with a strategy other than `none`.
    pub required: bool,
    /// `MCP_SESSION_AUTH_ENABLED`: the two exceptions below apply at all.
    pub session_auth_enabled: bool,
    pub require_for_session: bool,
    pub require_for_operations: bool,
    /// Failed attempts spend their client IP's rate-limit budget, so guessing credentials is
    /// throttled too.
    pub limiter: Option<Arc<Limiter>>,
}

/// A credential-less request let through only if it is (or only if it is not) an `initialize`.
#[derive(Debug, Clone)]
pub struct AnonymousUnlessInitialize {
    /// True: allowed when it is an `initialize`; false: allowed when it is not.
    pub initialize_allowed: bool,
    /// The `WWW-Authenticate` challenge of the 401 to send otherwise.
    pub challenge: String,
}

impl AnonymousUnlessInitialize {
    /// `Some(401)` when the request, now known to be an `initialize` or not, is not allowed.
    pub fn refuse(&self, is_initialize: bool) -> Option<Response> {
        (is_initialize != self.initialize_allowed).then(|| {
            challenged(
                refusal(
                    StatusCode::UNAUTHORIZED,
                    -32001,
                    AuthError::Missing.to_string(),
                ),
                &self.challenge,
            )
        })
    }
}

/// What to do with a request that presented no credentials.
enum Anonymous {
    Allowed,
    Refused,
    Deferred(AnonymousUnlessInitialize),
}

impl Authentication {
    fn anonymous(&self, request: &Request) -> Anonymous {
        if !self.required {
            return Anonymous::Allowed;
        }
        if !self.session_auth_enabled {
            return Anonymous::Refused;
        }
        let allowed = |yes: bool| {
            if yes {
                Anonymous::Allowed
            } else {
                Anonymous::Refused
            }
        };
        let initialize_ok = !self.require_for_session;
        let others_ok = !self.require_for_operations;
        if !may_be_initialize(request) || initialize_ok == others_ok {
            return allowed(others_ok);
        }
        Anonymous::Deferred(AnonymousUnlessInitialize {
            initialize_allowed: initialize_ok,
            challenge: self.auth.challenge(&AuthError::Missing),
        })
    }

    /// 401, 403 (scope) or 503 (identity provider unreachable), with the challenge.
    fn refusal(&self, error: &AuthError) -> Response {
        let (status, code) = match error {
            AuthError::InsufficientScope { .. } => (StatusCode::FORBIDDEN, -32003),
            AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, -32000),
            _ => (StatusCode::UNAUTHORIZED, -32001),
        };
        let response = challenged(
            refusal(status, code, error.to_string()),
            &self.auth.challenge(error),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return with_retry_after(response, std::time::Duration::from_secs(5));
        }
        response
    }

    /// The refusal of a failed attempt, or 429 when its client IP is over its budget.
    fn failed(&self, client: Option<ClientIp>, error: &AuthError) -> Response {
        let over_budget = self
            .limiter
            .as_ref()
            .and_then(|l| l.check(&ClientIp::bucket_of(client)).err());
        match over_budget {
            Some(wait) => with_retry_after(
                refusal(StatusCode::TOO_MANY_REQUESTS, -32000, "rate limit exceeded"),
                wait,
            ),
            None => self.refusal(error),
        }
    }
}

/// A POST without a session that does not say (2026-07-28 `Mcp-Method`) it is something else.
fn may_be_initialize(request: &Request) -> bool {
    let headers: &HeaderMap = request.headers();
    request.method() == Method::POST
        && !headers.contains_key(SESSION_HEADER)
        && headers
            .get("mcp-method")
            .is_none_or(|m| m.as_bytes() == b"initialize")
}

fn challenged(mut response: Response, challenge: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// The layer.
pub async fn authenticate(
    State(authn): State<Arc<Authentication>>,
    mut request: Request,
    next: Next,
) -> Response {
    // Copied out: a reference into the request held across the await below would make the
    // future !Send (the body is not Sync).
    let client = request.extensions().get::<ClientIp>().copied();
    if credentials_in_query(request.uri().query()) {
        return authn.failed(client, &AuthError::InQuery);
    }
    match authn.auth.authenticate(request.headers()).await {
        Err(e) => {
            // The reason and the client, never the credential.
            let ip = client.map_or_else(|| "unknown".into(), |ClientIp(ip)| ip.to_string());
            tracing::info!(client = %ip, strategy = authn.auth.strategy(), reason = %e, "authentication failed");
            return authn.failed(client, &e);
        }
        Ok(Some(principal)) => {
            tracing::debug!(principal = %principal.id, strategy = principal.strategy, "authenticated");
            request.extensions_mut().insert(principal);
        }
        Ok(None) => {
            match authn.anonymous(&request) {
                Anonymous::Allowed => {}
                Anonymous::Refused => return authn.failed(client, &AuthError::Missing),
                Anonymous::Deferred(deferred) => {
                    request.extensions_mut().insert(deferred);
                }
            }
            // Without credentials while a strategy is set: the small anonymous body cap.
            if !matches!(authn.auth, Authenticator::None) {
                BodyLimit::restrict_to_anonymous(request.extensions_mut());
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn authn(required: bool, for_session: bool, for_operations: bool) -> Authentication {
        Authentication {
            auth: Authenticator::None,
            required,
            session_auth_enabled: true,
            require_for_session: for_session,
            require_for_operations: for_operations,
            limiter: None,
        }
    }

    fn post(session: bool, mcp_method: Option<&str>) -> Request {
        let mut builder = Request::post("/mcp");
        if session {
            builder = builder.header(SESSION_HEADER, "s1");
        }
        if let Some(m) = mcp_method {
            builder = builder.header("mcp-method", m);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn decision(a: &Authentication, request: &Request) -> &'static str {
        match a.anonymous(request) {
            Anonymous::Allowed => "allowed",
            Anonymous::Refused => "refused",
            Anonymous::Deferred(d) if d.initialize_allowed => "only initialize",
            Anonymous::Deferred(_) => "all but initialize",
        }
    }

    #[test]
    fn anonymous_requests_follow_the_session_auth_settings() {
        let no_session = post(false, None);
        let in_session = post(true, None);
        let stateless_call = post(false, Some("tools/call"));

        let open = authn(false, true, true);
        assert_eq!(decision(&open, &no_session), "allowed");

        // converse 1.3.2's defaults: anonymous initialize, authenticated operations.
        let legacy = authn(true, false, true);
        assert_eq!(decision(&legacy, &no_session), "only initialize");
        assert_eq!(decision(&legacy, &in_session), "refused");
        assert_eq!(decision(&legacy, &stateless_call), "refused");

        let strict = authn(true, true, true);
        assert_eq!(decision(&strict, &no_session), "refused");

        let lax_operations = authn(true, true, false);
        assert_eq!(decision(&lax_operations, &no_session), "all but initialize");
        assert_eq!(decision(&lax_operations, &in_session), "allowed");

        let mut disabled = authn(true, false, false);
        disabled.session_auth_enabled = false;
        assert_eq!(decision(&disabled, &no_session), "refused");
    }

    #[test]
    fn a_deferred_request_is_refused_by_what_its_body_says() {
        let only_initialize = AnonymousUnlessInitialize {
            initialize_allowed: true,
            challenge: "Bearer realm=\"mcp\"".into(),
        };
        assert!(only_initialize.refuse(true).is_none());
        let refused = only_initialize.refuse(false).expect("401");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert!(refused.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
