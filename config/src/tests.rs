//! Whole-configuration tests: defaults, error collection, secrets, the variable table.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn parse(vars: &[(&str, &str)]) -> Result<ServerConfig, ConfigErrors> {
    ServerConfig::from_vars(vars.iter().copied(), None)
}

fn ok(vars: &[(&str, &str)]) -> ServerConfig {
    match parse(vars) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid configuration, got {e}"),
    }
}

#[test]
fn defaults_from_an_empty_map() {
    let c = ServerConfig::from_vars(HashMap::<String, String>::new(), None).expect("valid");
    assert_eq!(format!("{c:?}"), format!("{:?}", ServerConfig::default()));
    assert_eq!(c.transport, Transport::Http);
    assert_eq!(
        c.log,
        LogConfig {
            level: LogLevel::Info,
            format: LogFormat::Text
        }
    );
    assert_eq!(c.http, HttpConfig::default());
    assert_eq!(c.http.request_timeout, Duration::from_secs(300));
    assert_eq!(c.http.session_timeout, Duration::from_secs(1800));
    assert_eq!(c.http.session_cleanup_interval, Duration::from_secs(300));
    assert_eq!(c.http.max_concurrent_sessions, 100);
    assert_eq!(c.http.max_concurrent_requests, 512);
    assert_eq!(
        c.http.rate_limit,
        RateLimitConfig {
            enabled: false,
            window: Duration::from_secs(900),
            max_requests: 1000
        }
    );
    assert_eq!(c.auth.strategy, AuthStrategy::None);
    assert!(!c.auth.required);
    assert!(c.providers.configured_names().is_empty());
    assert_eq!(c.conversations.store, ConversationStoreKind::Memory);
    assert_eq!(c.max_output_tokens, 25_000);
    assert_eq!(c.files_root, None);
    assert_eq!(c.models_file, None);
    assert_eq!(
        c.telemetry,
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: "converse-server".into()
        }
    );
    assert!(c.env_warnings.is_empty());
    assert!(c.secrets_set().is_empty());
}

/// The defaults written in [`VARIABLES`] (and so in the README) are the parser's defaults.
#[test]
fn documented_defaults_equal_parser_defaults() {
    let empty = format!("{:?}", ok(&[]));
    for spec in VARIABLES.iter() {
        let Some(default) = spec.default else {
            continue;
        };
        let c = ok(&[(spec.name, default)]);
        assert_eq!(
            format!("{c:?}"),
            empty,
            "{}={default} differs from the built-in default",
            spec.name
        );
    }
}

/// Every variable in the table is read: a garbage value either fails or changes the result.
/// (Free-text variables change the result; typed ones fail.)
#[test]
fn every_documented_variable_is_read() {
    let empty = format!("{:?}", ok(&[]));
    for spec in VARIABLES.iter() {
        let value = "zz-not-valid\u{7}";
        match parse(&[(spec.name, value)]) {
            Err(e) => assert!(
                e.vars().contains(&spec.name),
                "{}: error names {:?}",
                spec.name,
                e.vars()
            ),
            Ok(c) => {
                let changed = format!("{c:?}") != empty || !c.secrets_set().is_empty();
                assert!(changed, "{} seems to be ignored", spec.name);
            }
        }
    }
}

#[test]
fn empty_values_count_as_unset() {
    let c = ok(&[
        ("HTTP_PORT", ""),
        ("MCP_AUTH_STRATEGY", "  "),
        ("OPENAI_API_KEY", ""),
        ("LOG_LEVEL", ""),
    ]);
    assert_eq!(c.http.port, 3157);
    assert_eq!(c.auth.strategy, AuthStrategy::None);
    assert!(c.providers.get("openai").is_none());
}

