//! Anthropic's Messages API. Errors are
//! `{"type": "error", "error": {"type", "message"}, "request_id"}`; validation
//! messages follow the API's `<path>: <problem>` style.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use crate::common::{
    FAKE_REASONING_TOKENS, Failure, Reply, Understood, answer, check_image, json_object,
    run_script, unknown_key,
};
use crate::{AuthState, Incoming, Shared};

const FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "metadata",
    "thinking",
    "tools",
    "tool_choice",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
];
const VERSIONS: &[&str] = &["2023-06-01", "2023-01-01"];
const MIN_BUDGET: u64 = 1024;
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];
/// Fields of a text block (in `system` and in messages).
const TEXT_BLOCK_FIELDS: &[&str] = &["type", "text", "cache_control", "citations"];
/// Block types the API knows; the fake checks `text` and `image` and passes the
/// others through.
const BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "container_upload",
];

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Reply {
    Reply::json(
        status,
        json!({
            "type": "error",
            "error": {"type": kind, "message": message.into()},
            "request_id": "req_fake"
        }),
    )
}

fn invalid(message: impl Into<String>) -> Reply {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

fn failure(failure: Failure, model: &str) -> Reply {
    match failure {
        Failure::Unauthorized => error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        ),
        Failure::Forbidden => error(
            StatusCode::FORBIDDEN,
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        Failure::NotFound => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("model: {model}"),
        ),
        Failure::RateLimited => error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization (fake) of 50 \
             requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.",
        )
        .with_header("retry-after", "1"),
        Failure::Server => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Internal server error",
        ),
        // Anthropic signals overload with its own 529, not 503.
        Failure::Overloaded => error(
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "Overloaded",
        ),
        Failure::ContextTooLong => invalid("prompt is too long: 210000 tokens > 200000 maximum"),
    }
}

pub(crate) async fn messages(shared: &Shared, incoming: &Incoming, headers: &HeaderMap) -> Reply {
    match incoming.auth {
        AuthState::Ok => {}
        AuthState::Missing => {
            return error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "x-api-key header is required",
            );
        }
        AuthState::Wrong => {
            return error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid x-api-key",
            );
        }
    }
    match headers.get("anthropic-version").map(|v| v.to_str()) {
        None => return invalid("anthropic-version: header is required"),
        Some(Ok(version)) if VERSIONS.contains(&version) => {}
        Some(_) => return invalid("anthropic-version: invalid version; use 2023-06-01"),
    }
    let body = match json_object(&incoming.body) {
        Ok(body) => body,
        Err(problem) => return invalid(problem),
    };
    let (understood, thinking) = match understand(&body) {
        Ok(understood) => understood,
        Err(reply) => return reply,
    };
    let script = match run_script(shared, &understood.model).await {
        Ok(script) => script,
        Err(f) => return failure(f, &understood.model),
    };
    // `max_tokens` covers thinking and the visible answer together.
    let cap = understood.max_output_tokens.map(|max| {
        if thinking {
            max.saturating_sub(FAKE_REASONING_TOKENS).max(1)
        } else {
            max
        }
    });
    let answer = answer("anthropic", &understood, &script, cap);
    let id = shared.next_id();

    let mut content = Vec::new();
    if thinking {
        content.push(json!({
            "type": "thinking", "thinking": "[fake thinking]", "signature": "ZmFrZS1zaWduYXR1cmU="
        }));
    }
    if understood.web_search {
        let query: String = understood.last_user_text.chars().take(100).collect();
        content.push(json!({
            "type": "server_tool_use", "id": format!("srvtoolu_fake_{id}"),
            "name": "web_search", "input": {"query": query}
        }));
        content.push(json!({
            "type": "web_search_tool_result", "tool_use_id": format!("srvtoolu_fake_{id}"),
            "content": []
        }));
    }
    content.push(json!({"type": "text", "text": answer.text}));
    Reply::ok(json!({
        "id": format!("msg_fake_{id}"),
        "type": "message",
        "role": "assistant",
        "model": understood.model,
        "content": content,
        "stop_reason": if answer.truncated { "max_tokens" } else { "end_turn" },
        "stop_sequence": null,
        "usage": {
            "input_tokens": answer.input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": answer.output_tokens + answer.reasoning_tokens,
            "service_tier": "standard",
            "server_tool_use": if understood.web_search { json!({"web_search_requests": 1}) } else { Value::Null }
        }
    }))
}

fn number(value: &Value, path: &str) -> Result<f64, Reply> {
    value
        .as_f64()
        .ok_or_else(|| invalid(format!("{path}: Input should be a valid number")))
}

