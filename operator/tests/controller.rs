//! The controller against testenv's real API server, run in-process (the operator's image comes
//! with the packaging issue). Without a running testenv cluster (no TESTENV_KUBECONFIG) each test
//! prints a SKIPPED notice and passes; `make test-cluster` sets TESTENV_REQUIRED=1, so a missing
//! cluster fails instead.
//!
//! The control plane has no node for our image here, so Deployments never become Available:
//! these tests assert objects, owner references, status conditions up to Available=False and
//! the rollout trigger (the pod-template hash); Available=True is the end-to-end test's job.

mod common;

use common::cluster::{cluster, install_crd};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use converse_operator::controller::{self, Context, Settings};
use converse_operator::crd::ConverseServer;
use converse_operator::desired::CONFIG_HASH_ANNOTATION;
use converse_operator::leader::Elector;
use converse_operator::metrics::Metrics;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use testenv::{TestNamespace, wait_for, wait_gone};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(60);
const TEST_MANAGER: &str = "converse-operator-tests";

/// The controller for one namespace, running until dropped.
struct Running {
    ctx: Arc<Context>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    fn start(client: &Client, namespace: &str) -> Running {
        let ctx = Context::new(
            client.clone(),
            Settings::new("localhost/converse-server:test"),
            Arc::new(Metrics::default()),
        );
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(controller::run(
            ctx.clone(),
            Some(namespace.to_owned()),
            async move {
                let _ = rx.await;
            },
        ));
        Running {
            ctx,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn apply_secret(client: &Client, ns: &str, name: &str, data: &[(&str, &str)]) {
    let data: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": data,
    });
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    api.patch(
        name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(&secret),
    )
    .await
    .expect("apply Secret");
}

async fn apply_server(client: &Client, ns: &str, yaml: &str) -> ConverseServer {
    let value: serde_json::Value = serde_norway::from_str(yaml).expect("CR YAML");
    let name = value["metadata"]["name"].as_str().expect("name").to_owned();
    let api: Api<ConverseServer> = Api::namespaced(client.clone(), ns);
    api.patch(
        &name,
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(&value),
    )
    .await
    .expect("apply ConverseServer")
}

fn condition<'a>(
    s: &'a ConverseServer,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    s.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn has_condition(s: &ConverseServer, type_: &str, status: &str) -> bool {
    condition(s, type_).is_some_and(|c| c.status == status)
}

fn owned_by<K: Resource>(obj: &K, owner: &ConverseServer) -> bool {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .any(|o| Some(&o.uid) == owner.metadata.uid.as_ref() && o.controller == Some(true))
}

fn template_hash(d: &Deployment) -> Option<String> {
    d.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CONFIG_HASH_ANNOTATION)
        .cloned()
}

const API_KEY_SERVER: &str = r#"
apiVersion: converse.dev/v1alpha1
kind: ConverseServer
metadata: {name: team-a}
spec:
  replicas: 2
  providers:
    openai: {apiKeySecretRef: {name: llm-keys, key: openai}}
  auth:
    strategy: apiKey
    apiKey: {secretRef: {name: mcp-keys, key: keys}}
  ingress: {className: nginx, host: mcp.example.com}
  podDisruptionBudget: {minAvailable: 1}
  networkPolicy: {enabled: true}
"#;

