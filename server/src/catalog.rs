//! The model catalog: which models exist, what they can do, and how the user's
//! `reasoning_effort` maps onto each one. Data, not code: `catalog/models.yaml` is
//! embedded at build time and a user file (CONVERSE_MODELS_FILE) can replace any
//! provider's list, so a new model never needs a new release.

use std::collections::BTreeMap;
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
    Max,
}

impl ReasoningEffort {
    pub const ALL: [ReasoningEffort; 6] = [
        Self::None,
        Self::Minimal,
        Self::Low,
        Self::Medium,
        Self::High,
        Self::Max,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
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
            catalog.providers.extend(user.providers);
        }
        Ok(catalog)
    }

    /// Finds a model by name or alias (case-insensitive) in one provider's list.
    pub fn find_in(&self, provider: &str, name: &str) -> Option<&ModelInfo> {
        self.providers
            .get(provider)?
            .models
            .iter()
            .find(|m| matches_name(m, name))
    }

    /// Finds a model by name or alias across providers, in priority order first.
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

fn matches_name(model: &ModelInfo, name: &str) -> bool {
    model.name.eq_ignore_ascii_case(name)
        || model.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
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
        assert_eq!((p, m.name.as_str()), ("anthropic", "claude-sonnet-4-5"));
        let (p, m) = c.find("flash").unwrap();
        assert_eq!((p, m.name.as_str()), ("google", "gemini-2.5-flash"));
        assert!(c.find("no-such-model").is_none());
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
