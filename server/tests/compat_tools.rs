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
    let text = text_of(&consensus);
    assert!(
        text.contains("consensus: unknown `async`; accepted: continuation_id, cross_feedback_prompt")
            && text.contains(
                "models[1] (gpt-4o): unknown `max_tokens`; accepted: model, reasoning_effort, temperature, use_websearch"
            ),
        "{text}"
    );
    assert!(fake.requests().is_empty(), "no model was asked");
}