#[tokio::test]
async fn reconciles_children_status_steady_state_and_garbage_collection() {
    let test = "reconciles_children_status_steady_state_and_garbage_collection";
    let Some(client) = cluster(test).await else {
        return;
    };
    install_crd(&client, TEST_MANAGER).await;
    let ns = TestNamespace::create(&client, "op-children")
        .await
        .expect("namespace");
    let running = Running::start(&client, &ns.name);

    apply_secret(
        &client,
        &ns.name,
        "llm-keys",
        &[("openai", "sk-test-openai")],
    )
    .await;
    apply_secret(
        &client,
        &ns.name,
        "mcp-keys",
        &[(
            "keys",
            "key-one-0123456789abcdef0123456789abcdef,key-two-0123456789abcdef0123456789abcdef",
        )],
    )
    .await;
    apply_server(&client, &ns.name, API_KEY_SERVER).await;

    let servers: Api<ConverseServer> = ns.api();
    let server = wait_for(
        &servers,
        "team-a",
        |s: &ConverseServer| {
            has_condition(s, "Accepted", "True")
                && has_condition(s, "SecretsResolved", "True")
                && s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation
        },
        WAIT,
    )
    .await
    .expect("status Accepted and SecretsResolved");
    let status = server.status.clone().expect("status");
    assert_eq!(status.url.as_deref(), Some("https://mcp.example.com/mcp"));
    assert_eq!(status.replicas, Some(2));
    assert_eq!(
        status
            .auth_strategy
            .map(|a| serde_json::to_value(a).unwrap()),
        Some(serde_json::json!("apiKey"))
    );
    assert!(has_condition(&server, "Stalled", "False"), "{status:?}");
    // No node runs our image here: the rollout is in progress, not available.
    assert!(has_condition(&server, "Available", "False"), "{status:?}");
    assert!(has_condition(&server, "Reconciling", "True"), "{status:?}");
    assert!(has_condition(&server, "Ready", "False"), "{status:?}");

    // The children, each owned by the CR.
    let deployments: Api<Deployment> = ns.api();
    let deployment = deployments.get("team-a").await.expect("Deployment");
    assert!(owned_by(&deployment, &server));
    assert_eq!(template_hash(&deployment), status.config_hash);
    let env = deployment
        .spec
        .template
        .spec
        .as_ref()
        .expect("pod spec")
        .containers[0]
        .env
        .clone()
        .unwrap_or_default();
    let refs: Vec<(String, String)> = env
        .iter()
        .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
        .map(|r| (r.name.clone(), r.key.clone()))
        .collect();
    assert!(
        refs.contains(&("mcp-keys".into(), "keys".into())),
        "{refs:?}"
    );
    assert!(
        refs.contains(&("llm-keys".into(), "openai".into())),
        "{refs:?}"
    );
    assert!(
        !env.iter().any(|e| e
            .value
            .as_deref()
            .is_some_and(|v| v.contains("sk-test") || v.contains("key-one"))),
        "a secret value leaked into the env: {env:?}"
    );
    let services: Api<Service> = ns.api();
    let accounts: Api<ServiceAccount> = ns.api();
    let ingresses: Api<Ingress> = ns.api();
    let pdbs: Api<PodDisruptionBudget> = ns.api();
    let policies: Api<NetworkPolicy> = ns.api();
    assert!(owned_by(
        &services.get("team-a").await.expect("Service"),
        &server
    ));
    assert!(owned_by(
        &accounts.get("team-a").await.expect("ServiceAccount"),
        &server
    ));
    assert!(owned_by(
        &ingresses.get("team-a").await.expect("Ingress"),
        &server
    ));
    assert!(owned_by(&pdbs.get("team-a").await.expect("PDB"), &server));
    let policy = policies.get("team-a").await.expect("NetworkPolicy");
    assert!(owned_by(&policy, &server));
    // Egress is restricted by default, and the API server accepts the operator's rules.
    let policy_spec = policy.spec.expect("NetworkPolicy spec");
    assert_eq!(
        policy_spec.policy_types.as_deref(),
        Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
    );
    assert!(policy_spec.egress.is_some_and(|e| !e.is_empty()));

    // Steady state: let the Deployment controller settle, then a forced reconcile writes nothing.
    let versions = || async {
        let s = servers.get("team-a").await.expect("CR");
        vec![
            s.resource_version(),
            deployments
                .get("team-a")
                .await
                .expect("d")
                .resource_version(),
            services.get("team-a").await.expect("s").resource_version(),
            accounts.get("team-a").await.expect("sa").resource_version(),
            ingresses.get("team-a").await.expect("i").resource_version(),
            pdbs.get("team-a").await.expect("pdb").resource_version(),
            policies.get("team-a").await.expect("np").resource_version(),
        ]
    };
    let mut before = versions().await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = versions().await;
        if now == before {
            break;
        }
        before = now;
    }
    // Not even a no-op request: the operator counts every write it sends.
    let writes = running.ctx.metrics.total_writes();
    for _ in 0..3 {
        let current = servers.get("team-a").await.expect("CR");
        controller::reconcile(Arc::new(current), running.ctx.clone())
            .await
            .expect("forced reconcile");
    }
    assert_eq!(
        versions().await,
        before,
        "a steady-state reconcile wrote something"
    );
    assert_eq!(
        running.ctx.metrics.total_writes(),
        writes,
        "steady-state reconciles sent write requests:\n{}",
        running.ctx.metrics.encode()
    );
    // Drift is still repaired: a hand edit of a child changes its resourceVersion, so the next
    // reconcile applies again and the operator's fields win.
    deployments
        .patch(
            "team-a",
            &PatchParams::apply("hand-edit").force(),
            &Patch::Apply(&serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "team-a"},
                "spec": {"replicas": 5}
            })),
        )
        .await
        .expect("hand edit");
    wait_for(
        &deployments,
        "team-a",
        |d: &Deployment| d.spec.replicas == Some(2),
        WAIT,
    )
    .await
    .expect("the operator repairs a hand-edited replica count");

    // Updating the CR updates the children; switching the ingress and the PDB off deletes them.
    servers
        .patch(
            "team-a",
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&serde_json::json!({
                "apiVersion": "converse.dev/v1alpha1", "kind": "ConverseServer",
                "metadata": {"name": "team-a"},
                "spec": {
                    "replicas": 3,
                    "providers": {"openai": {"apiKeySecretRef": {"name": "llm-keys", "key": "openai"}}},
                    "auth": {"strategy": "apiKey", "apiKey": {"secretRef": {"name": "mcp-keys", "key": "keys"}}},
                    "networkPolicy": {"enabled": true}
                }
            })),
        )
        .await
        .expect("update CR");
    wait_for(
        &deployments,
        "team-a",
        |d: &Deployment| d.spec.replicas == Some(3),
        WAIT,
    )
    .await
    .expect("Deployment scaled by the CR");
    wait_gone(&ingresses, "team-a", WAIT)
        .await
        .expect("Ingress deleted");
    wait_gone(&pdbs, "team-a", WAIT).await.expect("PDB deleted");
    let server = wait_for(
        &servers,
        "team-a",
        |s: &ConverseServer| {
            s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation
        },
        WAIT,
    )
    .await
    .expect("new generation observed");
    let url = server.status.and_then(|s| s.url).unwrap_or_default();
    assert!(url.starts_with("http://team-a."), "{url}");

    // Deleting the CR garbage-collects the children (the controller manager's GC).
    servers
        .delete("team-a", &DeleteParams::background())
        .await
        .expect("delete CR");
    wait_gone(&deployments, "team-a", Duration::from_secs(120))
        .await
        .expect("Deployment collected");
    wait_gone(&services, "team-a", WAIT)
        .await
        .expect("Service collected");
    wait_gone(&accounts, "team-a", WAIT)
        .await
        .expect("ServiceAccount collected");
    wait_gone(&policies, "team-a", WAIT)
        .await
        .expect("NetworkPolicy collected");

    running.stop().await;
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn missing_secret_stalls_then_recovers_and_rotation_rolls_the_pods() {
    let test = "missing_secret_stalls_then_recovers_and_rotation_rolls_the_pods";
    let Some(client) = cluster(test).await else {
        return;
    };
    install_crd(&client, TEST_MANAGER).await;
    let ns = TestNamespace::create(&client, "op-secrets")
        .await
        .expect("namespace");
    let running = Running::start(&client, &ns.name);

    apply_secret(
        &client,
        &ns.name,
        "llm-keys",
        &[("openai", "sk-test-openai")],
    )
    .await;
    apply_server(
        &client,
        &ns.name,
        r#"
apiVersion: converse.dev/v1alpha1
kind: ConverseServer
metadata: {name: keys}
spec:
  providers:
    openai: {apiKeySecretRef: {name: llm-keys, key: openai}}
  auth:
    strategy: apiKey
    apiKey: {secretRef: {name: mcp-keys, key: keys}}
"#,
    )
    .await;

    let servers: Api<ConverseServer> = ns.api();
    let stalled = wait_for(
        &servers,
        "keys",
        |s: &ConverseServer| has_condition(s, "Stalled", "True"),
        WAIT,
    )
    .await
    .expect("Stalled");
    let c = condition(&stalled, "SecretsResolved").expect("SecretsResolved");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "SecretNotFound")
    );
    assert!(c.message.contains("\"mcp-keys\""), "{}", c.message);
    let s = condition(&stalled, "Stalled").expect("Stalled");
    assert!(s.message.contains("\"mcp-keys\""), "{}", s.message);
    assert!(has_condition(&stalled, "Ready", "False"));
    let deployments: Api<Deployment> = ns.api();
    assert!(deployments.get_opt("keys").await.expect("get").is_none());

    // No hot loop: stalled, the CR is left alone.
    let rv = stalled.resource_version();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        servers.get("keys").await.expect("CR").resource_version(),
        rv
    );
    // One Warning Event for the transition, naming the Secret.
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let stalled_events: Vec<_> = events
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("SecretNotFound"))
        .collect();
    assert_eq!(stalled_events.len(), 1, "{stalled_events:?}");
    let e = &stalled_events[0];
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert!(
        e.note
            .as_deref()
            .is_some_and(|n| n.contains("\"mcp-keys\"")),
        "{e:?}"
    );
    assert!(e.series.is_none(), "the Event repeated: {e:?}");

    // The Secret appears: the Secret watch brings the CR back.
    apply_secret(
        &client,
        &ns.name,
        "mcp-keys",
        &[("keys", "key-one-0123456789abcdef0123456789abcdef")],
    )
    .await;
    let recovered = wait_for(
        &servers,
        "keys",
        |s: &ConverseServer| {
            has_condition(s, "Stalled", "False") && has_condition(s, "SecretsResolved", "True")
        },
        WAIT,
    )
    .await
    .expect("recovered");
    let hash = recovered
        .status
        .and_then(|s| s.config_hash)
        .expect("configHash");
    let deployment = wait_for(
        &deployments,
        "keys",
        |d: &Deployment| template_hash(d).as_ref() == Some(&hash),
        WAIT,
    )
    .await
    .expect("Deployment with the config hash");
    assert!(
        deployment
            .metadata
            .annotations
            .is_none_or(|a| !a.contains_key(CONFIG_HASH_ANNOTATION))
    );

    // Rotating the key changes the pod-template hash (which rolls the pods).
    apply_secret(
        &client,
        &ns.name,
        "mcp-keys",
        &[("keys", "key-two-0123456789abcdef0123456789abcdef")],
    )
    .await;
    let rolled = wait_for(
        &deployments,
        "keys",
        |d: &Deployment| template_hash(d).is_some_and(|h| h != hash),
        WAIT,
    )
    .await
    .expect("pod template rolled");
    let new_hash = template_hash(&rolled);
    wait_for(
        &servers,
        "keys",
        |s: &ConverseServer| s.status.as_ref().and_then(|st| st.config_hash.clone()) == new_hash,
        WAIT,
    )
    .await
    .expect("status.configHash follows");
    // `kubectl describe` tells why the pods rolled.
    let short = new_hash
        .as_deref()
        .and_then(|h| h.get(..12))
        .unwrap_or_default()
        .to_string();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let changed = events
            .list(&Default::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some("ConfigChanged")
                    && e.note.as_deref().is_some_and(|n| n.contains(&short))
            });
        if changed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ConfigChanged Event for {short}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    running.stop().await;
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn generated_jwt_secret_is_stable_and_removed_when_not_needed() {
    let test = "generated_jwt_secret_is_stable_and_removed_when_not_needed";
    let Some(client) = cluster(test).await else {
        return;
    };
    install_crd(&client, TEST_MANAGER).await;
    let ns = TestNamespace::create(&client, "op-generated")
        .await
        .expect("namespace");
    let running = Running::start(&client, &ns.name);

    apply_secret(&client, &ns.name, "llm-keys", &[("anthropic", "sk-ant")]).await;
    apply_secret(&client, &ns.name, "oauth", &[("client-secret", "cs")]).await;
    let oauth2 = r#"
apiVersion: converse.dev/v1alpha1
kind: ConverseServer
metadata: {name: login}
spec:
  providers:
    anthropic: {apiKeySecretRef: {name: llm-keys, key: anthropic}}
  auth:
    strategy: oauth2
    oauth2:
      clientId: converse-client
      clientSecretRef: {name: oauth, key: client-secret}
      authorizationUrl: https://github.com/login/oauth/authorize
      tokenUrl: https://github.com/login/oauth/access_token
      userinfoUrl: https://api.github.com/user
      allowedUsers: [octocat]
  ingress: {host: login.example.com}
"#;
    let server = apply_server(&client, &ns.name, oauth2).await;
    let secrets: Api<Secret> = ns.api();
    let generated = wait_for(&secrets, "login-generated", |_| true, WAIT)
        .await
        .expect("generated Secret");
    assert!(owned_by(&generated, &server));
    let servers: Api<ConverseServer> = ns.api();
    wait_for(
        &servers,
        "login",
        |s: &ConverseServer| {
            has_condition(s, "Accepted", "True")
                && s.status.as_ref().is_some_and(|st| st.config_hash.is_some())
        },
        WAIT,
    )
    .await
    .expect("reconciled");

    // Reconciles read the value back instead of generating a new one.
    for _ in 0..2 {
        let current = servers.get("login").await.expect("CR");
        controller::reconcile(Arc::new(current), running.ctx.clone())
            .await
            .expect("forced reconcile");
    }
    let again = secrets
        .get("login-generated")
        .await
        .expect("generated Secret");
    assert_eq!(again.data, generated.data);
    assert_eq!(again.resource_version(), generated.resource_version());

    // Switching to a strategy without a generated secret removes it.
    servers
        .patch(
            "login",
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&serde_json::json!({
                "apiVersion": "converse.dev/v1alpha1", "kind": "ConverseServer",
                "metadata": {"name": "login"},
                "spec": {
                    "providers": {"anthropic": {"apiKeySecretRef": {"name": "llm-keys", "key": "anthropic"}}},
                    "auth": {"strategy": "none"}
                }
            })),
        )
        .await
        .expect("update CR");
    wait_gone(&secrets, "login-generated", WAIT)
        .await
        .expect("generated Secret deleted");

    running.stop().await;
    ns.cleanup().await.expect("cleanup");
}

