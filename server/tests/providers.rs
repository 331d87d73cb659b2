//! Every provider client against the strict fake provider APIs: what goes on the
//! wire (as the fake recorded it), what comes back, and how failures are
//! classified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use converse_fake_llm::{FakeLlm, FakeLlmConfig, RecordedRequest, TINY_PNG_BASE64};
use converse_server::providers::{
    ChatDialect, ChatRequest, Message, OpenAiApi, Part, Provider, ProviderError, ProviderSettings,
    Reasoning, Role, WireFormat, build_provider,
};
use secrecy::SecretString;
use serde_json::json;

const KEY_VAR: &str = "TEST_PROVIDER_KEY";

async fn fake() -> FakeLlm {
    FakeLlm::start(FakeLlmConfig::default()).await.unwrap()
}

/// Settings of provider `name`: a row of the built-in provider table, or else a custom
/// OpenAI-compatible endpoint, as the server builds them.
fn settings(name: &str, base_url: &str, key: &str) -> ProviderSettings {
    let (wire, dialect) = converse_config::builtin_providers::builtin(name)
        .map_or((WireFormat::ChatCompletions, ChatDialect::Plain), |p| {
            (p.wire, p.dialect)
        });
    ProviderSettings {
        name: name.to_string(),
        wire,
        dialect,
        base_url: url::Url::parse(base_url).unwrap(),
        api_key: SecretString::from(key),
        key_var: KEY_VAR,
        timeout: Duration::from_secs(10),
        max_retries: 1,
        extra_headers: Vec::new(),
    }
}

/// The base URL provider `name` takes, pointing at the fake.
fn base_for(fake: &FakeLlm, name: &str) -> String {
    match name {
        "anthropic" | "google" => fake.base_url(),
        // With a trailing slash, to check that joining tolerates it.
        "openrouter" => format!("{}/", fake.openrouter_base_url()),
        _ => fake.openai_base_url(),
    }
}

fn provider(fake: &FakeLlm, name: &str) -> Arc<dyn Provider> {
    build_provider(settings(name, &base_for(fake, name), "test-key")).unwrap()
}

fn text(role: Role, text: &str) -> Message {
    Message {
        role,
        parts: vec![Part::Text { text: text.into() }],
    }
}

/// System prompt, an image in the first turn, an assistant answer, a follow-up.
fn conversation(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        system: Some("Be brief.".into()),
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![
                    Part::Text {
                        text: "Describe this image".into(),
                    },
                    Part::Image {
                        media_type: "image/png".into(),
                        data: TINY_PNG_BASE64.into(),
                    },
                ],
            },
            text(Role::Assistant, "It is a single pixel."),
            text(Role::User, "What colour is it?"),
        ],
        temperature: Some(0.5),
        reasoning: None,
        max_output_tokens: Some(2000),
        web_search: false,
        openai_api: OpenAiApi::Responses,
        verbosity: None,
    }
}

fn simple(model: &str) -> ChatRequest {
    ChatRequest {
        system: None,
        messages: vec![text(Role::User, "hello")],
        ..conversation(model)
    }
}

fn only_request(fake: &FakeLlm) -> RecordedRequest {
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    requests.into_iter().next().unwrap()
}

#[tokio::test]
async fn openai_responses_api() {
    let fake = fake().await;
    let openai = provider(&fake, "openai");
    let mut request = conversation("o3");
    request.temperature = None;
    request.reasoning = Some(Reasoning::Effort("high".into()));
    request.web_search = true;

    let response = openai.chat(&request).await.unwrap();
    assert_eq!(
        response.text,
        "[fake openai-responses model=o3] You said: What colour is it? | messages=3 images=1 \
         system=yes reasoning=high websearch=on temperature=none max_tokens=2000"
    );
    assert_eq!(response.model, "o3");
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert_eq!(response.usage.reasoning_tokens, Some(16));
    assert!(response.usage.total_tokens.unwrap() > 0);

    let sent = only_request(&fake);
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.header("authorization"), Some("Bearer [REDACTED]"));
    assert_eq!(sent.body["instructions"], "Be brief.");
    assert_eq!(sent.body["reasoning"], json!({"effort": "high"}));
    assert_eq!(sent.body["tools"], json!([{"type": "web_search"}]));
    assert_eq!(sent.body["max_output_tokens"], 2000);
    assert_eq!(sent.body["store"], false);
    assert!(sent.body.get("temperature").is_none());
    assert_eq!(sent.body["input"][1]["content"][0]["type"], "output_text");
    assert_eq!(sent.body["input"][0]["content"][1]["type"], "input_image");
}

