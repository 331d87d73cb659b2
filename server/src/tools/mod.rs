//! The `chat` and `consensus` tools, independent of MCP: they take typed
//! parameters and return a [`ToolOutput`] that the MCP layer turns into a
//! `CallToolResult`. Keeping them free of protocol types makes them easy to test.

pub mod args;
pub mod chat;
pub mod consensus;
pub mod consensus_result;
pub mod output;
pub mod params;
pub mod progress;
pub mod prompts;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::catalog::ReasoningEffort;
use crate::conversation::{Conversation, ConversationStore};
use crate::files::{Attachments, FilePolicy};
use crate::providers::{ChatRequest, ChatResponse, Message, Part, ProviderError, Role};
use crate::routing::{ResolvedModel, Router};

/// A tool's answer: text for the calling model, structured data for programs.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    pub text: String,
    /// `Null` for errors: clients check structured content against the tool's
    /// output schema even on errors, so an error carries only its text.
    pub structured: Value,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            text: message.into(),
            structured: Value::Null,
            is_error: true,
        }
    }
}

/// Why a tool call ends without a regular answer.
#[derive(Debug)]
pub enum Failure {
    /// The client cancelled: no answer is sent.
    Cancelled,
    /// An error the calling model should see (`isError: true`), saying what to do.
    Error(String),
}

/// What the MCP layer gets from a tool: a cancelled call gets no answer, a failure
/// becomes an `isError` output the calling model can read and act on.
fn reply(result: Result<ToolOutput, Failure>) -> Option<ToolOutput> {
    match result {
        Ok(output) => Some(output),
        Err(Failure::Cancelled) => None,
        Err(Failure::Error(message)) => Some(ToolOutput::error(message)),
    }
}

/// Shared state of the tools: model routing, conversations, file access, limits.
#[derive(Debug)]
pub struct Engine {
    pub router: Router,
    pub store: Arc<dyn ConversationStore>,
    pub files: FilePolicy,
    pub max_output_tokens: usize,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Who is calling, for conversation ownership. `None` when auth is off.
pub type Owner = Option<String>;

/// The `reasoning_effort` default when the caller gives none.
const DEFAULT_EFFORT: ReasoningEffort = ReasoningEffort::Medium;
/// Tokens assumed per image when estimating context use.
const IMAGE_TOKENS: usize = 1600;

/// A model name, or an object with the name and this model's own options (as converse 1.3.2 clients send it).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ModelSpec {
    Name(String),
    Object(ModelEntry),
}

// Converse 1.3.2 spread every other key of a models object into that model's
// provider options, so clients use it to give one model its own temperature or
// effort; the options a model call knows are taken here. (The doc comment below is
// the schema description clients show to models.)
/// A model with its own options, which replace the call-level ones for this model only.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct ModelEntry {
    /// Model name or alias, as in the list form.
    pub model: String,
    /// This model's sampling temperature, instead of the call's `temperature`.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// This model's reasoning depth, instead of the call's `reasoning_effort`.
    #[serde(default)]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Whether this model may search the web, instead of the call's `use_websearch`.
    #[serde(default)]
    pub use_websearch: Option<bool>,
    /// This model's answer length and detail, instead of the call's `verbosity`.
    #[serde(default)]
    pub verbosity: Option<params::Verbosity>,
    /// The position this model takes: "for", "against", "neutral", or your own instruction (at most 2000 characters). It never licenses invented facts. The same model may appear several times with different stances.
    #[serde(default)]
    pub stance: Option<String>,
    /// Keys this object does not know; any fails the call (see [`args`]).
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: args::Unknown,
}

impl ModelSpec {
    pub fn name(&self) -> &str {
        match self {
            ModelSpec::Name(n) | ModelSpec::Object(ModelEntry { model: n, .. }) => n,
        }
    }

    /// This entry's stance; `Err` says why the given one cannot be used.
    pub fn stance(&self) -> Result<Option<prompts::Stance>, String> {
        match self {
            ModelSpec::Object(ModelEntry {
                stance: Some(text), ..
            }) => prompts::Stance::parse(text).map(Some),
            _ => Ok(None),
        }
    }

    /// The call's settings with this entry's own options in their place.
    pub fn settings(&self, call: CallSettings) -> CallSettings {
        let ModelSpec::Object(entry) = self else {
            return call;
        };
        CallSettings {
            temperature: entry.temperature.unwrap_or(call.temperature),
            effort: entry.reasoning_effort.or(call.effort),
            web_search: entry.use_websearch.unwrap_or(call.web_search),
            verbosity: entry.verbosity.or(call.verbosity),
        }
    }
}

