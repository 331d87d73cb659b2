//! The contract between operator and server (docs/ARCHITECTURE.md, "The contract"): for every
//! fixture, render the Deployment, resolve its env the way the kubelet does (secretKeyRef →
//! the test Secrets), and parse it with converse-server's own parser. It must parse without
//! errors or warnings, and the parsed configuration must say what the ConverseServer says.

mod common;

use std::time::Duration;

use converse_config::vars;
use converse_config::{
    AllowedUser, AuthStrategy, ConversationStoreKind, JwtAlgorithm, LogFormat, LogLevel,
    ServerConfig,
};
use converse_operator::desired::files::FILES_MOUNT_PATH;
use secrecy::ExposeSecret;

use common::*;

fn parse(stem: &str) -> ServerConfig {
    let objects = render(&server_named(stem));
    let env = resolve_env(&objects);
    let config = ServerConfig::from_vars(env.clone(), None)
        .unwrap_or_else(|e| panic!("{stem}: the server refuses the operator's env: {e}\n{env:?}"));
    assert!(
        config.env_warnings.is_empty(),
        "{stem}: the server warns about the operator's env: {:?}",
        config.env_warnings
    );
    config
}

#[test]
fn every_fixture_round_trips() {
    for (stem, server) in servers() {
        let objects = render(&server);
        let env = resolve_env(&objects);
        let config = ServerConfig::from_vars(env, None).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert!(
            config.env_warnings.is_empty(),
            "{stem}: {:?}",
            config.env_warnings
        );
        // Common to all: listening on the pod network, on the port the Service targets.
        assert_eq!(config.http.host, "0.0.0.0", "{stem}");
        assert_eq!(config.http.port, 3157, "{stem}");
        // The strategy is the CR's.
        let want = server
            .spec
            .auth
            .as_ref()
            .map(|a| a.strategy.to_config())
            .unwrap_or_default();
        assert_eq!(config.auth.strategy, want, "{stem}");
        // Every provider of the CR is configured, and nothing else.
        let mut want: Vec<String> = server
            .spec
            .providers
            .builtin()
            .iter()
            .map(|(row, _, _)| row.name.to_owned())
            .chain(server.spec.providers.custom.iter().map(|c| c.name.clone()))
            .collect();
        let mut got = config.providers.configured_names();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{stem}");
        // Local files exactly when the CR has a files directory, at its mount.
        assert_eq!(
            config.files_root.as_deref(),
            server
                .spec
                .files
                .as_ref()
                .map(|_| std::path::Path::new(FILES_MOUNT_PATH)),
            "{stem}"
        );
        // The public URL is what status.url will say (oidc needs it).
        if want_public_url(&server) {
            assert_eq!(
                config.auth.oidc.public_url.as_ref().map(|u| u.as_str()),
                Some(objects.url.as_str()),
                "{stem}"
            );
        }
    }
}

fn want_public_url(server: &converse_operator::ConverseServer) -> bool {
    server
        .spec
        .auth
        .as_ref()
        .is_some_and(|a| a.strategy == converse_operator::crd::AuthStrategy::Oidc)
}

#[test]
fn minimal_server_is_open_on_purpose_and_reachable_by_service_and_port_forward() {
    let c = parse("none-minimal");
    assert_eq!(c.auth.strategy, AuthStrategy::None);
    assert!(!c.auth.required);
    assert_eq!(c.log.format, LogFormat::Json);
    assert!(c.http.dns_rebinding_protection);
    for host in [
        "minimal",
        "minimal.dev",
        "minimal.dev.svc",
        "minimal.dev.svc.cluster.local",
        "localhost",
        "127.0.0.1",
        "::1",
    ] {
        assert!(c.http.allowed_hosts.iter().any(|h| h == host), "{host}");
    }
    assert_eq!(
        c.providers.get("openai").map(|p| p.api_key.expose_secret()),
        Some("sk-openai-test")
    );
    assert_eq!(c.conversations.store, ConversationStoreKind::Memory);
}

