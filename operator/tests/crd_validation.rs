//! The CRD's validation as the real API server (testenv) enforces it at create time: a valid
//! fixture is accepted, and each invalid object — a valid fixture with exactly one change — is
//! rejected with 422 Invalid and a message naming what is wrong (the CEL rule's message from
//! `operator/src/crd/rules.rs`, or the schema's enum/pattern message). `tests/cel.rs` checks the
//! same rules client-side; this proves the server compiles and runs them, within its cost budget.
//!
//! Without a running testenv cluster (no TESTENV_KUBECONFIG) the test prints a SKIPPED notice
//! and passes; `make test-cluster` sets TESTENV_REQUIRED=1, so a missing cluster fails instead.
//! Control-plane-only mode is enough.

mod common;

use common::cluster::{cluster, install_crd};

use converse_operator::crd::ConverseServer;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};
use testenv::TestNamespace;

const TEST_MANAGER: &str = "converse-operator-crd-validation-tests";

/// The cause the API server appends when schema errors kept some CEL rules from running; it is
/// not a reason of its own.
const NOT_CHECKED: &str = "some validation rules were not checked";

/// A fixture from tests/fixtures as untyped JSON (so invalid values survive), named `name` in
/// namespace `ns`.
fn fixture(stem: &str, ns: &str, name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{stem}.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut value: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    value["metadata"] = json!({"name": name, "namespace": ns});
    value
}

/// Sets the value at a JSON pointer whose parent exists.
fn set(value: &mut Value, pointer: &str, new: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let parent = value
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in the fixture"));
    parent[key] = new;
}

/// Removes the value at a JSON pointer, which must exist.
fn remove(value: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let removed = value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|o| o.remove(key));
    assert!(removed.is_some(), "no {pointer} in the fixture");
}

/// One invalid object: fixture `stem` with one change, and the message(s) the server must give
/// (one per failing rule; every case but the bearer one fails exactly one).
struct Case {
    name: &'static str,
    stem: &'static str,
    change: fn(&mut Value),
    want: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "apikey-without-block",
            stem: "apikey-ingress",
            change: |v| remove(v, "/spec/auth/apiKey"),
            want: &["auth.strategy apiKey requires auth.apiKey"],
        },
        Case {
            name: "apikey-block-with-strategy-none",
            stem: "apikey-ingress",
            change: |v| set(v, "/spec/auth/strategy", json!("none")),
            want: &["auth.apiKey is only allowed with auth.strategy apiKey"],
        },
        Case {
            name: "replicas-and-autoscaling",
            stem: "apikey-ingress",
            change: |v| {
                set(
                    v,
                    "/spec/autoscaling",
                    json!({"minReplicas": 2, "maxReplicas": 4}),
                )
            },
            want: &["spec.replicas and spec.autoscaling are mutually exclusive"],
        },
        Case {
            // Both key sources break the "exactly one" rule and, inevitably, the algorithm rule
            // too (HS384 verifies with the shared secret, so publicKeySecretRef is wrong).
            name: "bearer-two-key-sources",
            stem: "bearer-hs256",
            change: |v| {
                set(
                    v,
                    "/spec/auth/bearer/publicKeySecretRef",
                    json!({"name": "jwt", "key": "public.pem"}),
                )
            },
            want: &[
                "set exactly one of secretRef (HS256/HS384/HS512: the shared secret) and \
                 publicKeySecretRef",
                "algorithm HS384 verifies with a shared secret: use secretRef, not \
                 publicKeySecretRef",
            ],
        },
        Case {
            // A disabled ingress needs no host; its TLS still does.
            name: "ingress-tls-without-host",
            stem: "none-minimal",
            change: |v| {
                set(
                    v,
                    "/spec/ingress",
                    json!({"enabled": false, "tls": {"secretName": "mcp-tls"}}),
                )
            },
            want: &["ingress.tls needs ingress.host (the certificate is for that host)"],
        },
        Case {
            name: "no-provider",
            stem: "none-minimal",
            change: |v| set(v, "/spec/providers", json!({})),
            want: &["configure at least one provider: openai, xai, google, anthropic"],
        },
        Case {
            name: "env-sets-managed-variable",
            stem: "none-minimal",
            change: |v| {
                set(
                    v,
                    "/spec/env",
                    json!([{"name": "HTTP_PORT", "value": "8080"}]),
                )
            },
            want: &["env may not set HTTP_PORT: the operator manages it from the spec"],
        },
        Case {
            name: "unknown-auth-strategy",
            stem: "none-minimal",
            change: |v| set(v, "/spec/auth", json!({"strategy": "magic"})),
            want: &[
                "spec.auth.strategy: Unsupported value: \"magic\": supported values: \"none\", \
                 \"bearer\", \"apiKey\", \"oauth2\", \"oidc\"",
            ],
        },
        Case {
            name: "bad-duration",
            stem: "apikey-ingress",
            change: |v| set(v, "/spec/rateLimit/window", json!("15 minutes")),
            want: &[
                "spec.rateLimit.window: Invalid value: \"15 minutes\": spec.rateLimit.window in \
                 body should match '^([0-9]+(ms|s|m|h|d))+$'",
            ],
        },
        Case {
            name: "gateway-and-ingress",
            stem: "oauth2-gateway",
            change: |v| set(v, "/spec/ingress", json!({"host": "mcp.example.com"})),
            want: &["spec.gateway and spec.ingress are mutually exclusive"],
        },
        Case {
            name: "gateway-wildcard-hostname",
            stem: "oauth2-gateway",
            change: |v| set(v, "/spec/gateway/hostnames", json!(["*.example.com"])),
            want: &["spec.gateway.hostnames[0] in body should match"],
        },
        Case {
            name: "gateway-without-parent",
            stem: "oauth2-gateway",
            change: |v| set(v, "/spec/gateway/parentRefs", json!([])),
            want: &[
                "spec.gateway.parentRefs: Invalid value: 0: spec.gateway.parentRefs in body should have at least 1 items",
            ],
        },
        Case {
            name: "oauth2-without-allowed-users",
            stem: "oauth2-generated",
            change: |v| remove(v, "/spec/auth/oauth2/allowedUsers"),
            want: &["auth.oauth2.allowedUsers is required"],
        },
        Case {
            name: "oauth2-star-with-others",
            stem: "oauth2-generated",
            change: |v| set(v, "/spec/auth/oauth2/allowedUsers", json!(["*", "octocat"])),
            want: &["'*' (every account) must be the only entry"],
        },
        Case {
            name: "oauth2-allowed-user-not-a-domain",
            stem: "oauth2-generated",
            change: |v| set(v, "/spec/auth/oauth2/allowedUsers", json!(["@localhost"])),
            want: &["spec.auth.oauth2.allowedUsers[0] in body should match"],
        },
        Case {
            name: "max-concurrent-requests-zero",
            stem: "everything",
            change: |v| set(v, "/spec/http/maxConcurrentRequests", json!(0)),
            want: &["spec.http.maxConcurrentRequests in body should be greater than or equal to 1"],
        },
        Case {
            name: "files-from-two-sources",
            stem: "files-configmap",
            change: |v| {
                set(
                    v,
                    "/spec/files/persistentVolumeClaim",
                    json!({"claimName": "docs"}),
                )
            },
            want: &["set exactly one of files.configMap and files.persistentVolumeClaim"],
        },
        Case {
            name: "files-item-path-escapes",
            stem: "files-configmap",
            change: |v| {
                set(
                    v,
                    "/spec/files/configMap/items/0/path",
                    json!("../../etc/passwd"),
                )
            },
            want: &["files.configMap.items[].path must be relative"],
        },
        Case {
            name: "files-item-paths-twice",
            stem: "files-configmap",
            change: |v| {
                set(
                    v,
                    "/spec/files/configMap/items/1/path",
                    json!("design/design.md"),
                )
            },
            want: &["Duplicate value"],
        },
        Case {
            name: "egress-allow-all-with-rules",
            stem: "apikey-ingress",
            change: |v| set(v, "/spec/networkPolicy/egress/allowAll", json!(true)),
            want: &["networkPolicy.egress.allowAll true leaves egress open"],
        },
        Case {
            name: "custom-provider-named-openai",
            stem: "everything",
            change: |v| set(v, "/spec/providers/custom/0/name", json!("openai")),
            want: &["a custom provider may not use the name of a built-in provider"],
        },
    ]
}

