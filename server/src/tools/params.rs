//! The parameters `chat` and `consensus` share: the question, its attachments,
//! the conversation it continues and how the models answer.

use std::marker::PhantomData;

use serde::Deserialize;

use super::{CallSettings, Failure};
use crate::catalog::ReasoningEffort;

/// How one tool describes the shared parameters to clients (each text is the
/// description of the parameter of that name), and its sampling default. The
/// texts differ per tool (consensus samples cooler and speaks of several models),
/// and clients already see them, so each tool keeps its own.
pub trait Wording {
    const PROMPT: &'static str;
    const IMAGES: &'static str;
    const CONTINUATION_ID: &'static str;
    const TEMPERATURE: &'static str;
    const REASONING_EFFORT: &'static str;
    const USE_WEBSEARCH: &'static str;
    /// The `temperature` when the caller gives none.
    const DEFAULT_TEMPERATURE: f32;
}

/// The parameters of both tools, flattened into `ChatParams` and
/// `ConsensusParams`; `W` gives the descriptions each tool advertises.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
// `W` only labels the descriptions: without these bounds the derives would ask
// for `W: Deserialize` and `W: JsonSchema`.
#[serde(bound = "")]
#[schemars(bound = "W: Wording")]
pub struct SharedParams<W: Wording> {
    #[schemars(description = W::PROMPT)]
    pub prompt: String,
    /// Files to include as context: paths (under the server's allowed root), data: URLs, or multi-line inline text.
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    #[schemars(description = W::IMAGES)]
    pub images: Vec<String>,
    #[serde(default)]
    #[schemars(description = W::CONTINUATION_ID)]
    pub continuation_id: Option<String>,
    #[serde(default)]
    #[schemars(description = W::TEMPERATURE)]
    pub temperature: Option<f32>,
    #[serde(default)]
    #[schemars(description = W::REASONING_EFFORT)]
    pub reasoning_effort: Option<ReasoningEffort>,
    #[serde(default)]
    #[schemars(description = W::USE_WEBSEARCH)]
    pub use_websearch: Option<bool>,
    /// Answer length and detail for models that support it (OpenAI GPT-5 family); other models answer as usual, with a note.
    #[serde(default)]
    pub verbosity: Option<Verbosity>,
    #[serde(skip)]
    wording: PhantomData<W>,
}

impl<W: Wording> SharedParams<W> {
    /// The question to ask: the prompt without surrounding whitespace. An empty
    /// one fails the call.
    pub fn question(&self) -> Result<&str, Failure> {
        let prompt = self.prompt.trim();
        if prompt.is_empty() {
            return Err(Failure::Error("prompt must not be empty".into()));
        }
        Ok(prompt)
    }

    /// The caller's sampling options, with the tool's defaults for those it omitted.
    pub fn settings(&self) -> CallSettings {
        CallSettings {
            temperature: self.temperature.unwrap_or(W::DEFAULT_TEMPERATURE),
            effort: self.reasoning_effort,
            web_search: self.use_websearch.unwrap_or(false),
            verbosity: self.verbosity,
        }
    }
}

/// How long and detailed an answer should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verbosity {
    Low,
    Medium,
    High,
}

impl Verbosity {
    /// The value as OpenAI's `text.verbosity` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}
