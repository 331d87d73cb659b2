//! What `consensus` returns: Markdown for the calling model to read, and a
//! structured result that carries converse 1.3.2's result field for field (its
//! consumers parse `phases`, `continuation` and `settings`) plus this server's
//! own fields, none of which collide with 1.3.2's names. The structured shape is
//! declared as the tool's `outputSchema`, derived from these types.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Serialize;

use super::consensus::Mode;
use super::prompts::Stance;
use super::{ToolOutput, output};
use crate::providers::{ChatResponse, Usage};

/// One model's answer in one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    /// The model the API says answered (may differ from the requested alias).
    pub model: String,
    pub usage: Usage,
    pub finish_reason: Option<String>,
    pub elapsed: Duration,
}

impl Answer {
    pub fn new(response: ChatResponse, elapsed: Duration) -> Self {
        Self {
            text: response.text,
            model: response.model,
            usage: response.usage,
            finish_reason: response.finish_reason,
            elapsed,
        }
    }
}

/// What became of one requested model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOutcome {
    /// The name the caller gave (1.3.2 reports this one as `model`).
    pub requested: String,
    pub provider: Option<String>,
    pub initial: Option<Answer>,
    pub refined: Option<Answer>,
    /// Why the model failed or, when it has an initial answer, why its
    /// refinement failed.
    pub error: Option<String>,
    /// The position the caller asked this model to take.
    pub stance: Option<Stance>,
}

impl ModelOutcome {
    pub fn failed(
        requested: &str,
        provider: Option<String>,
        stance: Option<Stance>,
        error: String,
    ) -> Self {
        Self {
            requested: requested.to_string(),
            provider,
            initial: None,
            refined: None,
            error: Some(error),
            stance,
        }
    }

    /// The model with its stance, e.g. `gpt-5 [against]`: tells answers apart
    /// where the same model takes several stances (headings, the other models'
    /// view of the answers, the stored conversation).
    pub fn label(&self) -> String {
        with_tag(self.model(), self.stance.as_ref())
    }

    /// The stance as results report it.
    fn stance_label(&self) -> Option<String> {
        self.stance.as_ref().map(|s| s.label().to_string())
    }

    /// `success`, `partial` (answered, but the refinement failed) or `failed`.
    pub fn status(&self) -> &'static str {
        match (&self.initial, &self.error) {
            (None, _) => "failed",
            (Some(_), Some(_)) => "partial",
            (Some(_), None) => "success",
        }
    }

    /// The model that answered, else the requested name.
    pub fn model(&self) -> &str {
        self.initial.as_ref().map_or(&self.requested, |a| &a.model)
    }

    pub fn final_answer(&self) -> Option<&str> {
        self.refined
            .as_ref()
            .or(self.initial.as_ref())
            .map(|a| a.text.as_str())
    }

    /// Tokens of both phases.
    fn usage(&self) -> Usage {
        let mut total = Usage::default();
        for answer in [&self.initial, &self.refined].into_iter().flatten() {
            add_usage(&mut total, &answer.usage);
        }
        total
    }
}

/// `name [stance tag]`, or the name alone without a stance.
fn with_tag(name: &str, stance: Option<&Stance>) -> String {
    match stance {
        Some(stance) => format!("{name} [{}]", stance.tag()),
        None => name.to_string(),
    }
}

pub fn add_usage(total: &mut Usage, more: &Usage) {
    let add = |a: &mut Option<u64>, b: Option<u64>| {
        if let Some(b) = b {
            *a = Some(a.unwrap_or(0) + b);
        }
    };
    add(&mut total.input_tokens, more.input_tokens);
    add(&mut total.output_tokens, more.output_tokens);
    add(&mut total.reasoning_tokens, more.reasoning_tokens);
    add(&mut total.total_tokens, more.total_tokens);
}

/// The settings the call ran with, as 1.3.2 reports them.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Settings {
    /// Whether the refinement round was asked for.
    pub enable_cross_feedback: bool,
    /// The call's temperature (models may have had their own).
    pub temperature: f32,
    /// The model names as requested.
    pub models_requested: Vec<String>,
}