fn integer(value: &Value, path: &str) -> Result<u64, Reply> {
    match value {
        Value::Number(n) if n.is_i64() && n.as_i64().unwrap_or(0) < 0 => Err(invalid(format!(
            "{path}: Input should be greater than or equal to 0"
        ))),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| invalid(format!("{path}: Input should be a valid integer"))),
        _ => Err(invalid(format!("{path}: Input should be a valid integer"))),
    }
}

fn extra(object: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), Reply> {
    match unknown_key(object, allowed) {
        Some(key) if path.is_empty() => {
            Err(invalid(format!("{key}: Extra inputs are not permitted")))
        }
        Some(key) => Err(invalid(format!(
            "{path}.{key}: Extra inputs are not permitted"
        ))),
        None => Ok(()),
    }
}

/// Validates the body and returns what was understood, and whether thinking is on.
///
/// The checks run in the order the API reports them: unknown fields, the required fields, then
/// each optional part, and the conversation last.
fn understand(body: &Map<String, Value>) -> Result<(Understood, bool), Reply> {
    extra(body, FIELDS, "")?;
    let model = required_model(body)?;
    let messages = match body.get("messages") {
        None => return Err(invalid("messages: Field required")),
        Some(Value::Array(messages)) => messages,
        Some(_) => return Err(invalid("messages: Input should be a valid list")),
    };
    let max_tokens = required_max_tokens(body)?;
    let mut u = Understood {
        model,
        max_output_tokens: Some(max_tokens),
        ..Understood::default()
    };
    u.temperature = temperature(body)?;
    understand_system(&mut u, body.get("system"))?;
    let thinking = understand_thinking(&mut u, body, max_tokens)?;
    understand_tools(&mut u, body.get("tools"))?;
    understand_conversation(&mut u, messages)?;
    Ok((u, thinking))
}

fn required_model(body: &Map<String, Value>) -> Result<String, Reply> {
    match body.get("model") {
        None => Err(invalid("model: Field required")),
        Some(Value::String(model)) if !model.is_empty() => Ok(model.clone()),
        Some(Value::String(_)) => Err(invalid("model: String should have at least 1 character")),
        Some(_) => Err(invalid("model: Input should be a valid string")),
    }
}

fn required_max_tokens(body: &Map<String, Value>) -> Result<u64, Reply> {
    let max_tokens = match body.get("max_tokens") {
        None => return Err(invalid("max_tokens: Field required")),
        Some(value) => integer(value, "max_tokens")?,
    };
    if max_tokens < 1 {
        return Err(invalid(
            "max_tokens: Input should be greater than or equal to 1",
        ));
    }
    Ok(max_tokens)
}

/// `temperature`, if given: a number in [0, 1].
fn temperature(body: &Map<String, Value>) -> Result<Option<f64>, Reply> {
    let Some(temperature) = body.get("temperature") else {
        return Ok(None);
    };
    let t = number(temperature, "temperature")?;
    if t < 0.0 {
        return Err(invalid(
            "temperature: Input should be greater than or equal to 0",
        ));
    }
    if t > 1.0 {
        return Err(invalid(
            "temperature: Input should be less than or equal to 1",
        ));
    }
    Ok(Some(t))
}

/// `system`: a string, or a list of text blocks.
fn understand_system(u: &mut Understood, system: Option<&Value>) -> Result<(), Reply> {
    match system {
        None => {}
        Some(Value::String(system)) => {
            u.system = !system.is_empty();
            u.add_text(system);
        }
        Some(Value::Array(blocks)) => {
            for (i, block) in blocks.iter().enumerate() {
                let path = format!("system.{i}");
                let Some(block) = block.as_object() else {
                    return Err(invalid(format!(
                        "{path}: Input should be a valid dictionary"
                    )));
                };
                if block.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(invalid(format!("{path}.type: Input should be 'text'")));
                }
                extra(block, TEXT_BLOCK_FIELDS, &path)?;
                let text = text_of(block, &path)?;
                u.system = true;
                u.add_text(text);
            }
        }
        Some(_) => return Err(invalid("system: Input should be a valid string")),
    }
    Ok(())
}

