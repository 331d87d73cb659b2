//! LLM providers: the built-in ones of [`BUILTIN_PROVIDERS`] and any number of
//! OpenAI-compatible custom endpoints.
//!
//! Keys are not checked for format (converse 1.3.2 refused valid keys by guessing prefixes and
//! lengths); the provider's answer is the check. No key at all is valid: the server starts and
//! its tools explain which variables to set.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::builtin_providers::{BUILTIN_PROVIDERS, BuiltinProvider};
use crate::parse;
use crate::reader::Reader;
use crate::vars::{self, *};

/// A built-in provider that has a key.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub api_key: SecretString,
    /// Absolute http(s) URL. A non-root path has no trailing `/` (`https://api.openai.com/v1`);
    /// a root path is `/` (`https://api.anthropic.com/`), which `url::Url` cannot avoid. Build
    /// endpoint URLs with [`ProviderConfig::endpoint`], which handles both.
    pub base_url: Url,
}

impl ProviderConfig {
    /// `base_url` + `/` + `path`, keeping any query of the base URL.
    pub fn endpoint(&self, path: &str) -> Url {
        join_path(&self.base_url, path)
    }
}

/// An OpenAI-compatible endpoint declared in `CUSTOM_PROVIDERS`.
#[derive(Debug, Clone)]
pub struct CustomProviderConfig {
    /// `[a-z0-9-]+`, unique, not a built-in name.
    pub name: String,
    /// Same normalisation as [`ProviderConfig::base_url`].
    pub base_url: Url,
    /// Optional: self-hosted endpoints (vLLM, Ollama) often need none.
    pub api_key: Option<SecretString>,
    /// At least one model id, in the order given.
    pub models: Vec<String>,
}

impl CustomProviderConfig {
    /// `base_url` + `/` + `path`, keeping any query of the base URL.
    pub fn endpoint(&self, path: &str) -> Url {
        join_path(&self.base_url, path)
    }
}

/// Append `path` to the path of `base` with exactly one `/` between them.
pub fn join_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url
}

#[derive(Debug, Clone)]
pub struct ProvidersConfig {
    /// The built-in providers that have a key, by [`BuiltinProvider::name`].
    pub builtin: BTreeMap<&'static str, ProviderConfig>,
    pub openrouter_referer: Option<String>,
    pub openrouter_title: Option<String>,
    pub custom: Vec<CustomProviderConfig>,
    /// Time limit of one attempt (a reasoning model can think for minutes).
    pub timeout: Duration,
    pub max_retries: u32,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        ProvidersConfig {
            builtin: BTreeMap::new(),
            openrouter_referer: None,
            openrouter_title: None,
            custom: Vec::new(),
            timeout: Duration::from_secs(10 * 60),
            max_retries: 2,
        }
    }
}

impl ProvidersConfig {
    /// The configured built-in provider `name`.
    pub fn get(&self, name: &str) -> Option<&ProviderConfig> {
        self.builtin.get(name)
    }

    /// The configured built-in providers with their table rows, in routing priority order.
    pub fn configured_builtin(
        &self,
    ) -> impl Iterator<Item = (&'static BuiltinProvider, &ProviderConfig)> {
        BUILTIN_PROVIDERS
            .iter()
            .filter_map(|p| self.builtin.get(p.name).map(|c| (p, c)))
    }

    /// Names of the providers that can be used, in routing priority order: the built-in ones
    /// in [`BUILTIN_PROVIDERS`] order, then the custom providers as listed.
    pub fn configured_names(&self) -> Vec<String> {
        self.configured_builtin()
            .map(|(p, _)| p.name.to_owned())
            .chain(self.custom.iter().map(|c| c.name.clone()))
            .collect()
    }

    /// Whether no provider at all is configured (the server runs, but tools cannot answer).
    pub fn is_empty(&self) -> bool {
        self.builtin.is_empty() && self.custom.is_empty()
    }
}

