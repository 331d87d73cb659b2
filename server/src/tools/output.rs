//! Output shaping: the token cap (MAX_MCP_OUTPUT_TOKENS) applied for real to the
//! whole result, text and structured content together, and a rough token
//! estimate used for the cap and for trimming history.
//!
//! A result repeats each answer several times (the text, and structured fields
//! for programs), so the answers are what gets shortened: every copy of an
//! answer up to the same length, short answers kept whole (the long ones give
//! up the room). The copies that only repeat others for convenience (`extra`:
//! structuredContent's `content`, consensus `models[]`) shrink first; the text
//! and 1.3.2's fields (`primary`) only when that is not enough. The result says
//! what was cut, in its text and in structuredContent's `truncated`.

use schemars::JsonSchema;
use serde::Serialize;

use super::ToolOutput;

/// ~4 characters per token: the usual estimate for English text and code.
pub fn estimate_tokens(chars: usize) -> usize {
    chars.div_ceil(4)
}

/// How many bytes of each answer the copies in a result keep; `None` keeps all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub primary: Option<usize>,
    pub extra: Option<usize>,
}

/// One answer that the cap shortened.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Cut {
    /// The model that gave the answer.
    pub model: String,
    /// "answer" (chat), "initial" or "refined" (consensus rounds).
    pub part: &'static str,
    pub original_chars: usize,
    pub kept_chars: usize,
}

/// What the output cap cut (structuredContent's `truncated`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Truncation {
    /// MAX_MCP_OUTPUT_TOKENS: the cap on text plus structured content.
    pub limit_tokens: usize,
    /// Answers shortened in the text and in the fields that mirror it.
    pub cuts: Vec<Cut>,
    /// structuredContent fields that repeat the answers and were shortened further.
    pub shortened_fields: Vec<&'static str>,
}

impl Truncation {
    /// The same, as a note for the text.
    pub fn note(&self) -> String {
        let cap = format!(
            "the output limit (MAX_MCP_OUTPUT_TOKENS = {} tokens, text and structured content together)",
            self.limit_tokens
        );
        let fields = self.shortened_fields.join(", ");
        if self.cuts.is_empty() {
            return format!(
                "to stay within {cap}, the structuredContent fields {fields} repeat the answers shortened; this text is complete"
            );
        }
        let cuts: Vec<String> = self
            .cuts
            .iter()
            .map(|c| {
                format!(
                    "{} {} ({} of {} characters kept)",
                    c.model, c.part, c.kept_chars, c.original_chars
                )
            })
            .collect();
        format!(
            "{cap} cut these answers: {}; the structuredContent fields {fields} are shortened further",
            cuts.join(", ")
        )
    }
}

/// Shortens the copies of answers for one rendering of a result.
#[derive(Debug, Clone, Copy)]
pub struct Trim {
    pub max_tokens: usize,
    pub limits: Limits,
}

impl Trim {
    /// The copy of an answer in the text and 1.3.2's fields; a cut is recorded.
    pub fn primary(
        &self,
        model: &str,
        part: &'static str,
        text: &str,
        cuts: &mut Vec<Cut>,
    ) -> String {
        let Some(keep) = self.limits.primary.filter(|&keep| text.len() > keep) else {
            return text.to_string();
        };
        let (short, kept) = shorten(text, keep, self.max_tokens);
        cuts.push(Cut {
            model: model.to_string(),
            part,
            original_chars: text.chars().count(),
            kept_chars: kept,
        });
        short
    }

    /// The copy of an answer in the fields that repeat it.
    pub fn extra(&self, text: &str) -> String {
        match self.limits.extra.filter(|&keep| text.len() > keep) {
            Some(keep) => shorten(text, keep, self.max_tokens).0,
            None => text.to_string(),
        }
    }

