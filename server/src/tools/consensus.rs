//! `consensus`: several models answer independently in parallel, then each sees
//! the others' answers and refines its own. Wall time is the slowest model per
//! phase, never the sum; one model failing never sinks the others.

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::params::{SharedParams, Wording};
use super::{
    CallSettings, Engine, Failure, ModelEntry, ModelSpec, Owner, ToolOutput, args, build_request,
    call_provider, describe_provider_error, output, prompts,
};
use crate::conversation::Conversation;
use crate::providers::{ChatRequest, ChatResponse, Message, Role, Usage};
use crate::routing::ResolvedModel;

/// Parameters of the `consensus` tool.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct ConsensusParams {
    #[serde(flatten)]
    pub shared: SharedParams<ConsensusWording>,
    /// Models to consult, e.g. ["gpt-5", "gemini-2.5-pro", "sonnet"]. Each "auto" takes the next configured provider's default model; omitted means up to three providers' defaults.
    #[serde(default)]
    pub models: Option<Vec<ModelSpec>>,
    /// Run the refinement round where each model sees the others' answers (default true).
    #[serde(default)]
    pub enable_cross_feedback: Option<bool>,
    /// Your own instructions for the refinement round, replacing the built-in ones; the original question and the other models' answers still follow them.
    #[serde(default)]
    pub cross_feedback_prompt: Option<String>,
    /// Same as files (the name converse 1.3.2 used); when both are given, both lists are used.
    #[serde(default)]
    pub relevant_files: Vec<String>,
    /// Arguments consensus does not know; any fails the call (see [`super::args`]).
    #[serde(flatten)]
    #[schemars(skip)]
    pub unknown: args::Unknown,
}

impl ConsensusParams {
    /// The context files: `files` then `relevant_files`, each path once. Both
    /// given is merged, not refused: they mean the same thing, so a client that
    /// sends both (say, a 1.3.2 prompt template plus a new field) loses nothing.
    pub fn files(&self) -> Vec<String> {
        let mut files = self.shared.files.clone();
        for f in &self.relevant_files {
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
        files
    }

    /// Fails the call when an argument, or a key of a models object, is unknown.
    fn check_arguments(&self) -> Result<(), Failure> {
        let mut problems: Vec<String> =
            args::describe::<ConsensusParams>("consensus", &self.unknown)
                .into_iter()
                .collect();
        for (i, spec) in self.models.iter().flatten().enumerate() {
            if let ModelSpec::Object(entry) = spec {
                let place = format!("models[{i}] ({})", entry.model);
                problems.extend(args::describe::<ModelEntry>(&place, &entry.unknown));
            }
        }
        args::failure("consensus", problems)
    }
}

/// How `consensus` describes the parameters it shares with `chat`.
#[derive(Debug, Clone)]
pub struct ConsensusWording;

impl Wording for ConsensusWording {
    const PROMPT: &'static str = "The question, problem or proposal to get several opinions on.";
    const IMAGES: &'static str = "Images to include: paths or data:image/...;base64 URLs.";
    const CONTINUATION_ID: &'static str =
        "Continue an earlier conversation by its continuation_id.";
    const TEMPERATURE: &'static str = "Sampling temperature 0–1 (default 0.2).";
    const REASONING_EFFORT: &'static str =
        "Reasoning depth for models that think (default medium).";
    const USE_WEBSEARCH: &'static str =
        "Let models search the web where the provider offers it (default false).";
    const DEFAULT_TEMPERATURE: f32 = 0.2;
}

const DEFAULT_AUTO_MODELS: usize = 3;
/// More parallel calls than this is almost certainly a mistake and costs money.
const MAX_MODELS: usize = 10;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelOutcome {
    model: String,
    provider: Option<String>,
    /// `success`, `partial` (refinement failed) or `failed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    initial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refined: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    usage: Usage,
}

impl ModelOutcome {
    fn failed(model: &str, provider: Option<String>, error: String) -> Self {
        Self {
            model: model.to_string(),
            provider,
            status: "failed",
            initial: None,
            refined: None,
            error: Some(error),
            usage: Usage::default(),
        }
    }

    /// A phase-1 answer, before any refinement.
    fn answered(resolved: &ResolvedModel, response: &ChatResponse) -> Self {
        let mut outcome = Self {
            model: response.model.clone(),
            provider: Some(resolved.provider_name.clone()),
            status: "success",
            initial: Some(response.text.clone()),
            refined: None,
            error: None,
            usage: Usage::default(),
        };
        add_usage(&mut outcome.usage, &response.usage);
        outcome
    }

