//! Fixtures shared by the integration tests: ConverseServers and Secrets from
//! `tests/fixtures/*.yaml`, and the environment resolver of the round-trip test.
#![allow(dead_code)]

pub mod cluster;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use converse_operator::desired::BuildContext;
use converse_operator::{
    ConverseServer, Dereferenced, DesiredObjects, ValidatedServer, build, validate,
};
use k8s_openapi::api::core::v1::{Container, EnvVar, Secret};
use serde::Deserialize;

pub const GENERATED_JWT: &str = "generated-jwt-secret-0123456789abcdefghij";

/// Fixture files that hold what the ConverseServers reference, not ConverseServers.
const NOT_SERVERS: &[&str] = &["secrets", "volumes"];

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every ConverseServer fixture, by file stem, sorted.
pub fn servers() -> Vec<(String, ConverseServer)> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| !NOT_SERVERS.iter().any(|n| s == *n))
        })
        .collect();
    paths.sort();
    for path in paths {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        out.push((stem, server(&path)));
    }
    assert!(out.len() >= 8, "expected the fixtures, found {}", out.len());
    out
}

pub fn server(path: &Path) -> ConverseServer {
    let text = std::fs::read_to_string(path).expect("read fixture");
    let mut server: ConverseServer =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Every field of the file must survive the typed round trip: a misspelt or unknown field
    // would be silently dropped (as the API server prunes it).
    let original: serde_json::Value = serde_norway::from_str(&text).expect("YAML");
    let typed = serde_json::to_value(&server).expect("JSON");
    assert_subset(&original, &typed, &path.display().to_string());
    // As stored by the API server: owner references need a uid.
    server.metadata.uid = Some(format!("uid-{}", server.metadata.name.clone().unwrap()));
    server
}

pub fn server_named(stem: &str) -> ConverseServer {
    server(&fixtures_dir().join(format!("{stem}.yaml")))
}

/// Secret name → key → value, from `secrets.yaml` (stringData).
pub fn secret_data() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(fixtures_dir().join("secrets.yaml")).expect("secrets");
    let mut out = BTreeMap::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let secret = Secret::deserialize(doc).expect("Secret");
        let name = secret.metadata.name.clone().unwrap();
        out.insert(name, secret.string_data.unwrap_or_default());
    }
    out
}

/// What the dereference phase would find for the fixture Secrets, ConfigMaps and
/// PersistentVolumeClaims.
pub fn dereferenced() -> Dereferenced {
    let secrets = secret_data()
        .into_iter()
        .fold(Dereferenced::default(), |d, (name, data)| {
            d.with_secret(&name, data)
        });
    let text = std::fs::read_to_string(fixtures_dir().join("volumes.yaml")).expect("volumes");
    serde_norway::Deserializer::from_str(&text).fold(secrets, |d, doc| {
        let value = serde_json::Value::deserialize(doc).expect("YAML");
        match value["kind"].as_str() {
            Some("ConfigMap") => {
                d.with_config_map_object(&serde_json::from_value(value).expect("ConfigMap"))
            }
            Some("PersistentVolumeClaim") => {
                d.with_claim_object(&serde_json::from_value(value).expect("PersistentVolumeClaim"))
            }
            other => panic!("volumes.yaml: unexpected kind {other:?}"),
        }
    })
}

pub fn context() -> BuildContext {
    BuildContext {
        default_image: "ghcr.io/converse-on-kubernetes/converse-server:0.1.0".to_owned(),
        default_version: "0.1.0".to_owned(),
        cluster_domain: "cluster.local".to_owned(),
        generated_jwt_secret: Some(GENERATED_JWT.to_owned()),
    }
}

pub fn validated(server: &ConverseServer) -> ValidatedServer {
    validate(server, &dereferenced()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn render(server: &ConverseServer) -> DesiredObjects {
    build(&validated(server), &context()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn container(objects: &DesiredObjects) -> &Container {
    &objects
        .deployment
        .spec
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
}

/// The container env as the kubelet would resolve it: literals as is (an entry without value is
/// the empty string), `secretKeyRef` from the fixture Secrets and the generated Secret. Panics
/// on a reference that does not resolve.
pub fn resolve_env(objects: &DesiredObjects) -> Vec<(String, String)> {
    let mut secrets = secret_data();
    if let Some(generated) = &objects.generated_secret {
        let data = generated
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
            .collect();
        secrets.insert(generated.metadata.name.clone().unwrap(), data);
    }
    container(objects)
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e: EnvVar| {
            if let Some(value) = e.value {
                return (e.name, value);
            }
            if e.value_from.is_none() {
                return (e.name, String::new());
            }
            let r = e
                .value_from
                .and_then(|v| v.secret_key_ref)
                .unwrap_or_else(|| panic!("{} has neither value nor secretKeyRef", e.name));
            let value = secrets
                .get(&r.name)
                .and_then(|s| s.get(&r.key))
                .unwrap_or_else(|| panic!("{}: Secret {}/{} not found", e.name, r.name, r.key));
            (e.name, value.clone())
        })
        .collect()
}

/// The environment the kubelet gives the container when its `envFrom` sources hold
/// `env_from`: those variables first, then the container's `env`, which wins on a name both
/// set (Kubernetes' precedence).
pub fn resolve_env_with_env_from(
    objects: &DesiredObjects,
    env_from: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut merged: BTreeMap<String, String> = env_from
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    merged.extend(resolve_env(objects));
    merged.into_iter().collect()
}

/// Every value of `want` is present, equal, in `have` (which may have more: defaults).
fn assert_subset(want: &serde_json::Value, have: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            for (k, v) in w {
                let child = format!("{at}.{k}");
                let Some(hv) = h.get(k) else {
                    panic!("{child} is not a field of the type (dropped on parse)");
                };
                assert_subset(v, hv, &child);
            }
        }
        (Value::Array(w), Value::Array(h)) => {
            assert_eq!(w.len(), h.len(), "{at}");
            for (i, (wv, hv)) in w.iter().zip(h).enumerate() {
                assert_subset(wv, hv, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(want, have, "{at}"),
    }
}
