//! Startup wiring: from a validated [`ServerConfig`] to a running [`Engine`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use converse_config::{ChatDialect, ServerConfig, Transport, WireFormat};
use secrecy::{ExposeSecret, SecretString};

use crate::catalog::{Catalog, CatalogError};
use crate::conversation::{ConversationStore, Limits, MemoryStore, RedisStore};
use crate::files::FilePolicy;
use crate::providers::{self, Provider, ProviderSettings};
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
    for (builtin, provider) in config.providers.configured_builtin() {
        build(ProviderSettings {
            name: builtin.name.to_string(),
            wire: builtin.wire,
            dialect: builtin.dialect,
            base_url: provider.base_url.clone(),
            api_key: provider.api_key.clone(),
            key_var: builtin.key_var,
            timeout,
            max_retries: retries,
            extra_headers: extra_headers(config, builtin.dialect),
        })?;
    }
    let mut custom_models = BTreeMap::new();
    for custom in &config.providers.custom {
        build(ProviderSettings {
            name: custom.name.clone(),
            wire: WireFormat::ChatCompletions,
            dialect: ChatDialect::Plain,
            base_url: custom.base_url.clone(),
            api_key: custom
                .api_key
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
            key_var: converse_config::vars::CUSTOM_API_KEY_PATTERN,
            timeout,
            max_retries: retries,
            extra_headers: Vec::new(),
        })?;
        custom_models.insert(custom.name.clone(), custom.models.clone());
    }
    Ok((providers, custom_models))
}

/// OpenRouter's app-attribution headers (`OPENROUTER_REFERER`, `OPENROUTER_TITLE`).
fn extra_headers(config: &ServerConfig, dialect: ChatDialect) -> Vec<(String, String)> {
    if dialect != ChatDialect::OpenRouter {
        return Vec::new();
    }
    let p = &config.providers;
    [
        ("HTTP-Referer", &p.openrouter_referer),
        ("X-Title", &p.openrouter_title),
    ]
    .into_iter()
    .filter_map(|(header, value)| Some((header.to_string(), value.clone()?)))
    .collect()
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
