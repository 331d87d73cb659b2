//! OpenAI Chat Completions (`POST {base}/chat/completions`), as spoken by the
//! built-in providers of that wire format and custom OpenAI-compatible endpoints. The body
//! builder and the answer parser are shared with the OpenAI client, which uses
//! this wire format for models that are not on the Responses API.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::client::{Auth, HttpClient};
use super::{
    ChatDialect, ChatRequest, ChatResponse, Message, Part, Provider, ProviderError,
    ProviderSettings, Reasoning, Role, Usage,
};

/// Which field carries the output-token cap. OpenAI deprecated `max_tokens` in
/// favour of `max_completion_tokens` (reasoning models refuse the old one); the
/// compatible APIs still expect `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenField {
    MaxTokens,
    MaxCompletionTokens,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    /// OpenRouter's unified reasoning setting, used for token budgets.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<OpenRouterReasoning>,
    /// OpenAI's search models (`gpt-4o-search-preview`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    web_search_options: Option<serde_json::Map<String, serde_json::Value>>,
    /// OpenRouter's web plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    plugins: Option<Vec<Plugin>>,
}

#[derive(Debug, Serialize)]
struct OpenRouterReasoning {
    max_tokens: u32,
}

#[derive(Debug, Serialize)]
struct Plugin {
    id: &'static str,
}

#[derive(Debug, Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: ChatContent<'a>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ChatContent<'a> {
    /// Plain text: the widest-supported form (some compatible APIs accept only strings).
    Text(String),
    Parts(Vec<ChatPart<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ChatPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Serialize)]
struct ImageUrl {
    url: String,
}

/// Builds a Chat Completions body. `dialect` selects the provider-specific spelling of
/// web search and token budgets.
pub(crate) fn chat_body<'a>(
    request: &'a ChatRequest,
    dialect: ChatDialect,
    token_field: TokenField,
) -> ChatBody<'a> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(ChatMessage {
            role: "system",
            content: ChatContent::Text(system.to_owned()),
        });
    }
    messages.extend(request.messages.iter().map(chat_message));

    let (reasoning_effort, reasoning) = match &request.reasoning {
        Some(Reasoning::Effort(effort)) => (Some(effort.as_str()), None),
        Some(Reasoning::Budget(tokens)) if dialect == ChatDialect::OpenRouter => (
            None,
            Some(OpenRouterReasoning {
                max_tokens: *tokens,
            }),
        ),
        Some(Reasoning::Budget(_)) => {
            tracing::debug!(model = %request.model, "this API takes no thinking budget; ignoring it");
            (None, None)
        }
        None => (None, None),
    };

    let (web_search_options, plugins) = match (request.web_search, dialect) {
        (false, _) => (None, None),
        (true, ChatDialect::OpenAi) => (Some(serde_json::Map::new()), None),
        (true, ChatDialect::OpenRouter) => (None, Some(vec![Plugin { id: "web" }])),
        // X.AI retired Live Search (`search_parameters` now answers 410) and the
        // others have no search switch on this endpoint.
        (true, _) => {
            tracing::debug!(model = %request.model, "no web search on this endpoint; ignoring it");
            (None, None)
        }
    };

    let (max_tokens, max_completion_tokens) = match token_field {
        TokenField::MaxTokens => (request.max_output_tokens, None),
        TokenField::MaxCompletionTokens => (None, request.max_output_tokens),
    };

    ChatBody {
        model: &request.model,
        messages,
        temperature: request.temperature,
        max_tokens,
        max_completion_tokens,
        reasoning_effort,
        reasoning,
        web_search_options,
        plugins,
    }
}

