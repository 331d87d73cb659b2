//! `consensus`: several models answer independently in parallel, then each sees
//! the others' answers and refines its own. Wall time is the slowest model per
//! phase, never the sum; one model failing never sinks the others.
//!
//! In roundtable mode the models answer one after another instead, each seeing
//! the answers before it; a call is one lap, and a continuation adds another.

use std::time::Instant;

use futures::future::join_all;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::consensus_result::{Answer, ModelOutcome, Report, Settings};
use super::params::{SharedParams, Wording};
use super::progress::Progress;
use super::prompts::Stance;
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
    /// "parallel" (default): all models answer independently at once, then refine after seeing the others'. "roundtable": they answer one after another in the given order, each seeing the question and the answers before it, with no refinement round; one lap per call, continue the discussion with continuation_id.
    #[serde(default)]
    pub mode: Option<Mode>,
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

    /// Notes on arguments roundtable mode does not use. They are ignored rather
    /// than refused because clients written for 1.3.2 send
    /// `enable_cross_feedback: true` out of habit; the note says why it had no effect.
    fn mode_notes(&self, mode: Mode) -> Vec<String> {
        let asked =
            self.enable_cross_feedback == Some(true) || self.cross_feedback_prompt.is_some();
        (mode == Mode::Roundtable && asked)
            .then(|| {
                "enable_cross_feedback and cross_feedback_prompt are ignored in roundtable mode: each model already sees the answers before it, so there is no separate refinement round".to_string()
            })
            .into_iter()
            .collect()
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

/// How the models of one call answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Parallel,
    Roundtable,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parallel => "parallel",
            Self::Roundtable => "roundtable",
        }
    }

    /// The system prompt every model of this mode starts from.
    fn system(self) -> &'static str {
        match self {
            Self::Parallel => prompts::CONSENSUS,
            Self::Roundtable => prompts::ROUNDTABLE,
        }
    }
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
    stance: Option<Stance>,
    /// The mode's system prompt with this model's stance: both phases use it.
    system: String,
}

/// What every model of one lap answers: the conversation so far and the new
/// question, in the plan's order.
struct Lap<'a> {
    planned: &'a [Planned],
    history: &'a [Message],
    user: &'a Message,
    cancel: &'a CancellationToken,
    /// A step per answer, and one when the cross-feedback round starts.
    progress: &'a Progress,
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

/// The progress message of a phase-1 (or roundtable) answer.
fn answered_or_failed<T>(model: &str, result: &Result<T, String>) -> String {
    match result {
        Ok(_) => format!("{model} answered"),
        Err(_) => format!("{model} failed"),
    }
}

/// The failed models as a list, for an error that names every reason.
fn failure_list(failures: &[ModelOutcome]) -> String {
    let reasons: Vec<String> = failures
        .iter()
        .map(|o| format!("- {}: {}", o.requested, o.error.as_deref().unwrap_or("")))
        .collect();
    reasons.join("\n")
}