#[tokio::test]
async fn leader_election_lets_one_replica_lead_at_a_time() {
    let test = "leader_election_lets_one_replica_lead_at_a_time";
    let Some(client) = cluster(test).await else {
        return;
    };
    let ns = TestNamespace::create(&client, "op-leader")
        .await
        .expect("namespace");
    let lease = Duration::from_secs(15);
    let a = Elector::new(
        client.clone(),
        &ns.name,
        "converse-operator",
        "replica-a",
        lease,
    );
    let b = Elector::new(
        client.clone(),
        &ns.name,
        "converse-operator",
        "replica-b",
        lease,
    );

    // Both race for a fresh Lease: exactly one wins.
    let (ra, rb) = tokio::join!(a.try_lead(), b.try_lead());
    let (ra, rb) = (ra.expect("a"), rb.expect("b"));
    assert!(ra ^ rb, "a: {ra}, b: {rb}");
    let (leader, standby) = if ra { (&a, &b) } else { (&b, &a) };
    assert!(leader.try_lead().await.expect("renew"), "the leader renews");
    assert!(
        !standby.try_lead().await.expect("standby"),
        "the standby waits"
    );

    // On release the standby takes over, and the old leader no longer leads.
    leader.release().await.expect("release");
    assert!(standby.try_lead().await.expect("take over"));
    assert!(!leader.try_lead().await.expect("old leader"));

    ns.cleanup().await.expect("cleanup");
}