    fn final_answer(&self) -> Option<&str> {
        self.refined.as_deref().or(self.initial.as_deref())
    }
}

/// A model to consult: the name the caller gave, where it resolved to, and its
/// settings (the call's, or the model entry's own options).
struct Planned {
    name: String,
    resolved: ResolvedModel,
    settings: CallSettings,
}

/// A model that answered in phase 1: the request it answered (phase 2 continues
/// it) and its outcome so far.
struct Answered<'p> {
    resolved: &'p ResolvedModel,
    request: ChatRequest,
    outcome: ModelOutcome,
}

/// The failed models as a list, for an error that names every reason.
fn failure_list(failures: &[ModelOutcome]) -> String {
    let reasons: Vec<String> = failures
        .iter()
        .map(|o| format!("- {}: {}", o.model, o.error.as_deref().unwrap_or("")))
        .collect();
    reasons.join("\n")
}

/// Rejects an empty or oversized `models` list before any model is resolved.
fn check_model_count(models: Option<&[ModelSpec]>) -> Result<(), Failure> {
    if models.is_some_and(|m| m.is_empty()) {
        return Err(Failure::Error(
            "models must list at least one model (or be omitted for automatic choice)".into(),
        ));
    }
    if models.is_some_and(|m| m.len() > MAX_MODELS) {
        return Err(Failure::Error(format!(
            "at most {MAX_MODELS} models can be consulted at once"
        )));
    }
    Ok(())
}

