//! The optional HTTPRoute (Gateway API, `gateway.networking.k8s.io/v1`): what the Ingress does
//! for ingress controllers, for Gateways. Only the paths MCP clients need (the same
//! [`routed_paths`] as the Ingress) of `spec.gateway.hostnames` go to the Service's port, with a
//! request timeout no shorter than the server's longest call.
//!
//! The types are a minimal typed copy of the fields the operator sets, not the `gateway-api`
//! crate: its releases pin older kube and k8s-openapi versions than the workspace's (0.22 needs
//! kube 4 / k8s-openapi 0.28), and two copies of k8s-openapi cannot be linked. Unknown fields
//! of the live object (defaults the API server adds, status) are ignored when it is read back.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::child_meta;
use super::ingress::{route_timeouts, routed_paths};
use crate::endpoints;
use crate::validate::ValidatedServer;

/// API group of the Gateway API.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";
/// The version the operator writes.
pub const GATEWAY_API_VERSION: &str = "v1";
/// The resource (plural) the operator needs from the Gateway API.
pub const HTTP_ROUTES: &str = "httproutes";

/// HTTPRoute spec: the fields the operator sets.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    root = "HttpRoute",
    plural = "httproutes",
    namespaced,
    schema = "disabled",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HttpRouteRule>,
}

/// A Gateway the route attaches to (group and kind default to the Gateway API's Gateway).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpRouteMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<HttpBackendRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<HttpRouteTimeouts>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathMatch {
    /// `PathPrefix`: whole path elements, like the Ingress's `Prefix`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A Service backend (group "" and kind Service are the defaults).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HttpBackendRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteTimeouts {
    /// Gateway API duration (`1h2m3s`): how long the Gateway waits for the whole answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// A Gateway API duration: `^([0-9]{1,5}(h|m|s|ms)){1,4}$`, whole seconds (at least 1 s),
/// hours capped at 99999.
pub fn gateway_duration(d: Duration) -> String {
    const MAX_HOURS: u64 = 99_999;
    let secs = d.as_secs().clamp(1, MAX_HOURS * 3600);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    out
}

/// The HTTPRoute of `v`, when spec.gateway is set.
pub fn http_route(
    v: &ValidatedServer,
    object_labels: &BTreeMap<String, String>,
) -> Option<HttpRoute> {
    let gateway = v.spec.gateway.as_ref()?;
    // As the Ingress's read timeout: no shorter than the server's longest call. The request
    // timeout covers the whole answer, so it also bounds a session's GET event stream, which
    // clients reopen (as they do when nginx's read timeout ends an idle one).
    let (read, _send) = route_timeouts(&v.spec);
    let rule = HttpRouteRule {
        matches: routed_paths(&v.spec)
            .into_iter()
            .map(|path| HttpRouteMatch {
                path: Some(HttpPathMatch {
                    type_: Some("PathPrefix".to_owned()),
                    value: Some(path.to_owned()),
                }),
            })
            .collect(),
        backend_refs: vec![HttpBackendRef {
            name: v.name.clone(),
            port: Some(endpoints::service_port(&v.spec)),
        }],
        timeouts: Some(HttpRouteTimeouts {
            request: Some(gateway_duration(Duration::from_secs(read))),
        }),
    };
    Some(HttpRoute {
        metadata: child_meta(v, v.name.clone(), object_labels, BTreeMap::new()),
        spec: HttpRouteSpec {
            parent_refs: gateway
                .parent_refs
                .iter()
                .map(|p| ParentReference {
                    name: p.name.clone(),
                    namespace: p.namespace.clone(),
                    section_name: p.section_name.clone(),
                    port: p.port,
                })
                .collect(),
            hostnames: gateway.hostnames.clone(),
            rules: vec![rule],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_the_gateway_api_pattern() {
        assert_eq!(gateway_duration(Duration::from_secs(3720)), "1h2m");
        assert_eq!(gateway_duration(Duration::from_secs(300)), "5m");
        assert_eq!(gateway_duration(Duration::from_secs(3661)), "1h1m1s");
        assert_eq!(gateway_duration(Duration::ZERO), "1s");
        assert_eq!(gateway_duration(Duration::from_secs(u64::MAX)), "99999h");
    }
}
