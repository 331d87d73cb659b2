//! The Argo CD health check of ConverseServers (`examples/gitops/argocd/health.lua`), run by a
//! real Lua 5.1 interpreter (Argo CD runs it with gopher-lua, a Lua 5.1). The objects it judges
//! carry statuses computed by the operator's own `status::desired_status`, so the check reads
//! the condition types, statuses and messages the operator really writes.
//!
//! Needs `lua5.1` (Debian package lua5.1, `make deps`) as `$LUA` or on PATH
//! ([`testenv::tools`]: without it the test skips, unless `make test` or CI requires it).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use converse_operator::crd::status::condition;
use converse_operator::status::{Outcome, desired_status};
use converse_operator::{ConverseServer, ConverseServerStatus, Dereferenced, build, validate};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const HEALTH_KEY: &str = "resource.customizations.health.converse.dev_ConverseServer";

fn argocd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gitops/argocd")
}

fn health_lua() -> String {
    std::fs::read_to_string(argocd_dir().join("health.lua")).expect("read health.lua")
}

/// `lua5.1` ([`testenv::tools`]); `None` after a notice when it may skip.
fn lua(test: &str) -> Option<PathBuf> {
    testenv::tools::find_or_skip(
        "lua5.1",
        "LUA",
        test,
        "run `make deps` (apt-get install lua5.1)",
    )
}

/// A Lua string literal for any bytes: printable ASCII as is, everything else (and the quote
/// and backslash) escaped; decimal escapes always take three digits so a following digit is
/// not swallowed.
fn lua_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// A Lua table constructor for a JSON value, shaped as Argo CD hands objects to health
/// scripts: objects become string-keyed tables, arrays 1-based sequences, null nil.
fn lua_value(v: &Value) -> String {
    let join = |items: Vec<String>| format!("{{{}}}", items.join(", "));
    match v {
        Value::Null => "nil".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => join(items.iter().map(lua_value).collect()),
        Value::Object(map) => join(
            map.iter()
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_value(v)))
                .collect(),
        ),
    }
}

/// Runs `body` (a chunk that may read the global `obj`) and returns what it wrote.
fn run_lua(lua: &Path, obj: &Value, body: &str) -> String {
    let chunk = format!("obj = {}\n{body}\n", lua_value(obj));
    let mut child = Command::new(lua)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lua5.1");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(chunk.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "lua5.1: {}\n--- chunk:\n{chunk}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// health.lua's verdict on `obj`: (status, message).
fn health(lua: &Path, obj: &Value) -> (String, String) {
    // As Argo CD does, the script's top-level `return` ends a function.
    let body = format!(
        "local hs = (function()\n{}\nend)()\n\
         io.write(tostring(hs.status), \"\\n\", tostring(hs.message))",
        health_lua()
    );
    let out = run_lua(lua, obj, &body);
    let (status, message) = out.split_once('\n').expect("status and message");
    (status.to_owned(), message.to_owned())
}

/// The base ConverseServer of the GitOps examples, as stored at generation 3.
fn server() -> ConverseServer {
    let path = argocd_dir().join("../base/converseserver.yaml");
    let mut s: ConverseServer =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    s.metadata.namespace = Some("converse-dev".to_owned());
    s.metadata.generation = Some(3);
    s.metadata.uid = Some("uid-converse".to_owned());
    s
}

fn secrets() -> Dereferenced {
    Dereferenced::default().with_secret(
        "converse-llm-keys",
        [("openai", "sk-fake-1"), ("anthropic", "sk-fake-2")],
    )
}

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).unwrap()
}

/// The status the operator writes after applying the children, with the Deployment at
/// `available` of one replica.
fn applied(server: &ConverseServer, available: i32) -> ConverseServerStatus {
    let validated = validate(server, &secrets()).unwrap();
    let desired = build(&validated, &common::context()).unwrap();
    let mut deployment: Deployment = desired.deployment.clone();
    deployment.metadata.generation = Some(1);
    deployment.status = serde_json::from_value(json!({
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
        "readyReplicas": available, "availableReplicas": available
    }))
    .unwrap();
    let outcome = Outcome::Applied {
        validated: &validated,
        desired: &desired,
        deployment: &deployment,
    };
    desired_status(server.metadata.generation, None, &outcome, now())
}

