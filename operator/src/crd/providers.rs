//! `spec.providers`: the LLM providers, each enabled by an API key in a Secret.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use converse_config::BUILTIN_PROVIDERS;
use converse_config::BuiltinProvider as TableRow;

use super::SecretKeyRef;
use super::rules;
use super::schema::{DURATION_PATTERN, MAX_URL};

/// The LLM providers the server may call. At least one is required.
///
/// One typed field per row of converse-config's provider table (`BUILTIN_PROVIDERS`, whose
/// `crd_field` names it), plus custom endpoints; a test keeps the two in step.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[schemars(transform = rules::providers)]
#[serde(rename_all = "camelCase")]
pub struct Providers {
    /// OpenAI (`OPENAI_API_KEY`, `OPENAI_BASE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openai: Option<BuiltinProvider>,
    /// X.AI Grok (`XAI_API_KEY`, `XAI_BASE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xai: Option<BuiltinProvider>,
    /// Google Gemini (`GOOGLE_API_KEY`, `GOOGLE_BASE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<BuiltinProvider>,
    /// Anthropic (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic: Option<BuiltinProvider>,
    /// Mistral (`MISTRAL_API_KEY`, `MISTRAL_BASE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mistral: Option<BuiltinProvider>,
    /// DeepSeek (`DEEPSEEK_API_KEY`, `DEEPSEEK_BASE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deepseek: Option<BuiltinProvider>,
    /// Groq (`GROQ_API_KEY`, `GROQ_BASE_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groq: Option<BuiltinProvider>,
    /// OpenRouter (`OPENROUTER_API_KEY`, `OPENROUTER_BASE_URL`, attribution headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openrouter: Option<OpenRouterProvider>,

    /// OpenAI-compatible endpoints (vLLM, Ollama, gateways), keyed by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"])
    )]
    pub custom: Vec<CustomProvider>,

    /// Time limit of one provider call attempt, e.g. 10m (`PROVIDER_TIMEOUT`). Default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,

    /// Retries after a 429 or 5xx answer, 0-10 (`PROVIDER_MAX_RETRIES`). Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub max_retries: Option<i32>,
}

/// A built-in provider.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinProvider {
    /// Secret key holding the API key; it enables the provider.
    pub api_key_secret_ref: SecretKeyRef,
    /// API base URL, to reach a gateway or proxy. Default: the provider's public API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_URL))]
    pub base_url: Option<String>,
}

/// OpenRouter, with its optional app-attribution headers.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OpenRouterProvider {
    /// Secret key holding the API key; it enables the provider.
    pub api_key_secret_ref: SecretKeyRef,
    /// API base URL. Default https://openrouter.ai/api/v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_URL))]
    pub base_url: Option<String>,
    /// Sent as `HTTP-Referer` (`OPENROUTER_REFERER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_URL))]
    pub referer: Option<String>,
    /// Sent as `X-Title` (`OPENROUTER_TITLE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub title: Option<String>,
}

/// An OpenAI-compatible endpoint.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[schemars(transform = rules::custom_provider)]
#[serde(rename_all = "camelCase")]
pub struct CustomProvider {
    /// Provider name, used in model routing and in its variables (`CUSTOM_<NAME>_*`). Lower-case
    /// letters, digits and '-'; not the name of a built-in provider.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    )]
    pub name: String,
    /// API base URL, e.g. http://vllm.inference:8000/v1.
    #[schemars(length(min = 1, max = MAX_URL))]
    pub base_url: String,
    /// Secret key holding the API key, if the endpoint needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Model ids served by the endpoint.
    #[schemars(
        length(min = 1, max = 64),
        inner(length(min = 1, max = 256), regex(pattern = r"^[^,\s]+$"))
    )]
    pub models: Vec<String>,
}

impl Providers {
    /// The typed field of built-in provider `crd_field`: its key reference and base URL.
    fn field(&self, crd_field: &str) -> Option<(&SecretKeyRef, Option<&str>)> {
        let simple = match crd_field {
            "openai" => &self.openai,
            "xai" => &self.xai,
            "google" => &self.google,
            "anthropic" => &self.anthropic,
            "mistral" => &self.mistral,
            "deepseek" => &self.deepseek,
            "groq" => &self.groq,
            "openrouter" => {
                let p = self.openrouter.as_ref()?;
                return Some((&p.api_key_secret_ref, p.base_url.as_deref()));
            }
            _ => return None,
        };
        simple
            .as_ref()
            .map(|p| (&p.api_key_secret_ref, p.base_url.as_deref()))
    }

    /// The built-in providers that are configured, with their table rows, in the table's
    /// (routing priority) order.
    pub fn builtin(&self) -> Vec<(&'static TableRow, &SecretKeyRef, Option<&str>)> {
        BUILTIN_PROVIDERS
            .iter()
            .filter_map(|row| {
                self.field(row.crd_field)
                    .map(|(key, base_url)| (row, key, base_url))
            })
            .collect()
    }

    /// Whether no provider at all is configured.
    pub fn is_empty(&self) -> bool {
        self.builtin().is_empty() && self.custom.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CRD's typed fields and the provider table name the same providers, and every row's
    /// field is read by [`Providers::builtin`].
    #[test]
    fn typed_fields_match_the_provider_table() {
        let schema = serde_json::to_value(schemars::schema_for!(Providers)).unwrap();
        let mut fields: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|f| !["custom", "timeout", "maxRetries"].contains(f))
            .collect();
        let mut table: Vec<&str> = BUILTIN_PROVIDERS.iter().map(|p| p.crd_field).collect();
        fields.sort_unstable();
        table.sort_unstable();
        assert_eq!(fields, table, "spec.providers fields vs BUILTIN_PROVIDERS");

        for row in BUILTIN_PROVIDERS {
            let spec: Providers = serde_json::from_value(serde_json::json!({
                row.crd_field: {"apiKeySecretRef": {"name": "keys", "key": row.name}}
            }))
            .unwrap();
            let found: Vec<(&str, &str)> = spec
                .builtin()
                .iter()
                .map(|(r, key, _)| (r.name, key.key.as_str()))
                .collect();
            assert_eq!(found, [(row.name, row.name)], "{}", row.crd_field);
        }
    }
}
