//! What every wire format shares: the scripted behaviours driven by the model
//! name, the deterministic answer, token estimates, image checks and the reply
//! type.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::Shared;

/// A 1×1 transparent PNG, base64-encoded: a valid image for tests. The fake
/// checks that image data really is an image of the declared type, as the real
/// APIs do, so placeholder bytes are refused.
pub const TINY_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// The user text echoed in answers is cut to this many characters, so a
/// benchmark sending large prompts does not get equally large answers.
const ECHO_MAX_CHARS: usize = 1_000;
/// Every answer with reasoning reports this many reasoning tokens.
pub(crate) const FAKE_REASONING_TOKENS: u64 = 16;
/// Token cost of one image in the usage estimate.
const IMAGE_TOKENS: u64 = 85;

/// An HTTP answer: status, extra headers and a JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub(crate) fn ok(body: Value) -> Self {
        Self::json(StatusCode::OK, body)
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        (self.status, headers, axum::Json(self.body)).into_response()
    }
}

/// A failure the model name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `fail-401…`
    Unauthorized,
    /// `fail-403…`
    Forbidden,
    /// `fail-404…` or `missing-…`
    NotFound,
    /// `fail-429…` (with `retry-after: 1`)
    RateLimited,
    /// `fail-500…`
    Server,
    /// First call of a `flaky-…` model: 503 (Anthropic: 529 overloaded).
    Overloaded,
    /// `fail-context…`: the API's context-window error.
    ContextTooLong,
}

/// The behaviours encoded in a model name. Directives are prefixes and can be
/// chained, e.g. `slow-200-long-5000-gpt` or `flaky-slow-100-claude`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Script {
    pub failure: Option<Failure>,
    pub delay: Option<Duration>,
    pub length: Option<usize>,
    pub flaky: bool,
}

impl Script {
    pub(crate) fn parse(model: &str) -> Self {
        let mut script = Self::default();
        let mut rest = model;
        loop {
            if let Some((ms, tail)) = numbered(rest, "slow-") {
                script.delay = Some(Duration::from_millis(ms));
                rest = tail;
            } else if let Some((n, tail)) = numbered(rest, "long-") {
                script.length = usize::try_from(n).ok();
                rest = tail;
            } else if let Some(tail) = rest.strip_prefix("flaky-") {
                script.flaky = true;
                rest = tail;
            } else {
                break;
            }
        }
        script.failure = if rest.starts_with("missing-") || rest.starts_with("fail-404") {
            Some(Failure::NotFound)
        } else if rest.starts_with("fail-401") {
            Some(Failure::Unauthorized)
        } else if rest.starts_with("fail-403") {
            Some(Failure::Forbidden)
        } else if rest.starts_with("fail-429") {
            Some(Failure::RateLimited)
        } else if rest.starts_with("fail-500") {
            Some(Failure::Server)
        } else if rest.starts_with("fail-context") {
            Some(Failure::ContextTooLong)
        } else {
            None
        };
        script
    }
}

/// `prefix<number>-rest` or `prefix<number>` → (number, rest).
fn numbered<'a>(text: &'a str, prefix: &str) -> Option<(u64, &'a str)> {
    let tail = text.strip_prefix(prefix)?;
    let (number, rest) = tail.split_once('-').unwrap_or((tail, ""));
    Some((number.parse().ok()?, rest))
}

/// Runs the script of a model: waits for `slow-`, decides `flaky-` and `fail-`.
pub(crate) async fn run_script(shared: &Shared, model: &str) -> Result<Script, Failure> {
    let script = Script::parse(model);
    if let Some(delay) = script.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(failure) = script.failure {
        return Err(failure);
    }
    if script.flaky && shared.first_call_of(model) {
        return Err(Failure::Overloaded);
    }
    Ok(script)
}

