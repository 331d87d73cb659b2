//! The controller: watches ConverseServers, the children they own and the Secrets and ConfigMaps
//! they reference, and reconciles each ConverseServer in five phases — [`dereference`] (client),
//! [`validate`](crate::validate) (pure), [`build`](crate::build) (pure),
//! [`apply`](crate::apply) (client), [`status`](crate::status) (client).
//!
//! A spec the operator cannot build (invalid, or a Secret, ConfigMap or key missing) is not an
//! error of the reconcile: it becomes Stalled=True in status and waits for a change of the CR or
//! of a referenced Secret or ConfigMap (all watched), so there is no hot loop; a missing source of
//! spec.files is also looked for again every 10 s (claims are not watched). Errors (the API
//! server, a bug in the build) go to [`error_policy`], which retries with exponential backoff.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{Instrument, debug, info, warn};

use crate::apply::{ApplyError, ChildApplier, FIELD_MANAGER, LastApplied, apply_children};
use crate::crd::{ConverseServer, ConverseServerStatus};
use crate::dereference::dereference;
use crate::desired::http_route::{GATEWAY_API_GROUP, GATEWAY_API_VERSION, HTTP_ROUTES, HttpRoute};
use crate::desired::{BuildContext, BuildError, build, generated_secret_name, labels};
use crate::metrics::Metrics;
use crate::references::{config_map_names, secret_names};
use crate::status::{GATEWAY_API_MISSING, Notice, Outcome, desired_status, notices, write_status};
use crate::validate::{ValidatedServer, ValidationError, validate};

/// Operator settings the reconcile needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Image for ConverseServers without spec.image (`--server-image`).
    pub default_image: String,
    /// `app.kubernetes.io/version` when the image has no tag.
    pub default_version: String,
    /// Cluster DNS domain (`--cluster-domain`).
    pub cluster_domain: String,
    /// Periodic re-check of a reconciled ConverseServer (drift repair).
    pub resync: Duration,
    /// Reconciles running at once. Unbounded, a burst of new ConverseServers opens as many API
    /// connections (each with TLS buffers) at once, and the allocator keeps that peak.
    pub concurrency: u16,
}

