//! OpenAI's Responses API and Chat Completions, plus the OpenRouter flavour of
//! Chat Completions (lenient about extra fields, OpenRouter's error shape).
//!
//! Error bodies are `{"error": {"message", "type", "param", "code"}}` with the
//! wording the real API uses for the same mistake.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::common::{
    Answer, Failure, Reply, Understood, answer, check_image, json_object, parse_data_url,
    run_script, type_name, unix_now, unknown_key,
};
use crate::{AuthState, Incoming, Shared};

const RESPONSES_FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "temperature",
    "top_p",
    "max_output_tokens",
    "reasoning",
    "tools",
    "tool_choice",
    "store",
    "metadata",
    "previous_response_id",
    "stream",
    "stream_options",
    "text",
    "truncation",
    "user",
    "parallel_tool_calls",
    "include",
    "background",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "max_tool_calls",
    "top_logprobs",
    "conversation",
    "prompt",
];

const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "modalities",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];
const WEB_SEARCH_TOOLS: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_2025_08_26",
    "web_search_preview_2025_03_11",
];
/// Responses API: the smallest `max_output_tokens` it accepts.
const MIN_OUTPUT_TOKENS: u64 = 16;

/// Whose conventions the error bodies and strictness follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    OpenAi,
    /// OpenRouter: `{"error": {"message", "code": <status>}}`, extra fields tolerated.
    OpenRouter,
}

impl Dialect {
    fn error(
        self,
        status: StatusCode,
        message: impl Into<String>,
        kind: &str,
        param: Option<&str>,
        code: Option<&str>,
    ) -> Reply {
        let message = message.into();
        match self {
            Self::OpenAi => Reply::json(
                status,
                json!({"error": {"message": message, "type": kind, "param": param, "code": code}}),
            ),
            Self::OpenRouter => Reply::json(
                status,
                json!({"error": {"message": message, "code": status.as_u16()}}),
            ),
        }
    }

    fn invalid(self, message: impl Into<String>, param: Option<&str>, code: Option<&str>) -> Reply {
        self.error(
            StatusCode::BAD_REQUEST,
            message,
            "invalid_request_error",
            param,
            code,
        )
    }

    fn missing(self, param: &str) -> Reply {
        self.invalid(
            format!("Missing required parameter: '{param}'."),
            Some(param),
            Some("missing_required_parameter"),
        )
    }

    fn unknown_parameter(self, param: &str) -> Reply {
        self.invalid(
            format!("Unknown parameter: '{param}'."),
            Some(param),
            Some("unknown_parameter"),
        )
    }

    fn invalid_type(self, param: &str, expected: &str, got: &Value) -> Reply {
        self.invalid(
            format!(
                "Invalid type for '{param}': expected {expected}, but got {} instead.",
                type_name(got)
            ),
            Some(param),
            Some("invalid_type"),
        )
    }

    fn invalid_value(self, param: &str, got: &str, supported: &[&str]) -> Reply {
        self.invalid(
            format!(
                "Invalid value: '{got}'. Supported values are: {}.",
                quoted_list(supported)
            ),
            Some(param),
            Some("invalid_value"),
        )
    }

