//! OpenAI: the Responses API (`POST {base}/responses`) by default, Chat
//! Completions for models the catalog marks as needing it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::client::{Auth, HttpClient};
use super::openai_compat::{self, ChatCompletion, TokenField};
use super::{
    ChatDialect, ChatRequest, ChatResponse, Message, OpenAiApi, Part, Provider, ProviderError,
    ProviderSettings, Reasoning, Role, Usage,
};

#[derive(Debug, Serialize)]
struct ResponsesBody<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<&'a str>,
    input: Vec<InputMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<ReasoningParam<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<TextParam<'a>>,
    /// The Responses API keeps every response for 30 days unless told not to;
    /// this server keeps its own history and has no use for the stored copy.
    store: bool,
}

#[derive(Debug, Serialize)]
struct ReasoningParam<'a> {
    effort: &'a str,
}

#[derive(Debug, Serialize)]
struct TextParam<'a> {
    verbosity: &'a str,
}

#[derive(Debug, Serialize)]
struct Tool {
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct InputMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    content: Vec<InputPart<'a>>,
}

/// User content is `input_*`; earlier assistant turns must be `output_text`
/// (the API rejects `input_text` in an assistant message).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InputPart<'a> {
    InputText {
        text: &'a str,
    },
    InputImage {
        image_url: String,
        detail: &'static str,
    },
    OutputText {
        text: &'a str,
    },
}

fn responses_body(request: &ChatRequest) -> ResponsesBody<'_> {
    let reasoning = match &request.reasoning {
        Some(Reasoning::Effort(effort)) => Some(ReasoningParam { effort }),
        Some(Reasoning::Budget(_)) => {
            tracing::debug!(model = %request.model, "OpenAI takes no thinking budget; ignoring it");
            None
        }
        None => None,
    };
    ResponsesBody {
        model: &request.model,
        instructions: request.system.as_deref().filter(|s| !s.is_empty()),
        input: request.messages.iter().map(input_message).collect(),
        temperature: request.temperature,
        max_output_tokens: request.max_output_tokens,
        reasoning,
        tools: if request.web_search {
            vec![Tool { kind: "web_search" }]
        } else {
            Vec::new()
        },
        text: request.verbosity.map(|verbosity| TextParam { verbosity }),
        store: false,
    }
}

fn input_message(message: &Message) -> InputMessage<'_> {
    let content = match message.role {
        Role::User => message
            .parts
            .iter()
            .map(|part| match part {
                Part::Text { text } => InputPart::InputText { text },
                Part::Image { media_type, data } => InputPart::InputImage {
                    image_url: openai_compat::data_url(media_type, data),
                    detail: "auto",
                },
            })
            .collect(),
        // An assistant turn cannot carry images on input; its text is what matters.
        Role::Assistant => message
            .parts
            .iter()
            .filter_map(|part| match part {
                Part::Text { text } => Some(InputPart::OutputText { text }),
                Part::Image { .. } => None,
            })
            .collect(),
    };
    InputMessage {
        kind: "message",
        role: match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        },
        content,
    }
}

#[derive(Debug, Deserialize)]
struct ResponsesAnswer {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    incomplete_details: Option<IncompleteDetails>,
    #[serde(default)]
    output: Vec<serde_json::Value>,
    #[serde(default)]
    usage: Option<ResponsesUsage>,
    #[serde(default)]
    error: Option<ResponsesError>,
}

