//! Output shaping: the token cap (MAX_MCP_OUTPUT_TOKENS) applied for real, and a
//! rough token estimate used for the cap and for trimming history.

/// ~4 characters per token: the usual estimate for English text and code.
pub fn estimate_tokens(chars: usize) -> usize {
    chars.div_ceil(4)
}

/// Truncates `text` so that it plus `reserve` characters (footer, notes) stays
/// within `max_tokens`. Cuts at a paragraph, sentence or line end when one is near
/// the limit, and says that it truncated.
pub fn cap(text: &str, max_tokens: usize, reserve: usize) -> String {
    let budget_chars = (max_tokens * 4).saturating_sub(reserve);
    if text.len() <= budget_chars {
        return text.to_string();
    }
    let note_room = 160;
    let mut end = budget_chars.saturating_sub(note_room);
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    // Prefer a natural break within the last fifth of what we keep.
    let floor = end - end / 5;
    let cut = ["\n\n", ". ", "\n"]
        .iter()
        .filter_map(|sep| head.rfind(sep).map(|i| i + sep.len()))
        .find(|&i| i >= floor)
        .unwrap_or(end);
    format!(
        "{}\n\n[Response truncated: ~{} tokens exceeded the output limit of {} tokens (MAX_MCP_OUTPUT_TOKENS); ~{} tokens shown.]",
        text[..cut].trim_end(),
        estimate_tokens(text.len()),
        max_tokens,
        estimate_tokens(cut)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched() {
        assert_eq!(cap("hello", 10, 0), "hello");
    }

    #[test]
    fn long_text_is_cut_within_the_budget_with_a_note() {
        let text = "Sentence one is here. ".repeat(1000);
        let out = cap(&text, 500, 100);
        assert!(out.len() <= 500 * 4 - 100, "{}", out.len());
        assert!(out.contains("[Response truncated"));
        assert!(out.contains("limit of 500 tokens"));
        assert!(out.trim_end_matches(|c| c != ']').len() > 1000);
    }

    #[test]
    fn never_splits_a_multibyte_character() {
        let text = "é".repeat(5000);
        let out = cap(&text, 100, 0);
        assert!(out.starts_with('é') && out.contains("truncated"));
    }
}
