//! LLM provider clients: one trait, one implementation per wire format.
//!
//! The tools never talk HTTP themselves. They build a [`ChatRequest`] whose every
//! model-specific decision (which model id, which reasoning setting, which
//! temperature, how many output tokens) has already been made from the model
//! catalog, and hand it to a [`Provider`]. A provider only translates that request
//! into its wire format, sends it with retries, and translates the answer or the
//! error back.

pub mod anthropic;
mod client;
pub mod gemini;
pub mod openai;
pub mod openai_compat;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use converse_config::{ChatDialect, WireFormat};
use serde::Serialize;

/// Who said a message in a conversation. System text travels separately in
/// [`ChatRequest::system`], because every wire format treats it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Part {
    Text {
        text: String,
    },
    /// An image as base64 data with its MIME type (`image/png`, …).
    Image {
        media_type: String,
        data: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

/// The reasoning setting, already translated from the user's level through the
/// model catalog and clamped to what the model supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasoning {
    /// A named effort as the API spells it (`"low"`, `"medium"`, `"high"`, …):
    /// OpenAI `reasoning.effort`, OpenAI-compatible `reasoning_effort`,
    /// Gemini `thinkingLevel`.
    Effort(String),
    /// A thinking-token budget: Anthropic `thinking.budget_tokens`,
    /// Gemini `thinkingConfig.thinkingBudget`.
    Budget(u32),
}

/// Which OpenAI endpoint a model needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenAiApi {
    #[default]
    Responses,
    ChatCompletions,
}

/// Everything a provider needs for one call.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The API model id, aliases already resolved (or an unknown name passed through).
    pub model: String,
    pub system: Option<String>,
    /// Conversation turns, oldest first. The caller guarantees the list is not
    /// empty and ends with a user message; providers that need strict
    /// alternation merge consecutive same-role messages themselves.
    pub messages: Vec<Message>,
    /// `None` when the model does not accept a temperature.
    pub temperature: Option<f32>,
    pub reasoning: Option<Reasoning>,
    /// Upper bound for generated tokens, when the API needs or accepts one.
    pub max_output_tokens: Option<u32>,
    /// Provider-native web search, only set when the model supports it.
    pub web_search: bool,
    /// OpenAI only: which endpoint to use for this model.
    pub openai_api: OpenAiApi,
    /// `low`, `medium` or `high`, only set when the model takes it (OpenAI
    /// Responses `text.verbosity`).
    pub verbosity: Option<&'static str>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    /// The model the API says answered (may differ from the requested alias).
    pub model: String,
    pub usage: Usage,
    /// Normalised: `stop`, `length`, `content_filter`, `tool_use`, `other`.
    pub finish_reason: Option<String>,
}

/// A failed provider call, classified so the tool can tell the caller what to do.
/// Messages never contain the API key.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ProviderError {
    #[error("the API key was rejected ({message}); check {key_var}")]
    Unauthorized {
        key_var: &'static str,
        message: String,
    },
    #[error("access denied or quota exhausted: {message}")]
    Forbidden { message: String },
    #[error("rate limited by the provider{}: {message}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("the conversation is too long for this model's context window: {message}")]
    ContextTooLong { message: String },
    #[error("model not found: {message}")]
    ModelNotFound { message: String },
    #[error("the provider rejected the request: {message}")]
    BadRequest { message: String },
    #[error("the provider had a server error (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("could not reach the provider: {0}")]
    Network(String),
    #[error("the provider's answer could not be understood: {0}")]
    InvalidResponse(String),
}

impl ProviderError {
    /// A short, stable name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Unauthorized { .. } => "unauthorized",
            ProviderError::Forbidden { .. } => "forbidden",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::ContextTooLong { .. } => "context_too_long",
            ProviderError::ModelNotFound { .. } => "model_not_found",
            ProviderError::BadRequest { .. } => "bad_request",
            ProviderError::Server { .. } => "server_error",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Network(_) => "network",
            ProviderError::InvalidResponse(_) => "invalid_response",
        }
    }
}

#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The name shown to users: `openai`, …, or a custom endpoint's own name.
    fn name(&self) -> &str;
    /// Performs one call, with bounded retries on 429/5xx. Dropping the future
    /// aborts the HTTP request (that is how client cancellation reaches the API).
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError>;
}

/// How to reach one provider. Built from the configuration by the server.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// `openai`, `anthropic`, … or the custom endpoint's name.
    pub name: String,
    /// The table's wire format (custom endpoints: Chat Completions).
    pub wire: WireFormat,
    /// What the provider's Chat Completions understands beyond the common body.
    pub dialect: ChatDialect,
    /// The API root as the official SDKs take it (see the README's table).
    pub base_url: url::Url,
    pub api_key: secrecy::SecretString,
    /// The environment variable the key came from, named in 401 errors.
    pub key_var: &'static str,
    /// Per-attempt timeout of one HTTP request.
    pub timeout: Duration,
    /// Retries after the first attempt on 429/5xx/network errors.
    pub max_retries: u32,
    /// Extra headers, e.g. OpenRouter's `HTTP-Referer` and `X-Title`.
    pub extra_headers: Vec<(String, String)>,
}

/// Builds the client for one provider, choosing the module by `settings.wire`.
/// Fails only if the HTTP client cannot be built (TLS initialisation).
pub fn build_provider(settings: ProviderSettings) -> Result<Arc<dyn Provider>, reqwest::Error> {
    Ok(match settings.wire {
        WireFormat::Responses => Arc::new(openai::OpenAiProvider::new(settings)?),
        WireFormat::Messages => Arc::new(anthropic::AnthropicProvider::new(settings)?),
        WireFormat::Gemini => Arc::new(gemini::GeminiProvider::new(settings)?),
        WireFormat::ChatCompletions => {
            Arc::new(openai_compat::OpenAiCompatProvider::new(settings)?)
        }
    })
}