/// Everything a finished consensus call reports.
#[derive(Debug, Clone)]
pub struct Report {
    pub id: String,
    /// Models with an initial answer, in the requested order.
    pub successes: Vec<ModelOutcome>,
    pub failures: Vec<ModelOutcome>,
    pub notes: Vec<String>,
    /// Messages stored in the conversation.
    pub message_count: usize,
    pub settings: Settings,
    pub mode: Mode,
}

/// The `structuredContent` of a consensus result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConsensusResult {
    /// Always "consensus_complete".
    pub status: &'static str,
    /// "parallel" (independent answers, then cross-feedback) or "roundtable" (answers in turn, each seeing the earlier ones; its lap is `phases.initial`).
    pub mode: &'static str,
    /// Models requested.
    pub models_consulted: usize,
    /// Models that answered in the first round.
    pub successful_initial_responses: usize,
    /// Models that failed before or in the first round.
    pub failed_responses: usize,
    /// Models whose refinement succeeded.
    pub refined_responses: usize,
    pub phases: Phases,
    pub continuation: Continuation,
    pub settings: Settings,
    /// The Markdown body of the text result (answers and failures).
    pub content: String,
    /// Every model's outcome: answers, error, tokens.
    pub models: Vec<ModelView>,
    /// Same as successful_initial_responses.
    pub successful: usize,
    /// Same as failed_responses.
    pub failed: usize,
    /// Same as refined_responses.
    pub refined: usize,
    /// Tokens of all models and both rounds.
    #[schemars(with = "UsageView")]
    pub usage: Usage,
    /// What the caller should know: trimmed history, skipped rounds, storage problems.
    pub notes: Vec<String>,
    /// Present when the output limit shortened answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<output::Truncation>,
}

/// The rounds as converse 1.3.2 reports them.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Phases {
    /// First-round answers.
    pub initial: Vec<InitialEntry>,
    /// Present when the refinement round ran: every model that answered, refined or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refined: Option<Vec<RefinedEntry>>,
    /// Models that could not be asked or failed in the first round.
    pub failed: Vec<FailedEntry>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InitialEntry {
    /// The model as requested.
    pub model: String,
    pub provider: String,
    /// Always "success".
    pub status: &'static str,
    /// The first-round answer.
    pub response: String,
    pub metadata: Metadata,
    /// The stance this model was asked to take: "for", "against", "neutral" or the custom instruction; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stance: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RefinedEntry {
    /// The model as requested.
    pub model: String,
    pub provider: String,
    /// "success", or "partial" when the refinement failed and only the first answer exists.
    pub status: &'static str,
    /// The first-round answer.
    pub response: String,
    /// The first round's metadata.
    pub metadata: Metadata,
    /// The first-round answer.
    pub initial_response: String,
    /// The refined answer; null when the refinement failed.
    pub refined_response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refined_metadata: Option<Metadata>,
    /// Why the refinement failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refined_error: Option<String>,
    /// The stance this model was asked to take: "for", "against", "neutral" or the custom instruction; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stance: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FailedEntry {
    /// The model as requested.
    pub model: String,
    /// Absent when the name matched no configured provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Always "failed".
    pub status: &'static str,
    pub error: String,
    /// Always empty.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The stance this model was asked to take: "for", "against", "neutral" or the custom instruction; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stance: Option<String>,
}

/// One answer's provider facts, with 1.3.2's names.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Metadata {
    /// The model the API says answered.
    pub model: String,
    pub provider: String,
    pub usage: TokenUsage,
    pub response_time_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

/// Token counts with 1.3.2's names; absent when the provider did not say.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TokenUsage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_tokens: Option<u64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Continuation {
    /// Pass as continuation_id to continue the conversation (with chat or consensus).
    pub id: String,
    #[serde(rename = "messageCount")]
    pub message_count: usize,
    /// Always "consensus".
    pub provider: &'static str,
    /// The models that answered, comma-separated.
    pub model: String,
}

