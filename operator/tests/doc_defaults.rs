//! The defaults the CRD documents (`kubectl explain`, docs/CRD.md) are the ones a ConverseServer
//! gets. A field description that names a variable in backticks and says `Default X` must agree
//! with what the server sees when the field is unset: the value the operator writes anyway (e.g.
//! `LOG_FORMAT` json) or else the server's own default (`converse_config::VARIABLES`).
//!
//! `X` is the sentence after `Default `, cut at `; `, ` (` or a `, ` clause (`, which …`);
//! `Default: …` introduces a described default and is not checked. Values are compared as the
//! server would read them, so different spellings of one value agree (`10m` and `600s`, `4Mi`
//! and `4mb`, `GET, POST` and `GET,POST`).

use converse_config::env::EnvValue;
use converse_config::{parse, vars};
use converse_operator::ConverseServerSpec;
use converse_operator::desired::env::{EnvInputs, server_env};

/// Fields whose default depends on other settings, so the server has no single default to
/// compare with (the description says how it depends).
const CONDITIONAL: &[&str] = &[
    // true unless the strategy is none.
    "spec.auth.required",
];

/// One description's documented default.
#[derive(Debug)]
struct DocDefault {
    /// Path of the field, e.g. `spec.providers.timeout`.
    field: String,
    var: String,
    value: String,
}

#[test]
fn documented_defaults_are_the_effective_ones() {
    let documented = documented_defaults();
    assert!(
        documented.len() >= 20,
        "expected the CRD to document at least 20 variable defaults, found {documented:#?}"
    );
    let mut problems = Vec::new();
    for d in &documented {
        if CONDITIONAL.contains(&d.field.as_str()) {
            continue;
        }
        match effective_default(&d.var) {
            None => problems.push(format!(
                "{}: documents `Default {}` for {}, which has no default (neither the operator \
                 nor the server sets one); list the field in CONDITIONAL if it depends on others",
                d.field, d.value, d.var
            )),
            Some(want) if !same_value(&d.value, &want) => problems.push(format!(
                "{}: documents `Default {}` for {}, but it is {want}",
                d.field, d.value, d.var
            )),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn values_compare_as_the_server_reads_them() {
    assert!(same_value("10m", "600s"));
    assert!(same_value("4Mi", "4mb"));
    assert!(same_value("GET, POST, DELETE", "GET,POST,DELETE"));
    assert!(same_value("'*'", "*"));
    assert!(same_value("true", "true"));
    assert!(!same_value("5m", "10m"));
    assert!(!same_value("json", "text"));
    assert!(!same_value("GET, POST", "GET,POST,DELETE"));
    assert_eq!(
        default_value("Time limit, e.g. 10m (`PROVIDER_TIMEOUT`). Default 10m."),
        Some("10m".to_owned())
    );
    assert_eq!(
        default_value("Log line format. Default json, which log collectors parse."),
        Some("json".to_owned())
    );
    assert_eq!(
        default_value("Default GET, POST, OPTIONS. More."),
        Some("GET, POST, OPTIONS".to_owned())
    );
    assert_eq!(
        default_value("Host names. Default: the ingress host."),
        None
    );
}

/// Every description of the generated CRD that names exactly one variable and documents a
/// default for it.
fn documented_defaults() -> Vec<DocDefault> {
    let crd = converse_operator::crd::crd().expect("CRD renders");
    let mut out = Vec::new();
    for version in &crd.spec.versions {
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("the CRD has a schema");
        let value = serde_json::to_value(schema).expect("schema as JSON");
        collect(&value, "", &mut out);
    }
    out
}

fn collect(node: &serde_json::Value, path: &str, out: &mut Vec<DocDefault>) {
    use serde_json::Value;
    match node {
        Value::Object(map) => {
            if let Some(Value::String(description)) = map.get("description")
                && let Some(value) = default_value(description)
            {
                let named = named_variables(description);
                assert!(
                    named.len() <= 1,
                    "{path}: the description names several variables {named:?} and a default; \
                     which one is it?"
                );
                if let Some(var) = named.first() {
                    out.push(DocDefault {
                        field: path.to_owned(),
                        var: var.clone(),
                        value,
                    });
                }
            }
            for (key, child) in map {
                if key == "properties"
                    && let Value::Object(properties) = child
                {
                    for (name, property) in properties {
                        let child_path = if path.is_empty() {
                            name.clone()
                        } else {
                            format!("{path}.{name}")
                        };
                        collect(property, &child_path, out);
                    }
                } else {
                    collect(child, path, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, path, out)),
        _ => {}
    }
}

/// The names in backticks that are variables the server reads.
fn named_variables(description: &str) -> Vec<String> {
    let mut names: Vec<String> = description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| vars::spec(name).is_some())
        .map(str::to_owned)
        .collect();
    names.dedup();
    names
}

/// The value after `Default ` (not `Default:`), up to the end of its sentence or clause.
fn default_value(description: &str) -> Option<String> {
    let text = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let (_, rest) = text.split_once("Default ")?;
    let sentence = match rest.find(". ") {
        Some(end) => &rest[..end],
        None => rest.strip_suffix('.').unwrap_or(rest),
    };
    let mut end = sentence.len();
    for cut in ["; ", " ("] {
        if let Some(i) = sentence.find(cut) {
            end = end.min(i);
        }
    }
    // `, which …`, `, but …`: a clause about the value, not part of it (a list goes on with
    // another value, `GET, POST`).
    for (i, _) in sentence.match_indices(", ") {
        if sentence[i + 2..].starts_with(|c: char| c.is_ascii_lowercase()) {
            end = end.min(i);
        }
    }
    let value = sentence[..end].trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// What the server sees for `var` when the spec leaves its field unset: the operator's literal
/// for a spec that sets nothing optional, else the server's own default.
fn effective_default(var: &str) -> Option<String> {
    let spec: ConverseServerSpec =
        serde_norway::from_str("providers: {openai: {apiKeySecretRef: {name: keys, key: openai}}}")
            .expect("minimal spec");
    let env = server_env(&EnvInputs {
        spec: &spec,
        public_url: "http://minimal.dev.svc/mcp",
        allowed_hosts: &["minimal".to_owned()],
        generated_secret: "minimal-generated",
        default_callback_url: None,
    })
    .expect("the minimal spec's environment");
    let written = env.entries.iter().find(|e| e.name == var);
    match written.map(|e| &e.value) {
        Some(EnvValue::Literal(value)) => Some(value.clone()),
        Some(EnvValue::SecretKeyRef { .. }) => None,
        None => vars::spec(var).and_then(|v| v.default).map(str::to_owned),
    }
}

/// Whether two spellings are the same value to the server: equal text (quotes aside), equal
/// comma lists, or equal as a boolean, a size or a duration.
fn same_value(documented: &str, default: &str) -> bool {
    let unquote = |s: &str| s.trim().trim_matches(['\'', '"']).to_owned();
    let (a, b) = (unquote(documented), unquote(default));
    if a == b {
        return true;
    }
    if a.contains(',') || b.contains(',') {
        return parse::list(&a) == parse::list(&b);
    }
    let both = |f: &dyn Fn(&str) -> Option<String>| match (f(&a), f(&b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    };
    both(&|s| parse::boolean(s).ok().map(|v| v.to_string()))
        || both(&|s| parse::size(s).ok().map(|v| v.to_string()))
        || both(&|s| parse::duration(s).ok().map(|v| format!("{v:?}")))
}
