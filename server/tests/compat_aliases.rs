//! Every model name converse 1.3.2 accepted still resolves: to the same provider and model
//! where the catalog still has it, otherwise to its successor with a notice in the answer's
//! status lines. The table is written from the 1.3.2 inventory (sections C.4 and D.1–D.7),
//! independently of the server's own legacy table, so a name that stops resolving, or
//! starts resolving elsewhere, fails here.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use converse_server::catalog::{CONVERSE_1_3_2_MODELS, Catalog, LEGACY_PROVIDER_NAMES};
use converse_server::providers::{ChatRequest, ChatResponse, Provider, ProviderError};
use converse_server::routing::Router;
use serde_json::json;

use common::{call, connect_legacy, env_for, fake, start_http, text_of};

/// Where a 1.3.2 name must land: provider, model id sent, and whether a retirement notice
/// comes with it.
struct Case {
    name: &'static str,
    provider: &'static str,
    model: &'static str,
    notice: bool,
}

const fn same(name: &'static str, provider: &'static str, model: &'static str) -> Case {
    Case {
        name,
        provider,
        model,
        notice: false,
    }
}

const fn retired(name: &'static str, provider: &'static str, successor: &'static str) -> Case {
    Case {
        name,
        provider,
        model: successor,
        notice: true,
    }
}

