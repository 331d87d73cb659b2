//! Arguments a tool does not know. Serde would drop them silently, so a typo
//! (`temprature`) or an option of another server version would change nothing
//! and nobody would notice; instead the parameter types collect them and the
//! call fails with a message naming them and the accepted ones, which lets the
//! calling model correct itself.
//!
//! The schemas keep `additionalProperties` open on purpose: a client that
//! enforces a closed schema would refuse the call itself, with its own message,
//! and some hosts reject the keyword in tool schemas altogether.

use std::collections::BTreeMap;

use serde_json::Value;

/// The arguments a parameter type collected because it does not know them.
pub type Unknown = BTreeMap<String, Value>;

/// The property names `T`'s JSON schema advertises, sorted: what clients are
/// told the tool accepts, so the error names exactly those.
pub fn accepted<T: schemars::JsonSchema>() -> Vec<String> {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut names: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// One line naming the unknown arguments of `place` (a tool, or an object
/// inside its arguments) and the ones `T` accepts, or `None` when there are none.
pub fn describe<T: schemars::JsonSchema>(place: &str, unknown: &Unknown) -> Option<String> {
    if unknown.is_empty() {
        return None;
    }
    let names: Vec<String> = unknown.keys().map(|k| format!("`{k}`")).collect();
    Some(format!(
        "{place}: unknown {}; accepted: {}",
        names.join(", "),
        accepted::<T>().join(", ")
    ))
}

/// The failure for a call with unknown arguments: every problem, one per line.
pub fn failure(tool: &str, problems: Vec<String>) -> Result<(), super::Failure> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(super::Failure::Error(format!(
        "{tool} was not called because of arguments it does not know (nothing is ignored silently):\n- {}",
        problems.join("\n- ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Example {
        prompt: String,
        model: Option<String>,
    }

    #[test]
    fn accepted_names_come_from_the_schema() {
        assert_eq!(accepted::<Example>(), ["model", "prompt"]);
    }

    #[test]
    fn names_every_unknown_argument_and_the_accepted_ones() {
        let mut unknown = Unknown::new();
        assert_eq!(describe::<Example>("chat", &unknown), None);
        unknown.insert("temprature".into(), Value::from(0.3));
        unknown.insert("relevant_files".into(), Value::Null);
        assert_eq!(
            describe::<Example>("chat", &unknown).unwrap(),
            "chat: unknown `relevant_files`, `temprature`; accepted: model, prompt"
        );
    }
}
