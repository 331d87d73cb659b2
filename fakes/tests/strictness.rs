//! The fake must refuse what the real APIs refuse, in their error shapes, and
//! answer valid requests with the deterministic summary.

use converse_fake_llm::{FakeLlm, FakeLlmConfig, TINY_PNG_BASE64};
use serde_json::{Value, json};

struct Client {
    fake: FakeLlm,
    http: reqwest::Client,
}

impl Client {
    async fn start() -> Self {
        Self {
            fake: FakeLlm::start(FakeLlmConfig::default()).await.unwrap(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.fake.base_url()))
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.json().await.unwrap(), headers)
    }

    async fn anthropic(&self, body: Value) -> (u16, Value) {
        let (status, body, _) = self
            .send(
                "/v1/messages",
                &[
                    ("x-api-key", "test-key"),
                    ("anthropic-version", "2023-06-01"),
                ],
                body,
            )
            .await;
        (status, body)
    }

    async fn responses(&self, body: Value) -> (u16, Value) {
        let (status, body, _) = self
            .send(
                "/v1/responses",
                &[("authorization", "Bearer test-key")],
                body,
            )
            .await;
        (status, body)
    }

    async fn gemini(&self, model: &str, body: Value) -> (u16, Value) {
        let (status, body, _) = self
            .send(
                &format!("/v1beta/models/{model}:generateContent"),
                &[("x-goog-api-key", "test-key")],
                body,
            )
            .await;
        (status, body)
    }
}