#[tokio::test]
async fn openai_chat_completions_and_output_cap() {
    let fake = fake().await;
    let openai = provider(&fake, "openai");
    let mut request = conversation("gpt-4o");
    request.openai_api = OpenAiApi::ChatCompletions;
    request.reasoning = Some(Reasoning::Effort("low".into()));
    let response = openai.chat(&request).await.unwrap();
    assert!(
        response.text.starts_with(
            "[fake openai-chat model=gpt-4o] You said: What colour is it? | messages=3 images=1 system=yes reasoning=low websearch=off temperature=0.5"
        ),
        "{}",
        response.text
    );
    let sent = only_request(&fake);
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["max_completion_tokens"], 2000);
    assert!(sent.body.get("max_tokens").is_none());
    assert_eq!(sent.body["reasoning_effort"], "low");
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        sent.body["messages"][1]["content"][1]["image_url"]["url"],
        format!("data:image/png;base64,{TINY_PNG_BASE64}")
    );

    // A long answer hits the cap: the Responses API reports `incomplete`.
    let mut capped = simple("long-5000-gpt");
    capped.max_output_tokens = Some(20);
    let response = openai.chat(&capped).await.unwrap();
    assert_eq!(response.finish_reason.as_deref(), Some("length"));
    assert_eq!(response.text.chars().count(), 80);
}

#[tokio::test]
async fn openai_compatible_providers() {
    let fake = fake().await;
    // Every built-in provider of the plain Chat Completions dialect, as the table lists them.
    let plain = converse_config::BUILTIN_PROVIDERS
        .iter()
        .filter(|p| p.wire == WireFormat::ChatCompletions && p.dialect == ChatDialect::Plain);
    for kind in plain.map(|p| p.name) {
        fake.clear_requests();
        let response = provider(&fake, kind)
            .chat(&conversation("compat-model"))
            .await
            .unwrap();
        assert!(
            response.text.starts_with(
                "[fake openai-chat model=compat-model] You said: What colour is it? | messages=3 images=1 system=yes"
            ),
            "{kind}: {}",
            response.text
        );
        let sent = only_request(&fake);
        assert_eq!(sent.body["max_tokens"], 2000, "{kind}");
        assert!(sent.body.get("max_completion_tokens").is_none());
        assert!(sent.body.get("reasoning_effort").is_none());
    }

    // OpenRouter: its own base path, extra headers, budget and web plugin.
    fake.clear_requests();
    let mut openrouter = settings("openrouter", &base_for(&fake, "openrouter"), "test-key");
    openrouter.extra_headers = vec![
        ("HTTP-Referer".into(), "https://example.com/converse".into()),
        ("X-Title".into(), "Converse".into()),
    ];
    let mut request = simple("moonshotai/kimi-k2");
    request.reasoning = Some(Reasoning::Budget(2048));
    request.web_search = true;
    let response = build_provider(openrouter)
        .unwrap()
        .chat(&request)
        .await
        .unwrap();
    assert!(
        response.text.contains("reasoning=budget:2048 websearch=on"),
        "{}",
        response.text
    );
    let sent = only_request(&fake);
    assert_eq!(sent.path, "/api/v1/chat/completions");
    assert_eq!(
        sent.header("http-referer"),
        Some("https://example.com/converse")
    );
    assert_eq!(sent.header("x-title"), Some("Converse"));
    assert_eq!(sent.body["plugins"], json!([{"id": "web"}]));
}

#[tokio::test]
async fn custom_endpoint_without_key_sends_no_authorization() {
    let fake = FakeLlm::start(FakeLlmConfig {
        api_key: String::new(),
        ..FakeLlmConfig::default()
    })
    .await
    .unwrap();
    let custom = build_provider(settings("local-vllm", &fake.openai_base_url(), "")).unwrap();
    let response = custom.chat(&simple("llama3")).await.unwrap();
    assert!(
        response
            .text
            .starts_with("[fake openai-chat model=llama3] You said: hello")
    );
    let sent = only_request(&fake);
    assert_eq!(sent.header("authorization"), None);
}

