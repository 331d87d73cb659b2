//! Startup wiring: from a validated [`ServerConfig`] to a running [`Engine`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use converse_config::{ProviderConfig, ServerConfig, Transport};
use secrecy::{ExposeSecret, SecretString};

use crate::catalog::{Catalog, CatalogError};
use crate::conversation::{ConversationStore, Limits, MemoryStore, RedisStore};
use crate::files::FilePolicy;
use crate::providers::{self, Provider, ProviderKind, ProviderSettings};
use crate::routing::Router;
use crate::tools::Engine;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot use CONVERSE_FILES_ROOT: {0}")]
    FilesRoot(std::io::Error),
    #[error("cannot create the HTTP client for provider {provider}: {source}")]
    HttpClient {
        provider: String,
        source: reqwest::Error,
    },
    #[error("CONVERSATION_STORE=redis needs REDIS_URL")]
    RedisUrlMissing,
    #[error("cannot connect to Redis (REDIS_URL): {0}")]
    Redis(crate::conversation::StoreError),
}

/// The built-in providers: name, kind, key variable, and its config.
fn built_in(
    config: &ServerConfig,
) -> Vec<(
    &'static str,
    ProviderKind,
    &'static str,
    Option<&ProviderConfig>,
)> {
    let p = &config.providers;
    vec![
        (
            "openai",
            ProviderKind::OpenAi,
            "OPENAI_API_KEY",
            p.openai.as_ref(),
        ),
        ("xai", ProviderKind::Xai, "XAI_API_KEY", p.xai.as_ref()),
        (
            "google",
            ProviderKind::Google,
            "GOOGLE_API_KEY",
            p.google.as_ref(),
        ),
        (
            "anthropic",
            ProviderKind::Anthropic,
            "ANTHROPIC_API_KEY",
            p.anthropic.as_ref(),
        ),
        (
            "mistral",
            ProviderKind::Mistral,
            "MISTRAL_API_KEY",
            p.mistral.as_ref(),
        ),
        (
            "deepseek",
            ProviderKind::DeepSeek,
            "DEEPSEEK_API_KEY",
            p.deepseek.as_ref(),
        ),
        (
            "openrouter",
            ProviderKind::OpenRouter,
            "OPENROUTER_API_KEY",
            p.openrouter.as_ref(),
        ),
    ]
}

/// Configured providers by name, and each custom endpoint's model list.
type Providers = (
    BTreeMap<String, Arc<dyn Provider>>,
    BTreeMap<String, Vec<String>>,
);

fn build_providers(config: &ServerConfig) -> Result<Providers, StartupError> {
    let timeout = config.providers.timeout;
    let retries = config.providers.max_retries;
    let mut providers: BTreeMap<String, Arc<dyn Provider>> = BTreeMap::new();
    let mut build = |settings: ProviderSettings| -> Result<(), StartupError> {
        let name = settings.name.clone();
        let provider =
            providers::build_provider(settings).map_err(|source| StartupError::HttpClient {
                provider: name.clone(),
                source,
            })?;
        providers.insert(name, provider);
        Ok(())
    };
    for (name, kind, key_var, provider) in built_in(config) {
        let Some(provider) = provider else { continue };
        let mut extra_headers = Vec::new();
        if kind == ProviderKind::OpenRouter {
            if let Some(referer) = &config.providers.openrouter_referer {
                extra_headers.push(("HTTP-Referer".to_string(), referer.clone()));
            }
            if let Some(title) = &config.providers.openrouter_title {
                extra_headers.push(("X-Title".to_string(), title.clone()));
            }
        }
        build(ProviderSettings {
            name: name.to_string(),
            kind,
            base_url: provider.base_url.clone(),
            api_key: provider.api_key.clone(),
            key_var,
            timeout,
            max_retries: retries,
            extra_headers,
        })?;
    }
    let mut custom_models = BTreeMap::new();
    for custom in &config.providers.custom {
        build(ProviderSettings {
            name: custom.name.clone(),
            kind: ProviderKind::Custom,
            base_url: custom.base_url.clone(),
            api_key: custom
                .api_key
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
            key_var: "CUSTOM_<NAME>_API_KEY",
            timeout,
            max_retries: retries,
            extra_headers: Vec::new(),
        })?;
        custom_models.insert(custom.name.clone(), custom.models.clone());
    }
    Ok((providers, custom_models))
}

/// Builds the tools' engine: providers, catalog, conversation store, file policy.
pub async fn build_engine(config: &ServerConfig) -> Result<Engine, StartupError> {
    let catalog = Catalog::load(config.models_file.as_deref())?;
    let (providers, custom_models) = build_providers(config)?;
    let conv = &config.conversations;
    let limits = Limits {
        ttl: conv.ttl,
        max_conversations: conv.max_conversations as usize,
        max_messages: conv.max_messages as usize,
        max_bytes: usize::try_from(conv.max_bytes).unwrap_or(usize::MAX),
    };
    let store: Arc<dyn ConversationStore> = match conv.store {
        converse_config::ConversationStoreKind::Memory => Arc::new(MemoryStore::new(limits)),
        converse_config::ConversationStoreKind::Redis => {
            let url = conv
                .redis_url
                .as_ref()
                .ok_or(StartupError::RedisUrlMissing)?;
            Arc::new(
                RedisStore::connect(url.expose_secret(), limits)
                    .await
                    .map_err(StartupError::Redis)?,
            )
        }
    };
    let files = FilePolicy::new(
        config.files_root.as_deref(),
        config.transport == Transport::Stdio,
    )
    .map_err(StartupError::FilesRoot)?;
    Ok(Engine {
        router: Router::new(catalog, providers, custom_models),
        store,
        files,
        max_output_tokens: config.max_output_tokens as usize,
        metrics: crate::metrics::Metrics::new(),
    })
}

/// How long in-flight requests may finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