#[test]
fn three_bad_variables_give_three_errors() {
    let errs = parse(&[
        ("HTTP_PORT", "abc"),
        ("LOG_LEVEL", "loud"),
        ("CONVERSATION_TTL", "forever"),
    ])
    .expect_err("invalid");
    assert_eq!(errs.0.len(), 3, "{errs}");
    let mut vars = errs.vars();
    vars.sort_unstable();
    assert_eq!(vars, ["CONVERSATION_TTL", "HTTP_PORT", "LOG_LEVEL"]);
    let text = errs.to_string();
    assert!(
        text.starts_with("invalid configuration (3 errors):\n  - "),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4);
    assert!(
        text.contains("HTTP_PORT: invalid value \"abc\": expected a whole number from 0 to 65535"),
        "{text}"
    );
    assert!(
        text.contains(
            "LOG_LEVEL: invalid value \"loud\": expected one of: silent, error, warn, info, debug, trace"
        ),
        "{text}"
    );
    assert!(
        text.contains("CONVERSATION_TTL: invalid value \"forever\""),
        "{text}"
    );
}

#[test]
fn errors_from_every_section_are_collected() {
    let errs = parse(&[
        ("MCP_TRANSPORT", "sse"),
        ("HTTP_MAX_REQUEST_SIZE", "lots"),
        ("MCP_AUTH_STRATEGY", "bearer"),
        ("OPENAI_BASE_URL", "openai"),
        ("CONVERSATION_STORE", "redis"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ("CONVERSE_FILES_ROOT", "relative/dir"),
    ])
    .expect_err("invalid");
    assert_eq!(
        errs.vars(),
        [
            "MCP_TRANSPORT",
            "CONVERSE_FILES_ROOT",
            "HTTP_MAX_REQUEST_SIZE",
            "MCP_JWT_SECRET",
            "OPENAI_BASE_URL",
            "REDIS_URL",
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        ]
    );
}

#[test]
fn cli_transport_wins() {
    assert_eq!(
        ok(&[("MCP_TRANSPORT", "stdio")]).transport,
        Transport::Stdio
    );
    let c = ServerConfig::from_vars([("MCP_TRANSPORT", "stdio")], Some(Transport::Http))
        .expect("valid");
    assert_eq!(c.transport, Transport::Http);
    let c = ServerConfig::from_vars(Vec::<(String, String)>::new(), Some(Transport::Stdio))
        .expect("valid");
    assert_eq!(c.transport, Transport::Stdio);
    let e = ServerConfig::from_vars([("MCP_TRANSPORT", "tcp")], Some(Transport::Stdio))
        .expect_err("still validated");
    assert_eq!(e.vars(), ["MCP_TRANSPORT"]);
}

#[test]
fn runtime_values() {
    let c = ok(&[
        ("LOG_LEVEL", "TRACE"),
        ("LOG_FORMAT", "json"),
        ("MAX_MCP_OUTPUT_TOKENS", "200000"),
        ("CONVERSE_FILES_ROOT", "/data/files"),
        ("CONVERSE_MODELS_FILE", "models.yaml"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://otel-collector.observability:4318",
        ),
        ("OTEL_SERVICE_NAME", "team-a"),
    ]);
    assert_eq!(
        c.log,
        LogConfig {
            level: LogLevel::Trace,
            format: LogFormat::Json
        }
    );
    assert_eq!(c.max_output_tokens, 200_000);
    assert_eq!(c.files_root, Some(PathBuf::from("/data/files")));
    assert_eq!(c.models_file, Some(PathBuf::from("models.yaml")));
    assert_eq!(
        c.telemetry.otlp_endpoint.as_ref().map(url::Url::as_str),
        Some("http://otel-collector.observability:4318/")
    );
    assert_eq!(c.telemetry.service_name, "team-a");
    assert_eq!(
        parse(&[("MAX_MCP_OUTPUT_TOKENS", "0")])
            .expect_err("zero")
            .vars(),
        ["MAX_MCP_OUTPUT_TOKENS"]
    );
}

#[test]
fn unknown_variables_are_ignored() {
    let c = ok(&[
        ("PATH", "/usr/bin"),
        ("HOME", "/root"),
        ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
        ("NODE_ENV", "production"),
    ]);
    assert!(c.env_warnings.is_empty());
}

#[test]
fn later_duplicates_win() {
    let c = ok(&[("HTTP_PORT", "1"), ("HTTP_PORT", "2")]);
    assert_eq!(c.http.port, 2);
}

const JWT_SECRET: &str = "jwt-secret-0123456789-0123456789-abc";
const OAUTH_SECRET: &str = "oauth-client-secret-value";
const API_KEY: &str = "api-key-plain-value-0123456789abcdef";
const API_KEY_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const REDIS_PASSWORD: &str = "redis-password-value";
const PROVIDER_KEYS: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "sk-openai-secret"),
    ("XAI_API_KEY", "xai-secret"),
    ("GEMINI_API_KEY", "gemini-secret"),
    ("ANTHROPIC_API_KEY", "sk-ant-secret"),
    ("MISTRAL_API_KEY", "mistral-secret"),
    ("DEEPSEEK_API_KEY", "deepseek-secret"),
    ("OPENROUTER_API_KEY", "sk-or-secret"),
    ("CUSTOM_LOCAL_API_KEY", "custom-secret"),
];

