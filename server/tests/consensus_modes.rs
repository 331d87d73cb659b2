//! What `consensus` added after converse 1.3.2: a stance per model, and the
//! roundtable mode where the models answer in turn. The real server binary
//! over Streamable HTTP, answering through the strict fake providers.

mod common;

use common::*;
use converse_fake_llm::RecordedRequest;
use serde_json::{Value, json};

/// The built-in stance instructions, as the models' system prompts carry them.
const FOR: &str = "argue FOR the proposal";
const AGAINST: &str = "critically challenge the proposal";
/// What a roundtable participant after the first sees before its turn.
const EARLIER: &str = "Answers given before yours in this round";

fn bodies(requests: &[RecordedRequest]) -> Vec<String> {
    requests.iter().map(|r| r.body.to_string()).collect()
}

fn structured(result: &rmcp::model::CallToolResult) -> Value {
    result
        .structured_content
        .clone()
        .expect("structuredContent")
}

#[tokio::test]
async fn each_model_argues_its_stance_in_both_phases_and_results_tell_them_apart() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({
            "prompt": "Should we rewrite the billing service in Rust?",
            "models": [
                {"model": "lab-ok", "stance": "for"},
                {"model": "lab-ok", "stance": "Against"},
                {"model": "gpt-4o", "stance": "Answer as the on-call engineer who gets paged at night"},
            ],
        }),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let all = bodies(&fake.requests());
    assert_eq!(all.len(), 6, "two phases of three models: {all:#?}");
    let with = |needle: &str| all.iter().filter(|b| b.contains(needle)).count();
    assert_eq!(with(FOR), 2, "the for-stance in both phases");
    assert_eq!(with(AGAINST), 2, "the against-stance in both phases");
    assert_eq!(with("on-call engineer who gets paged"), 2);
    assert_eq!(
        with("never invent facts"),
        6,
        "every stance keeps models truthful"
    );
    // The refinement shows the same model's other stance under its own label.
    let refine_for = all
        .iter()
        .find(|b| b.contains(FOR) && b.contains("Other answers"))
        .expect("the for-model's refinement");
    assert!(refine_for.contains("lab-ok [against]"), "{refine_for}");

    let s = structured(&result);
    let stances: Vec<&Value> = s["phases"]["initial"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["stance"])
        .collect();
    assert_eq!(
        stances,
        [
            "for",
            "against",
            "Answer as the on-call engineer who gets paged at night"
        ]
    );
    assert_eq!(s["phases"]["refined"][1]["stance"], "against");
    assert_eq!(s["models"][0]["stance"], "for");
    let text = text_of(&result);
    assert!(
        text.contains("## lab-ok (lab), stance: for")
            && text.contains("## lab-ok (lab), stance: against"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unusable_stance_fails_the_call_before_any_model_is_asked() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_modern(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({
            "prompt": "q",
            "models": [{"model": "lab-ok", "stance": "x".repeat(2001)}, {"model": "gpt-4o", "stance": " "}],
        }),
    )
    .await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let text = text_of(&result);
    assert!(
        text.contains("models[0] (lab-ok): stance a custom stance may have at most 2000")
            && text.contains("models[1] (gpt-4o): stance must not be empty"),
        "{text}"
    );
    assert!(fake.requests().is_empty(), "no model was asked");
}

#[tokio::test]
async fn roundtable_models_answer_in_turn_seeing_the_earlier_answers() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({
            "prompt": "Monolith or services?",
            "mode": "roundtable",
            "models": ["gpt-4o", {"model": "lab-ok", "stance": "against"}, "gpt-4o-mini"],
        }),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let requests = fake.requests();
    let models: Vec<&Value> = requests.iter().map(|r| &r.body["model"]).collect();
    assert_eq!(
        models,
        ["gpt-4o", "lab-ok", "gpt-4o-mini"],
        "one lap, in order"
    );
    let all = bodies(&requests);
    assert!(!all[0].contains(EARLIER), "{}", all[0]);
    assert!(
        all[1].contains(EARLIER) && all[1].contains("### 1. gpt-4o") && all[1].contains(AGAINST),
        "{}",
        all[1]
    );
    assert!(
        all[2].contains("### 1. gpt-4o")
            && all[2].contains("### 2. lab-ok [against]")
            && all[2].contains("model=lab-ok"),
        "{}",
        all[2]
    );

    let s = structured(&result);
    assert_eq!(s["mode"], "roundtable");
    assert_eq!(s["settings"]["enable_cross_feedback"], false);
    assert_eq!(s["refined_responses"], 0);
    assert!(s["phases"].get("refined").is_none(), "{s}");
    let order: Vec<&Value> = s["phases"]["initial"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["model"])
        .collect();
    assert_eq!(order, ["gpt-4o", "lab-ok", "gpt-4o-mini"]);
    assert!(text_of(&result).starts_with("# Roundtable: 3 of 3 models answered in turn"));
}

#[tokio::test]
async fn a_roundtable_continuation_runs_another_lap_that_sees_the_first() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    let first = call(
        &client,
        "consensus",
        json!({"prompt": "Monolith or services?", "mode": "roundtable", "models": ["gpt-4o", "lab-ok"]}),
    )
    .await;
    assert_ne!(first.is_error, Some(true), "{first:?}");
    let id = structured(&first)["continuation"]["id"].clone();
    fake.clear_requests();

    let second = call(
        &client,
        "consensus",
        json!({
            "prompt": "What about the team size?",
            "mode": "roundtable",
            "models": ["gpt-4o", "lab-ok"],
            "continuation_id": id,
        }),
    )
    .await;
    assert_ne!(second.is_error, Some(true), "{second:?}");
    let requests = fake.requests();
    let all = bodies(&requests);
    assert_eq!(all.len(), 2, "one more lap: {all:#?}");
    // The opener of lap two sees lap one's answers, each labelled by model, and
    // the new question alone (gpt-4o speaks OpenAI's Responses API).
    assert!(
        all[0].contains("## gpt-4o\\n") && all[0].contains("## lab-ok\\n"),
        "{}",
        all[0]
    );
    let question = requests[0].body["input"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    assert_eq!(question["content"][0]["text"], "What about the team size?");
    assert_eq!(question["content"].as_array().unwrap().len(), 1);
    assert!(all[1].contains(EARLIER), "{}", all[1]);
    assert_eq!(structured(&second)["continuation"]["id"], id);
}

#[tokio::test]
async fn a_failing_roundtable_model_is_reported_and_the_lap_goes_on() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({
            "prompt": "Monolith or services?",
            "mode": "roundtable",
            "enable_cross_feedback": true,
            "models": ["gpt-4o", "fail-500-lab", "lab-ok"],
        }),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let requests = fake.requests();
    let last = requests.last().unwrap();
    assert_eq!(last.body["model"], "lab-ok");
    let body = last.body.to_string();
    assert!(
        body.contains("### 1. gpt-4o") && !body.contains("### 2."),
        "only the answer that exists: {body}"
    );
    let s = structured(&result);
    assert_eq!(s["phases"]["failed"][0]["model"], "fail-500-lab");
    assert_eq!(s["phases"]["initial"].as_array().unwrap().len(), 2);
    let notes = s["notes"].to_string();
    assert!(notes.contains("ignored in roundtable mode"), "{notes}");
    assert!(
        text_of(&result).contains("- fail-500-lab:"),
        "{}",
        text_of(&result)
    );
}