impl Settings {
    pub fn new(default_image: impl Into<String>) -> Settings {
        Settings {
            default_image: default_image.into(),
            default_version: env!("CARGO_PKG_VERSION").to_owned(),
            cluster_domain: "cluster.local".to_owned(),
            resync: Duration::from_secs(600),
            concurrency: 8,
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    recorder: Recorder,
    /// Consecutive failures per ConverseServer, for the backoff.
    failures: Mutex<HashMap<ObjectRef<ConverseServer>, u32>>,
    /// What was applied to each child, so a steady-state reconcile sends no write.
    last_applied: LastApplied,
    /// Whether API discovery showed httproutes.gateway.networking.k8s.io/v1 (looked up when a
    /// controller starts, and again by a reconcile that needs an HTTPRoute while it is false).
    gateway_api: AtomicBool,
}

impl Context {
    pub fn new(client: Client, settings: Settings, metrics: Arc<Metrics>) -> Arc<Context> {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Arc::new(Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            metrics,
            failures: Mutex::new(HashMap::new()),
            last_applied: LastApplied::default(),
            gateway_api: AtomicBool::new(false),
        })
    }

    /// Whether the cluster serves HTTPRoutes, as last discovered.
    pub fn gateway_api(&self) -> bool {
        self.gateway_api.load(Ordering::Relaxed)
    }

    /// Asks API discovery whether the cluster serves HTTPRoutes, remembers and returns it.
    pub async fn discover_gateway_api(&self) -> bool {
        let found = serves_http_routes(&self.client).await;
        self.gateway_api.store(found, Ordering::Relaxed);
        found
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<ConverseServer>, u32>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops what is remembered about ConverseServers no longer in `store` (deleted ones are
    /// not reconciled again, so nothing else would forget them).
    fn forget_deleted(&self, store: &Store<ConverseServer>) {
        let exists = |namespace: &str, name: &str| {
            store.get(&ObjectRef::new(name).within(namespace)).is_some()
        };
        self.failures()
            .retain(|r, _| exists(r.namespace.as_deref().unwrap_or_default(), &r.name));
        self.last_applied.retain(exists);
    }
}

/// Why a reconcile failed (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("the ConverseServer has no {0}")]
    Metadata(&'static str),
    #[error("applying the children: {0}")]
    Apply(String),
}

impl Error {
    /// The failure reason for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApi",
            Error::Build(_) => "BuildFailed",
            Error::Metadata(_) => "MissingMetadata",
            Error::Apply(_) => "ApplyFailed",
        }
    }
}

/// How often a ConverseServer stalled on a name conflict looks again.
const NAME_CONFLICT_RECHECK: Duration = Duration::from_secs(10);

/// How often a ConverseServer stalled on a missing source of spec.files looks again.
/// PersistentVolumeClaims are not watched: a watch would hold every claim of the watched
/// namespaces for the few that back a files directory; a get every few seconds for each stalled
/// ConverseServer is cheaper. (ConfigMaps are watched, for the environment's sake, so a files
/// ConfigMap is found at once; the look also covers an operator that may not read them.)
const FILES_RECHECK: Duration = Duration::from_secs(10);

/// How often a ConverseServer whose spec.gateway the cluster cannot serve looks again.
const GATEWAY_API_RECHECK: Duration = Duration::from_secs(60);

/// Whether API discovery lists httproutes in gateway.networking.k8s.io/v1. A cluster without
/// the Gateway API CRDs answers 404; any other failure is logged and counts as absent (a
/// reconcile that needs an HTTPRoute asks again).
pub async fn serves_http_routes(client: &Client) -> bool {
    match client
        .list_api_group_resources(&format!("{GATEWAY_API_GROUP}/{GATEWAY_API_VERSION}"))
        .await
    {
        Ok(list) => list.resources.iter().any(|r| r.name == HTTP_ROUTES),
        Err(kube::Error::Api(status)) if status.code == 404 => false,
        Err(e) => {
            warn!("API discovery of {GATEWAY_API_GROUP}/{GATEWAY_API_VERSION} failed: {e}");
            false
        }
    }
}

/// One reconcile of `server` (what the controller calls; tests may call it to force one).
pub async fn reconcile(server: Arc<ConverseServer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        namespace = server.namespace().unwrap_or_default(),
        name = server.name_any(),
        generation = server.metadata.generation.unwrap_or_default(),
    );
    let result = reconcile_phases(&server, &ctx).instrument(span).await;
    let failure = match &result {
        Ok((_, failure)) => *failure,
        Err(e) => Some(e.reason()),
    };
    ctx.metrics.observe(started.elapsed(), failure);
    if result.is_ok() {
        ctx.failures().remove(&ObjectRef::from_obj(&*server));
    }
    result.map(|(action, _)| action)
}

/// The ConverseServer being reconciled, with the metadata every client call needs.
struct Target<'a> {
    server: &'a ConverseServer,
    namespace: String,
    name: String,
    uid: String,
}

/// What phases 2–4 decided, for phase 5.
struct Reconciled {
    status: ConverseServerStatus,
    action: Action,
    /// The stall reason, for metrics; `None` when not stalled.
    failure: Option<&'static str>,
    /// Kind/name of each child deleted because it is no longer desired (each gets an Event).
    deleted: Vec<String>,
    /// The spec's warnings (an Event when the spec is accepted).
    warnings: Vec<String>,
}