/// What the fake understood of a request; the answer repeats it.
#[derive(Debug, Default)]
pub(crate) struct Understood {
    pub model: String,
    /// Text of the last user message, parts joined with a space.
    pub last_user_text: String,
    /// Conversation turns (user/assistant/tool), system messages excluded.
    pub messages: usize,
    pub images: usize,
    pub system: bool,
    /// `high`, `budget:2048`, …
    pub reasoning: Option<String>,
    pub web_search: bool,
    pub temperature: Option<f64>,
    pub max_output_tokens: Option<u64>,
    /// Characters of all text received, for the usage estimate.
    pub input_chars: usize,
}

impl Understood {
    pub(crate) fn add_text(&mut self, text: &str) {
        self.input_chars += text.chars().count();
    }

    /// Records one validated message of the conversation, the same way for every wire format:
    /// its texts count towards the usage estimate; a `system`/`developer` message marks the
    /// system prompt instead of counting as a turn; a `user` message becomes the text the
    /// answer echoes (the last one wins).
    pub(crate) fn add_turn(&mut self, role: &str, texts: &[&str]) {
        for text in texts {
            self.add_text(text);
        }
        if role == "system" || role == "developer" {
            self.system = true;
        } else {
            self.messages += 1;
            if role == "user" {
                self.last_user_text = texts.join(" ");
            }
        }
    }
}

/// The deterministic answer and its usage.
#[derive(Debug)]
pub(crate) struct Answer {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// The output cap cut the answer.
    pub truncated: bool,
}

impl Answer {
    pub(crate) fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.reasoning_tokens
    }
}

/// `[fake <format> model=<model>] You said: <text> | messages=… images=… …`,
/// padded or cut to `long-<n>`, then cut to the visible token cap (4 characters
/// a token) when one is given.
pub(crate) fn answer(
    format: &str,
    understood: &Understood,
    script: &Script,
    visible_cap: Option<u64>,
) -> Answer {
    let echo: String = understood
        .last_user_text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ECHO_MAX_CHARS)
        .collect();
    let mut text = format!(
        "[fake {format} model={model}] You said: {echo} | messages={messages} images={images} \
         system={system} reasoning={reasoning} websearch={websearch} temperature={temperature} \
         max_tokens={max_tokens}",
        model = understood.model,
        messages = understood.messages,
        images = understood.images,
        system = if understood.system { "yes" } else { "no" },
        reasoning = understood.reasoning.as_deref().unwrap_or("none"),
        websearch = if understood.web_search { "on" } else { "off" },
        temperature = understood
            .temperature
            .map_or_else(|| "none".to_owned(), |t| t.to_string()),
        max_tokens = understood
            .max_output_tokens
            .map_or_else(|| "none".to_owned(), |t| t.to_string()),
    );
    if let Some(length) = script.length {
        text = fit_to_length(text, length);
    }
    let mut truncated = false;
    if let Some(cap) = visible_cap {
        let max_chars = usize::try_from(cap.saturating_mul(4)).unwrap_or(usize::MAX);
        if text.chars().count() > max_chars {
            text = text.chars().take(max_chars).collect();
            truncated = true;
        }
    }
    let input_tokens =
        (understood.input_chars as u64 / 4).max(1) + understood.images as u64 * IMAGE_TOKENS;
    let output_tokens = (text.chars().count() as u64).div_ceil(4).max(1);
    Answer {
        text,
        input_tokens,
        output_tokens,
        reasoning_tokens: if understood.reasoning.is_some() {
            FAKE_REASONING_TOKENS
        } else {
            0
        },
        truncated,
    }
}

/// Exactly `length` characters: the summary cut, or padded with filler.
fn fit_to_length(summary: String, length: usize) -> String {
    const FILLER: &str = " lorem ipsum dolor sit amet";
    let count = summary.chars().count();
    if count >= length {
        return summary.chars().take(length).collect();
    }
    let mut text = summary;
    text.extend(FILLER.chars().cycle().take(length - count));
    text
}