/// `thinking`: `{"type": "enabled", "budget_tokens"}` or `{"type": "disabled"}`. Returns whether
/// thinking is on.
fn understand_thinking(
    u: &mut Understood,
    body: &Map<String, Value>,
    max_tokens: u64,
) -> Result<bool, Reply> {
    let config = match body.get("thinking") {
        None => return Ok(false),
        Some(Value::Object(config)) => config,
        Some(_) => return Err(invalid("thinking: Input should be a valid dictionary")),
    };
    match config.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = thinking_budget(config, body, max_tokens, u.temperature)?;
            u.reasoning = Some(format!("budget:{budget}"));
            Ok(true)
        }
        Some("disabled") => {
            extra(config, &["type"], "thinking.disabled")?;
            Ok(false)
        }
        Some(other) => Err(invalid(format!(
            "thinking: Input tag '{other}' found using 'type' does not match any of the expected tags: 'disabled', 'enabled'"
        ))),
        None => Err(invalid(
            "thinking: Unable to extract tag using discriminator 'type'",
        )),
    }
}

/// The budget of enabled thinking, and the rules it sets for the rest of the request: below
/// `max_tokens`, temperature 1 only, no `top_k`.
fn thinking_budget(
    config: &Map<String, Value>,
    body: &Map<String, Value>,
    max_tokens: u64,
    temperature: Option<f64>,
) -> Result<u64, Reply> {
    extra(config, &["type", "budget_tokens"], "thinking.enabled")?;
    let budget = match config.get("budget_tokens") {
        None => return Err(invalid("thinking.enabled.budget_tokens: Field required")),
        Some(value) => integer(value, "thinking.enabled.budget_tokens")?,
    };
    if budget < MIN_BUDGET {
        return Err(invalid(format!(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_BUDGET}"
        )));
    }
    if budget >= max_tokens {
        return Err(invalid(
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our \
             documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
        ));
    }
    if temperature.is_some_and(|t| t != 1.0) {
        return Err(invalid(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult \
             our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
        ));
    }
    if body.contains_key("top_k") {
        return Err(invalid(
            "`top_k` is not compatible with thinking. Please consult our documentation at \
             https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
        ));
    }
    Ok(budget)
}

/// `tools`: only the server web search tool is looked at; custom tools pass through.
fn understand_tools(u: &mut Understood, tools: Option<&Value>) -> Result<(), Reply> {
    let tools = match tools {
        None => return Ok(()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("tools: Input should be a valid list")),
    };
    for (i, tool) in tools.iter().enumerate() {
        let Some(tool) = tool.as_object() else {
            return Err(invalid(format!(
                "tools.{i}: Input should be a valid dictionary"
            )));
        };
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("custom");
        if kind.starts_with("web_search_") {
            if tool.get("name").and_then(Value::as_str) != Some("web_search") {
                return Err(invalid(format!(
                    "tools.{i}.{kind}.name: Input should be 'web_search'"
                )));
            }
            u.web_search = true;
        }
    }
    Ok(())
}

/// The shape of every message first, then the conversation rules (not empty, starts with the
/// user, roles alternate), as the API does.
fn understand_conversation(u: &mut Understood, messages: &[Value]) -> Result<(), Reply> {
    let mut roles = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let is_last = i + 1 == messages.len();
        roles.push(understand_message(u, i, message, is_last)?);
    }
    if messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    if roles.first().is_some_and(|role| *role != "user") {
        return Err(invalid(
            "messages: first message must use the \"user\" role",
        ));
    }
    for pair in roles.windows(2) {
        if pair[0] == pair[1] {
            return Err(invalid(format!(
                "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{}\" roles in a row",
                pair[0]
            )));
        }
    }
    Ok(())
}

fn text_of<'a>(block: &'a Map<String, Value>, path: &str) -> Result<&'a str, Reply> {
    match block.get("text") {
        None => Err(invalid(format!("{path}.text: Field required"))),
        Some(Value::String(text)) if text.is_empty() => {
            Err(invalid("messages: text content blocks must be non-empty"))
        }
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(invalid(format!(
            "{path}.text: Input should be a valid string"
        ))),
    }
}

/// Checks one message and returns its role.
fn understand_message(
    u: &mut Understood,
    i: usize,
    message: &Value,
    is_last: bool,
) -> Result<&'static str, Reply> {
    let path = format!("messages.{i}");
    let Some(message) = message.as_object() else {
        return Err(invalid(format!(
            "{path}: Input should be a valid dictionary"
        )));
    };
    extra(message, &["role", "content"], &path)?;
    let role = match message.get("role").map(Value::as_str) {
        None => return Err(invalid(format!("{path}.role: Field required"))),
        Some(Some("user")) => "user",
        Some(Some("assistant")) => "assistant",
        Some(_) => {
            return Err(invalid(format!(
                "{path}.role: Input should be 'user' or 'assistant'"
            )));
        }
    };
    // Only a final assistant message (a prefill the answer continues) may be empty.
    let may_be_empty = is_last && role == "assistant";
    let texts = message_texts(u, message.get("content"), &path, may_be_empty)?;
    if is_last
        && role == "assistant"
        && texts
            .last()
            .is_some_and(|t| t.ends_with(char::is_whitespace))
    {
        return Err(invalid(
            "messages: final assistant content cannot end with trailing whitespace",
        ));
    }
    u.add_turn(role, &texts);
    Ok(role)
}

