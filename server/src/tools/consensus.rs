//! `consensus`: several models answer independently in parallel, then each sees
//! the others' answers and refines its own. Wall time is the slowest model per
//! phase, never the sum; one model failing never sinks the others.

use std::time::Instant;

use futures::future::join_all;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::consensus_result::{Answer, ModelOutcome, Report, Settings};
use super::params::{SharedParams, Wording};
use super::{
    CallSettings, Engine, Failure, ModelEntry, ModelSpec, Owner, ToolOutput, args, build_request,
    call_provider, describe_provider_error, prompts,
};
use crate::conversation::Conversation;
use crate::metrics::Metrics;
use crate::providers::{ChatRequest, Message, ProviderError, Role};
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

/// A model to consult: the name the caller gave, where it resolved to, and its
/// settings (the call's, or the model entry's own options).
struct Planned {
    name: String,
    resolved: ResolvedModel,
    settings: CallSettings,
}

/// A phase-1 answer as the call returns it: the request it answered and the
/// notes on settings the model could not take (see [`build_request`]).
struct Initial {
    request: ChatRequest,
    answer: Answer,
    notes: Vec<String>,
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
        .map(|o| format!("- {}: {}", o.requested, o.error.as_deref().unwrap_or("")))
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

    /// The models to consult: those requested, or `auto` for up to three providers.
    fn requested(&self, specs: Option<Vec<ModelSpec>>) -> Vec<ModelSpec> {
        specs.unwrap_or_else(|| {
            let n = self.router.available().len().clamp(1, DEFAULT_AUTO_MODELS);
            vec![ModelSpec::Name("auto".into()); n]
        })
    }

    /// Resolves the requested models; `auto` entries take successive providers.
    fn plan(
        &self,
        specs: Vec<ModelSpec>,
        settings: CallSettings,
    ) -> (Vec<Planned>, Vec<ModelOutcome>) {
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
        let specs = self.requested(params.models);
        let cross_feedback = params.enable_cross_feedback.unwrap_or(true);
        let reported_settings = Settings {
            enable_cross_feedback: cross_feedback,
            temperature: settings.temperature,
            models_requested: specs.iter().map(|s| s.name().to_string()).collect(),
        };
        let (planned, unusable) = self.plan(specs, settings);
        if planned.is_empty() {
            return Err(Failure::Error(format!(
                "none of the requested models can be used:\n{}",
                failure_list(&unusable)
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
        let (mut answered, mut failures) = sort_initial_answers(&planned, results, &mut notes);
        // 1.3.2's order: the models that failed to answer, then those never asked.
        failures.extend(unusable);
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
        let report = Report {
            id,
            successes,
            failures,
            notes,
            message_count,
            settings: reported_settings,
        };
        Ok(super::consensus_result::consensus_output(
            &report,
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
    ) -> Result<Vec<Result<Initial, String>>, Failure> {
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
    ) -> Result<Initial, String> {
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
        let (request, notes) = build_request(resolved, prompts::CONSENSUS, messages, settings);
        match timed_call(&self.metrics, resolved, &request, cancel).await {
            // Cancellation is checked once all calls have stopped.
            None => Err("cancelled".to_string()),
            Some(Ok(answer)) => Ok(Initial {
                request,
                answer,
                notes,
            }),
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
                let initial = o.initial.as_ref().map(|i| i.text.clone());
                (o.model().to_string(), initial.unwrap_or_default())
            })
            .collect();
        let metrics = self.metrics.as_ref();
        let results = join_all(answered.iter().enumerate().map(|(i, a)| {
            let request = refinement_request(a, i, &answers, prompt, instructions);
            async move { timed_call(metrics, a.resolved, &request, cancel).await }
        }))
        .await;
        if cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        for (a, result) in answered.iter_mut().zip(results) {
            let outcome = &mut a.outcome;
            match result {
                Some(Ok(answer)) => outcome.refined = Some(answer),
                Some(Err(e)) => {
                    let why =
                        describe_provider_error(&a.resolved.provider_name, outcome.model(), &e);
                    outcome.error = Some(format!("refinement failed, initial answer kept: {why}"));
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
            .map(|o| format!("## {}\n{}\n", o.model(), o.final_answer().unwrap_or("")))
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
            model: super::consensus_result::model_names(successes),
            owner,
        };
        self.save_conversation(id, conversation, notes).await;
        message_count
    }
}

/// One provider call, timed for the answer's metadata. `None` means cancelled.
async fn timed_call(
    metrics: &Metrics,
    resolved: &ResolvedModel,
    request: &ChatRequest,
    cancel: &CancellationToken,
) -> Option<Result<Answer, ProviderError>> {
    let started = Instant::now();
    let result = call_provider(metrics, resolved, request, cancel).await?;
    Some(result.map(|response| Answer::new(response, started.elapsed())))
}

/// Phase-1 results split into the models that answered and those that failed,
/// each in plan order; what the answered requests left out goes to `notes`.
fn sort_initial_answers<'p>(
    planned: &'p [Planned],
    results: Vec<Result<Initial, String>>,
    notes: &mut Vec<String>,
) -> (Vec<Answered<'p>>, Vec<ModelOutcome>) {
    let mut answered = Vec::new();
    let mut failures = Vec::new();
    for (Planned { name, resolved, .. }, result) in planned.iter().zip(results) {
        match result {
            Ok(Initial {
                request,
                answer,
                notes: adjusted,
            }) => {
                notes.extend(adjusted);
                answered.push(Answered {
                    resolved,
                    request,
                    outcome: ModelOutcome {
                        requested: name.clone(),
                        provider: Some(resolved.provider_name.clone()),
                        initial: Some(answer),
                        refined: None,
                        error: None,
                    },
                });
            }
            Err(error) => failures.push(ModelOutcome::failed(
                name,
                Some(resolved.provider_name.clone()),
                error,
            )),
        }
    }
    (answered, failures)
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
        answered
            .outcome
            .initial
            .as_ref()
            .map(|a| a.text.clone())
            .unwrap_or_default(),
    ));
    request.messages.push(super::text_message(
        Role::User,
        prompts::refinement(prompt, &others, instructions),
    ));
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ReasoningEffort;
    use serde_json::json;

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
            {"model": "o3", "temperature": 0.9, "reasoning_effort": "xhigh", "use_websearch": true, "verbosity": "low"},
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
                effort: Some(ReasoningEffort::XHigh),
                web_search: true,
                verbosity: Some(crate::tools::params::Verbosity::Low),
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