#[derive(Debug, Deserialize)]
struct IncompleteDetails {
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResponsesError {
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResponsesUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    output_tokens_details: Option<OutputTokensDetails>,
    total_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct OutputTokensDetails {
    reasoning_tokens: Option<u64>,
}

/// The SDKs' `output_text`: every `output_text` part of every `message` item, in
/// order. Reasoning items, web-search calls and other items are skipped.
fn parse_responses(
    answer: ResponsesAnswer,
    request: &ChatRequest,
) -> Result<ChatResponse, ProviderError> {
    let mut text = String::new();
    let mut refusal = None;
    let parts = answer
        .output
        .iter()
        .filter(|item| item.get("type").and_then(|t| t.as_str()) == Some("message"))
        .filter_map(|item| item.get("content").and_then(|c| c.as_array()))
        .flatten();
    for part in parts {
        match part.get("type").and_then(|t| t.as_str()) {
            Some("output_text") => {
                if let Some(t) = part.get("text").and_then(|t| t.as_str()) {
                    text.push_str(t);
                }
            }
            Some("refusal") => {
                refusal = part
                    .get("refusal")
                    .and_then(|r| r.as_str())
                    .map(str::to_owned);
            }
            _ => {}
        }
    }

    let mut finish_reason = match answer.status.as_deref() {
        Some("completed") => Some("stop"),
        Some("incomplete") => Some(
            match answer
                .incomplete_details
                .as_ref()
                .and_then(|d| d.reason.as_deref())
            {
                Some("content_filter") => "content_filter",
                _ => "length",
            },
        ),
        Some("failed") => {
            return Err(ProviderError::Server {
                status: 500,
                message: answer
                    .error
                    .and_then(|e| e.message)
                    .unwrap_or_else(|| "the response failed".to_owned()),
            });
        }
        Some("queued" | "in_progress") => {
            return Err(ProviderError::InvalidResponse(
                "the response is not finished (background mode is not used)".to_owned(),
            ));
        }
        Some(_) => Some("other"),
        None => None,
    }
    .map(str::to_owned);
    if text.is_empty()
        && let Some(refusal) = refusal
    {
        text = refusal;
        finish_reason = Some("content_filter".to_owned());
    }

    let usage = answer
        .usage
        .map(|u| Usage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            reasoning_tokens: u.output_tokens_details.and_then(|d| d.reasoning_tokens),
            total_tokens: u.total_tokens,
        })
        .unwrap_or_default();
    Ok(ChatResponse {
        text,
        model: answer
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| request.model.clone()),
        usage,
        finish_reason,
    })
}

#[derive(Debug)]
pub struct OpenAiProvider {
    http: HttpClient,
}

impl OpenAiProvider {
    pub fn new(settings: ProviderSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: HttpClient::new(settings, Auth::Bearer, &[])?,
        })
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.http.settings().name
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        match request.openai_api {
            OpenAiApi::Responses => {
                let url = self.http.endpoint(&["responses"])?;
                let answer: ResponsesAnswer =
                    self.http.post_json(url, &responses_body(request)).await?;
                parse_responses(answer, request)
            }
            OpenAiApi::ChatCompletions => {
                let url = self.http.endpoint(&["chat", "completions"])?;
                let body = openai_compat::chat_body(
                    request,
                    ChatDialect::OpenAi,
                    TokenField::MaxCompletionTokens,
                );
                let completion: ChatCompletion = self.http.post_json(url, &body).await?;
                openai_compat::parse_chat_completion(completion, request)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_and_answer() {
        let request = ChatRequest {
            model: "o3".into(),
            system: Some("sys".into()),
            messages: vec![
                Message {
                    role: Role::User,
                    parts: vec![
                        Part::Text { text: "hi".into() },
                        Part::Image {
                            media_type: "image/png".into(),
                            data: "AAAA".into(),
                        },
                    ],
                },
                Message {
                    role: Role::Assistant,
                    parts: vec![Part::Text {
                        text: "hello".into(),
                    }],
                },
                Message {
                    role: Role::User,
                    parts: vec![Part::Text { text: "bye".into() }],
                },
            ],
            temperature: None,
            reasoning: Some(Reasoning::Effort("low".into())),
            max_output_tokens: Some(500),
            web_search: true,
            openai_api: OpenAiApi::Responses,
            verbosity: Some("low"),
        };
        let body = serde_json::to_value(responses_body(&request)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "model": "o3",
                "instructions": "sys",
                "input": [
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_text", "text": "hi"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"}
                    ]},
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "bye"}]}
                ],
                "max_output_tokens": 500,
                "reasoning": {"effort": "low"},
                "tools": [{"type": "web_search"}],
                "text": {"verbosity": "low"},
                "store": false
            })
        );

        let answer: ResponsesAnswer = serde_json::from_value(serde_json::json!({
            "id": "resp_1", "object": "response", "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "model": "o3-2025-04-16",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "web_search_call", "id": "ws_1", "status": "completed"},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "incomplete", "content": [
                    {"type": "output_text", "text": "Hello ", "annotations": []},
                    {"type": "output_text", "text": "world", "annotations": []}
                ]}
            ],
            "usage": {"input_tokens": 10, "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 15}, "total_tokens": 30}
        }))
        .unwrap();
        let response = parse_responses(answer, &request).unwrap();
        assert_eq!(response.text, "Hello world");
        assert_eq!(response.model, "o3-2025-04-16");
        assert_eq!(response.finish_reason.as_deref(), Some("length"));
        assert_eq!(response.usage.reasoning_tokens, Some(15));
    }
}