    fn unparsable(self) -> Reply {
        self.invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
             but what was sent was not valid JSON.)",
            None,
            None,
        )
    }

    fn auth_failure(self, auth: AuthState) -> Option<Reply> {
        let (message, code) = match (self, auth) {
            (_, AuthState::Ok) => return None,
            (Self::OpenAi, AuthState::Missing) => (
                "You didn't provide an API key. You need to provide your API key in an \
                 Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). \
                 You can obtain an API key from https://platform.openai.com/account/api-keys.",
                None,
            ),
            (Self::OpenAi, AuthState::Wrong) => (
                "Incorrect API key provided. You can find your API key at \
                 https://platform.openai.com/account/api-keys.",
                Some("invalid_api_key"),
            ),
            (Self::OpenRouter, AuthState::Missing) => ("No auth credentials found", None),
            (Self::OpenRouter, AuthState::Wrong) => ("User not found.", None),
        };
        Some(self.error(
            StatusCode::UNAUTHORIZED,
            message,
            "invalid_request_error",
            None,
            code,
        ))
    }

    fn failure(self, failure: Failure, model: &str, chat: bool) -> Reply {
        match failure {
            Failure::Unauthorized => self
                .auth_failure(AuthState::Wrong)
                .unwrap_or_else(|| Reply::json(StatusCode::UNAUTHORIZED, json!({}))),
            Failure::Forbidden => self.error(
                StatusCode::FORBIDDEN,
                format!("Project `proj_fake` does not have access to model `{model}`"),
                "invalid_request_error",
                None,
                Some("model_not_found"),
            ),
            Failure::NotFound => self.error(
                StatusCode::NOT_FOUND,
                format!("The model `{model}` does not exist or you do not have access to it."),
                "invalid_request_error",
                None,
                Some("model_not_found"),
            ),
            Failure::RateLimited => self
                .error(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "Rate limit reached for {model} in organization org-fake on requests per \
                         min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s."
                    ),
                    "requests",
                    None,
                    Some("rate_limit_exceeded"),
                )
                .with_header("retry-after", "1"),
            Failure::Server => self.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
                None,
            ),
            Failure::Overloaded => self.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is overloaded or not ready yet.",
                "server_error",
                None,
                None,
            ),
            Failure::ContextTooLong if chat => self.invalid(
                "This model's maximum context length is 128000 tokens. However, your messages \
                 resulted in 130000 tokens. Please reduce the length of the messages.",
                Some("messages"),
                Some("context_length_exceeded"),
            ),
            Failure::ContextTooLong => self.invalid(
                "Your input exceeds the context window of this model. Please adjust your input \
                 and try again.",
                Some("input"),
                Some("context_length_exceeded"),
            ),
        }
    }
}

/// `'a', 'b', and 'c'` as OpenAI lists supported values.
fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

fn opt_str<'a>(
    d: Dialect,
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, Reply> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(d.invalid_type(path, "a string", other)),
    }
}

/// A required string field.
fn required_str<'a>(
    d: Dialect,
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, Reply> {
    opt_str(d, map, key, path)?.ok_or_else(|| d.missing(path))
}

/// A required string field whose value must be one of `allowed` (a role, a part type).
fn required_one_of<'a>(
    d: Dialect,
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
    allowed: &[&str],
) -> Result<&'a str, Reply> {
    match opt_str(d, map, key, path)? {
        None => Err(d.missing(path)),
        Some(value) if allowed.contains(&value) => Ok(value),
        Some(value) => Err(d.invalid_value(path, value, allowed)),
    }
}

/// An image's optional `detail`.
fn check_detail(d: Dialect, image: &Map<String, Value>, path: &str) -> Result<(), Reply> {
    const DETAILS: &[&str] = &["low", "high", "auto"];
    if let Some(detail) = opt_str(d, image, "detail", path)?
        && !DETAILS.contains(&detail)
    {
        return Err(d.invalid_value(path, detail, DETAILS));
    }
    Ok(())
}

fn opt_number(
    d: Dialect,
    map: &Map<String, Value>,
    key: &str,
    range: (f64, f64),
) -> Result<Option<f64>, Reply> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let value = n.as_f64().unwrap_or(f64::NAN);
            if value < range.0 {
                Err(d.invalid(
                    format!(
                        "Invalid '{key}': decimal below minimum value. Expected a value >= {}, but got {value} instead.",
                        range.0
                    ),
                    Some(key),
                    Some("decimal_below_min_value"),
                ))
            } else if value > range.1 {
                Err(d.invalid(
                    format!(
                        "Invalid '{key}': decimal above maximum value. Expected a value <= {}, but got {value} instead.",
                        range.1
                    ),
                    Some(key),
                    Some("decimal_above_max_value"),
                ))
            } else {
                Ok(Some(value))
            }
        }
        Some(other) => Err(d.invalid_type(key, "a decimal", other)),
    }
}

fn opt_integer(
    d: Dialect,
    map: &Map<String, Value>,
    key: &str,
    min: u64,
) -> Result<Option<u64>, Reply> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => match n.as_u64() {
            Some(value) if value >= min => Ok(Some(value)),
            _ => Err(d.invalid(
                format!(
                    "Invalid '{key}': integer below minimum value. Expected a value >= {min}, but got {n} instead."
                ),
                Some(key),
                Some("integer_below_min_value"),
            )),
        },
        Some(other) => Err(d.invalid_type(key, "an integer", other)),
    }
}

fn required_model(d: Dialect, body: &Map<String, Value>, chat: bool) -> Result<String, Reply> {
    match body.get("model") {
        Some(Value::String(model)) if !model.is_empty() => Ok(model.clone()),
        None | Some(Value::Null) | Some(Value::String(_)) if chat => {
            Err(d.invalid("you must provide a model parameter", None, None))
        }
        None | Some(Value::Null) | Some(Value::String(_)) => Err(d.missing("model")),
        Some(other) => Err(d.invalid_type("model", "a string", other)),
    }
}

