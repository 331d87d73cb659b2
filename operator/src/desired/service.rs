//! The Service in front of the pods: one port named `http` leading to the container's port.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::deployment::PORT_NAME;
use super::{child_meta, labels};
use crate::endpoints;
use crate::validate::ValidatedServer;

pub fn service(v: &ValidatedServer, object_labels: &BTreeMap<String, String>) -> Service {
    let s = v.spec.service.clone().unwrap_or_default();
    Service {
        metadata: child_meta(v, v.name.clone(), object_labels, s.annotations.clone()),
        spec: Some(ServiceSpec {
            type_: Some(s.type_.unwrap_or_default().as_str().to_owned()),
            selector: Some(labels::selector(&v.name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.to_owned()),
                port: endpoints::service_port(&v.spec),
                // By name, so the container port can change without touching the Service.
                target_port: Some(IntOrString::String(PORT_NAME.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