fn message_tokens(message: &Message) -> usize {
    message
        .parts
        .iter()
        .map(|p| match p {
            Part::Text { text } => output::estimate_tokens(text.len()),
            Part::Image { .. } => IMAGE_TOKENS,
        })
        .sum()
}

/// Drops the oldest turns (in pairs, keeping a user turn first) until the
/// conversation leaves room for the answer. Returns how many messages were dropped,
/// or an error when even the newest message alone does not fit.
pub fn fit_context(
    messages: &mut Vec<Message>,
    system: &str,
    resolved: &ResolvedModel,
) -> Result<usize, String> {
    let Some(info) = &resolved.info else {
        return Ok(0);
    };
    let window = info.context_window as usize;
    // Leave room for the answer, but never more than half the window.
    let reserve = (info.max_output as usize).min(window / 2);
    let budget = window.saturating_sub(reserve + output::estimate_tokens(system.len()));
    let mut dropped = 0;
    while messages.iter().map(message_tokens).sum::<usize>() > budget {
        if messages.len() <= 1 {
            return Err(format!(
                "the prompt with its files and images needs about {} tokens, more than model {} accepts (context window {} tokens, {} reserved for the answer). Send fewer or smaller files, or pick a model with a larger context window",
                messages.iter().map(message_tokens).sum::<usize>(),
                resolved.model,
                window,
                reserve
            ));
        }
        let n = if messages.len() >= 3 { 2 } else { 1 };
        messages.drain(..n);
        dropped += n;
    }
    Ok(dropped)
}

/// Settings shared by chat and consensus for one model call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallSettings {
    pub temperature: f32,
    pub effort: Option<ReasoningEffort>,
    pub web_search: bool,
    pub verbosity: Option<params::Verbosity>,
}

/// `wanted` when the model has the feature; otherwise nothing, and a note
/// saying the answer came without it.
fn if_supported<T>(
    wanted: Option<T>,
    supported: bool,
    feature: &str,
    model: &str,
    notes: &mut Vec<String>,
) -> Option<T> {
    if wanted.is_some() && !supported {
        notes.push(format!(
            "{feature} is not available for {model}; answered without it"
        ));
        return None;
    }
    wanted
}

/// Builds the provider request for one model, applying the catalog's limits.
/// Returns the request and notes about settings that were adjusted.
pub fn build_request(
    resolved: &ResolvedModel,
    system: &str,
    messages: Vec<Message>,
    settings: &CallSettings,
) -> (ChatRequest, Vec<String>) {
    let mut notes = Vec::new();
    let verbosity = settings.verbosity.map(params::Verbosity::as_str);
    let (temperature, reasoning, web_search, verbosity, max_output, api) = match &resolved.info {
        Some(info) => {
            let web = settings.web_search.then_some(());
            let web = if_supported(web, info.web_search, "web search", &info.name, &mut notes);
            (
                info.clamp_temperature(settings.temperature),
                info.reasoning_for(settings.effort.unwrap_or(DEFAULT_EFFORT)),
                web.is_some(),
                if_supported(
                    verbosity,
                    info.verbosity,
                    "verbosity",
                    &info.name,
                    &mut notes,
                ),
                Some(info.max_output),
                info.openai_api(),
            )
        }
        // An unknown model: pass what the caller asked for explicitly and nothing
        // else, so the provider's own defaults apply.
        None => (
            Some(settings.temperature),
            settings
                .effort
                .map(|e| crate::providers::Reasoning::Effort(e.as_str().to_string())),
            settings.web_search,
            verbosity,
            None,
            Default::default(),
        ),
    };
    (
        ChatRequest {
            model: resolved.model.clone(),
            system: Some(system.to_string()),
            messages,
            temperature,
            reasoning,
            max_output_tokens: max_output,
            web_search,
            openai_api: api,
            verbosity,
        },
        notes,
    )
}

