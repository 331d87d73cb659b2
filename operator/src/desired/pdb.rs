//! The optional PodDisruptionBudget (policy/v1).

use std::collections::BTreeMap;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{child_meta, labels};
use crate::validate::ValidatedServer;

pub fn pod_disruption_budget(
    v: &ValidatedServer,
    object_labels: &BTreeMap<String, String>,
) -> Option<PodDisruptionBudget> {
    let p = v.spec.pod_disruption_budget.as_ref()?;
    Some(PodDisruptionBudget {
        metadata: child_meta(v, v.name.clone(), object_labels, BTreeMap::new()),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(&v.name)),
                match_expressions: None,
            }),
            min_available: p.min_available.clone(),
            max_unavailable: p.max_unavailable.clone(),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}