const CONFLICT_SERVER: &str = r#"
apiVersion: converse.dev/v1alpha1
kind: ConverseServer
metadata: {name: web}
spec:
  providers:
    openai: {apiKeySecretRef: {name: llm-keys, key: openai}}
"#;

/// An existing Service the user made, named like a child, is never taken over: the CR stalls
/// with NameConflict naming it, the Service keeps its selector and outlives the CR, and a CR of
/// that name recovers once the Service is gone.
#[tokio::test]
async fn an_unowned_object_with_a_childs_name_is_left_alone() {
    let test = "an_unowned_object_with_a_childs_name_is_left_alone";
    let Some(client) = cluster(test).await else {
        return;
    };
    install_crd(&client, TEST_MANAGER).await;
    let ns = TestNamespace::create(&client, "op-conflict")
        .await
        .expect("namespace");
    let running = Running::start(&client, &ns.name);
    apply_secret(&client, &ns.name, "llm-keys", &[("openai", "sk-test")]).await;
    let services: Api<Service> = ns.api();
    let theirs: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "their-web"}, "ports": [{"port": 8080}]}
    }))
    .expect("Service");
    services
        .create(&Default::default(), &theirs)
        .await
        .expect("their Service");

    apply_server(&client, &ns.name, CONFLICT_SERVER).await;
    let servers: Api<ConverseServer> = ns.api();
    let stalled = wait_for(
        &servers,
        "web",
        |s: &ConverseServer| {
            condition(s, "Stalled")
                .is_some_and(|c| c.status == "True" && c.reason == "NameConflict")
        },
        WAIT,
    )
    .await
    .expect("Stalled NameConflict");
    let message = &condition(&stalled, "Stalled").expect("Stalled").message;
    assert!(message.contains("Service web"), "{message}");
    let untouched = services.get("web").await.expect("their Service");
    let selector = untouched.spec.as_ref().and_then(|s| s.selector.clone());
    assert_eq!(
        selector
            .as_ref()
            .and_then(|s| s.get("app"))
            .map(String::as_str),
        Some("their-web")
    );
    assert!(
        untouched.metadata.owner_references.is_none(),
        "no owner added"
    );

    servers
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete CR");
    wait_gone(&servers, "web", WAIT).await.expect("CR gone");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        services.get_opt("web").await.expect("get").is_some(),
        "their Service outlives the CR"
    );

    // Recovery: the conflict removed, a ConverseServer of that name gets its own Service.
    apply_server(&client, &ns.name, CONFLICT_SERVER).await;
    wait_for(
        &servers,
        "web",
        |s: &ConverseServer| condition(s, "Stalled").is_some_and(|c| c.reason == "NameConflict"),
        WAIT,
    )
    .await
    .expect("stalled again");
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete their Service");
    let recovered = wait_for(
        &servers,
        "web",
        |s: &ConverseServer| has_condition(s, "Stalled", "False"),
        WAIT,
    )
    .await
    .expect("recovers once the conflict is gone");
    let ours = services.get("web").await.expect("our Service");
    assert!(owned_by(&ours, &recovered));
    drop(running);
}

