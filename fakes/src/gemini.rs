//! Gemini's `generateContent`. Errors are Google RPC statuses:
//! `{"error": {"code", "message", "status", "details"?}}`. Field names are
//! accepted in camelCase and snake_case, as the real (protobuf JSON) API does.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::common::{
    Failure, Reply, Script, Understood, answer, check_image, json_object, run_script, type_name,
};
use crate::{AuthState, Incoming, Shared};

fn error(status: StatusCode, message: impl Into<String>, rpc_status: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"code": status.as_u16(), "message": message.into(), "status": rpc_status}}),
    )
}

fn invalid(message: impl Into<String>) -> Reply {
    error(StatusCode::BAD_REQUEST, message, "INVALID_ARGUMENT")
}

fn unknown_name(key: &str, path: &str) -> Reply {
    if path.is_empty() {
        invalid(format!(
            "Invalid JSON payload received. Unknown name \"{key}\": Cannot find field."
        ))
    } else {
        invalid(format!(
            "Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."
        ))
    }
}

/// Field names accepted at each level, camelCase first; the snake_case spelling
/// is accepted too.
fn check_fields(object: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), Reply> {
    for key in object.keys() {
        let camel = snake_to_camel(key);
        if !allowed.contains(&camel.as_str()) {
            return Err(unknown_name(key, path));
        }
    }
    Ok(())
}

fn snake_to_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A field by its camelCase name or its snake_case spelling.
fn field<'a>(object: &'a Map<String, Value>, camel: &str) -> Option<&'a Value> {
    object.get(camel).or_else(|| {
        let snake: String = camel
            .chars()
            .flat_map(|c| {
                if c.is_ascii_uppercase() {
                    vec!['_', c.to_ascii_lowercase()]
                } else {
                    vec![c]
                }
            })
            .collect();
        object.get(&snake)
    })
}

fn failure(failure: Failure, model: &str) -> Reply {
    match failure {
        Failure::Unauthorized => error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login \
             cookie or other valid authentication credential.",
            "UNAUTHENTICATED",
        ),
        Failure::Forbidden => error(
            StatusCode::FORBIDDEN,
            "The caller does not have permission",
            "PERMISSION_DENIED",
        ),
        Failure::NotFound => error(
            StatusCode::NOT_FOUND,
            format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 generateContent. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
            "NOT_FOUND",
        ),
        Failure::RateLimited => Reply::json(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {
                "code": 429,
                "message": "You exceeded your current quota, please check your plan and billing details.",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
            }}),
        )
        .with_header("retry-after", "1"),
        Failure::Server => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
            "INTERNAL",
        ),
        Failure::Overloaded => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "The model is overloaded. Please try again later.",
            "UNAVAILABLE",
        ),
        Failure::ContextTooLong => invalid(
            "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).",
        ),
    }
}

pub(crate) async fn generate(shared: &Shared, incoming: &Incoming, model_action: &str) -> Reply {
    if let Some(reply) = auth_failure(incoming.auth) {
        return reply;
    }
    let model = match model_action.rsplit_once(':') {
        Some((model, "generateContent")) if !model.is_empty() => model.to_owned(),
        Some((_, "generateContent")) => return invalid("model name must not be empty"),
        _ => return error(StatusCode::NOT_FOUND, "Method not found.", "NOT_FOUND"),
    };
    let body = match json_object(&incoming.body) {
        Ok(body) => body,
        Err(problem) => return invalid(format!("Invalid JSON payload received. {problem}")),
    };
    let (understood, include_thoughts) = match understand(model, &body) {
        Ok(understood) => understood,
        Err(reply) => return reply,
    };
    let script = match run_script(shared, &understood.model).await {
        Ok(script) => script,
        Err(f) => return failure(f, &understood.model),
    };
    Reply::ok(generate_answer(
        shared,
        &understood,
        &script,
        include_thoughts,
    ))
}

/// The answer to a missing or wrong key: Gemini answers a missing key with 403 and a wrong one
/// with 400.
fn auth_failure(auth: AuthState) -> Option<Reply> {
    match auth {
        AuthState::Ok => None,
        AuthState::Missing => Some(error(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
            "PERMISSION_DENIED",
        )),
        AuthState::Wrong => Some(Reply::json(
            StatusCode::BAD_REQUEST,
            json!({"error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}
                }]
            }}),
        )),
    }
}

