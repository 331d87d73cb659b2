//! Cluster tests against the real single-node cluster of `testenv up`.
//!
//! Without a running testenv cluster (no TESTENV_KUBECONFIG) each test prints a SKIPPED notice
//! and passes, so `cargo test --workspace` never reaches for a cluster; `make test-cluster`
//! starts one, sets TESTENV_KUBECONFIG and TESTENV_REQUIRED=1 (a missing cluster then fails).
//! The image tests need root (buildah, ctr), like `testenv up` itself.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use testenv::{Layout, TestNamespace, apply_yaml, wait_for, wait_gone};

const PROBE_TAG: &str = "localhost/testenv-probe:1";

async fn cluster(test: &str) -> Option<Client> {
    match testenv::client_or_skip(test).await {
        Ok(c) => c,
        Err(e) => panic!("{test}: TESTENV_REQUIRED=1 but no cluster: {e}"),
    }
}

/// Builds the probe fixture (a static Go program) into a FROM-scratch image with buildah and
/// imports it into the node, once per test process.
fn probe_image() -> String {
    static BUILT: Mutex<Option<Result<(), String>>> = Mutex::new(None);
    let mut guard = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        let result = (|| -> testenv::Result<()> {
            let layout = Layout::from_env();
            let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/probe");
            let ctx = layout.in_state("images/probe-context");
            std::fs::create_dir_all(&ctx)
                .map_err(|e| testenv::Error::io("creating the build context", e))?;
            testenv::build::go_build_static(&layout, &fixture, &ctx.join("probe"))?;
            std::fs::copy(fixture.join("Dockerfile"), ctx.join("Dockerfile"))
                .map_err(|e| testenv::Error::io("copying the Dockerfile", e))?;
            testenv::images::build_and_load(&layout, &ctx, PROBE_TAG)?;
            Ok(())
        })()
        .map_err(|e| e.to_string());
        *guard = Some(result);
    }
    match guard.as_ref() {
        Some(Ok(())) => PROBE_TAG.to_string(),
        Some(Err(e)) => panic!("building the probe image failed: {e}"),
        None => unreachable!(),
    }
}

async fn pod_logs(pods: &Api<Pod>, name: &str) -> String {
    pods.logs(name, &LogParams::default())
        .await
        .unwrap_or_else(|e| format!("(no logs: {e})"))
}

/// Waits for a run-to-completion pod and returns its logs; panics with them if it failed.
async fn finished_pod_logs(pods: &Api<Pod>, name: &str) -> String {
    let pod = wait_for(
        pods,
        name,
        |p: &Pod| {
            matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded") | Some("Failed")
            )
        },
        Duration::from_secs(120),
    )
    .await
    .expect("pod finished");
    let logs = pod_logs(pods, name).await;
    let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
    assert_eq!(phase, "Succeeded", "pod {name} failed; logs:\n{logs}");
    logs
}

#[tokio::test]
async fn crd_cel_rule_rejects_a_bad_object_at_create_time() {
    let Some(client) = cluster("crd_cel_rule_rejects_a_bad_object_at_create_time").await else {
        return;
    };
    let ns = TestNamespace::create(&client, "cel")
        .await
        .expect("namespace");
    // Group unique to this namespace: CRDs are cluster-scoped and tests run in parallel.
    let group = format!("{}.testenv.converse.dev", ns.name);
    let crd_name = format!("widgets.{group}");
    let crd = format!(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {crd_name}
spec:
  group: {group}
  names: {{kind: Widget, plural: widgets, singular: widget}}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {{type: integer}}
              maxReplicas: {{type: integer}}
            x-kubernetes-validations:
            - rule: "self.replicas <= self.maxReplicas"
              message: "replicas must not exceed maxReplicas"
"#
    );
    apply_yaml(&client, &crd, None, "testenv-test")
        .await
        .expect("CRD applied");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    wait_for(
        &crds,
        &crd_name,
        |c: &CustomResourceDefinition| {
            c.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .map(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
                .unwrap_or(false)
        },
        Duration::from_secs(30),
    )
    .await
    .expect("CRD established");

    let widget = |name: &str, replicas: i64| {
        format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {{replicas: {replicas}, maxReplicas: 3}}\n"
        )
    };
    // Discovery may lag establishment by a moment.
    let mut good = Err(testenv::Error::Invalid("not tried".into()));
    for _ in 0..40 {
        good = apply_yaml(&client, &widget("good", 2), Some(&ns.name), "testenv-test").await;
        if good.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    good.expect("a valid Widget is accepted");

    let bad = apply_yaml(&client, &widget("bad", 5), Some(&ns.name), "testenv-test").await;
    let err = bad.expect_err("a Widget violating the CEL rule must be rejected");
    let text = err.to_string();
    assert!(
        text.contains("replicas must not exceed maxReplicas"),
        "rejection must carry the rule's message: {text}"
    );
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ar);
    assert!(
        widgets.get_opt("bad").await.expect("get").is_none(),
        "nothing was stored"
    );

    crds.delete(&crd_name, &DeleteParams::default())
        .await
        .expect("CRD deleted");
    ns.cleanup().await.expect("namespace deleted");
}