const FILES_SERVER: &str = r#"
apiVersion: converse.dev/v1alpha1
kind: ConverseServer
metadata: {name: docs}
spec:
  providers:
    openai: {apiKeySecretRef: {name: llm-keys, key: openai}}
  files:
    configMap:
      name: team-docs
      items:
        - {key: design.md, path: design/design.md}
"#;

/// spec.files.configMap: a missing ConfigMap stalls the ConverseServer on FilesResolved (no
/// Deployment with a volume that cannot mount); once it exists the operator finds it (the
/// ConfigMap watch, or the periodic look), and the Deployment the API server accepts mounts it
/// read-only at the files root.
#[tokio::test]
async fn files_config_map_is_mounted_and_a_missing_one_stalls_until_it_exists() {
    use converse_operator::desired::files::{FILES_MOUNT_PATH, FILES_VOLUME};
    use k8s_openapi::api::core::v1::ConfigMap;

    let test = "files_config_map_is_mounted_and_a_missing_one_stalls_until_it_exists";
    let Some(client) = cluster(test).await else {
        return;
    };
    install_crd(&client, TEST_MANAGER).await;
    let ns = TestNamespace::create(&client, "op-files")
        .await
        .expect("namespace");
    let running = Running::start(&client, &ns.name);
    apply_secret(&client, &ns.name, "llm-keys", &[("openai", "sk-test")]).await;
    apply_server(&client, &ns.name, FILES_SERVER).await;

    let servers: Api<ConverseServer> = ns.api();
    let stalled = wait_for(
        &servers,
        "docs",
        |s: &ConverseServer| has_condition(s, "Stalled", "True"),
        WAIT,
    )
    .await
    .expect("Stalled");
    let c = condition(&stalled, "FilesResolved").expect("FilesResolved");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "ConfigMapNotFound")
    );
    assert!(c.message.contains("\"team-docs\""), "{}", c.message);
    assert!(has_condition(&stalled, "SecretsResolved", "True"));
    let deployments: Api<Deployment> = ns.api();
    assert!(deployments.get_opt("docs").await.expect("get").is_none());

    // A ConfigMap without the listed key: still stalled, now naming the key.
    let config_maps: Api<ConfigMap> = ns.api();
    let apply_config_map = |data: serde_json::Value| {
        let config_maps = config_maps.clone();
        async move {
            let cm = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "team-docs"},
                "data": data,
            });
            config_maps
                .patch(
                    "team-docs",
                    &PatchParams::apply(TEST_MANAGER).force(),
                    &Patch::Apply(&cm),
                )
                .await
                .expect("apply ConfigMap");
        }
    };
    apply_config_map(serde_json::json!({"other.md": "# Other\n"})).await;
    let missing_key = wait_for(
        &servers,
        "docs",
        |s: &ConverseServer| {
            condition(s, "FilesResolved").is_some_and(|c| c.reason == "ConfigMapKeyNotFound")
        },
        WAIT,
    )
    .await
    .expect("FilesResolved ConfigMapKeyNotFound");
    let c = condition(&missing_key, "FilesResolved").expect("FilesResolved");
    assert!(c.message.contains("\"design.md\""), "{}", c.message);

    // The key appears: the operator finds it, and the Deployment mounts the ConfigMap.
    apply_config_map(serde_json::json!({"design.md": "# Design\n"})).await;
    wait_for(
        &servers,
        "docs",
        |s: &ConverseServer| {
            has_condition(s, "Stalled", "False") && has_condition(s, "FilesResolved", "True")
        },
        WAIT,
    )
    .await
    .expect("recovered");
    let deployment = wait_for(&deployments, "docs", |_: &Deployment| true, WAIT)
        .await
        .expect("Deployment");
    let pod = deployment.spec.template.spec.expect("pod");
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == FILES_VOLUME)
        .expect("files volume");
    assert_eq!(
        volume.config_map.as_ref().map(|c| c.name.as_str()),
        Some("team-docs")
    );
    let server = &pod.containers[0];
    let mount = server
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == FILES_VOLUME)
        .expect("files mount");
    assert_eq!(
        (mount.mount_path.as_str(), mount.read_only),
        (FILES_MOUNT_PATH, Some(true))
    );
    assert!(mount.sub_path.is_none());
    let root = server
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "CONVERSE_FILES_ROOT")
        .and_then(|e| e.value.as_deref());
    assert_eq!(root, Some(FILES_MOUNT_PATH));

    running.stop().await;
    ns.cleanup().await.expect("cleanup");
}