/// Every model's stance, in order; any unusable one fails the call before a
/// model is asked, naming each bad entry.
fn stances(specs: &[ModelSpec]) -> Result<Vec<Option<Stance>>, Failure> {
    let mut stances = Vec::new();
    let mut problems = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        match spec.stance() {
            Ok(stance) => stances.push(stance),
            Err(why) => problems.push(format!("- models[{i}] ({}): stance {why}", spec.name())),
        }
    }
    if problems.is_empty() {
        return Ok(stances);
    }
    Err(Failure::Error(format!(
        "consensus was not called because of unusable stances:\n{}",
        problems.join("\n")
    )))
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
        progress: Progress,
    ) -> Option<ToolOutput> {
        super::reply(self.run_consensus(params, owner, &cancel, &progress).await)
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
        stances: Vec<Option<Stance>>,
        settings: CallSettings,
        mode: Mode,
    ) -> (Vec<Planned>, Vec<ModelOutcome>) {
        let mut planned = Vec::new();
        let mut failed = Vec::new();
        let mut autos = 0;
        for (spec, stance) in specs.into_iter().zip(stances) {
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
                    system: prompts::with_stance(mode.system(), stance.as_ref()),
                    stance,
                }),
                Err(e) => failed.push(ModelOutcome::failed(&name, None, stance, e.to_string())),
            }
        }
        (planned, failed)
    }

    /// The models' answers (both phases, or one roundtable lap), then every
    /// final answer stored as one conversation turn. Fails only when no model
    /// answered; `Err(Failure::Cancelled)` means the client cancelled.
    async fn run_consensus(
        &self,
        params: ConsensusParams,
        owner: Owner,
        cancel: &CancellationToken,
        progress: &Progress,
    ) -> Result<ToolOutput, Failure> {
        params.check_arguments()?;
        let shared = &params.shared;
        let prompt = shared.question()?;
        check_model_count(params.models.as_deref())?;
        let mode = params.mode.unwrap_or_default();
        let settings = shared.settings();
        let specs = self.requested(params.models.clone());
        let stances = stances(&specs)?;
        let cross_feedback = mode == Mode::Parallel && params.enable_cross_feedback.unwrap_or(true);
        let reported_settings = Settings {
            enable_cross_feedback: cross_feedback,
            temperature: settings.temperature,
            models_requested: specs.iter().map(|s| s.name().to_string()).collect(),
        };
        let (planned, unusable) = self.plan(specs, stances, settings, mode);
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
        // Retired 1.3.2 models' notices first: they say who really answered.
        let mut notes: Vec<String> = planned
            .iter()
            .filter_map(|p| p.resolved.notice.clone())
            .collect();
        notes.extend(params.mode_notes(mode));
        notes.extend(note);
        let user = self
            .user_turn(&params.files(), &shared.images, prompt)
            .await?;
        let lap = Lap {
            planned: &planned,
            history: &history,
            user: &user,
            cancel,
            progress,
        };
        let (successes, mut failures) = match mode {
            Mode::Parallel => {
                let instructions = params.cross_feedback_prompt.as_deref();
                let refine = cross_feedback.then_some(instructions);
                self.parallel(&lap, prompt, refine, &mut notes).await?
            }
            Mode::Roundtable => self.roundtable(&lap, &mut notes).await?,
        };
        // 1.3.2's order: the models that failed to answer, then those never asked.
        failures.extend(unusable);
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
            mode,
        };
        Ok(super::consensus_result::consensus_output(
            &report,
            self.max_output_tokens,
        ))
    }

    /// Parallel mode: every model answers at once, then, when `refine` holds the
    /// caller's `cross_feedback_prompt` (or `None` for the built-in one) and at
    /// least two answered, each refines its answer. The models that answered and
    /// those that failed, each in plan order.
    async fn parallel(
        &self,
        lap: &Lap<'_>,
        prompt: &str,
        refine: Option<Option<&str>>,
        notes: &mut Vec<String>,
    ) -> Result<(Vec<ModelOutcome>, Vec<ModelOutcome>), Failure> {
        let n = u32::try_from(lap.planned.len()).unwrap_or(u32::MAX);
        // Answers, the start of the refinement round, refined answers (the total shrinks to
        // what happens when there is no refinement round).
        lap.progress
            .set_total(if refine.is_some() { 2 * n + 1 } else { n });
        let results = self.initial_answers(lap).await?;
        let mut sorted = Sorted::default();
        for (model, result) in lap.planned.iter().zip(results) {
            sorted.add(model, result, notes);
        }
        let Sorted {
            mut answered,
            failures,
        } = sorted;
        match (refine, answered.len()) {
            (Some(instructions), 2..) => {
                lap.progress.step("cross-feedback round started");
                self.cross_feedback(&mut answered, prompt, instructions, lap)
                    .await?;
            }
            (Some(_), 1) => {
                notes.push("only one model answered, so there was no cross-feedback round".into());
            }
            _ => {}
        }
        Ok((answered.into_iter().map(|a| a.outcome).collect(), failures))
    }

    /// Roundtable mode: the models answer one after another in plan order, each
    /// seeing the answers given before it in this lap (earlier laps are in the
    /// history). A model that fails is reported and the lap goes on without it.
    async fn roundtable(
        &self,
        lap: &Lap<'_>,
        notes: &mut Vec<String>,
    ) -> Result<(Vec<ModelOutcome>, Vec<ModelOutcome>), Failure> {
        let mut sorted = Sorted::default();
        lap.progress
            .set_total(u32::try_from(lap.planned.len()).unwrap_or(u32::MAX));
        for model in lap.planned {
            let earlier: Vec<(String, String)> = sorted
                .answered
                .iter()
                .map(|a| {
                    let o = &a.outcome;
                    (o.label(), o.final_answer().unwrap_or_default().to_string())
                })
                .collect();
            let user = with_earlier_answers(lap.user, &earlier);
            let result = self
                .initial_answer(model, lap.history, &user, lap.cancel)
                .await;
            if lap.cancel.is_cancelled() {
                return Err(Failure::Cancelled);
            }
            lap.progress.step(answered_or_failed(&model.name, &result));
            sorted.add(model, result, notes);
        }
        let outcomes = sorted.answered.into_iter().map(|a| a.outcome).collect();
        Ok((outcomes, sorted.failures))
    }

    /// Phase 1: every model answers independently, all at once, so the phase takes
    /// as long as the slowest model. Per model: the request it answered and the
    /// response, or why it failed.
    async fn initial_answers(
        &self,
        lap: &Lap<'_>,
    ) -> Result<Vec<Result<Initial, String>>, Failure> {
        let results = join_all(lap.planned.iter().map(|model| async move {
            let result = self
                .initial_answer(model, lap.history, lap.user, lap.cancel)
                .await;
            lap.progress.step(answered_or_failed(&model.name, &result));
            result
        }))
        .await;
        // Cancelled calls were reported as failures; the whole call ends here instead.
        if lap.cancel.is_cancelled() {
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
            system,
            ..
        } = planned;
        if super::has_images(user) && resolved.info.as_ref().is_some_and(|i| !i.images) {
            return Err(format!("model {} does not accept images", resolved.model));
        }
        let mut messages = history.to_vec();
        messages.push(user.clone());
        super::fit_context(&mut messages, system, resolved)?;
        let (request, notes) = build_request(resolved, system, messages, settings);
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
        lap: &Lap<'_>,
    ) -> Result<(), Failure> {
        let (cancel, progress) = (lap.cancel, lap.progress);
        let answers: Vec<(String, String)> = answered
            .iter()
            .map(|a| {
                let o = &a.outcome;
                let initial = o.initial.as_ref().map(|i| i.text.clone());
                (o.label(), initial.unwrap_or_default())
            })
            .collect();
        let metrics = self.metrics.as_ref();
        let results = join_all(answered.iter().enumerate().map(|(i, a)| {
            let request = refinement_request(a, i, &answers, prompt, instructions);
            async move {
                let result = timed_call(metrics, a.resolved, &request, cancel).await;
                progress.step(format!("{} refined its answer", a.outcome.label()));
                result
            }
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
            .map(|o| format!("## {}\n{}\n", o.label(), o.final_answer().unwrap_or("")))
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

/// The question with the answers given before this model's turn appended, so
/// a roundtable participant answers in view of them.
fn with_earlier_answers(user: &Message, earlier: &[(String, String)]) -> Message {
    let mut turn = user.clone();
    if let Some(text) = prompts::earlier_answers(earlier) {
        turn.parts.push(crate::providers::Part::Text { text });
    }
    turn
}

/// First answers sorted into the models that answered and those that failed,
/// each in the order they were added.
#[derive(Default)]
struct Sorted<'p> {
    answered: Vec<Answered<'p>>,
    failures: Vec<ModelOutcome>,
}

impl<'p> Sorted<'p> {
    /// Adds one model's first answer, or the failure it became; what its
    /// request left out goes to `notes`.
    fn add(
        &mut self,
        planned: &'p Planned,
        result: Result<Initial, String>,
        notes: &mut Vec<String>,
    ) {
        let Planned {
            name,
            resolved,
            stance,
            ..
        } = planned;
        let provider = Some(resolved.provider_name.clone());
        match result {
            Ok(Initial {
                request,
                answer,
                notes: adjusted,
            }) => {
                notes.extend(adjusted);
                self.answered.push(Answered {
                    resolved,
                    request,
                    outcome: ModelOutcome {
                        requested: name.clone(),
                        provider,
                        initial: Some(answer),
                        refined: None,
                        error: None,
                        stance: stance.clone(),
                    },
                });
            }
            Err(error) => {
                self.failures
                    .push(ModelOutcome::failed(name, provider, stance.clone(), error))
            }
        }
    }
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
