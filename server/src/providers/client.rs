//! HTTP plumbing shared by every provider client: one pooled client per provider,
//! endpoint URL joining, bounded retries with backoff, and the translation of an
//! HTTP failure into a [`ProviderError`].
//!
//! The API key is turned into a header value exactly once, here, when the client is
//! built; that value is marked sensitive so it never shows up in `Debug` output, and
//! error messages coming back from providers are scrubbed of the key in case an API
//! echoes it.

use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use url::Url;

use super::{ProviderError, ProviderSettings};

/// A successful answer larger than this is refused rather than buffered: no chat
/// completion is anywhere near it, so it can only be a misbehaving endpoint.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Only the start of an error body is kept; the message is what matters.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Error messages shown to users are cut to this many characters.
const MAX_ERROR_MESSAGE_CHARS: usize = 2_000;
/// A provider asking us to wait longer than this is not waited for longer; the
/// caller is an interactive assistant.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(30);
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Connecting never deserves the whole request timeout.
const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(10);
const USER_AGENT: &str = concat!("converse-server/", env!("CARGO_PKG_VERSION"));

/// How the API key travels.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth {
    /// `Authorization: Bearer <key>` (OpenAI and compatible APIs).
    Bearer,
    /// The key alone in a dedicated header (`x-api-key`, `x-goog-api-key`).
    Header(&'static str),
}

/// One provider's HTTP client.
#[derive(Debug)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    settings: super::ProviderSettings,
    /// Set when the key cannot be sent at all (e.g. it contains a newline); every
    /// call then fails as unauthorized without touching the network.
    key_problem: Option<String>,
}

