//! From a model name the caller typed to the provider and model that answer it.

use std::collections::BTreeMap;
use std::sync::Arc;

use converse_config::builtin_providers;

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
    /// One line the tools show in the answer's status header: set when the name asked
    /// for a model converse 1.3.2 used that is retired, and a successor answers instead.
    pub notice: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoutingError {
    #[error(
        "no LLM provider is configured. Set at least one of {} (or CUSTOM_PROVIDERS) in the server's environment",
        builtin_providers::key_vars().join(", ")
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

/// The variable that enables `provider`: a built-in's key variable, else a custom endpoint's.
pub fn key_var_for(provider: &str) -> String {
    builtin_providers::builtin(provider).map_or_else(
        || converse_config::vars::custom_api_key_var(provider),
        |p| p.key_var.to_string(),
    )
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

    /// Resolves a model name: `auto`; a custom endpoint's model; a name converse 1.3.2
    /// accepted ([`Catalog::legacy`]); a catalog name or alias; then the evident family of
    /// an unknown name, passed through unchanged.
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
        if let Some(old) = self.catalog.legacy(name) {
            let resolved = self.resolve_at(&old.provider, &old.model)?;
            return Ok(ResolvedModel {
                notice: old.notice,
                ..resolved
            });
        }
        if let Some((provider, info)) = self.catalog.find(name) {
            return self.resolve_at(provider, &info.name.clone());
        }
        match family_of(name).or_else(|| legacy_family_of(name)) {
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
            notice: None,
        })
    }
}

/// The provider an unknown model name evidently belongs to (the provider table's model-name
/// families), so new models work the day they ship.
pub fn family_of(name: &str) -> Option<&'static str> {
    builtin_providers::family_of(name).map(|p| p.name)
}

/// Words converse 1.3.2 routed a name by wherever they appeared in it (inventory C.4), for
/// names the provider table's prefixes miss: fine-tuned `ft:gpt-4o-mini:org::id`, Mistral's
/// `open-mistral-nemo`. Only words that name one vendor's model line are kept. 1.3.2 also
/// matched `pro`, `flash`, `o1`/`o3`/`o4`, `opus`/`sonnet`/`haiku` and `qwen`/`kimi`/`moonshot`
/// anywhere and sent every other name to OpenAI; those sent `deepseek-prover` to Google and
/// `llama-3` to OpenAI, whose APIs refused them, where an unknown name now gets an error that
/// lists the configured providers.
const LEGACY_NAME_WORDS: &[(&str, &str)] = &[
    ("gpt", "openai"),
    ("grok", "xai"),
    ("gemini", "google"),
    ("claude", "anthropic"),
    ("mistral", "mistral"),
    ("magistral", "mistral"),
    ("deepseek", "deepseek"),
];

/// The provider 1.3.2 would have routed an unknown name to by one of [`LEGACY_NAME_WORDS`].
pub fn legacy_family_of(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    LEGACY_NAME_WORDS
        .iter()
        .find(|(word, _)| lower.contains(word))
        .map(|(_, provider)| *provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_vars_follow_the_env_contract() {
        assert_eq!(key_var_for("openai"), "OPENAI_API_KEY");
        assert_eq!(key_var_for("google"), "GOOGLE_API_KEY");
        assert_eq!(key_var_for("openrouter"), "OPENROUTER_API_KEY");
        assert_eq!(key_var_for("groq"), "GROQ_API_KEY");
        assert_eq!(key_var_for("local-vllm"), "CUSTOM_LOCAL_VLLM_API_KEY");
    }

    #[test]
    fn words_route_names_the_prefixes_miss_as_converse_1_3_2_did() {
        let cases = [
            ("ft:gpt-4o-mini:acme::abc123", Some("openai")),
            ("open-mistral-nemo", Some("mistral")),
            ("my-gemini-tune", Some("google")),
            ("llama-unknown", None),
            ("some-pro-model", None),
            ("qwen3", None),
        ];
        for (name, want) in cases {
            assert_eq!(legacy_family_of(name), want, "{name}");
        }
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