#[tokio::test]
async fn api_server_rejects_invalid_converseservers_with_readable_messages() {
    let test = "api_server_rejects_invalid_converseservers_with_readable_messages";
    let Some(client) = cluster(test).await else {
        return;
    };
    install_crd(&client, TEST_MANAGER).await;
    let ns = TestNamespace::create(&client, "crd-validation")
        .await
        .expect("namespace");
    let resource = ApiResource::erase::<ConverseServer>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &resource);
    let create = |value: Value| {
        let api = api.clone();
        async move {
            let object: DynamicObject = serde_json::from_value(value).expect("DynamicObject");
            api.create(&PostParams::default(), &object).await
        }
    };

    // The bases are valid: every fixture a case starts from is accepted as it is.
    for stem in [
        "apikey-ingress",
        "bearer-hs256",
        "everything",
        "files-configmap",
        "none-minimal",
        "oauth2-generated",
    ] {
        let name = format!("valid-{stem}");
        let created = create(fixture(stem, &ns.name, &name))
            .await
            .unwrap_or_else(|e| panic!("valid fixture {stem} rejected: {e}"));
        assert_eq!(created.metadata.name.as_deref(), Some(name.as_str()));
    }

    let mut failures = Vec::new();
    for case in cases() {
        let mut value = fixture(case.stem, &ns.name, case.name);
        (case.change)(&mut value);
        let status = match create(value).await {
            Ok(_) => {
                failures.push(format!("{}: accepted", case.name));
                continue;
            }
            Err(kube::Error::Api(status)) => status,
            Err(e) => {
                failures.push(format!("{}: unexpected error {e}", case.name));
                continue;
            }
        };
        eprintln!(
            "{}: {} {}: {}",
            case.name, status.code, status.reason, status.message
        );
        if status.code != 422 || !status.is_invalid() {
            failures.push(format!(
                "{}: expected 422 Invalid, got {} {}: {}",
                case.name, status.code, status.reason, status.message
            ));
            continue;
        }
        for want in case.want {
            if !status.message.contains(want) {
                failures.push(format!(
                    "{}: message lacks {want:?}: {}",
                    case.name, status.message
                ));
            }
        }
        // Exactly the expected reasons, no others: one cause per expected message.
        let causes: Vec<&str> = status
            .details
            .as_ref()
            .map(|d| d.causes.iter().map(|c| c.message.as_str()).collect())
            .unwrap_or_default();
        let reasons: Vec<&str> = causes
            .iter()
            .copied()
            .filter(|m| !m.contains(NOT_CHECKED))
            .collect();
        if reasons.len() != case.want.len() {
            failures.push(format!(
                "{}: expected {} cause(s), got {causes:?}",
                case.name,
                case.want.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    ns.cleanup().await.expect("cleanup");
}