/// One model's outcome in this server's own shape.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ModelView {
    /// The model that answered, else the requested name.
    pub model: String,
    pub provider: Option<String>,
    /// "success", "partial" (refinement failed) or "failed".
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refined: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[schemars(with = "UsageView")]
    pub usage: Usage,
    /// The stance this model was asked to take: "for", "against", "neutral" or the custom instruction; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stance: Option<String>,
}

/// The schema of [`Usage`] as it serialises (the provider type carries no schema).
#[derive(JsonSchema)]
#[allow(dead_code)]
struct UsageView {
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_tokens: Option<u64>,
}

/// The tool's `outputSchema`: what [`ConsensusResult`] serialises to.
pub fn output_schema() -> Arc<rmcp::model::JsonObject> {
    let mut schema = rmcp::handler::server::common::schema_for_output::<ConsensusResult>()
        .as_ref()
        .clone();
    strip_formats(&mut schema);
    Arc::new(schema)
}

/// Removes `format` keywords: schemars writes Rust's number types (`uint`,
/// `uint64`, `float`), which no JSON Schema validator knows, and clients that
/// check results against the schema (Ajv in the TypeScript SDK) warn about each
/// one on every connection. `minimum` keeps the facts that matter.
fn strip_formats(schema: &mut rmcp::model::JsonObject) {
    schema.remove("format");
    for value in schema.values_mut() {
        match value {
            serde_json::Value::Object(inner) => strip_formats(inner),
            serde_json::Value::Array(items) => {
                for item in items
                    .iter_mut()
                    .filter_map(serde_json::Value::as_object_mut)
                {
                    strip_formats(item);
                }
            }
            _ => {}
        }
    }
}

fn metadata(provider: &str, answer: &Answer) -> Metadata {
    let u = &answer.usage;
    Metadata {
        model: answer.model.clone(),
        provider: provider.to_string(),
        usage: TokenUsage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            total_tokens: u.total_tokens,
            thinking_tokens: u.reasoning_tokens,
        },
        response_time_ms: u64::try_from(answer.elapsed.as_millis()).unwrap_or(u64::MAX),
        finish_reason: answer.finish_reason.clone(),
    }
}

/// 1.3.2's phases. `refined` exists only when the round ran, which is when
/// every model that answered either refined or failed to.
fn phases(successes: &[ModelOutcome], failures: &[ModelOutcome]) -> Phases {
    let mut initial = Vec::new();
    let mut refined = Vec::new();
    for o in successes {
        let (Some(first), Some(provider)) = (&o.initial, &o.provider) else {
            continue;
        };
        let entry = InitialEntry {
            model: o.requested.clone(),
            provider: provider.clone(),
            status: "success",
            response: first.text.clone(),
            metadata: metadata(provider, first),
            stance: o.stance_label(),
        };
        if o.refined.is_some() || o.error.is_some() {
            refined.push(RefinedEntry {
                model: entry.model.clone(),
                provider: entry.provider.clone(),
                status: o.status(),
                response: entry.response.clone(),
                metadata: entry.metadata.clone(),
                initial_response: entry.response.clone(),
                refined_response: o.refined.as_ref().map(|a| a.text.clone()),
                refined_metadata: o.refined.as_ref().map(|a| metadata(provider, a)),
                refined_error: o.error.clone(),
                stance: entry.stance.clone(),
            });
        }
        initial.push(entry);
    }
    let failed = failures
        .iter()
        .map(|o| FailedEntry {
            model: o.requested.clone(),
            provider: o.provider.clone(),
            status: "failed",
            error: o.error.clone().unwrap_or_default(),
            metadata: Default::default(),
            stance: o.stance_label(),
        })
        .collect();
    Phases {
        initial,
        refined: (!refined.is_empty()).then_some(refined),
        failed,
    }
}

fn view(o: &ModelOutcome) -> ModelView {
    ModelView {
        model: o.model().to_string(),
        provider: o.provider.clone(),
        status: o.status(),
        initial: o.initial.as_ref().map(|a| a.text.clone()),
        refined: o.refined.as_ref().map(|a| a.text.clone()),
        error: o.error.clone(),
        usage: o.usage(),
        stance: o.stance_label(),
    }
}

