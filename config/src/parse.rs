//! Value parsers shared by every configuration section.
//!
//! Each parser takes the (already trimmed, non-empty) text of one variable and returns the typed
//! value or a [`ParseError`] that states the rule. The caller adds the variable name, and the
//! value only when the variable is not secret. The parsers are public so that the operator can
//! validate custom-resource fields with exactly the rules the server applies.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

/// Why a value was rejected. The text says what is allowed, never what was given: the caller
/// decides whether the value may be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "expected milliseconds (\"300000\") or a duration such as \"30s\", \"15m\", \"24h\", \"1h 30m\""
    )]
    Duration,
    #[error("must be at least {}", humantime::format_duration(*.0))]
    DurationTooShort(Duration),
    #[error(
        "expected a size: bytes (\"1048576\") or a number with a unit b, kb, mb, gb, tb (1024-based) or Ki, Mi, Gi, Ti (\"10mb\", \"10Mi\")"
    )]
    Size,
    #[error("size does not fit in 64 bits")]
    SizeOverflow,
    #[error("expected true, false, 1, 0, yes or no")]
    Bool,
    #[error("expected a whole number from {min} to {max}")]
    Integer { min: u64, max: u64 },
    #[error("expected one of: {0}")]
    OneOf(&'static str),
    #[error("expected an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8")]
    IpNet,
    #[error("expected an absolute http:// or https:// URL: {0}")]
    Url(&'static str),
    #[error(
        "expected an origin scheme://host[:port] without a path (\"https://app.example.com\", \"http://localhost:8080\") or \"null\""
    )]
    Origin,
    #[error("{0}")]
    Rule(String),
}

/// A duration: a bare integer is milliseconds (what converse 1.3.2 documented, so old `.env`
/// files keep working); anything else is a humantime string (`30s`, `15m`, `24h`, `1h 30m`,
/// `500ms`).
pub fn duration(s: &str) -> Result<Duration, ParseError> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| ParseError::Duration);
    }
    humantime::parse_duration(s).map_err(|_| ParseError::Duration)
}

/// [`duration`] with a lower bound (the original's minimums, e.g. a session timeout of at least
/// one minute, stop configurations that would thrash).
pub fn duration_at_least(s: &str, min: Duration) -> Result<Duration, ParseError> {
    let d = duration(s)?;
    if d < min {
        Err(ParseError::DurationTooShort(min))
    } else {
        Ok(d)
    }
}

/// A byte size. A bare integer is bytes; otherwise a number (decimals allowed, the result is
/// rounded down) followed by an optional space and a unit, case-insensitive: `b`, `kb`, `mb`,
/// `gb`, `tb` (1024-based, as the npm `bytes` package that converse 1.3.2 used) or the Kubernetes
/// binary suffixes `Ki`, `Mi`, `Gi`, `Ti` (the operator passes quantities like `10Mi` through).
/// Decimal Kubernetes suffixes (`k`, `M`, `G`) are rejected rather than guessed.
pub fn size(s: &str) -> Result<u64, ParseError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let multiplier: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "ki" | "kib" => 1 << 10,
        "mb" | "mi" | "mib" => 1 << 20,
        "gb" | "gi" | "gib" => 1 << 30,
        "tb" | "ti" | "tib" => 1 << 40,
        _ => return Err(ParseError::Size),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) || number.ends_with('.') {
        return Err(ParseError::Size);
    }
    let whole: u64 = int.parse().map_err(|_| ParseError::SizeOverflow)?;
    let mut total = whole
        .checked_mul(multiplier)
        .ok_or(ParseError::SizeOverflow)?;
    if !frac.is_empty() {
        // Only the first 18 digits matter: 10^18 * 2^40 still fits in u128.
        let digits = &frac[..frac.len().min(18)];
        let numerator: u128 = digits.parse().map_err(|_| ParseError::Size)?;
        let denominator = 10u128.pow(digits.len() as u32);
        let part = numerator * u128::from(multiplier) / denominator;
        let part = u64::try_from(part).map_err(|_| ParseError::SizeOverflow)?;
        total = total.checked_add(part).ok_or(ParseError::SizeOverflow)?;
    }
    Ok(total)
}

/// A boolean as converse 1.3.2 accepted it: `true/false/1/0/yes/no`, case-insensitive.
pub fn boolean(s: &str) -> Result<bool, ParseError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ParseError::Bool),
    }
}