#[tokio::test]
async fn anthropic_messages_api() {
    let fake = fake().await;
    let anthropic = provider(&fake, "anthropic");

    // Two user turns in a row (e.g. a file then a question) are merged.
    let mut request = conversation("claude-sonnet-4-20250514");
    request
        .messages
        .insert(1, text(Role::User, "Also consider this."));
    request.max_output_tokens = None;
    request.reasoning = Some(Reasoning::Budget(2048));
    request.web_search = true;
    let response = anthropic.chat(&request).await.unwrap();
    assert_eq!(
        response.text,
        "[fake anthropic model=claude-sonnet-4-20250514] You said: What colour is it? | messages=3 \
         images=1 system=yes reasoning=budget:2048 websearch=on temperature=none max_tokens=8192"
    );
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));

    let sent = only_request(&fake);
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("[REDACTED]"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.body["system"], "Be brief.");
    assert_eq!(
        sent.body["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    // Temperature is not allowed with thinking.
    assert!(sent.body.get("temperature").is_none());
    let messages = sent.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["content"].as_array().unwrap().len(), 3);
    assert_eq!(messages[0]["content"][1]["source"]["type"], "base64");
    assert_eq!(sent.body["tools"][0]["type"], "web_search_20250305");

    // A budget as large as the model's output cap is lowered, not refused.
    fake.clear_requests();
    let mut request = simple("claude-opus-4-20250514");
    request.max_output_tokens = Some(32_000);
    request.reasoning = Some(Reasoning::Budget(32_000));
    anthropic.chat(&request).await.unwrap();
    let sent = only_request(&fake);
    assert_eq!(sent.body["max_tokens"], 32_000);
    assert_eq!(sent.body["thinking"]["budget_tokens"], 27_904);

    // Without thinking the temperature is sent, and an assistant-first history
    // gets a user turn in front.
    fake.clear_requests();
    let mut request = simple("claude-3-5-haiku");
    request
        .messages
        .insert(0, text(Role::Assistant, "Earlier answer."));
    let response = anthropic.chat(&request).await.unwrap();
    assert!(response.text.contains("messages=3"), "{}", response.text);
    let sent = only_request(&fake);
    assert_eq!(sent.body["temperature"], 0.5);
    assert_eq!(sent.body["messages"][0]["role"], "user");
}

#[tokio::test]
async fn gemini_generate_content() {
    let fake = fake().await;
    let gemini = provider(&fake, "google");
    let mut request = conversation("gemini-2.5-pro");
    request.reasoning = Some(Reasoning::Budget(4096));
    request.web_search = true;
    let response = gemini.chat(&request).await.unwrap();
    assert_eq!(
        response.text,
        "[fake gemini model=gemini-2.5-pro] You said: What colour is it? | messages=3 images=1 \
         system=yes reasoning=budget:4096 websearch=on temperature=0.5 max_tokens=2000"
    );
    assert_eq!(response.finish_reason.as_deref(), Some("stop"));
    assert_eq!(response.usage.reasoning_tokens, Some(16));

    let sent = only_request(&fake);
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-pro:generateContent");
    assert_eq!(sent.header("x-goog-api-key"), Some("[REDACTED]"));
    assert_eq!(
        sent.body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(sent.body["contents"][1]["role"], "model");
    assert_eq!(
        sent.body["contents"][0]["parts"][1]["inlineData"]["mimeType"],
        "image/png"
    );
    assert_eq!(
        sent.body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 4096})
    );
    assert_eq!(sent.body["tools"], json!([{"googleSearch": {}}]));

    fake.clear_requests();
    let mut request = simple("gemini-3-pro-preview");
    request.reasoning = Some(Reasoning::Effort("high".into()));
    let response = gemini.chat(&request).await.unwrap();
    assert!(
        response.text.contains("reasoning=high"),
        "{}",
        response.text
    );
    let sent = only_request(&fake);
    assert_eq!(
        sent.body["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "high"})
    );
}

const ALL_FORMATS: [&str; 4] = ["openai", "openrouter", "anthropic", "google"];