/// The `GenerateContentResponse` body: one candidate with the deterministic answer, a thought
/// summary when thoughts were asked for, grounding metadata when search was on, and the usage.
fn generate_answer(
    shared: &Shared,
    understood: &Understood,
    script: &Script,
    include_thoughts: bool,
) -> Value {
    let thinking = understood
        .reasoning
        .as_deref()
        .is_some_and(|r| r != "budget:0");
    let thoughts = if thinking {
        crate::common::FAKE_REASONING_TOKENS
    } else {
        0
    };
    // `maxOutputTokens` covers thinking and the visible answer together.
    let cap = understood
        .max_output_tokens
        .map(|max| max.saturating_sub(thoughts).max(1));
    let answer = answer("gemini", understood, script, cap);
    let id = shared.next_id();

    let mut parts = Vec::new();
    if thinking && include_thoughts {
        parts.push(json!({"text": "[fake thought summary]", "thought": true}));
    }
    parts.push(json!({"text": answer.text}));
    let mut candidate = json!({
        "content": {"parts": parts, "role": "model"},
        "finishReason": if answer.truncated { "MAX_TOKENS" } else { "STOP" },
        "index": 0
    });
    if understood.web_search {
        let query: String = understood.last_user_text.chars().take(100).collect();
        candidate["groundingMetadata"] =
            json!({"webSearchQueries": [query], "groundingChunks": []});
    }
    let mut usage = json!({
        "promptTokenCount": answer.input_tokens,
        "candidatesTokenCount": answer.output_tokens,
        "totalTokenCount": answer.input_tokens + answer.output_tokens + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.input_tokens}]
    });
    if thinking {
        usage["thoughtsTokenCount"] = json!(thoughts);
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": understood.model,
        "responseId": format!("fake-{id}")
    })
}

const REQUEST_FIELDS: &[&str] = &[
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
    "model",
];
const GENERATION_FIELDS: &[&str] = &[
    "temperature",
    "topP",
    "topK",
    "candidateCount",
    "maxOutputTokens",
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
    "responseModalities",
    "mediaResolution",
    "speechConfig",
    "enableEnhancedCivicAnswers",
];
const PART_FIELDS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
];
/// The members of the part's `data` oneof.
const DATA_FIELDS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];
const TOOL_FIELDS: &[&str] = &[
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "functionDeclarations",
    "urlContext",
    "computerUse",
    "fileSearch",
    "googleMaps",
];
const THINKING_LEVELS: &[&str] = &["minimal", "low", "medium", "high"];
const MAX_THINKING_BUDGET: i64 = 32_768;

/// Validates the body; returns what was understood and whether thoughts were asked for.
fn understand(model: String, body: &Map<String, Value>) -> Result<(Understood, bool), Reply> {
    check_fields(body, REQUEST_FIELDS, "")?;
    let mut u = Understood {
        model,
        ..Understood::default()
    };
    understand_contents(&mut u, field(body, "contents"))?;
    if let Some(system) = field(body, "systemInstruction") {
        understand_system_instruction(&mut u, system)?;
    }
    let include_thoughts = match field(body, "generationConfig") {
        Some(config) => understand_generation_config(&mut u, config)?,
        None => false,
    };
    understand_tools(&mut u, field(body, "tools"))?;
    Ok((u, include_thoughts))
}

