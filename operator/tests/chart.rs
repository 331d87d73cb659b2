//! The Helm chart `charts/converse-operator`, rendered offline by helm (no cluster): lint, the
//! objects each value combination yields, the values schema, the CRD (the generated one), the
//! restricted pod and least-privilege RBAC.
//!
//! helm is `$HELM`, else testenv's build, else `helm` on PATH ([`testenv::tools`]: without one
//! the tests skip, unless `make test` or CI requires the tools).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::{Value, json};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/converse-operator");
/// The release namespace of every render (not `default`, so the tests see it is used).
const RELEASE_NS: &str = "ops";
/// The chart's appVersion is the crate's version: images default to it.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn helm(test: &str) -> Option<Helm> {
    testenv::tools::find_or_skip("helm", "HELM", test, "run `make testenv-build`")
        .map(|bin| Helm { bin })
}

struct Helm {
    bin: PathBuf,
}

impl Helm {
    /// Runs `helm <cmd> <chart> --set …`; (success, stdout, stderr).
    fn run(&self, cmd: &[&str], sets: &[&str]) -> (bool, String, String) {
        self.run_chart(Path::new(CHART), cmd, sets)
    }

    fn run_chart(&self, chart: &Path, cmd: &[&str], sets: &[&str]) -> (bool, String, String) {
        let mut c = Command::new(&self.bin);
        c.args(cmd).arg(chart).args(["--namespace", RELEASE_NS]);
        // helm's default Kubernetes version depends on its build flags (testenv's helm says
        // v1.20, below the chart's kubeVersion): pin the one testenv runs.
        c.args(["--kube-version", testenv::versions::KUBERNETES]);
        for s in sets {
            c.args(["--set", s]);
        }
        let out = c
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.display()));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn lint(&self, sets: &[&str]) {
        let (ok, out, err) = self.run(&["lint", "--strict"], sets);
        assert!(ok, "helm lint --strict {sets:?} failed:\n{out}\n{err}");
    }

    /// The rendered objects.
    fn template(&self, sets: &[&str]) -> Vec<Value> {
        let (ok, out, err) = self.run(&["template", "r"], sets);
        assert!(ok, "helm template {sets:?} failed:\n{err}");
        parse_yaml_stream(&out)
    }

    /// NOTES.txt as `helm install` would print it. `helm template` leaves NOTES out, and
    /// `install --dry-run` needs a cluster, so a copy of the chart renders it into a ConfigMap
    /// (through `tpl`, with the chart's helpers and values).
    fn notes(&self, test: &str, sets: &[&str]) -> String {
        let copy =
            std::env::temp_dir().join(format!("converse-chart-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(Path::new(CHART), &copy);
        std::fs::copy(
            copy.join("templates/NOTES.txt"),
            copy.join("files/notes-under-test.txt"),
        )
        .expect("copy NOTES.txt");
        std::fs::write(
            copy.join("templates/notes-under-test.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  \
             notes: {{ tpl (.Files.Get \"files/notes-under-test.txt\") . | toJson }}\n",
        )
        .expect("write the NOTES template");
        let cmd = [
            "template",
            "r",
            "--show-only",
            "templates/notes-under-test.yaml",
        ];
        let (ok, out, err) = self.run_chart(&copy, &cmd, sets);
        std::fs::remove_dir_all(&copy).expect("remove the chart copy");
        assert!(ok, "rendering NOTES.txt {sets:?} failed:\n{err}");
        let [configmap] = parse_yaml_stream(&out).try_into().expect("one ConfigMap");
        configmap["data"]["notes"]
            .as_str()
            .expect("notes text")
            .to_owned()
    }

    /// The error of a render that must fail.
    fn template_error(&self, sets: &[&str]) -> String {
        let (ok, _, err) = self.run(&["template", "r"], sets);
        assert!(!ok, "helm template {sets:?} should have failed");
        err
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("dir entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy file");
        }
    }
}

fn parse_yaml_stream(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("helm renders valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    match of_kind(objects, kind).as_slice() {
        [o] => o,
        found => panic!("expected one {kind}, found {}", found.len()),
    }
}

fn kinds(objects: &[Value]) -> Vec<&str> {
    let mut k: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    k.sort_unstable();
    k
}

/// The operator container's args.
fn args(objects: &[Value]) -> Vec<String> {
    let container = &one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    serde_json::from_value(container["args"].clone()).expect("args are strings")
}

fn has_arg(objects: &[Value], arg: &str) -> bool {
    args(objects)
        .iter()
        .any(|a| a == arg || a.starts_with(&format!("{arg}=")))
}

/// The (apiGroup, resource, verb) triples `role` grants (resourceNames aside).
fn grants(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let strings = |k: &str| -> Vec<String> {
            serde_json::from_value(rule[k].clone()).unwrap_or_default()
        };
        for g in strings("apiGroups") {
            for r in strings("resources") {
                for v in strings("verbs") {
                    out.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}

/// What the controller does with each resource (operator/src: controller.rs watches, apply.rs
/// applies and deletes, dereference.rs reads Secrets, status.rs applies status, kube-runtime's
/// Recorder writes events.k8s.io Events). The chart must grant exactly this: a missing verb
/// breaks the operator, an extra one is privilege it does not use.
fn needed() -> BTreeSet<(String, String, String)> {
    let read = ["get", "list", "watch"];
    let apply = ["create", "patch"];
    let mut out = BTreeSet::new();
    let mut add = |group: &str, resource: &str, verbs: &[&str]| {
        for v in verbs {
            out.insert((group.to_owned(), resource.to_owned(), (*v).to_owned()));
        }
    };
    add("converse.dev", "converseservers", &read);
    add("converse.dev", "converseservers/status", &["get", "patch"]);
    add("converse.dev", "converseservers/finalizers", &["update"]);
    for (group, resource) in [
        ("apps", "deployments"),
        ("", "services"),
        ("", "serviceaccounts"),
    ] {
        add(group, resource, &read);
        add(group, resource, &apply);
    }
    // The optional children, deleted when no longer desired.
    for (group, resource) in [
        ("", "secrets"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "networkpolicies"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("policy", "poddisruptionbudgets"),
        ("autoscaling", "horizontalpodautoscalers"),
    ] {
        add(group, resource, &read);
        add(group, resource, &apply);
        add(group, resource, &["delete"]);
    }
    add("events.k8s.io", "events", &apply);
    // spec.env/envFrom and spec.files: read the ConfigMaps, and watch them (metadata) so a
    // change rolls the pods.
    add("", "configmaps", &read);
    // spec.files: does the claim exist?
    add("", "persistentvolumeclaims", &["get"]);
    out
}

#[test]
fn lint_strict_is_clean() {
    let Some(helm) = helm("lint_strict_is_clean") else {
        return;
    };
    helm.lint(&[]);
    helm.lint(&["rbac.scope=namespace"]);
    helm.lint(&[
        "replicaCount=2",
        "networkPolicy.enabled=true",
        "metrics.serviceMonitor.enabled=true",
    ]);
}

#[test]
fn default_render() {
    let Some(helm) = helm("default_render") else {
        return;
    };
    let objects = helm.template(&[]);
    assert_eq!(
        kinds(&objects),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "Service",
            "ServiceAccount"
        ]
    );
    let crd = one(&objects, "CustomResourceDefinition");
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );

    let deployment = one(&objects, "Deployment");
    assert_eq!(deployment["metadata"]["namespace"], RELEASE_NS);
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["serviceAccountName"], "r-converse-operator");
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        format!("ghcr.io/converse-on-kubernetes/converse-operator:{VERSION}")
    );
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    let args = args(&objects);
    assert_eq!(args[0], "run");
    assert!(args.contains(&format!(
        "--server-image=ghcr.io/converse-on-kubernetes/converse-server:{VERSION}"
    )));
    assert!(args.contains(&"--metrics-addr=0.0.0.0:8080".to_owned()));
    assert!(!has_arg(&objects, "--leader-election"), "{args:?}");
    assert!(
        !has_arg(&objects, "--namespace"),
        "all namespaces: {args:?}"
    );
    let env: Vec<&str> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(env, ["POD_NAME", "POD_NAMESPACE"]);
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "metrics");
    assert_eq!(container["ports"][0]["containerPort"], 8080);

    let service = one(&objects, "Service");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["ports"][0]["name"], "metrics");

    let binding = one(&objects, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], "r-converse-operator");
    assert_eq!(binding["subjects"][0]["name"], "r-converse-operator");
    assert_eq!(binding["subjects"][0]["namespace"], RELEASE_NS);
    assert_eq!(grants(one(&objects, "ClusterRole")), needed());
}

