//! The optional HorizontalPodAutoscaler (autoscaling/v2), scaling the Deployment on CPU.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use super::child_meta;
use crate::validate::ValidatedServer;

/// CPU utilisation aimed at when the spec does not say.
pub const DEFAULT_TARGET_CPU: i32 = 70;

pub fn horizontal_pod_autoscaler(
    v: &ValidatedServer,
    object_labels: &BTreeMap<String, String>,
) -> Option<HorizontalPodAutoscaler> {
    let a = v.spec.autoscaling.as_ref()?;
    Some(HorizontalPodAutoscaler {
        metadata: child_meta(v, v.name.clone(), object_labels, BTreeMap::new()),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: v.name.clone(),
            },
            min_replicas: Some(a.min_replicas.unwrap_or(1)),
            max_replicas: a.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(
                            a.target_cpu_utilization_percentage
                                .unwrap_or(DEFAULT_TARGET_CPU),
                        ),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        },
        status: None,
    })
}
