//! The model catalog: which models exist, what they can do, and how the user's
//! `reasoning_effort` maps onto each one. Data, not code: `catalog/models.yaml` is
//! embedded at build time and a user file (CONVERSE_MODELS_FILE) can replace any
//! provider's list, so a new model never needs a new release.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::providers::{OpenAiApi, Reasoning};

const BUILT_IN: &str = include_str!("../catalog/models.yaml");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read model catalog {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid model catalog {origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// The user-facing reasoning levels of the `reasoning_effort` parameter, in order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    // OpenAI's level above `high` (GPT-5.1-Codex-Max, GPT-5.2); elsewhere the
    // model's highest level not above it. (A doc comment would become a schema
    // description and split the enum in the tools' input schema.)
    XHigh,
    Max,
}

impl ReasoningEffort {
    pub const ALL: [ReasoningEffort; 7] = [
        Self::None,
        Self::Minimal,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::XHigh,
        Self::Max,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::XHigh => "xhigh",
            Self::Max => "max",
        }
    }

    /// Share of a model's maximum thinking budget for budget-style models.
    fn budget_share(self) -> f64 {
        match self {
            Self::None => 0.0,
            Self::Minimal => 0.05,
            Self::Low => 0.15,
            Self::Medium => 0.33,
            Self::High => 0.67,
            Self::XHigh => 0.85,
            Self::Max => 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "ReasoningFile")]
pub enum ReasoningSpec {
    /// Named effort levels; the map goes from user level to the API's value.
    Effort {
        levels: BTreeMap<ReasoningEffort, String>,
    },
    /// A thinking-token budget in `[min, max]`; `optional` models can run without.
    Budget { min: u32, max: u32, optional: bool },
}

/// The YAML shape of `reasoning`: exactly one of `effort` or `budget`. (YAML has
/// no natural spelling for Rust's externally tagged enums, so it is a map.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasoningFile {
    effort: Option<EffortFile>,
    budget: Option<BudgetFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EffortFile {
    levels: BTreeMap<ReasoningEffort, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetFile {
    min: u32,
    max: u32,
    #[serde(default)]
    optional: bool,
}

impl TryFrom<ReasoningFile> for ReasoningSpec {
    type Error = String;

    fn try_from(file: ReasoningFile) -> Result<Self, Self::Error> {
        match (file.effort, file.budget) {
            (Some(e), None) if !e.levels.is_empty() => Ok(Self::Effort { levels: e.levels }),
            (Some(_), None) => Err("reasoning.effort.levels must not be empty".into()),
            (None, Some(b)) => Ok(Self::Budget {
                min: b.min,
                max: b.max,
                optional: b.optional,
            }),
            _ => Err("reasoning needs exactly one of `effort` or `budget`".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub context_window: u32,
    pub max_output: u32,
    #[serde(default)]
    pub images: bool,
    #[serde(default)]
    pub web_search: bool,
    /// Takes the `verbosity` setting (OpenAI's GPT-5 family: Responses `text.verbosity`).
    #[serde(default)]
    pub verbosity: bool,
    /// Highest accepted temperature; `None` means the model refuses the parameter.
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub reasoning: Option<ReasoningSpec>,
    #[serde(default)]
    pub api: Option<ApiKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKind {
    Responses,
    ChatCompletions,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderModels {
    pub default: String,
    pub models: Vec<ModelInfo>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    priority: Option<Vec<String>>,
    #[serde(default)]
    providers: BTreeMap<String, ProviderModels>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// Provider names in `auto` priority order.
    pub priority: Vec<String>,
    pub providers: BTreeMap<String, ProviderModels>,
    /// Providers whose list came from the operator's file: their names outrank converse
    /// 1.3.2's (see [`Catalog::legacy`]), because the operator chose them on purpose.
    pub user_providers: BTreeSet<String>,
}

impl Catalog {
    pub fn built_in() -> Result<Self, CatalogError> {
        let file = parse(BUILT_IN, "(built-in)")?;
        let table_order = || {
            converse_config::BUILTIN_PROVIDERS
                .iter()
                .map(|p| p.name.to_string())
                .collect()
        };
        Ok(Self {
            priority: file.priority.unwrap_or_else(table_order),
            providers: file.providers,
            user_providers: BTreeSet::new(),
        })
    }

    /// The built-in catalog with a user file laid over it, provider by provider.
    pub fn load(user_file: Option<&Path>) -> Result<Self, CatalogError> {
        let mut catalog = Self::built_in()?;
        if let Some(path) = user_file {
            let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let user = parse(&text, &path.display().to_string())?;
            if let Some(priority) = user.priority {
                catalog.priority = priority;
            }
            catalog
                .user_providers
                .extend(user.providers.keys().cloned());
            catalog.providers.extend(user.providers);
        }
        Ok(catalog)
    }

    /// Finds a model by name or alias (see [`normalize_name`]) in one provider's list.
    pub fn find_in(&self, provider: &str, name: &str) -> Option<&ModelInfo> {
        self.providers
            .get(provider)?
            .models
            .iter()
            .find(|m| matches_name(m, name))
    }

    /// Finds a model by name or alias (see [`normalize_name`]) across providers, in
    /// priority order first.
    pub fn find(&self, name: &str) -> Option<(&str, &ModelInfo)> {
        let ordered = self
            .priority
            .iter()
            .filter_map(|p| self.providers.get_key_value(p.as_str()))
            .chain(
                self.providers
                    .iter()
                    .filter(|(p, _)| !self.priority.contains(p)),
            );
        for (provider, models) in ordered {
            if let Some(model) = models.models.iter().find(|m| matches_name(m, name)) {
                return Some((provider.as_str(), model));
            }
        }
        None
    }

    pub fn default_model(&self, provider: &str) -> Option<&str> {
        self.providers.get(provider).map(|p| p.default.as_str())
    }
}

/// A model converse 1.3.2 knew: its provider, the id it sent, and every alias its provider
/// file accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyModel {
    pub provider: &'static str,
    pub id: &'static str,
    pub aliases: &'static [&'static str],
}

const fn legacy(
    provider: &'static str,
    id: &'static str,
    aliases: &'static [&'static str],
) -> LegacyModel {
    LegacyModel {
        provider,
        id,
        aliases,
    }
}

/// Every model name converse 1.3.2 accepted, copied from its provider files (the 1.3.2
/// inventory, sections D.1–D.6), so that a 1.3.2 user's names keep working. Two names come
/// from its routing instead (C.4), which matched them exactly but no provider file listed:
/// `k2` (see below) and `google` ([`LEGACY_PROVIDER_NAMES`]).
#[rustfmt::skip]
pub const CONVERSE_1_3_2_MODELS: &[LegacyModel] = &[
    // D.1 OpenAI
    legacy("openai", "o3", &[]),
    legacy("openai", "o3-mini", &["o3mini", "o3 mini"]),
    legacy("openai", "o3-pro-2025-06-10", &["o3-pro", "o3pro", "o3 pro"]),
    legacy("openai", "o4-mini", &["o4mini", "o4", "o4 mini"]),
    legacy("openai", "gpt-4.1-2025-04-14", &["gpt4.1", "gpt-4.1", "gpt 4.1"]),
    legacy("openai", "gpt-4o", &["gpt4o", "gpt 4o", "4o"]),
    legacy(
        "openai",
        "gpt-4o-mini",
        &["gpt4o-mini", "gpt 4o mini", "4o mini", "4o-mini"],
    ),
    // D.2 X.AI
    legacy(
        "xai",
        "grok-4-0709",
        &["grok", "grok4", "grok-4", "grok-4-latest", "grok 4", "grok 4 latest"],
    ),
    legacy("xai", "grok-3", &["grok3", "grok 3"]),
    legacy("xai", "grok-3-fast", &["grok3fast", "grok3-fast", "grok 3 fast"]),
    // D.3 Google
    legacy("google", "gemini-2.0-flash", &["flash-2.0", "flash2"]),
    legacy("google", "gemini-2.0-flash-lite", &["flashlite", "flash-lite"]),
    legacy(
        "google",
        "gemini-2.5-flash",
        &["flash", "flash2.5", "gemini-flash", "gemini-flash-2.5"],
    ),
    legacy(
        "google",
        "gemini-2.5-pro",
        &["pro", "gemini pro", "gemini-pro", "gemini"],
    ),
    // D.4 Anthropic
    legacy(
        "anthropic",
        "claude-opus-4-20250514",
        &["claude-4-opus", "opus-4", "opus", "claude-opus"],
    ),
    legacy(
        "anthropic",
        "claude-sonnet-4-20250514",
        &["claude-4-sonnet", "sonnet-4", "sonnet", "claude-sonnet"],
    ),
    legacy(
        "anthropic",
        "claude-3-7-sonnet-20250219",
        &["claude-3.7-sonnet", "sonnet-3.7"],
    ),
    legacy(
        "anthropic",
        "claude-3-5-sonnet-20241022",
        &["claude-3.5-sonnet", "claude-3-5-sonnet-latest"],
    ),
    legacy(
        "anthropic",
        "claude-3-5-haiku-20241022",
        &[
            "claude-3.5-haiku",
            "claude-3-5-haiku-latest",
            "haiku",
            "claude-haiku",
        ],
    ),
    // D.5 Mistral
    legacy(
        "mistral",
        "magistral-medium-2506",
        &["magistral-medium", "magistral-medium-latest"],
    ),
    legacy(
        "mistral",
        "magistral-small-2506",
        &["magistral-small", "magistral-small-latest"],
    ),
    legacy(
        "mistral",
        "mistral-medium-2505",
        &["mistral-medium-3", "mistral-medium-latest", "mistral-medium"],
    ),
    // D.6 DeepSeek
    legacy(
        "deepseek",
        "deepseek-chat",
        &["deepseek", "chat", "deepseek chat", "deepseek-v3"],
    ),
    legacy(
        "deepseek",
        "deepseek-reasoner",
        &["deepseek reasoner", "reasoner", "r1", "deepseek r1", "deepseek-r1"],
    ),
    // D.6 OpenRouter
    legacy(
        "openrouter",
        "qwen/qwen3-235b-a22b-thinking-2507",
        &["qwen3-thinking", "qwen-thinking"],
    ),
    legacy("openrouter", "qwen/qwen3-coder", &["qwen3-coder", "qwen-coder"]),
    // `k2`: 1.3.2's routing sent it to OpenRouter (C.4) but no alias named it, so OpenRouter
    // got the literal model "k2" and refused it. Kimi K2 is what the name was routed for.
    legacy(
        "openrouter",
        "moonshotai/kimi-k2",
        &["kimi-k2", "moonshot-kimi", "k2"],
    ),
];

/// Names 1.3.2's routing (C.4) took as a provider rather than a model: it sent the literal
/// name, which the API refused. Here they mean that provider's default model, like `auto`.
pub const LEGACY_PROVIDER_NAMES: &[(&str, &str)] = &[("google", "google")];

/// 1.3.2 model ids that our catalog lists under another id for the same model: the dated
/// snapshot 1.3.2 pinned is what the undated id points to.
pub const SAME_MODEL: &[(&str, &str, &str)] = &[
    ("openai", "o3-pro-2025-06-10", "o3-pro"),
    ("openai", "gpt-4.1-2025-04-14", "gpt-4.1"),
    ("xai", "grok-4-0709", "grok-4"),
];

/// 1.3.2 models the vendor has retired (or deprecated with a shutdown date), none of them in
/// our catalog, and the catalog model that takes each one's place. The successor is the
/// vendor's documented replacement where our catalog has it, otherwise the newest catalog
/// model of the same line; the sources are the vendors' deprecation pages.
pub const RETIRED: &[(&str, &str, &str)] = &[
    // OpenAI replaced o3-mini with o4-mini (release notes, April 2025); the deprecations
    // page lists o3-mini for shutdown.
    ("openai", "o3-mini", "o4-mini"),
    // xAI's retirement notice (docs.x.ai, migration guides) covers grok-3; grok-4 is its
    // flagship successor in our catalog.
    ("xai", "grok-3", "grok-4"),
    // grok-3-fast was grok-3 on low-latency serving; grok-4-fast is xAI's low-latency line.
    ("xai", "grok-3-fast", "grok-4-fast"),
    // Google's Gemini deprecations page: replacement gemini-2.5-flash-lite.
    ("google", "gemini-2.0-flash-lite", "gemini-2.5-flash-lite"),
    // Anthropic's model-deprecations page for all four; Opus 4.1 was released as a drop-in
    // replacement for Opus 4, and Sonnet 4.5 / Haiku 4.5 are the recommended replacements
    // of the 3.x Sonnets and of Haiku 3.5.
    ("anthropic", "claude-opus-4-20250514", "claude-opus-4-1"),
    (
        "anthropic",
        "claude-3-7-sonnet-20250219",
        "claude-sonnet-4-5",
    ),
    (
        "anthropic",
        "claude-3-5-sonnet-20241022",
        "claude-sonnet-4-5",
    ),
    ("anthropic", "claude-3-5-haiku-20241022", "claude-haiku-4-5"),
    // Mistral's model pages mark the 2506/2505 versions retired; the `-latest` ids in our
    // catalog are the same lines' current versions.
    (
        "mistral",
        "magistral-medium-2506",
        "magistral-medium-latest",
    ),
    ("mistral", "magistral-small-2506", "magistral-small-latest"),
    ("mistral", "mistral-medium-2505", "mistral-medium-latest"),
];

/// Where a converse 1.3.2 model name lands today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyTarget {
    pub provider: String,
    /// The API model id to send: a catalog model's name, or 1.3.2's own id for a model the
    /// vendor still serves but our catalog does not list.
    pub model: String,
    /// One line for the answer's status header when the model 1.3.2 used is retired.
    pub notice: Option<String>,
}

impl Catalog {
    /// What a name converse 1.3.2 accepted means here: the same model if the catalog has
    /// it, else its successor (with a notice) if it is retired, else 1.3.2's id unchanged.
    /// `None` for every other name, and for a name the operator's own models file uses.
    pub fn legacy(&self, name: &str) -> Option<LegacyTarget> {
        if self
            .user_providers
            .iter()
            .any(|p| self.find_in(p, name).is_some())
        {
            return None;
        }
        let wanted = normalize_name(name);
        if let Some((_, provider)) = LEGACY_PROVIDER_NAMES
            .iter()
            .find(|(n, _)| names_match(n, name))
        {
            return Some(LegacyTarget {
                provider: provider.to_string(),
                model: self.default_model(provider)?.to_string(),
                notice: None,
            });
        }
        let old = CONVERSE_1_3_2_MODELS
            .iter()
            .find(|m| names_match(m.id, name) || m.aliases.iter().any(|a| names_match(a, name)))?;
        let listed = |id: &str| self.find_in(old.provider, id).map(|m| m.name.clone());
        let target = |model: String, notice: Option<String>| LegacyTarget {
            provider: old.provider.to_string(),
            model,
            notice,
        };
        let same = SAME_MODEL
            .iter()
            .find(|(p, id, _)| *p == old.provider && *id == old.id)
            .map_or(old.id, |(_, _, now)| now);
        if let Some(model) = listed(same) {
            return Some(target(model, None));
        }
        match RETIRED
            .iter()
            .find(|(p, id, _)| *p == old.provider && *id == old.id)
        {
            // A retired model whose successor the operator removed: ordinary routing
            // decides, and the vendor's answer says the model is gone.
            Some((_, _, successor)) => {
                let model = listed(successor)?;
                let shown = if wanted == normalize_name(old.id) {
                    format!("model \"{}\" is retired", name.trim())
                } else {
                    format!("model \"{}\" ({}) is retired", name.trim(), old.id)
                };
                // Asking for the successor's own id is asking for what you get.
                let notice = (wanted != normalize_name(&model))
                    .then(|| format!("{shown}; using {model} (its successor)"));
                Some(target(model, notice))
            }
            None => Some(target(old.id.to_string(), None)),
        }
    }
}

fn matches_name(model: &ModelInfo, name: &str) -> bool {
    names_match(&model.name, name) || model.aliases.iter().any(|a| names_match(a, name))
}

/// `normalize_name(a) == normalize_name(b)` without building either string: lookups compare
/// the wanted name with every catalog name and alias on every call.
fn names_match(a: &str, b: &str) -> bool {
    normalized(a).eq(normalized(b))
}

/// The characters of [`normalize_name`], one by one.
fn normalized(name: &str) -> impl Iterator<Item = char> + '_ {
    let mut pending_separator = false;
    let mut started = false;
    name.trim()
        .chars()
        .flat_map(move |c| {
            if c == '-' || c.is_whitespace() {
                pending_separator = true;
                return [None, None];
            }
            let dash = (pending_separator && started).then_some('-');
            pending_separator = false;
            started = true;
            [dash, Some(c.to_ascii_lowercase())]
        })
        .flatten()
}

/// The form in which model names are compared: lower case, with every run of spaces and
/// dashes as one `-`. converse 1.3.2 listed spelled-out aliases next to the API ids (`gpt 4o
/// mini`, `o3 mini`, `deepseek chat`, `grok 4 latest`), so a space and a dash must meet.
/// Everything else stays significant: dots (`gpt-4.1` is not `gpt-41`), slashes and
/// underscores, and a missing separator (`o3mini`), which 1.3.2 accepted only name by name
/// and which would otherwise merge names such as `flash2` and `flash-2.5`.
pub fn normalize_name(name: &str) -> String {
    normalized(name).collect()
}

fn parse(text: &str, origin: &str) -> Result<CatalogFile, CatalogError> {
    let file: CatalogFile = serde_norway::from_str(text).map_err(|e| CatalogError::Invalid {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    for (provider, models) in &file.providers {
        if !models.models.iter().any(|m| m.name == models.default) {
            return Err(CatalogError::Invalid {
                origin: origin.to_string(),
                message: format!(
                    "provider {provider}: default model {} is not in its list",
                    models.default
                ),
            });
        }
        for m in &models.models {
            if let Some(ReasoningSpec::Budget { min, max, .. }) = &m.reasoning
                && min > max
            {
                return Err(CatalogError::Invalid {
                    origin: origin.to_string(),
                    message: format!("model {}: reasoning budget min {min} > max {max}", m.name),
                });
            }
        }
    }
    Ok(file)
}

impl ModelInfo {
    /// Translates the user's level into this model's setting, clamped to what the
    /// model supports: the highest supported level not above the request, else the
    /// lowest supported one. `None` means "send no reasoning parameter".
    pub fn reasoning_for(&self, wanted: ReasoningEffort) -> Option<Reasoning> {
        match self.reasoning.as_ref()? {
            ReasoningSpec::Effort { levels } => {
                let chosen = levels
                    .range(..=wanted)
                    .next_back()
                    .or_else(|| levels.iter().next())?;
                Some(Reasoning::Effort(chosen.1.clone()))
            }
            ReasoningSpec::Budget { min, max, optional } => {
                if wanted == ReasoningEffort::None && *optional {
                    return None;
                }
                let share = wanted.budget_share();
                let budget = (f64::from(*max) * share).floor() as u32;
                Some(Reasoning::Budget(budget.clamp(*min, *max)))
            }
        }
    }

    pub fn clamp_temperature(&self, wanted: f32) -> Option<f32> {
        self.temperature.map(|max| wanted.clamp(0.0, max))
    }

    pub fn openai_api(&self) -> OpenAiApi {
        match self.api {
            Some(ApiKind::ChatCompletions) => OpenAiApi::ChatCompletions,
            _ => OpenAiApi::Responses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalog_parses_and_defaults_exist() {
        let c = Catalog::built_in().unwrap();
        assert_eq!(c.priority[0], "openai");
        for (p, models) in &c.providers {
            assert!(c.find_in(p, &models.default).is_some(), "{p}");
        }
    }

    /// Every built-in provider has models (so `auto` and aliases work for it), and the catalog
    /// names no provider the table does not have.
    #[test]
    fn built_in_catalog_covers_the_provider_table() {
        let c = Catalog::built_in().unwrap();
        let table: Vec<&str> = converse_config::BUILTIN_PROVIDERS
            .iter()
            .map(|p| p.name)
            .collect();
        let catalog: Vec<&str> = c.providers.keys().map(String::as_str).collect();
        let mut sorted = table.clone();
        sorted.sort_unstable();
        assert_eq!(catalog, sorted);
        assert_eq!(c.priority, table);
    }

    #[test]
    fn aliases_resolve_case_insensitively() {
        let c = Catalog::built_in().unwrap();
        let (p, m) = c.find("Sonnet").unwrap();
        assert_eq!(
            (p, m.name.as_str()),
            ("anthropic", "claude-sonnet-4-20250514")
        );
        let (p, m) = c.find("flash").unwrap();
        assert_eq!((p, m.name.as_str()), ("google", "gemini-2.5-flash"));
        assert!(c.find("no-such-model").is_none());
    }

    #[test]
    fn names_compare_with_spaces_and_dashes_as_one_separator() {
        let cases = [
            ("GPT 4o  Mini", "gpt-4o-mini"),
            (" o3 - mini ", "o3-mini"),
            ("deepseek chat", "deepseek-chat"),
            ("qwen/qwen3-coder", "qwen/qwen3-coder"),
            ("gpt-4.1", "gpt-4.1"),
            ("o3mini", "o3mini"),
            ("grok_4", "grok_4"),
        ];
        for (name, want) in cases {
            assert_eq!(normalize_name(name), want, "{name}");
            assert!(super::names_match(name, want), "{name}");
        }
        for (a, b) in [
            ("o3mini", "o3-mini"),
            ("gpt-4o", "gpt-4o-mini"),
            ("gpt-4.1", "gpt-41"),
        ] {
            assert!(!super::names_match(a, b), "{a} / {b}");
        }
        let c = Catalog::built_in().unwrap();
        assert_eq!(c.find("GPT 4o mini").unwrap().1.name, "gpt-4o-mini");
        // Dots and missing separators still tell names apart.
        assert!(c.find("gpt-41").is_none() && c.find("flash-2").is_none());
    }

    /// No two built-in catalog entries meet once normalised, so normalising never makes a
    /// name ambiguous.
    #[test]
    fn normalised_catalog_names_are_unique() {
        let c = Catalog::built_in().unwrap();
        let mut seen = BTreeMap::new();
        for (p, models) in &c.providers {
            for m in &models.models {
                for n in std::iter::once(&m.name).chain(&m.aliases) {
                    if let Some(other) = seen.insert(normalize_name(n), (p, &m.name)) {
                        assert_eq!(other, (p, &m.name), "{n}");
                    }
                }
            }
        }
    }

    #[test]
    fn legacy_tables_agree_with_each_other_and_the_catalog() {
        let c = Catalog::built_in().unwrap();
        let mut seen = BTreeMap::new();
        for m in CONVERSE_1_3_2_MODELS {
            for n in std::iter::once(&m.id).chain(m.aliases) {
                let before = seen.insert(normalize_name(n), (m.provider, m.id));
                assert!(before.is_none_or(|b| b == (m.provider, m.id)), "{n}");
            }
        }
        let known = |p: &str, id: &str| {
            CONVERSE_1_3_2_MODELS
                .iter()
                .any(|m| m.provider == p && m.id == id)
        };
        for (p, old, now) in SAME_MODEL {
            assert!(known(p, old) && c.find_in(p, now).is_some(), "{old}");
        }
        for (p, old, successor) in RETIRED {
            assert!(known(p, old), "{old}");
            assert!(c.find_in(p, old).is_none(), "{old} is still in the catalog");
            assert_eq!(c.find_in(p, successor).unwrap().name, *successor);
        }
        for (name, p) in LEGACY_PROVIDER_NAMES {
            assert!(c.find(name).is_none() && c.default_model(p).is_some());
        }
    }

    /// The built-in aliases a 1.3.2 name takes over: 1.3.2 sent these to a model the
    /// catalog still has, so they keep that meaning. Another entry here means a catalog
    /// alias changed what a 1.3.2 name asks for.
    #[test]
    fn legacy_names_shadow_only_known_catalog_aliases() {
        let c = Catalog::built_in().unwrap();
        let mut shadowed = Vec::new();
        for m in CONVERSE_1_3_2_MODELS {
            for n in std::iter::once(&m.id).chain(m.aliases) {
                let old = c.legacy(n).unwrap();
                if let Some((p, now)) = c.find(n)
                    && (p, now.name.as_str()) != (old.provider.as_str(), old.model.as_str())
                {
                    shadowed.push(*n);
                }
            }
        }
        assert_eq!(shadowed, Vec::<&str>::new());
    }

    #[test]
    fn retired_legacy_models_name_their_successor() {
        let c = Catalog::built_in().unwrap();
        let old = c.legacy("Claude-3.5-Sonnet").unwrap();
        assert_eq!(
            old.notice.as_deref(),
            Some(
                "model \"Claude-3.5-Sonnet\" (claude-3-5-sonnet-20241022) is retired; using claude-sonnet-4-5 (its successor)"
            )
        );
        let old = c.legacy("o3-mini").unwrap();
        assert_eq!(
            old.notice.as_deref(),
            Some("model \"o3-mini\" is retired; using o4-mini (its successor)")
        );
        // Asking for the successor's own id is no surprise.
        let old = c.legacy("magistral-medium-latest").unwrap();
        assert_eq!(
            (old.model.as_str(), old.notice),
            ("magistral-medium-latest", None)
        );
        assert!(c.legacy("gpt-5").is_none() && c.legacy("lab-ok").is_none());
    }

    #[test]
    fn an_operator_file_outranks_legacy_names() {
        let dir = std::env::temp_dir().join(format!("catalog-legacy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("models.yaml");
        std::fs::write(
            &path,
            "providers:\n  anthropic:\n    default: claude-next\n    models:\n      - {name: claude-next, aliases: [sonnet], context_window: 1000, max_output: 100}\n",
        )
        .unwrap();
        let c = Catalog::load(Some(&path)).unwrap();
        assert!(c.legacy("sonnet").is_none());
        // Without its successor in the operator's list, a retired model is left to routing.
        assert!(c.legacy("claude-3.5-sonnet").is_none());
        assert_eq!(c.legacy("o3 mini").unwrap().model, "o4-mini");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn effort_levels_clamp_down_then_up() {
        let c = Catalog::built_in().unwrap();
        let o3 = c.find_in("openai", "o3").unwrap();
        assert_eq!(
            o3.reasoning_for(ReasoningEffort::Max),
            Some(Reasoning::Effort("high".into()))
        );
        assert_eq!(
            o3.reasoning_for(ReasoningEffort::Minimal),
            Some(Reasoning::Effort("low".into()))
        );
        assert_eq!(
            o3.reasoning_for(ReasoningEffort::Medium),
            Some(Reasoning::Effort("medium".into()))
        );
        let gpt4o = c.find_in("openai", "gpt-4o").unwrap();
        assert_eq!(gpt4o.reasoning_for(ReasoningEffort::High), None);
    }

    #[test]
    fn budgets_scale_and_respect_bounds() {
        let c = Catalog::built_in().unwrap();
        let sonnet = c.find_in("anthropic", "sonnet").unwrap();
        assert_eq!(sonnet.reasoning_for(ReasoningEffort::None), None);
        assert_eq!(
            sonnet.reasoning_for(ReasoningEffort::Minimal),
            Some(Reasoning::Budget(3000))
        );
        assert_eq!(
            sonnet.reasoning_for(ReasoningEffort::Max),
            Some(Reasoning::Budget(60000))
        );
        let pro = c.find_in("google", "gemini-2.5-pro").unwrap();
        // Gemini 2.5 Pro cannot turn thinking off: "none" becomes the minimum.
        assert_eq!(
            pro.reasoning_for(ReasoningEffort::None),
            Some(Reasoning::Budget(128))
        );
    }

    #[test]
    fn temperature_is_clamped_or_dropped() {
        let c = Catalog::built_in().unwrap();
        assert_eq!(
            c.find_in("anthropic", "haiku")
                .unwrap()
                .clamp_temperature(1.7),
            Some(1.0)
        );
        assert_eq!(
            c.find_in("openai", "o3").unwrap().clamp_temperature(0.5),
            None
        );
    }

    #[test]
    fn user_file_replaces_a_provider_and_keeps_the_rest() {
        let dir = std::env::temp_dir().join(format!("catalog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("models.yaml");
        std::fs::write(
            &path,
            "providers:\n  openai:\n    default: gpt-9\n    models:\n      - {name: gpt-9, context_window: 1000, max_output: 100}\n",
        )
        .unwrap();
        let c = Catalog::load(Some(&path)).unwrap();
        assert_eq!(c.default_model("openai"), Some("gpt-9"));
        assert!(c.find_in("openai", "o3").is_none());
        assert!(c.find_in("anthropic", "sonnet").is_some());
        std::fs::write(
            &path,
            "providers:\n  openai:\n    default: x\n    models: []\n",
        )
        .unwrap();
        let err = Catalog::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("default model x"), "{err}");
    }
}