/// Checks an `image_url` value (data URL or remote URL) and counts the image.
fn check_image_url(d: Dialect, url: &str, param: &str) -> Result<(), Reply> {
    if let Some((media_type, data)) = parse_data_url(url) {
        check_image(media_type, data).map_err(|problem| {
            d.invalid(
                format!("Invalid '{param}': {problem}."),
                Some(param),
                Some("invalid_image_format"),
            )
        })
    } else if url.starts_with("https://") || url.starts_with("http://") {
        // A remote image would be fetched by the real API; the fake takes it on trust.
        Ok(())
    } else {
        Err(d.invalid(
            format!(
                "Invalid '{param}'. Expected a base64-encoded data URL with an image MIME type \
                 (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), or a URL."
            ),
            Some(param),
            Some("invalid_value"),
        ))
    }
}

// ---------------------------------------------------------------- Responses API

pub(crate) async fn responses(shared: &Shared, incoming: &Incoming) -> Reply {
    let d = Dialect::OpenAi;
    if let Some(reply) = d.auth_failure(incoming.auth) {
        return reply;
    }
    let Ok(body) = json_object(&incoming.body) else {
        return d.unparsable();
    };
    let understood = match understand_responses(&body) {
        Ok(understood) => understood,
        Err(reply) => return reply,
    };
    let script = match run_script(shared, &understood.model).await {
        Ok(script) => script,
        Err(failure) => return d.failure(failure, &understood.model, false),
    };
    let reasoning_tokens = if understood.reasoning.is_some() {
        crate::common::FAKE_REASONING_TOKENS
    } else {
        0
    };
    // `max_output_tokens` covers reasoning and visible output together.
    let cap = understood
        .max_output_tokens
        .map(|max| max.saturating_sub(reasoning_tokens).max(1));
    let answer = answer("openai-responses", &understood, &script, cap);
    Reply::ok(responses_answer(shared, &understood, &answer, &body))
}

fn understand_responses(body: &Map<String, Value>) -> Result<Understood, Reply> {
    let d = Dialect::OpenAi;
    if let Some(key) = unknown_key(body, RESPONSES_FIELDS) {
        return Err(d.unknown_parameter(key));
    }
    let mut u = Understood {
        model: required_model(d, body, false)?,
        ..Understood::default()
    };
    if let Some(instructions) = opt_str(d, body, "instructions", "instructions")? {
        u.system = !instructions.is_empty();
        u.add_text(instructions);
    }
    u.temperature = opt_number(d, body, "temperature", (0.0, 2.0))?;
    opt_number(d, body, "top_p", (0.0, 1.0))?;
    u.max_output_tokens = opt_integer(d, body, "max_output_tokens", MIN_OUTPUT_TOKENS)?;
    u.reasoning = responses_effort(body.get("reasoning"))?;
    u.web_search = responses_web_search(body.get("tools"))?;
    understand_input(&mut u, body.get("input"))?;
    Ok(u)
}

/// `reasoning`: `{effort?, summary?}`; returns the effort.
fn responses_effort(reasoning: Option<&Value>) -> Result<Option<String>, Reply> {
    let d = Dialect::OpenAi;
    let reasoning = match reasoning {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(reasoning)) => reasoning,
        Some(other) => return Err(d.invalid_type("reasoning", "an object", other)),
    };
    if let Some(key) = unknown_key(reasoning, &["effort", "summary", "generate_summary"]) {
        return Err(d.unknown_parameter(&format!("reasoning.{key}")));
    }
    match opt_str(d, reasoning, "effort", "reasoning.effort")? {
        Some(effort) if !EFFORTS.contains(&effort) => {
            Err(d.invalid_value("reasoning.effort", effort, EFFORTS))
        }
        effort => Ok(effort.map(str::to_owned)),
    }
}

/// `tools`: every tool needs a `type`; returns whether one of them is web search.
fn responses_web_search(tools: Option<&Value>) -> Result<bool, Reply> {
    let d = Dialect::OpenAi;
    let tools = match tools {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::Array(tools)) => tools,
        Some(other) => return Err(d.invalid_type("tools", "an array", other)),
    };
    let mut web_search = false;
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        let Some(tool) = tool.as_object() else {
            return Err(d.invalid_type(&path, "an object", tool));
        };
        match opt_str(d, tool, "type", &format!("{path}.type"))? {
            None => return Err(d.missing(&format!("{path}.type"))),
            Some(kind) if WEB_SEARCH_TOOLS.contains(&kind) => web_search = true,
            Some(_) => {}
        }
    }
    Ok(web_search)
}