#[tokio::test]
async fn server_side_apply_records_managed_fields_per_manager() {
    let Some(client) = cluster("server_side_apply_records_managed_fields_per_manager").await else {
        return;
    };
    let ns = TestNamespace::create(&client, "ssa")
        .await
        .expect("namespace");
    let cms: Api<ConfigMap> = ns.api();
    let apply = |manager: &'static str, data: serde_json::Value, force: bool| {
        let cms = cms.clone();
        async move {
            let body = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings"}, "data": data
            });
            let mut params = PatchParams::apply(manager);
            params.force = force;
            cms.patch("settings", &params, &Patch::Apply(&body)).await
        }
    };
    apply("alice", serde_json::json!({"a": "1"}), false)
        .await
        .expect("alice applies a");
    apply("bob", serde_json::json!({"b": "2"}), false)
        .await
        .expect("bob applies b");

    let cm = cms.get("settings").await.expect("get");
    let data = cm.data.clone().unwrap_or_default();
    assert_eq!(data.get("a").map(String::as_str), Some("1"));
    assert_eq!(data.get("b").map(String::as_str), Some("2"));
    let managed = cm.metadata.managed_fields.clone().unwrap_or_default();
    let owns = |manager: &str, field: &str| {
        managed.iter().any(|m| {
            m.manager.as_deref() == Some(manager)
                && m.operation.as_deref() == Some("Apply")
                && m.fields_v1
                    .as_ref()
                    .map(|f| f.0.to_string().contains(&format!("\"f:{field}\"")))
                    .unwrap_or(false)
        })
    };
    assert!(owns("alice", "a") && !owns("alice", "b"), "{managed:?}");
    assert!(owns("bob", "b") && !owns("bob", "a"), "{managed:?}");

    // Taking over another manager's field without force is a conflict naming the owner.
    let conflict = apply("bob", serde_json::json!({"a": "9", "b": "2"}), false).await;
    match conflict {
        Err(kube::Error::Api(e)) => {
            assert_eq!(e.code, 409, "{e:?}");
            assert!(e.message.contains("alice"), "{e:?}");
        }
        other => panic!("expected a 409 conflict, got {other:?}"),
    }
    ns.cleanup().await.expect("namespace deleted");
}

fn web_manifests(image: &str, secret_value: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata: {{name: greeting}}
stringData: {{message: "{secret_value}"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, labels: {{app: web}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532}}
      containers:
      - name: web
        image: {image}
        imagePullPolicy: Never
        args: [serve, ":8080"]
        ports: [{{containerPort: 8080}}]
        env:
        - name: GREETING
          valueFrom: {{secretKeyRef: {{name: greeting, key: message}}}}
        securityContext:
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {{drop: [ALL]}}
        readinessProbe:
          httpGet: {{path: /healthz, port: 8080}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    )
}

fn deployment_available(d: &Deployment) -> bool {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter().any(|c| {
                c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
            })
        })
        .unwrap_or(false)
        && d.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
}

#[tokio::test]
async fn deployment_from_a_local_image_serves_a_second_pod_through_its_service() {
    let Some(client) =
        cluster("deployment_from_a_local_image_serves_a_second_pod_through_its_service").await
    else {
        return;
    };
    let image = probe_image();
    let ns = TestNamespace::create(&client, "web")
        .await
        .expect("namespace");
    let secret_value = format!("hello-from-secret-{}", ns.name);
    apply_yaml(
        &client,
        &web_manifests(&image, &secret_value),
        Some(&ns.name),
        "testenv-test",
    )
    .await
    .expect("applied");
    let deployments: Api<Deployment> = ns.api();
    wait_for(
        &deployments,
        "web",
        deployment_available,
        Duration::from_secs(120),
    )
    .await
    .expect("Deployment Available");

    // A second pod reaches the first through the Service, by its DNS name (CoreDNS) and port.
    let url = format!("http://web.{}.svc.cluster.local/", ns.name);
    let client_pod = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: caller}}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {{runAsNonRoot: true, runAsUser: 65532}}
  containers:
  - name: caller
    image: {image}
    imagePullPolicy: Never
    args: [get, "{url}"]
