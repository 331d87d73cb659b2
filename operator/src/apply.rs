//! Phase 4, apply (client): server-side apply of every desired child with one field manager
//! (forcing, so the operator's fields win over hand edits), and deletion of children of the
//! optional kinds that are no longer desired. A child is only deleted when it carries this
//! ConverseServer's owner reference, so an unrelated object of the same name is never touched.
//!
//! An existing object with a child's name that this ConverseServer does not own (by uid) is
//! never modified: someone else's Service `web` must not be rewired to our pods, nor garbage
//! collected with our CR. The apply stops with [`ApplyError::NameConflict`] instead.
//!
//! At steady state nothing is sent at all: [`LastApplied`] remembers, per child, a hash of what
//! was applied and the resourceVersion the API server returned. When the desired object hashes
//! the same and the live object still has that resourceVersion (one GET, no write), the apply is
//! skipped. Anyone else's write to the child (a hand edit, the Deployment controller's status)
//! changes its resourceVersion, so the next reconcile applies again and repairs drift.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::desired::http_route::HttpRoute;
use crate::desired::{DesiredObjects, generated_secret_name};
use crate::metrics::Metrics;

/// The one field manager of everything the operator writes (children and status).
pub const FIELD_MANAGER: &str = "converse-operator";

/// Why the apply phase stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(
        "{kind} {name} already exists and is not owned by this ConverseServer; the operator \
         leaves it untouched. Delete or rename that object, or give the ConverseServer another name"
    )]
    NameConflict { kind: String, name: String },
}

/// What the apply phase reports back.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The Deployment as the API server returned it (its status feeds Available).
    pub deployment: Deployment,
    /// Kind/name of each child deleted because it is no longer desired.
    pub deleted: Vec<String>,
    /// spec.gateway asks for an HTTPRoute, but the cluster does not serve HTTPRoutes (the
    /// Gateway API CRDs are not installed): everything else was applied.
    pub gateway_api_missing: bool,
}

/// Per ConverseServer (namespace, name) and child (kind, name): the hash of the object last
/// applied and the resourceVersion the API server answered with. In memory: after a restart
/// every child is applied once more (a no-op on the server) and remembered again.
#[derive(Default)]
pub struct LastApplied(Mutex<HashMap<Owner, HashMap<Child, Applied1>>>);

type Owner = (String, String);
type Child = (String, String);
/// (hash of the applied object, resourceVersion after the apply)
type Applied1 = (Vec<u8>, String);

impl LastApplied {
    fn get(&self, owner: &Owner, child: &Child) -> Option<Applied1> {
        self.lock().get(owner).and_then(|c| c.get(child)).cloned()
    }

    fn set(&self, owner: &Owner, child: Child, applied: Applied1) {
        self.lock()
            .entry(owner.clone())
            .or_default()
            .insert(child, applied);
    }

    fn remove(&self, owner: &Owner, child: &Child) {
        if let Some(children) = self.lock().get_mut(owner) {
            children.remove(child);
        }
    }

    /// Keeps only the ConverseServers for which `exists(namespace, name)` holds (the others
    /// were deleted; their children go with them).
    pub fn retain(&self, exists: impl Fn(&str, &str) -> bool) {
        self.lock().retain(|(ns, name), _| exists(ns, name));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Owner, HashMap<Child, Applied1>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Applies (and deletes) children for the apply phase: what it needs besides the objects — the
/// client, the memory of what was applied, and the metrics that count the writes.
pub struct ChildApplier<'a> {
    pub client: &'a Client,
    pub last_applied: &'a LastApplied,
    pub metrics: &'a Metrics,
    /// Whether the API server serves HTTPRoutes (`gateway.networking.k8s.io/v1`). Without them
    /// the HTTPRoute is neither applied nor looked for.
    pub gateway_api: bool,
}

/// Applies `desired` in `namespace` for the ConverseServer `name` with uid `owner_uid`.
pub async fn apply_children(
    applier: &ChildApplier<'_>,
    namespace: &str,
    name: &str,
    owner_uid: &str,
    desired: &DesiredObjects,
) -> Result<Applied, ApplyError> {
    let c = Children {
        applier,
        namespace,
        owner: (namespace.to_owned(), name.to_owned()),
        owner_uid,
    };
    // The ServiceAccount and the generated Secret first: the pods need them.
    c.apply(&desired.service_account).await?;
    let mut deleted = Vec::new();
    let generated = generated_secret_name(name);
    c.apply_or_delete::<Secret>(desired.generated_secret.as_ref(), &generated, &mut deleted)
        .await?;
    let deployment = c.apply(&desired.deployment).await?;
    c.apply(&desired.service).await?;
    c.apply_or_delete::<Ingress>(desired.ingress.as_ref(), name, &mut deleted)
        .await?;
    c.apply_or_delete::<PodDisruptionBudget>(
        desired.pod_disruption_budget.as_ref(),
        name,
        &mut deleted,
    )
    .await?;
    c.apply_or_delete::<HorizontalPodAutoscaler>(
        desired.horizontal_pod_autoscaler.as_ref(),
        name,
        &mut deleted,
    )
    .await?;
    c.apply_or_delete::<NetworkPolicy>(desired.network_policy.as_ref(), name, &mut deleted)
        .await?;
    // Last: the Gateway API is optional in a cluster; without it the rest still serves.
    let gateway_api_missing = if applier.gateway_api {
        c.apply_or_delete::<HttpRoute>(desired.http_route.as_ref(), name, &mut deleted)
            .await?;
        false
    } else {
        desired.http_route.is_some()
    };
    Ok(Applied {
        deployment,
        deleted,
        gateway_api_missing,
    })
}

struct Children<'a> {
    applier: &'a ChildApplier<'a>,
    namespace: &'a str,
    owner: Owner,
    owner_uid: &'a str,
}