pub(crate) fn parse(r: &mut Reader) -> ProvidersConfig {
    let d = ProvidersConfig::default();
    let builtin = BUILTIN_PROVIDERS
        .iter()
        .filter_map(|p| builtin(r, p).map(|c| (p.name, c)))
        .collect();
    let openrouter_referer = r.string(OPENROUTER_REFERER);
    let openrouter_title = r.string(OPENROUTER_TITLE);
    let custom = parse_custom(r);
    let timeout = r.parse_or(PROVIDER_TIMEOUT, d.timeout, |s| {
        parse::duration_at_least(s, Duration::from_secs(1))
    });
    let max_retries = r.parse_or(PROVIDER_MAX_RETRIES, d.max_retries, |s| {
        parse::integer(s, 0, 10)
    });
    ProvidersConfig {
        builtin,
        openrouter_referer,
        openrouter_title,
        custom,
        timeout,
        max_retries,
    }
}

/// A key as given, minus surrounding whitespace. Only one rule: no control characters inside
/// (a newline in the middle can never be sent in an HTTP header, and is a copy-paste accident).
fn api_key(r: &mut Reader, var: &'static str, shown_as: &str, value: &str) -> Option<SecretString> {
    if value.chars().any(char::is_control) {
        r.invalid_named(
            var,
            shown_as,
            value,
            "contains a control character such as a line break inside the key",
        );
        return None;
    }
    Some(SecretString::from(value.to_owned()))
}