/// An unsigned integer in `min..=max`. Anything but plain digits (signs, decimals, trailing
/// text that JavaScript's `parseInt` silently ignored) is rejected.
pub fn integer<T: TryFrom<u64>>(s: &str, min: u64, max: u64) -> Result<T, ParseError> {
    let err = ParseError::Integer { min, max };
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err);
    }
    let n: u64 = s.parse().map_err(|_| err.clone())?;
    if !(min..=max).contains(&n) {
        return Err(err);
    }
    T::try_from(n).map_err(|_| err)
}

/// Split on `,`, trim, drop empty entries.
pub fn list(s: &str) -> Vec<String> {
    split(s, |c| c == ',')
}

/// Split on `,` or line breaks (a Secret holding one key per line), trim, drop empties.
pub fn list_lines(s: &str) -> Vec<String> {
    split(s, |c| c == ',' || c == '\n' || c == '\r')
}

/// Split on `,` or any whitespace (OAuth scopes are space-separated by convention).
pub fn list_words(s: &str) -> Vec<String> {
    split(s, |c| c == ',' || c.is_whitespace())
}

fn split(s: &str, sep: impl Fn(char) -> bool) -> Vec<String> {
    s.split(sep)
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A CIDR (`10.0.0.0/8`, `fd00::/8`) or a bare address (one host: /32 or /128). Host bits are
/// cleared (`10.1.2.3/8` → `10.0.0.0/8`) so the stored network is canonical.
pub fn ip_net(s: &str) -> Result<IpNet, ParseError> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| ParseError::IpNet)
}

/// An absolute `http`/`https` URL with a host, no credentials (a URL ends up in logs and Debug
/// output; secrets belong in their own variables) and no fragment.
pub fn http_url(s: &str) -> Result<Url, ParseError> {
    let url = Url::parse(s.trim()).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => ParseError::Url(
            "it is relative; include scheme and host, e.g. https://example.com/path",
        ),
        _ => ParseError::Url("it is not a valid URL"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ParseError::Url("the scheme is not http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ParseError::Url("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ParseError::Url(
            "credentials in a URL are not allowed (they would be logged); use the matching secret variable",
        ));
    }
    if url.fragment().is_some() {
        return Err(ParseError::Url("a fragment (#...) is not allowed"));
    }
    Ok(url)
}

/// A provider base URL: [`http_url`], with trailing slashes removed from a non-root path
/// (`https://api.openai.com/v1/` → `https://api.openai.com/v1`). A root path stays `/`, which
/// `url::Url` always keeps; use [`crate::providers::join_path`] to append endpoint paths so that
/// both forms give the same result.
pub fn base_url(s: &str) -> Result<Url, ParseError> {
    let mut url = http_url(s)?;
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(if trimmed.is_empty() { "/" } else { &trimmed });
    Ok(url)
}

/// A browser origin, `scheme://host[:port]` or `null`, returned in the form browsers send in the
/// `Origin` header: lower-case, default port omitted, no trailing slash (one trailing `/` is
/// tolerated in the input because people copy it from the address bar).
pub fn origin(s: &str) -> Result<String, ParseError> {
    let s = s.trim();
    if s == "null" {
        return Ok(s.to_owned());
    }
    let s = s.strip_suffix('/').unwrap_or(s);
    // `scheme://host:*` allows any port (local dev servers pick their own).
    if let Some(base) = s.strip_suffix(":*") {
        let o = origin(base)?;
        let has_port = Url::parse(&o).ok().and_then(|u| u.port()).is_some();
        return if o == "null" || has_port {
            Err(ParseError::Origin)
        } else {
            Ok(format!("{o}:*"))
        };
    }
    let (scheme, authority) = s.split_once("://").ok_or(ParseError::Origin)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok
        || authority.is_empty()
        || authority.contains(|c: char| matches!(c, '/' | '?' | '#' | '@') || c.is_whitespace())
    {
        return Err(ParseError::Origin);
    }
    let url = Url::parse(s).map_err(|_| ParseError::Origin)?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(ParseError::Origin)?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!(
        "{}://{}{}",
        url.scheme(),
        host.to_ascii_lowercase(),
        port
    ))
}