/// The consulted models that answered, as `a,b,c`.
pub fn model_names(successes: &[ModelOutcome]) -> String {
    successes
        .iter()
        .map(ModelOutcome::model)
        .collect::<Vec<_>>()
        .join(",")
}

/// Copies of outcomes with every answer passed through `trim(outcome, part, text)`.
fn trimmed(
    outcomes: &[ModelOutcome],
    mut trim: impl FnMut(&ModelOutcome, &'static str, &str) -> String,
) -> Vec<ModelOutcome> {
    outcomes
        .iter()
        .map(|o| {
            let mut copy = o.clone();
            for (part, answer) in [
                ("initial", &mut copy.initial),
                ("refined", &mut copy.refined),
            ] {
                if let Some(answer) = answer {
                    answer.text = trim(o, part, &answer.text);
                }
            }
            copy
        })
        .collect()
}

/// The fields of the structured result that repeat the answers for convenience:
/// they shrink before the text and 1.3.2's `phases` do.
const EXTRA_FIELDS: [&str; 3] = ["content", "models[].initial", "models[].refined"];

/// The result with the answers shortened as `trim` says.
fn build(report: &Report, trim: output::Trim) -> ToolOutput {
    let Report {
        successes,
        failures,
        ..
    } = report;
    let mut cuts = Vec::new();
    let primary = trimmed(successes, |o, part, text| {
        trim.primary(&o.label(), part, text, &mut cuts)
    });
    let extra = trimmed(successes, |_, _, text| trim.extra(text));
    let truncated = trim.report(cuts, &EXTRA_FIELDS);
    let mut text_notes = report.notes.clone();
    text_notes.extend(truncated.as_ref().map(output::Truncation::note));
    let footer = super::chat::footer(
        &report.id,
        "consensus",
        &format!("{} models", successes.len()),
        &text_notes,
    );
    let refined = successes.iter().filter(|o| o.refined.is_some()).count();
    let mut usage = Usage::default();
    for o in successes {
        add_usage(&mut usage, &o.usage());
    }
    let structured = ConsensusResult {
        status: "consensus_complete",
        mode: report.mode.as_str(),
        models_consulted: report.settings.models_requested.len(),
        successful_initial_responses: successes.len(),
        failed_responses: failures.len(),
        refined_responses: refined,
        phases: phases(&primary, failures),
        continuation: Continuation {
            id: report.id.clone(),
            message_count: report.message_count,
            provider: "consensus",
            model: model_names(successes),
        },
        settings: report.settings.clone(),
        content: render(report.mode, &extra, failures),
        models: extra.iter().chain(failures).map(view).collect(),
        successful: successes.len(),
        failed: failures.len(),
        refined,
        usage,
        notes: report.notes.clone(),
        truncated,
    };
    ToolOutput {
        text: format!("{}{footer}", render(report.mode, &primary, failures)),
        structured: serde_json::to_value(structured).unwrap_or_default(),
        is_error: false,
    }
}

/// Every answer and failure, then the footer with the continuation id; the
/// structured part as [`ConsensusResult`]; all within the output cap.
pub fn consensus_output(report: &Report, max_output_tokens: usize) -> ToolOutput {
    let longest = [&report.successes, &report.failures]
        .into_iter()
        .flatten()
        .flat_map(|o| [&o.initial, &o.refined])
        .flatten()
        .map(|a| a.text.len())
        .max()
        .unwrap_or(0);
    output::fit(max_output_tokens, longest, |trim| build(report, trim))
}

/// The Markdown body: each model's answers (refined first) in order, then the
/// failures. A model's heading names its stance, so the calling model reads
/// each answer as the position it was asked to argue.
fn render(mode: Mode, successes: &[ModelOutcome], failures: &[ModelOutcome]) -> String {
    let refined = successes.iter().filter(|o| o.refined.is_some()).count();
    let (title, how) = match mode {
        Mode::Parallel => ("Consensus", ""),
        Mode::Roundtable => ("Roundtable", " in turn"),
    };
    let mut text = format!(
        "# {title}: {} of {} models answered{how}{}\n",
        successes.len(),
        successes.len() + failures.len(),
        if refined > 0 {
            format!(", {refined} refined after cross-feedback")
        } else {
            String::new()
        }
    );
    for o in successes {
        text.push_str(&format!(
            "\n## {} ({}){}\n",
            o.model(),
            o.provider.as_deref().unwrap_or("?"),
            o.stance
                .as_ref()
                .map(|s| format!(", stance: {}", s.tag()))
                .unwrap_or_default()
        ));
        match (&o.refined, &o.initial) {
            (Some(refined), Some(initial)) => {
                text.push_str(&format!(
                    "### Refined answer\n{}\n\n### Initial answer\n{}\n",
                    refined.text, initial.text
                ));
            }
            (None, Some(initial)) => text.push_str(&format!("{}\n", initial.text)),
            _ => {}
        }
        if let Some(e) = &o.error {
            text.push_str(&format!("\n(Note: {e})\n"));
        }
    }
    if !failures.is_empty() {
        text.push_str("\n## Failed\n");
        for o in failures {
            text.push_str(&format!(
                "- {}: {}\n",
                with_tag(&o.requested, o.stance.as_ref()),
                o.error.as_deref().unwrap_or("failed")
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(text: &str) -> Answer {
        Answer {
            text: text.into(),
            model: format!("{text}-api"),
            usage: Usage {
                input_tokens: Some(10),
                output_tokens: Some(5),
                reasoning_tokens: Some(2),
                total_tokens: Some(17),
            },
            finish_reason: Some("stop".into()),
            elapsed: Duration::from_millis(1234),
        }
    }

    fn answered(name: &str, refined: Option<&str>, error: Option<&str>) -> ModelOutcome {
        ModelOutcome {
            requested: name.into(),
            provider: Some("openai".into()),
            initial: Some(answer(&format!("{name} first"))),
            refined: refined.map(answer),
            error: error.map(str::to_string),
            stance: None,
        }
    }

    #[test]
    fn refined_and_partial_models_appear_as_in_1_3_2() {
        let successes = [
            answered("a", Some("a second"), None),
            answered(
                "b",
                None,
                Some("refinement failed, initial answer kept: HTTP 500"),
            ),
        ];
        let failures = [ModelOutcome::failed(
            "c",
            None,
            None,
            "unknown model c".into(),
        )];
        let phases = serde_json::to_value(phases(&successes, &failures)).unwrap();
        assert_eq!(phases["initial"][1]["response"], "b first");
        assert_eq!(
            phases["initial"][0]["metadata"],
            json!({"model": "a first-api", "provider": "openai", "response_time_ms": 1234, "finish_reason": "stop",
                   "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 17, "thinking_tokens": 2}})
        );
        let refined = &phases["refined"];
        assert_eq!(refined[0]["status"], "success");
        assert_eq!(refined[0]["refined_response"], "a second");
        assert_eq!(refined[0]["initial_response"], "a first");
        assert_eq!(refined[0]["refined_metadata"]["model"], "a second-api");
        assert_eq!(refined[1]["status"], "partial");
        assert_eq!(refined[1]["refined_response"], json!(null));
        assert!(
            refined[1]["refined_error"]
                .as_str()
                .unwrap()
                .contains("HTTP 500")
        );
        assert!(refined[1].get("refined_metadata").is_none());
        assert_eq!(
            phases["failed"],
            json!([{"model": "c", "status": "failed", "error": "unknown model c", "metadata": {}}])
        );
    }

    #[test]
    fn the_output_schema_has_no_format_a_validator_would_not_know() {
        let schema = serde_json::Value::Object(output_schema().as_ref().clone()).to_string();
        assert!(!schema.contains("\"format\""), "{schema}");
        assert!(schema.contains("\"phases\""));
    }

    #[test]
    fn without_a_refinement_round_there_is_no_refined_phase() {
        let successes = [answered("a", None, None)];
        let phases = serde_json::to_value(phases(&successes, &[])).unwrap();
        assert!(phases.get("refined").is_none(), "{phases}");
    }
}