fn anthropic_message(status: u16, body: &Value) -> String {
    assert_eq!(body["type"], "error", "{status} {body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn anthropic_enforces_its_rules() {
    let c = Client::start().await;
    let user = |text: &str| json!({"role": "user", "content": text});

    // Missing max_tokens.
    let (status, body) = c
        .anthropic(json!({"model": "claude", "messages": [user("hi")]}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        anthropic_message(status, &body),
        "max_tokens: Field required"
    );
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // Consecutive user turns.
    let (status, body) = c
        .anthropic(
            json!({"model": "claude", "max_tokens": 100, "messages": [user("a"), user("b")]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        anthropic_message(status, &body).contains("roles must alternate"),
        "{body}"
    );

    // First message from the assistant.
    let (status, body) = c
        .anthropic(json!({"model": "claude", "max_tokens": 100, "messages": [
            {"role": "assistant", "content": "x"}, user("b")
        ]}))
        .await;
    assert_eq!(status, 400);
    assert!(anthropic_message(status, &body).contains("first message must use the \"user\" role"));

    // A system role inside messages.
    let (status, body) = c
        .anthropic(json!({"model": "claude", "max_tokens": 100, "messages": [{"role": "system", "content": "x"}]}))
        .await;
    assert_eq!(status, 400);
    assert!(anthropic_message(status, &body).contains("Input should be 'user' or 'assistant'"));

    // Thinking budget rules.
    let thinking = |budget: u64, max: u64, temperature: Option<f64>| {
        let mut body = json!({"model": "claude", "max_tokens": max, "messages": [user("hi")],
            "thinking": {"type": "enabled", "budget_tokens": budget}});
        if let Some(t) = temperature {
            body["temperature"] = json!(t);
        }
        body
    };
    let (status, body) = c.anthropic(thinking(500, 4000, None)).await;
    assert_eq!(status, 400);
    assert!(anthropic_message(status, &body).contains("greater than or equal to 1024"));
    let (status, body) = c.anthropic(thinking(4000, 4000, None)).await;
    assert_eq!(status, 400);
    assert!(
        anthropic_message(status, &body)
            .contains("`max_tokens` must be greater than `thinking.budget_tokens`")
    );
    let (status, body) = c.anthropic(thinking(2000, 4000, Some(0.5))).await;
    assert_eq!(status, 400);
    assert!(anthropic_message(status, &body).contains("`temperature` may only be set to 1"));
    let (status, body) = c.anthropic(thinking(2000, 4000, Some(1.0))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"][0]["type"], "thinking");
    assert!(
        body["content"][1]["text"]
            .as_str()
            .unwrap()
            .contains("reasoning=budget:2000")
    );

    // Unknown field and a fake image.
    let (status, body) = c
        .anthropic(json!({"model": "claude", "max_tokens": 10, "messages": [user("hi")], "foo": 1}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        anthropic_message(status, &body),
        "foo: Extra inputs are not permitted"
    );
    let image = |data: &str| {
        json!({"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
        ]}]})
    };
    let (status, _) = c.anthropic(image("aGVsbG8=")).await;
    assert_eq!(status, 400);
    let (status, body) = c.anthropic(image(TINY_PNG_BASE64)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["content"][0]["text"],
        "[fake anthropic model=claude] You said: look | messages=1 images=1 system=no reasoning=none \
         websearch=off temperature=none max_tokens=100"
    );
    assert_eq!(body["stop_reason"], "end_turn");

    // Auth and version headers.
    let (status, body, _) = c
        .send(
            "/v1/messages",
            &[("anthropic-version", "2023-06-01")],
            json!({}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "authentication_error");
    let (status, body, _) = c
        .send("/v1/messages", &[("x-api-key", "test-key")], json!({}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        anthropic_message(status, &body),
        "anthropic-version: header is required"
    );
}

#[tokio::test]
async fn openai_responses_validates_and_answers() {
    let c = Client::start().await;

    let (status, body, _) = c
        .send("/v1/responses", &[], json!({"model": "gpt", "input": "hi"}))
        .await;
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("You didn't provide an API key")
    );
    let (status, body, _) = c
        .send(
            "/v1/responses",
            &[("authorization", "Bearer nope")],
            json!({"model": "gpt", "input": "hi"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");

    let (status, body) = c.responses(json!({"input": "hi"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Missing required parameter: 'model'."
    );
    assert_eq!(body["error"]["param"], "model");

    let (status, body) = c
        .responses(json!({"model": "gpt", "input": "hi", "max_tokens": 5}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "unknown_parameter");

    // input_text is not allowed in an assistant turn.
    let (status, body) = c
        .responses(json!({"model": "gpt", "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "a"}]},
            {"role": "assistant", "content": [{"type": "input_text", "text": "b"}]}
        ]}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "input[1].content[0].type");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'output_text'")
    );

    let (status, body) = c
        .responses(json!({"model": "gpt", "input": [{"role": "user", "content": [{"type": "image", "url": "x"}]}]}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_value");

    let (status, body) = c
        .responses(json!({"model": "o3", "instructions": "sys", "reasoning": {"effort": "high"},
            "tools": [{"type": "web_search"}], "input": [
            {"role": "user", "content": [
                {"type": "input_text", "text": "see"},
                {"type": "input_image", "image_url": format!("data:image/png;base64,{TINY_PNG_BASE64}")}
            ]}
        ]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let message = body["output"].as_array().unwrap().last().unwrap();
    let text = message["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("[fake openai-responses model=o3] You said: see | messages=1 images=1 system=yes reasoning=high websearch=on"), "{text}");
    assert_eq!(body["output"][0]["type"], "reasoning");
    assert_eq!(
        body["usage"]["output_tokens_details"]["reasoning_tokens"],
        16
    );
}

#[tokio::test]
async fn chat_completions_and_gemini_reject_bad_roles() {
    let c = Client::start().await;
    let (status, body, _) = c
        .send(
            "/v1/chat/completions",
            &[("authorization", "Bearer test-key")],
            json!({"model": "grok", "messages": [{"role": "model", "content": "x"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "messages[0].role");
    let (status, body, _) = c
        .send(
            "/v1/chat/completions",
            &[("authorization", "Bearer test-key")],
            json!({"model": "grok", "messages": [{"role": "user", "content": "x"}], "search_parameters": {}}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Unrecognized request argument supplied: search_parameters"
    );

    let (status, body) = c
        .gemini(
            "gemini-2.5-pro",
            json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        body["error"]["message"],
        "Please use a valid role: user, model."
    );
    let (status, body) = c.gemini("gemini-2.5-pro", json!({"contents": []})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contents is not specified")
    );
    let (status, body) = c
        .gemini(
            "gemini-2.5-pro",
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"foo": 1}}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown name \"foo\"")
    );

    let (status, body, _) = c
        .send(
            "/v1beta/models/gemini-2.5-pro:generateContent",
            &[("x-goog-api-key", "wrong")],
            json!({"contents": [{"parts": [{"text": "x"}]}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let (status, body) = c
        .gemini("gemini-2.5-pro", json!({
            "systemInstruction": {"parts": [{"text": "sys"}]},
            "contents": [{"role": "user", "parts": [{"text": "hello"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}},
            "tools": [{"googleSearch": {}}]
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    let parts = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(parts[0]["thought"], true);
    assert!(
        parts[1]["text"]
            .as_str()
            .unwrap()
            .contains("system=yes reasoning=budget:1024 websearch=on")
    );
}

#[tokio::test]
async fn scripted_failures_and_log() {
    let c = Client::start().await;
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let auth = [("authorization", "Bearer test-key")];

    let (status, body, headers) = c
        .send("/v1/chat/completions", &auth, chat("fail-429-x"))
        .await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let (status, _, _) = c.send("/v1/chat/completions", &auth, chat("flaky-x")).await;
    assert_eq!(status, 503);
    let (status, _, _) = c.send("/v1/chat/completions", &auth, chat("flaky-x")).await;
    assert_eq!(status, 200);

    let (status, body, _) = c
        .send("/v1/chat/completions", &auth, chat("long-300-x"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        300
    );

    let (status, body, _) = c
        .send("/api/v1/chat/completions", &auth, chat("missing-model"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], 404, "OpenRouter's error shape");

    let log = c.fake.requests();
    assert_eq!(log.len(), 5);
    assert_eq!(log[0].header("authorization"), Some("Bearer [REDACTED]"));
    assert!(log.iter().all(|r| r.authenticated));
    assert_eq!(log[1].status, Some(503));
    assert_eq!(log[4].path, "/api/v1/chat/completions");
    assert_eq!(log[4].body["model"], "missing-model");

    let served: Vec<Value> = c
        .http
        .get(format!("{}/_fake/requests", c.fake.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served.len(), 5);
    assert!(!serde_json::to_string(&served).unwrap().contains("test-key"));
}

#[tokio::test]
async fn cancelled_requests_stay_unanswered_in_the_log() {
    let c = Client::start().await;
    let request = c
        .http
        .post(format!("{}/v1/chat/completions", c.fake.base_url()))
        .bearer_auth("test-key")
        .timeout(std::time::Duration::from_millis(200))
        .json(&json!({"model": "slow-1000-x", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await;
    assert!(request.unwrap_err().is_timeout());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let log = c.fake.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].status, None,
        "the fake stopped working on it when the client left"
    );
}
