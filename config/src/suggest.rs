//! Warnings about variables that look like ours but are not: a typo in `MCP_AUTH_STRATEGY`
//! silently leaves a server unauthenticated, so a near miss deserves a log line. Unknown names
//! in general are ignored: the process environment is full of unrelated variables.

use crate::reader::Reader;
use crate::vars::VARIABLES;

/// Prefixes that only this project uses (plus `HTTP_`, which also carries `HTTP_PROXY`; only
/// near misses are reported, so those are left alone).
const PREFIXES: &[&str] = &["MCP_", "HTTP_", "CONVERSE_", "CONVERSATION_"];

/// Variables of converse 1.3.2 that this server no longer reads, and why.
const RETIRED: &[(&str, &str)] = &[(
    "GOOGLE_LOCATION",
    "Gemini is reached through GOOGLE_BASE_URL",
)];

pub(crate) fn check_names(r: &mut Reader) {
    let mut found: Vec<String> = Vec::new();
    for name in r.names() {
        if VARIABLES.iter().any(|v| v.name == name) || name.starts_with("CUSTOM_") {
            continue;
        }
        let upper = name.to_ascii_uppercase();
        if upper != name && VARIABLES.iter().any(|v| v.name == upper) {
            found.push(format!(
                "{name} is ignored: variable names are case-sensitive; did you mean {upper}?"
            ));
            continue;
        }
        if let Some((_, why)) = RETIRED.iter().find(|(n, _)| *n == name) {
            found.push(format!("{name} is ignored: {why}"));
            continue;
        }
        if !PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let best = VARIABLES
            .iter()
            .map(|v| (distance(name, v.name), v.name))
            .min();
        if let Some((d, known)) = best
            && d <= 2
        {
            found.push(format!(
                "{name} is not a known variable; did you mean {known}?"
            ));
        }
    }
    // The environment is a hash map: sort so the log is stable across restarts.
    found.sort();
    for w in found {
        r.warn(w);
    }
}

/// Levenshtein distance over bytes (names are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(vars: &[(&str, &str)]) -> Vec<String> {
        let mut r = Reader::new(vars.iter().copied());
        check_names(&mut r);
        r.finish().1
    }

    #[test]
    fn levenshtein() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("HTTP_POST", "HTTP_PORT"), 1);
    }

    #[test]
    fn near_misses_are_reported() {
        let w = warnings(&[
            ("MCP_AUTH_STRATEGIE", "bearer"),
            ("HTTP_PORTT", "1"),
            ("mcp_api_keys", "x"),
            ("GOOGLE_LOCATION", "x"),
        ]);
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(
            w.iter()
                .any(|w| w.contains("did you mean MCP_AUTH_STRATEGY?"))
        );
        assert!(w.iter().any(|w| w.contains("did you mean HTTP_PORT?")));
        assert!(
            w.iter()
                .any(|w| w.contains("case-sensitive; did you mean MCP_API_KEYS?"))
        );
        assert!(
            w.iter()
                .any(|w| w.starts_with("GOOGLE_LOCATION is ignored"))
        );
    }

    #[test]
    fn unrelated_variables_are_ignored() {
        let w = warnings(&[
            ("PATH", "/bin"),
            ("HTTP_PROXY", "http://proxy"),
            ("MCP_SERVICE_HOST", "10.0.0.1"),
            ("MCP_PORT_80_TCP", "tcp://10.0.0.1:80"),
            ("KUBERNETES_PORT", "tcp://10.0.0.1:443"),
            ("HTTP_PORT", "1"),
            ("CUSTOM_X_MODELS", "m"),
        ]);
        assert!(w.is_empty(), "{w:?}");
    }
}
