//! Google Gemini API: `POST {base}/v1beta/models/{model}:generateContent` with
//! `x-goog-api-key`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::client::{Auth, HttpClient};
use super::{
    ChatRequest, ChatResponse, Message, Part, Provider, ProviderError, ProviderSettings, Reasoning,
    Role, Usage,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateBody<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<GoogleTool>,
}

#[derive(Debug, Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<GeminiPart<'a>>,
}

#[derive(Debug, Serialize)]
struct SystemInstruction<'a> {
    parts: Vec<GeminiPart<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum GeminiPart<'a> {
    Text {
        text: &'a str,
    },
    Inline {
        #[serde(rename = "inlineData")]
        inline_data: InlineData<'a>,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InlineData<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig<'a>>,
}

/// Gemini 2.5 takes a token budget, Gemini 3 a level; the catalog decides which.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_level: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GoogleTool {
    google_search: serde_json::Map<String, serde_json::Value>,
}

fn generate_body(request: &ChatRequest) -> GenerateBody<'_> {
    let contents = request
        .messages
        .iter()
        .filter_map(content)
        .collect::<Vec<_>>();
    let thinking_config = request.reasoning.as_ref().map(|reasoning| match reasoning {
        Reasoning::Budget(budget) => ThinkingConfig {
            thinking_budget: Some(*budget),
            thinking_level: None,
        },
        Reasoning::Effort(level) => ThinkingConfig {
            thinking_budget: None,
            thinking_level: Some(level),
        },
    });
    let config = GenerationConfig {
        temperature: request.temperature,
        max_output_tokens: request.max_output_tokens,
        thinking_config,
    };
    let has_config = config.temperature.is_some()
        || config.max_output_tokens.is_some()
        || config.thinking_config.is_some();
    GenerateBody {
        contents,
        system_instruction: request
            .system
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|text| SystemInstruction {
                parts: vec![GeminiPart::Text { text }],
            }),
        generation_config: has_config.then_some(config),
        tools: if request.web_search {
            vec![GoogleTool {
                google_search: serde_json::Map::new(),
            }]
        } else {
            Vec::new()
        },
    }
}

/// One turn; `None` when nothing is left after dropping empty text, which the
/// API refuses.
fn content(message: &Message) -> Option<Content<'_>> {
    let parts: Vec<GeminiPart<'_>> = message
        .parts
        .iter()
        .filter_map(|part| match part {
            Part::Text { text } if text.is_empty() => None,
            Part::Text { text } => Some(GeminiPart::Text { text }),
            Part::Image { media_type, data } => Some(GeminiPart::Inline {
                inline_data: InlineData {
                    mime_type: media_type,
                    data,
                },
            }),
        })
        .collect();
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "model",
    };
    (!parts.is_empty()).then_some(Content { role, parts })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAnswer {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    model_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<CandidateContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<AnswerPart>,
}

#[derive(Debug, Deserialize)]
struct AnswerPart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
    #[serde(default)]
    block_reason_message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    total_token_count: Option<u64>,
}

fn parse_answer(
    answer: GenerateAnswer,
    request: &ChatRequest,
) -> Result<ChatResponse, ProviderError> {
    let Some(candidate) = answer.candidates.into_iter().next() else {
        return Err(
            match answer
                .prompt_feedback
                .and_then(|f| f.block_reason.map(|r| (r, f.block_reason_message)))
            {
                Some((reason, detail)) => ProviderError::BadRequest {
                    message: match detail {
                        Some(detail) => format!("the prompt was blocked ({reason}): {detail}"),
                        None => format!("the prompt was blocked ({reason})"),
                    },
                },
                None => ProviderError::InvalidResponse("the answer has no candidates".to_owned()),
            },
        );
    };
    // Thought parts are the model's thinking summary, not its answer.
    let text: String = candidate
        .content
        .map(|c| c.parts)
        .unwrap_or_default()
        .into_iter()
        .filter(|part| part.thought != Some(true))
        .filter_map(|part| part.text)
        .collect();
    let finish_reason = candidate.finish_reason.as_deref().map(|reason| {
        match reason {
            "STOP" => "stop",
            "MAX_TOKENS" => "length",
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
            | "IMAGE_SAFETY" => "content_filter",
            "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => "tool_use",
            _ => "other",
        }
        .to_owned()
    });
    let usage = answer
        .usage_metadata
        .map(|u| Usage {
            input_tokens: u.prompt_token_count,
            // `candidatesTokenCount` leaves the thinking out; it is billed as output
            // and counted in OpenAI's `output_tokens`, so it is added here to keep
            // one meaning across providers.
            output_tokens: match (u.candidates_token_count, u.thoughts_token_count) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            },
            reasoning_tokens: u.thoughts_token_count,
            total_tokens: u.total_token_count,
        })
        .unwrap_or_default();
    Ok(ChatResponse {
        text,
        model: answer
            .model_version
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| request.model.clone()),
        usage,
        finish_reason,
    })
}

#[derive(Debug)]
pub struct GeminiProvider {
    http: HttpClient,
}

impl GeminiProvider {
    pub fn new(settings: ProviderSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: HttpClient::new(settings, Auth::Header("x-goog-api-key"), &[])?,
        })
    }
}

#[async_trait]
impl Provider for GeminiProvider {
    fn name(&self) -> &str {
        &self.http.settings().name
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        // The API also names models `models/<id>`; the path already says `models/`.
        let model = request
            .model
            .strip_prefix("models/")
            .unwrap_or(&request.model);
        let url = self
            .http
            .endpoint(&["v1beta", "models", &format!("{model}:generateContent")])?;
        let answer: GenerateAnswer = self.http.post_json(url, &generate_body(request)).await?;
        parse_answer(answer, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::OpenAiApi;

    #[test]
    fn body_and_answer() {
        let request = ChatRequest {
            model: "gemini-2.5-pro".into(),
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
            temperature: Some(0.5),
            reasoning: Some(Reasoning::Budget(2048)),
            max_output_tokens: Some(1000),
            web_search: true,
            openai_api: OpenAiApi::Responses,
            verbosity: None,
        };
        let body = serde_json::to_value(generate_body(&request)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
                    {"role": "model", "parts": [{"text": "hello"}]},
                    {"role": "user", "parts": [{"text": "bye"}]}
                ],
                "systemInstruction": {"parts": [{"text": "sys"}]},
                "generationConfig": {"temperature": 0.5, "maxOutputTokens": 1000, "thinkingConfig": {"thinkingBudget": 2048}},
                "tools": [{"googleSearch": {}}]
            })
        );

        let answer: GenerateAnswer = serde_json::from_value(serde_json::json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "let me think", "thought": true},
                {"text": "Hello "}, {"text": "world"}
            ]}, "finishReason": "MAX_TOKENS", "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 7, "thoughtsTokenCount": 3, "totalTokenCount": 15},
            "modelVersion": "gemini-2.5-pro"
        }))
        .unwrap();
        let response = parse_answer(answer, &request).unwrap();
        assert_eq!(response.text, "Hello world");
        assert_eq!(response.finish_reason.as_deref(), Some("length"));
        assert_eq!(response.usage.output_tokens, Some(10));
        assert_eq!(response.usage.reasoning_tokens, Some(3));

        let blocked: GenerateAnswer = serde_json::from_value(serde_json::json!({
            "promptFeedback": {"blockReason": "SAFETY"}
        }))
        .unwrap();
        assert!(matches!(
            parse_answer(blocked, &request),
            Err(ProviderError::BadRequest { message }) if message.contains("SAFETY")
        ));
    }
}
