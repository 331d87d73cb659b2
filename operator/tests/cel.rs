//! The CRD's CEL rules, evaluated client-side (kube's `cel` feature): every fixture and example
//! passes, and each cross-field rule rejects what it should, with its message. (The real API
//! server additionally checks rule cost when the CRD is applied: the cluster tests.)

mod common;

use converse_operator::ConverseServer;
use kube::core::cel::validate_cel;
use serde_json::{Value, json};

use common::*;

fn check(value: &Value) -> Result<(), String> {
    let server: ConverseServer =
        serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    validate_cel(&server).map_err(|errors| {
        errors
            .as_slice()
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    })
}

fn fixture(stem: &str) -> Value {
    serde_json::to_value(server_named(stem)).unwrap()
}

/// Apply `change` to fixture `stem` and expect a CEL failure whose message contains `want`.
fn rejects(stem: &str, change: impl FnOnce(&mut Value), want: &str) {
    let mut value = fixture(stem);
    change(&mut value);
    match check(&value) {
        Ok(()) => panic!("{stem}: expected a failure containing {want:?}, got none"),
        Err(e) => assert!(e.contains(want), "{stem}: expected {want:?}, got {e:?}"),
    }
}

fn set(value: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() {
        value
    } else {
        value
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"))
    };
    parent.as_object_mut().unwrap().insert(key.to_owned(), new);
}

fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"))
        .as_object_mut()
        .unwrap()
        .remove(key);
}

#[test]
fn every_fixture_and_example_passes() {
    for (stem, server) in servers() {
        check(&serde_json::to_value(server).unwrap()).unwrap_or_else(|e| panic!("{stem}: {e}"));
    }
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let server = common::server(&path);
        check(&serde_json::to_value(server).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 2, "the examples: {seen}");
}

#[test]
fn strategy_requires_its_block_and_forbids_the_others() {
    rejects(
        "apikey-ingress",
        |v| remove(v, "/spec/auth/apiKey"),
        "auth.strategy apiKey requires auth.apiKey",
    );
    rejects(
        "apikey-ingress",
        |v| {
            set(
                v,
                "/spec/auth/oidc",
                json!({"issuer": "https://idp.example.com"}),
            )
        },
        "auth.oidc is only allowed with auth.strategy oidc",
    );
    rejects(
        "bearer-hs256",
        |v| set(v, "/spec/auth/strategy", json!("oauth2")),
        "auth.strategy oauth2 requires auth.oauth2",
    );
    rejects(
        "none-minimal",
        |v| {
            set(
                v,
                "/spec/auth",
                json!({"bearer": {"secretRef": {"name": "jwt", "key": "secret"}}}),
            )
        },
        "auth.bearer is only allowed with auth.strategy bearer",
    );
    rejects(
        "none-minimal",
        |v| {
            set(
                v,
                "/spec/auth",
                json!({"strategy": "none", "required": true}),
            )
        },
        "auth.required true needs an auth.strategy",
    );
}

#[test]
fn bearer_needs_exactly_one_key_source_matching_the_algorithm() {
    rejects(
        "bearer-hs256",
        |v| {
            set(
                v,
                "/spec/auth/bearer/publicKeySecretRef",
                json!({"name": "jwt", "key": "public.pem"}),
            )
        },
        "set exactly one of secretRef",
    );
    rejects(
        "bearer-hs256",
        |v| remove(v, "/spec/auth/bearer/secretRef"),
        "set exactly one of secretRef",
    );
    rejects(
        "bearer-hs256",
        |v| set(v, "/spec/auth/bearer/algorithm", json!("RS256")),
        "algorithm RS256 verifies with a public key",
    );
    rejects(
        "bearer-eddsa",
        |v| set(v, "/spec/auth/bearer/algorithm", json!("HS256")),
        "algorithm HS256 verifies with a shared secret",
    );
}

#[test]
fn replicas_and_autoscaling_are_exclusive() {
    rejects(
        "everything",
        |v| set(v, "/spec/replicas", json!(3)),
        "mutually exclusive",
    );
    rejects(
        "everything",
        |v| set(v, "/spec/autoscaling/minReplicas", json!(9)),
        "minReplicas must not exceed",
    );
}

#[test]
fn at_least_one_provider() {
    rejects(
        "none-minimal",
        |v| set(v, "/spec/providers", json!({})),
        "configure at least one provider",
    );
    rejects(
        "none-minimal",
        |v| set(v, "/spec/providers", json!({"custom": []})),
        "configure at least one provider",
    );
    // A custom provider alone is enough.
    let mut v = fixture("none-minimal");
    set(
        &mut v,
        "/spec/providers",
        json!({"custom": [{"name": "vllm", "baseUrl": "http://vllm:8000/v1", "models": ["m"]}]}),
    );
    check(&v).unwrap();
    rejects(
        "none-minimal",
        |v| {
            set(
                v,
                "/spec/providers/custom",
                json!([{"name": "openai", "baseUrl": "http://x/v1", "models": ["m"]}]),
            )
        },
        "may not use the name of a built-in provider",
    );
}

