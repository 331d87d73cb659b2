//! Phase 2 from fixtures: what CEL cannot see (Secrets and keys), what the server's own parser
//! would refuse (mapped back to spec fields), and the structural rules the build relies on.

mod common;

use converse_operator::crd::AuthStrategy;
use converse_operator::references::{EnvSourceKind, secret_names};
use converse_operator::validate::{
    FieldError, FilesCheck, FilesProblem, ResolvedEnvSource, SecretProblem, ValidationError,
};
use converse_operator::{ConverseServer, Dereferenced, validate};
use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use common::*;

fn field_errors(server: &ConverseServer) -> Vec<FieldError> {
    match validate(server, &dereferenced()) {
        Err(ValidationError::InvalidSpec(errors)) => errors,
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
}

fn secret_problems(server: &ConverseServer, d: &Dereferenced) -> Vec<SecretProblem> {
    match validate(server, d) {
        Err(ValidationError::UnresolvedSecrets(problems)) => problems,
        other => panic!("expected UnresolvedSecrets, got {other:?}"),
    }
}

#[test]
fn every_fixture_validates() {
    for (stem, server) in servers() {
        let v = validate(&server, &dereferenced()).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(v.name, server.metadata.name.clone().unwrap());
        assert!(v.owner.is_some(), "{stem}: owner reference from the uid");
        assert!(!v.secrets.is_empty(), "{stem}");
    }
}

#[test]
fn derived_facts() {
    let v = validated(&server_named("oauth2-generated"));
    assert_eq!(v.auth_strategy, AuthStrategy::OAuth2);
    assert!(v.needs_generated_jwt_secret);
    assert_eq!(v.public_url, "https://login.example.com/mcp");
    let v = validated(&server_named("oauth2-jwtref"));
    assert!(!v.needs_generated_jwt_secret);
    assert_eq!(v.public_url, "http://login-internal.ai-tools.svc/mcp");
    let v = validated(&server_named("apikey-ingress"));
    // Referenced keys, sorted and deduplicated, with their digests.
    let keys: Vec<String> = v
        .secrets
        .iter()
        .map(|s| format!("{}/{}", s.name, s.key))
        .collect();
    assert_eq!(
        keys,
        [
            "llm-keys/anthropic",
            "llm-keys/openai",
            "mcp-keys/keys",
            "redis/url"
        ]
    );
    assert!(v.secrets.iter().all(|s| s.sha256.len() == 64));
}

#[test]
fn missing_secrets_and_keys_are_named() {
    let server = server_named("apikey-ingress");
    let d = Dereferenced::default()
        .with_secret("llm-keys", [("openai", "x")])
        .with_secret("mcp-keys", [("keys", "")]);
    let problems = secret_problems(&server, &d);
    assert_eq!(
        problems,
        [
            SecretProblem::KeyNotFound {
                field: "providers.anthropic.apiKeySecretRef".into(),
                secret: "llm-keys".into(),
                key: "anthropic".into()
            },
            SecretProblem::Empty {
                field: "auth.apiKey.secretRef".into(),
                secret: "mcp-keys".into(),
                key: "keys".into()
            },
            SecretProblem::SecretNotFound {
                field: "conversations.redis.urlSecretRef".into(),
                secret: "redis".into()
            },
        ]
    );
    let err = validate(&server, &d).unwrap_err();
    assert_eq!(err.condition_type(), "SecretsResolved");
    assert_eq!(err.reason(), "SecretKeyNotFound");
    assert!(
        err.to_string()
            .contains("Secret \"llm-keys\" has no key \"anthropic\"")
    );
    assert_eq!(
        secret_names(&server.spec),
        ["llm-keys", "mcp-keys", "redis"]
    );
}

#[test]
fn a_short_jwt_secret_is_refused_without_showing_it() {
    let server = server_named("bearer-hs256");
    let d = dereferenced().with_secret("jwt", [("secret", "short-secret")]);
    let problems = secret_problems(&server, &d);
    assert!(matches!(
        &problems[..],
        [SecretProblem::TooShort { min: 32, .. }]
    ));
    let message = validate(&server, &d).unwrap_err().to_string();
    assert!(!message.contains("short-secret"));
    // Status never says how long a Secret's value is.
    assert!(!message.contains("12"), "{message}");
}

#[test]
fn short_api_keys_are_refused_by_entry_number_without_showing_them() {
    let server = server_named("apikey-ingress");
    let good = "team-a-key-1-0123456789abcdef0123456789abcdef";
    // 31 characters: one short of the minimum.
    let short = "team-a-key-2-0123456789abcdef01";
    let d = dereferenced().with_secret("mcp-keys", [("keys", format!("{good}\n{short}\n"))]);
    let problems = secret_problems(&server, &d);
    assert!(
        matches!(
            &problems[..],
            [SecretProblem::ApiKeyRefused { entry: 2, field, .. }] if field == "auth.apiKey.secretRef"
        ),
        "{problems:?}"
    );
    let err = validate(&server, &d).unwrap_err();
    assert_eq!(err.condition_type(), "SecretsResolved");
    assert_eq!(err.reason(), "SecretValueInvalid");
    let message = err.to_string();
    assert!(
        message.contains("entry 2 of key \"keys\" of Secret \"mcp-keys\""),
        "{message}"
    );
    assert!(message.contains("at least 32 characters"), "{message}");
    assert!(
        !message.contains(short) && !message.contains(good),
        "{message}"
    );
    // Status never says how long the entry is.
    assert!(!message.contains("31"), "{message}");

    // Every bad entry is named; digests are exempt from the minimum but must be well formed.
    let digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let d = dereferenced().with_secret(
        "mcp-keys",
        [("keys", format!("short,{digest},sha256:abcd,{good}"))],
    );
    let entries: Vec<usize> = secret_problems(&server, &d)
        .iter()
        .map(|p| match p {
            SecretProblem::ApiKeyRefused { entry, .. } => *entry,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(entries, [1, 3]);

    // Separators only: no key at all.
    let d = dereferenced().with_secret("mcp-keys", [("keys", ",\n")]);
    assert!(matches!(
        &secret_problems(&server, &d)[..],
        [SecretProblem::Empty { .. }]
    ));

    // Other Secret keys are not API-key lists: a short provider key is the provider's business.
    let d = dereferenced().with_secret("llm-keys", [("openai", "sk"), ("anthropic", "sk")]);
    assert!(validate(&server, &d).is_ok());
}

#[test]
fn values_the_server_would_refuse_are_reported_by_field() {
    let mut server = server_named("everything");
    server.spec.rate_limit.as_mut().unwrap().window = Some("0s".into());
    server.spec.providers.openai.as_mut().unwrap().base_url = Some("ftp://gateway".into());
    server.spec.network.as_mut().unwrap().allowed_origins =
        vec!["https://app.example.com/path".into()];
    server.spec.network.as_mut().unwrap().trusted_proxies = vec!["not-a-cidr".into()];
    server.spec.http.as_mut().unwrap().max_request_size = Some(Quantity("10M".into()));
    server.spec.providers.custom[0].base_url = "vllm:8000".into();
    let errors = field_errors(&server);
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for want in [
        "rateLimit.window",
        "providers.openai.baseUrl",
        "network.allowedOrigins",
        "network.trustedProxies",
        "http.maxRequestSize",
        "providers.custom[local-vllm].baseUrl",
    ] {
        assert!(fields.contains(&want), "{want} missing from {errors:?}");
    }
    let window = errors
        .iter()
        .find(|e| e.field == "rateLimit.window")
        .unwrap();
    assert!(window.message.contains("at least 1s"), "{window}");
    assert!(window.to_string().starts_with("spec.rateLimit.window: "));
    let err = validate(&server, &dereferenced()).unwrap_err();
    assert_eq!(err.condition_type(), "Accepted");
    assert_eq!(err.reason(), "InvalidSpec");
}

#[test]
fn structural_rules_hold_even_without_cel() {
    let mut server = server_named("everything");
    server.spec.replicas = Some(2);
    server.spec.env.push(EnvVar {
        name: "MCP_AUTH_STRATEGY".into(),
        value: Some("none".into()),
        value_from: None,
    });
    server
        .spec
        .pod
        .as_mut()
        .unwrap()
        .labels
        .insert("app.kubernetes.io/name".into(), "other".into());
    let fields: Vec<String> = field_errors(&server).into_iter().map(|e| e.field).collect();
    assert_eq!(fields, ["replicas", "env", "pod.labels"]);

    let mut server = server_named("none-minimal");
    server.spec.providers = Default::default();
    assert_eq!(field_errors(&server)[0].field, "providers");

    let mut server = server_named("apikey-ingress");
    server.spec.auth.as_mut().unwrap().api_key = None;
    assert_eq!(field_errors(&server)[0].field, "auth.apiKey");

    let mut server = server_named("apikey-ingress");
    server.spec.ingress.as_mut().unwrap().host = None;
    assert_eq!(field_errors(&server)[0].field, "ingress.host");
}

#[test]
fn oauth2_without_allowed_users_names_the_field() {
    // CEL refuses this at apply time; an object stored before the field existed still reads,
    // and the server's parser (run by validate) names what is missing.
    let mut server = server_named("oauth2-generated");
    server
        .spec
        .auth
        .as_mut()
        .unwrap()
        .oauth2
        .as_mut()
        .unwrap()
        .allowed_users = Vec::new();
    let errors = field_errors(&server);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "auth.oauth2.allowedUsers");
    assert!(
        errors[0].message.contains("MCP_OAUTH_ALLOWED_USERS"),
        "{}",
        errors[0]
    );

    // Every account is a valid, explicit choice; the server's warning reaches the user.
    server
        .spec
        .auth
        .as_mut()
        .unwrap()
        .oauth2
        .as_mut()
        .unwrap()
        .allowed_users = vec!["*".into()];
    let v = validated(&server);
    assert!(
        v.warnings.iter().any(|w| w.contains("every account")),
        "{:?}",
        v.warnings
    );
}

#[test]
fn warnings_for_valid_but_risky_specs() {
    let v = validated(&server_named("everything"));
    assert!(
        v.warnings.iter().any(|w| w.contains("store Memory")),
        "{:?}",
        v.warnings
    );
    let mut server = server_named("none-minimal");
    server.spec.ingress = Some(converse_operator::crd::Ingress {
        host: Some("open.example.com".into()),
        ..Default::default()
    });
    let v = validated(&server);
    assert!(v.warnings.iter().any(|w| w.contains("strategy none")));
    assert!(
        validated(&server_named("apikey-ingress"))
            .warnings
            .is_empty()
    );
}

fn files_problems(server: &ConverseServer, d: &Dereferenced) -> Vec<FilesProblem> {
    match validate(server, d) {
        Err(ValidationError::UnresolvedFiles(problems)) => problems,
        other => panic!("expected UnresolvedFiles, got {other:?}"),
    }
}

/// Without dereferenced's ConfigMaps and claims: only the fixture Secrets.
fn secrets_only() -> Dereferenced {
    Dereferenced {
        config_maps: Default::default(),
        claims: Default::default(),
        ..dereferenced()
    }
}

#[test]
fn a_missing_files_source_or_key_is_named() {
    let server = server_named("files-configmap");
    assert_eq!(
        files_problems(&server, &secrets_only()),
        [FilesProblem::ConfigMapNotFound {
            name: "team-docs".into()
        }]
    );
    let err = validate(&server, &secrets_only()).unwrap_err();
    assert_eq!(err.condition_type(), "FilesResolved");
    assert_eq!(err.reason(), "ConfigMapNotFound");
    assert!(
        err.to_string()
            .contains("ConfigMap \"team-docs\" (spec.files.configMap) does not exist"),
        "{err}"
    );

    // Every listed key that is missing, by name.
    let d = secrets_only().with_config_map("team-docs", ["design.md"]);
    assert_eq!(
        files_problems(&server, &d),
        [FilesProblem::ConfigMapKeyNotFound {
            name: "team-docs".into(),
            key: "logo.png".into()
        }]
    );
    assert_eq!(
        validate(&server, &d).unwrap_err().reason(),
        "ConfigMapKeyNotFound"
    );

    // Without items every key is a file: any ConfigMap of that name will do.
    let mut all_keys = server.clone();
    if let Some(cm) = all_keys
        .spec
        .files
        .as_mut()
        .and_then(|f| f.config_map.as_mut())
    {
        cm.items.clear();
    }
    let v = validate(
        &all_keys,
        &secrets_only().with_config_map("team-docs", [""; 0]),
    )
    .unwrap();
    assert_eq!(v.files, FilesCheck::Found("ConfigMap \"team-docs\"".into()));

    // A claim (everything's envFrom ConfigMap is there).
    let server = server_named("everything");
    let d = secrets_only().with_config_map("lab-extra", ["RUST_LOG_STYLE"]);
    let err = validate(&server, &d).unwrap_err();
    assert_eq!(err.reason(), "PersistentVolumeClaimNotFound");
    assert!(
        err.to_string().contains(
            "PersistentVolumeClaim \"lab-docs\" (spec.files.persistentVolumeClaim) does not exist"
        ),
        "{err}"
    );

    // Secrets first: while a Secret is missing, the files are not looked at.
    let server = server_named("files-configmap");
    let err = validate(&server, &Dereferenced::default()).unwrap_err();
    assert_eq!(err.condition_type(), "SecretsResolved");
}

#[test]
fn files_found_or_not_checked() {
    let v = validated(&server_named("files-configmap"));
    assert_eq!(v.files, FilesCheck::Found("ConfigMap \"team-docs\"".into()));
    assert_eq!(
        validated(&server_named("none-minimal")).files,
        FilesCheck::NotSet
    );

    // The operator may not read ConfigMaps: not checked, built anyway, and said once.
    let d = secrets_only().with_unreadable("ConfigMap", "configmaps \"team-docs\" is forbidden");
    let v = validate(&server_named("files-configmap"), &d).unwrap();
    assert!(
        matches!(&v.files, FilesCheck::NotChecked { source, .. } if source == "ConfigMap \"team-docs\""),
        "{:?}",
        v.files
    );
    assert!(
        v.warnings
            .iter()
            .any(|w| w.contains("may not read ConfigMap \"team-docs\"")),
        "{:?}",
        v.warnings
    );
}

#[test]
fn a_claim_several_nodes_cannot_share_is_a_warning() {
    // everything autoscales; its claim is ReadOnlyMany.
    let server = server_named("everything");
    let warned = |d: &Dereferenced| {
        validate(&server, d)
            .unwrap()
            .warnings
            .iter()
            .any(|w| w.contains("spec.files.persistentVolumeClaim \"lab-docs\""))
    };
    assert!(!warned(&dereferenced()));
    assert!(warned(
        &dereferenced().with_claim("lab-docs", ["ReadWriteOnce"])
    ));
    assert!(!warned(
        &dereferenced().with_claim("lab-docs", ["ReadWriteOnce", "ReadOnlyMany"])
    ));
    // One replica: nothing to share.
    let mut single = server.clone();
    single.spec.autoscaling = None;
    single.spec.replicas = Some(1);
    let v = validate(
        &single,
        &dereferenced().with_claim("lab-docs", ["ReadWriteOnce"]),
    )
    .unwrap();
    assert!(
        v.warnings.iter().all(|w| !w.contains("lab-docs")),
        "{:?}",
        v.warnings
    );
}

#[test]
fn files_structure_is_rechecked() {
    let mut both = server_named("files-configmap");
    if let Some(files) = both.spec.files.as_mut() {
        files.persistent_volume_claim = Some(converse_operator::crd::FilesClaim {
            claim_name: "docs".into(),
        });
    }
    let errors = field_errors(&both);
    assert!(
        errors.iter().any(|e| e.field == "files"
            && e.message
                .contains("exactly one of configMap and persistentVolumeClaim")),
        "{errors:?}"
    );

    let mut bad_paths = server_named("files-configmap");
    if let Some(cm) = bad_paths
        .spec
        .files
        .as_mut()
        .and_then(|f| f.config_map.as_mut())
    {
        cm.items[0].path = "../escape".into();
        cm.items[1].path = "../escape".into();
    }
    let messages: Vec<String> = field_errors(&bad_paths)
        .into_iter()
        .filter(|e| e.field == "files.configMap.items")
        .map(|e| e.message)
        .collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("listed twice")),
        "{messages:?}"
    );
}