fn add_usage(total: &mut Usage, more: &Usage) {
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

impl Engine {
    /// The `consensus` tool as the MCP layer calls it: `None` when the client
    /// cancelled, an error output when the call failed.
    pub async fn consensus(
        &self,
        params: ConsensusParams,
        owner: Owner,
        cancel: CancellationToken,
    ) -> Option<ToolOutput> {
        super::reply(self.run_consensus(params, owner, &cancel).await)
    }

    /// Resolves the requested models; `auto` entries take successive providers.
    fn plan(
        &self,
        specs: Option<Vec<ModelSpec>>,
        settings: CallSettings,
    ) -> (Vec<Planned>, Vec<ModelOutcome>) {
        let specs = specs.unwrap_or_else(|| {
            let n = self.router.available().len().clamp(1, DEFAULT_AUTO_MODELS);
            vec![ModelSpec::Name("auto".into()); n]
        });
        let mut planned = Vec::new();
        let mut failed = Vec::new();
        let mut autos = 0;
        for spec in specs {
            let name = spec.name().trim().to_string();
            let resolved = if name.is_empty() || name.eq_ignore_ascii_case("auto") {
                autos += 1;
                self.router.resolve_auto(autos - 1)
            } else {
                self.router.resolve(&name)
            };
            match resolved {
                Ok(resolved) => planned.push(Planned {
                    settings: spec.settings(settings),
                    name,
                    resolved,
                }),
                Err(e) => failed.push(ModelOutcome::failed(&name, None, e.to_string())),
            }
        }
        (planned, failed)
    }

    /// Both phases, then every final answer stored as one conversation turn.
    /// Fails only when no model answered; `Err(Failure::Cancelled)` means the
    /// client cancelled.
    async fn run_consensus(
        &self,
        params: ConsensusParams,
        owner: Owner,
        cancel: &CancellationToken,
    ) -> Result<ToolOutput, Failure> {
        params.check_arguments()?;
        let shared = &params.shared;
        let prompt = shared.question()?;
        check_model_count(params.models.as_deref())?;
        let settings = shared.settings();
        let files = params.files();
        let (planned, mut failures) = self.plan(params.models, settings);
        if planned.is_empty() {
            return Err(Failure::Error(format!(
                "none of the requested models can be used:\n{}",
                failure_list(&failures)
            )));
        }
        let (id, history, note) = self
            .load_conversation(shared.continuation_id.as_deref(), &owner)
            .await
            .map_err(Failure::Error)?;
        let mut notes: Vec<String> = note.into_iter().collect();
        let user = self.user_turn(&files, &shared.images, prompt).await?;

        let results = self
            .initial_answers(&planned, &history, &user, cancel)
            .await?;
        let mut answered = sort_initial_answers(&planned, results, &mut failures);
        let cross_feedback = params.enable_cross_feedback.unwrap_or(true);
        if cross_feedback && answered.len() >= 2 {
            let instructions = params.cross_feedback_prompt.as_deref();
            self.cross_feedback(&mut answered, prompt, instructions, cancel)
                .await?;
        } else if cross_feedback && answered.len() == 1 {
            notes.push("only one model answered, so there was no cross-feedback round".into());
        }

        let successes: Vec<ModelOutcome> = answered.into_iter().map(|a| a.outcome).collect();
        if successes.is_empty() {
            return Err(Failure::Error(format!(
                "every model failed:\n{}",
                failure_list(&failures)
            )));
        }
        let message_count = self
            .save_consensus(&id, history, user, &successes, owner, &mut notes)
            .await;
        Ok(consensus_output(
            &id,
            &successes,
            &failures,
            notes,
            message_count,
            self.max_output_tokens,
        ))
    }

    /// Phase 1: every model answers independently, all at once, so the phase takes
    /// as long as the slowest model. Per model: the request it answered and the
    /// response, or why it failed.
    async fn initial_answers(
        &self,
        planned: &[Planned],
        history: &[Message],
        user: &Message,
        cancel: &CancellationToken,
    ) -> Result<Vec<Result<(ChatRequest, ChatResponse), String>>, Failure> {
        let results = join_all(
            planned
                .iter()
                .map(|model| self.initial_answer(model, history, user, cancel)),
        )
        .await;
        // Cancelled calls were reported as failures; the whole call ends here instead.
        if cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        Ok(results)
    }

    /// One model's phase-1 call. A model that cannot take the prompt (images,
    /// context window) fails alone without a provider call.
    async fn initial_answer(
        &self,
        planned: &Planned,
        history: &[Message],
        user: &Message,
        cancel: &CancellationToken,
    ) -> Result<(ChatRequest, ChatResponse), String> {
        let Planned {
            name,
            resolved,
            settings,
        } = planned;
        if super::has_images(user) && resolved.info.as_ref().is_some_and(|i| !i.images) {
            return Err(format!("model {} does not accept images", resolved.model));
        }
        let mut messages = history.to_vec();
        messages.push(user.clone());
        super::fit_context(&mut messages, prompts::CONSENSUS, resolved)?;
        let (request, _) = build_request(resolved, prompts::CONSENSUS, messages, settings);
        match call_provider(&self.metrics, resolved, &request, cancel).await {
            // Cancellation is checked once all calls have stopped.
            None => Err("cancelled".to_string()),
            Some(Ok(response)) => Ok((request, response)),
            Some(Err(e)) => Err(describe_provider_error(&resolved.provider_name, name, &e)),
        }
    }

    /// Phase 2: each model refines its answer after seeing the others' (not its
    /// own, which is already its previous turn, so user/assistant keep alternating).
    /// A model whose refinement fails keeps its initial answer as `partial`.
    /// `instructions` is the caller's `cross_feedback_prompt`.
    async fn cross_feedback(
        &self,
        answered: &mut [Answered<'_>],
        prompt: &str,
        instructions: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<(), Failure> {
        let answers: Vec<(String, String)> = answered
            .iter()
            .map(|a| {
                let o = &a.outcome;
                (o.model.clone(), o.initial.clone().unwrap_or_default())
            })
            .collect();
        let metrics = self.metrics.as_ref();
        let results = join_all(answered.iter().enumerate().map(|(i, a)| {
            let request = refinement_request(a, i, &answers, prompt, instructions);
            async move { call_provider(metrics, a.resolved, &request, cancel).await }
        }))
        .await;
        if cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        for (a, result) in answered.iter_mut().zip(results) {
            let outcome = &mut a.outcome;
            match result {
                Some(Ok(response)) => {
                    outcome.refined = Some(response.text);
                    add_usage(&mut outcome.usage, &response.usage);
                }
                Some(Err(e)) => {
                    outcome.status = "partial";
                    outcome.error = Some(format!(
                        "refinement failed, initial answer kept: {}",
                        describe_provider_error(&a.resolved.provider_name, &outcome.model, &e)
                    ));
                }
                None => return Err(Failure::Cancelled),
            }
        }
        Ok(())
    }

    /// Stores the question and every final answer as one turn, so a follow-up
    /// call (chat or consensus) sees them all. Returns the conversation's length.
    async fn save_consensus(
        &self,
        id: &str,
        history: Vec<Message>,
        user: Message,
        successes: &[ModelOutcome],
        owner: Owner,
        notes: &mut Vec<String>,
    ) -> usize {
        let combined: String = successes
            .iter()
            .map(|o| format!("## {}\n{}\n", o.model, o.final_answer().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n");
        let mut messages = history;
        messages.push(user);
        messages.push(super::text_message(Role::Assistant, combined));
        let message_count = messages.len();
        let provider_names: Vec<String> = successes
            .iter()
            .filter_map(|o| o.provider.clone())
            .collect();
        let conversation = Conversation {
            messages,
            provider: provider_names.join(","),
            model: model_names(successes),
            owner,
        };
        self.save_conversation(id, conversation, notes).await;
        message_count
    }
}

/// Phase-1 results split into the models that answered (in plan order) and the
/// failures, which join those of planning.
fn sort_initial_answers<'p>(
    planned: &'p [Planned],
    results: Vec<Result<(ChatRequest, ChatResponse), String>>,
    failures: &mut Vec<ModelOutcome>,
) -> Vec<Answered<'p>> {
    let mut answered = Vec::new();
    for (Planned { name, resolved, .. }, result) in planned.iter().zip(results) {
        match result {
            Ok((request, response)) => answered.push(Answered {
                resolved,
                request,
                outcome: ModelOutcome::answered(resolved, &response),
            }),
            Err(error) => failures.push(ModelOutcome::failed(
                name,
                Some(resolved.provider_name.clone()),
                error,
            )),
        }
    }
    answered
}

/// Phase 1's request of the `i`th model continued by its own answer and the
/// refinement question that shows it the others' answers.
fn refinement_request(
    answered: &Answered<'_>,
    i: usize,
    answers: &[(String, String)],
    prompt: &str,
    instructions: Option<&str>,
) -> ChatRequest {
    let others: Vec<(String, String)> = answers
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, a)| a.clone())
        .collect();
    let mut request = answered.request.clone();
    request.messages.push(super::text_message(
        Role::Assistant,
        answered.outcome.initial.clone().unwrap_or_default(),
    ));
    request.messages.push(super::text_message(
        Role::User,
        prompts::refinement(prompt, &others, instructions),
    ));
    request
}

/// The consulted models that answered, as `a,b,c`.
fn model_names(successes: &[ModelOutcome]) -> String {
    successes
        .iter()
        .map(|o| o.model.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Every answer and failure within the output cap, then the footer with the
/// continuation id; the structured part lists each model's outcome.
fn consensus_output(
    id: &str,
    successes: &[ModelOutcome],
    failures: &[ModelOutcome],
    notes: Vec<String>,
    message_count: usize,
    max_output_tokens: usize,
) -> ToolOutput {
    let mut total_usage = Usage::default();
    for o in successes {
        add_usage(&mut total_usage, &o.usage);
    }
    let refined = successes.iter().filter(|o| o.refined.is_some()).count();
    let footer = super::chat::footer(
        id,
        "consensus",
        &format!("{} models", successes.len()),
        &notes,
    );
    let body = render(successes, failures, refined);
    let content = output::cap(&body, max_output_tokens, footer.len() + 200);
    let all: Vec<&ModelOutcome> = successes.iter().chain(failures.iter()).collect();
    ToolOutput {
        text: format!("{content}{footer}"),
        structured: json!({
            "status": "consensus_complete",
            "content": content,
            "models": all,
            "successful": successes.len(),
            "failed": failures.len(),
            "refined": refined,
            "continuation": {
                "id": id,
                "provider": "consensus",
                "model": model_names(successes),
                "messageCount": message_count,
            },
            "usage": total_usage,
            "notes": notes,
        }),
        is_error: false,
    }
}

fn render(successes: &[ModelOutcome], failures: &[ModelOutcome], refined: usize) -> String {
    let mut text = format!(
        "# Consensus: {} of {} models answered{}\n",
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
            "\n## {} ({})\n",
            o.model,
            o.provider.as_deref().unwrap_or("?")
        ));
        match (&o.refined, &o.initial) {
            (Some(refined), Some(initial)) => {
                text.push_str(&format!(
                    "### Refined answer\n{refined}\n\n### Initial answer\n{initial}\n"
                ));
            }
            (None, Some(initial)) => text.push_str(&format!("{initial}\n")),
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
                o.model,
                o.error.as_deref().unwrap_or("failed")
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ReasoningEffort;

    fn params(args: serde_json::Value) -> ConsensusParams {
        serde_json::from_value(args).expect("valid consensus arguments")
    }

    #[test]
    fn relevant_files_is_an_alias_merged_with_files() {
        let p = params(json!({"prompt": "q", "relevant_files": ["b.md", "a.md"]}));
        assert_eq!(p.files(), ["b.md", "a.md"]);
        let p =
            params(json!({"prompt": "q", "files": ["a.md"], "relevant_files": ["b.md", "a.md"]}));
        assert_eq!(p.files(), ["a.md", "b.md"]);
    }

    #[test]
    fn a_model_entry_overrides_the_call_settings_for_that_model_only() {
        let p = params(json!({"prompt": "q", "models": [
            "gpt-5",
            {"model": "o3", "temperature": 0.9, "reasoning_effort": "high", "use_websearch": true},
            {"model": "sonnet", "temperature": 0.7},
        ]}));
        let call = p.shared.settings();
        let settings: Vec<CallSettings> = p
            .models
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| m.settings(call))
            .collect();
        assert_eq!(settings[0], call);
        assert_eq!(
            settings[1],
            CallSettings {
                temperature: 0.9,
                effort: Some(ReasoningEffort::High),
                web_search: true
            }
        );
        assert_eq!(
            settings[2],
            CallSettings {
                temperature: 0.7,
                ..call
            }
        );
    }
}
