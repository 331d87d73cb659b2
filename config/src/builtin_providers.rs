//! The one table of built-in LLM providers.
//!
//! Everything that differs between built-in providers is a row here: the name users and the
//! routing see, the operator's CRD field, the wire format the server speaks, the key and
//! base-URL variables (and their aliases), the default endpoint and the model-name families
//! that route an unknown model to the provider. The parser, the variable reference, the
//! server's provider construction and routing, the operator's env building and the CRD's list
//! of built-in names all read it.
//!
//! Adding an OpenAI-compatible provider: a row here, its field in the operator's
//! `crd/providers.rs`, its models in the server's `catalog/models.yaml` (see
//! docs/ARCHITECTURE.md, "How to add a provider").

/// How the server talks to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// OpenAI's Responses API (with Chat Completions for the models that need it).
    Responses,
    /// Anthropic's Messages API.
    Messages,
    /// Google's `generateContent`.
    Gemini,
    /// OpenAI Chat Completions, as spoken by most other vendors and gateways.
    ChatCompletions,
}

/// What a Chat Completions API understands beyond the common body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatDialect {
    /// The common body only (`reasoning_effort` where the model has one).
    Plain,
    /// OpenAI: `web_search_options` for its search models.
    OpenAi,
    /// OpenRouter: `reasoning.max_tokens` for thinking budgets, the `web` plugin for search.
    OpenRouter,
}

/// A model-name family: how an unknown model name shows which provider it belongs to, so a
/// new model works the day it ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The name starts with this text (lower-case; names are compared lower-cased).
    Prefix(&'static str),
    /// The name starts with this text followed by a digit (`o` → `o3`, `o4-mini`).
    PrefixDigit(&'static str),
    /// `vendor/model`: the name contains a `/`. Checked before every prefix.
    VendorSlash,
}

impl Family {
    /// Whether `lower` (an already lower-cased model name) belongs to this family.
    pub fn matches(self, lower: &str) -> bool {
        match self {
            Family::Prefix(p) => lower.starts_with(p),
            Family::PrefixDigit(p) => lower
                .strip_prefix(p)
                .and_then(|rest| rest.chars().next())
                .is_some_and(|c| c.is_ascii_digit()),
            Family::VendorSlash => lower.contains('/'),
        }
    }
}

/// One built-in provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinProvider {
    /// The provider's name in routing, logs, `/info` and tool output.
    pub name: &'static str,
    /// How people write it, for descriptions ("DeepSeek").
    pub display_name: &'static str,
    /// The operator's field under `spec.providers`.
    pub crd_field: &'static str,
    pub wire: WireFormat,
    /// Meaningful for [`WireFormat::ChatCompletions`] (and OpenAI's Chat Completions models).
    pub dialect: ChatDialect,
    /// The variable holding the API key; setting it enables the provider.
    pub key_var: &'static str,
    /// Other names of the key variable (read the same, an error when both differ).
    pub key_aliases: &'static [&'static str],
    pub base_url_var: &'static str,
    pub base_url_aliases: &'static [&'static str],
    /// The API root as the vendor's official SDKs take it.
    pub default_base_url: &'static str,
    /// Empty for a provider that hosts other vendors' models: then only its catalog entries
    /// route to it.
    pub families: &'static [Family],
}

/// The built-in providers, in routing priority order (model `auto` takes the first configured
/// one; consensus spreads `auto` entries over them in this order).
pub const BUILTIN_PROVIDERS: &[BuiltinProvider] = &[
    BuiltinProvider {
        name: "openai",
        display_name: "OpenAI",
        crd_field: "openai",
        wire: WireFormat::Responses,
        dialect: ChatDialect::OpenAi,
        key_var: "OPENAI_API_KEY",
        key_aliases: &[],
        base_url_var: "OPENAI_BASE_URL",
        base_url_aliases: &[],
        default_base_url: "https://api.openai.com/v1",
        families: &[
            Family::PrefixDigit("o"),
            Family::Prefix("gpt"),
            Family::Prefix("chatgpt-"),
            Family::Prefix("codex-"),
        ],
    },
    BuiltinProvider {
        name: "xai",
        display_name: "X.AI Grok",
        crd_field: "xai",
        wire: WireFormat::ChatCompletions,
        dialect: ChatDialect::Plain,
        key_var: "XAI_API_KEY",
        key_aliases: &[],
        base_url_var: "XAI_BASE_URL",
        base_url_aliases: &[],
        default_base_url: "https://api.x.ai/v1",
        families: &[Family::Prefix("grok")],
    },
    BuiltinProvider {
        name: "google",
        display_name: "Google Gemini",
        crd_field: "google",
        wire: WireFormat::Gemini,
        dialect: ChatDialect::Plain,
        key_var: "GOOGLE_API_KEY",
        // The name Google's own documentation uses.
        key_aliases: &["GEMINI_API_KEY"],
        base_url_var: "GOOGLE_BASE_URL",
        base_url_aliases: &["GEMINI_BASE_URL"],
        default_base_url: "https://generativelanguage.googleapis.com",
        families: &[Family::Prefix("gemini-"), Family::Prefix("gemma-")],
    },
    BuiltinProvider {
        name: "anthropic",
        display_name: "Anthropic",
        crd_field: "anthropic",
        wire: WireFormat::Messages,
        dialect: ChatDialect::Plain,
        key_var: "ANTHROPIC_API_KEY",
        key_aliases: &[],
        base_url_var: "ANTHROPIC_BASE_URL",
        base_url_aliases: &[],
        default_base_url: "https://api.anthropic.com",
        families: &[Family::Prefix("claude")],
    },
    BuiltinProvider {
        name: "mistral",
        display_name: "Mistral",
        crd_field: "mistral",
        wire: WireFormat::ChatCompletions,
        dialect: ChatDialect::Plain,
        key_var: "MISTRAL_API_KEY",
        key_aliases: &[],
        base_url_var: "MISTRAL_BASE_URL",
        base_url_aliases: &[],
        default_base_url: "https://api.mistral.ai/v1",
        families: &[
            Family::Prefix("mistral"),
            Family::Prefix("magistral"),
            Family::Prefix("codestral"),
            Family::Prefix("devstral"),
            Family::Prefix("ministral"),
            Family::Prefix("pixtral"),
        ],
    },
    BuiltinProvider {
        name: "deepseek",
        display_name: "DeepSeek",
        crd_field: "deepseek",
        wire: WireFormat::ChatCompletions,
        dialect: ChatDialect::Plain,
        key_var: "DEEPSEEK_API_KEY",
        key_aliases: &[],
        base_url_var: "DEEPSEEK_BASE_URL",
        base_url_aliases: &[],
        default_base_url: "https://api.deepseek.com/v1",
        families: &[Family::Prefix("deepseek")],
    },
    BuiltinProvider {
        name: "groq",
        display_name: "Groq",
        crd_field: "groq",
        wire: WireFormat::ChatCompletions,
        dialect: ChatDialect::Plain,
        key_var: "GROQ_API_KEY",
        key_aliases: &[],
        base_url_var: "GROQ_BASE_URL",
        base_url_aliases: &[],
        default_base_url: "https://api.groq.com/openai/v1",
        // Groq hosts other vendors' open models (`llama-…`, `openai/gpt-oss-…`), which other
        // providers serve too: only its catalog models route to it, no name family.
        families: &[],
    },
    BuiltinProvider {
        name: "openrouter",
        display_name: "OpenRouter",
        crd_field: "openrouter",
        wire: WireFormat::ChatCompletions,
        dialect: ChatDialect::OpenRouter,
        key_var: "OPENROUTER_API_KEY",
        key_aliases: &[],
        base_url_var: "OPENROUTER_BASE_URL",
        base_url_aliases: &[],
        default_base_url: "https://openrouter.ai/api/v1",
        families: &[Family::VendorSlash],
    },
];