/// A host name as it appears in a `Host` header (optionally with a port), lower-cased. Rejects
/// what is clearly not a host: a scheme, a path, credentials or spaces.
pub fn host(s: &str) -> Result<String, ParseError> {
    let s = s.trim();
    if s.is_empty()
        || s.contains("://")
        || s.contains(|c: char| {
            matches!(c, '/' | '?' | '#' | '@' | ',') || c.is_whitespace() || c.is_control()
        })
    {
        return Err(ParseError::Rule(
            "expected a host name such as mcp.example.com, 127.0.0.1 or ::1 (no scheme, no path)"
                .to_owned(),
        ));
    }
    Ok(s.to_ascii_lowercase())
}

/// An absolute filesystem path (a relative one would depend on the working directory of the
/// container, which nobody sets on purpose).
pub fn absolute_path(s: &str) -> Result<PathBuf, ParseError> {
    let path = PathBuf::from(s.trim());
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(ParseError::Rule(
            "expected an absolute path such as /data/files".to_owned(),
        ))
    }
}

/// Whether `s` is an RFC 9110 token (header names, methods).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_bare_integers_are_milliseconds() {
        assert_eq!(duration("300000"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration(" 1500 "), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn durations_humantime() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn durations_reject_garbage() {
        for bad in [
            "",
            "abc",
            "-5",
            "-5s",
            "1.5",
            "5 parsecs",
            "99999999999999999999999",
        ] {
            assert_eq!(duration(bad), Err(ParseError::Duration), "{bad:?}");
        }
    }

    #[test]
    fn duration_minimum() {
        let min = Duration::from_secs(60);
        assert_eq!(duration_at_least("1m", min), Ok(min));
        assert_eq!(
            duration_at_least("59999", min),
            Err(ParseError::DurationTooShort(min))
        );
        assert_eq!(
            ParseError::DurationTooShort(min).to_string(),
            "must be at least 1m"
        );
    }

    #[test]
    fn sizes_units() {
        assert_eq!(size("1048576"), Ok(1_048_576));
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("100b"), Ok(100));
        assert_eq!(size("512kb"), Ok(512 * 1024));
        assert_eq!(size("10mb"), Ok(10 * 1024 * 1024));
        assert_eq!(size("10MB"), Ok(10 * 1024 * 1024));
        assert_eq!(size("10 mb"), Ok(10 * 1024 * 1024));
        assert_eq!(size("2gb"), Ok(2 << 30));
        assert_eq!(size("1tb"), Ok(1 << 40));
        assert_eq!(size("10Mi"), Ok(10 << 20));
        assert_eq!(size("4Ki"), Ok(4096));
        assert_eq!(size("1Gi"), Ok(1 << 30));
        assert_eq!(size("1.5kb"), Ok(1536));
        assert_eq!(size("0.5mb"), Ok(512 * 1024));
    }

    #[test]
    fn sizes_reject_garbage_negative_and_overflow() {
        for bad in [
            "", "mb", "-1", "-1mb", "10xb", "10M", "10k", "1.2.3mb", "1.mb", ".5mb", "ten",
        ] {
            assert_eq!(size(bad), Err(ParseError::Size), "{bad:?}");
        }
        assert_eq!(size("18446744073709551616"), Err(ParseError::SizeOverflow));
        assert_eq!(size("20000000000tb"), Err(ParseError::SizeOverflow));
        assert_eq!(size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn booleans() {
        for t in ["true", "TRUE", "1", "yes", "Yes"] {
            assert_eq!(boolean(t), Ok(true), "{t}");
        }
        for f in ["false", "False", "0", "no", "NO"] {
            assert_eq!(boolean(f), Ok(false), "{f}");
        }
        for bad in ["", "on", "off", "y", "2", "truthy"] {
            assert_eq!(boolean(bad), Err(ParseError::Bool), "{bad}");
        }
    }

    #[test]
    fn integers() {
        assert_eq!(integer::<u16>("3157", 1, 65535), Ok(3157));
        assert_eq!(
            integer::<u16>("0", 1, 65535),
            Err(ParseError::Integer { min: 1, max: 65535 })
        );
        assert!(integer::<u16>("65536", 1, 65535).is_err());
        assert!(integer::<u32>("100abc", 1, 10).is_err());
        assert!(integer::<u32>("-1", 0, 10).is_err());
        assert!(integer::<u32>("+1", 0, 10).is_err());
        assert!(integer::<u32>("1.0", 0, 10).is_err());
        assert!(integer::<u32>("99999999999999999999999", 0, u64::MAX).is_err());
        assert_eq!(integer::<u32>(" 7 ", 0, 10), Ok(7));
    }

    #[test]
    fn lists() {
        assert_eq!(list(" a, b ,,c ,"), vec!["a", "b", "c"]);
        assert!(list(" , ,").is_empty());
        assert_eq!(list("a\nb"), vec!["a\nb"]);
        assert_eq!(
            list_lines("k1\nk2,k3\r\n\n k4 "),
            vec!["k1", "k2", "k3", "k4"]
        );
        assert_eq!(
            list_words("mcp:tools  mcp:read,admin"),
            vec!["mcp:tools", "mcp:read", "admin"]
        );
    }

    #[test]
    fn cidrs() {
        assert_eq!(
            ip_net("10.0.0.0/8").map(|n| n.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            ip_net("10.1.2.3/8").map(|n| n.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            ip_net("192.168.1.7").map(|n| n.to_string()),
            Ok("192.168.1.7/32".into())
        );
        assert_eq!(ip_net("::1").map(|n| n.to_string()), Ok("::1/128".into()));
        assert_eq!(
            ip_net("fd00::/8").map(|n| n.to_string()),
            Ok("fd00::/8".into())
        );
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0", "::1/129"] {
            assert_eq!(ip_net(bad), Err(ParseError::IpNet), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            http_url("https://idp.example.com/realms/a").map(String::from),
            Ok("https://idp.example.com/realms/a".into())
        );
        assert!(http_url("http://localhost:8080").is_ok());
        for bad in [
            "/oauth/callback",
            "idp.example.com",
            "ftp://example.com",
            "https://user:pw@example.com",
            "https://example.com/#frag",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(matches!(http_url(bad), Err(ParseError::Url(_))), "{bad}");
        }
    }

    #[test]
    fn base_urls_lose_trailing_slashes() {
        assert_eq!(
            base_url("https://api.openai.com/v1/").map(String::from),
            Ok("https://api.openai.com/v1".into())
        );
        assert_eq!(
            base_url("https://api.openai.com/v1//").map(String::from),
            Ok("https://api.openai.com/v1".into())
        );
        assert_eq!(
            base_url("https://api.anthropic.com").map(String::from),
            Ok("https://api.anthropic.com/".into())
        );
        assert_eq!(
            base_url("https://api.anthropic.com/").map(String::from),
            Ok("https://api.anthropic.com/".into())
        );
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://App.Example.com"),
            Ok("https://app.example.com".into())
        );
        assert_eq!(
            origin("https://app.example.com/"),
            Ok("https://app.example.com".into())
        );
        assert_eq!(
            origin("https://app.example.com:443"),
            Ok("https://app.example.com".into())
        );
        assert_eq!(
            origin("http://localhost:8080"),
            Ok("http://localhost:8080".into())
        );
        assert_eq!(origin("http://[::1]:3000"), Ok("http://[::1]:3000".into()));
        assert_eq!(origin("null"), Ok("null".into()));
        assert_eq!(
            origin("http://LocalHost:*"),
            Ok("http://localhost:*".into())
        );
        assert_eq!(origin("http://localhost:8080:*"), Err(ParseError::Origin));
        assert_eq!(origin("null:*"), Err(ParseError::Origin));
        for bad in [
            "app.example.com",
            "https://app.example.com/path",
            "https://",
            "*",
            "https://a@b.com",
            "https://a.com?x",
        ] {
            assert_eq!(origin(bad), Err(ParseError::Origin), "{bad}");
        }
    }

    #[test]
    fn hosts_and_paths() {
        assert_eq!(host("MCP.example.com"), Ok("mcp.example.com".into()));
        assert_eq!(host("::1"), Ok("::1".into()));
        assert_eq!(host("localhost:3157"), Ok("localhost:3157".into()));
        assert!(host("https://mcp.example.com").is_err());
        assert!(host("mcp.example.com/mcp").is_err());
        assert!(host("bell\u{7}").is_err());
        assert_eq!(absolute_path("/data"), Ok(PathBuf::from("/data")));
        assert!(absolute_path("data").is_err());
    }

    #[test]
    fn tokens() {
        assert!(is_token("Mcp-Session-Id"));
        assert!(is_token("GET"));
        assert!(!is_token("Bad Header"));
        assert!(!is_token(""));
    }
}