/// `input`: a user message as a plain string, or a non-empty list of input items.
fn understand_input(u: &mut Understood, input: Option<&Value>) -> Result<(), Reply> {
    let d = Dialect::OpenAi;
    match input {
        None | Some(Value::Null) => Err(d.missing("input")),
        Some(Value::String(text)) => {
            u.add_turn("user", &[text]);
            Ok(())
        }
        Some(Value::Array(items)) if items.is_empty() => Err(d.invalid(
            "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            Some("input"),
            Some("empty_array"),
        )),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                understand_input_item(u, i, item)?;
            }
            Ok(())
        }
        Some(other) => Err(d.invalid_type("input", "a string or an array", other)),
    }
}

/// One input item; the fake understands `message` items only.
fn understand_input_item(u: &mut Understood, i: usize, item: &Value) -> Result<(), Reply> {
    let d = Dialect::OpenAi;
    let path = format!("input[{i}]");
    let Some(item) = item.as_object() else {
        return Err(d.invalid_type(&path, "an object", item));
    };
    let kind = opt_str(d, item, "type", &format!("{path}.type"))?.unwrap_or("message");
    if kind != "message" {
        return Err(d.invalid(
            format!(
                "Invalid value: '{kind}'. The fake LLM understands only 'message' input items."
            ),
            Some(&format!("{path}.type")),
            Some("invalid_value"),
        ));
    }
    if let Some(key) = unknown_key(item, &["type", "role", "content", "id", "status"]) {
        return Err(d.unknown_parameter(&format!("{path}.{key}")));
    }
    const ROLES: &[&str] = &["assistant", "system", "developer", "user"];
    let role = required_one_of(d, item, "role", &format!("{path}.role"), ROLES)?;
    let texts = match item.get("content") {
        None | Some(Value::Null) => return Err(d.missing(&format!("{path}.content"))),
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let part_path = format!("{path}.content[{j}]");
                if let Some(text) = understand_input_part(u, role, part, &part_path)? {
                    texts.push(text);
                }
            }
            texts
        }
        Some(other) => {
            return Err(d.invalid_type(&format!("{path}.content"), "a string or an array", other));
        }
    };
    u.add_turn(role, &texts);
    Ok(())
}

