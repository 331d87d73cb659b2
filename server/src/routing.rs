//! From a model name the caller typed to the provider and model that answer it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::{Catalog, ModelInfo};
use crate::providers::Provider;

/// A model name resolved to a configured provider.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub provider: Arc<dyn Provider>,
    /// The provider's user-facing name (`openai`, a custom endpoint's name…).
    pub provider_name: String,
    /// The API model id to send.
    pub model: String,
    /// Catalog facts, when the model is known; unknown models get safe defaults.
    pub info: Option<ModelInfo>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoutingError {
    #[error(
        "no LLM provider is configured. Set at least one of OPENAI_API_KEY, XAI_API_KEY, GOOGLE_API_KEY, ANTHROPIC_API_KEY, MISTRAL_API_KEY, DEEPSEEK_API_KEY, OPENROUTER_API_KEY (or CUSTOM_PROVIDERS) in the server's environment"
    )]
    NoProviders,
    #[error(
        "model \"{model}\" belongs to provider {provider}, which is not configured: set {key_var}. Configured providers: {available}"
    )]
    ProviderNotConfigured {
        model: String,
        provider: String,
        key_var: String,
        available: String,
    },
    #[error(
        "unknown model \"{model}\": it is not in the catalog and its name does not show a provider family. Configured providers: {available}. Use \"auto\" or a model of one of them"
    )]
    UnknownModel { model: String, available: String },
}

/// Configured providers plus the catalog: everything model routing needs.
#[derive(Debug, Clone)]
pub struct Router {
    catalog: Catalog,
    /// Configured providers by name.
    providers: BTreeMap<String, Arc<dyn Provider>>,
    /// Custom endpoints' model lists, by provider name.
    custom_models: BTreeMap<String, Vec<String>>,
}

pub fn key_var_for(provider: &str) -> String {
    match provider {
        "google" => "GOOGLE_API_KEY".to_string(),
        other => format!("{}_API_KEY", other.to_ascii_uppercase().replace('-', "_")),
    }
}

impl Router {
    pub fn new(
        catalog: Catalog,
        providers: BTreeMap<String, Arc<dyn Provider>>,
        custom_models: BTreeMap<String, Vec<String>>,
    ) -> Self {
        Self {
            catalog,
            providers,
            custom_models,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Configured provider names, built-ins in `auto` priority order, then custom ones.
    pub fn available(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .catalog
            .priority
            .iter()
            .filter(|p| self.providers.contains_key(p.as_str()))
            .cloned()
            .collect();
        names.extend(
            self.providers
                .keys()
                .filter(|p| !names.contains(p))
                .cloned()
                .collect::<Vec<_>>(),
        );
        names
    }

    fn available_text(&self) -> String {
        let names = self.available();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    }

    /// Resolves `auto` to the `skip`-th available provider's default model (consensus
    /// expands each `auto` to a different provider), or a name per [`Self::resolve`].
    pub fn resolve_auto(&self, skip: usize) -> Result<ResolvedModel, RoutingError> {
        let available = self.available();
        let provider = available
            .get(skip)
            .or_else(|| available.first())
            .ok_or(RoutingError::NoProviders)?;
        match self.catalog.default_model(provider) {
            Some(model) => self.resolve_at(provider, model),
            None => {
                // A custom endpoint: its first listed model is its default.
                let model = self
                    .custom_models
                    .get(provider)
                    .and_then(|m| m.first())
                    .ok_or(RoutingError::NoProviders)?;
                self.resolve_at(provider, model)
            }
        }
    }

    /// Resolves a model name: `auto`; a catalog name or alias; a custom endpoint's
    /// model; then the evident family of an unknown name, passed through unchanged.
    pub fn resolve(&self, name: &str) -> Result<ResolvedModel, RoutingError> {
        let name = name.trim();
        if name.is_empty() || name.eq_ignore_ascii_case("auto") {
            return self.resolve_auto(0);
        }
        if self.providers.is_empty() {
            return Err(RoutingError::NoProviders);
        }
        if let Some((provider, model)) = self
            .custom_models
            .iter()
            .find_map(|(p, models)| models.iter().find(|m| m.as_str() == name).map(|m| (p, m)))
        {
            return self.resolve_at(provider, model);
        }
        if let Some((provider, info)) = self.catalog.find(name) {
            return self.resolve_at(provider, &info.name.clone());
        }
        match family_of(name) {
            Some(provider) => self.resolve_at(provider, name),
            None => Err(RoutingError::UnknownModel {
                model: name.to_string(),
                available: self.available_text(),
            }),
        }
    }

    fn resolve_at(&self, provider_name: &str, model: &str) -> Result<ResolvedModel, RoutingError> {
        let provider = self.providers.get(provider_name).ok_or_else(|| {
            RoutingError::ProviderNotConfigured {
                model: model.to_string(),
                provider: provider_name.to_string(),
                key_var: key_var_for(provider_name),
                available: self.available_text(),
            }
        })?;
        Ok(ResolvedModel {
            provider: provider.clone(),
            provider_name: provider_name.to_string(),
            model: model.to_string(),
            info: self.catalog.find_in(provider_name, model).cloned(),
        })
    }
}

/// The provider an unknown model name evidently belongs to, so new models work
/// the day they ship.
pub fn family_of(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| lower.starts_with(p));
    if lower.contains('/') {
        return Some("openrouter");
    }
    let o_series = lower.len() >= 2
        && lower.starts_with('o')
        && lower[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit());
    if o_series || starts(&["gpt-", "gpt", "chatgpt-", "codex-"]) {
        Some("openai")
    } else if starts(&["claude-", "claude"]) {
        Some("anthropic")
    } else if starts(&["gemini-", "gemma-"]) {
        Some("google")
    } else if starts(&["grok-", "grok"]) {
        Some("xai")
    } else if starts(&[
        "mistral",
        "magistral",
        "codestral",
        "devstral",
        "ministral",
        "pixtral",
    ]) {
        Some("mistral")
    } else if starts(&["deepseek-", "deepseek"]) {
        Some("deepseek")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_route_unknown_models() {
        for (name, want) in [
            ("gpt-6", Some("openai")),
            ("o5-mini", Some("openai")),
            ("claude-opus-5", Some("anthropic")),
            ("gemini-3-ultra", Some("google")),
            ("grok-5", Some("xai")),
            ("magistral-large-2612", Some("mistral")),
            ("codestral-2601", Some("mistral")),
            ("deepseek-v4", Some("deepseek")),
            ("meta-llama/llama-4", Some("openrouter")),
            ("llama3", None),
            ("openchat", None),
        ] {
            assert_eq!(family_of(name), want, "{name}");
        }
    }

    #[test]
    fn key_vars_follow_the_env_contract() {
        assert_eq!(key_var_for("openai"), "OPENAI_API_KEY");
        assert_eq!(key_var_for("google"), "GOOGLE_API_KEY");
        assert_eq!(key_var_for("openrouter"), "OPENROUTER_API_KEY");
    }

    proptest::proptest! {
        #[test]
        fn any_model_name_routes_or_errors_without_panicking(name in "\\PC{0,80}") {
            let _ = family_of(&name);
            let router = Router::new(Catalog::built_in().unwrap(), BTreeMap::new(), BTreeMap::new());
            proptest::prop_assert!(router.resolve(&name).is_err(), "no provider is configured");
        }
    }
}