/// The five phases; returns the next action and, for a stalled ConverseServer, its reason.
async fn reconcile_phases(
    server: &ConverseServer,
    ctx: &Context,
) -> Result<(Action, Option<&'static str>), Error> {
    if server.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes the children through their owner references.
        return Ok((Action::await_change(), None));
    }
    let target = Target {
        server,
        namespace: server.namespace().ok_or(Error::Metadata("namespace"))?,
        uid: server.uid().ok_or(Error::Metadata("uid"))?,
        name: server.name_any(),
    };

    // 1. dereference
    let found = dereference(&ctx.client, server, &target.namespace, &target.name).await?;
    let now = Timestamp::now();

    // 2. validate
    let reconciled = match validate(server, &found.dereferenced) {
        Err(invalid) => stalled(&target, &invalid, now),
        Ok(validated) => {
            build_and_apply(ctx, &target, validated, found.generated_jwt_secret, now).await?
        }
    };

    // 5. status, and Events for what changed
    report(ctx, &target, &reconciled).await?;
    Ok((reconciled.action, reconciled.failure))
}

/// A spec the operator cannot build: Stalled, and nothing to do until the CR or a referenced
/// Secret or ConfigMap changes (all watched), so no requeue; a missing source of spec.files is
/// looked at again periodically.
fn stalled(target: &Target<'_>, invalid: &ValidationError, now: Timestamp) -> Reconciled {
    let server = target.server;
    let status = desired_status(
        server.metadata.generation,
        server.status.as_ref(),
        &Outcome::Stalled(invalid),
        now,
    );
    let (namespace, name) = (&target.namespace, &target.name);
    info!(%namespace, %name, reason = invalid.reason(), "stalled: {invalid}");
    let action = match invalid {
        ValidationError::UnresolvedFiles(_) => Action::requeue(FILES_RECHECK),
        ValidationError::InvalidSpec(_) | ValidationError::UnresolvedSecrets(_) => {
            Action::await_change()
        }
    };
    Reconciled {
        status,
        action,
        failure: Some(invalid.reason()),
        deleted: Vec::new(),
        warnings: Vec::new(),
    }
}

/// Phases 3 (build) and 4 (apply). A failed apply is written to status before the error is
/// returned, so `kubectl wait`/`describe` and Argo CD say why while the reconcile backs off.
async fn build_and_apply(
    ctx: &Context,
    target: &Target<'_>,
    validated: ValidatedServer,
    generated_jwt_secret: String,
    now: Timestamp,
) -> Result<Reconciled, Error> {
    let server = target.server;
    let (generation, previous) = (server.metadata.generation, server.status.as_ref());
    // 3. build
    let desired = build(
        &validated,
        &BuildContext {
            default_image: ctx.settings.default_image.clone(),
            default_version: ctx.settings.default_version.clone(),
            cluster_domain: ctx.settings.cluster_domain.clone(),
            generated_jwt_secret: Some(generated_jwt_secret),
        },
    )?;
    // 4. apply
    let gateway_api = if desired.http_route.is_some() && !ctx.gateway_api() {
        // Installed since the controller started? (Its HTTPRoute is then applied, but not
        // watched until the operator restarts: drift is repaired by the periodic resync.)
        ctx.discover_gateway_api().await
    } else {
        ctx.gateway_api()
    };
    let applier = ChildApplier {
        client: &ctx.client,
        last_applied: &ctx.last_applied,
        metrics: &ctx.metrics,
        gateway_api,
    };
    let (namespace, name) = (&target.namespace, &target.name);
    let applied = match apply_children(&applier, namespace, name, &target.uid, &desired).await {
        Ok(applied) => applied,
        Err(conflict @ ApplyError::NameConflict { .. }) => {
            let message = conflict.to_string();
            warn!(%namespace, %name, "name conflict: {message}");
            let conflict = Outcome::NameConflict {
                validated: &validated,
                message: &message,
            };
            return Ok(Reconciled {
                status: desired_status(generation, previous, &conflict, now),
                // The other object is not watched (it is not ours): look again periodically,
                // so the ConverseServer recovers once it is gone.
                action: Action::requeue(NAME_CONFLICT_RECHECK),
                failure: Some("NameConflict"),
                deleted: Vec::new(),
                warnings: Vec::new(),
            });
        }
        Err(ApplyError::Kube(error)) => {
            let error = truncate(&error.to_string(), 900);
            let failed = Outcome::ApplyFailed {
                validated: &validated,
                error: &error,
            };
            let status = desired_status(generation, previous, &failed, now);
            update_status(ctx, server, namespace, &status).await?;
            return Err(Error::Apply(error));
        }
    };
    let (outcome, action, failure) = if applied.gateway_api_missing {
        warn!(%namespace, %name, "spec.gateway: the cluster does not serve HTTPRoutes");
        let outcome = Outcome::GatewayApiMissing {
            validated: &validated,
            desired: &desired,
            deployment: &applied.deployment,
        };
        let action = Action::requeue(GATEWAY_API_RECHECK);
        (outcome, action, Some(GATEWAY_API_MISSING))
    } else {
        let outcome = Outcome::Applied {
            validated: &validated,
            desired: &desired,
            deployment: &applied.deployment,
        };
        (outcome, Action::requeue(ctx.settings.resync), None)
    };
    let status = desired_status(generation, previous, &outcome, now);
    Ok(Reconciled {
        status,
        action,
        failure,
        deleted: applied.deleted,
        warnings: validated.warnings,
    })
}