#[test]
fn api_keys_ingress_redis_limits() {
    let c = parse("apikey-ingress");
    assert_eq!(c.auth.strategy, AuthStrategy::ApiKey);
    assert!(c.auth.required);
    assert_eq!(c.auth.api_keys.len(), 2);
    assert_eq!(c.log.level, LogLevel::Debug);
    assert!(c.http.allowed_hosts.iter().any(|h| h == "mcp.example.com"));
    assert_eq!(c.http.cors.origins, ["https://app.example.com"]);
    assert!(c.http.cors.credentials);
    assert!(c.http.rate_limit.enabled);
    assert_eq!(c.http.rate_limit.window, Duration::from_secs(900));
    assert_eq!(c.http.rate_limit.max_requests, 1000);
    assert_eq!(c.http.max_concurrent_sessions, 200);
    assert_eq!(c.http.request_timeout, Duration::from_secs(600));
    assert_eq!(c.http.max_request_size, 20 << 20);
    // Unset in the spec: the server's default.
    assert_eq!(c.http.max_concurrent_requests, 512);
    assert_eq!(c.conversations.store, ConversationStoreKind::Redis);
    assert_eq!(
        c.conversations
            .redis_url
            .as_ref()
            .map(|u| u.expose_secret()),
        Some("redis://:p4ss@redis.ai-tools:6379/0")
    );
    assert_eq!(
        c.providers.get("openai").map(|p| p.base_url.as_str()),
        Some("https://api.openai.com/v1")
    );
    assert!(c.providers.get("anthropic").is_some());
}

#[test]
fn bearer_with_shared_secret() {
    let c = parse("bearer-hs256");
    assert_eq!(c.auth.strategy, AuthStrategy::Bearer);
    assert_eq!(c.auth.jwt.algorithm, JwtAlgorithm::HS384);
    assert_eq!(c.auth.jwt.issuer, "https://issuer.example.com");
    assert_eq!(c.auth.jwt.audience.as_deref(), Some("converse"));
    assert_eq!(
        c.auth.jwt.secret.as_ref().map(|s| s.expose_secret()),
        Some("jwt-hmac-secret-for-tests-0123456789abcdef")
    );
    assert!(c.auth.session_auth.require_for_session);
    assert!(c.auth.jwt.public_key.is_none());
}

#[test]
fn bearer_with_public_key() {
    let c = parse("bearer-eddsa");
    assert_eq!(c.auth.jwt.algorithm, JwtAlgorithm::EdDSA);
    assert!(
        c.auth
            .jwt
            .public_key
            .as_deref()
            .is_some_and(|k| k.contains("BEGIN PUBLIC KEY"))
    );
    assert!(c.auth.jwt.secret.is_none());
}

#[test]
fn oauth2_with_generated_secret_and_derived_callback() {
    let c = parse("oauth2-generated");
    assert_eq!(c.auth.strategy, AuthStrategy::OAuth2);
    assert_eq!(c.auth.oauth.client_id.as_deref(), Some("converse-client"));
    assert_eq!(
        c.auth.oauth.callback_url.as_ref().map(|u| u.as_str()),
        Some("https://login.example.com/oauth/callback")
    );
    assert_eq!(c.auth.oauth.scope, "read:user");
    assert_eq!(
        c.auth.oauth.allowed_users,
        [
            AllowedUser::Identity("octocat".into()),
            AllowedUser::Identity("12345678".into()),
            AllowedUser::Identity("alice@example.com".into()),
            AllowedUser::Domain("example.org".into()),
        ]
    );
    assert_eq!(c.auth.jwt.expires_in, Duration::from_secs(12 * 3600));
    assert_eq!(
        c.auth.jwt.secret.as_ref().map(|s| s.expose_secret()),
        Some(GENERATED_JWT)
    );
}

#[test]
fn oauth2_with_given_secret_and_callback() {
    let c = parse("oauth2-jwtref");
    assert!(c.auth.required);
    assert_eq!(
        c.auth.oauth.callback_url.as_ref().map(|u| u.as_str()),
        Some("https://converse.internal.example.com/oauth/callback")
    );
    assert_eq!(
        c.auth.oauth.allowed_users,
        [AllowedUser::Domain("example.com".into())]
    );
    assert_eq!(
        c.auth.jwt.secret.as_ref().map(|s| s.expose_secret()),
        Some("jwt-hmac-secret-for-tests-0123456789abcdef")
    );
}

