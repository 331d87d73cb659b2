//! The `help` prompt and `converse://help` resource: a guide generated from the
//! live configuration and model catalog, so it never drifts from what runs.

use converse_config::BUILTIN_PROVIDERS;
use converse_config::builtin_providers::Family;

use crate::catalog::{Catalog, ReasoningSpec};

pub const TOPICS: &[&str] = &["tools", "models", "configuration", "examples"];

const TOOLS: &str = "## Tools

### chat
Ask one model. Parameters:
- `prompt` (required): the question, with the context the model needs.
- `model`: a model name or alias, or `auto` (default) for the first configured provider's default model.
- `files`: paths under the server's allowed root (CONVERSE_FILES_ROOT), `data:` URLs, or multi-line inline text.
- `images`: image paths (png, jpeg, gif, webp) or `data:image/...;base64,...` URLs.
- `continuation_id`: continue an earlier conversation; every answer ends with its id.
- `temperature` (0–1, default 0.5), `reasoning_effort` (none, minimal, low, medium, high, max; default medium),
  `use_websearch` (default false).

### consensus
Ask several models in parallel, then let each refine its answer after seeing the others'.
- `prompt` (required), `models` (e.g. [\"gpt-5\", \"gemini-2.5-pro\", \"sonnet\"]; each `auto` picks the next provider;
  omitted = up to three providers), `files`, `images`, `continuation_id`,
  `enable_cross_feedback` (default true), `temperature` (default 0.2), `reasoning_effort`, `use_websearch`.
- Models that fail are listed with the reason; the others still answer.
";

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
            "# Converse MCP server\n\n{TOOLS}\n{models}{}\n{EXAMPLES}",
            configuration()
        ),
        Some("tools") => TOOLS.to_string(),
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
