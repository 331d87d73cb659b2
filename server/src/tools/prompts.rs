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

/// The system prompt of roundtable mode: the models answer in turn, each after
/// the ones before it, so the prompt asks for a contribution, not a fresh essay.
pub const ROUNDTABLE: &str = "You are one of several expert models in a roundtable discussion, \
consulted in turn by an AI assistant. You see the question and the answers the participants before \
you gave (in this round and in earlier ones). Give your own view concisely, in Markdown: say where \
you agree or disagree and why, build on what holds, correct what does not and add what is missing, \
without repeating the others. Files and images the assistant shared appear before its question, \
each introduced by a \"--- <path> ---\" line.";

/// Custom stance instructions longer than this fail the call: a stance is a
/// short instruction, and a long one is most likely a misplaced prompt.
pub const MAX_STANCE_CHARS: usize = 2000;

/// The position one consensus model is told to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stance {
    For,
    Against,
    Neutral,
    /// The caller's own instruction, used as given.
    Custom(String),
}

impl Stance {
    /// `for`, `against` and `neutral` (any case) are the built-in stances; any
    /// other text is a custom instruction. Empty or too long text is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "for" => Ok(Self::For),
            "against" => Ok(Self::Against),
            "neutral" => Ok(Self::Neutral),
            "" => {
                Err("must not be empty (use for, against, neutral or your own instruction)".into())
            }
            _ if text.chars().count() > MAX_STANCE_CHARS => Err(format!(
                "a custom stance may have at most {MAX_STANCE_CHARS} characters, this one has {}",
                text.chars().count()
            )),
            _ => Ok(Self::Custom(text.to_string())),
        }
    }

    /// The stance as results report it: the name, or the custom instruction.
    pub fn label(&self) -> &str {
        match self {
            Self::For => "for",
            Self::Against => "against",
            Self::Neutral => "neutral",
            Self::Custom(text) => text,
        }
    }

    /// A short tag telling answers apart when one model takes several stances:
    /// the name, or the start of the custom instruction.
    pub fn tag(&self) -> String {
        const TAG_CHARS: usize = 40;
        match self {
            Self::Custom(text) if text.chars().count() > TAG_CHARS => {
                let start: String = text.chars().take(TAG_CHARS).collect();
                format!("{start}…")
            }
            other => other.label().to_string(),
        }
    }

    /// What the model's system prompt gains. Every stance keeps the model
    /// truthful: a stance shapes the emphasis, it must not produce invented facts.
    fn instruction(&self) -> String {
        let truthful = "Stay truthful: never invent facts, figures or sources to fit the stance.";
        match self {
            Self::For => format!(
                "Your stance: argue FOR the proposal. Make the strongest honest case for it and show \
                 how its weaknesses can be handled. {truthful} If it is fundamentally flawed, say so."
            ),
            Self::Against => format!(
                "Your stance: critically challenge the proposal. Look for flaws, risks, hidden costs \
                 and better alternatives. {truthful} If it is sound, acknowledge its strengths."
            ),
            Self::Neutral => format!(
                "Your stance: weigh the proposal evenly, giving its strengths and weaknesses equal \
                 scrutiny, and let the evidence decide. {truthful}"
            ),
            Self::Custom(text) => {
                format!("The stance the assistant asked you to take:\n{text}\n\n{truthful}")
            }
        }
    }
}

/// A system prompt with the model's stance, if it has one, appended.
pub fn with_stance(base: &str, stance: Option<&Stance>) -> String {
    match stance {
        Some(stance) => format!("{base}\n\n{}", stance.instruction()),
        None => base.to_string(),
    }
}

/// The text added to a roundtable participant's question: the answers given
/// before its turn in this round, or `None` for the first participant.
pub fn earlier_answers(earlier: &[(String, String)]) -> Option<String> {
    if earlier.is_empty() {
        return None;
    }
    let mut text = String::from("Answers given before yours in this round, in order:\n");
    for (i, (model, answer)) in earlier.iter().enumerate() {
        text.push_str(&format!("\n### {}. {model}\n{answer}\n", i + 1));
    }
    text.push_str("\nNow give your contribution to the discussion.");
    Some(text)
}

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

    #[test]
    fn named_stances_are_built_in_and_other_text_is_a_custom_instruction() {
        assert_eq!(Stance::parse(" Against "), Ok(Stance::Against));
        assert_eq!(Stance::parse("for"), Ok(Stance::For));
        let custom = Stance::parse("Argue as a security auditor would").unwrap();
        assert_eq!(custom.label(), "Argue as a security auditor would");
        assert!(Stance::parse("  ").is_err());
        assert!(Stance::parse(&"x".repeat(MAX_STANCE_CHARS)).is_ok());
        let long = Stance::parse(&"x".repeat(MAX_STANCE_CHARS + 1)).unwrap_err();
        assert!(long.contains("at most 2000"), "{long}");
    }

    #[test]
    fn a_stance_extends_the_system_prompt_and_keeps_the_model_truthful() {
        assert_eq!(with_stance(CONSENSUS, None), CONSENSUS);
        for stance in [
            Stance::For,
            Stance::Against,
            Stance::Neutral,
            Stance::Custom("Be a CFO.".into()),
        ] {
            let system = with_stance(CONSENSUS, Some(&stance));
            assert!(
                system.starts_with(CONSENSUS) && system.contains("never invent facts"),
                "{system}"
            );
        }
        assert!(
            with_stance(CONSENSUS, Some(&Stance::Custom("Be a CFO.".into()))).contains("Be a CFO.")
        );
    }

    #[test]
    fn a_custom_stance_tag_is_short() {
        let tag = Stance::Custom("y".repeat(100)).tag();
        assert_eq!(tag.chars().count(), 41, "{tag}");
        assert_eq!(Stance::Neutral.tag(), "neutral");
    }
}
