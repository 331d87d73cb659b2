//! Arguments and results as converse-mcp-server 1.3.2 clients send and read
//! them: the real server binary over Streamable HTTP, answering through the
//! strict fake providers.

mod common;

use common::*;
use converse_fake_llm::RecordedRequest;
use serde_json::{Value, json};

/// The recorded request that asked `model` (every wire format names the model
/// in its body, except Gemini, which these tests do not use).
fn requests_for(requests: &[RecordedRequest], model: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.body["model"] == model)
        .map(|r| r.body.clone())
        .collect()
}

fn close(value: &Value, want: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - want).abs() < 1e-6)
}

#[tokio::test]
async fn consensus_reads_relevant_files_as_1_3_2_named_them() {
    let fake = fake().await;
    let root = std::env::temp_dir().join(format!("converse-compat-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("design.md"), "the magic word is xyzzy").unwrap();
    std::fs::write(root.join("notes.md"), "the other word is plugh").unwrap();
    let mut env = env_for(&fake);
    env.insert("CONVERSE_FILES_ROOT".into(), root.display().to_string());
    let server = start_http(&env).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({
            "prompt": "Review the design",
            "models": [{"model": "lab-ok"}],
            "relevant_files": ["design.md", "notes.md"],
            "files": ["notes.md"],
        }),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let body = fake.requests().last().unwrap().body.to_string();
    assert!(body.contains("xyzzy") && body.contains("plugh"), "{body}");
    assert_eq!(body.matches("xyzzy").count(), 1, "each file once: {body}");
}

#[tokio::test]
async fn cross_feedback_prompt_replaces_the_refinement_instructions() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({
            "prompt": "Tabs or spaces?",
            "models": [{"model": "gpt-4o"}, {"model": "lab-ok"}],
            "cross_feedback_prompt": "Find the weakest point of each other answer.",
        }),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let requests = fake.requests();
    for model in ["gpt-4o", "lab-ok"] {
        let bodies = requests_for(&requests, model);
        assert_eq!(bodies.len(), 2, "{model}: one call per phase");
        let refine = bodies[1].to_string();
        assert!(
            refine.contains("Find the weakest point of each other answer.")
                && !refine.contains("Weigh them against yours")
                && refine.contains("Other answers"),
            "{model}: {refine}"
        );
    }
}

#[tokio::test]
async fn options_inside_a_models_object_override_the_call_for_that_model() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({
            "prompt": "Name a colour",
            "temperature": 0.1,
            "enable_cross_feedback": false,
            "models": [{"model": "gpt-4o", "temperature": 0.9}, {"model": "lab-ok"}],
        }),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let requests = fake.requests();
    let own = &requests_for(&requests, "gpt-4o")[0];
    let call_level = &requests_for(&requests, "lab-ok")[0];
    assert!(close(&own["temperature"], 0.9), "{own}");
    assert!(close(&call_level["temperature"], 0.1), "{call_level}");
}

#[tokio::test]
async fn unknown_arguments_fail_the_call_and_name_the_accepted_ones() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_modern(&server.url).await;

    let chat = call(
        &client,
        "chat",
        json!({"prompt": "hi", "model": "lab-ok", "temprature": 0.3, "relevant_files": []}),
    )
    .await;
    assert_eq!(chat.is_error, Some(true), "{chat:?}");
    let text = text_of(&chat);
    assert!(
        text.contains("`relevant_files`, `temprature`")
            && text.contains("accepted: continuation_id, files, images, model, prompt, reasoning_effort, temperature, use_websearch"),
        "{text}"
    );

    let consensus = call(
        &client,
        "consensus",
        json!({
            "prompt": "hi",
            "models": ["lab-ok", {"model": "gpt-4o", "max_tokens": 10, "temperature": 0.2}],
            "async": true,
        }),
    )
    .await;
    assert_eq!(consensus.is_error, Some(true), "{consensus:?}");
    // Clients check structuredContent against the outputSchema even on errors.
    assert_eq!(consensus.structured_content, None);
    let text = text_of(&consensus);
    assert!(
        text.contains("consensus: unknown `async`; accepted: continuation_id, cross_feedback_prompt")
            && text.contains(
                "models[1] (gpt-4o): unknown `max_tokens`; accepted: model, reasoning_effort, stance, temperature, use_websearch, verbosity"
            ),
        "{text}"
    );
    assert!(fake.requests().is_empty(), "no model was asked");
}

