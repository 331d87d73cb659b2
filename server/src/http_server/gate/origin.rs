//! `Host` and `Origin` checks (DNS-rebinding protection): a page on another site must not be
//! able to drive a server on the user's machine through the browser.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::refusal;

/// What `Host` and `Origin` may say.
#[derive(Debug, Default)]
pub struct OriginPolicy {
    /// `HTTP_ALLOWED_HOSTS` when DNS-rebinding protection is on; `None` = any host.
    pub allowed_hosts: Option<Vec<String>>,
    /// `HTTP_ALLOWED_ORIGINS`; empty = not checked.
    pub allowed_origins: Vec<String>,
}

impl OriginPolicy {
    /// `Some(refusal)` when Host or Origin is not allowed.
    fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
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
}

/// The layer: 403 for a foreign `Host` or `Origin`.
pub async fn check(
    State(policy): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    match policy.refuse(request.headers()) {
        Some(refused) => refused,
        None => next.run(request).await,
    }
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

/// Allowed when listed exactly, or by a `scheme://host:*` entry (any port).
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

    #[test]
    fn the_policy_refuses_a_foreign_host_or_origin_and_lets_others_pass() {
        let policy = OriginPolicy {
            allowed_hosts: Some(vec!["localhost".into()]),
            allowed_origins: vec!["http://localhost:*".into()],
        };
        let headers = |pairs: &[(header::HeaderName, &str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in pairs {
                h.insert(name.clone(), value.parse().unwrap());
            }
            h
        };
        let ok = headers(&[(header::HOST, "localhost:3157")]);
        assert!(policy.refuse(&ok).is_none(), "no Origin: a CLI or SDK");
        let foreign_host = headers(&[(header::HOST, "evil.example")]);
        assert_eq!(
            policy.refuse(&foreign_host).map(|r| r.status()),
            Some(StatusCode::FORBIDDEN)
        );
        let foreign_origin = headers(&[
            (header::HOST, "localhost:3157"),
            (header::ORIGIN, "https://evil.example"),
        ]);
        assert_eq!(
            policy.refuse(&foreign_origin).map(|r| r.status()),
            Some(StatusCode::FORBIDDEN)
        );
        let own_origin = headers(&[
            (header::HOST, "localhost:3157"),
            (header::ORIGIN, "http://localhost:5173"),
        ]);
        assert!(policy.refuse(&own_origin).is_none());
        assert!(OriginPolicy::default().refuse(&foreign_origin).is_none());
    }

    proptest::proptest! {
        #[test]
        fn host_matching_never_panics(h in "\\PC*") {
            let _ = host_allowed(&h, &["localhost".to_string()]);
            let _ = origin_allowed(&h, &["http://localhost:*".to_string()]);
        }
    }
}
