//! `consensus`: several models answer independently in parallel, then each sees
//! the others' answers and refines its own. Wall time is the slowest model per
//! phase, never the sum; one model failing never sinks the others.

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{
    CallSettings, Engine, Failure, ModelSpec, Owner, ToolOutput, build_request, call_provider,
    describe_provider_error, output, prompts,
};
use crate::catalog::ReasoningEffort;
use crate::conversation::Conversation;
use crate::providers::{Message, Part, Role, Usage};
use crate::routing::ResolvedModel;

/// Parameters of the `consensus` tool.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
pub struct ConsensusParams {
    /// The question, problem or proposal to get several opinions on.
    pub prompt: String,
    /// Models to consult, e.g. ["gpt-5", "gemini-2.5-pro", "sonnet"]. Each "auto" takes the next configured provider's default model; omitted means up to three providers' defaults.
    #[serde(default)]
    pub models: Option<Vec<ModelSpec>>,
    /// Files to include as context: paths (under the server's allowed root), data: URLs, or multi-line inline text.
    #[serde(default)]
    pub files: Vec<String>,
    /// Images to include: paths or data:image/...;base64 URLs.
    #[serde(default)]
    pub images: Vec<String>,
    /// Continue an earlier conversation by its continuation_id.
    #[serde(default)]
    pub continuation_id: Option<String>,
    /// Run the refinement round where each model sees the others' answers (default true).
    #[serde(default)]
    pub enable_cross_feedback: Option<bool>,
    /// Sampling temperature 0–1 (default 0.2).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Reasoning depth for models that think (default medium).
    #[serde(default)]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Let models search the web where the provider offers it (default false).
    #[serde(default)]
    pub use_websearch: Option<bool>,
}