/// Every id and alias of 1.3.2's provider files, plus the names its routing matched
/// exactly (`google`, `k2`). `auto` is checked separately: it follows the catalog's defaults.
#[rustfmt::skip]
const CASES: &[Case] = &[
    // D.1 OpenAI
    same("o3", "openai", "o3"),
    retired("o3-mini", "openai", "o4-mini"),
    retired("o3mini", "openai", "o4-mini"),
    retired("o3 mini", "openai", "o4-mini"),
    same("o3-pro-2025-06-10", "openai", "o3-pro"),
    same("o3-pro", "openai", "o3-pro"),
    same("o3pro", "openai", "o3-pro"),
    same("o3 pro", "openai", "o3-pro"),
    same("o4-mini", "openai", "o4-mini"),
    same("o4mini", "openai", "o4-mini"),
    same("o4", "openai", "o4-mini"),
    same("o4 mini", "openai", "o4-mini"),
    same("gpt-4.1-2025-04-14", "openai", "gpt-4.1"),
    same("gpt4.1", "openai", "gpt-4.1"),
    same("gpt-4.1", "openai", "gpt-4.1"),
    same("gpt 4.1", "openai", "gpt-4.1"),
    same("gpt-4o", "openai", "gpt-4o"),
    same("gpt4o", "openai", "gpt-4o"),
    same("gpt 4o", "openai", "gpt-4o"),
    same("4o", "openai", "gpt-4o"),
    same("gpt-4o-mini", "openai", "gpt-4o-mini"),
    same("gpt4o-mini", "openai", "gpt-4o-mini"),
    same("gpt 4o mini", "openai", "gpt-4o-mini"),
    same("4o mini", "openai", "gpt-4o-mini"),
    same("4o-mini", "openai", "gpt-4o-mini"),
    // D.2 X.AI
    same("grok-4-0709", "xai", "grok-4"),
    same("grok", "xai", "grok-4"),
    same("grok4", "xai", "grok-4"),
    same("grok-4", "xai", "grok-4"),
    same("grok-4-latest", "xai", "grok-4"),
    same("grok 4", "xai", "grok-4"),
    same("grok 4 latest", "xai", "grok-4"),
    retired("grok-3", "xai", "grok-4"),
    retired("grok3", "xai", "grok-4"),
    retired("grok 3", "xai", "grok-4"),
    retired("grok-3-fast", "xai", "grok-4-fast"),
    retired("grok3fast", "xai", "grok-4-fast"),
    retired("grok3-fast", "xai", "grok-4-fast"),
    retired("grok 3 fast", "xai", "grok-4-fast"),
    // D.3 Google
    same("gemini-2.0-flash", "google", "gemini-2.0-flash"),
    same("flash-2.0", "google", "gemini-2.0-flash"),
    same("flash2", "google", "gemini-2.0-flash"),
    retired("gemini-2.0-flash-lite", "google", "gemini-2.5-flash-lite"),
    retired("flashlite", "google", "gemini-2.5-flash-lite"),
    retired("flash-lite", "google", "gemini-2.5-flash-lite"),
    same("gemini-2.5-flash", "google", "gemini-2.5-flash"),
    same("flash", "google", "gemini-2.5-flash"),
    same("flash2.5", "google", "gemini-2.5-flash"),
    same("gemini-flash", "google", "gemini-2.5-flash"),
    same("gemini-flash-2.5", "google", "gemini-2.5-flash"),
    same("gemini-2.5-pro", "google", "gemini-2.5-pro"),
    same("pro", "google", "gemini-2.5-pro"),
    same("gemini pro", "google", "gemini-2.5-pro"),
    same("gemini-pro", "google", "gemini-2.5-pro"),
    same("gemini", "google", "gemini-2.5-pro"),
    // C.4: `google` was routed to Google; it means Google's default model.
    same("google", "google", "gemini-2.5-pro"),
    // D.4 Anthropic
    retired("claude-opus-4-20250514", "anthropic", "claude-opus-4-1"),
    retired("claude-4-opus", "anthropic", "claude-opus-4-1"),
    retired("opus-4", "anthropic", "claude-opus-4-1"),
    retired("opus", "anthropic", "claude-opus-4-1"),
    retired("claude-opus", "anthropic", "claude-opus-4-1"),
    same(
        "claude-sonnet-4-20250514",
        "anthropic",
        "claude-sonnet-4-20250514",
    ),
    same("claude-4-sonnet", "anthropic", "claude-sonnet-4-20250514"),
    same("sonnet-4", "anthropic", "claude-sonnet-4-20250514"),
    same("sonnet", "anthropic", "claude-sonnet-4-20250514"),
    same("claude-sonnet", "anthropic", "claude-sonnet-4-20250514"),
    retired("claude-3-7-sonnet-20250219", "anthropic", "claude-sonnet-4-5"),
    retired("claude-3.7-sonnet", "anthropic", "claude-sonnet-4-5"),
    retired("sonnet-3.7", "anthropic", "claude-sonnet-4-5"),
    retired("claude-3-5-sonnet-20241022", "anthropic", "claude-sonnet-4-5"),
    retired("claude-3.5-sonnet", "anthropic", "claude-sonnet-4-5"),
    retired("claude-3-5-sonnet-latest", "anthropic", "claude-sonnet-4-5"),
    retired("claude-3-5-haiku-20241022", "anthropic", "claude-haiku-4-5"),
    retired("claude-3.5-haiku", "anthropic", "claude-haiku-4-5"),
    retired("claude-3-5-haiku-latest", "anthropic", "claude-haiku-4-5"),
    retired("haiku", "anthropic", "claude-haiku-4-5"),
    retired("claude-haiku", "anthropic", "claude-haiku-4-5"),
    // D.5 Mistral. The `-latest` ids are the successors' own names: no notice.
    retired("magistral-medium-2506", "mistral", "magistral-medium-latest"),
    retired("magistral-medium", "mistral", "magistral-medium-latest"),
    same(
        "magistral-medium-latest",
        "mistral",
        "magistral-medium-latest",
    ),
    retired("magistral-small-2506", "mistral", "magistral-small-latest"),
    retired("magistral-small", "mistral", "magistral-small-latest"),
    same("magistral-small-latest", "mistral", "magistral-small-latest"),
    retired("mistral-medium-2505", "mistral", "mistral-medium-latest"),
    retired("mistral-medium-3", "mistral", "mistral-medium-latest"),
    same("mistral-medium-latest", "mistral", "mistral-medium-latest"),
    retired("mistral-medium", "mistral", "mistral-medium-latest"),
    // D.6 DeepSeek
    same("deepseek-chat", "deepseek", "deepseek-chat"),
    same("deepseek", "deepseek", "deepseek-chat"),
    same("chat", "deepseek", "deepseek-chat"),
    same("deepseek chat", "deepseek", "deepseek-chat"),
    same("deepseek-v3", "deepseek", "deepseek-chat"),
    same("deepseek-reasoner", "deepseek", "deepseek-reasoner"),
    same("deepseek reasoner", "deepseek", "deepseek-reasoner"),
    same("reasoner", "deepseek", "deepseek-reasoner"),
    same("r1", "deepseek", "deepseek-reasoner"),
    same("deepseek r1", "deepseek", "deepseek-reasoner"),
    same("deepseek-r1", "deepseek", "deepseek-reasoner"),
    // D.6 OpenRouter. Qwen3 thinking is not in the catalog but OpenRouter still serves it:
    // 1.3.2's id passes through unchanged.
    same(
        "qwen/qwen3-235b-a22b-thinking-2507",
        "openrouter",
        "qwen/qwen3-235b-a22b-thinking-2507",
    ),
    same(
        "qwen3-thinking",
        "openrouter",
        "qwen/qwen3-235b-a22b-thinking-2507",
    ),
    same(
        "qwen-thinking",
        "openrouter",
        "qwen/qwen3-235b-a22b-thinking-2507",
    ),
    same("qwen/qwen3-coder", "openrouter", "qwen/qwen3-coder"),
    same("qwen3-coder", "openrouter", "qwen/qwen3-coder"),
    same("qwen-coder", "openrouter", "qwen/qwen3-coder"),
    same("moonshotai/kimi-k2", "openrouter", "moonshotai/kimi-k2"),
    same("kimi-k2", "openrouter", "moonshotai/kimi-k2"),
    same("moonshot-kimi", "openrouter", "moonshotai/kimi-k2"),
    // C.4: `k2` was routed to OpenRouter, which 1.3.2 then sent the literal "k2".
    same("k2", "openrouter", "moonshotai/kimi-k2"),
];