#[test]
fn oidc_audience_defaults_to_the_public_url() {
    let c = parse("oidc-ingress");
    assert_eq!(c.auth.strategy, AuthStrategy::Oidc);
    assert_eq!(
        c.auth.oidc.public_url.as_ref().map(|u| u.as_str()),
        Some("https://oidc.example.com/mcp")
    );
    assert_eq!(
        c.auth.oidc.effective_audience().as_deref(),
        Some("https://oidc.example.com/mcp")
    );
    assert_eq!(c.auth.oidc.required_scopes, ["mcp:tools", "mcp:read"]);
    // oidc follows the MCP spec: sessions need credentials too.
    assert!(c.auth.session_auth.require_for_session);

    let c = parse("oidc-service");
    assert_eq!(
        c.auth.oidc.public_url.as_ref().map(|u| u.as_str()),
        Some("http://oidc-internal.ai-tools.svc/mcp")
    );
    assert_eq!(
        c.auth.oidc.effective_audience().as_deref(),
        Some("converse-api")
    );
    assert_eq!(
        c.auth.oidc.jwks_url.as_ref().map(|u| u.as_str()),
        Some("https://accounts.example.com/keys")
    );
}

#[test]
fn everything_reaches_the_server() {
    let c = parse("everything");
    assert_eq!(c.log.level, LogLevel::Trace);
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.max_output_tokens, 30_000);
    assert_eq!(c.providers.configured_names().len(), 10);
    assert_eq!(
        c.providers.get("openai").map(|p| p.base_url.as_str()),
        Some("https://gateway.example.com/openai/v1")
    );
    assert_eq!(
        c.providers.get("groq").map(|p| p.base_url.as_str()),
        Some("https://gateway.example.com/groq/v1")
    );
    assert_eq!(c.providers.openrouter_title.as_deref(), Some("Team Lab"));
    assert_eq!(
        c.providers.openrouter_referer.as_deref(),
        Some("https://example.com")
    );
    let vllm = &c.providers.custom[0];
    assert_eq!(vllm.name, "local-vllm");
    assert_eq!(vllm.models, ["llama-3.3-70b", "qwen3-32b"]);
    assert_eq!(
        vllm.api_key.as_ref().map(|k| k.expose_secret()),
        Some("vllm-test")
    );
    assert!(c.providers.custom[1].api_key.is_none());
    assert_eq!(c.providers.timeout, Duration::from_secs(300));
    assert_eq!(c.providers.max_retries, 4);
    assert_eq!(
        c.http.allowed_hosts,
        ["converse.lab.example.com", "everything.lab.svc"]
    );
    assert_eq!(
        c.http.allowed_origins,
        ["https://app.example.com", "http://localhost:*"]
    );
    assert_eq!(c.http.trusted_proxies.len(), 2);
    assert_eq!(c.http.rate_limit.window, Duration::from_secs(5400));
    assert_eq!(c.http.session_timeout, Duration::from_secs(45 * 60));
    assert_eq!(c.http.session_cleanup_interval, Duration::from_secs(120));
    assert_eq!(c.http.max_concurrent_sessions, 500);
    assert_eq!(c.http.max_request_size, 1 << 20);
    assert_eq!(c.http.max_concurrent_requests, 2000);
    assert_eq!(c.http.cors.methods, ["GET", "POST"]);
    assert_eq!(c.conversations.ttl, Duration::from_secs(6 * 3600));
    assert_eq!(
        (
            c.conversations.max_conversations,
            c.conversations.max_messages,
            c.conversations.max_bytes
        ),
        (50, 20, 512 << 10)
    );
    assert_eq!(
        c.telemetry.otlp_endpoint.as_ref().map(|u| u.as_str()),
        Some("http://otel-collector.observability:4318/")
    );
    assert_eq!(c.telemetry.service_name, "converse-lab");
}

#[test]
fn no_secret_is_ever_a_literal() {
    for (stem, server) in servers() {
        let objects = render(&server);
        for e in container(&objects).env.clone().unwrap_or_default() {
            if vars::is_secret(&e.name) {
                assert!(e.value.is_none(), "{stem}: {} has a literal value", e.name);
                // A secretKeyRef, or unset (empty, so envFrom cannot set it).
                if let Some(from) = e.value_from {
                    assert!(
                        from.secret_key_ref.is_some(),
                        "{stem}: {} is not a secretKeyRef",
                        e.name
                    );
                }
            }
        }
        // And no secret value appears anywhere in the rendered objects but the generated
        // Secret (which holds the generated JWT secret by design).
        let rendered = serde_json::to_string(&(
            &objects.deployment,
            &objects.service,
            &objects.ingress,
            &objects.network_policy,
            &objects.horizontal_pod_autoscaler,
            &objects.pod_disruption_budget,
        ))
        .unwrap();
        for (secret, data) in secret_data() {
            for (key, value) in data {
                assert!(
                    !rendered.contains(value.trim()),
                    "{stem}: the value of {secret}/{key} leaked into the objects"
                );
            }
        }
        assert!(!rendered.contains(GENERATED_JWT), "{stem}");
    }
}