/// converse 1.3.2's consensus result, read the way its consumers read it: only
/// its field names, any others ignored.
mod v132 {
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, Deserialize)]
    pub struct ConsensusResult {
        pub status: String,
        pub models_consulted: usize,
        pub successful_initial_responses: usize,
        pub failed_responses: usize,
        pub refined_responses: usize,
        pub phases: Phases,
        pub continuation: Continuation,
        pub settings: Settings,
    }

    #[derive(Debug, Deserialize)]
    pub struct Phases {
        pub initial: Vec<Initial>,
        pub refined: Option<Vec<Refined>>,
        pub failed: Vec<Failed>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Initial {
        pub model: String,
        pub provider: String,
        pub status: String,
        pub response: String,
        pub metadata: Metadata,
    }

    #[derive(Debug, Deserialize)]
    pub struct Refined {
        pub model: String,
        pub provider: String,
        pub status: String,
        pub response: String,
        pub initial_response: String,
        pub refined_response: Option<String>,
        pub refined_metadata: Option<Metadata>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Failed {
        pub model: String,
        pub status: String,
        pub error: String,
        pub metadata: Value,
    }

    #[derive(Debug, Deserialize)]
    pub struct Metadata {
        pub model: String,
        pub provider: String,
        pub usage: Usage,
        pub response_time_ms: u64,
    }

    #[derive(Debug, Deserialize)]
    pub struct Usage {
        pub input_tokens: u64,
        pub output_tokens: u64,
        pub total_tokens: u64,
    }

    #[derive(Debug, Deserialize)]
    pub struct Continuation {
        pub id: String,
        #[serde(rename = "messageCount")]
        pub message_count: usize,
    }

    #[derive(Debug, Deserialize)]
    pub struct Settings {
        pub enable_cross_feedback: bool,
        pub temperature: f64,
        pub models_requested: Vec<String>,
    }
}

#[tokio::test]
async fn consensus_structured_content_is_the_1_3_2_result() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    let tools = client.list_all_tools().await.unwrap();
    let consensus = tools.iter().find(|t| t.name == "consensus").unwrap();
    let schema = serde_json::to_value(consensus.output_schema.as_deref().unwrap()).unwrap();
    assert!(
        schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "phases"),
        "outputSchema declares the 1.3.2 result: {schema}"
    );

    let result = call(
        &client,
        "consensus",
        json!({
            "prompt": "Tabs or spaces?",
            "models": [{"model": "gpt-4o"}, {"model": "4o-mini"}, {"model": "fail-500-lab"}, {"model": "nonexistent-model-xyz"}],
        }),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let raw = result.structured_content.clone().unwrap();
    let r: v132::ConsensusResult = serde_json::from_value(raw.clone()).expect("1.3.2's shape");
    assert_eq!(r.status, "consensus_complete");
    assert_eq!(
        (
            r.models_consulted,
            r.successful_initial_responses,
            r.failed_responses,
            r.refined_responses
        ),
        (4, 2, 2, 2),
        "{raw}"
    );
    let names: Vec<&str> = r.phases.initial.iter().map(|e| e.model.as_str()).collect();
    assert_eq!(
        names,
        ["gpt-4o", "4o-mini"],
        "as requested, not as resolved"
    );
    for e in &r.phases.initial {
        assert_eq!(
            (e.status.as_str(), e.provider.as_str()),
            ("success", "openai")
        );
        assert!(e.response.starts_with("[fake"), "{}", e.response);
        assert_eq!(e.metadata.provider, "openai");
        assert!(e.metadata.model.starts_with("gpt-4o"), "{:?}", e.metadata);
        let u = &e.metadata.usage;
        assert!(u.input_tokens > 0 && u.total_tokens >= u.input_tokens + u.output_tokens);
        assert!(e.metadata.response_time_ms < 60_000);
    }
    let refined = r.phases.refined.as_ref().expect("the refinement round ran");
    assert_eq!(refined.len(), 2);
    for (e, first) in refined.iter().zip(&r.phases.initial) {
        assert_eq!(
            (e.model.as_str(), e.status.as_str()),
            (first.model.as_str(), "success")
        );
        assert_eq!(e.provider, "openai");
        assert_eq!(
            (&e.response, &e.initial_response),
            (&first.response, &first.response)
        );
        let answer = e.refined_response.as_deref().unwrap();
        assert!(answer.contains("Other answers"), "{answer}");
        assert!(e.refined_metadata.is_some());
    }
    let failed: Vec<(&str, &str)> = r
        .phases
        .failed
        .iter()
        .map(|f| (f.model.as_str(), f.status.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            ("fail-500-lab", "failed"),
            ("nonexistent-model-xyz", "failed")
        ]
    );
    assert!(r.phases.failed[0].error.contains("HTTP 500"));
    assert_eq!(r.phases.failed[0].metadata, json!({}));
    assert!(r.continuation.id.starts_with("conv_"));
    assert!(text_of(&result).contains(&r.continuation.id));
    assert_eq!(r.continuation.message_count, 2);
    assert!(r.settings.enable_cross_feedback);
    assert!((r.settings.temperature - 0.2).abs() < 1e-6);
    assert_eq!(
        r.settings.models_requested,
        ["gpt-4o", "4o-mini", "fail-500-lab", "nonexistent-model-xyz"]
    );
    // This server's own fields are still there.
    assert_eq!(
        (raw["successful"].clone(), raw["failed"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(raw["models"].as_array().unwrap().len(), 4);

    // Without a refinement round 1.3.2 has no `phases.refined`.
    let single = call(
        &client,
        "consensus",
        json!({"prompt": "Tabs?", "models": [{"model": "gpt-4o"}, {"model": "lab-ok"}], "enable_cross_feedback": false}),
    )
    .await;
    let r: v132::ConsensusResult =
        serde_json::from_value(single.structured_content.unwrap()).unwrap();
    assert!(r.phases.refined.is_none() && r.refined_responses == 0);
    assert!(!r.settings.enable_cross_feedback);
}

/// Bytes of a result as the client receives them: text plus structured content.
fn result_size(result: &rmcp::model::CallToolResult) -> usize {
    let structured = result
        .structured_content
        .as_ref()
        .map_or(0, |s| s.to_string().len());
    text_of(result).len() + structured
}

#[tokio::test]
async fn max_mcp_output_tokens_caps_text_and_structured_content_together() {
    let fake = fake().await;
    let mut env = env_for(&fake);
    env.insert("MAX_MCP_OUTPUT_TOKENS".into(), "5000".into());
    let models = env["CUSTOM_LAB_MODELS"].clone();
    env.insert(
        "CUSTOM_LAB_MODELS".into(),
        format!("{models},long-20000-a,long-20000-b,long-300-c,long-12000-d"),
    );
    let server = start_http(&env).await;
    let client = connect_legacy(&server.url).await;

    let result = call(
        &client,
        "consensus",
        json!({"prompt": "Write a lot", "models": ["long-20000-a", "long-20000-b", "long-300-c"]}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert!(
        result_size(&result) <= 5000 * 4,
        "{} bytes",
        result_size(&result)
    );
    let text = text_of(&result);
    assert!(
        text.contains("[Response truncated")
            && text.contains("MAX_MCP_OUTPUT_TOKENS = 5000")
            && text.contains("long-20000-a initial")
            && text.contains("continuation_id: conv_"),
        "{text}"
    );
    let s = result.structured_content.clone().unwrap();
    let truncated = &s["truncated"];
    assert_eq!(truncated["limit_tokens"], 5000, "{truncated}");
    let cut: Vec<(&str, &str)> = truncated["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["model"].as_str().unwrap(), c["part"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cut,
        [
            ("long-20000-a", "initial"),
            ("long-20000-a", "refined"),
            ("long-20000-b", "initial"),
            ("long-20000-b", "refined")
        ],
        "the short answer keeps its room"
    );
    assert_eq!(truncated["cuts"][0]["original_chars"], 20000);
    let r: v132::ConsensusResult = serde_json::from_value(s.clone()).expect("still 1.3.2's shape");
    assert_eq!(
        r.phases.initial[2].response.chars().count(),
        300,
        "kept whole"
    );
    assert!(r.phases.initial[0].response.contains("[Response truncated"));

    // Text that fits alone stays whole: structuredContent's copy gives way.
    let result = call(
        &client,
        "chat",
        json!({"prompt": "Write some", "model": "long-12000-d"}),
    )
    .await;
    let text = text_of(&result);
    let s = result.structured_content.clone().unwrap();
    assert!(
        result_size(&result) <= 5000 * 4,
        "{} bytes",
        result_size(&result)
    );
    assert!(
        !text.contains("[Response truncated") && text.contains("this text is complete"),
        "{text}"
    );
    assert_eq!(s["truncated"]["cuts"], json!([]), "{s}");
    assert_eq!(s["truncated"]["shortened_fields"], json!(["content"]));

    // Under the cap nothing is cut and nothing says so.
    let result = call(
        &client,
        "chat",
        json!({"prompt": "hi", "model": "long-300-c"}),
    )
    .await;
    let s = result.structured_content.clone().unwrap();
    assert!(
        s.get("truncated").is_none() && s["content"].as_str().unwrap().len() == 300,
        "{s}"
    );
}

#[tokio::test]
async fn verbosity_reaches_models_that_take_it_and_xhigh_is_clamped_per_model() {
    let fake = fake().await;
    let dir = std::env::temp_dir().join(format!("converse-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = dir.join("models.yaml");
    std::fs::write(
        &catalog,
        "providers:
  openai:
    default: gpt-5
    models:
      - name: gpt-5
        context_window: 400000
        max_output: 128000
        verbosity: true
        reasoning: {effort: {levels: {minimal: minimal, low: low, medium: medium, high: high}}}
      - name: gpt-5.2
        context_window: 400000
        max_output: 128000
        verbosity: true
        reasoning: {effort: {levels: {none: none, low: low, medium: medium, high: high, xhigh: xhigh}}}
      - name: gpt-4o
        context_window: 128000
        max_output: 16384
        temperature: 2.0
",
    )
    .unwrap();
    let mut env = env_for(&fake);
    env.insert("CONVERSE_MODELS_FILE".into(), catalog.display().to_string());
    let server = start_http(&env).await;
    let client = connect_legacy(&server.url).await;

    for (model, effort, verbosity, sent_effort, sent_verbosity) in [
        (
            "gpt-5",
            "xhigh",
            "low",
            json!("high"),
            json!({"verbosity": "low"}),
        ),
        (
            "gpt-5.2",
            "xhigh",
            "high",
            json!("xhigh"),
            json!({"verbosity": "high"}),
        ),
        (
            "gpt-5.2",
            "max",
            "medium",
            json!("xhigh"),
            json!({"verbosity": "medium"}),
        ),
        ("gpt-4o", "xhigh", "low", json!(null), json!(null)),
    ] {
        let result = call(
            &client,
            "chat",
            json!({"prompt": "hi", "model": model, "reasoning_effort": effort, "verbosity": verbosity}),
        )
        .await;
        assert_ne!(result.is_error, Some(true), "{model}: {result:?}");
        let body = fake.requests().last().unwrap().body.clone();
        assert_eq!(
            body["reasoning"]["effort"], sent_effort,
            "{model} {effort}: {body}"
        );
        assert_eq!(body["text"], sent_verbosity, "{model} {verbosity}: {body}");
        if model == "gpt-4o" {
            let text = text_of(&result);
            assert!(
                text.contains("verbosity is not available for gpt-4o; answered without it"),
                "{text}"
            );
        }
    }
}

#[tokio::test]
async fn the_built_in_gpt_5_models_take_verbosity() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    for model in ["gpt-5", "gpt-5-mini", "gpt-5-nano"] {
        let result = call(
            &client,
            "chat",
            json!({"prompt": "hi", "model": model, "verbosity": "low"}),
        )
        .await;
        assert_ne!(result.is_error, Some(true), "{model}: {result:?}");
        let body = fake.requests().last().unwrap().body.clone();
        assert_eq!(body["text"], json!({"verbosity": "low"}), "{model}: {body}");
    }

    // Consensus says which model answered without it.
    let result = call(
        &client,
        "consensus",
        json!({"prompt": "hi", "models": ["gpt-4o", {"model": "gpt-5", "verbosity": "high"}], "verbosity": "low", "enable_cross_feedback": false}),
    )
    .await;
    let requests = fake.requests();
    assert_eq!(
        requests_for(&requests, "gpt-5").last().unwrap()["text"],
        json!({"verbosity": "high"})
    );
    let text = text_of(&result);
    assert!(
        text.contains("verbosity is not available for gpt-4o; answered without it"),
        "{text}"
    );
}