/// converse 1.3.2's routing (inventory C.4): the first rule whose word the lower-cased
/// name contains, or equals, picks the provider.
fn routed_by_1_3_2(name: &str) -> &'static str {
    let n = name.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    let is = |words: &[&str]| words.contains(&n.as_str());
    if n == "auto" || has(&["gpt", "o1", "o3", "o4"]) {
        "openai"
    } else if has(&["grok"]) {
        "xai"
    } else if has(&["gemini", "flash", "pro"]) || is(&["google"]) {
        "google"
    } else if has(&["claude", "opus", "sonnet", "haiku"]) {
        "anthropic"
    } else if has(&["mistral", "magistral"]) {
        "mistral"
    } else if has(&["deepseek"]) || is(&["reasoner", "r1", "chat"]) {
        "deepseek"
    } else if has(&["qwen", "kimi", "moonshot"]) || is(&["k2"]) {
        "openrouter"
    } else {
        "openai"
    }
}

/// Stands in for a configured provider; resolution never calls it.
#[derive(Debug)]
struct Configured(String);

#[async_trait::async_trait]
impl Provider for Configured {
    fn name(&self) -> &str {
        &self.0
    }

    async fn chat(&self, _: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        Err(ProviderError::InvalidResponse(
            "not called by routing".into(),
        ))
    }
}

/// A router over the built-in catalog with every built-in provider configured.
fn router() -> Router {
    let providers = converse_config::BUILTIN_PROVIDERS
        .iter()
        .map(|p| {
            let provider: Arc<dyn Provider> = Arc::new(Configured(p.name.to_string()));
            (p.name.to_string(), provider)
        })
        .collect();
    Router::new(Catalog::built_in().unwrap(), providers, BTreeMap::new())
}

