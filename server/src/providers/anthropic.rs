//! Anthropic Messages API: `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version: 2023-06-01`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::client::{Auth, HttpClient};
use super::{
    ChatRequest, ChatResponse, Message, Part, Provider, ProviderError, ProviderSettings, Reasoning,
    Role, Usage,
};

const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required; this is used when the catalog gives no cap.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
/// The API refuses thinking budgets below this.
pub const MIN_THINKING_BUDGET: u32 = 1024;
/// Room left for the visible answer when `max_tokens` has to be raised above a
/// thinking budget.
const ANSWER_RESERVE: u32 = 4096;
/// Stands in for a missing first user turn: the API requires the conversation to
/// start with the user, and dropping the assistant's turn would lose context.
const LEADING_USER_PLACEHOLDER: &str = "(continuing an earlier conversation)";

#[derive(Debug, Serialize)]
struct MessagesBody<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    messages: Vec<ApiMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WebSearchTool>,
}

#[derive(Debug, Serialize)]
struct ApiMessage<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    Image { source: ImageSource<'a> },
}

#[derive(Debug, Serialize)]
struct ImageSource<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    media_type: &'a str,
    data: &'a str,
}

#[derive(Debug, Serialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

/// Anthropic's server-side web search tool.
#[derive(Debug, Serialize)]
struct WebSearchTool {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    max_uses: u32,
}

/// `max_tokens` and the thinking budget, made consistent: the API wants
/// `1024 <= budget_tokens < max_tokens`.
///
/// Without a cap from the catalog, `max_tokens` is the default or, for a large
/// budget, the budget plus room for the answer. With a cap that the budget does
/// not fit under, the budget is lowered instead (keeping a quarter of the cap, at
/// most 4096 tokens, for the answer), because raising `max_tokens` past the
/// model's maximum output would be refused; only a cap too small for any budget
/// is raised.
fn token_settings(
    max_output_tokens: Option<u32>,
    reasoning: Option<&Reasoning>,
) -> (u32, Option<u32>) {
    let budget = match reasoning {
        Some(Reasoning::Budget(budget)) => (*budget).max(MIN_THINKING_BUDGET),
        // Anthropic's thinking is budget-based; an effort name has no meaning here.
        Some(Reasoning::Effort(_)) | None => {
            return (max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS).max(1), None);
        }
    };
    match max_output_tokens {
        None => (
            DEFAULT_MAX_TOKENS.max(budget.saturating_add(ANSWER_RESERVE)),
            Some(budget),
        ),
        Some(max) if max > budget => (max, Some(budget)),
        Some(max) if max > MIN_THINKING_BUDGET => {
            let reserve = (max / 4).clamp(1, ANSWER_RESERVE);
            (max, Some((max - reserve).max(MIN_THINKING_BUDGET)))
        }
        Some(_) => (budget.saturating_add(ANSWER_RESERVE), Some(budget)),
    }
}

/// Converts the conversation to the strict form the API wants: no empty blocks,
/// no empty messages, consecutive same-role messages merged, user first.
fn api_messages(messages: &[Message]) -> Vec<ApiMessage<'_>> {
    let mut out: Vec<ApiMessage<'_>> = Vec::with_capacity(messages.len() + 1);
    for message in messages {
        let blocks = message.parts.iter().filter_map(|part| match part {
            // Empty text blocks are refused ("text content blocks must be non-empty").
            Part::Text { text } if text.trim().is_empty() => None,
            Part::Text { text } => Some(Block::Text { text }),
            Part::Image { media_type, data } => Some(Block::Image {
                source: ImageSource {
                    kind: "base64",
                    media_type,
                    data,
                },
            }),
        });
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        match out.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => {
                let content: Vec<Block<'_>> = blocks.collect();
                if !content.is_empty() {
                    out.push(ApiMessage { role, content });
                }
            }
        }
    }
    if out.first().is_some_and(|m| m.role != "user") {
        out.insert(
            0,
            ApiMessage {
                role: "user",
                content: vec![Block::Text {
                    text: LEADING_USER_PLACEHOLDER,
                }],
            },
        );
    }
    out
}

fn messages_body(request: &ChatRequest) -> Result<MessagesBody<'_>, ProviderError> {
    let messages = api_messages(&request.messages);
    if messages.is_empty() {
        return Err(ProviderError::BadRequest {
            message: "the conversation has no content to send".to_owned(),
        });
    }
    let (max_tokens, budget) =
        token_settings(request.max_output_tokens, request.reasoning.as_ref());
    Ok(MessagesBody {
        model: &request.model,
        max_tokens,
        system: request.system.as_deref().filter(|s| !s.trim().is_empty()),
        messages,
        // With thinking on, only temperature 1 (the default) is accepted, so none
        // is sent; otherwise the API's range is 0–1, narrower than OpenAI's.
        temperature: match budget {
            Some(_) => None,
            None => request.temperature.map(|t| t.clamp(0.0, 1.0)),
        },
        thinking: budget.map(|budget_tokens| Thinking {
            kind: "enabled",
            budget_tokens,
        }),
        tools: if request.web_search {
            vec![WebSearchTool {
                kind: "web_search_20250305",
                name: "web_search",
                max_uses: 5,
            }]
        } else {
            Vec::new()
        },
    })
}