impl HttpClient {
    /// Builds the pooled client. `fixed_headers` are protocol headers every request
    /// carries (e.g. `anthropic-version`).
    pub(crate) fn new(
        settings: ProviderSettings,
        auth: Auth,
        fixed_headers: &[(&'static str, &'static str)],
    ) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        for (name, value) in fixed_headers {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        for (name, value) in &settings.extra_headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(value)) => {
                    headers.insert(name, value);
                }
                // The configuration layer should have caught this; a bad optional
                // header is not worth refusing to serve the provider.
                _ => tracing::warn!(
                    provider = %settings.name,
                    header = %name,
                    "ignoring an extra header that is not a valid HTTP header"
                ),
            }
        }

        let mut key_problem = None;
        let key = settings.api_key.expose_secret();
        // Custom endpoints (a local vLLM, Ollama) may need no key: send no auth header.
        if !key.is_empty() {
            let (name, value) = match auth {
                Auth::Bearer => (
                    reqwest::header::AUTHORIZATION,
                    HeaderValue::from_str(&format!("Bearer {key}")),
                ),
                Auth::Header(name) => (HeaderName::from_static(name), HeaderValue::from_str(key)),
            };
            match value {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    headers.insert(name, value);
                }
                Err(_) => {
                    key_problem = Some(
                        "the key contains characters that cannot be sent in an HTTP header"
                            .to_owned(),
                    );
                }
            }
        }

        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(CONNECT_TIMEOUT_MAX))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(Self {
            client,
            settings,
            key_problem,
        })
    }

    pub(crate) fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    /// `base_url` with `segments` appended to its path. Base URLs are API roots as
    /// the SDKs take them (`…/v1`, `…/api/v1` or a bare host), with or without a
    /// trailing slash; each segment is percent-encoded, so a model name can never
    /// escape its path segment.
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        join_url(&self.settings.base_url, segments)
    }

    /// POSTs `body` as JSON and decodes a successful answer as `T`, retrying
    /// transient failures.
    pub(crate) async fn post_json<T: DeserializeOwned>(
        &self,
        url: Url,
        body: &impl serde::Serialize,
    ) -> Result<T, ProviderError> {
        if let Some(problem) = &self.key_problem {
            return Err(ProviderError::Unauthorized {
                key_var: self.settings.key_var,
                message: problem.clone(),
            });
        }
        let body =
            Bytes::from(
                serde_json::to_vec(body).map_err(|e| ProviderError::BadRequest {
                    message: format!("could not encode the request: {e}"),
                })?,
            );
        let bytes = self.send_with_retry(&url, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::InvalidResponse(format!(
                "{} answered with unexpected JSON: {e}",
                self.settings.name
            ))
        })
    }

    /// Sends the request, retrying 408/429/5xx-overload answers and connection
    /// failures up to `max_retries` times, and returns the body of the first
    /// successful answer.
    async fn send_with_retry(&self, url: &Url, body: Bytes) -> Result<Bytes, ProviderError> {
        let mut attempt: u32 = 0;
        loop {
            let sent = self
                .client
                .post(url.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let retries_left = attempt < self.settings.max_retries;
            let (error, server_delay) = match sent {
                Ok(response) if response.status().is_success() => {
                    return read_body(response, MAX_RESPONSE_BYTES, true)
                        .await
                        .map_err(|e| self.map_read_error(e));
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    // A failure to read the error body must not hide the status.
                    let bytes = read_body(response, MAX_ERROR_BODY_BYTES, false)
                        .await
                        .unwrap_or_default();
                    let error = self.classify(status, &bytes, retry_after, url);
                    if !(retries_left && is_retryable(status, &error)) {
                        return Err(error);
                    }
                    (error, retry_after)
                }
                Err(e) => {
                    let connect = e.is_connect();
                    let error = self.map_transport_error(e);
                    if !(retries_left && connect) {
                        return Err(error);
                    }
                    (error, None)
                }
            };
            let delay = backoff_delay(attempt, server_delay);
            tracing::debug!(
                provider = %self.settings.name,
                attempt = attempt + 1,
                delay_ms = delay.as_millis() as u64,
                %error,
                "retrying provider call"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn map_transport_error(&self, e: reqwest::Error) -> ProviderError {
        // The URL never goes into a message: a base URL may carry credentials of a gateway
        // (user info, a query key) and internal host names.
        let e = &e.without_url();
        if e.is_timeout() {
            ProviderError::Timeout(self.settings.timeout)
        } else if e.is_decode() || e.is_body() {
            ProviderError::InvalidResponse(self.redact(&error_chain(e)))
        } else {
            // Connect errors and everything else on the way (reset, TLS, DNS).
            ProviderError::Network(self.redact(&error_chain(e)))
        }
    }

    /// Turns a non-success answer into a [`ProviderError`], using the provider's
    /// own message.
    fn classify(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
        url: &Url,
    ) -> ProviderError {
        let info = ErrorInfo::parse(body);
        let message = match &info.message {
            Some(message) => self.redact(message),
            None => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    format!("HTTP {} from {}", status.as_u16(), url_without_query(url))
                } else {
                    self.redact(text)
                }
            }
        };
        let code = info.code.as_deref().unwrap_or_default();
        match status.as_u16() {
            401 => ProviderError::Unauthorized {
                key_var: self.settings.key_var,
                message,
            },
            403 => ProviderError::Forbidden { message },
            404 if info.message.is_none() => ProviderError::ModelNotFound {
                // A bare 404 page, not an API error: most likely a wrong base URL.
                message: format!(
                    "{} answered 404 without an API error; check the base URL ({message})",
                    url_without_query(url)
                ),
            },
            404 => ProviderError::ModelNotFound { message },
            // OpenAI reports an exhausted balance as 429; waiting will not help.
            429 if code == "insufficient_quota" => ProviderError::Forbidden { message },
            429 => ProviderError::RateLimited {
                retry_after,
                message,
            },
            413 => ProviderError::ContextTooLong { message },
            400 | 422 if info.is_context_too_long() => ProviderError::ContextTooLong { message },
            // Gemini answers an invalid key with 400 INVALID_ARGUMENT / API_KEY_INVALID.
            400 if info.is_invalid_key() => ProviderError::Unauthorized {
                key_var: self.settings.key_var,
                message,
            },
            400..=499 => ProviderError::BadRequest { message },
            500..=599 => ProviderError::Server {
                status: status.as_u16(),
                message,
            },
            other => ProviderError::InvalidResponse(format!("unexpected HTTP {other}: {message}")),
        }
    }

    /// Removes the key from text that came back from the provider and bounds its
    /// length. APIs do not normally echo keys, but a misconfigured gateway might.
    fn redact(&self, text: &str) -> String {
        let key = self.settings.api_key.expose_secret();
        let text = if key.len() >= 8 && text.contains(key) {
            text.replace(key, "[redacted]")
        } else {
            text.to_owned()
        };
        truncate_chars(&text, MAX_ERROR_MESSAGE_CHARS)
    }
}

/// See [`HttpClient::endpoint`].
pub(crate) fn join_url(base: &Url, segments: &[&str]) -> Result<Url, ProviderError> {
    let mut url = base.clone();
    url.set_fragment(None);
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| ProviderError::BadRequest {
                message: format!("the base URL {base} cannot carry a path"),
            })?;
        // `pop_if_empty` drops the empty segment a trailing slash leaves behind.
        path.pop_if_empty().extend(segments);
    }
    Ok(url)
}

