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
    /// `HTTP_ALLOWED_ORIGINS` and `HTTP_CORS_ORIGINS` together (normalised, `null` possible).
    pub allowed_origins: Vec<String>,
    /// `HTTP_CORS_ORIGINS=*`, which the configuration allows only with an auth strategy.
    pub any_origin: bool,
}

impl OriginPolicy {
    /// `Some(refusal)` when Host or Origin is not allowed. A request without `Origin` (a CLI, an
    /// SDK, a port-forward) is not a browser page of another site: only its Host is checked.
    fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(allowed) = &self.allowed_hosts
            && !host_allowed(host, allowed)
        {
            return Some(refusal(
                StatusCode::FORBIDDEN,
                -32000,
                format!("Host {host:?} is not allowed (HTTP_ALLOWED_HOSTS)"),
            ));
        }
        let origin = headers.get(header::ORIGIN)?;
        let origin = origin.to_str().unwrap_or("(not text)");
        let allowed = self.any_origin
            || origin_allowed(origin, &self.allowed_origins)
            || is_own_origin(origin, host);
        (!allowed).then(|| {
            refusal(
                StatusCode::FORBIDDEN,
                -32000,
                format!(
                    "Origin {origin:?} is not allowed: a web page may call this server only from \
                     an origin listed in HTTP_CORS_ORIGINS or HTTP_ALLOWED_ORIGINS"
                ),
            )
        })
    }
}

/// Whether `origin` is the server's own (a page it served itself, or a client that sends its
/// target as Origin): the same host and port as the request's `Host`, whatever the scheme (TLS
/// may end at a proxy in front of us).
fn is_own_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let with_port = |authority: &str, port: &str| {
        if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:{port}")
        } else {
            authority.to_string()
        }
    };
    !host.is_empty()
        && with_port(authority, default_port).eq_ignore_ascii_case(&with_port(host, default_port))
}

/// The layer: 403 for a foreign `Host`, or an `Origin` that is neither listed nor our own.
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
            allowed_origins: vec!["https://app.example.com".into()],
            any_origin: false,
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
        let listed = headers(&[
            (header::HOST, "localhost:3157"),
            (header::ORIGIN, "https://app.example.com"),
        ]);
        assert!(policy.refuse(&listed).is_none());
        let own_origin = headers(&[
            (header::HOST, "localhost:3157"),
            (header::ORIGIN, "http://localhost:3157"),
        ]);
        assert!(policy.refuse(&own_origin).is_none());
        let other_port = headers(&[
            (header::HOST, "localhost:3157"),
            (header::ORIGIN, "http://localhost:5173"),
        ]);
        assert!(policy.refuse(&other_port).is_some(), "another local app");
        let any = OriginPolicy {
            any_origin: true,
            ..OriginPolicy::default()
        };
        assert!(any.refuse(&foreign_origin).is_none());
        assert!(
            OriginPolicy::default().refuse(&foreign_origin).is_some(),
            "refused by default"
        );
    }

    #[test]
    fn own_origin_is_host_and_port_whatever_the_scheme() {
        assert!(is_own_origin("http://localhost:3157", "localhost:3157"));
        assert!(is_own_origin("https://mcp.example.com", "mcp.example.com"));
        assert!(is_own_origin(
            "https://mcp.example.com",
            "mcp.example.com:443"
        ));
        assert!(is_own_origin("http://[::1]:3157", "[::1]:3157"));
        assert!(!is_own_origin("http://localhost:3158", "localhost:3157"));
        assert!(!is_own_origin(
            "https://mcp.example.com.evil",
            "mcp.example.com"
        ));
        assert!(!is_own_origin("null", "localhost"));
        assert!(!is_own_origin("http://localhost", ""));
    }

    proptest::proptest! {
        #[test]
        fn host_matching_never_panics(h in "\\PC*") {
            let _ = host_allowed(&h, &["localhost".to_string()]);
            let _ = origin_allowed(&h, &["http://localhost:*".to_string()]);
        }
    }
}