"#
    );
    apply_yaml(&client, &client_pod, Some(&ns.name), "testenv-test")
        .await
        .expect("caller applied");
    let pods: Api<Pod> = ns.api();
    let logs = finished_pod_logs(&pods, "caller").await;
    assert!(logs.contains("status=200"), "{logs}");
    assert!(
        logs.contains(&format!("greeting={secret_value}")),
        "env var from the Secret: {logs}"
    );
    assert!(logs.contains("uid=65532"), "non-root user: {logs}");
    assert!(logs.contains("gid=65532"), "group from runAsGroup: {logs}");
    assert!(
        logs.contains("rootfs-writable=false"),
        "read-only root filesystem: {logs}"
    );
    ns.cleanup().await.expect("namespace deleted");
}

#[tokio::test]
async fn a_pod_uses_its_service_account_rbac_through_the_kubernetes_service() {
    let Some(client) =
        cluster("a_pod_uses_its_service_account_rbac_through_the_kubernetes_service").await
    else {
        return;
    };
    let image = probe_image();
    let ns = TestNamespace::create(&client, "rbac")
        .await
        .expect("namespace");
    let manifests = format!(
        r#"
apiVersion: v1
kind: ServiceAccount
metadata: {{name: lister}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: pod-lister}}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: lister}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-lister}}
subjects: [{{kind: ServiceAccount, name: lister, namespace: {ns}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: kube-caller}}
spec:
  restartPolicy: Never
  serviceAccountName: lister
  securityContext: {{runAsNonRoot: true, runAsUser: 65532}}
  containers:
  - name: caller
    image: {image}
    imagePullPolicy: Never
    args: [kube, "{ns}"]
"#,
        ns = ns.name
    );
    apply_yaml(&client, &manifests, Some(&ns.name), "testenv-test")
        .await
        .expect("applied");
    let pods: Api<Pod> = ns.api();
    let logs = finished_pod_logs(&pods, "kube-caller").await;
    assert!(
        logs.contains("list-pods=200"),
        "the Role grants listing pods: {logs}"
    );
    assert!(
        logs.contains("list-secrets=403"),
        "the Role does not grant secrets: {logs}"
    );
    assert!(
        logs.contains(&format!("system:serviceaccount:{}:lister", ns.name)),
        "the refusal names the ServiceAccount: {logs}"
    );
    ns.cleanup().await.expect("namespace deleted");
}

#[tokio::test]
async fn deleting_a_deployment_garbage_collects_replicasets_pods_and_containers() {
    let Some(client) =
        cluster("deleting_a_deployment_garbage_collects_replicasets_pods_and_containers").await
    else {
        return;
    };
    let image = probe_image();
    let ns = TestNamespace::create(&client, "gc")
        .await
        .expect("namespace");
    apply_yaml(
        &client,
        &web_manifests(&image, "gc"),
        Some(&ns.name),
        "testenv-test",
    )
    .await
    .expect("applied");
    let deployments: Api<Deployment> = ns.api();
    wait_for(
        &deployments,
        "web",
        deployment_available,
        Duration::from_secs(120),
    )
    .await
    .expect("Deployment Available");
    let replicasets: Api<ReplicaSet> = ns.api();
    let pods: Api<Pod> = ns.api();
    let selector = ListParams::default().labels("app=web");
    assert_eq!(
        replicasets.list(&selector).await.expect("rs").items.len(),
        1
    );
    assert_eq!(pods.list(&selector).await.expect("pods").items.len(), 1);

    deployments
        .delete("web", &DeleteParams::background())
        .await
        .expect("deleted");
    wait_gone(&deployments, "web", Duration::from_secs(30))
        .await
        .expect("Deployment gone");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let rs = replicasets.list(&selector).await.expect("rs").items.len();
        let p = pods.list(&selector).await.expect("pods").items.len();
        if rs == 0 && p == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "garbage collector left {rs} ReplicaSets and {p} Pods"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // And the node really stopped the container (sandbox records linger; containers must not).
    let layout = Layout::from_env();
    let label = format!("io.kubernetes.pod.namespace={}", ns.name);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let running = testenv::containerd::crictl(&layout, &["ps", "-q", "--label", &label])
            .expect("crictl ps");
        if running.trim().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "containers still running: {running}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ns.cleanup().await.expect("namespace deleted");
}