/// `contents`: a non-empty list of `{role, parts}` turns; the role defaults to `user`.
fn understand_contents(u: &mut Understood, contents: Option<&Value>) -> Result<(), Reply> {
    let contents = match contents {
        Some(Value::Array(contents)) if !contents.is_empty() => contents,
        None | Some(Value::Array(_)) => {
            return Err(invalid(
                "* GenerateContentRequest.contents: contents is not specified\n",
            ));
        }
        Some(other) => {
            return Err(invalid(format!(
                "Invalid JSON payload received. Invalid value at 'contents', expected a list but got {}.",
                type_name(other)
            )));
        }
    };
    for (i, content) in contents.iter().enumerate() {
        let path = format!("contents[{i}]");
        let Some(content) = content.as_object() else {
            return Err(invalid(format!(
                "Invalid JSON payload received. Invalid value at '{path}'."
            )));
        };
        check_fields(content, &["role", "parts"], &path)?;
        let role = match content.get("role") {
            None => "user",
            Some(Value::String(role)) if role == "user" || role == "model" => role.as_str(),
            Some(_) => return Err(invalid("Please use a valid role: user, model.")),
        };
        let texts = understand_parts(u, content.get("parts"), &path)?;
        u.add_turn(role, &texts);
    }
    Ok(())
}

/// `systemInstruction`: a content whose role is not looked at.
fn understand_system_instruction(u: &mut Understood, system: &Value) -> Result<(), Reply> {
    let Some(system) = system.as_object() else {
        return Err(invalid(
            "Invalid JSON payload received. Invalid value at 'system_instruction'.",
        ));
    };
    check_fields(system, &["role", "parts"], "system_instruction")?;
    let texts = understand_parts(u, system.get("parts"), "system_instruction")?;
    u.add_turn("system", &texts);
    Ok(())
}

/// `generationConfig`: temperature, output cap and thinking. Returns whether thoughts were asked
/// for.
fn understand_generation_config(u: &mut Understood, config: &Value) -> Result<bool, Reply> {
    let Some(config) = config.as_object() else {
        return Err(invalid(
            "Invalid JSON payload received. Invalid value at 'generation_config'.",
        ));
    };
    check_fields(config, GENERATION_FIELDS, "generation_config")?;
    if let Some(t) = field(config, "temperature") {
        match t.as_f64() {
            Some(t) if (0.0..=2.0).contains(&t) => u.temperature = Some(t),
            Some(t) => {
                return Err(invalid(format!(
                    "* GenerateContentRequest.generation_config.temperature: temperature must be in the range [0.0, 2.0], got {t}\n"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), {t}"
                )));
            }
        }
    }
    if let Some(max) = field(config, "maxOutputTokens") {
        match max.as_u64() {
            Some(max) if max >= 1 => u.max_output_tokens = Some(max),
            _ => {
                return Err(invalid(format!(
                    "* GenerateContentRequest.generation_config.max_output_tokens: max_output_tokens must be positive, got {max}\n"
                )));
            }
        }
    }
    match field(config, "thinkingConfig") {
        Some(thinking) => understand_thinking_config(u, thinking),
        None => Ok(false),
    }
}

/// `thinkingConfig`: a budget or a level (not both). Returns whether thoughts were asked for.
fn understand_thinking_config(u: &mut Understood, thinking: &Value) -> Result<bool, Reply> {
    let path = "generation_config.thinking_config";
    let Some(thinking) = thinking.as_object() else {
        return Err(invalid(format!(
            "Invalid JSON payload received. Invalid value at '{path}'."
        )));
    };
    check_fields(
        thinking,
        &["thinkingBudget", "thinkingLevel", "includeThoughts"],
        path,
    )?;
    let include_thoughts =
        field(thinking, "includeThoughts").and_then(Value::as_bool) == Some(true);
    let budget = field(thinking, "thinkingBudget");
    let level = field(thinking, "thinkingLevel");
    if budget.is_some() && level.is_some() {
        return Err(invalid(
            "thinking_budget and thinking_level cannot be set at the same time.",
        ));
    }
    if let Some(budget) = budget {
        match budget.as_i64() {
            Some(b) if (-1..=MAX_THINKING_BUDGET).contains(&b) => {
                u.reasoning = Some(format!("budget:{b}"));
            }
            _ => {
                return Err(invalid(format!(
                    "The thinking budget {budget} is invalid. Please choose a value between 0 and {MAX_THINKING_BUDGET}, or -1 for dynamic thinking."
                )));
            }
        }
    }
    if let Some(level) = level {
        match level.as_str().map(str::to_ascii_lowercase) {
            Some(l) if THINKING_LEVELS.contains(&l.as_str()) => u.reasoning = Some(l),
            _ => {
                return Err(invalid(format!(
                    "Invalid value at '{path}.thinking_level' \
                     (type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel), {level}"
                )));
            }
        }
    }
    Ok(include_thoughts)
}