/// A ConverseServer whose environment reads Secrets and ConfigMaps in every way the kubelet
/// knows: by key (`valueFrom`), whole (`envFrom`), optional or not.
fn server_with_env_references() -> ConverseServer {
    let mut server = server_named("none-minimal");
    server.spec.env = serde_json::from_value(serde_json::json!([
        {"name": "EXTRA_TOKEN", "valueFrom": {"secretKeyRef": {"name": "extra", "key": "token"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "MAYBE", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": true}}},
    ]))
    .unwrap();
    server.spec.env_from = serde_json::from_value(serde_json::json!([
        {"secretRef": {"name": "bulk"}},
        {"configMapRef": {"name": "tuning", "optional": true}},
    ]))
    .unwrap();
    server
}

/// spec.env and spec.envFrom: a Secret or ConfigMap (or key) the kubelet would need to start the
/// container stalls the ConverseServer, naming the field; an optional one does not.
#[test]
fn environment_references_must_exist_unless_optional() {
    let server = server_with_env_references();
    let problems = secret_problems(&server, &dereferenced());
    assert_eq!(
        problems,
        [
            SecretProblem::SecretNotFound {
                field: "env[EXTRA_TOKEN].valueFrom.secretKeyRef".into(),
                secret: "extra".into()
            },
            SecretProblem::ConfigMapNotFound {
                field: "env[MODE].valueFrom.configMapKeyRef".into(),
                config_map: "settings".into()
            },
            SecretProblem::SecretNotFound {
                field: "envFrom[0].secretRef".into(),
                secret: "bulk".into()
            },
        ]
    );
    let err = validate(&server, &dereferenced()).unwrap_err();
    assert_eq!(err.condition_type(), "SecretsResolved");
    assert_eq!(err.reason(), "SecretNotFound");
    assert!(
        err.to_string().contains(
            "ConfigMap \"settings\" (spec.env[MODE].valueFrom.configMapKeyRef) does not exist"
        ),
        "{err}"
    );

    // The objects exist without the keys.
    let d = dereferenced()
        .with_secret("extra", [("other", "1")])
        .with_config_map_data("settings", [("other", "x")])
        .with_secret("bulk", [("A", "1")]);
    assert_eq!(
        secret_problems(&server, &d),
        [
            SecretProblem::KeyNotFound {
                field: "env[EXTRA_TOKEN].valueFrom.secretKeyRef".into(),
                secret: "extra".into(),
                key: "token".into()
            },
            SecretProblem::ConfigMapKeyNotFound {
                field: "env[MODE].valueFrom.configMapKeyRef".into(),
                config_map: "settings".into(),
                key: "mode".into()
            },
        ]
    );
    let mut only_config_map = server.clone();
    only_config_map.spec.env.remove(0);
    assert_eq!(
        validate(&only_config_map, &d).unwrap_err().reason(),
        "ConfigMapKeyNotFound"
    );

    // Everything required is there: the optional ones that are absent do not stall, and are
    // recorded without a digest (their arrival changes the config hash).
    let d = dereferenced()
        .with_secret("extra", [("token", "t")])
        .with_config_map_data("settings", [("mode", "fast")])
        .with_secret("bulk", [("A", "1")]);
    let v = validate(&server, &d).unwrap();
    let sources: Vec<(EnvSourceKind, &str, Option<&str>, bool)> = v
        .env_sources
        .iter()
        .map(|e: &ResolvedEnvSource| {
            (
                e.kind,
                e.name.as_str(),
                e.key.as_deref(),
                e.sha256.is_some(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            (EnvSourceKind::Secret, "absent", Some("x"), false),
            (EnvSourceKind::Secret, "bulk", None, true),
            (EnvSourceKind::Secret, "extra", Some("token"), true),
            (EnvSourceKind::ConfigMap, "settings", Some("mode"), true),
            (EnvSourceKind::ConfigMap, "tuning", None, false),
        ]
    );
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);

    // ConfigMaps the operator may not read: not checked, built anyway, and said.
    let forbidden = dereferenced()
        .with_secret("extra", [("token", "t")])
        .with_secret("bulk", [("A", "1")])
        .with_unreadable("ConfigMap", "configmaps is forbidden");
    let v = validate(&server, &forbidden).unwrap();
    assert!(
        v.warnings.iter().any(|w| w.contains(
            "spec.env[MODE].valueFrom.configMapKeyRef: the operator may not read ConfigMap \"settings\""
        )),
        "{:?}",
        v.warnings
    );
}

/// Secrets are fetched and watched for the environment too.
#[test]
fn environment_secrets_are_fetched() {
    let names = secret_names(&server_with_env_references().spec);
    for name in ["absent", "bulk", "extra"] {
        assert!(names.iter().any(|n| n == name), "{name}: {names:?}");
    }
}