#[tokio::test]
async fn errors_are_classified_for_every_wire_format() {
    let fake = fake().await;
    for kind in ALL_FORMATS {
        let provider = provider(&fake, kind);
        let call = |model: &str| {
            let provider = Arc::clone(&provider);
            let request = simple(model);
            async move { provider.chat(&request).await }
        };
        match call("fail-401-x").await {
            Err(ProviderError::Unauthorized { key_var, message }) => {
                assert_eq!(key_var, KEY_VAR);
                assert!(!message.is_empty());
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert!(
            matches!(
                call("fail-404-x").await,
                Err(ProviderError::ModelNotFound { .. })
            ),
            "{kind}"
        );
        assert!(
            matches!(
                call("missing-model").await,
                Err(ProviderError::ModelNotFound { .. })
            ),
            "{kind}"
        );
        assert!(
            matches!(
                call("fail-403-x").await,
                Err(ProviderError::Forbidden { .. })
            ),
            "{kind}"
        );
        assert!(
            matches!(
                call("fail-context-x").await,
                Err(ProviderError::ContextTooLong { .. })
            ),
            "{kind}: {:?}",
            call("fail-context-x").await
        );
        // 500 is retried once, then reported.
        let model = format!("fail-500-{kind}");
        match call(&model).await {
            Err(ProviderError::Server {
                status: 500,
                message,
            }) => assert!(!message.is_empty()),
            other => panic!("{kind}: {other:?}"),
        }
        let attempts = fake
            .requests()
            .iter()
            .filter(|r| r.path.contains(&model) || r.body["model"] == model.as_str())
            .count();
        assert_eq!(attempts, 2, "{kind}: one try and one retry");

        // A flaky model succeeds on the retry.
        let model = format!("flaky-{kind}");
        let response = call(&model).await.unwrap();
        assert!(
            response.text.contains(&format!("model={model}")),
            "{}",
            response.text
        );

        // A wrong key (Gemini answers 400 API_KEY_INVALID, the others 401).
        let wrong = build_provider(settings(kind, &base_for(&fake, kind), "wrong-key")).unwrap();
        match wrong.chat(&simple("any")).await {
            Err(ProviderError::Unauthorized { key_var, .. }) => assert_eq!(key_var, KEY_VAR),
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn rate_limits_are_retried_then_reported() {
    let fake = fake().await;
    // The four formats in parallel: each waits the fake's `retry-after: 1` once.
    let started = Instant::now();
    let results = futures::future::join_all(ALL_FORMATS.map(|kind| {
        let provider = provider(&fake, kind);
        async move {
            (
                kind,
                provider.chat(&simple(&format!("fail-429-{kind}"))).await,
            )
        }
    }))
    .await;
    for (kind, result) in results {
        match result {
            Err(ProviderError::RateLimited {
                retry_after,
                message,
            }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(1)), "{kind}");
                assert!(!message.is_empty());
            }
            other => panic!("{kind}: {other:?}"),
        }
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(fake.requests().len(), 8, "each format: one try, one retry");
}

#[tokio::test]
async fn timeouts_and_network_errors() {
    let fake = fake().await;
    for kind in ALL_FORMATS {
        let mut slow = settings(kind, &base_for(&fake, kind), "test-key");
        slow.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let result = build_provider(slow)
            .unwrap()
            .chat(&simple("slow-3000-x"))
            .await;
        assert_eq!(
            result,
            Err(ProviderError::Timeout(Duration::from_millis(300))),
            "{kind}"
        );
        // A timeout is not retried: the caller is waiting.
        assert!(started.elapsed() < Duration::from_secs(2), "{kind}");
    }

    // Nothing listens on the fake's port once it is gone.
    let base = fake.openai_base_url();
    drop(fake);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut unreachable = settings("openai", &base, "test-key");
    unreachable.max_retries = 0;
    match build_provider(unreachable)
        .unwrap()
        .chat(&simple("x"))
        .await
    {
        Err(ProviderError::Network(message)) => {
            assert!(!message.contains("test-key"));
            // The URL (which may carry a gateway's credentials or internal names) is never shown.
            assert!(!message.contains(&base), "{message}");
            assert!(!message.contains("127.0.0.1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