/// One part of an input message's content: output parts in assistant messages, input parts in
/// the others. Returns the part's text, if it has one.
fn understand_input_part<'a>(
    u: &mut Understood,
    role: &str,
    part: &'a Value,
    part_path: &str,
) -> Result<Option<&'a str>, Reply> {
    let d = Dialect::OpenAi;
    let Some(part) = part.as_object() else {
        return Err(d.invalid_type(part_path, "an object", part));
    };
    let allowed: &[&str] = if role == "assistant" {
        &["output_text", "refusal"]
    } else {
        &["input_text", "input_image", "input_file"]
    };
    let part_type = required_one_of(d, part, "type", &format!("{part_path}.type"), allowed)?;
    let keys: &[&str] = match part_type {
        "input_text" => &["type", "text"],
        "output_text" => &["type", "text", "annotations", "logprobs"],
        "refusal" => &["type", "refusal"],
        "input_image" => &["type", "image_url", "file_id", "detail"],
        _ => &["type", "file_id", "file_data", "file_url", "filename"],
    };
    if let Some(key) = unknown_key(part, keys) {
        return Err(d.unknown_parameter(&format!("{part_path}.{key}")));
    }
    match part_type {
        "input_text" | "output_text" => {
            required_str(d, part, "text", &format!("{part_path}.text")).map(Some)
        }
        "input_image" => {
            check_detail(d, part, &format!("{part_path}.detail"))?;
            let url_path = format!("{part_path}.image_url");
            match opt_str(d, part, "image_url", &url_path)? {
                Some(url) => check_image_url(d, url, &url_path)?,
                // An uploaded file instead of a URL.
                None if part.contains_key("file_id") => {}
                None => return Err(d.missing(&url_path)),
            }
            u.images += 1;
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn responses_answer(
    shared: &Shared,
    u: &Understood,
    a: &Answer,
    body: &Map<String, Value>,
) -> Value {
    let id = shared.next_id();
    let mut output = Vec::new();
    if u.reasoning.is_some() {
        output.push(json!({"type": "reasoning", "id": format!("rs_fake_{id}"), "summary": []}));
    }
    if u.web_search {
        output.push(json!({
            "type": "web_search_call", "id": format!("ws_fake_{id}"), "status": "completed",
            "action": {"type": "search", "query": u.last_user_text.chars().take(100).collect::<String>()}
        }));
    }
    output.push(json!({
        "type": "message", "id": format!("msg_fake_{id}"),
        "status": if a.truncated { "incomplete" } else { "completed" },
        "role": "assistant",
        "content": [{"type": "output_text", "text": a.text, "annotations": [], "logprobs": []}]
    }));
    json!({
        "id": format!("resp_fake_{id}"),
        "object": "response",
        "created_at": unix_now(),
        "status": if a.truncated { "incomplete" } else { "completed" },
        "error": null,
        "incomplete_details": if a.truncated { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "instructions": body.get("instructions").cloned().unwrap_or(Value::Null),
        "max_output_tokens": u.max_output_tokens,
        "model": u.model,
        "output": output,
        "parallel_tool_calls": true,
        "reasoning": {"effort": u.reasoning, "summary": null},
        "store": body.get("store").cloned().unwrap_or(Value::Bool(true)),
        "temperature": u.temperature.unwrap_or(1.0),
        "tools": body.get("tools").cloned().unwrap_or_else(|| json!([])),
        "usage": {
            "input_tokens": a.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": a.output_tokens + a.reasoning_tokens,
            "output_tokens_details": {"reasoning_tokens": a.reasoning_tokens},
            "total_tokens": a.total_tokens()
        }
    })
}

// ------------------------------------------------------------ Chat Completions

pub(crate) async fn chat(shared: &Shared, incoming: &Incoming, openrouter: bool) -> Reply {
    let d = if openrouter {
        Dialect::OpenRouter
    } else {
        Dialect::OpenAi
    };
    if let Some(reply) = d.auth_failure(incoming.auth) {
        return reply;
    }
    let Ok(body) = json_object(&incoming.body) else {
        return d.unparsable();
    };
    let understood = match understand_chat(d, &body) {
        Ok(understood) => understood,
        Err(reply) => return reply,
    };
    let script = match run_script(shared, &understood.model).await {
        Ok(script) => script,
        Err(failure) => return d.failure(failure, &understood.model, true),
    };
    let format = if openrouter {
        "openrouter-chat"
    } else {
        "openai-chat"
    };
    let cap = understood.max_output_tokens;
    let answer = answer(format, &understood, &script, cap);
    let id = shared.next_id();
    Reply::ok(json!({
        "id": format!("chatcmpl-fake-{id}"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": understood.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer.text, "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": if answer.truncated { "length" } else { "stop" }
        }],
        "usage": {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": answer.output_tokens + answer.reasoning_tokens,
            "total_tokens": answer.total_tokens(),
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": answer.reasoning_tokens}
        },
        "system_fingerprint": "fp_fake"
    }))
}

fn understand_chat(d: Dialect, body: &Map<String, Value>) -> Result<Understood, Reply> {
    let strict = d == Dialect::OpenAi;
    if strict && let Some(key) = unknown_key(body, CHAT_FIELDS) {
        return Err(d.invalid(
            format!("Unrecognized request argument supplied: {key}"),
            None,
            None,
        ));
    }
    let mut u = Understood {
        model: required_model(d, body, true)?,
        ..Understood::default()
    };
    u.temperature = opt_number(d, body, "temperature", (0.0, 2.0))?;
    opt_number(d, body, "top_p", (0.0, 1.0))?;
    let max_tokens = opt_integer(d, body, "max_tokens", 1)?;
    let max_completion_tokens = opt_integer(d, body, "max_completion_tokens", 1)?;
    u.max_output_tokens = max_completion_tokens.or(max_tokens);
    if let Some(effort) = opt_str(d, body, "reasoning_effort", "reasoning_effort")? {
        if !EFFORTS.contains(&effort) {
            return Err(d.invalid_value("reasoning_effort", effort, EFFORTS));
        }
        u.reasoning = Some(effort.to_owned());
    }
    match body.get("web_search_options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(_)) => u.web_search = true,
        Some(other) => return Err(d.invalid_type("web_search_options", "an object", other)),
    }
    if d == Dialect::OpenRouter {
        // OpenRouter's own switches: the web plugin, `:online` models, and the
        // unified `reasoning` object.
        let web_plugin = body
            .get("plugins")
            .and_then(Value::as_array)
            .is_some_and(|plugins| {
                plugins
                    .iter()
                    .any(|p| p.get("id").and_then(Value::as_str) == Some("web"))
            });
        u.web_search |= web_plugin || u.model.ends_with(":online");
        if let Some(reasoning) = body.get("reasoning").and_then(Value::as_object) {
            if let Some(effort) = reasoning.get("effort").and_then(Value::as_str) {
                u.reasoning = Some(effort.to_owned());
            } else if let Some(budget) = reasoning.get("max_tokens").and_then(Value::as_u64) {
                u.reasoning = Some(format!("budget:{budget}"));
            }
        }
    }

    let messages = match body.get("messages") {
        None | Some(Value::Null) => return Err(d.missing("messages")),
        Some(Value::Array(messages)) if messages.is_empty() => {
            return Err(d.invalid(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                Some("messages"),
                Some("empty_array"),
            ));
        }
        Some(Value::Array(messages)) => messages,
        Some(other) => return Err(d.invalid_type("messages", "an array", other)),
    };
    for (i, message) in messages.iter().enumerate() {
        understand_chat_message(d, &mut u, i, message)?;
    }
    Ok(u)
}

fn understand_chat_message(
    d: Dialect,
    u: &mut Understood,
    i: usize,
    message: &Value,
) -> Result<(), Reply> {
    let path = format!("messages[{i}]");
    let Some(message) = message.as_object() else {
        return Err(d.invalid_type(&path, "an object", message));
    };
    const KEYS: &[&str] = &[
        "role",
        "content",
        "name",
        "tool_calls",
        "tool_call_id",
        "refusal",
        "audio",
        "function_call",
    ];
    if d == Dialect::OpenAi
        && let Some(key) = unknown_key(message, KEYS)
    {
        return Err(d.invalid(
            format!(
                "Additional properties are not allowed ('{key}' was unexpected) - 'messages.{i}'"
            ),
            None,
            None,
        ));
    }
    const ROLES: &[&str] = &[
        "system",
        "assistant",
        "user",
        "function",
        "tool",
        "developer",
    ];
    let role = required_one_of(d, message, "role", &format!("{path}.role"), ROLES)?;
    let content_path = format!("{path}.content");
    let texts = match message.get("content") {
        // An assistant message may hold tool calls only.
        None | Some(Value::Null) if role == "assistant" => Vec::new(),
        None | Some(Value::Null) => return Err(d.missing(&content_path)),
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let part_path = format!("{content_path}[{j}]");
                if let Some(text) = understand_chat_part(d, u, role, part, &part_path)? {
                    texts.push(text);
                }
            }
            texts
        }
        Some(other) => return Err(d.invalid_type(&content_path, "a string or an array", other)),
    };
    u.add_turn(role, &texts);
    Ok(())
}