fn everything_secret() -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("MCP_AUTH_STRATEGY", "oauth2"),
        ("MCP_JWT_SECRET", JWT_SECRET),
        ("MCP_OAUTH_CLIENT_ID", "client"),
        ("MCP_OAUTH_CLIENT_SECRET", OAUTH_SECRET),
        ("MCP_OAUTH_AUTH_URL", "https://idp.example.com/authorize"),
        ("MCP_OAUTH_TOKEN_URL", "https://idp.example.com/token"),
        ("MCP_OAUTH_USERINFO_URL", "https://idp.example.com/userinfo"),
        (
            "MCP_OAUTH_CALLBACK_URL",
            "https://mcp.example.com/oauth/callback",
        ),
        ("MCP_OAUTH_ALLOWED_USERS", "@example.com"),
        ("CUSTOM_PROVIDERS", "local"),
        ("CUSTOM_LOCAL_BASE_URL", "http://local:8000/v1"),
        ("CUSTOM_LOCAL_MODELS", "m1"),
        ("CONVERSATION_STORE", "redis"),
    ]
    .iter()
    .chain(PROVIDER_KEYS)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    vars.push((
        "MCP_API_KEYS".into(),
        format!("{API_KEY},sha256:{API_KEY_HASH}"),
    ));
    vars.push((
        "REDIS_URL".into(),
        format!("redis://default:{REDIS_PASSWORD}@redis:6379/0"),
    ));
    vars
}

fn secret_strings() -> Vec<&'static str> {
    let mut s = vec![
        JWT_SECRET,
        OAUTH_SECRET,
        API_KEY,
        API_KEY_HASH,
        REDIS_PASSWORD,
    ];
    s.extend(PROVIDER_KEYS.iter().map(|(_, v)| *v));
    s
}

#[test]
fn secrets_are_never_printed() {
    let c = ServerConfig::from_vars(everything_secret(), None).expect("valid");
    for text in [
        format!("{c:?}"),
        format!("{c:#?}"),
        format!("{:?}", c.clone()),
        c.warnings().join("\n"),
    ] {
        for secret in secret_strings() {
            assert!(
                !text.contains(secret),
                "secret {secret:?} printed in:\n{text}"
            );
        }
    }
    // ...yet they are all there for the server to use.
    assert_eq!(c.auth.api_keys.len(), 2);
    assert_eq!(c.providers.configured_names().len(), 8);
}

#[test]
fn secrets_set_lists_names_only() {
    let c = ServerConfig::from_vars(everything_secret(), None).expect("valid");
    assert_eq!(
        c.secrets_set(),
        [
            "MCP_JWT_SECRET",
            "MCP_API_KEYS",
            "MCP_OAUTH_CLIENT_SECRET",
            "OPENAI_API_KEY",
            "XAI_API_KEY",
            "GOOGLE_API_KEY",
            "ANTHROPIC_API_KEY",
            "MISTRAL_API_KEY",
            "DEEPSEEK_API_KEY",
            "OPENROUTER_API_KEY",
            "CUSTOM_<NAME>_API_KEY",
            "REDIS_URL"
        ]
    );
    for name in c.secrets_set() {
        assert!(
            name == vars::CUSTOM_API_KEY_PATTERN || vars::is_secret(name),
            "{name}"
        );
    }
}