/// Phase 5: writes the status if it changed, then publishes an Event per notable change and
/// per deleted child. A failed Event is logged, not retried: the status already says it all.
async fn report(ctx: &Context, target: &Target<'_>, reconciled: &Reconciled) -> Result<(), Error> {
    let server = target.server;
    let (namespace, name) = (&target.namespace, &target.name);
    let notices = notices(
        server.status.as_ref(),
        &reconciled.status,
        &reconciled.warnings,
    );
    if update_status(ctx, server, namespace, &reconciled.status).await? {
        debug!(%namespace, %name, "status updated");
    }
    let reference = server.object_ref(&());
    for e in &events(notices, &reconciled.deleted) {
        ctx.metrics.write("Event", "publish");
        if let Err(err) = ctx.recorder.publish(e, &reference).await {
            warn!(%namespace, %name, "publishing an event: {err}");
        }
    }
    Ok(())
}

/// The Events of one reconcile: the status notices, then one per deleted child.
fn events(notices: Vec<Notice>, deleted: &[String]) -> Vec<Event> {
    let mut events: Vec<Event> = notices
        .into_iter()
        .map(|n| Event {
            type_: if n.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: n.reason,
            note: Some(truncate(&n.note, 1000)),
            action: "Reconcile".to_owned(),
            secondary: None,
        })
        .collect();
    for d in deleted {
        events.push(Event {
            type_: EventType::Normal,
            reason: "ChildDeleted".to_owned(),
            note: Some(format!("deleted {d}: no longer desired by the spec")),
            action: "Delete".to_owned(),
            secondary: None,
        });
    }
    events
}

/// Writes `status` unless it is already stored (counted as a write when sent); whether it wrote.
async fn update_status(
    ctx: &Context,
    server: &ConverseServer,
    namespace: &str,
    status: &ConverseServerStatus,
) -> Result<bool, kube::Error> {
    let api: Api<ConverseServer> = Api::namespaced(ctx.client.clone(), namespace);
    let wrote = write_status(&api, server, status).await?;
    if wrote {
        ctx.metrics
            .write(ConverseServer::kind(&()).as_ref(), "status");
    }
    Ok(wrote)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Backoff for failed reconciles: 1 s doubling per consecutive failure, at most 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(9);
    Duration::from_secs(secs.min(300))
}