/// One part of a message's content; which part types a message may hold depends on its role.
/// Returns the part's text, if it has one.
fn understand_chat_part<'a>(
    d: Dialect,
    u: &mut Understood,
    role: &str,
    part: &'a Value,
    part_path: &str,
) -> Result<Option<&'a str>, Reply> {
    let Some(part) = part.as_object() else {
        return Err(d.invalid_type(part_path, "an object", part));
    };
    let allowed: &[&str] = match role {
        "user" => &["text", "image_url", "input_audio", "file"],
        "assistant" => &["text", "refusal"],
        _ => &["text"],
    };
    match required_one_of(d, part, "type", &format!("{part_path}.type"), allowed)? {
        "text" => required_str(d, part, "text", &format!("{part_path}.text")).map(Some),
        "image_url" => {
            let url_path = format!("{part_path}.image_url");
            let url = chat_image_url(d, part, &url_path)?;
            check_image_url(d, url, &format!("{url_path}.url"))?;
            u.images += 1;
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The URL of an `image_url` part: `{"url", "detail"?}`.
fn chat_image_url<'a>(
    d: Dialect,
    part: &'a Map<String, Value>,
    url_path: &str,
) -> Result<&'a str, Reply> {
    match part.get("image_url") {
        Some(Value::Object(image)) => {
            check_detail(d, image, &format!("{url_path}.detail"))?;
            required_str(d, image, "url", &format!("{url_path}.url"))
        }
        // Mistral and OpenRouter also take the URL as a plain string.
        Some(Value::String(url)) if d == Dialect::OpenRouter => Ok(url),
        None | Some(Value::Null) => Err(d.missing(url_path)),
        Some(other) => Err(d.invalid_type(url_path, "an object", other)),
    }
}