#[test]
fn errors_about_secrets_do_not_show_them() {
    let vars = [
        ("MCP_AUTH_STRATEGY", "bearer"),
        ("MCP_JWT_SECRET", "short-jwt-secret"),
        ("MCP_API_KEYS", "sha256:not-hex-secret"),
        ("REDIS_URL", "mysql://root:pw-secret@db"),
        ("OPENAI_API_KEY", "sk-line\nbreak-secret"),
        ("GOOGLE_API_KEY", "google-secret-a"),
        ("GEMINI_API_KEY", "google-secret-b"),
        ("CUSTOM_PROVIDERS", "x"),
        ("CUSTOM_X_BASE_URL", "http://x"),
        ("CUSTOM_X_MODELS", "m"),
        ("CUSTOM_X_API_KEY", "custom\u{1}secret"),
    ];
    let errs = parse(&vars).expect_err("invalid");
    assert_eq!(errs.0.len(), 6, "{errs}");
    let text = format!("{errs}\n{errs:?}");
    for needle in [
        "short-jwt",
        "not-hex",
        "pw-secret",
        "break-secret",
        "google-secret",
        "custom\u{1}",
    ] {
        assert!(!text.contains(needle), "{needle:?} shown in:\n{text}");
    }
}

#[test]
fn warnings_for_no_provider_and_open_listener() {
    let c = ok(&[("HTTP_HOST", "0.0.0.0")]);
    let w = c.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("no provider is configured"));
    assert!(w[1].contains("MCP_AUTH_STRATEGY=none while listening on 0.0.0.0:3157"));

    let c = ok(&[("OPENAI_API_KEY", "k")]);
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    let c = ok(&[("OPENAI_API_KEY", "k"), ("HTTP_HOST", "::1")]);
    assert!(c.warnings().is_empty());
    let c = ok(&[
        ("OPENAI_API_KEY", "k"),
        ("HTTP_HOST", "0.0.0.0"),
        ("MCP_TRANSPORT", "stdio"),
    ]);
    assert!(c.warnings().is_empty());
}

#[test]
fn env_warnings_are_kept() {
    let c = ok(&[
        ("OPENAI_API_KEY", "k"),
        ("MCP_AUTH_STRATEGIE", "bearer"),
        ("PORT", "1"),
        ("HTTP_PORT", "2"),
    ]);
    assert_eq!(c.warnings().len(), 2, "{:?}", c.warnings());
}

#[test]
fn markdown_reference_contains_every_variable() {
    let md = render_markdown_reference();
    for spec in VARIABLES.iter() {
        assert!(md.contains(spec.name), "{} missing", spec.name);
    }
    assert!(md.contains("| `MCP_JWT_SECRET` | — | yes |"));
    assert!(md.contains("| `HTTP_PORT` | `3157` |  |"));
}

#[test]
fn from_env_does_not_panic() {
    // The test process environment is whatever the runner has; only the call must be safe.
    let _ = ServerConfig::from_env(Some(Transport::Stdio));
}

/// `*` lets every web page the user visits drive the server: only behind authentication.
#[test]
fn any_cors_origin_needs_an_auth_strategy() {
    let e = parse(&[("HTTP_CORS_ORIGINS", "*")]).unwrap_err();
    assert_eq!(e.vars(), ["HTTP_CORS_ORIGINS"]);
    assert!(e.to_string().contains("MCP_AUTH_STRATEGY"), "{e}");
    let c = ok(&[
        ("HTTP_CORS_ORIGINS", "*"),
        ("MCP_AUTH_STRATEGY", "api_key"),
        ("MCP_API_KEYS", API_KEY),
    ]);
    assert!(c.http.cors.any_origin());
    let c = ok(&[("HTTP_CORS_ORIGINS", "https://app.example.com")]);
    assert_eq!(c.http.cors.origins, ["https://app.example.com"]);
}