impl Children<'_> {
    /// Whether this ConverseServer (by uid, not by name) owns an object.
    fn owns(&self, meta: &ObjectMeta) -> bool {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == self.owner_uid)
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.applier.client.clone(), self.namespace)
    }

    fn key<K>(&self, name: &str) -> Child
    where
        K: Resource<DynamicType = ()>,
    {
        (K::kind(&()).into_owned(), name.to_owned())
    }

    async fn apply<K>(&self, obj: &K) -> Result<K, ApplyError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Serialize
            + DeserializeOwned
            + Clone
            + Debug,
    {
        let name = obj.meta().name.clone().unwrap_or_default();
        let api = self.api::<K>();
        let key = self.key::<K>(&name);
        let hash = Sha256::digest(serde_json::to_vec(obj).unwrap_or_default()).to_vec();
        if let Some((last_hash, last_version)) = self.applier.last_applied.get(&self.owner, &key)
            && last_hash == hash
            && let Some(live) = api.get_opt(&name).await?
            && live.meta().resource_version.as_deref() == Some(last_version.as_str())
            && live.meta().deletion_timestamp.is_none()
        {
            return Ok(live);
        }
        if let Some(existing) = api.get_metadata_opt(&name).await?
            && !self.owns(&existing.metadata)
        {
            return Err(ApplyError::NameConflict {
                kind: K::kind(&()).into_owned(),
                name,
            });
        }
        self.applier.metrics.write(K::kind(&()).as_ref(), "apply");
        let applied = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(obj),
            )
            .await?;
        match applied.meta().resource_version.clone() {
            Some(version) => self
                .applier
                .last_applied
                .set(&self.owner, key, (hash, version)),
            None => self.applier.last_applied.remove(&self.owner, &key),
        }
        Ok(applied)
    }

    async fn apply_or_delete<K>(
        &self,
        desired: Option<&K>,
        name: &str,
        deleted: &mut Vec<String>,
    ) -> Result<(), ApplyError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Serialize
            + DeserializeOwned
            + Clone
            + Debug,
    {
        match desired {
            Some(obj) => self.apply(obj).await.map(drop),
            None => {
                if self
                    .delete_if_owned::<K>(name)
                    .await
                    .map_err(ApplyError::Kube)?
                {
                    deleted.push(format!("{}/{name}", K::kind(&())));
                }
                Ok(())
            }
        }
    }

    /// Deletes `name` if it exists and this ConverseServer owns it; whether it did.
    async fn delete_if_owned<K>(&self, name: &str) -> Result<bool, kube::Error>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + DeserializeOwned
            + Clone
            + Debug,
    {
        let api = self.api::<K>();
        self.applier
            .last_applied
            .remove(&self.owner, &self.key::<K>(name));
        let Some(existing) = api.get_metadata_opt(name).await? else {
            return Ok(false);
        };
        if !self.owns(&existing.metadata) || existing.metadata.deletion_timestamp.is_some() {
            return Ok(false);
        }
        self.applier.metrics.write(K::kind(&()).as_ref(), "delete");
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