fn chat_message(message: &Message) -> ChatMessage<'_> {
    let has_image = message
        .parts
        .iter()
        .any(|p| matches!(p, Part::Image { .. }));
    // Image parts are only valid in user messages, so assistant turns (and
    // text-only user turns) travel as plain strings.
    let content = if message.role == Role::User && has_image {
        ChatContent::Parts(
            message
                .parts
                .iter()
                .map(|part| match part {
                    Part::Text { text } => ChatPart::Text { text },
                    Part::Image { media_type, data } => ChatPart::ImageUrl {
                        image_url: ImageUrl {
                            url: data_url(media_type, data),
                        },
                    },
                })
                .collect(),
        )
    } else {
        ChatContent::Text(joined_text(&message.parts))
    };
    ChatMessage {
        role: role_name(message.role),
        content,
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// The text parts of a message, separated by blank lines.
pub(crate) fn joined_text(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(|part| match part {
            Part::Text { text } => Some(text.as_str()),
            Part::Image { .. } => None,
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

pub(crate) fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChatCompletion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
    /// OpenRouter can answer 200 with an error when the upstream provider failed.
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ChoiceMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChoiceMessage {
    /// A string, `null`, or (Mistral's reasoning models) an array of chunks.
    #[serde(default)]
    content: Option<serde_json::Value>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChatUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    total_tokens: Option<u64>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

/// Translates a Chat Completions answer.
pub(crate) fn parse_chat_completion(
    completion: ChatCompletion,
    request: &ChatRequest,
) -> Result<ChatResponse, ProviderError> {
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(match completion.error {
            Some(error) => ProviderError::Server {
                status: error
                    .get("code")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|c| u16::try_from(c).ok())
                    .filter(|c| *c >= 400)
                    .unwrap_or(502),
                message: error
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("the provider returned an error instead of a choice")
                    .to_owned(),
            },
            None => ProviderError::InvalidResponse("the answer has no choices".to_owned()),
        });
    };
    let message = choice.message;
    let mut text = message
        .as_ref()
        .and_then(|m| m.content.as_ref())
        .map(content_text)
        .unwrap_or_default();
    let mut finish_reason = choice.finish_reason.as_deref().map(normalise_finish);
    if text.is_empty()
        && let Some(refusal) = message.and_then(|m| m.refusal)
    {
        text = refusal;
        finish_reason = Some("content_filter".to_owned());
    }
    let usage = completion
        .usage
        .map(|u| Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
            reasoning_tokens: u.completion_tokens_details.and_then(|d| d.reasoning_tokens),
            total_tokens: u.total_tokens,
        })
        .unwrap_or_default();
    Ok(ChatResponse {
        text,
        model: completion
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| request.model.clone()),
        usage,
        finish_reason,
    })
}

/// The answer text from a string or an array of content chunks (only `text`
/// chunks count; `thinking` chunks are the model's scratchpad).
fn content_text(content: &serde_json::Value) -> String {
    match content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(chunks) => chunks
            .iter()
            .filter(|c| c.get("type").and_then(|t| t.as_str()) == Some("text"))
            .filter_map(|c| c.get("text").and_then(|t| t.as_str()))
            .collect(),
        _ => String::new(),
    }
}

fn normalise_finish(reason: &str) -> String {
    match reason {
        "stop" | "end_turn" => "stop",
        "length" | "model_length" => "length",
        "content_filter" => "content_filter",
        "tool_calls" | "function_call" => "tool_use",
        _ => "other",
    }
    .to_owned()
}

/// X.AI, Mistral, DeepSeek, OpenRouter and custom endpoints.
#[derive(Debug)]
pub struct OpenAiCompatProvider {
    http: HttpClient,
}

impl OpenAiCompatProvider {
    pub fn new(settings: ProviderSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: HttpClient::new(settings, Auth::Bearer, &[])?,
        })
    }
}

#[async_trait]
impl Provider for OpenAiCompatProvider {
    fn name(&self) -> &str {
        &self.http.settings().name
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let url = self.http.endpoint(&["chat", "completions"])?;
        let body = chat_body(request, self.http.settings().dialect, TokenField::MaxTokens);
        let completion: ChatCompletion = self.http.post_json(url, &body).await?;
        parse_chat_completion(completion, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::OpenAiApi;

    fn request() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            system: Some("be brief".into()),
            messages: vec![
                Message {
                    role: Role::User,
                    parts: vec![
                        Part::Text {
                            text: "look".into(),
                        },
                        Part::Image {
                            media_type: "image/png".into(),
                            data: "AAAA".into(),
                        },
                    ],
                },
                Message {
                    role: Role::Assistant,
                    parts: vec![Part::Text {
                        text: "seen".into(),
                    }],
                },
                Message {
                    role: Role::User,
                    parts: vec![Part::Text {
                        text: "and?".into(),
                    }],
                },
            ],
            temperature: Some(0.5),
            reasoning: Some(Reasoning::Effort("high".into())),
            max_output_tokens: Some(100),
            web_search: true,
            openai_api: OpenAiApi::ChatCompletions,
            verbosity: None,
        }
    }

    #[test]
    fn body_shapes() {
        let request = request();
        let body = serde_json::to_value(chat_body(
            &request,
            ChatDialect::Plain,
            TokenField::MaxTokens,
        ))
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                    ]},
                    {"role": "assistant", "content": "seen"},
                    {"role": "user", "content": "and?"}
                ],
                "temperature": 0.5,
                "max_tokens": 100,
                "reasoning_effort": "high"
            })
        );
        let body = serde_json::to_value(chat_body(
            &request,
            ChatDialect::OpenAi,
            TokenField::MaxCompletionTokens,
        ))
        .unwrap();
        assert_eq!(body["max_completion_tokens"], 100);
        assert!(body.get("max_tokens").is_none());
        assert_eq!(body["web_search_options"], serde_json::json!({}));
        let body = serde_json::to_value(chat_body(
            &request,
            ChatDialect::OpenRouter,
            TokenField::MaxTokens,
        ))
        .unwrap();
        assert_eq!(body["plugins"], serde_json::json!([{"id": "web"}]));
    }

    #[test]
    fn parses_chunked_content_and_finish_reasons() {
        let completion: ChatCompletion = serde_json::from_value(serde_json::json!({
            "model": "magistral-medium-2506",
            "choices": [{"index": 0, "finish_reason": "model_length", "message": {"role": "assistant", "content": [
                {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
                {"type": "text", "text": "answer"}
            ]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
        }))
        .unwrap();
        let response = parse_chat_completion(completion, &request()).unwrap();
        assert_eq!(response.text, "answer");
        assert_eq!(response.finish_reason.as_deref(), Some("length"));
        assert_eq!(response.usage.total_tokens, Some(7));
    }
}
