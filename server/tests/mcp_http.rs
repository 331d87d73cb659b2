//! The real server binary over Streamable HTTP, driven by rmcp's client in both
//! protocol eras, answering through the strict fake providers.

mod common;

use common::*;
use serde_json::json;

const METRICS_KEY: &str = "metrics-key-0123456789abcdef0123456789";

#[tokio::test]
async fn lists_tools_prompts_and_resources_in_both_eras() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    for client in [
        connect_legacy(&server.url).await,
        connect_modern(&server.url).await,
    ] {
        let tools = client.list_all_tools().await.unwrap();
        let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(names, ["chat", "consensus"]);
        let chat = &tools[0];
        let schema = serde_json::to_value(&chat.input_schema).unwrap();
        assert_eq!(schema["required"], json!(["prompt"]), "{schema}");
        for p in [
            "model",
            "files",
            "images",
            "continuation_id",
            "temperature",
            "reasoning_effort",
            "use_websearch",
        ] {
            assert!(
                schema["properties"].get(p).is_some(),
                "chat lacks {p}: {schema}"
            );
        }
        let prompts = client.list_prompts(None).await.unwrap();
        assert_eq!(prompts.prompts[0].name, "help");
        let resources = client.list_resources(None).await.unwrap();
        assert_eq!(resources.resources[0].uri, "converse://help");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn chat_answers_and_continues_a_conversation_in_both_eras() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    for client in [
        connect_legacy(&server.url).await,
        connect_modern(&server.url).await,
    ] {
        let first = call(
            &client,
            "chat",
            json!({"prompt": "What is the capital of Peru?", "model": "gpt-4o"}),
        )
        .await;
        assert_ne!(first.is_error, Some(true), "{first:?}");
        let text = text_of(&first);
        assert!(
            text.contains("[fake") && text.contains("What is the capital of Peru?"),
            "{text}"
        );
        let structured = first.structured_content.clone().expect("structuredContent");
        let id = structured["continuation"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(id.starts_with("conv_"), "{structured}");
        assert!(
            text.contains(&format!("continuation_id: {id}")),
            "the id must be visible to the model: {text}"
        );
        assert_eq!(structured["continuation"]["provider"], "openai");
        assert_eq!(structured["continuation"]["messageCount"], 2);

        let second = call(
            &client,
            "chat",
            json!({"prompt": "And of Chile?", "model": "gpt-4o", "continuation_id": id}),
        )
        .await;
        let structured = second.structured_content.clone().unwrap();
        assert_eq!(structured["continuation"]["id"], id.as_str());
        assert_eq!(structured["continuation"]["messageCount"], 4);
        // The provider received the earlier turn.
        let last = fake.requests().last().cloned().expect("a recorded request");
        let body = last.body.to_string();
        assert!(
            body.contains("capital of Peru") && body.contains("And of Chile?"),
            "{body}"
        );
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn chat_reaches_every_wire_format() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    for (model, provider) in [
        ("gpt-5", "openai"),
        ("sonnet", "anthropic"),
        ("gemini-2.5-flash", "google"),
        ("grok-4", "xai"),
        ("mistral-medium", "mistral"),
        ("deepseek-chat", "deepseek"),
        ("llama-3.3-70b-versatile", "groq"),
        ("qwen/qwen3-coder", "openrouter"),
        ("lab-ok", "lab"),
        // Not in the catalog: routed by family and passed through unchanged.
        ("claude-opus-9", "anthropic"),
        ("gemini-9-pro", "google"),
    ] {
        let result = call(
            &client,
            "chat",
            json!({"prompt": format!("hello {model}"), "model": model}),
        )
        .await;
        assert_ne!(result.is_error, Some(true), "{model}: {result:?}");
        let structured = result.structured_content.unwrap();
        assert_eq!(structured["continuation"]["provider"], provider, "{model}");
        assert!(
            text_of_value(&structured["content"]).contains(&format!("hello {model}")),
            "{model}: {structured}"
        );
    }
}

fn text_of_value(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn consensus_runs_models_in_parallel_and_reports_failures_per_model() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_modern(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({"prompt": "Tabs or spaces?", "models": ["gpt-5", {"model": "sonnet"}, "fail-500-lab"]}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let s = result.structured_content.clone().unwrap();
    assert_eq!(s["successful"], 2, "{s}");
    assert_eq!(s["failed"], 1, "{s}");
    assert_eq!(s["refined"], 2, "{s}");
    let failed = s["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["status"] == "failed")
        .unwrap();
    assert!(
        failed["error"].as_str().unwrap().contains("HTTP 500"),
        "{failed}"
    );
    // Phase 2: each model saw the other's answer, with its own as the previous turn.
    let anthropic_calls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/v1/messages"))
        .collect();
    assert_eq!(anthropic_calls.len(), 2);
    let refine = anthropic_calls[1].body.to_string();
    assert!(
        refine.contains("Other answers") && refine.contains("gpt-5"),
        "{refine}"
    );
    let text = text_of(&result);
    assert!(
        text.contains("Refined answer") && text.contains("fail-500-lab"),
        "{text}"
    );
}

#[tokio::test]
async fn provider_errors_are_tool_errors_with_actionable_text() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "chat",
        json!({"prompt": "hi", "model": "fail-401-lab"}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    let text = text_of(&result);
    assert!(
        text.contains("API key was rejected") && text.contains("API_KEY"),
        "{text}"
    );

    let result = call(
        &client,
        "chat",
        json!({"prompt": "hi", "model": "llama-unknown"}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text_of(&result).contains("unknown model"),
        "{}",
        text_of(&result)
    );

    let result = call(&client, "chat", json!({"prompt": "   "})).await;
    assert_eq!(result.is_error, Some(true));
}

#[tokio::test]
async fn output_is_capped_at_max_mcp_output_tokens() {
    let fake = fake().await;
    let mut env = env_for(&fake);
    env.insert("MAX_MCP_OUTPUT_TOKENS".into(), "1000".into());
    let server = start_http(&env).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "chat",
        json!({"prompt": "write a lot", "model": "long-400000-lab"}),
    )
    .await;
    let text = text_of(&result);
    assert!(text.len() <= 4000, "{} chars", text.len());
    assert!(
        text.contains("[Response truncated") && text.contains("continuation_id: conv_"),
        "{text}"
    );
}

#[tokio::test]
async fn no_provider_key_still_serves_and_tools_name_the_variables() {
    let server = start_http(&Default::default()).await;
    let client = connect_legacy(&server.url).await;
    let result = call(&client, "chat", json!({"prompt": "hi"})).await;
    assert_eq!(result.is_error, Some(true));
    let text = text_of(&result);
    assert!(
        text.contains("OPENAI_API_KEY") && text.contains("ANTHROPIC_API_KEY"),
        "{text}"
    );
    let info = info(&server).await;
    assert_eq!(info["providers"], json!([]));
    assert!(
        info["warnings"][0]
            .as_str()
            .unwrap()
            .contains("no LLM provider")
    );
}

#[tokio::test]
async fn files_are_read_only_under_the_root() {
    let fake = fake().await;
    let dir = std::env::temp_dir().join(format!("converse-files-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::write(dir.join("root/notes.md"), "the magic word is xyzzy").unwrap();
    std::fs::write(dir.join("outside.txt"), "never send this").unwrap();
    let mut env = env_for(&fake);
    env.insert(
        "CONVERSE_FILES_ROOT".into(),
        dir.join("root").display().to_string(),
    );
    let server = start_http(&env).await;
    let client = connect_legacy(&server.url).await;

    let ok = call(
        &client,
        "chat",
        json!({"prompt": "read it", "model": "gpt-4o", "files": ["notes.md"]}),
    )
    .await;
    assert_ne!(ok.is_error, Some(true), "{ok:?}");
    assert!(
        fake.requests()
            .last()
            .unwrap()
            .body
            .to_string()
            .contains("xyzzy")
    );

    let before = fake.requests().len();
    for path in [
        "../outside.txt".to_string(),
        dir.join("outside.txt").display().to_string(),
    ] {
        let refused = call(
            &client,
            "chat",
            json!({"prompt": "read it", "model": "gpt-4o", "files": [path]}),
        )
        .await;
        assert_eq!(refused.is_error, Some(true));
        assert!(
            text_of(&refused).contains("outside the allowed root"),
            "{}",
            text_of(&refused)
        );
    }
    assert_eq!(
        fake.requests().len(),
        before,
        "a refused file must not reach the provider"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn probes_and_info_answer_without_mcp() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    // `/health` is converse 1.3.2's path: compose health checks and monitors written for it work.
    for path in ["/healthz", "/health", "/readyz"] {
        let r = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let info = info(&server).await;
    assert_eq!(info["name"], "converse-server");
    assert_eq!(info["authentication"]["strategy"], "none");
    assert_eq!(info["providers"][0], "openai");
    assert!(!info.to_string().contains("test-key"), "no secret in /info");
}

#[tokio::test]
async fn foreign_host_header_is_refused() {
    let server = start_http(&Default::default()).await;
    let r = reqwest::Client::new()
        .post(&server.url)
        .header("host", "evil.example.com")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn consensus_phases_call_all_models_at_once() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_modern(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({"prompt": "parallel?", "models": ["slow-800-a", "slow-800-b", "slow-800-c"]}),
    )
    .await;
    let s = result.structured_content.unwrap();
    assert_eq!(
        (s["successful"].as_u64(), s["refined"].as_u64()),
        (Some(3), Some(3)),
        "{s}"
    );
    // Each slow answer takes 800 ms; three at once means the phase was parallel.
    assert_eq!(fake.max_in_flight(), 3);
    assert_eq!(fake.requests().len(), 6, "two phases of three calls");
}

#[tokio::test]
async fn client_cancellation_aborts_the_provider_call_in_both_eras() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    for client in [
        connect_legacy(&server.url).await,
        connect_modern(&server.url).await,
    ] {
        fake.clear_requests();
        let call = call(
            &client,
            "chat",
            json!({"prompt": "take your time", "model": "slow-3000-lab"}),
        );
        // Dropping the pending call makes rmcp's client cancel the request
        // (notifications/cancelled in legacy sessions, closing the stream in 2026-07-28).
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(500), call).await;
        assert!(gave_up.is_err(), "the slow call cannot have finished");
        until_idle(&fake).await;
        let recorded = fake.requests();
        assert_eq!(recorded.len(), 1);
        assert_eq!(
            recorded[0].status, None,
            "the provider request was abandoned, not answered"
        );
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn metrics_count_tool_calls_provider_outcomes_and_refusals() {
    let fake = fake().await;
    let mut env = env_for(&fake);
    env.insert("MCP_AUTH_STRATEGY".into(), "api_key".into());
    env.insert("MCP_API_KEYS".into(), METRICS_KEY.into());
    let server = start_http(&env).await;
    let client = connect_with_headers(&server.url, &[("x-api-key", METRICS_KEY)])
        .await
        .unwrap();
    call(&client, "chat", json!({"prompt": "hi", "model": "gpt-4o"})).await;
    call(
        &client,
        "chat",
        json!({"prompt": "hi", "model": "fail-500-lab"}),
    )
    .await;
    let refused = post(&server.url, INITIALIZE, &[("x-api-key", "wrong")]).await;
    assert_eq!(refused.status(), 401);
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"converse_tool_calls_total{tool="chat",outcome="success"} 1"#,
        r#"converse_tool_calls_total{tool="chat",outcome="error"} 1"#,
        r#"converse_provider_calls_total{provider="openai",outcome="ok"} 1"#,
        r#"converse_provider_calls_total{provider="lab",outcome="server_error"} 1"#,
        r#"converse_http_refusals_total{reason="unauthorized"} 1"#,
        "converse_sessions_active 1",
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
    assert!(!text.contains(METRICS_KEY));
}