    /// What was cut, or `None` when nothing was. `extra_fields` names the
    /// fields that hold [`Trim::extra`] copies.
    pub fn report(&self, cuts: Vec<Cut>, extra_fields: &[&'static str]) -> Option<Truncation> {
        if self.limits == Limits::default() {
            return None;
        }
        Some(Truncation {
            limit_tokens: self.max_tokens,
            cuts,
            shortened_fields: extra_fields.to_vec(),
        })
    }
}

/// `text` cut to at most `keep` bytes, at a paragraph, sentence or line end when
/// one is near, with a note saying so; and how many characters it kept.
fn shorten(text: &str, keep: usize, max_tokens: usize) -> (String, usize) {
    let mut end = keep.min(text.len());
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
    let kept = text[..cut].trim_end();
    let short = format!(
        "{kept}\n\n[Response truncated to fit the output limit of {max_tokens} tokens (MAX_MCP_OUTPUT_TOKENS): ~{} of ~{} tokens shown.]",
        estimate_tokens(kept.len()),
        estimate_tokens(text.len()),
    );
    (short, kept.chars().count())
}

/// Bytes the client receives for a result: its text and its structured content.
fn size(output: &ToolOutput) -> usize {
    let structured = serde_json::to_string(&output.structured).map_or(0, |s| s.len());
    output.text.len() + structured
}

/// The largest `n` in `0..=most` for which `fits(n)`, or `None` when not even 0
/// fits. (Sizes grow with `n` except for the odd break point; a value is only
/// returned once it was seen to fit.)
fn largest_fitting(most: usize, fits: impl Fn(usize) -> bool) -> Option<usize> {
    if !fits(0) {
        return None;
    }
    let (mut lo, mut hi) = (0, most);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// The result `render` makes within `max_tokens` (~4 bytes per token), with
/// answers (the longest `longest` bytes) shortened as little as that allows:
/// first the extra copies, then all of them. When even empty answers do not
/// fit (a cap of a few hundred tokens), the result with the shortest answers.
pub fn fit(max_tokens: usize, longest: usize, render: impl Fn(Trim) -> ToolOutput) -> ToolOutput {
    let budget = max_tokens.saturating_mul(4);
    let trim = |primary, extra| Trim {
        max_tokens,
        limits: Limits { primary, extra },
    };
    let fits = |t: Trim| size(&render(t)) <= budget;
    let whole = render(trim(None, None));
    if size(&whole) <= budget {
        return whole;
    }
    if let Some(extra) = largest_fitting(longest, |n| fits(trim(None, Some(n)))) {
        return render(trim(None, Some(extra)));
    }
    let primary = largest_fitting(longest, |n| fits(trim(Some(n), Some(0)))).unwrap_or(0);
    render(trim(Some(primary), Some(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trim(primary: Option<usize>, extra: Option<usize>) -> Trim {
        Trim {
            max_tokens: 500,
            limits: Limits { primary, extra },
        }
    }

    #[test]
    fn short_answers_are_untouched() {
        let mut cuts = Vec::new();
        assert_eq!(
            trim(Some(10), Some(0)).primary("m", "answer", "hello", &mut cuts),
            "hello"
        );
        assert_eq!(trim(None, Some(10)).extra("hello"), "hello");
        assert!(cuts.is_empty());
    }

    #[test]
    fn long_answers_are_cut_at_a_sentence_with_a_note_and_recorded() {
        let text = "Sentence one is here. ".repeat(100);
        let mut cuts = Vec::new();
        let short = trim(Some(300), None).primary("gpt-5", "refined", &text, &mut cuts);
        assert!(
            short.starts_with("Sentence one is here.") && short.contains("[Response truncated")
        );
        let kept = short.split("\n\n[").next().unwrap();
        assert!(kept.ends_with("here.") && kept.len() <= 300, "{kept}");
        assert_eq!(
            cuts,
            [Cut {
                model: "gpt-5".into(),
                part: "refined",
                original_chars: text.len(),
                kept_chars: kept.len()
            }]
        );
    }

    #[test]
    fn never_splits_a_multibyte_character() {
        let (short, kept) = shorten(&"é".repeat(5000), 101, 100);
        assert!(short.starts_with('é') && short.contains("truncated"));
        assert_eq!(kept, 50);
    }

    #[test]
    fn largest_fitting_finds_the_boundary() {
        assert_eq!(largest_fitting(1000, |n| n <= 737), Some(737));
        assert_eq!(largest_fitting(10, |_| true), Some(10));
        assert_eq!(largest_fitting(10, |_| false), None);
    }

    /// A result with the answer three times: in the text (primary), in
    /// structured content twice (extra).
    fn render(answer: &str) -> impl Fn(Trim) -> ToolOutput + '_ {
        move |t: Trim| {
            let mut cuts = Vec::new();
            let text = t.primary("m", "answer", answer, &mut cuts);
            let extra = t.extra(answer);
            ToolOutput {
                text,
                structured: json!({"a": extra, "b": extra, "truncated": t.report(cuts, &["a", "b"])}),
                is_error: false,
            }
        }
    }

    #[test]
    fn fit_keeps_what_fits_and_shrinks_the_extra_copies_first() {
        let small = fit(1000, 100, render(&"x".repeat(100)));
        assert_eq!(small.text.len(), 100);
        assert_eq!(small.structured["truncated"], json!(null));

        // 1600 bytes: the text fits whole once the two extra copies shrink.
        let answer = "word ".repeat(200);
        let out = fit(400, answer.len(), render(&answer));
        assert_eq!(out.text, answer);
        assert!(size(&out) <= 1600, "{}", size(&out));
        assert_eq!(out.structured["truncated"]["cuts"], json!([]));
        assert_eq!(
            out.structured["truncated"]["shortened_fields"],
            json!(["a", "b"])
        );

        // 800 bytes: the text is cut too, and says so.
        let out = fit(200, answer.len(), render(&answer));
        assert!(size(&out) <= 800, "{}", size(&out));
        assert!(out.text.contains("[Response truncated"), "{}", out.text);
        assert_eq!(
            out.structured["truncated"]["cuts"][0]["original_chars"],
            1000
        );
    }

    #[test]
    fn the_note_names_every_cut() {
        let t = Truncation {
            limit_tokens: 1000,
            cuts: vec![Cut {
                model: "gpt-5".into(),
                part: "initial",
                original_chars: 9000,
                kept_chars: 1200,
            }],
            shortened_fields: vec!["content"],
        };
        let note = t.note();
        assert!(
            note.contains("MAX_MCP_OUTPUT_TOKENS = 1000")
                && note.contains("gpt-5 initial (1200 of 9000 characters kept)")
                && note.contains("content"),
            "{note}"
        );
    }
}
