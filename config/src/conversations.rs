//! The continuation store: where conversation history lives, for how long, and how much of it.

use std::time::Duration;

use secrecy::SecretString;

use crate::parse::{self, ParseError};
use crate::reader::Reader;
use crate::vars::*;

string_enum! {
    /// Where continuation history is kept.
    #[derive(Default)]
    pub enum ConversationStoreKind: "memory, redis" {
        /// Per process: lost on restart, not shared between replicas (use session affinity).
        #[default]
        Memory = "memory",
        /// Shared by every replica.
        Redis = "redis",
    }
}

#[derive(Debug, Clone)]
pub struct ConversationConfig {
    pub store: ConversationStoreKind,
    /// `redis://` or `rediss://` URL, secret because it may carry a password. Always `Some`
    /// when `store` is `Redis`.
    pub redis_url: Option<SecretString>,
    pub ttl: Duration,
    pub max_conversations: u32,
    pub max_messages: u32,
    /// Per conversation.
    pub max_bytes: u64,
}

impl Default for ConversationConfig {
    fn default() -> Self {
        ConversationConfig {
            store: ConversationStoreKind::Memory,
            redis_url: None,
            ttl: Duration::from_secs(24 * 3600),
            max_conversations: 1000,
            max_messages: 100,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Scheme and host checks only; the Redis client parses the rest. The message never includes
/// the URL (it may contain a password).
fn redis_url(s: &str) -> Result<SecretString, ParseError> {
    let lower = s.to_ascii_lowercase();
    if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
        return Err(ParseError::Rule(
            "must start with redis:// or rediss://".to_owned(),
        ));
    }
    match url::Url::parse(s) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(SecretString::from(s.to_owned()))
        }
        _ => Err(ParseError::Rule(
            "expected redis://[user:password@]host[:port][/db] or rediss://...".to_owned(),
        )),
    }
}

pub(crate) fn parse(r: &mut Reader) -> ConversationConfig {
    let d = ConversationConfig::default();
    let store = r.parse_or(CONVERSATION_STORE, d.store, str::parse);
    let redis_url = r.parse_opt(REDIS_URL, redis_url);
    if store == ConversationStoreKind::Redis && redis_url.is_none() && !r.has_error(REDIS_URL) {
        r.error(
            REDIS_URL,
            format!("is required when {CONVERSATION_STORE}=redis"),
        );
    }
    if store == ConversationStoreKind::Memory && redis_url.is_some() {
        r.warn(format!(
            "{REDIS_URL} is set but not used: {CONVERSATION_STORE} is memory"
        ));
    }
    let at_least_one = |s: &str| parse::integer(s, 1, u64::from(u32::MAX));
    ConversationConfig {
        store,
        redis_url,
        ttl: r.parse_or(CONVERSATION_TTL, d.ttl, |s| {
            parse::duration_at_least(s, Duration::from_secs(1))
        }),
        max_conversations: r.parse_or(CONVERSATION_MAX_COUNT, d.max_conversations, at_least_one),
        max_messages: r.parse_or(CONVERSATION_MAX_MESSAGES, d.max_messages, at_least_one),
        max_bytes: r.parse_or(CONVERSATION_MAX_BYTES, d.max_bytes, |s| {
            parse::size(s).and_then(|n| {
                if n == 0 {
                    Err(ParseError::Rule("must be at least 1 byte".to_owned()))
                } else {
                    Ok(n)
                }
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn conv(vars: &[(&str, &str)]) -> (ConversationConfig, Vec<crate::ConfigError>, Vec<String>) {
        let mut r = Reader::new(vars.iter().copied());
        let c = parse(&mut r);
        let (e, w) = r.finish();
        (c, e, w)
    }

    #[test]
    fn defaults() {
        let (c, e, _) = conv(&[]);
        assert!(e.is_empty());
        assert_eq!(c.store, ConversationStoreKind::Memory);
        assert_eq!(c.ttl, Duration::from_secs(86_400));
        assert_eq!(
            (c.max_conversations, c.max_messages, c.max_bytes),
            (1000, 100, 4 << 20)
        );
    }

    #[test]
    fn redis_store() {
        let (c, e, _) = conv(&[
            ("CONVERSATION_STORE", "Redis"),
            ("REDIS_URL", "rediss://:p4ss@redis:6380/0"),
        ]);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.store, ConversationStoreKind::Redis);
        assert_eq!(
            c.redis_url.map(|u| u.expose_secret().to_owned()).as_deref(),
            Some("rediss://:p4ss@redis:6380/0")
        );

        let (_, e, _) = conv(&[("CONVERSATION_STORE", "redis")]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].var, "REDIS_URL");

        let (_, e, _) = conv(&[
            ("CONVERSATION_STORE", "redis"),
            ("REDIS_URL", "http://:hunter2@redis"),
        ]);
        assert_eq!(e.len(), 1, "bad URL, not also 'missing'");
        assert!(!e[0].message.contains("hunter2"));
    }

    #[test]
    fn unused_redis_url_warns() {
        let (_, e, w) = conv(&[("REDIS_URL", "redis://redis")]);
        assert!(e.is_empty());
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn bounds() {
        let (c, e, _) = conv(&[
            ("CONVERSATION_TTL", "3600000"),
            ("CONVERSATION_MAX_BYTES", "512kb"),
        ]);
        assert!(e.is_empty());
        assert_eq!(c.ttl, Duration::from_secs(3600));
        assert_eq!(c.max_bytes, 512 * 1024);
        let (_, e, _) = conv(&[
            ("CONVERSATION_MAX_COUNT", "0"),
            ("CONVERSATION_MAX_MESSAGES", "x"),
            ("CONVERSATION_STORE", "disk"),
        ]);
        let vars: Vec<_> = e.iter().map(|e| e.var).collect();
        assert_eq!(
            vars,
            [
                "CONVERSATION_STORE",
                "CONVERSATION_MAX_COUNT",
                "CONVERSATION_MAX_MESSAGES"
            ]
        );
    }
}