fn url_without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// 408, 429 (unless it is a quota problem), 500, 502, 503, 504 and Anthropic's
/// 529 "overloaded" are worth another try; other failures will fail again.
fn is_retryable(status: StatusCode, error: &ProviderError) -> bool {
    match status.as_u16() {
        429 => matches!(error, ProviderError::RateLimited { .. }),
        408 | 500 | 502 | 503 | 504 | 529 => true,
        _ => false,
    }
}

/// Exponential backoff with jitter, or the provider's own `Retry-After` (capped).
fn backoff_delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(RETRY_AFTER_CAP);
    }
    let exponential = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(BACKOFF_MAX);
    // Jitter between 50 % and 100 % keeps parallel consensus calls from retrying
    // in lockstep against the same rate limit.
    let factor = rand::rng().random_range(0.5..=1.0);
    exponential.mul_f64(factor)
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds. HTTP-date values are
/// ignored; providers send seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<f64> {
        let value = headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()?;
        (value.is_finite() && value >= 0.0).then_some(value)
    };
    // `try_from`: an absurd value must not panic.
    if let Some(ms) = number("retry-after-ms") {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    number("retry-after").and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// Reads a body up to `limit` bytes. When `strict`, a larger body is an error;
/// otherwise it is cut (error bodies only need their beginning).
async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    strict: bool,
) -> Result<Bytes, ReadError> {
    let announced = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if strict && announced.is_some_and(|len| len > limit) {
        return Err(ReadError::TooLarge(limit));
    }
    let mut buffer = Vec::with_capacity(announced.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if buffer.len() + chunk.len() > limit {
            if strict {
                return Err(ReadError::TooLarge(limit));
            }
            buffer.extend_from_slice(&chunk[..limit - buffer.len()]);
            break;
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

enum ReadError {
    Http(reqwest::Error),
    TooLarge(usize),
}

impl HttpClient {
    fn map_read_error(&self, e: ReadError) -> ProviderError {
        match e {
            ReadError::Http(e) => self.map_transport_error(e),
            ReadError::TooLarge(limit) => ProviderError::InvalidResponse(format!(
                "the answer is larger than {} MiB",
                limit / (1024 * 1024)
            )),
        }
    }
}

/// The reqwest error and its sources, e.g. "error sending request: connection refused".
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What can be learned from an error body, whichever API sent it:
/// OpenAI/OpenRouter `{"error":{"message","type","code"}}`, Anthropic
/// `{"type":"error","error":{"type","message"}}`, Gemini
/// `{"error":{"code","message","status","details"}}`, Mistral/vLLM
/// `{"object":"error","message"}` and FastAPI `{"detail": …}`.
#[derive(Debug, Default)]
struct ErrorInfo {
    message: Option<String>,
    /// `error.code` (OpenAI) or `error.status` (Gemini), as text.
    code: Option<String>,
    /// `error.type` (OpenAI, Anthropic).
    kind: Option<String>,
    /// Gemini's `details[].reason` values.
    reasons: Vec<String>,
}

impl ErrorInfo {
    fn parse(body: &[u8]) -> Self {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Self::default();
        };
        // Gemini occasionally wraps the error in a one-element array.
        let value = match value {
            serde_json::Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            other => other,
        };
        let text = |v: Option<&serde_json::Value>| -> Option<String> {
            match v? {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let mut info = Self::default();
        match value.get("error") {
            Some(serde_json::Value::String(s)) => info.message = Some(s.clone()),
            Some(error @ serde_json::Value::Object(_)) => {
                info.message = text(error.get("message"));
                info.kind = text(error.get("type"));
                // Gemini's numeric `code` repeats the HTTP status; its `status` is
                // the meaningful code.
                info.code = text(error.get("status"))
                    .filter(|_| error.get("code").is_some_and(serde_json::Value::is_number))
                    .or_else(|| text(error.get("code")));
                if let Some(details) = error.get("details").and_then(|d| d.as_array()) {
                    info.reasons = details
                        .iter()
                        .filter_map(|d| text(d.get("reason")))
                        .collect();
                }
                // OpenRouter puts the upstream provider's own message here.
                if let Some(raw) = error.pointer("/metadata/raw").and_then(|r| r.as_str())
                    && let Some(message) = &mut info.message
                {
                    message.push_str(" (upstream: ");
                    message.push_str(&truncate_chars(raw, 500));
                    message.push(')');
                }
            }
            _ => {}
        }
        if info.message.is_none() {
            info.message = text(value.get("message"));
            info.kind = info.kind.or_else(|| text(value.get("type")));
            info.code = info.code.or_else(|| text(value.get("code")));
        }
        if info.message.is_none() {
            info.message = match value.get("detail") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Array(items)) => {
                    let parts: Vec<String> = items
                        .iter()
                        .filter_map(|item| text(item.get("msg")))
                        .collect();
                    (!parts.is_empty()).then(|| parts.join("; "))
                }
                _ => None,
            };
        }
        info
    }

    fn is_context_too_long(&self) -> bool {
        if matches!(
            self.code.as_deref(),
            Some("context_length_exceeded" | "string_above_max_length")
        ) {
            return true;
        }
        let Some(message) = &self.message else {
            return false;
        };
        let message = message.to_lowercase();
        [
            "context length",
            "context_length",
            "context window",
            "maximum context",
            "prompt is too long",
            "input token count",
            "exceeds the maximum number of tokens",
            "too many tokens",
            "input is too long",
            "reduce the length",
        ]
        .iter()
        .any(|needle| message.contains(needle))
    }

    fn is_invalid_key(&self) -> bool {
        self.reasons.iter().any(|r| r == "API_KEY_INVALID")
            || self
                .message
                .as_deref()
                .is_some_and(|m| m.to_lowercase().contains("api key not valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn joins_paths_with_or_without_trailing_slash() {
        for base in ["https://api.openai.com/v1", "https://api.openai.com/v1/"] {
            assert_eq!(
                join_url(&url(base), &["responses"]).unwrap().as_str(),
                "https://api.openai.com/v1/responses"
            );
        }
        for base in [
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/",
        ] {
            assert_eq!(
                join_url(
                    &url(base),
                    &["v1beta", "models", "gemini-2.5-pro:generateContent"]
                )
                .unwrap()
                .as_str(),
                "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"
            );
        }
        assert_eq!(
            join_url(
                &url("https://openrouter.ai/api/v1"),
                &["chat", "completions"]
            )
            .unwrap()
            .as_str(),
            "https://openrouter.ai/api/v1/chat/completions"
        );
        // A model name cannot add path segments.
        assert_eq!(
            join_url(
                &url("http://h/"),
                &["v1beta", "models", "../x?y#z:generateContent"]
            )
            .unwrap()
            .as_str(),
            "http://h/v1beta/models/..%2Fx%3Fy%23z:generateContent"
        );
    }

    #[test]
    fn parses_error_shapes() {
        let openai = ErrorInfo::parse(
            br#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        );
        assert!(openai.is_context_too_long());
        let anthropic = ErrorInfo::parse(
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
        );
        assert!(anthropic.is_context_too_long());
        assert_eq!(anthropic.kind.as_deref(), Some("invalid_request_error"));
        let gemini = ErrorInfo::parse(
            br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
        );
        assert!(gemini.is_invalid_key());
        assert_eq!(gemini.code.as_deref(), Some("INVALID_ARGUMENT"));
        let mistral =
            ErrorInfo::parse(br#"{"object":"error","message":"Invalid model: x","type":"invalid_model","code":"1500"}"#);
        assert_eq!(mistral.message.as_deref(), Some("Invalid model: x"));
        let fastapi =
            ErrorInfo::parse(br#"{"detail":[{"msg":"field required","loc":["body","model"]}]}"#);
        assert_eq!(fastapi.message.as_deref(), Some("field required"));
        assert!(
            ErrorInfo::parse(b"<html>bad gateway</html>")
                .message
                .is_none()
        );
    }

    #[test]
    fn retry_after_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1e300"));
        assert_eq!(retry_after(&headers), None);
        assert_eq!(
            backoff_delay(0, Some(Duration::from_secs(600))),
            RETRY_AFTER_CAP
        );
        let delay = backoff_delay(3, None);
        assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_secs(4));
    }
}