/// `spec.files` becomes `CONVERSE_FILES_ROOT`, which the server accepts (an absolute path) and
/// which is where the Deployment mounts the files volume.
#[test]
fn files_root_is_the_mounted_directory() {
    let c = parse("files-configmap");
    assert_eq!(
        c.files_root.as_deref(),
        Some(std::path::Path::new(FILES_MOUNT_PATH))
    );
    let objects = render(&server_named("files-configmap"));
    let mounts: Vec<&str> = container(&objects)
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| m.read_only == Some(true))
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts, [FILES_MOUNT_PATH]);
    // Without spec.files the server reads no local files over HTTP.
    assert!(parse("none-minimal").files_root.is_none());
}

#[test]
fn examples_round_trip() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let objects = render(&common::server(&path));
        ServerConfig::from_vars(resolve_env(&objects), None)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 1);
}

/// `spec.envFrom` cannot set a managed variable: the operator writes every one of them in `env`
/// (empty when the spec leaves it unset), and `env` wins over `envFrom` in Kubernetes. So a
/// ConfigMap or Secret in envFrom that tries to open the file system, switch authentication
/// off, add API keys or move the port changes nothing the server sees.
#[test]
fn env_from_cannot_override_managed_variables() {
    let hostile = [
        (vars::CONVERSE_FILES_ROOT, "/"),
        (vars::MCP_AUTH_STRATEGY, "none"),
        (vars::MCP_AUTH_REQUIRE, "false"),
        (
            vars::MCP_API_KEYS,
            "attacker-key-0123456789abcdef0123456789",
        ),
        (vars::HTTP_PORT, "8080"),
        (vars::HTTP_DNS_REBINDING_PROTECTION, "false"),
        (vars::MCP_JWT_JWKS_FILE, "/tmp/jwks.json"),
        (vars::REDIS_URL, "redis://attacker:6379"),
        (vars::CONVERSATION_STORE, "redis"),
        ("GEMINI_API_KEY", "attacker-gemini-key"),
        ("CUSTOM_OLLAMA_API_KEY", "attacker-ollama-key"),
    ];
    for (stem, server) in servers() {
        let objects = render(&server);
        let names: Vec<String> = container(&objects)
            .env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.name)
            .collect();
        for managed in converse_operator::crd::rules::managed_variable_names() {
            assert!(
                names.iter().any(|n| n == managed),
                "{stem}: no env entry for {managed}, so envFrom could set it"
            );
        }
        for custom in &server.spec.providers.custom {
            for var in [
                vars::custom_base_url_var(&custom.name),
                vars::custom_models_var(&custom.name),
                vars::custom_api_key_var(&custom.name),
            ] {
                assert!(names.contains(&var), "{stem}: no env entry for {var}");
            }
        }

        let plain = ServerConfig::from_vars(resolve_env(&objects), None)
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let attacked = ServerConfig::from_vars(resolve_env_with_env_from(&objects, &hostile), None)
            .unwrap_or_else(|e| panic!("{stem}: the hostile envFrom broke the env: {e}"));
        assert_eq!(attacked.files_root, plain.files_root, "{stem}");
        assert_eq!(attacked.auth.strategy, plain.auth.strategy, "{stem}");
        assert_eq!(attacked.auth.required, plain.auth.required, "{stem}");
        assert_eq!(
            attacked.auth.api_keys.len(),
            plain.auth.api_keys.len(),
            "{stem}"
        );
        assert!(attacked.auth.jwt.jwks_file.is_none(), "{stem}");
        assert_eq!(attacked.http.port, 3157, "{stem}");
        assert_eq!(
            attacked.http.dns_rebinding_protection, plain.http.dns_rebinding_protection,
            "{stem}"
        );
        assert_eq!(
            attacked.conversations.store, plain.conversations.store,
            "{stem}"
        );
        assert_eq!(
            attacked.providers.configured_names(),
            plain.providers.configured_names(),
            "{stem}"
        );
        for (plain, attacked) in plain
            .providers
            .custom
            .iter()
            .zip(&attacked.providers.custom)
        {
            assert_eq!(
                plain.api_key.as_ref().map(|k| k.expose_secret().to_owned()),
                attacked
                    .api_key
                    .as_ref()
                    .map(|k| k.expose_secret().to_owned()),
                "{stem}: {}",
                plain.name
            );
        }
    }
}