#[test]
fn ingress_rules() {
    rejects(
        "apikey-ingress",
        |v| remove(v, "/spec/ingress/host"),
        "ingress.tls needs ingress.host",
    );
    rejects(
        "oauth2-generated",
        |v| remove(v, "/spec/ingress/host"),
        "ingress.host is required when the ingress is enabled",
    );
    // Disabled without a host is fine (an overlay switching it off).
    let mut v = fixture("oauth2-jwtref");
    set(&mut v, "/spec/ingress", json!({"enabled": false}));
    check(&v).unwrap();
}

#[test]
fn oauth2_callback_must_be_known() {
    rejects(
        "oauth2-generated",
        |v| set(v, "/spec/ingress/enabled", json!(false)),
        "auth.oauth2.callbackUrl is required",
    );
    rejects(
        "oauth2-jwtref",
        |v| remove(v, "/spec/auth/oauth2/callbackUrl"),
        "auth.oauth2.callbackUrl is required",
    );
}

#[test]
fn session_affinity_needs_an_ingress() {
    rejects(
        "none-minimal",
        |v| set(v, "/spec/sessions", json!({"affinity": "SessionHeader"})),
        "sessions.affinity SessionHeader is implemented by the ingress controller",
    );
}

#[test]
fn env_may_not_set_a_managed_variable() {
    rejects(
        "everything",
        |v| {
            set(
                v,
                "/spec/env",
                json!([{"name": "RUST_LOG", "value": "x"}, {"name": "MCP_API_KEYS", "value": "k-0123456789abcdef0123456789abcdef"}]),
            )
        },
        "env may not set MCP_API_KEYS",
    );
    rejects(
        "none-minimal",
        |v| {
            set(
                v,
                "/spec/env",
                json!([{"name": "CUSTOM_X_BASE_URL", "value": "http://x"}]),
            )
        },
        "env may not set CUSTOM_X_BASE_URL",
    );
    rejects(
        "none-minimal",
        |v| set(v, "/spec/env", json!([{"name": "HTTP_PORT", "value": "1"}])),
        "HTTP_PORT",
    );
}

#[test]
fn other_cross_field_rules() {
    rejects(
        "apikey-ingress",
        |v| set(v, "/spec/podDisruptionBudget/maxUnavailable", json!(1)),
        "exactly one of minAvailable and maxUnavailable",
    );
    rejects(
        "apikey-ingress",
        |v| remove(v, "/spec/conversations/redis"),
        "conversations.store Redis requires",
    );
    rejects(
        "apikey-ingress",
        |v| set(v, "/spec/cors/origins", json!(["*"])),
        "cors.credentials true needs an explicit cors.origins",
    );
    rejects(
        "apikey-ingress",
        |v| remove(v, "/spec/cors/origins"),
        "cors.credentials true needs an explicit cors.origins",
    );
    rejects(
        "everything",
        |v| {
            set(
                v,
                "/spec/pod/labels",
                json!({"app.kubernetes.io/instance": "other"}),
            )
        },
        "pod.labels may not set",
    );
}

#[test]
fn files_come_from_exactly_one_source_with_relative_item_paths() {
    rejects(
        "files-configmap",
        |v| {
            set(
                v,
                "/spec/files/persistentVolumeClaim",
                json!({"claimName": "docs"}),
            )
        },
        "set exactly one of files.configMap and files.persistentVolumeClaim",
    );
    rejects(
        "files-configmap",
        |v| set(v, "/spec/files", json!({})),
        "set exactly one of files.configMap and files.persistentVolumeClaim",
    );
    for bad in ["/etc/passwd", "..", "../x", "..data/x", "x/../../y", "x/.."] {
        rejects(
            "files-configmap",
            |v| set(v, "/spec/files/configMap/items/0/path", json!(bad)),
            "files.configMap.items[].path must be relative",
        );
    }
    // Dots that are not a `..` element are fine, as for the kubelet.
    for good in ["a..b.md", "x/.hidden", "x/..y", "./x"] {
        let mut v = fixture("files-configmap");
        set(&mut v, "/spec/files/configMap/items/0/path", json!(good));
        check(&v).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    // The claim alone is a source too.
    let mut v = fixture("files-configmap");
    set(
        &mut v,
        "/spec/files",
        json!({"persistentVolumeClaim": {"claimName": "docs"}}),
    );
    check(&v).unwrap();
}

#[test]
fn oauth2_names_who_may_log_in() {
    rejects(
        "oauth2-generated",
        |v| remove(v, "/spec/auth/oauth2/allowedUsers"),
        "auth.oauth2.allowedUsers is required",
    );
    rejects(
        "oauth2-jwtref",
        |v| set(v, "/spec/auth/oauth2/allowedUsers", json!(["*", "octocat"])),
        "'*' (every account) must be the only entry",
    );
    // Every account, as an explicit opt-in.
    let mut v = fixture("oauth2-jwtref");
    set(&mut v, "/spec/auth/oauth2/allowedUsers", json!(["*"]));
    check(&v).unwrap();
}

/// The `pattern` of `auth.oauth2.allowedUsers` items in the generated CRD.
fn allowed_user_pattern() -> String {
    let crd = serde_json::to_value(converse_operator::crd::crd().unwrap()).unwrap();
    let pointer = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/auth\
                   /properties/oauth2/properties/allowedUsers/items/pattern";
    crd.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer}"))
        .to_owned()
}