/// `tools`: a list of tool objects; only `googleSearch` changes the answer.
fn understand_tools(u: &mut Understood, tools: Option<&Value>) -> Result<(), Reply> {
    let tools = match tools {
        None => return Ok(()),
        Some(Value::Array(tools)) => tools,
        Some(_) => {
            return Err(invalid(
                "Invalid JSON payload received. Invalid value at 'tools'.",
            ));
        }
    };
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        let Some(tool) = tool.as_object() else {
            return Err(invalid(format!(
                "Invalid JSON payload received. Invalid value at '{path}'."
            )));
        };
        check_fields(tool, TOOL_FIELDS, &path)?;
        if field(tool, "googleSearch").is_some() {
            u.web_search = true;
        }
    }
    Ok(())
}

/// Checks a `parts` list, counts images and returns the texts.
fn understand_parts<'a>(
    u: &mut Understood,
    parts: Option<&'a Value>,
    path: &str,
) -> Result<Vec<&'a str>, Reply> {
    let parts = match parts {
        Some(Value::Array(parts)) if !parts.is_empty() => parts,
        _ => {
            return Err(invalid(format!(
                "* GenerateContentRequest.{path}.parts: contents.parts must not be empty.\n"
            )));
        }
    };
    let mut texts = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let part_path = format!("{path}.parts[{j}]");
        let Some(part) = part.as_object() else {
            return Err(invalid(format!(
                "Invalid JSON payload received. Invalid value at '{part_path}'."
            )));
        };
        check_fields(part, PART_FIELDS, &part_path)?;
        check_one_data_field(part, &part_path)?;
        if let Some(text) = field(part, "text") {
            let Some(text) = text.as_str() else {
                return Err(invalid(format!(
                    "Invalid value at '{part_path}.text' (TYPE_STRING), {text}"
                )));
            };
            texts.push(text);
        }
        if let Some(inline) = field(part, "inlineData") {
            understand_inline_data(u, inline, &format!("{part_path}.inline_data"))?;
        }
    }
    Ok(texts)
}

/// A part sets exactly one member of its `data` oneof.
fn check_one_data_field(part: &Map<String, Value>, part_path: &str) -> Result<(), Reply> {
    // An empty string is an unset field in protobuf JSON.
    let set: Vec<&str> = DATA_FIELDS
        .iter()
        .copied()
        .filter(|name| match field(part, name) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        })
        .collect();
    match set.as_slice() {
        [] => Err(invalid(format!(
            "* GenerateContentRequest.{part_path}.data: required oneof field 'data' must have one initialized field\n"
        ))),
        [_] => Ok(()),
        [_, second, ..] => Err(invalid(format!(
            "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{second}'"
        ))),
    }
}

/// `inlineData`: a MIME type and base64 data; images are checked and counted, other types (PDF,
/// audio, …) are taken as they are.
fn understand_inline_data(
    u: &mut Understood,
    inline: &Value,
    inline_path: &str,
) -> Result<(), Reply> {
    let Some(inline) = inline.as_object() else {
        return Err(invalid(format!(
            "Invalid JSON payload received. Invalid value at '{inline_path}'."
        )));
    };
    check_fields(inline, &["mimeType", "data", "displayName"], inline_path)?;
    let Some(mime) = field(inline, "mimeType").and_then(Value::as_str) else {
        return Err(invalid(format!(
            "* GenerateContentRequest.{inline_path}.mime_type: mime_type is not specified\n"
        )));
    };
    let Some(data) = field(inline, "data").and_then(Value::as_str) else {
        return Err(invalid(format!(
            "* GenerateContentRequest.{inline_path}.data: data is not specified\n"
        )));
    };
    if mime.starts_with("image/") {
        check_image(mime, data).map_err(|problem| {
            invalid(format!(
                "Unable to process input image. Please retry or report in \
                 https://developers.generativeai.google/guide/troubleshooting ({problem})"
            ))
        })?;
        u.images += 1;
    }
    Ok(())
}