#[test]
fn replicas_turn_on_leader_election() {
    let Some(helm) = helm("replicas_turn_on_leader_election") else {
        return;
    };
    let objects = helm.template(&["replicaCount=2"]);
    assert!(has_arg(&objects, "--leader-election"));
    assert!(args(&objects).contains(&"--leader-election-id=r-converse-operator".to_owned()));
    assert!(one(&objects, "Deployment")["spec"]["strategy"].is_null());
    let lease_role = of_kind(&objects, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == "r-converse-operator-leader-election")
        .expect("a leader-election Role");
    assert_eq!(lease_role["metadata"]["namespace"], RELEASE_NS);
    let granted: BTreeSet<String> = grants(lease_role)
        .into_iter()
        .map(|(g, r, v)| format!("{g}/{r}:{v}"))
        .collect();
    let want = ["create", "get", "update"].map(|v| format!("coordination.k8s.io/leases:{v}"));
    assert_eq!(granted, BTreeSet::from(want));
    // Only create cannot be limited to the operator's own Lease.
    for rule in lease_role["rules"].as_array().expect("rules") {
        if rule["verbs"] != json!(["create"]) {
            assert_eq!(rule["resourceNames"], json!(["r-converse-operator"]));
        }
    }
    assert!(
        of_kind(&objects, "RoleBinding")
            .iter()
            .any(|b| b["roleRef"]["name"] == "r-converse-operator-leader-election")
    );

    // Forced on with one replica; refused off with several.
    assert!(has_arg(
        &helm.template(&["leaderElection.enabled=true"]),
        "--leader-election"
    ));
    let err = helm.template_error(&["replicaCount=2", "leaderElection.enabled=false"]);
    assert!(err.contains("needs leader election"), "{err}");
}