/// The status the operator writes when the spec or a Secret stalls it.
fn stalled(server: &ConverseServer, secrets: &Dereferenced) -> ConverseServerStatus {
    let err = validate(server, secrets).expect_err("a stall");
    desired_status(
        server.metadata.generation,
        None,
        &Outcome::Stalled(&err),
        now(),
    )
}

fn with_status(mut server: ConverseServer, status: ConverseServerStatus) -> Value {
    server.status = Some(status);
    serde_json::to_value(server).unwrap()
}

fn message_of(status: &ConverseServerStatus, type_: &str) -> String {
    let c = status.conditions.iter().find(|c| c.type_ == type_);
    c.unwrap_or_else(|| panic!("no {type_} condition"))
        .message
        .clone()
}

#[test]
fn health_follows_the_operators_conditions() {
    let Some(lua) = lua("argocd health") else {
        return;
    };

    // Just created: no status yet.
    let fresh = serde_json::to_value(server()).unwrap();
    let (status, message) = health(&lua, &fresh);
    assert_eq!(status, "Progressing");
    assert!(message.contains("converse-operator"), "{message}");

    // Serving: Ready=True at the current generation.
    let ready = applied(&server(), 1);
    let (status, message) = health(&lua, &with_status(server(), ready.clone()));
    assert_eq!(
        (status.as_str(), message.as_str()),
        ("Healthy", message_of(&ready, condition::READY).as_str())
    );

    // The spec changed since: the Ready=True above describes the previous generation.
    let mut edited = with_status(server(), ready);
    edited["metadata"]["generation"] = json!(4);
    let (status, message) = health(&lua, &edited);
    assert_eq!(status, "Progressing");
    assert!(message.contains("generation 4"), "{message}");

    // Rolling out: Reconciling=True, Ready=False with the rollout's progress.
    let rolling = applied(&server(), 0);
    assert!(
        rolling
            .conditions
            .iter()
            .any(|c| c.type_ == condition::RECONCILING && c.status == "True")
    );
    let (status, message) = health(&lua, &with_status(server(), rolling.clone()));
    assert_eq!(status, "Progressing");
    assert_eq!(message, message_of(&rolling, condition::READY));
    assert!(message.contains("0/1 replicas available"), "{message}");

    // A referenced Secret key is missing: Degraded, naming the Secret and key.
    let missing_key = Dereferenced::default().with_secret("converse-llm-keys", [("openai", "sk")]);
    let no_key = stalled(&server(), &missing_key);
    let (status, message) = health(&lua, &with_status(server(), no_key.clone()));
    assert_eq!(status, "Degraded");
    assert_eq!(message, message_of(&no_key, condition::STALLED));
    assert!(
        message.contains(r#"Secret "converse-llm-keys" has no key "anthropic""#),
        "{message}"
    );

    // An invalid spec (CEL did not run): Degraded, naming the field.
    let mut invalid = server();
    invalid.spec.replicas = Some(2);
    invalid.spec.autoscaling = serde_json::from_value(json!({"maxReplicas": 3})).unwrap();
    let bad_spec = stalled(&invalid, &secrets());
    let (status, message) = health(&lua, &with_status(invalid, bad_spec));
    assert_eq!(status, "Degraded");
    assert!(message.contains("spec.replicas"), "{message}");
}

#[test]
fn objects_reach_lua_unchanged() {
    let Some(lua) = lua("argocd health: JSON to Lua") else {
        return;
    };
    let tricky = "quote \" backslash \\ newline \n tab \t ]] [[ é 日本 \u{1} 1\u{7f}2";
    let obj = json!({"s": tricky, "n": 3, "f": 1.5, "b": false, "a": ["x", {"y": null}]});
    let out = run_lua(
        &lua,
        &obj,
        "io.write(obj.s, '|', obj.n + 1, '|', obj.f * 2, '|', tostring(obj.b), '|', \
         #obj.a, obj.a[1], tostring(obj.a[2].y))",
    );
    assert_eq!(out, format!("{tricky}|4|3|false|2xnil"));
}

#[test]
fn argocd_cm_embeds_health_lua_verbatim() {
    let text = std::fs::read_to_string(argocd_dir().join("argocd-cm.yaml")).unwrap();
    let cm: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let embedded = cm["data"][HEALTH_KEY].as_str().expect("the health key");
    assert_eq!(
        embedded,
        health_lua(),
        "argocd-cm.yaml and health.lua differ"
    );
}
