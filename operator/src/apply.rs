//! Phase 4, apply (client): server-side apply of every desired child with one field manager
//! (forcing, so the operator's fields win over hand edits), and deletion of children of the
//! optional kinds that are no longer desired. A child is only deleted when it carries this
//! ConverseServer's owner reference, so an unrelated object of the same name is never touched.
//!
//! Applying an unchanged object is a no-op on the API server (no new resourceVersion, no watch
//! event), so a steady-state reconcile changes nothing.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build::{DesiredObjects, generated_secret_name};

/// The one field manager of everything the operator writes (children and status).
pub const FIELD_MANAGER: &str = "converse-operator";

/// What the apply phase reports back.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The Deployment as the API server returned it (its status feeds Available).
    pub deployment: Deployment,
    /// Kind/name of each child deleted because it is no longer desired.
    pub deleted: Vec<String>,
}

/// Applies `desired` in `namespace` for the ConverseServer `name` with uid `owner_uid`.
pub async fn apply_children(
    client: &Client,
    namespace: &str,
    name: &str,
    owner_uid: &str,
    desired: &DesiredObjects,
) -> Result<Applied, kube::Error> {
    let c = Children {
        client,
        namespace,
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
    Ok(Applied {
        deployment,
        deleted,
    })
}

struct Children<'a> {
    client: &'a Client,
    namespace: &'a str,
    owner_uid: &'a str,
}

impl Children<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), self.namespace)
    }

    async fn apply<K>(&self, obj: &K) -> Result<K, kube::Error>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Serialize
            + DeserializeOwned
            + Clone
            + Debug,
    {
        let name = obj.meta().name.clone().unwrap_or_default();
        self.api::<K>()
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(obj),
            )
            .await
    }

    async fn apply_or_delete<K>(
        &self,
        desired: Option<&K>,
        name: &str,
        deleted: &mut Vec<String>,
    ) -> Result<(), kube::Error>
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
                if self.delete_if_owned::<K>(name).await? {
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
        let Some(existing) = api.get_metadata_opt(name).await? else {
            return Ok(false);
        };
        let owned = existing
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == self.owner_uid);
        if !owned || existing.metadata.deletion_timestamp.is_some() {
            return Ok(false);
        }
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