#[test]
fn namespace_scope_grants_only_the_watched_namespaces() {
    let Some(helm) = helm("namespace_scope_grants_only_the_watched_namespaces") else {
        return;
    };
    let objects = helm.template(&["rbac.scope=namespace", "watchNamespaces={a,b}"]);
    assert!(of_kind(&objects, "ClusterRole").is_empty());
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());
    for kind in ["Role", "RoleBinding"] {
        let namespaces: Vec<&str> = of_kind(&objects, kind)
            .iter()
            .filter_map(|o| o["metadata"]["namespace"].as_str())
            .collect();
        assert_eq!(namespaces, ["a", "b"], "{kind}");
    }
    for role in of_kind(&objects, "Role") {
        assert_eq!(grants(role), needed());
    }
    for binding in of_kind(&objects, "RoleBinding") {
        assert_eq!(binding["subjects"][0]["namespace"], RELEASE_NS);
    }
    assert!(args(&objects).contains(&"--namespace=a,b".to_owned()));

    // Without a list: the release namespace.
    let objects = helm.template(&["rbac.scope=namespace"]);
    assert_eq!(one(&objects, "Role")["metadata"]["namespace"], RELEASE_NS);
    assert!(args(&objects).contains(&format!("--namespace={RELEASE_NS}")));
}

#[test]
fn crds_can_be_left_out_or_not_kept() {
    let Some(helm) = helm("crds_can_be_left_out_or_not_kept") else {
        return;
    };
    let objects = helm.template(&["crds.install=false"]);
    assert!(of_kind(&objects, "CustomResourceDefinition").is_empty());
    let objects = helm.template(&["crds.keep=false"]);
    let crd = one(&objects, "CustomResourceDefinition");
    assert!(
        crd["metadata"]["annotations"].is_null(),
        "{}",
        crd["metadata"]
    );
}