const ENV_FROM_SERVER: &str = r#"
apiVersion: converse.dev/v1alpha1
kind: ConverseServer
metadata: {name: envfrom}
spec:
  providers:
    openai: {apiKeySecretRef: {name: llm-keys, key: openai}}
  env:
    - name: TEAM_MODE
      valueFrom: {configMapKeyRef: {name: team-settings, key: mode}}
  envFrom:
    - secretRef: {name: extra-env}
"#;

/// A Secret the pods read only through spec.envFrom, and a ConfigMap read through
/// spec.env[].valueFrom, roll the pods when they change: both are watched (metadata only) and
/// their data digested into the pod-template hash, like the spec's own Secret references.
#[tokio::test]
async fn changing_what_env_and_env_from_read_rolls_the_pods() {
    use k8s_openapi::api::core::v1::ConfigMap;

    let test = "changing_what_env_and_env_from_read_rolls_the_pods";
    let Some(client) = cluster(test).await else {
        return;
    };
    install_crd(&client, TEST_MANAGER).await;
    let ns = TestNamespace::create(&client, "op-envfrom")
        .await
        .expect("namespace");
    let running = Running::start(&client, &ns.name);
    apply_secret(&client, &ns.name, "llm-keys", &[("openai", "sk-test")]).await;
    apply_secret(&client, &ns.name, "extra-env", &[("EXTRA_TOKEN", "one")]).await;
    let config_maps: Api<ConfigMap> = ns.api();
    let apply_config_map = |mode: &'static str| {
        let config_maps = config_maps.clone();
        async move {
            let cm = serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "team-settings"},
                "data": {"mode": mode},
            });
            config_maps
                .patch(
                    "team-settings",
                    &PatchParams::apply(TEST_MANAGER).force(),
                    &Patch::Apply(&cm),
                )
                .await
                .expect("apply ConfigMap");
        }
    };
    apply_config_map("fast").await;
    apply_server(&client, &ns.name, ENV_FROM_SERVER).await;

    let servers: Api<ConverseServer> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    // The Deployment carries the hash status reports.
    let rolled_to = |previous: Option<String>| {
        let (servers, deployments) = (servers.clone(), deployments.clone());
        async move {
            let server = wait_for(
                &servers,
                "envfrom",
                |s: &ConverseServer| {
                    let hash = s.status.as_ref().and_then(|st| st.config_hash.clone());
                    hash.is_some() && hash != previous
                },
                WAIT,
            )
            .await
            .expect("status.configHash (a new one)");
            let hash = server.status.and_then(|s| s.config_hash);
            wait_for(
                &deployments,
                "envfrom",
                |d: &Deployment| template_hash(d) == hash,
                WAIT,
            )
            .await
            .expect("the Deployment's pod template carries status.configHash");
            hash
        }
    };
    let first = rolled_to(None).await;
    let deployment = deployments.get("envfrom").await.expect("Deployment");
    let container = &deployment.spec.template.spec.expect("pod").containers[0];
    assert_eq!(
        container.env_from.as_ref().expect("envFrom")[0]
            .secret_ref
            .as_ref()
            .map(|r| r.name.as_str()),
        Some("extra-env")
    );

    // Rotating the Secret used only through envFrom changes the pod-template hash.
    apply_secret(&client, &ns.name, "extra-env", &[("EXTRA_TOKEN", "two")]).await;
    let second = rolled_to(first.clone()).await;
    assert_ne!(second, first);

    // So does the ConfigMap value an env entry reads.
    apply_config_map("slow").await;
    let third = rolled_to(second.clone()).await;
    assert_ne!(third, second);

    running.stop().await;
    ns.cleanup().await.expect("cleanup");
}

