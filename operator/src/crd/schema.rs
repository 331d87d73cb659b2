//! Schema pieces that `#[derive(JsonSchema)]` cannot express on its own: enums whose spelling
//! is owned by `converse-config` (so the CRD accepts exactly what the server parses), and bounds
//! on Kubernetes types that CEL rules read (the API server rejects a CRD whose rules could cost
//! too much, and an unbounded list or string makes every rule over it unbounded).

use converse_config::{JwtAlgorithm, LogFormat, LogLevel};
use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::{Value, json};

/// Durations as the server's parser reads them, restricted to the unambiguous Kubernetes-style
/// form (`30s`, `15m`, `24h`, `1h30m`, `500ms`). The operator parses them again with the
/// server's own parser, which also enforces minimums.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h|d))+$";

/// One `auth.oauth2.allowedUsers` entry as the server's `AllowedUser::parse` reads it: `*`,
/// `@` and a domain name with at least one dot, or an identity (subject id, login, e-mail) that
/// does not start with `@`. Commas and whitespace are refused (the entries are joined with
/// commas and trimmed), and so is `*` inside an identity, which would match nobody while
/// looking like a wildcard. That `*` stands alone is a CEL rule (`rules::oauth2`).
pub const ALLOWED_USER_PATTERN: &str = r"^(\*|@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|[^@*,\s][^*,\s]*)$";

/// Most entries of `auth.oauth2.allowedUsers` (a bound the CEL rules over it need).
pub const MAX_ALLOWED_USERS: u32 = 1024;

/// Longest URL accepted anywhere in the spec.
pub const MAX_URL: u32 = 2048;

/// Most entries in an `env` list (a bound the CEL rule over it needs).
pub const MAX_ENV: u32 = 128;

/// Longest env variable name accepted in `env` (same reason).
pub const MAX_ENV_NAME: u64 = 256;

fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>) -> Schema {
    let values: Vec<&str> = values.into_iter().collect();
    json_schema!({ "type": "string", "enum": values })
}

/// `JwtAlgorithm`'s spellings, from `converse-config`.
pub fn jwt_algorithm(_: &mut SchemaGenerator) -> Schema {
    string_enum(JwtAlgorithm::ALL.iter().map(|a| a.as_str()))
}

/// `LogLevel`'s spellings, from `converse-config`.
pub fn log_level(_: &mut SchemaGenerator) -> Schema {
    string_enum(LogLevel::ALL.iter().map(|l| l.as_str()))
}

/// `LogFormat`'s spellings, from `converse-config`.
pub fn log_format(_: &mut SchemaGenerator) -> Schema {
    string_enum(LogFormat::ALL.iter().map(|f| f.as_str()))
}

/// `[]EnvVar` with a maximum length and a bounded `name`, so the "no managed variable" rule has
/// a small, fixed cost; keyed by name like a container's `env`, so server-side apply and
/// overlays merge entries instead of replacing the list.
pub fn env_list(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Vec<k8s_openapi::api::core::v1::EnvVar>>();
    let object = schema.ensure_object();
    object.insert("maxItems".to_owned(), json!(MAX_ENV));
    object.insert("x-kubernetes-list-type".to_owned(), json!("map"));
    object.insert("x-kubernetes-list-map-keys".to_owned(), json!(["name"]));
    if let Some(Value::Object(name)) = object.get_mut("items").and_then(|items| {
        items
            .pointer_mut("/properties/name")
            .filter(|name| name.is_object())
    }) {
        name.insert("maxLength".to_owned(), json!(MAX_ENV_NAME));
    }
    schema
}

/// `[]EnvFromSource` with a maximum length.
pub fn env_from_list(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<Vec<k8s_openapi::api::core::v1::EnvFromSource>>();
    schema
        .ensure_object()
        .insert("maxItems".to_owned(), json!(32));
    schema
}

/// A `map[string]string` (labels, annotations, node selectors) with bounded size.
pub fn string_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": 64,
        "additionalProperties": { "type": "string", "maxLength": 4096 }
    })
}