#[test]
fn schema_rejects_unknown_and_invalid_values() {
    let Some(helm) = helm("schema_rejects_unknown_and_invalid_values") else {
        return;
    };
    for (set, names) in [
        ("replicaCont=2", "replicaCont"),
        ("image.tagg=x", "tagg"),
        ("metrics.serviceMonitor.enable=true", "enable"),
        ("rbac.scope=everywhere", "scope"),
        ("logFormat=xml", "logFormat"),
    ] {
        let err = helm.template_error(&[set]);
        assert!(err.contains(names), "--set {set}: {err}");
    }
}

/// Numbers compare by value (the generated YAML writes `1.0`, helm's toYaml writes `1`).
fn normalize(v: Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Number(n), |f| f.into()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalize(v))).collect()),
        other => other,
    }
}

#[test]
fn rendered_crd_is_the_generated_one() {
    let Some(helm) = helm("rendered_crd_is_the_generated_one") else {
        return;
    };
    let objects = helm.template(&[]);
    let mut rendered = one(&objects, "CustomResourceDefinition").clone();
    let meta = rendered["metadata"].as_object_mut().expect("metadata");
    let labels = meta.remove("labels").expect("chart labels");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
    meta.remove("annotations").expect("the keep annotation");

    let generated = converse_operator::crd::crd_yaml().expect("CRD renders");
    let [generated] = parse_yaml_stream(&generated)
        .try_into()
        .expect("one CRD document");
    assert!(
        normalize(rendered) == normalize(generated),
        "the chart's CRD differs from the generated one; run \
         `UPDATE_CRDS=1 cargo test -p converse-operator --test generated`"
    );
}

#[test]
fn every_container_is_restricted() {
    let Some(helm) = helm("every_container_is_restricted") else {
        return;
    };
    let cases: [&[&str]; 3] = [
        &[],
        &["replicaCount=3", "rbac.scope=namespace"],
        &["extraEnv[0].name=X", "extraEnv[0].value=y"],
    ];
    for sets in cases {
        let objects = helm.template(sets);
        for workload in of_kind(&objects, "Deployment") {
            let pod = &workload["spec"]["template"]["spec"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{sets:?}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"],
                "RuntimeDefault"
            );
            let containers = ["initContainers", "containers"]
                .iter()
                .filter_map(|k| pod[k].as_array())
                .flatten();
            for c in containers {
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{}", c["name"]);
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{}", c["name"]);
                assert_eq!(sc["runAsNonRoot"], true, "{}", c["name"]);
                assert_eq!(sc["runAsUser"], 65532, "{}", c["name"]);
                assert_eq!(sc["runAsGroup"], 65532, "{}", c["name"]);
                assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
                assert!(sc["capabilities"]["add"].is_null(), "{}", c["name"]);
                assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
                assert!(c["resources"]["limits"]["memory"].is_string());
            }
        }
    }
}

#[test]
fn no_rbac_rule_uses_a_wildcard() {
    let Some(helm) = helm("no_rbac_rule_uses_a_wildcard") else {
        return;
    };
    let cases: [&[&str]; 2] = [
        &["replicaCount=2"],
        &["replicaCount=2", "rbac.scope=namespace"],
    ];
    for sets in cases {
        let objects = helm.template(sets);
        let roles = [of_kind(&objects, "ClusterRole"), of_kind(&objects, "Role")].concat();
        assert!(!roles.is_empty());
        for role in roles {
            for rule in role["rules"].as_array().expect("rules") {
                for key in ["apiGroups", "resources", "verbs", "resourceNames"] {
                    let wild = rule[key].as_array().is_some_and(|a| {
                        a.iter()
                            .any(|v| v.as_str().is_some_and(|s| s.contains('*')))
                    });
                    assert!(!wild, "{} {key}: {rule}", role["metadata"]["name"]);
                }
                assert!(rule["nonResourceURLs"].is_null(), "{rule}");
            }
        }
    }
}

