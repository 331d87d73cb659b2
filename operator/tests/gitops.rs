//! The GitOps examples (`examples/gitops/`) as a cluster would receive them: each overlay is
//! rendered with `kubectl kustomize`, its ConverseServer goes through the operator's own
//! validate and build phases (with the placeholder Secrets of `dev-secrets/` standing in for
//! the real ones), and the differences between environments that docs/GITOPS.md promises are
//! checked on what the operator would create. Secrets stay references: no overlay may render
//! Secret data, and the External Secrets Component of each environment must produce exactly the
//! Secret keys its ConverseServer references.
//!
//! Needs kubectl (for its built-in kustomize): `KUBECTL`, else testenv's, else `kubectl` on
//! PATH ([`testenv::tools`]: without one the test skips, unless `make test` or CI requires it).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use converse_operator::crd::{AuthStrategy, ConversationStore};
use converse_operator::desired::labels;
use converse_operator::references::secret_references;
use converse_operator::{ConverseServer, Dereferenced, DesiredObjects, build, validate};
use serde::Deserialize;
use serde_json::Value;

fn gitops_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gitops")
}

/// The kubectl to render with ([`testenv::tools`]); `None` after a notice when it may skip.
fn kubectl(test: &str) -> Option<PathBuf> {
    testenv::tools::find_or_skip("kubectl", "KUBECTL", test, "run `make testenv-build`")
}

/// `kubectl kustomize <dir>`, one JSON value per document.
fn render(kubectl: &Path, dir: &Path) -> Vec<Value> {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", kubectl.display()));
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

fn of_kind<'a>(objects: &'a [Value], k: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| kind(o) == k).collect()
}

/// What the dereference phase would find if `dev-secrets/` were applied.
fn placeholder_secrets(kubectl: &Path) -> Dereferenced {
    let secrets = render(kubectl, &gitops_dir().join("dev-secrets"));
    assert!(!secrets.is_empty());
    secrets.iter().fold(Dereferenced::default(), |d, s| {
        assert_eq!(kind(s), "Secret");
        // Marked, and namespace-free so it can be applied to any environment's namespace.
        assert_eq!(s["metadata"]["labels"]["converse.dev/placeholder"], "true");
        assert!(s["metadata"].get("namespace").is_none());
        let data: Vec<(&str, &str)> = s["stringData"]
            .as_object()
            .expect("stringData")
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().expect("a string value")))
            .collect();
        d.with_secret(s["metadata"]["name"].as_str().unwrap(), data)
    })
}

/// The ExternalSecrets of `env`'s Component, as written.
fn external_secrets(env: &str) -> Vec<Value> {
    let path = gitops_dir().join(format!("external-secrets/{env}/externalsecrets.yaml"));
    let text = std::fs::read_to_string(&path).expect("read the ExternalSecrets");
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("YAML"))
        .collect()
}

/// (Secret, key) pairs the External Secrets Component of `env` produces.
fn external_secret_keys(env: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for es in external_secrets(env) {
        assert_eq!(es["apiVersion"], "external-secrets.io/v1", "{env}");
        assert_eq!(es["kind"], "ExternalSecret", "{env}");
        assert_eq!(es["spec"]["secretStoreRef"]["kind"], "ClusterSecretStore");
        let target = es["spec"]["target"]["name"].as_str().expect("target.name");
        for item in es["spec"]["data"].as_array().expect("spec.data") {
            let key = item["secretKey"].as_str().expect("secretKey");
            assert!(
                out.insert((target.to_owned(), key.to_owned())),
                "{target}/{key} twice"
            );
        }
    }
    out
}