/// The built-in provider called `name`.
pub fn builtin(name: &str) -> Option<&'static BuiltinProvider> {
    BUILTIN_PROVIDERS.iter().find(|p| p.name == name)
}

/// Names a custom provider may not take: the built-in names and the Gemini alias `gemini`.
pub fn is_reserved_name(name: &str) -> bool {
    name == "gemini" || builtin(name).is_some()
}

/// Every name [`is_reserved_name`] refuses, for messages and CEL rules.
pub fn reserved_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = BUILTIN_PROVIDERS.iter().map(|p| p.name).collect();
    names.push("gemini");
    names
}

/// The key variables of the built-in providers, for messages like "set one of ...".
pub fn key_vars() -> Vec<&'static str> {
    BUILTIN_PROVIDERS.iter().map(|p| p.key_var).collect()
}

/// The provider an unknown model name evidently belongs to: `vendor/model` first, then the
/// prefixes in table order.
pub fn family_of(model: &str) -> Option<&'static BuiltinProvider> {
    let lower = model.to_ascii_lowercase();
    let by = |family: &dyn Fn(&Family) -> bool| {
        BUILTIN_PROVIDERS
            .iter()
            .find(|p| p.families.iter().any(family))
    };
    if Family::VendorSlash.matches(&lower) {
        return by(&|f| *f == Family::VendorSlash);
    }
    by(&|f| f.matches(&lower))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fields_and_variables_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for p in BUILTIN_PROVIDERS {
            for v in [p.key_var, p.base_url_var]
                .iter()
                .chain(p.key_aliases)
                .chain(p.base_url_aliases)
            {
                assert!(seen.insert(*v), "{v} used twice");
                assert!(
                    v.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                    "{v}"
                );
            }
            assert!(seen.insert(p.name), "{} used twice", p.name);
            assert!(
                p.name.bytes().all(|b| b.is_ascii_lowercase()),
                "{}: custom provider names may use [a-z0-9-], built-ins must not collide",
                p.name
            );
            assert!(p.key_var.ends_with("_API_KEY") && p.base_url_var.ends_with("_BASE_URL"));
            assert!(crate::parse::base_url(p.default_base_url).is_ok());
        }
    }

    #[test]
    fn families_route_unknown_names() {
        let cases = [
            ("gpt-6", Some("openai")),
            ("o5-mini", Some("openai")),
            ("omni", None),
            ("chatgpt-4o-latest", Some("openai")),
            ("claude-opus-5", Some("anthropic")),
            ("gemini-3-pro", Some("google")),
            ("gemma-3-27b", Some("google")),
            ("grok-5", Some("xai")),
            ("magistral-large-2612", Some("mistral")),
            ("codestral-2601", Some("mistral")),
            ("deepseek-v4", Some("deepseek")),
            ("llama-4-maverick", None),
            ("deepseek/deepseek-r1", Some("openrouter")),
            ("meta-llama/llama-4", Some("openrouter")),
            ("qwen3", None),
        ];
        for (model, want) in cases {
            assert_eq!(family_of(model).map(|p| p.name), want, "{model}");
        }
    }

    #[test]
    fn reserved_names_include_the_gemini_alias() {
        assert!(is_reserved_name("gemini") && is_reserved_name("groq"));
        assert!(!is_reserved_name("local-vllm"));
        assert_eq!(reserved_names().len(), BUILTIN_PROVIDERS.len() + 1);
    }
}