#[test]
fn optional_objects_render() {
    let Some(helm) = helm("optional_objects_render") else {
        return;
    };
    let objects = helm.template(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.serviceMonitor.labels.release=kps",
        "networkPolicy.enabled=true",
        "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring",
        "serviceAccount.create=false",
        "serviceAccount.name=existing",
        "otlpEndpoint=http://otel-collector.observability:4318",
    ]);
    let env = &one(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array().is_some_and(|e| e.contains(&json!({
            "name": "OTEL_EXPORTER_OTLP_ENDPOINT",
            "value": "http://otel-collector.observability:4318"
        }))),
        "{env}"
    );
    let monitor = one(&objects, "ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "kps");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    let policy = one(&objects, "NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    let ingress = &policy["spec"]["ingress"];
    assert_eq!(ingress.as_array().map(Vec::len), Some(1));
    assert_eq!(
        ingress[0]["ports"],
        json!([{"port": "metrics", "protocol": "TCP"}])
    );
    assert!(of_kind(&objects, "ServiceAccount").is_empty());
    assert_eq!(
        one(&objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"],
        "existing"
    );
    assert_eq!(
        one(&objects, "ClusterRoleBinding")["subjects"][0]["name"],
        "existing"
    );
}

/// The Secret verbs are the ones the code uses, split by purpose: reading (referenced Secrets,
/// the metadata watch) and writing (only `<name>-generated`), so neither grant hides in the
/// other. Neither can carry resourceNames (see the template's comments).
#[test]
fn secret_reads_and_writes_are_separate_rules() {
    let Some(helm) = helm("secret_reads_and_writes_are_separate_rules") else {
        return;
    };
    let cases: [&[&str]; 2] = [&[], &["rbac.scope=namespace", "watchNamespaces={a,b}"]];
    for sets in cases {
        let objects = helm.template(sets);
        let roles = [of_kind(&objects, "ClusterRole"), of_kind(&objects, "Role")].concat();
        let mut checked = 0;
        for role in roles {
            let secret_rules: Vec<&Value> = role["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .filter(|r| r["resources"] == json!(["secrets"]))
                .collect();
            if secret_rules.is_empty() {
                // The leader-election Role: Leases only.
                continue;
            }
            let verbs: Vec<&Value> = secret_rules.iter().map(|r| &r["verbs"]).collect();
            assert_eq!(
                verbs,
                [
                    &json!(["get", "list", "watch"]),
                    &json!(["create", "patch", "delete"])
                ],
                "{sets:?}"
            );
            for rule in &secret_rules {
                assert_eq!(rule["apiGroups"], json!([""]));
                assert!(rule["resourceNames"].is_null(), "{rule}");
            }
            // No other rule mentions Secrets.
            let all = role["rules"].as_array().expect("rules");
            let mentioning = all
                .iter()
                .filter(|r| r["resources"].to_string().contains("secrets"))
                .count();
            assert_eq!(mentioning, 2, "{sets:?}");
            checked += 1;
        }
        assert!(checked >= 1, "{sets:?}");
    }
}

/// NOTES.txt says what cluster scope exposes (every Secret readable), why, and how to switch to
/// namespace scope; with namespace scope it names where Secrets are readable instead.
#[test]
fn notes_say_what_cluster_scope_exposes() {
    let Some(helm) = helm("notes_say_what_cluster_scope_exposes") else {
        return;
    };
    let cluster = helm.notes("cluster", &[]);
    for want in [
        "RBAC scope: cluster",
        "the operator can read every Secret in the cluster",
        "RBAC cannot limit reading",
        "--set rbac.scope=namespace",
        "watchNamespaces=",
    ] {
        assert!(cluster.contains(want), "{want:?} missing from:\n{cluster}");
    }
    let namespaced = helm.notes(
        "namespace",
        &["rbac.scope=namespace", "watchNamespaces={a,b}"],
    );
    assert!(!namespaced.contains("every Secret"), "{namespaced}");
    assert!(
        namespaced.contains("can read Secrets only in a, b"),
        "{namespaced}"
    );
    // Without the chart's RBAC, whoever grants the rights knows what they grant.
    let none = helm.notes("none", &["rbac.create=false"]);
    assert!(!none.contains("RBAC, "), "{none}");
}