/// Every field of `want` is in `have`: a misspelt field would be dropped by the typed parse
/// (and pruned by the API server) without a word.
fn assert_subset(want: &Value, have: &Value, at: &str) {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => {
            for (k, v) in w {
                let child = format!("{at}.{k}");
                let hv = h.get(k).unwrap_or_else(|| panic!("{child} is not a field"));
                assert_subset(v, hv, &child);
            }
        }
        (Value::Array(w), Value::Array(h)) if w.len() == h.len() => {
            for (i, (wv, hv)) in w.iter().zip(h).enumerate() {
                assert_subset(wv, hv, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(want, have, "{at}"),
    }
}

/// One rendered environment: the objects, and its ConverseServer validated and built.
struct Rendered {
    objects: Vec<Value>,
    server: ConverseServer,
    auth: AuthStrategy,
    public_url: String,
    desired: DesiredObjects,
}

fn render_env(kubectl: &Path, env: &str, secrets: &Dereferenced) -> Rendered {
    let objects = render(kubectl, &gitops_dir().join("overlays").join(env));
    let namespace = format!("converse-{env}");

    // The overlay brings its Namespace, and every other object lands in it.
    let namespaces = of_kind(&objects, "Namespace");
    assert_eq!(namespaces.len(), 1, "{env}: one Namespace");
    assert_eq!(namespaces[0]["metadata"]["name"], namespace.as_str());
    for o in objects.iter().filter(|o| kind(o) != "Namespace") {
        assert_eq!(
            o["metadata"]["namespace"],
            namespace.as_str(),
            "{env}: {} {}",
            kind(o),
            o["metadata"]["name"]
        );
    }
    // Secrets by reference only.
    for s in of_kind(&objects, "Secret") {
        assert!(
            s.get("data").is_none() && s.get("stringData").is_none(),
            "{env}: Secret {} carries data",
            s["metadata"]["name"]
        );
    }

    let servers = of_kind(&objects, "ConverseServer");
    assert_eq!(servers.len(), 1, "{env}: one ConverseServer");
    let server: ConverseServer = serde_json::from_value(servers[0].clone())
        .unwrap_or_else(|e| panic!("{env}: not a ConverseServer: {e}"));
    assert_subset(servers[0], &serde_json::to_value(&server).unwrap(), env);

    let validated = validate(&server, secrets).unwrap_or_else(|e| panic!("{env}: {e}"));
    // Warnings are advice the operator turns into Events (e.g. several replicas with
    // conversations in memory); an example should need none.
    assert!(
        validated.warnings.is_empty(),
        "{env}: {:?}",
        validated.warnings
    );
    let desired = build(&validated, &common::context()).unwrap_or_else(|e| panic!("{env}: {e}"));

    // Each environment's External Secrets produce exactly the keys its ConverseServer uses.
    let referenced: BTreeSet<(String, String)> = secret_references(&server.spec)
        .into_iter()
        .map(|r| (r.secret.name, r.secret.key))
        .collect();
    assert_eq!(
        external_secret_keys(env),
        referenced,
        "{env}: ExternalSecrets"
    );

    Rendered {
        objects,
        auth: validated.auth_strategy,
        public_url: validated.public_url,
        server,
        desired,
    }
}

fn store(r: &Rendered) -> Option<ConversationStore> {
    r.server.spec.conversations.as_ref().and_then(|c| c.store)
}

#[test]
fn overlays_render_valid_servers_that_differ_per_environment() {
    let Some(kubectl) = kubectl("gitops overlays") else {
        return;
    };
    let secrets = placeholder_secrets(&kubectl);

    // dev: no auth, one pod, in-cluster only.
    let dev = render_env(&kubectl, "dev", &secrets);
    assert_eq!(dev.auth, AuthStrategy::None);
    assert_eq!(dev.server.spec.replicas, Some(1));
    assert_eq!(dev.desired.deployment.spec.replicas, Some(1));
    let service = dev.desired.service.spec.as_ref().unwrap();
    assert_eq!(service.type_.as_deref(), Some("ClusterIP"));
    assert!(dev.desired.ingress.is_none() && dev.desired.horizontal_pod_autoscaler.is_none());
    assert_eq!(dev.public_url, "http://converse.converse-dev.svc/mcp");

    // staging: API keys, two pods sharing conversations through Redis.
    let staging = render_env(&kubectl, "staging", &secrets);
    assert_eq!(staging.auth, AuthStrategy::ApiKey);
    assert_eq!(staging.server.spec.replicas, Some(2));
    assert_eq!(store(&staging), Some(ConversationStore::Redis));
    assert!(staging.desired.ingress.is_none());

    // prod: OIDC behind a TLS ingress, autoscaled, with a PDB and a NetworkPolicy.
    let prod = render_env(&kubectl, "prod", &secrets);
    assert_eq!(prod.auth, AuthStrategy::Oidc);
    assert_eq!(prod.public_url, "https://mcp.example.com/mcp");
    let oidc = prod
        .server
        .spec
        .auth
        .as_ref()
        .unwrap()
        .oidc
        .as_ref()
        .unwrap();
    assert_eq!(oidc.audience.as_deref(), Some(prod.public_url.as_str()));
    let ingress = prod.desired.ingress.as_ref().expect("prod: Ingress");
    let tls = &ingress
        .spec
        .as_ref()
        .unwrap()
        .tls
        .as_ref()
        .expect("prod: TLS")[0];
    assert_eq!(
        tls.hosts.as_deref(),
        Some(&["mcp.example.com".to_owned()][..])
    );
    assert!(tls.secret_name.is_some());
    assert!(
        prod.server.spec.replicas.is_none(),
        "prod: the HPA owns the count"
    );
    let hpa = prod
        .desired
        .horizontal_pod_autoscaler
        .as_ref()
        .expect("prod: HPA");
    assert!(
        hpa.spec.min_replicas.unwrap_or(1) > 2,
        "prod: more replicas than staging"
    );
    assert!(prod.desired.pod_disruption_budget.is_some(), "prod: PDB");
    assert!(prod.desired.network_policy.is_some(), "prod: NetworkPolicy");
    assert_eq!(store(&prod), Some(ConversationStore::Redis));
    // The zone spread must select the operator's pods, or it spreads nothing.
    let pod = prod.server.spec.pod.as_ref().expect("prod: pod");
    let selector = labels::selector("converse");
    for spread in &pod.topology_spread_constraints {
        let wanted = spread
            .label_selector
            .as_ref()
            .and_then(|l| l.match_labels.as_ref());
        for (k, v) in wanted.expect("prod: spread selector") {
            assert_eq!(selector.get(k), Some(v), "prod: spread selector {k}");
        }
    }

    // Only the Namespace and the ConverseServer: the operator makes the rest.
    for r in [&dev, &staging, &prod] {
        let mut kinds: Vec<&str> = r.objects.iter().map(kind).collect();
        kinds.sort_unstable();
        assert_eq!(kinds, ["ConverseServer", "Namespace"]);
    }
}

#[test]
fn external_secrets_component_composes_with_each_overlay() {
    let Some(kubectl) = kubectl("gitops external-secrets component") else {
        return;
    };
    for env in ["dev", "staging", "prod"] {
        // A copy, so the overlay can take the Component the way Argo CD and Flux add it. A
        // fixed name: a copy left by a failed run is replaced by the next.
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gitops-component-{env}"));
        let _ = std::fs::remove_dir_all(&root);
        copy_dir(&gitops_dir(), &root);
        let overlay = root.join("overlays").join(env);
        let kustomization = overlay.join("kustomization.yaml");
        let mut text = std::fs::read_to_string(&kustomization).unwrap();
        text.push_str(&format!("components:\n  - ../../external-secrets/{env}\n"));
        std::fs::write(&kustomization, text).unwrap();
        let objects = render(&kubectl, &overlay);
        std::fs::remove_dir_all(&root).unwrap();

        let namespace = format!("converse-{env}");
        let external = of_kind(&objects, "ExternalSecret");
        assert_eq!(external.len(), external_secrets(env).len(), "{env}");
        let wave = |o: &Value| o["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"].clone();
        for es in &external {
            assert_eq!(es["metadata"]["namespace"], namespace.as_str(), "{env}");
            // Argo CD order: Namespace, then the Secrets, then the ConverseServer.
            assert_eq!(wave(es), "-1", "{env}");
        }
        assert_eq!(wave(of_kind(&objects, "Namespace")[0]), "-2", "{env}");
        // The Component must not reach the overlay's objects (a commonAnnotations would).
        assert_eq!(
            wave(of_kind(&objects, "ConverseServer")[0]),
            Value::Null,
            "{env}"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