/// One provider call that stops when the client cancels. `None` means cancelled.
pub async fn call_provider(
    metrics: &crate::metrics::Metrics,
    resolved: &ResolvedModel,
    request: &ChatRequest,
    cancel: &CancellationToken,
) -> Option<Result<ChatResponse, ProviderError>> {
    // One span per provider call: in a trace, consensus shows its models side by side.
    let span = tracing::info_span!(
        "provider call",
        provider = %resolved.provider_name,
        model = %resolved.model,
        outcome = tracing::field::Empty,
    );
    let result = tokio::select! {
        // Dropping the provider future aborts its HTTP request.
        _ = cancel.cancelled() => None,
        result = tracing::Instrument::instrument(resolved.provider.chat(request), span.clone()) => Some(result),
    };
    let outcome = match &result {
        None => "cancelled",
        Some(Ok(_)) => "ok",
        Some(Err(e)) => e.kind(),
    };
    span.record("outcome", outcome);
    metrics.provider_call(&resolved.provider_name, outcome);
    result
}

/// Explains a provider failure the way a caller can act on it.
pub fn describe_provider_error(provider: &str, model: &str, error: &ProviderError) -> String {
    let hint = match error {
        ProviderError::Unauthorized { .. } => " The server's administrator must fix the key.",
        ProviderError::RateLimited { .. } => " Retry later, or use another model.",
        ProviderError::ContextTooLong { .. } => {
            " Start a new conversation (omit continuation_id) or send fewer files."
        }
        ProviderError::ModelNotFound { .. } => " Check the model name, or use \"auto\".",
        ProviderError::Timeout(_) | ProviderError::Network(_) | ProviderError::Server { .. } => {
            " This is usually temporary: retry, or use another model."
        }
        _ => "",
    };
    format!("{provider} model {model} failed: {error}.{hint}")
}

impl Engine {
    /// Loads a conversation for continuation. Unknown, expired or foreign ids start
    /// a new conversation under a new id, with a note saying so.
    pub async fn load_conversation(
        &self,
        id: Option<&str>,
        owner: &Owner,
    ) -> Result<(String, Vec<Message>, Option<String>), String> {
        let Some(id) = id.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok((crate::conversation::new_id(), Vec::new(), None));
        };
        let found = self.store.load(id).await.map_err(|e| {
            format!("{e}; retry, or omit continuation_id to start a new conversation")
        })?;
        match found {
            Some(Conversation {
                messages, owner: o, ..
            }) if o == *owner => Ok((id.to_string(), messages, None)),
            _ => Ok((
                crate::conversation::new_id(),
                Vec::new(),
                Some(format!(
                    "continuation_id {id} was not found (expired, evicted or from another server), so this is a new conversation"
                )),
            )),
        }
    }

    /// Stores the conversation so it can be continued. The answer is already paid
    /// for, so a store failure only costs the continuation: it becomes a note.
    async fn save_conversation(
        &self,
        id: &str,
        conversation: Conversation,
        notes: &mut Vec<String>,
    ) {
        if let Err(e) = self.store.save(id, conversation).await {
            tracing::warn!(error = %e, "could not save conversation");
            notes.push("the conversation could not be saved, so it cannot be continued".into());
        }
    }

    /// The new user turn with its files and images; any unusable one fails the call.
    async fn user_turn(
        &self,
        files: &[String],
        images: &[String],
        prompt: &str,
    ) -> Result<Message, Failure> {
        let attachments = self
            .attachments(files, images)
            .await
            .map_err(Failure::Error)?;
        Ok(user_message(attachments, prompt))
    }

    pub async fn attachments(
        &self,
        files: &[String],
        images: &[String],
    ) -> Result<Attachments, String> {
        let attachments = crate::files::gather_blocking(&self.files, files, images).await;
        if attachments.errors.is_empty() {
            Ok(attachments)
        } else {
            let list: Vec<String> = attachments
                .errors
                .iter()
                .map(|e| format!("- {e}"))
                .collect();
            Err(format!(
                "could not use the given files/images:\n{}",
                list.join("\n")
            ))
        }
    }
}

/// The new user turn: attachments first, then the prompt.
pub fn user_message(attachments: Attachments, prompt: &str) -> Message {
    let mut parts = attachments.parts;
    parts.push(Part::Text {
        text: prompt.to_string(),
    });
    Message {
        role: Role::User,
        parts,
    }
}

/// A turn of plain text: a model's answer, or a question without attachments.
fn text_message(role: Role, text: String) -> Message {
    Message {
        role,
        parts: vec![Part::Text { text }],
    }
}

pub fn has_images(message: &Message) -> bool {
    message
        .parts
        .iter()
        .any(|p| matches!(p, Part::Image { .. }))
}