/// Checks an image the way the APIs do: a supported type, valid base64, and
/// bytes that really are that type. The error text says what is wrong.
pub(crate) fn check_image(media_type: &str, data: &str) -> Result<(), String> {
    let magic_ok: fn(&[u8]) -> bool = match media_type {
        "image/png" => |b| b.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => |b| b.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/gif" => |b| b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a"),
        "image/webp" => |b| b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP",
        other => {
            return Err(format!(
                "unsupported image type '{other}'; supported: image/jpeg, image/png, image/gif, image/webp"
            ));
        }
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("the image data is not valid base64: {e}"))?;
    if magic_ok(&bytes) {
        Ok(())
    } else {
        Err(format!(
            "the image was specified using the {media_type} media type, but the data is not a valid {media_type} image"
        ))
    }
}

/// `data:<type>;base64,<data>` → (type, data).
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Parses a body as a JSON object, or says why not.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "the request body must be a JSON object, not {}",
            type_name(&other)
        )),
        Err(e) => Err(format!("the request body is not valid JSON: {e}")),
    }
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first key of `object` not in `allowed`.
pub(crate) fn unknown_key<'a>(object: &'a Map<String, Value>, allowed: &[&str]) -> Option<&'a str> {
    object
        .keys()
        .map(String::as_str)
        .find(|key| !allowed.contains(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_from_model_names() {
        assert_eq!(Script::parse("gpt-4o"), Script::default());
        assert_eq!(
            Script::parse("fail-401-x").failure,
            Some(Failure::Unauthorized)
        );
        assert_eq!(
            Script::parse("missing-model").failure,
            Some(Failure::NotFound)
        );
        let script = Script::parse("flaky-slow-250-long-100-fail-500");
        assert!(script.flaky);
        assert_eq!(script.delay, Some(Duration::from_millis(250)));
        assert_eq!(script.length, Some(100));
        assert_eq!(script.failure, Some(Failure::Server));
        // Not a number: not a directive.
        assert_eq!(Script::parse("slow-model").delay, None);
    }

    #[test]
    fn answers_are_deterministic_and_sized() {
        let understood = Understood {
            model: "m".into(),
            last_user_text: "hi\nthere".into(),
            messages: 1,
            ..Understood::default()
        };
        let plain = answer("openai-chat", &understood, &Script::default(), None);
        assert!(
            plain
                .text
                .starts_with("[fake openai-chat model=m] You said: hi there | messages=1")
        );
        let long = answer("x", &understood, &Script::parse("long-5000-m"), None);
        assert_eq!(long.text.chars().count(), 5000);
        let capped = answer("x", &understood, &Script::parse("long-5000-m"), Some(10));
        assert_eq!(capped.text.chars().count(), 40);
        assert!(capped.truncated);
    }

    #[test]
    fn turns_are_counted_the_same_way_for_every_format() {
        let mut u = Understood::default();
        u.add_turn("developer", &["be brief"]);
        u.add_turn("user", &["hello", "there"]);
        u.add_turn("assistant", &["hi"]);
        u.add_turn("model", &[]);
        u.add_turn("user", &["again"]);
        assert!(u.system);
        assert_eq!(u.messages, 4);
        assert_eq!(u.last_user_text, "again");
        assert_eq!(u.input_chars, "be brief".len() + 10 + 2 + 5);
        let mut u = Understood::default();
        u.add_turn("system", &[]);
        assert!(u.system);
        assert_eq!(u.messages, 0);
    }

    #[test]
    fn images_are_checked() {
        assert!(check_image("image/png", TINY_PNG_BASE64).is_ok());
        assert!(check_image("image/jpeg", TINY_PNG_BASE64).is_err());
        assert!(check_image("image/png", "not base64!").is_err());
        assert!(check_image("image/bmp", TINY_PNG_BASE64).is_err());
        assert_eq!(
            parse_data_url("data:image/png;base64,AAAA"),
            Some(("image/png", "AAAA"))
        );
    }
}