/// The base URL from `url_var`, or `default`. `None` after recording an error.
fn base_url(
    r: &mut Reader,
    url_var: &'static str,
    value: Option<(&'static str, String)>,
    default: &str,
) -> Option<Url> {
    match value {
        Some((var, value)) => match parse::base_url(&value) {
            Ok(url) => Some(url),
            Err(e) => {
                r.invalid(var, &value, e);
                None
            }
        },
        None => match parse::base_url(default) {
            Ok(url) => Some(url),
            Err(e) => {
                // Unreachable with the constants above; reported rather than panicking.
                r.error(
                    url_var,
                    format!("built-in default {default:?} is invalid: {e}"),
                );
                None
            }
        },
    }
}

/// One built-in provider: its base URL is validated even without a key.
fn builtin(r: &mut Reader, p: &BuiltinProvider) -> Option<ProviderConfig> {
    let url_value = read_aliased(r, p.base_url_var, p.base_url_aliases);
    let base_url = base_url(r, p.base_url_var, url_value, p.default_base_url);
    let (var, key) = read_aliased(r, p.key_var, p.key_aliases)?;
    let api_key = api_key(r, var, var, &key)?;
    Some(ProviderConfig {
        api_key,
        base_url: base_url?,
    })
}

/// `primary`, or its alias (the table has at most one per variable; a test checks it).
fn read_aliased(
    r: &mut Reader,
    primary: &'static str,
    aliases: &[&'static str],
) -> Option<(&'static str, String)> {
    match aliases.first() {
        Some(alias) => r.aliased(primary, alias, true),
        None => r.get(primary).map(|v| (primary, v.to_owned())),
    }
}

fn parse_custom(r: &mut Reader) -> Vec<CustomProviderConfig> {
    let names = r.get(CUSTOM_PROVIDERS).map(parse::list).unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for name in names {
        let valid = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            r.invalid(
                CUSTOM_PROVIDERS,
                &name,
                "a provider name may contain only a-z, 0-9 and '-'",
            );
            continue;
        }
        if crate::builtin_providers::is_reserved_name(&name) {
            r.invalid(
                CUSTOM_PROVIDERS,
                &name,
                "is the name of a built-in provider; choose another name",
            );
            continue;
        }
        if seen.contains(&name) {
            r.invalid(CUSTOM_PROVIDERS, &name, "is listed twice");
            continue;
        }
        seen.push(name.clone());
        if let Some(provider) = custom(r, name) {
            out.push(provider);
        }
    }
    warn_orphan_custom_vars(r, &seen);
    out
}

/// One custom provider. Errors are filed under `CUSTOM_PROVIDERS` (the error type holds
/// `&'static str` names) and name the actual per-provider variable in the message.
fn custom(r: &mut Reader, name: String) -> Option<CustomProviderConfig> {
    let url_var = vars::custom_base_url_var(&name);
    let key_var = vars::custom_api_key_var(&name);
    let models_var = vars::custom_models_var(&name);

    let base_url = match r.get(&url_var).map(str::to_owned) {
        None => {
            r.error(
                CUSTOM_PROVIDERS,
                format!("{url_var} is required for custom provider {name:?}"),
            );
            None
        }
        Some(value) => match parse::base_url(&value) {
            Ok(url) => Some(url),
            Err(e) => {
                r.invalid_named(CUSTOM_PROVIDERS, &url_var, &value, e);
                None
            }
        },
    };
    let models = r.get(&models_var).map(parse::list).unwrap_or_default();
    if models.is_empty() {
        r.error(
            CUSTOM_PROVIDERS,
            format!("{models_var} is required for custom provider {name:?}: a comma list of at least one model id"),
        );
    }
    let api_key = match r.get(&key_var).map(str::to_owned) {
        None => None,
        Some(value) => Some(api_key(r, CUSTOM_PROVIDERS, &key_var, &value)?),
    };
    if models.is_empty() {
        return None;
    }
    Some(CustomProviderConfig {
        name,
        base_url: base_url?,
        api_key,
        models,
    })
}

/// `CUSTOM_X_BASE_URL` without `x` in `CUSTOM_PROVIDERS` is almost certainly a forgotten entry.
fn warn_orphan_custom_vars(r: &mut Reader, names: &[String]) {
    let prefixes: Vec<String> = names.iter().map(|n| vars::custom_prefix(n)).collect();
    let mut orphans: Vec<String> = r
        .names()
        .filter(|v| v.starts_with("CUSTOM_") && *v != CUSTOM_PROVIDERS)
        .filter(|v| v.ends_with("_BASE_URL") || v.ends_with("_API_KEY") || v.ends_with("_MODELS"))
        .filter(|v| !prefixes.iter().any(|p| v.starts_with(p.as_str())))
        .map(str::to_owned)
        .collect();
    orphans.sort();
    for v in orphans {
        r.warn(format!(
            "{v} is set but its provider is not listed in {CUSTOM_PROVIDERS}; it is ignored"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn providers(vars: &[(&str, &str)]) -> (ProvidersConfig, Vec<crate::ConfigError>, Vec<String>) {
        let mut r = Reader::new(vars.iter().copied());
        let c = parse(&mut r);
        let (e, w) = r.finish();
        (c, e, w)
    }

    #[test]
    fn no_keys_is_valid() {
        let (c, e, w) = providers(&[]);
        assert!(e.is_empty() && w.is_empty());
        assert!(c.is_empty());
        assert_eq!(c.timeout, Duration::from_secs(600));
        assert_eq!(c.max_retries, 2);
    }

    #[test]
    fn keys_are_not_format_checked_and_defaults_apply() {
        let (c, e, _) = providers(&[
            ("OPENAI_API_KEY", "not-an-sk-key"),
            ("ANTHROPIC_API_KEY", " x\n"),
            ("OPENROUTER_API_KEY", "k"),
            ("OPENROUTER_REFERER", "https://example.com"),
        ]);
        assert!(e.is_empty(), "{e:?}");
        let openai = c.get("openai").expect("openai");
        assert_eq!(openai.api_key.expose_secret(), "not-an-sk-key");
        assert_eq!(openai.base_url.as_str(), "https://api.openai.com/v1");
        assert_eq!(
            openai.endpoint("chat/completions").as_str(),
            "https://api.openai.com/v1/chat/completions"
        );
        let anthropic = c.get("anthropic").expect("anthropic");
        assert_eq!(anthropic.api_key.expose_secret(), "x");
        assert_eq!(
            anthropic.endpoint("/v1/messages").as_str(),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(c.openrouter_referer.as_deref(), Some("https://example.com"));
        assert_eq!(c.configured_names(), ["openai", "anthropic", "openrouter"]);
    }

    #[test]
    fn base_urls_are_validated_and_normalised() {
        let (c, e, _) = providers(&[
            ("XAI_API_KEY", "k"),
            ("XAI_BASE_URL", "http://proxy:8080/xai/v1/"),
        ]);
        assert!(e.is_empty());
        assert_eq!(
            c.get("xai").map(|p| p.base_url.as_str()),
            Some("http://proxy:8080/xai/v1")
        );
        let (_, e, _) = providers(&[("MISTRAL_BASE_URL", "api.mistral.ai")]);
        assert_eq!(e.len(), 1, "validated even without a key");
        assert_eq!(e[0].var, "MISTRAL_BASE_URL");
    }

    #[test]
    fn control_characters_in_keys_are_rejected_without_showing_the_key() {
        let (c, e, _) = providers(&[("DEEPSEEK_API_KEY", "abc\ndef")]);
        assert!(c.get("deepseek").is_none());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].var, "DEEPSEEK_API_KEY");
        assert!(!e[0].message.contains("abc"));
    }

    #[test]
    fn groq_is_a_table_row_like_the_others() {
        let (c, e, _) = providers(&[
            ("GROQ_API_KEY", "gsk"),
            ("GROQ_BASE_URL", "http://gateway/groq/v1/"),
        ]);
        assert!(e.is_empty(), "{e:?}");
        let groq = c.get("groq").expect("groq");
        assert_eq!(groq.api_key.expose_secret(), "gsk");
        assert_eq!(
            groq.endpoint("chat/completions").as_str(),
            "http://gateway/groq/v1/chat/completions"
        );
        let (c, _, _) = providers(&[("GROQ_API_KEY", "gsk")]);
        assert_eq!(
            c.get("groq").map(|p| p.base_url.as_str()),
            Some("https://api.groq.com/openai/v1")
        );
        let (_, e, _) = providers(&[("CUSTOM_PROVIDERS", "groq")]);
        assert!(e[0].message.contains("built-in"), "{e:?}");
    }

    #[test]
    fn every_table_row_has_at_most_one_alias_per_variable() {
        for p in BUILTIN_PROVIDERS {
            assert!(
                p.key_aliases.len() <= 1 && p.base_url_aliases.len() <= 1,
                "{}",
                p.name
            );
        }
    }

    #[test]
    fn gemini_aliases() {
        let (c, e, _) = providers(&[
            ("GEMINI_API_KEY", "g"),
            ("GEMINI_BASE_URL", "https://gemini.proxy/"),
        ]);
        assert!(e.is_empty());
        let g = c.get("google").expect("google");
        assert_eq!(g.api_key.expose_secret(), "g");
        assert_eq!(g.base_url.as_str(), "https://gemini.proxy/");
        assert_eq!(c.configured_names(), ["google"]);

        let (_, e, _) = providers(&[("GEMINI_API_KEY", "g"), ("GOOGLE_API_KEY", "g")]);
        assert!(e.is_empty(), "same value twice is fine");

        let (_, e, _) = providers(&[
            ("GEMINI_API_KEY", "secret-one"),
            ("GOOGLE_API_KEY", "secret-two"),
        ]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].var, "GOOGLE_API_KEY");
        assert!(!e[0].message.contains("secret-"));

        let (_, e, _) = providers(&[
            ("GEMINI_BASE_URL", "https://a"),
            ("GOOGLE_BASE_URL", "https://b"),
        ]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].var, "GOOGLE_BASE_URL");
    }

    #[test]
    fn priority_order() {
        let all = [
            ("OPENROUTER_API_KEY", "k"),
            ("DEEPSEEK_API_KEY", "k"),
            ("MISTRAL_API_KEY", "k"),
            ("ANTHROPIC_API_KEY", "k"),
            ("GOOGLE_API_KEY", "k"),
            ("XAI_API_KEY", "k"),
            ("OPENAI_API_KEY", "k"),
            ("GROQ_API_KEY", "k"),
            ("CUSTOM_PROVIDERS", "zeta,alpha"),
            ("CUSTOM_ZETA_BASE_URL", "http://z/v1"),
            ("CUSTOM_ZETA_MODELS", "m"),
            ("CUSTOM_ALPHA_BASE_URL", "http://a/v1"),
            ("CUSTOM_ALPHA_MODELS", "m"),
        ];
        let (c, e, _) = providers(&all);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            c.configured_names(),
            [
                "openai",
                "xai",
                "google",
                "anthropic",
                "mistral",
                "deepseek",
                "groq",
                "openrouter",
                "zeta",
                "alpha"
            ]
        );
    }

    #[test]
    fn custom_providers() {
        let (c, e, w) = providers(&[
            ("CUSTOM_PROVIDERS", "local-vllm, ollama"),
            (
                "CUSTOM_LOCAL_VLLM_BASE_URL",
                "http://vllm.inference:8000/v1/",
            ),
            ("CUSTOM_LOCAL_VLLM_API_KEY", "vllm-key"),
            ("CUSTOM_LOCAL_VLLM_MODELS", "llama-3.3-70b, qwen-2.5"),
            ("CUSTOM_OLLAMA_BASE_URL", "http://ollama:11434/v1"),
            ("CUSTOM_OLLAMA_MODELS", "llama3"),
        ]);
        assert!(e.is_empty(), "{e:?}");
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.custom.len(), 2);
        let vllm = &c.custom[0];
        assert_eq!(vllm.name, "local-vllm");
        assert_eq!(vllm.base_url.as_str(), "http://vllm.inference:8000/v1");
        assert_eq!(
            vllm.api_key.as_ref().map(|k| k.expose_secret().to_owned()),
            Some("vllm-key".into())
        );
        assert_eq!(vllm.models, ["llama-3.3-70b", "qwen-2.5"]);
        assert_eq!(
            vllm.endpoint("chat/completions").as_str(),
            "http://vllm.inference:8000/v1/chat/completions"
        );
        assert!(c.custom[1].api_key.is_none());
    }

    #[test]
    fn custom_provider_errors() {
        let (c, e, _) = providers(&[
            ("CUSTOM_PROVIDERS", "Bad_Name,openai,dup,dup,nourl,nomodels"),
            ("CUSTOM_DUP_BASE_URL", "http://d"),
            ("CUSTOM_DUP_MODELS", "m"),
            ("CUSTOM_NOMODELS_BASE_URL", "http://n"),
            ("CUSTOM_NOURL_MODELS", "m"),
        ]);
        assert_eq!(c.custom.len(), 1, "only dup survives");
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(e.iter().all(|e| e.var == "CUSTOM_PROVIDERS"));
        let text: Vec<&str> = e.iter().map(|e| e.message.as_str()).collect();
        assert!(text[0].contains("Bad_Name"));
        assert!(text[1].contains("built-in"));
        assert!(text[2].contains("twice"));
        assert!(text[3].contains("CUSTOM_NOURL_BASE_URL"));
        assert!(text[4].contains("CUSTOM_NOMODELS_MODELS"));
    }

    #[test]
    fn custom_provider_secret_and_url_errors() {
        let (_, e, _) = providers(&[
            ("CUSTOM_PROVIDERS", "x"),
            ("CUSTOM_X_BASE_URL", "ftp://x"),
            ("CUSTOM_X_MODELS", "m"),
            ("CUSTOM_X_API_KEY", "se\ncret"),
        ]);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert!(
            e[0].message
                .starts_with("CUSTOM_X_BASE_URL: invalid value \"ftp://x\""),
            "{}",
            e[0].message
        );
        assert!(
            e[1].message
                .starts_with("CUSTOM_X_API_KEY: invalid value (not shown"),
            "{}",
            e[1].message
        );
        assert!(!e[1].message.contains("se\ncret"));
    }

    #[test]
    fn orphan_custom_variables_warn() {
        let (_, e, w) = providers(&[("CUSTOM_FOO_BASE_URL", "http://foo")]);
        assert!(e.is_empty());
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("CUSTOM_FOO_BASE_URL"));
    }

    #[test]
    fn timeout_and_retries() {
        let (c, e, _) = providers(&[("PROVIDER_TIMEOUT", "90s"), ("PROVIDER_MAX_RETRIES", "0")]);
        assert!(e.is_empty());
        assert_eq!((c.timeout, c.max_retries), (Duration::from_secs(90), 0));
        let (_, e, _) = providers(&[("PROVIDER_MAX_RETRIES", "11")]);
        assert_eq!(e[0].var, "PROVIDER_MAX_RETRIES");
    }

    #[test]
    fn join_path_keeps_query() {
        let base = parse::base_url("https://x.example.com/openai/v1/?api-version=1").expect("url");
        assert_eq!(
            join_path(&base, "/chat").as_str(),
            "https://x.example.com/openai/v1/chat?api-version=1"
        );
    }
}