const DEFAULT_TEMPERATURE: f32 = 0.2;
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

    fn final_answer(&self) -> Option<&str> {
        self.refined.as_deref().or(self.initial.as_deref())
    }
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
    pub async fn consensus(
        &self,
        params: ConsensusParams,
        owner: Owner,
        cancel: CancellationToken,
    ) -> Option<ToolOutput> {
        Some(match self.consensus_inner(params, owner, &cancel).await {
            Ok(out) => out,
            Err(Failure::Cancelled) => return None,
            Err(Failure::Error(message)) => ToolOutput::error(message),
        })
    }

    /// Resolves the requested models; `auto` entries take successive providers.
    fn plan(
        &self,
        specs: Option<Vec<ModelSpec>>,
    ) -> (Vec<(String, ResolvedModel)>, Vec<ModelOutcome>) {
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
                Ok(r) => planned.push((name, r)),
                Err(e) => failed.push(ModelOutcome::failed(&name, None, e.to_string())),
            }
        }
        (planned, failed)
    }

    async fn consensus_inner(
        &self,
        params: ConsensusParams,
        owner: Owner,
        cancel: &CancellationToken,
    ) -> Result<ToolOutput, Failure> {
        let prompt = params.prompt.trim().to_string();
        if prompt.is_empty() {
            return Err(Failure::Error("prompt must not be empty".into()));
        }
        if params.models.as_ref().is_some_and(|m| m.is_empty()) {
            return Err(Failure::Error(
                "models must list at least one model (or be omitted for automatic choice)".into(),
            ));
        }
        if params.models.as_ref().is_some_and(|m| m.len() > MAX_MODELS) {
            return Err(Failure::Error(format!(
                "at most {MAX_MODELS} models can be consulted at once"
            )));
        }
        let (planned, mut outcomes) = self.plan(params.models);
        if planned.is_empty() {
            let reasons: Vec<String> = outcomes
                .iter()
                .map(|o| format!("- {}: {}", o.model, o.error.as_deref().unwrap_or("")))
                .collect();
            return Err(Failure::Error(format!(
                "none of the requested models can be used:\n{}",
                reasons.join("\n")
            )));
        }
        let (id, history, note) = self
            .load_conversation(params.continuation_id.as_deref(), &owner)
            .await
            .map_err(Failure::Error)?;
        let mut notes: Vec<String> = note.into_iter().collect();
        let attachments = self
            .attachments(&params.files, &params.images)
            .map_err(Failure::Error)?;
        let user = super::user_message(attachments, &prompt);
        let settings = CallSettings {
            temperature: params.temperature.unwrap_or(DEFAULT_TEMPERATURE),
            effort: params.reasoning_effort,
            web_search: params.use_websearch.unwrap_or(false),
        };

        let metrics = self.metrics.as_ref();

        // Phase 1: every model independently, all at once.
        let phase1 = join_all(planned.iter().map(|(name, resolved)| {
            let mut messages = history.clone();
            messages.push(user.clone());
            let (settings, user) = (&settings, &user);
            async move {
                if super::has_images(user) && resolved.info.as_ref().is_some_and(|i| !i.images) {
                    return Err(format!("model {} does not accept images", resolved.model));
                }
                super::fit_context(&mut messages, prompts::CONSENSUS, resolved)?;
                let (request, _) = build_request(resolved, prompts::CONSENSUS, messages, settings);
                match call_provider(metrics, resolved, &request, cancel).await {
                    // Cancellation is checked once all calls have stopped.
                    None => Err("cancelled".to_string()),
                    Some(Ok(response)) => Ok((request, response)),
                    Some(Err(e)) => Err(describe_provider_error(&resolved.provider_name, name, &e)),
                }
            }
        }))
        .await;
        if cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }

        let mut succeeded = Vec::new();
        for ((name, resolved), result) in planned.iter().zip(phase1) {
            match result {
                Ok((request, response)) => {
                    let mut outcome = ModelOutcome {
                        model: response.model.clone(),
                        provider: Some(resolved.provider_name.clone()),
                        status: "success",
                        initial: Some(response.text.clone()),
                        refined: None,
                        error: None,
                        usage: Usage::default(),
                    };
                    add_usage(&mut outcome.usage, &response.usage);
                    succeeded.push((resolved, request, outcome));
                }
                Err(error) => outcomes.push(ModelOutcome::failed(
                    name,
                    Some(resolved.provider_name.clone()),
                    error,
                )),
            }
        }

        // Phase 2: each model refines, seeing the others' answers (not its own,
        // which is already its previous turn, so user/assistant keep alternating).
        let cross_feedback = params.enable_cross_feedback.unwrap_or(true);
        if cross_feedback && succeeded.len() >= 2 {
            let answers: Vec<(String, String)> = succeeded
                .iter()
                .map(|(_, _, o)| (o.model.clone(), o.initial.clone().unwrap_or_default()))
                .collect();
            let phase2 = join_all(succeeded.iter().enumerate().map(
                |(i, (resolved, request, outcome))| {
                    let others: Vec<(String, String)> = answers
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, a)| a.clone())
                        .collect();
                    let mut request = request.clone();
                    request.messages.push(Message {
                        role: Role::Assistant,
                        parts: vec![Part::Text {
                            text: outcome.initial.clone().unwrap_or_default(),
                        }],
                    });
                    request.messages.push(Message {
                        role: Role::User,
                        parts: vec![Part::Text {
                            text: prompts::refinement(&prompt, &others),
                        }],
                    });
                    async move { call_provider(metrics, resolved, &request, cancel).await }
                },
            ))
            .await;
            if cancel.is_cancelled() {
                return Err(Failure::Cancelled);
            }
            for ((resolved, _, outcome), result) in succeeded.iter_mut().zip(phase2) {
                match result {
                    Some(Ok(response)) => {
                        outcome.refined = Some(response.text);
                        add_usage(&mut outcome.usage, &response.usage);
                    }
                    Some(Err(e)) => {
                        outcome.status = "partial";
                        outcome.error = Some(format!(
                            "refinement failed, initial answer kept: {}",
                            describe_provider_error(&resolved.provider_name, &outcome.model, &e)
                        ));
                    }
                    None => return Err(Failure::Cancelled),
                }
            }
        } else if cross_feedback && succeeded.len() == 1 {
            notes.push("only one model answered, so there was no cross-feedback round".into());
        }

        let successes: Vec<ModelOutcome> = succeeded.into_iter().map(|(_, _, o)| o).collect();
        if successes.is_empty() {
            let reasons: Vec<String> = outcomes
                .iter()
                .map(|o| format!("- {}: {}", o.model, o.error.as_deref().unwrap_or("")))
                .collect();
            return Err(Failure::Error(format!(
                "every model failed:\n{}",
                reasons.join("\n")
            )));
        }

        // The conversation keeps every final answer, so a follow-up turn sees them.
        let combined: String = successes
            .iter()
            .map(|o| format!("## {}\n{}\n", o.model, o.final_answer().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n");
        let mut messages = history;
        messages.push(user);
        messages.push(Message {
            role: Role::Assistant,
            parts: vec![Part::Text { text: combined }],
        });
        let message_count = messages.len();
        let provider_names: Vec<String> = successes
            .iter()
            .filter_map(|o| o.provider.clone())
            .collect();
        let saved = self
            .store
            .save(
                &id,
                Conversation {
                    messages,
                    provider: provider_names.join(","),
                    model: successes
                        .iter()
                        .map(|o| o.model.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    owner,
                },
            )
            .await;
        if let Err(e) = saved {
            tracing::warn!(error = %e, "could not save conversation");
            notes.push("the conversation could not be saved, so it cannot be continued".into());
        }

        let mut total_usage = Usage::default();
        for o in &successes {
            add_usage(&mut total_usage, &o.usage);
        }
        let refined = successes.iter().filter(|o| o.refined.is_some()).count();
        let footer = super::chat::footer(
            &id,
            "consensus",
            &format!("{} models", successes.len()),
            &notes,
        );
        let body = render(&successes, &outcomes, refined);
        let content = output::cap(&body, self.max_output_tokens, footer.len() + 200);
        let all: Vec<&ModelOutcome> = successes.iter().chain(outcomes.iter()).collect();
        Ok(ToolOutput {
            text: format!("{content}{footer}"),
            structured: json!({
                "status": "consensus_complete",
                "content": content,
                "models": all,
                "successful": successes.len(),
                "failed": outcomes.len(),
                "refined": refined,
                "continuation": {
                    "id": id,
                    "provider": "consensus",
                    "model": successes.iter().map(|o| o.model.as_str()).collect::<Vec<_>>().join(","),
                    "messageCount": message_count,
                },
                "usage": total_usage,
                "notes": notes,
            }),
            is_error: false,
        })
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