#[test]
fn every_converse_1_3_2_name_resolves() {
    let router = router();
    let mut failures = Vec::new();
    for case in CASES {
        // 1.3.2 compared case-insensitively, and a space and a dash are one separator.
        let spellings = [
            case.name.to_string(),
            case.name.to_uppercase(),
            case.name.replace(' ', "-"),
            format!("  {}  ", case.name),
        ];
        for spelling in spellings {
            let got = match router.resolve(&spelling) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{spelling:?}: {e}"));
                    continue;
                }
            };
            let got_notice = got.notice.is_some();
            if (got.provider_name.as_str(), got.model.as_str(), got_notice)
                != (case.provider, case.model, case.notice)
            {
                failures.push(format!(
                    "{spelling:?}: got {}/{} (notice {:?}), want {}/{} (notice: {})",
                    got.provider_name,
                    got.model,
                    got.notice,
                    case.provider,
                    case.model,
                    case.notice
                ));
            }
            if let Some(notice) = &got.notice
                && !(notice.contains(spelling.trim())
                    && notice.ends_with(&format!("; using {} (its successor)", case.model)))
            {
                failures.push(format!("{spelling:?}: notice {notice:?}"));
            }
            // Catalog facts come with every model except OpenRouter's pass-through.
            if got.info.is_none() && !case.model.contains("thinking") {
                failures.push(format!("{spelling:?}: no catalog facts for {}", got.model));
            }
        }
        // The provider is the one 1.3.2's own routing chose for the name.
        if routed_by_1_3_2(case.name) != case.provider {
            failures.push(format!(
                "{}: 1.3.2 routed it to {}, the table says {}",
                case.name,
                routed_by_1_3_2(case.name),
                case.provider
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The table above covers every name of the server's legacy table, and nothing else, so
/// neither can grow alone.
#[test]
fn the_table_covers_every_legacy_name() {
    let mut legacy: Vec<&str> = CONVERSE_1_3_2_MODELS
        .iter()
        .flat_map(|m| std::iter::once(m.id).chain(m.aliases.iter().copied()))
        .chain(LEGACY_PROVIDER_NAMES.iter().map(|(name, _)| *name))
        .collect();
    let mut table: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    legacy.sort_unstable();
    table.sort_unstable();
    assert_eq!(table, legacy);
    assert_eq!(table.len(), 108);
}

/// `auto` takes the first configured provider in 1.3.2's registry order (D.7); its model is
/// the catalog's current default for that provider.
#[test]
fn auto_takes_the_first_provider_in_1_3_2_order() {
    let router = router();
    let catalog = Catalog::built_in().unwrap();
    for name in ["auto", "AUTO", ""] {
        let got = router.resolve(name).unwrap();
        assert_eq!(got.provider_name, "openai");
        assert_eq!(Some(got.model.as_str()), catalog.default_model("openai"));
        assert!(got.notice.is_none());
    }
    let order: Vec<&str> = converse_config::BUILTIN_PROVIDERS
        .iter()
        .map(|p| p.name)
        .filter(|p| *p != "groq")
        .collect();
    assert_eq!(
        order,
        [
            "openai",
            "xai",
            "google",
            "anthropic",
            "mistral",
            "deepseek",
            "openrouter"
        ]
    );
}

/// Normalising spaces and dashes makes no unrelated names meet, and 1.3.2's word routing
/// reaches names the prefixes miss without its false hits.
#[test]
fn unrelated_names_stay_apart() {
    let router = router();
    let passes_through = [
        ("gpt-41", "openai"),
        ("o3-mini-high", "openai"),
        ("claude-opus-9", "anthropic"),
        ("ft:gpt-4o-mini:acme::abc123", "openai"),
        ("open-mistral-nemo", "mistral"),
        ("deepseek-prover-v2", "deepseek"),
    ];
    for (name, provider) in passes_through {
        let got = router.resolve(name).unwrap();
        assert_eq!(
            (got.provider_name.as_str(), got.model.as_str()),
            (provider, name)
        );
        assert!(got.info.is_none() && got.notice.is_none(), "{name}");
    }
    for name in [
        "flash-2",
        "k-2",
        "chat-gpt",
        "some-pro-model",
        "llama-unknown",
    ] {
        let got = router.resolve(name);
        assert!(
            got.as_ref().is_err() || got.as_ref().is_ok_and(|r| r.model == name),
            "{name} resolved to {:?}",
            got.map(|r| r.model)
        );
    }
    assert!(router.resolve("some-pro-model").is_err());
    assert!(router.resolve("flash-2").is_err());
}

/// Through a real `chat` call: the provider receives the successor's id and the answer's
/// status lines say why.
#[tokio::test]
async fn chat_sends_the_successor_and_says_so() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;

    let result = call(
        &client,
        "chat",
        json!({"prompt": "hello", "model": "claude-3.5-sonnet"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let sent = fake.requests_to("/v1/messages");
    assert_eq!(sent.last().unwrap().body["model"], "claude-sonnet-4-5");
    let text = text_of(&result);
    assert!(
        text.contains(
            "Note: model \"claude-3.5-sonnet\" (claude-3-5-sonnet-20241022) is retired; using claude-sonnet-4-5 (its successor)."
        ),
        "{text}"
    );

    let result = call(
        &client,
        "chat",
        json!({"prompt": "hello", "model": "GPT 4o"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let sent = fake.requests_to("/v1/responses");
    assert_eq!(sent.last().unwrap().body["model"], "gpt-4o");
    assert!(!text_of(&result).contains("retired"));
    client.cancel().await.unwrap();
}

/// The same notice in a consensus answer.
#[tokio::test]
async fn consensus_says_which_retired_models_were_replaced() {
    let fake = fake().await;
    let server = start_http(&env_for(&fake)).await;
    let client = connect_legacy(&server.url).await;
    let result = call(
        &client,
        "consensus",
        json!({"prompt": "hello", "models": [{"model": "claude-3.5-sonnet"}, "gpt-4o"], "enable_cross_feedback": false}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let text = text_of(&result);
    assert!(
        text.contains("is retired; using claude-sonnet-4-5 (its successor)"),
        "{text}"
    );
}
