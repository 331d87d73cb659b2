//! `chat`: one model, with conversation continuation, files and images.

use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::params::{SharedParams, Wording};
use super::progress::Progress;
use super::{
    CallSettings, Engine, Failure, Owner, ToolOutput, args, build_request, call_provider,
    describe_provider_error, output,
};
use crate::conversation::Conversation;
use crate::providers::{ChatRequest, ChatResponse, Message, Role};
use crate::routing::ResolvedModel;

/// Parameters of the `chat` tool.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct ChatParams {
    #[serde(flatten)]
    pub shared: SharedParams<ChatWording>,
    /// Model name or alias, e.g. "gpt-5", "gemini-2.5-pro", "sonnet", "grok-4", or "auto" (default) for the first configured provider's default model.
    #[serde(default)]
    pub model: Option<String>,
    /// Arguments chat does not know; any fails the call (see [`super::args`]).
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: args::Unknown,
}

/// How `chat` describes the parameters it shares with `consensus`.
#[derive(Debug, Clone)]
pub struct ChatWording;

impl Wording for ChatWording {
    const PROMPT: &'static str = "Your question or task, with the context the other model needs.";
    const IMAGES: &'static str =
        "Images to include: paths (png, jpeg, gif, webp) or data:image/...;base64 URLs.";
    const CONTINUATION_ID: &'static str = "Continue an earlier conversation: the continuation_id a previous chat or consensus answer gave.";
    const TEMPERATURE: &'static str = "Sampling temperature 0–1 (default 0.5); clamped to what the model accepts, ignored by models that take none.";
    const REASONING_EFFORT: &'static str = "Reasoning depth for models that think (default medium); clamped to the levels the model supports.";
    const USE_WEBSEARCH: &'static str =
        "Let the model search the web, where the provider offers it (default false).";
    const DEFAULT_TEMPERATURE: f32 = 0.5;
}

impl Engine {
    /// The `chat` tool as the MCP layer calls it: `None` when the client
    /// cancelled, an error output when the call failed.
    pub async fn chat(
        &self,
        params: ChatParams,
        owner: Owner,
        cancel: CancellationToken,
        progress: Progress,
    ) -> Option<ToolOutput> {
        super::reply(self.run_chat(params, owner, &cancel, &progress).await)
    }

    /// Asks the model with the conversation so far and stores its answer as the
    /// conversation's next turn. `Err(Failure::Cancelled)` means the client cancelled.
    async fn run_chat(
        &self,
        params: ChatParams,
        owner: Owner,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<ToolOutput, Failure> {
        let problems = args::describe::<ChatParams>("chat", &params.unknown);
        args::failure("chat", problems.into_iter().collect())?;
        let shared = &params.shared;
        let prompt = shared.question()?;
        let resolved = self
            .router
            .resolve(params.model.as_deref().unwrap_or("auto"))
            .map_err(|e| Failure::Error(e.to_string()))?;
        let (id, history, note) = self
            .load_conversation(shared.continuation_id.as_deref(), &owner)
            .await
            .map_err(Failure::Error)?;
        // A retired 1.3.2 model's notice leads the status lines: it says who answered.
        let mut notes: Vec<String> = resolved.notice.iter().cloned().chain(note).collect();
        let user = self
            .user_turn(&shared.files, &shared.images, prompt)
            .await?;
        let request = chat_request(&resolved, history, user, &shared.settings(), &mut notes)?;
        progress.set_total(2);
        progress.step(format!("asking {}", resolved.model));
        let response = self.ask(&resolved, &request, cancel).await?;
        progress.step(format!("{} answered", resolved.model));

        let mut messages = request.messages;
        messages.push(super::text_message(Role::Assistant, response.text.clone()));
        let message_count = messages.len();
        let conversation = Conversation {
            messages,
            provider: resolved.provider_name.clone(),
            model: resolved.model.clone(),
            owner,
        };
        self.save_conversation(&id, conversation, &mut notes).await;
        Ok(chat_output(
            &id,
            &resolved,
            response,
            message_count,
            notes,
            self.max_output_tokens,
        ))
    }

    /// The one provider call of `chat`; a failure says what the caller can do about it.
    async fn ask(
        &self,
        resolved: &ResolvedModel,
        request: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, Failure> {
        match call_provider(&self.metrics, resolved, request, cancel).await {
            None => Err(Failure::Cancelled),
            Some(Ok(response)) => Ok(response),
            Some(Err(e)) => Err(Failure::Error(describe_provider_error(
                &resolved.provider_name,
                &resolved.model,
                &e,
            ))),
        }
    }
}

/// The provider request: the history plus the new turn, trimmed to the model's
/// context window and fitted to what the model supports. Every trim or
/// adjustment becomes a note, so the caller knows what the model did not see.
fn chat_request(
    resolved: &ResolvedModel,
    history: Vec<Message>,
    user: Message,
    settings: &CallSettings,
    notes: &mut Vec<String>,
) -> Result<ChatRequest, Failure> {
    if super::has_images(&user) && resolved.info.as_ref().is_some_and(|i| !i.images) {
        return Err(Failure::Error(format!(
            "model {} does not accept images; choose a model that does (e.g. gpt-5, gemini-2.5-pro, sonnet) or omit images",
            resolved.model
        )));
    }
    let mut messages = history;
    messages.push(user);
    let dropped = super::fit_context(&mut messages, super::prompts::CHAT, resolved)
        .map_err(Failure::Error)?;
    if dropped > 0 {
        notes.push(format!("the {dropped} oldest messages of the conversation were left out to fit the model's context window"));
    }
    let (request, adjust_notes) = build_request(resolved, super::prompts::CHAT, messages, settings);
    notes.extend(adjust_notes);
    Ok(request)
}

/// The answer, then the footer with the continuation id; the whole result
/// within the output cap (structuredContent's copy of the answer shrinks first).
fn chat_output(
    id: &str,
    resolved: &ResolvedModel,
    response: ChatResponse,
    message_count: usize,
    notes: Vec<String>,
    max_output_tokens: usize,
) -> ToolOutput {
    output::fit(max_output_tokens, response.text.len(), |trim| {
        let mut cuts = Vec::new();
        let shown = trim.primary(&response.model, "answer", &response.text, &mut cuts);
        let truncated = trim.report(cuts, &["content"]);
        let mut text_notes = notes.clone();
        text_notes.extend(truncated.as_ref().map(output::Truncation::note));
        let footer = footer(id, &resolved.provider_name, &resolved.model, &text_notes);
        let mut structured = json!({
            "content": trim.extra(&response.text),
            "continuation": {
                "id": id,
                "provider": resolved.provider_name,
                "model": response.model,
                "messageCount": message_count,
            },
            "usage": response.usage,
            "finishReason": response.finish_reason,
            "notes": notes,
        });
        if let Some(truncated) = truncated {
            structured["truncated"] = json!(truncated);
        }
        ToolOutput {
            text: format!("{shown}{footer}"),
            structured,
            is_error: false,
        }
    })
}

/// The lines after the answer: the continuation id (the calling model must see
/// it to continue; converse 1.3.2 hid it) and any notes.
pub(crate) fn footer(id: &str, provider: &str, model: &str, notes: &[String]) -> String {
    let mut text = format!(
        "\n\n---\ncontinuation_id: {id} ({provider}/{model}). Pass it as continuation_id to continue this conversation."
    );
    for note in notes {
        text.push_str(&format!("\nNote: {note}."));
    }
    text
}
