//! The `help` prompt and `converse://help` resource: a guide generated from the
//! live configuration and model catalog, so it never drifts from what runs.

use converse_config::BUILTIN_PROVIDERS;
use converse_config::builtin_providers::Family;

use crate::catalog::{Catalog, ReasoningEffort, ReasoningSpec};

pub const TOPICS: &[&str] = &["tools", "models", "configuration", "examples"];

/// The tools section. The reasoning levels come from the catalog's list, so a
/// new level cannot be accepted without the guide naming it.
fn tools() -> String {
    let efforts: Vec<&str> = ReasoningEffort::ALL.iter().map(|e| e.as_str()).collect();
    format!(
        "## Tools

### chat
Ask one model. Parameters:
- `prompt` (required): the question, with the context the model needs.
- `model`: a model name or alias, or `auto` (default) for the first configured provider's default model.
- `files`: paths under the server's allowed root (CONVERSE_FILES_ROOT), `data:` URLs, or multi-line inline text.
  A path can select lines: `path:10-80`, `path:42`, `path{{10:50}}`, `path{{100:}}` (to the end), `path{{:20}}` (from the start).
- `images`: image paths (png, jpeg, gif, webp) or `data:image/...;base64,...` URLs.
- `continuation_id`: continue an earlier conversation (chat or consensus); every answer ends with its id.
- `temperature` (0–1, default 0.5).
- `reasoning_effort`: {efforts} (default medium); each model gets the nearest level it supports
  (`xhigh` is OpenAI's level above high; elsewhere the model's highest level not above it).
- `verbosity`: low, medium, high — answer length and detail for models that support it (GPT-5 family);
  other models answer without it, with a note.
- `use_websearch` (default false): lets the model search the web where the provider offers it.
- Unknown arguments fail the call with the list of accepted ones (nothing is ignored silently).

### consensus
Ask several models the same question.
- `prompt` (required), `files` (line ranges as in chat), `relevant_files` (converse 1.3.2's name for `files`;
  both lists are used), `images`, `continuation_id`.
- `models`: names (e.g. [\"gpt-5\", \"gemini-2.5-pro\", \"sonnet\"]; each `auto` picks the next provider;
  omitted = up to three providers, at most 10) or objects with a model's own options, which replace the call's for
  that model: {{\"model\": \"gpt-5\", \"temperature\": 0.7, \"reasoning_effort\": \"high\", \"use_websearch\": true,
  \"verbosity\": \"low\", \"stance\": \"against\"}}.
- `stance` (per model): `for` (make the strongest honest case), `against` (critically challenge), `neutral` (weigh
  evenly), or your own instruction (at most 2000 characters). Stances never license invented facts. The same model
  may appear several times with different stances; answers are labelled `model [stance]`.
- `mode`: `parallel` (default) — all models answer independently at once, then each refines its answer after seeing
  the others' (`enable_cross_feedback`, default true; `cross_feedback_prompt` replaces the refinement instructions,
  the question and the other answers still follow). `roundtable` — the models answer one after another in the given
  order, each seeing the question and the answers before it; one lap per call, and a call with the
  `continuation_id` runs another lap that sees the earlier ones. Roundtable has no refinement round:
  `enable_cross_feedback` and `cross_feedback_prompt` are ignored there, with a note.
- `temperature` (default 0.2), `reasoning_effort`, `verbosity`, `use_websearch`: as in chat, for every model
  without its own.
- Models that fail are listed with the reason; the others still answer (in a roundtable the lap goes on).
",
        efforts = efforts.join(", ")
    )
}

/// The configuration section; the provider key variables come from the provider table.
fn configuration() -> String {
    let keys: Vec<String> = BUILTIN_PROVIDERS
        .iter()
        .map(|p| match p.key_aliases {
            [] => p.key_var.to_string(),
            aliases => format!("{} (or {})", p.key_var, aliases.join(", ")),
        })
        .collect();
    format!(
        "## Configuration

The server reads only environment variables. Provider keys: {}; each provider's endpoint can be
changed with its *_BASE_URL variable, and CUSTOM_PROVIDERS adds OpenAI-compatible endpoints. MAX_MCP_OUTPUT_TOKENS caps
tool output (default 25000). CONVERSE_FILES_ROOT allows reading files under one directory. The README lists every
variable.

Tips: temperature 0–0.3 for analysis and code, 0.5 for discussion, 0.7+ for brainstorming. Higher reasoning effort
gives deeper answers at more latency and cost. Conversations expire after CONVERSATION_TTL (default 24h).
",
        keys.join(", ")
    )
}

/// "gpt…, claude…, vendor/model for openrouter": how unknown model names are routed.
fn families() -> String {
    let mut out = Vec::new();
    for p in BUILTIN_PROVIDERS {
        for family in p.families {
            out.push(match family {
                Family::Prefix(prefix) => format!("{prefix}…"),
                Family::PrefixDigit(prefix) => format!("{prefix}<digit>…"),
                Family::VendorSlash => format!("vendor/model for {}", p.name),
            });
        }
    }
    out.join(", ")
}

const EXAMPLES: &str = "## Examples

- chat: {\"prompt\": \"Review this function for race conditions\", \"files\": [\"src/worker.rs\"], \"model\": \"gpt-5\"}
- chat, continued: {\"prompt\": \"And how would you test it?\", \"continuation_id\": \"conv_…\"}
- consensus: {\"prompt\": \"Postgres or DynamoDB for this workload?\", \"models\": [\"gpt-5\", \"gemini-2.5-pro\", \"sonnet\"]}
- consensus with stances: {\"prompt\": \"Should we adopt event sourcing?\", \"models\": [{\"model\": \"gpt-5\", \"stance\": \"for\"},
  {\"model\": \"gpt-5\", \"stance\": \"against\"}, {\"model\": \"sonnet\", \"stance\": \"neutral\"}]}
- roundtable: {\"prompt\": \"How should we split this monolith?\", \"mode\": \"roundtable\", \"models\": [\"gpt-5\", \"sonnet\"],
  \"files\": [\"src/app.rs:1-120\"]}
";

fn models_section(catalog: &Catalog, available: &[String]) -> String {
    let mut text = String::from("## Models\n\n");
    if available.is_empty() {
        text.push_str(
            "No provider is configured: set at least one provider API key (see Configuration). Until then every tool call fails.\n\n",
        );
    } else {
        text.push_str(&format!(
            "Configured providers, in `auto` priority order: {}.\nA model name that is not listed still works when its provider is evident ({}).\n\n",
            available.join(", "),
            families()
        ));
    }
    for provider in available {
        let Some(models) = catalog.providers.get(provider) else {
            text.push_str(&format!("### {provider} (custom endpoint)\n\n"));
            continue;
        };
        text.push_str(&format!("### {provider} (default: {})\n", models.default));
        for m in &models.models {
            let mut features = Vec::new();
            if m.images {
                features.push("images");
            }
            if m.web_search {
                features.push("web search");
            }
            match &m.reasoning {
                Some(ReasoningSpec::Effort { .. }) => features.push("reasoning effort"),
                Some(ReasoningSpec::Budget { .. }) => features.push("thinking budget"),
                None => {}
            }
            text.push_str(&format!(
                "- `{}`: {}k context, {}k max output{}{}\n",
                m.name,
                m.context_window / 1000,
                m.max_output / 1000,
                if features.is_empty() {
                    String::new()
                } else {
                    format!("; {}", features.join(", "))
                },
                if m.aliases.is_empty() {
                    String::new()
                } else {
                    format!("; aliases: {}", m.aliases.join(", "))
                },
            ));
        }
        text.push('\n');
    }
    text
}

/// The whole guide, or one topic of it. `Err` names the valid topics.
pub fn guide(
    catalog: &Catalog,
    available: &[String],
    topic: Option<&str>,
) -> Result<String, String> {
    let models = models_section(catalog, available);
    let topic = topic
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty());
    Ok(match topic.as_deref() {
        None => format!(
            "# Converse MCP server\n\n{}\n{models}{}\n{EXAMPLES}",
            tools(),
            configuration()
        ),
        Some("tools") => tools(),
        Some("models" | "providers") => models,
        Some("configuration" | "parameters") => configuration(),
        Some("examples") => EXAMPLES.to_string(),
        Some(other) => {
            return Err(format!(
                "unknown help topic \"{other}\"; topics: {}",
                TOPICS.join(", ")
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_lists_configured_providers_and_their_models() {
        let c = Catalog::built_in().unwrap();
        let text = guide(&c, &["anthropic".into()], None).unwrap();
        assert!(text.contains("### anthropic (default: claude-sonnet-4-5)"));
        assert!(text.contains("`claude-haiku-4-5`"));
        assert!(!text.contains("### openai"));
        assert!(text.contains("### chat") && text.contains("### consensus"));
    }

    #[test]
    fn the_tools_section_names_every_argument_the_tools_accept() {
        use crate::tools::{ModelEntry, chat::ChatParams, consensus::ConsensusParams};
        let text = tools();
        let accepted = [
            crate::tools::args::accepted::<ChatParams>(),
            crate::tools::args::accepted::<ConsensusParams>(),
            crate::tools::args::accepted::<ModelEntry>(),
        ];
        for name in accepted.iter().flatten() {
            assert!(text.contains(&format!("`{name}`")), "help omits `{name}`");
        }
        for level in ReasoningEffort::ALL {
            assert!(text.contains(level.as_str()), "help omits {level:?}");
        }
        for word in [
            "path:10-80",
            "path{10:50}",
            "roundtable",
            "`for`",
            "`against`",
            "`neutral`",
        ] {
            assert!(text.contains(word), "help omits {word}");
        }
    }

    #[test]
    fn topics_select_sections_and_unknown_topics_are_errors() {
        let c = Catalog::built_in().unwrap();
        assert!(
            guide(&c, &[], Some("models"))
                .unwrap()
                .contains("No provider is configured")
        );
        assert!(
            guide(&c, &[], Some("Tools"))
                .unwrap()
                .starts_with("## Tools")
        );
        assert!(
            guide(&c, &[], Some("weather"))
                .unwrap_err()
                .contains("tools, models")
        );
    }
}