/// Installs the Gateway API's standard CRDs (testenv caches them from the Go module
/// `sigs.k8s.io/gateway-api`) and waits until HTTPRoutes are served. Only this test installs
/// them; every other test works with or without them.
async fn install_gateway_api_crds(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let files = testenv::gateway_api::crd_files(&testenv::Layout::from_env())
        .expect("the Gateway API CRDs (testenv build caches them)");
    for file in files {
        let yaml = std::fs::read_to_string(&file).expect("read a Gateway API CRD");
        testenv::apply_yaml(client, &yaml, None, TEST_MANAGER)
            .await
            .unwrap_or_else(|e| panic!("apply {}: {e}", file.display()));
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    wait_for(
        &crds,
        "httproutes.gateway.networking.k8s.io",
        |crd: &CustomResourceDefinition| {
            crd.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        },
        WAIT,
    )
    .await
    .expect("HTTPRoute CRD established");
}

/// spec.gateway: the API server accepts the operator's HTTPRoute, which routes the MCP paths of
/// the host names to the Service; the public URL follows the first host name; removing
/// spec.gateway deletes the route.
#[tokio::test]
async fn gateway_becomes_an_http_route_and_goes_with_it() {
    use converse_operator::desired::http_route::HttpRoute;
    let test = "gateway_becomes_an_http_route_and_goes_with_it";
    let Some(client) = cluster(test).await else {
        return;
    };
    install_crd(&client, TEST_MANAGER).await;
    install_gateway_api_crds(&client).await;
    let ns = TestNamespace::create(&client, "op-gateway")
        .await
        .expect("namespace");
    let running = Running::start(&client, &ns.name);

    apply_secret(&client, &ns.name, "llm-keys", &[("anthropic", "sk-ant")]).await;
    let routed = r#"
apiVersion: converse.dev/v1alpha1
kind: ConverseServer
metadata: {name: routed}
spec:
  providers:
    anthropic: {apiKeySecretRef: {name: llm-keys, key: anthropic}}
  gateway:
    parentRefs: [{name: public, namespace: gateway-system, sectionName: https}]
    hostnames: [mcp.example.com, mcp.example.org]
"#;
    let server = apply_server(&client, &ns.name, routed).await;
    let routes: Api<HttpRoute> = ns.api();
    let route = wait_for(&routes, "routed", |_| true, WAIT)
        .await
        .expect("HTTPRoute");
    assert!(owned_by(&route, &server));
    assert_eq!(route.spec.hostnames, ["mcp.example.com", "mcp.example.org"]);
    assert_eq!(route.spec.parent_refs.len(), 1);
    let parent = &route.spec.parent_refs[0];
    assert_eq!(parent.name, "public");
    assert_eq!(parent.namespace.as_deref(), Some("gateway-system"));
    assert_eq!(parent.section_name.as_deref(), Some("https"));
    assert_eq!(route.spec.rules.len(), 1);
    let rule = &route.spec.rules[0];
    let paths: Vec<(String, String)> = rule
        .matches
        .iter()
        .filter_map(|m| m.path.as_ref())
        .map(|p| {
            (
                p.type_.clone().unwrap_or_default(),
                p.value.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            ("PathPrefix".to_owned(), "/mcp".to_owned()),
            (
                "PathPrefix".to_owned(),
                "/.well-known/oauth-protected-resource".to_owned()
            ),
        ]
    );
    assert_eq!(rule.backend_refs.len(), 1);
    assert_eq!(rule.backend_refs[0].name, "routed");
    assert_eq!(rule.backend_refs[0].port, Some(80));
    assert_eq!(
        rule.timeouts.as_ref().and_then(|t| t.request.as_deref()),
        Some("1h2m")
    );

    let servers: Api<ConverseServer> = ns.api();
    wait_for(
        &servers,
        "routed",
        |s: &ConverseServer| {
            has_condition(s, "Accepted", "True")
                && s.status.as_ref().and_then(|st| st.url.as_deref())
                    == Some("https://mcp.example.com/mcp")
        },
        WAIT,
    )
    .await
    .expect("status.url from the first host name");

    // No more spec.gateway: the route is deleted, the URL is the Service's again.
    servers
        .patch(
            "routed",
            &PatchParams::apply(TEST_MANAGER).force(),
            &Patch::Apply(&serde_json::json!({
                "apiVersion": "converse.dev/v1alpha1", "kind": "ConverseServer",
                "metadata": {"name": "routed"},
                "spec": {
                    "providers": {"anthropic": {"apiKeySecretRef": {"name": "llm-keys", "key": "anthropic"}}}
                }
            })),
        )
        .await
        .expect("update CR");
    wait_gone(&routes, "routed", WAIT)
        .await
        .expect("HTTPRoute deleted");
    let service_url = format!("http://routed.{}.svc/mcp", ns.name);
    wait_for(
        &servers,
        "routed",
        |s: &ConverseServer| {
            s.status.as_ref().and_then(|st| st.url.as_deref()) == Some(service_url.as_str())
        },
        WAIT,
    )
    .await
    .expect("status.url back to the Service's");

    running.stop().await;
    ns.cleanup().await.expect("cleanup");
}
