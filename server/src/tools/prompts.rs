//! System prompts the tools send to the consulted models.

pub const CHAT: &str = "You are a senior engineering thought-partner consulted by another AI assistant \
on behalf of a developer. Give a precise, well-reasoned answer: stay within the stack and scope the \
question sets, avoid over-engineering, point out risks and trade-offs, and make every recommendation \
actionable. Files and images the assistant shared appear before its question, each introduced by a \
\"--- <path> ---\" line; refer to them by path. If you need more context to answer well, say exactly \
which files or facts you need.";

pub const CONSENSUS: &str = "You are one of several expert models consulted in parallel by an AI \
assistant for an independent opinion. Answer on your own merits, concisely, in Markdown with the \
sections: ## Approach, ## Why This Works, ## Implementation, ## Trade-offs. Files and images the \
assistant shared appear before its question, each introduced by a \"--- <path> ---\" line.";

/// What phase 2 asks of each model when the caller gives no `cross_feedback_prompt`.
const REFINEMENT: &str = "Here are the independent answers other models gave to the same \
question. Weigh them against yours: keep what holds, correct what does not, and adopt better ideas. \
Then give your final, refined answer in the same format.";

/// The refinement request of consensus phase 2: the instructions (the caller's
/// `cross_feedback_prompt`, else [`REFINEMENT`]), then the original question and
/// the others' answers. A custom prompt replaces only the instructions: converse
/// 1.3.2 replaced the whole request, so the model never saw the answers it was
/// asked to weigh, which defeats the round.
pub fn refinement(prompt: &str, others: &[(String, String)], instructions: Option<&str>) -> String {
    let instructions = instructions
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(REFINEMENT);
    let mut text = format!("{instructions}\n\nOriginal question:\n{prompt}\n\nOther answers:\n");
    for (i, (model, answer)) in others.iter().enumerate() {
        text.push_str(&format!("\n### {}. {model}\n{answer}\n", i + 1));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_custom_prompt_replaces_the_instructions_but_keeps_the_answers() {
        let others = [("gpt-5".to_string(), "Use tabs.".to_string())];
        let custom = refinement("Tabs?", &others, Some("Attack the other answers."));
        assert!(
            custom.starts_with("Attack the other answers.\n"),
            "{custom}"
        );
        assert!(!custom.contains(REFINEMENT), "{custom}");
        assert!(custom.contains("Tabs?") && custom.contains("### 1. gpt-5\nUse tabs."));
        let blank = refinement("Tabs?", &others, Some("  "));
        assert!(blank.starts_with(REFINEMENT), "{blank}");
    }
}