/// Whether `entry` matches `pattern`, evaluated by CEL's `matches` (RE2 syntax, as the API
/// server's `pattern` check; kube's client-side validation does not check patterns itself).
fn pattern_matches(pattern: &str, entry: &str) -> bool {
    let schema = json!({
        "type": "string",
        "x-kubernetes-validations": [{"rule": format!("self.matches({})", json!(pattern))}],
    });
    kube::core::cel::Validator::new()
        .validate(&schema, &json!(entry), None)
        .is_ok()
}

#[test]
fn allowed_user_entries_are_what_the_server_parses() {
    use converse_config::AllowedUser;
    let pattern = allowed_user_pattern();
    let accepted = [
        "*",
        "octocat",
        "12345678",
        "alice@example.com",
        "Alice.Smith@Example.COM",
        "@example.com",
        "@mail.example.co.uk",
        "auth0|5f7c8ec7c33c6c004bbafe82",
    ];
    for entry in accepted {
        assert!(pattern_matches(&pattern, entry), "{entry:?} refused");
        // Whatever the schema lets through, the server parses to the same kind of entry.
        let parsed = AllowedUser::parse(entry).unwrap_or_else(|e| panic!("{entry:?}: {e}"));
        assert_eq!(parsed == AllowedUser::Anyone, entry == "*", "{entry:?}");
        assert_eq!(
            matches!(parsed, AllowedUser::Domain(_)),
            entry.starts_with('@'),
            "{entry:?}"
        );
    }
    let refused = [
        "",
        "@",
        "@localhost",
        "@exa mple.com",
        "@example..com",
        // Would be split into two entries by the comma join.
        "alice,bob",
        // Trimmed by the server, so not what it looks like.
        " octocat",
        "octo cat",
        // A wildcard inside an identity matches nobody.
        "*@example.com",
        "team-*",
        "**",
    ];
    for entry in refused {
        assert!(!pattern_matches(&pattern, entry), "{entry:?} accepted");
    }
}

#[test]
fn egress_left_open_takes_no_rules() {
    rejects(
        "apikey-ingress",
        |v| set(v, "/spec/networkPolicy/egress/allowAll", json!(true)),
        "networkPolicy.egress.allowAll true leaves egress open",
    );
    rejects(
        "apikey-ingress",
        |v| {
            set(
                v,
                "/spec/networkPolicy/egress",
                json!({"allowAll": true, "dnsTo": [{"podSelector": {}}]}),
            )
        },
        "dnsTo and extraRules would have no effect",
    );
    // Alone, or false next to rules, is fine.
    let mut v = fixture("apikey-ingress");
    set(
        &mut v,
        "/spec/networkPolicy/egress",
        json!({"allowAll": true}),
    );
    check(&v).unwrap();
    set(&mut v, "/spec/networkPolicy/egress/allowAll", json!(false));
    set(
        &mut v,
        "/spec/networkPolicy/egress/extraRules",
        json!([{"ports": [{"port": 3128, "protocol": "TCP"}]}]),
    );
    check(&v).unwrap();
}

#[test]
fn gateway_and_ingress_are_exclusive() {
    rejects(
        "oauth2-gateway",
        |v| set(v, "/spec/ingress", json!({"host": "mcp.example.com"})),
        "spec.gateway and spec.ingress are mutually exclusive",
    );
    rejects(
        "apikey-ingress",
        |v| {
            set(
                v,
                "/spec/gateway",
                json!({"parentRefs": [{"name": "public"}], "hostnames": ["mcp.example.com"]}),
            )
        },
        "spec.gateway and spec.ingress are mutually exclusive",
    );
    // The gateway's first host name makes the oauth2 callback known.
    let mut v = fixture("oauth2-gateway");
    check(&v).unwrap();
    remove(&mut v, "/spec/gateway");
    assert!(
        check(&v)
            .unwrap_err()
            .contains("auth.oauth2.callbackUrl is required")
    );
}
