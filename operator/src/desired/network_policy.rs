//! The optional NetworkPolicy: only the listed peers (default: the namespace's own pods) may
//! reach the server port. Egress stays open: the providers are services on the internet.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::env::CONTAINER_PORT;
use super::{child_meta, labels};
use crate::validate::ValidatedServer;

pub fn network_policy(
    v: &ValidatedServer,
    object_labels: &BTreeMap<String, String>,
) -> Option<NetworkPolicy> {
    let np = v.spec.network_policy.as_ref().filter(|np| np.enabled)?;
    let from = if np.ingress_from.is_empty() {
        // An empty pod selector without a namespace selector: every pod of this namespace.
        vec![NetworkPolicyPeer {
            pod_selector: Some(LabelSelector::default()),
            ..NetworkPolicyPeer::default()
        }]
    } else {
        np.ingress_from.clone()
    };
    Some(NetworkPolicy {
        metadata: child_meta(v, v.name.clone(), object_labels, BTreeMap::new()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels::selector(&v.name)),
                match_expressions: None,
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                // The number, not the name: some CNI plugins ignore named ports.
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(i32::from(CONTAINER_PORT))),
                    protocol: Some("TCP".to_owned()),
                    end_port: None,
                }]),
            }]),
            egress: None,
        }),
    })
}