/// A message's `content`, a string or a list of blocks: checks it, counts its images and
/// returns its texts.
fn message_texts<'a>(
    u: &mut Understood,
    content: Option<&'a Value>,
    path: &str,
    may_be_empty: bool,
) -> Result<Vec<&'a str>, Reply> {
    let empty_error = || {
        invalid(format!(
            "{path}: all messages must have non-empty content except for the optional final assistant message"
        ))
    };
    match content {
        None => Err(invalid(format!("{path}.content: Field required"))),
        Some(Value::String(text)) => {
            if text.is_empty() && !may_be_empty {
                return Err(empty_error());
            }
            Ok(vec![text.as_str()])
        }
        Some(Value::Array(blocks)) => {
            if blocks.is_empty() && !may_be_empty {
                return Err(empty_error());
            }
            let mut texts = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                let block_path = format!("{path}.content.{j}");
                if let Some(text) = understand_block(u, block, &block_path)? {
                    texts.push(text);
                }
            }
            Ok(texts)
        }
        Some(_) => Err(invalid(format!(
            "{path}.content: Input should be a valid list"
        ))),
    }
}

/// Checks one content block; returns its text if it is a text block. Blocks other than `text`
/// and `image` only need a known type.
fn understand_block<'a>(
    u: &mut Understood,
    block: &'a Value,
    block_path: &str,
) -> Result<Option<&'a str>, Reply> {
    let Some(block) = block.as_object() else {
        return Err(invalid(format!(
            "{block_path}: Input should be a valid dictionary"
        )));
    };
    match block_type(block, block_path)? {
        "text" => {
            let path = format!("{block_path}.text");
            extra(block, TEXT_BLOCK_FIELDS, &path)?;
            Ok(Some(text_of(block, &path)?))
        }
        "image" => {
            check_image_block(block, &format!("{block_path}.image"))?;
            u.images += 1;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The block's `type`, one of [`BLOCK_TYPES`].
fn block_type<'a>(block: &'a Map<String, Value>, block_path: &str) -> Result<&'a str, Reply> {
    match block.get("type").and_then(Value::as_str) {
        Some(kind) if BLOCK_TYPES.contains(&kind) => Ok(kind),
        Some(kind) => {
            let expected: Vec<String> = BLOCK_TYPES.iter().map(|t| format!("'{t}'")).collect();
            Err(invalid(format!(
                "{block_path}: Input tag '{kind}' found using 'type' does not match any of the expected tags: {}",
                expected.join(", ")
            )))
        }
        None => Err(invalid(format!(
            "{block_path}: Unable to extract tag using discriminator 'type'"
        ))),
    }
}

fn check_image_block(block: &Map<String, Value>, path: &str) -> Result<(), Reply> {
    extra(block, &["type", "source", "cache_control"], path)?;
    let Some(source) = block.get("source").and_then(Value::as_object) else {
        return Err(invalid(format!("{path}.source: Field required")));
    };
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let path = format!("{path}.source.base64");
            extra(source, &["type", "media_type", "data"], &path)?;
            let media_type = match source.get("media_type").and_then(Value::as_str) {
                Some(t) if IMAGE_TYPES.contains(&t) => t,
                Some(_) => {
                    return Err(invalid(format!(
                        "{path}.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                    )));
                }
                None => return Err(invalid(format!("{path}.media_type: Field required"))),
            };
            let Some(data) = source.get("data").and_then(Value::as_str) else {
                return Err(invalid(format!("{path}.data: Field required")));
            };
            check_image(media_type, data)
                .map_err(|problem| invalid(format!("{path}.data: {problem}")))
        }
        Some("url") => {
            extra(source, &["type", "url"], &format!("{path}.source.url"))?;
            match source.get("url").and_then(Value::as_str) {
                Some(_) => Ok(()),
                None => Err(invalid(format!("{path}.source.url.url: Field required"))),
            }
        }
        _ => Err(invalid(format!(
            "{path}.source: Input tag found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'"
        ))),
    }
}