#[derive(Debug, Deserialize)]
struct MessagesAnswer {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<serde_json::Value>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Debug, Deserialize)]
struct AnthropicUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

fn parse_messages(answer: MessagesAnswer, request: &ChatRequest) -> ChatResponse {
    // Text blocks are concatenated as-is: with web search the API splits one
    // paragraph into several blocks around citations. Thinking, tool-use and
    // search-result blocks are not part of the answer.
    let text: String = answer
        .content
        .iter()
        .filter(|block| block.get("type").and_then(|t| t.as_str()) == Some("text"))
        .filter_map(|block| block.get("text").and_then(|t| t.as_str()))
        .collect();
    let finish_reason = answer.stop_reason.as_deref().map(|reason| {
        match reason {
            "end_turn" | "stop_sequence" => "stop",
            "max_tokens" | "model_context_window_exceeded" => "length",
            "refusal" => "content_filter",
            "tool_use" => "tool_use",
            _ => "other",
        }
        .to_owned()
    });
    let usage = answer
        .usage
        .map(|u| {
            // `input_tokens` excludes cached tokens; the caller wants the whole prompt.
            let input = match (
                u.input_tokens,
                u.cache_creation_input_tokens,
                u.cache_read_input_tokens,
            ) {
                (None, None, None) => None,
                (a, b, c) => Some(a.unwrap_or(0) + b.unwrap_or(0) + c.unwrap_or(0)),
            };
            Usage {
                input_tokens: input,
                output_tokens: u.output_tokens,
                reasoning_tokens: None,
                total_tokens: match (input, u.output_tokens) {
                    (None, None) => None,
                    (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
                },
            }
        })
        .unwrap_or_default();
    ChatResponse {
        text,
        model: answer
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| request.model.clone()),
        usage,
        finish_reason,
    }
}

#[derive(Debug)]
pub struct AnthropicProvider {
    http: HttpClient,
}

impl AnthropicProvider {
    pub fn new(settings: ProviderSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: HttpClient::new(
                settings,
                Auth::Header("x-api-key"),
                &[("anthropic-version", API_VERSION)],
            )?,
        })
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.http.settings().name
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let url = self.http.endpoint(&["v1", "messages"])?;
        let body = messages_body(request)?;
        let answer: MessagesAnswer = self.http.post_json(url, &body).await?;
        Ok(parse_messages(answer, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(role: Role, text: &str) -> Message {
        Message {
            role,
            parts: vec![Part::Text { text: text.into() }],
        }
    }

    #[test]
    fn budgets_and_max_tokens_stay_consistent() {
        assert_eq!(token_settings(None, None), (DEFAULT_MAX_TOKENS, None));
        assert_eq!(token_settings(Some(100), None), (100, None));
        let budget = |b| Some(Reasoning::Budget(b));
        assert_eq!(
            token_settings(None, budget(2000).as_ref()),
            (8192, Some(2000))
        );
        assert_eq!(
            token_settings(None, budget(10_000).as_ref()),
            (14_096, Some(10_000))
        );
        assert_eq!(
            token_settings(None, budget(10).as_ref()),
            (8192, Some(1024))
        );
        assert_eq!(
            token_settings(Some(64_000), budget(32_000).as_ref()),
            (64_000, Some(32_000))
        );
        // The 1.3.2 "max" defect: budget == max output.
        assert_eq!(
            token_settings(Some(64_000), budget(64_000).as_ref()),
            (64_000, Some(59_904))
        );
        assert_eq!(
            token_settings(Some(2000), budget(4000).as_ref()),
            (2000, Some(1500))
        );
        assert_eq!(
            token_settings(Some(1100), budget(4000).as_ref()),
            (1100, Some(1024))
        );
        assert_eq!(
            token_settings(Some(500), budget(4000).as_ref()),
            (8096, Some(4000))
        );
    }

    #[test]
    fn merges_roles_and_starts_with_user() {
        let messages = vec![
            text(Role::Assistant, "earlier answer"),
            text(Role::User, "a"),
            text(Role::User, "  "),
            text(Role::User, "b"),
            text(Role::Assistant, "c"),
            text(Role::Assistant, "d"),
            text(Role::User, "e"),
        ];
        let value = serde_json::to_value(api_messages(&messages)).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                {"role": "user", "content": [{"type": "text", "text": LEADING_USER_PLACEHOLDER}]},
                {"role": "assistant", "content": [{"type": "text", "text": "earlier answer"}]},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
                {"role": "user", "content": [{"type": "text", "text": "e"}]}
            ])
        );
    }
}
