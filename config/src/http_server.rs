//! The HTTP listener: address, limits, sessions, CORS, Host/Origin checks, rate limit, proxies.

use std::time::Duration;

use ipnet::IpNet;

use crate::parse::{self, ParseError};
use crate::reader::Reader;
use crate::vars::*;

/// Request headers an MCP browser client sends; the 1.3.2 default lacked the protocol-version
/// and resumption headers, so browser clients failed preflight.
pub const DEFAULT_CORS_HEADERS: &[&str] = &[
    "Content-Type",
    "Authorization",
    "X-API-Key",
    "Mcp-Session-Id",
    "Mcp-Protocol-Version",
    "Last-Event-ID",
    "Mcp-Method",
    "Mcp-Name",
];
pub const DEFAULT_CORS_METHODS: &[&str] = &["GET", "POST", "DELETE", "OPTIONS"];
pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Listen address (`HTTP_HOST`, alias `HOST`). Loopback by default so a developer's laptop
    /// does not expose an unauthenticated server; container images set `0.0.0.0`.
    pub host: String,
    pub port: u16,
    pub request_timeout: Duration,
    /// Body limit in bytes; larger bodies get 413.
    pub max_request_size: u64,
    pub session_timeout: Duration,
    pub session_cleanup_interval: Duration,
    pub max_concurrent_sessions: u32,
    /// Requests to `/mcp` in flight at once (streams included); beyond it 503.
    pub max_concurrent_requests: u32,
    pub cors: CorsConfig,
    /// Check the `Host` header against `allowed_hosts`. On by default (1.3.2 had it off), since
    /// DNS rebinding is how a web page reaches a server bound to localhost.
    pub dns_rebinding_protection: bool,
    /// Lower-cased host names, compared with the `Host` header; how ports are treated is the
    /// server's choice (the original compared the whole header, port included).
    pub allowed_hosts: Vec<String>,
    /// Normalised origins (`scheme://host[:port]`, lower-case, no default port) or `null`.
    /// Empty: `Origin` is not checked.
    pub allowed_origins: Vec<String>,
    pub rate_limit: RateLimitConfig,
    /// Peers whose `X-Forwarded-For` is believed; canonical networks (host bits cleared).
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            host: "127.0.0.1".to_owned(),
            port: 3157,
            request_timeout: Duration::from_secs(5 * 60),
            max_request_size: 10 * 1024 * 1024,
            session_timeout: Duration::from_secs(30 * 60),
            session_cleanup_interval: Duration::from_secs(5 * 60),
            max_concurrent_sessions: 100,
            max_concurrent_requests: 512,
            cors: CorsConfig::default(),
            dns_rebinding_protection: true,
            allowed_hosts: strings(DEFAULT_ALLOWED_HOSTS),
            allowed_origins: Vec::new(),
            rate_limit: RateLimitConfig::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    pub enabled: bool,
    /// Empty (no other origin: the default), `["*"]` (any origin; refused without an auth
    /// strategy) or normalised origins like `https://app.example.com`.
    pub origins: Vec<String>,
    /// Upper-cased method names, or `["*"]`.
    pub methods: Vec<String>,
    /// Header names as given, or `["*"]`.
    pub headers: Vec<String>,
    /// Never true together with a `*` entry: browsers refuse that combination and tower-http
    /// panics on it, so it is rejected here.
    pub credentials: bool,
}