/// What the controller does after [`reconcile`] failed: retry with backoff.
pub fn error_policy(server: Arc<ConverseServer>, error: &Error, ctx: Arc<Context>) -> Action {
    let n = {
        let mut failures = ctx.failures();
        let n = failures.entry(ObjectRef::from_obj(&*server)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(n);
    warn!(
        namespace = server.namespace().unwrap_or_default(),
        name = server.name_any(),
        failures = n,
        "reconcile failed, retrying in {delay:?}: {error}"
    );
    Action::requeue(delay)
}

/// The ConverseServers in `store` that reference the Secret `secret` (its metadata) or own it as
/// their generated Secret.
pub fn servers_for_secret(
    store: &Store<ConverseServer>,
    secret: &ObjectMeta,
) -> Vec<ObjectRef<ConverseServer>> {
    let (Some(name), Some(namespace)) = (&secret.name, &secret.namespace) else {
        return Vec::new();
    };
    store
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_ref() == Some(namespace))
        .filter(|s| {
            generated_secret_name(&s.name_any()) == *name
                || secret_names(&s.spec).iter().any(|n| n == name)
        })
        .map(|s| ObjectRef::from_obj(&*s))
        .collect()
}

/// The ConverseServers in `store` whose environment or files directory reads the ConfigMap
/// `config_map` (its metadata).
pub fn servers_for_config_map(
    store: &Store<ConverseServer>,
    config_map: &ObjectMeta,
) -> Vec<ObjectRef<ConverseServer>> {
    let (Some(name), Some(namespace)) = (&config_map.name, &config_map.namespace) else {
        return Vec::new();
    };
    store
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_ref() == Some(namespace))
        .filter(|s| config_map_names(&s.spec).iter().any(|n| n == name))
        .map(|s| ObjectRef::from_obj(&*s))
        .collect()
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller for one namespace (`None`: all) until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let all = watcher::Config::default();
    let ours =
        watcher::Config::default().labels(&format!("{}={}", labels::MANAGED_BY, labels::MANAGER));
    let controller = Controller::new(api::<ConverseServer>(&client, ns), all.clone())
        .with_config(controller::Config::default().concurrency(ctx.settings.concurrency));
    let store = controller.store();
    let janitor = {
        let (ctx, store) = (ctx.clone(), store.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                ctx.forget_deleted(&store);
            }
        })
    };
    // HTTPRoutes are watched only where the cluster serves them: a watch of a resource the API
    // server does not know fails over and over, and the Gateway API is optional.
    let gateway_api = ctx.discover_gateway_api().await;
    info!(
        namespace = ns.unwrap_or("(all)"),
        gateway_api, "controller starting"
    );
    // Children, Secrets and ConfigMaps only trigger reconciles, and their metadata is all a
    // trigger needs (owner references, names; every change moves the resourceVersion). An
    // `Api<PartialObjectMeta<_>>` watches metadata only, which keeps whole objects — and Secret
    // data above all — out of the operator; the dereference phase reads the few referenced ones.
    let config_map_store = store.clone();
    let controller = controller
        .owns(
            api::<PartialObjectMeta<Deployment>>(&client, ns),
            ours.clone(),
        )
        .owns(api::<PartialObjectMeta<Service>>(&client, ns), ours.clone())
        .owns(
            api::<PartialObjectMeta<ServiceAccount>>(&client, ns),
            ours.clone(),
        )
        .owns(api::<PartialObjectMeta<Ingress>>(&client, ns), ours.clone())
        .owns(
            api::<PartialObjectMeta<PodDisruptionBudget>>(&client, ns),
            ours.clone(),
        )
        .owns(
            api::<PartialObjectMeta<HorizontalPodAutoscaler>>(&client, ns),
            ours.clone(),
        )
        .owns(
            api::<PartialObjectMeta<NetworkPolicy>>(&client, ns),
            ours.clone(),
        );
    let controller = if gateway_api {
        controller.owns(api::<PartialObjectMeta<HttpRoute>>(&client, ns), ours)
    } else {
        controller
    };
    controller
        .watches(
            api::<PartialObjectMeta<Secret>>(&client, ns),
            all.clone(),
            move |secret| servers_for_secret(&store, &secret.metadata),
        )
        .watches(
            api::<PartialObjectMeta<ConfigMap>>(&client, ns),
            all,
            move |config_map| servers_for_config_map(&config_map_store, &config_map.metadata),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => debug!(namespace = obj.namespace, name = obj.name, "reconciled"),
                Err(e) => debug!("controller: {e}"),
            }
        })
        .await;
    janitor.abort();
    info!(namespace = ns.unwrap_or("(all)"), "controller stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