impl CorsConfig {
    /// Whether any origin is allowed.
    pub fn any_origin(&self) -> bool {
        self.origins.iter().any(|o| o == "*")
    }
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            enabled: true,
            // No page of another origin may call the server unless listed (MCP transport spec:
            // servers must validate Origin); a local server would otherwise be reachable from
            // any site the user visits.
            origins: Vec::new(),
            methods: strings(DEFAULT_CORS_METHODS),
            headers: strings(DEFAULT_CORS_HEADERS),
            credentials: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub window: Duration,
    pub max_requests: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: false,
            window: Duration::from_secs(15 * 60),
            max_requests: 1000,
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

const SECOND: Duration = Duration::from_secs(1);

pub(crate) fn parse(r: &mut Reader) -> HttpConfig {
    let d = HttpConfig::default();

    let host = aliased_or(r, HTTP_HOST, HOST, d.host.clone(), parse::host);
    let port = aliased_or(r, HTTP_PORT, PORT, d.port, |s| {
        parse::integer::<u16>(s, 0, 65535)
    });
    let request_timeout = r.parse_or(HTTP_REQUEST_TIMEOUT, d.request_timeout, |s| {
        parse::duration_at_least(s, SECOND)
    });
    let max_request_size = r.parse_or(HTTP_MAX_REQUEST_SIZE, d.max_request_size, |s| {
        parse::size(s).and_then(|n| {
            if n == 0 {
                Err(ParseError::Rule("must be at least 1 byte".to_owned()))
            } else {
                Ok(n)
            }
        })
    });
    // converse 1.3.2 required at least 1 minute / 10 seconds; short values are
    // useful in tests and harmless, so only nonsense below a second is refused.
    let session_timeout = r.parse_or(HTTP_SESSION_TIMEOUT, d.session_timeout, |s| {
        parse::duration_at_least(s, Duration::from_secs(1))
    });
    let session_cleanup_interval = r.parse_or(
        HTTP_SESSION_CLEANUP_INTERVAL,
        d.session_cleanup_interval,
        |s| parse::duration_at_least(s, Duration::from_secs(1)),
    );
    let max_concurrent_sessions = r.parse_or(
        HTTP_MAX_CONCURRENT_SESSIONS,
        d.max_concurrent_sessions,
        |s| parse::integer(s, 1, 10_000),
    );
    let max_concurrent_requests = r.parse_or(
        HTTP_MAX_CONCURRENT_REQUESTS,
        d.max_concurrent_requests,
        |s| parse::integer(s, 1, 100_000),
    );

    let cors = parse_cors(r, d.cors.clone());

    let dns_rebinding_protection = r.parse_or(
        HTTP_DNS_REBINDING_PROTECTION,
        d.dns_rebinding_protection,
        parse::boolean,
    );
    let allowed_hosts = parse_allowed_hosts(r, dns_rebinding_protection, d.allowed_hosts.clone());
    let allowed_origins = r
        .parse_opt(HTTP_ALLOWED_ORIGINS, |s| {
            each(s, parse::list, parse::origin)
        })
        .unwrap_or_default();

    let rate_limit = parse_rate_limit(r, &d.rate_limit);
    let trusted_proxies = r
        .parse_opt(HTTP_TRUSTED_PROXIES, |s| {
            each(s, parse::list, parse::ip_net)
        })
        .unwrap_or_default();

    HttpConfig {
        host,
        port,
        request_timeout,
        max_request_size,
        session_timeout,
        session_cleanup_interval,
        max_concurrent_sessions,
        max_concurrent_requests,
        cors,
        dns_rebinding_protection,
        allowed_hosts,
        allowed_origins,
        rate_limit,
        trusted_proxies,
    }
}

/// A variable that has an alias (`HTTP_HOST`/`HOST`): whichever is set, parsed with `parse`;
/// the default when neither is set, or (with an error naming the one used) when it is invalid.
fn aliased_or<T, E: std::fmt::Display>(
    r: &mut Reader,
    primary: &'static str,
    alias: &'static str,
    default: T,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> T {
    match r.aliased(primary, alias, false) {
        Some((var, value)) => match parse(&value) {
            Ok(v) => v,
            Err(e) => {
                r.invalid(var, &value, e);
                default
            }
        },
        None => default,
    }
}

/// `HTTP_ALLOWED_HOSTS`; with DNS rebinding protection on, an empty list would reject every
/// request, so it is an error.
fn parse_allowed_hosts(
    r: &mut Reader,
    dns_rebinding_protection: bool,
    default: Vec<String>,
) -> Vec<String> {
    let allowed_hosts = r
        .parse_opt(HTTP_ALLOWED_HOSTS, |s| each(s, parse::list, parse::host))
        .unwrap_or(default);
    if dns_rebinding_protection && allowed_hosts.is_empty() && !r.has_error(HTTP_ALLOWED_HOSTS) {
        r.error(
            HTTP_ALLOWED_HOSTS,
            "lists no host, so every request would be rejected; list the host names clients use \
             or set HTTP_DNS_REBINDING_PROTECTION=false",
        );
    }
    allowed_hosts
}

fn parse_rate_limit(r: &mut Reader, d: &RateLimitConfig) -> RateLimitConfig {
    RateLimitConfig {
        enabled: r.parse_or(HTTP_RATE_LIMIT_ENABLED, d.enabled, parse::boolean),
        window: r.parse_or(HTTP_RATE_LIMIT_WINDOW, d.window, |s| {
            parse::duration_at_least(s, SECOND)
        }),
        max_requests: r.parse_or(HTTP_RATE_LIMIT_MAX_REQUESTS, d.max_requests, |s| {
            parse::integer(s, 1, u64::from(u32::MAX))
        }),
    }
}

fn parse_cors(r: &mut Reader, d: CorsConfig) -> CorsConfig {
    let enabled = r.parse_or(HTTP_ENABLE_CORS, d.enabled, parse::boolean);
    let origins = r
        .parse_opt(HTTP_CORS_ORIGINS, |s| {
            wildcard_or(s, |o| parse::origin(o).map_err(|e| e.to_string()))
        })
        .unwrap_or(d.origins);
    let methods = r
        .parse_opt(HTTP_CORS_METHODS, |s| {
            wildcard_or(s, |m| {
                if parse::is_token(m) {
                    Ok(m.to_ascii_uppercase())
                } else {
                    Err("expected method names such as GET,POST".to_owned())
                }
            })
        })
        .unwrap_or(d.methods);
    let headers = r
        .parse_opt(HTTP_CORS_HEADERS, |s| {
            wildcard_or(s, |h| {
                if parse::is_token(h) {
                    Ok(h.to_owned())
                } else {
                    Err("expected header names such as Content-Type,Authorization".to_owned())
                }
            })
        })
        .unwrap_or(d.headers);
    let credentials = r.parse_or(HTTP_CORS_CREDENTIALS, d.credentials, parse::boolean);
    if credentials {
        for (var, list) in [
            (HTTP_CORS_ORIGINS, &origins),
            (HTTP_CORS_METHODS, &methods),
            (HTTP_CORS_HEADERS, &headers),
        ] {
            if list.iter().any(|e| e == "*") {
                r.error(
                    HTTP_CORS_CREDENTIALS,
                    format!(
                        "true cannot be combined with {var}=* (browsers reject credentials with a \
                         wildcard); list the allowed values explicitly"
                    ),
                );
            }
        }
    }
    CorsConfig {
        enabled,
        origins,
        methods,
        headers,
        credentials,
    }
}

/// Apply `item` to every entry of `split(s)`, failing on the first bad entry (named by position,
/// so a long list points at the right place).
fn each<T>(
    s: &str,
    split: fn(&str) -> Vec<String>,
    item: impl Fn(&str) -> Result<T, ParseError>,
) -> Result<Vec<T>, ParseError> {
    split(s)
        .iter()
        .enumerate()
        .map(|(i, e)| {
            item(e).map_err(|err| ParseError::Rule(format!("entry {} ({e:?}): {err}", i + 1)))
        })
        .collect()
}

/// A comma list that is either exactly `*` or entries accepted by `item`.
fn wildcard_or(
    s: &str,
    item: impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<String>, ParseError> {
    let entries = parse::list(s);
    if entries.iter().any(|e| e == "*") {
        return if entries.len() == 1 {
            Ok(entries)
        } else {
            Err(ParseError::Rule("\"*\" must be the only entry".to_owned()))
        };
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            item(e).map_err(|err| ParseError::Rule(format!("entry {} ({e:?}): {err}", i + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(vars: &[(&str, &str)]) -> (HttpConfig, Vec<crate::ConfigError>, Vec<String>) {
        let mut r = Reader::new(vars.iter().copied());
        let c = parse(&mut r);
        let (e, w) = r.finish();
        (c, e, w)
    }

    #[test]
    fn defaults() {
        let (c, e, _) = http(&[]);
        assert!(e.is_empty());
        assert_eq!(c, HttpConfig::default());
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, 3157);
        assert_eq!(c.max_request_size, 10 << 20);
        assert!(c.cors.origins.is_empty());
        assert!(c.cors.headers.contains(&"Mcp-Protocol-Version".to_owned()));
        assert!(c.dns_rebinding_protection);
        assert_eq!(c.allowed_hosts, vec!["localhost", "127.0.0.1", "::1"]);
        assert!(!c.cors.any_origin());
    }

    #[test]
    fn aliases_port_and_host() {
        let (c, e, w) = http(&[("PORT", "8080"), ("HOST", "0.0.0.0")]);
        assert!(e.is_empty());
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 8080));
        assert!(w.is_empty());

        let (c, e, w) = http(&[
            ("PORT", "8080"),
            ("HTTP_PORT", "9090"),
            ("HOST", "::"),
            ("HTTP_HOST", "::"),
        ]);
        assert!(e.is_empty());
        assert_eq!(c.port, 9090);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("HTTP_PORT"));

        let (_, e, _) = http(&[("PORT", "http")]);
        assert_eq!(e[0].var, "PORT");
    }

    #[test]
    fn values_in_both_formats() {
        let (c, e, _) = http(&[
            ("HTTP_REQUEST_TIMEOUT", "300000"),
            ("HTTP_SESSION_TIMEOUT", "1h"),
            ("HTTP_MAX_REQUEST_SIZE", "10Mi"),
            ("HTTP_RATE_LIMIT_WINDOW", "900000"),
            ("HTTP_RATE_LIMIT_ENABLED", "yes"),
            ("HTTP_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"),
            ("HTTP_ALLOWED_ORIGINS", "https://App.example.com/"),
            ("HTTP_ALLOWED_HOSTS", "MCP.example.com,localhost"),
        ]);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.request_timeout, Duration::from_secs(300));
        assert_eq!(c.session_timeout, Duration::from_secs(3600));
        assert_eq!(c.max_request_size, 10 << 20);
        assert!(c.rate_limit.enabled);
        assert_eq!(c.rate_limit.window, Duration::from_secs(900));
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.trusted_proxies[1].to_string(), "192.168.1.1/32");
        assert_eq!(c.allowed_origins, vec!["https://app.example.com"]);
        assert_eq!(c.allowed_hosts, vec!["mcp.example.com", "localhost"]);
    }

    #[test]
    fn minimums_and_ranges() {
        let (_, e, _) = http(&[
            ("HTTP_SESSION_TIMEOUT", "999"),
            ("HTTP_SESSION_CLEANUP_INTERVAL", "500ms"),
            ("HTTP_REQUEST_TIMEOUT", "999"),
            ("HTTP_MAX_CONCURRENT_SESSIONS", "10001"),
            ("HTTP_RATE_LIMIT_MAX_REQUESTS", "0"),
            ("HTTP_MAX_REQUEST_SIZE", "0"),
            ("HTTP_PORT", "65536"),
        ]);
        let vars: Vec<_> = e.iter().map(|e| e.var).collect();
        assert_eq!(
            vars,
            [
                "HTTP_PORT",
                "HTTP_REQUEST_TIMEOUT",
                "HTTP_MAX_REQUEST_SIZE",
                "HTTP_SESSION_TIMEOUT",
                "HTTP_SESSION_CLEANUP_INTERVAL",
                "HTTP_MAX_CONCURRENT_SESSIONS",
                "HTTP_RATE_LIMIT_MAX_REQUESTS"
            ]
        );
        assert!(e[3].message.contains("at least 1s"), "{}", e[3].message);
    }

    #[test]
    fn cors_lists() {
        let (c, e, _) = http(&[
            (
                "HTTP_CORS_ORIGINS",
                "https://a.example.com, http://localhost:5173",
            ),
            ("HTTP_CORS_METHODS", "get,post"),
            ("HTTP_CORS_HEADERS", "Content-Type,X-Custom"),
            ("HTTP_CORS_CREDENTIALS", "true"),
            ("HTTP_ENABLE_CORS", "0"),
        ]);
        assert!(e.is_empty(), "{e:?}");
        assert!(!c.cors.enabled);
        assert_eq!(
            c.cors.origins,
            vec!["https://a.example.com", "http://localhost:5173"]
        );
        assert_eq!(c.cors.methods, vec!["GET", "POST"]);
        assert_eq!(c.cors.headers, vec!["Content-Type", "X-Custom"]);
        assert!(c.cors.credentials);
        assert!(!c.cors.any_origin());
    }

    #[test]
    fn cors_credentials_with_wildcard_is_rejected() {
        let (_, e, _) = http(&[
            ("HTTP_CORS_CREDENTIALS", "true"),
            ("HTTP_CORS_ORIGINS", "*"),
        ]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].var, "HTTP_CORS_CREDENTIALS");
        let (_, e, _) = http(&[("HTTP_CORS_ORIGINS", "*,https://a.com")]);
        assert_eq!(e[0].var, "HTTP_CORS_ORIGINS");
        let (_, e, _) = http(&[("HTTP_CORS_HEADERS", "Bad Header")]);
        assert_eq!(e[0].var, "HTTP_CORS_HEADERS");
    }

    #[test]
    fn bad_lists_name_the_entry() {
        let (_, e, _) = http(&[
            ("HTTP_TRUSTED_PROXIES", "10.0.0.0/8,nope"),
            ("HTTP_ALLOWED_ORIGINS", "https://a.com/path"),
            ("HTTP_ALLOWED_HOSTS", " , "),
        ]);
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!(e[0].var, "HTTP_ALLOWED_HOSTS");
        assert_eq!(e[1].var, "HTTP_ALLOWED_ORIGINS");
        assert_eq!(e[2].var, "HTTP_TRUSTED_PROXIES");
        assert!(
            e[2].message.contains("entry 2 (\"nope\")"),
            "{}",
            e[2].message
        );
    }
}
