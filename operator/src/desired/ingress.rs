//! The optional Ingress: path / of the host to the Service's `http` port, TLS when asked, and
//! for ingress-nginx the settings an MCP server needs: streamed responses unbuffered, timeouts
//! and body size that match the server's own, and session affinity on `Mcp-Session-Id`.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::child_meta;
use super::deployment::PORT_NAME;
use crate::crd::{ConverseServerSpec, SessionAffinity};
use crate::validate::ValidatedServer;

const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// Default of `HTTP_REQUEST_TIMEOUT` in seconds (the server's default, 5m).
const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 300;
/// Default of `HTTP_MAX_REQUEST_SIZE` in bytes (the server's default, 10mb).
const DEFAULT_MAX_REQUEST_BYTES: u64 = 10 * 1024 * 1024;

/// Annotations for ingress-nginx. Other controllers ignore them.
fn nginx_annotations(spec: &ConverseServerSpec) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let http = spec.http.clone().unwrap_or_default();
    // Values were checked by validate with the same parsers; fall back to the defaults anyway.
    let timeout = http
        .request_timeout
        .as_deref()
        .and_then(|t| converse_config::parse::duration(t).ok())
        .map_or(DEFAULT_REQUEST_TIMEOUT_SECS, |d| d.as_secs().max(1));
    let body = http
        .max_request_size
        .as_ref()
        .and_then(|q| converse_config::parse::size(&q.0).ok())
        .unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
    // Streamable HTTP answers with server-sent events; buffering would hold them back.
    a.insert(format!("{NGINX}proxy-buffering"), "off".to_owned());
    // nginx's 60 s default would cut off a long consensus call the server still allows.
    a.insert(format!("{NGINX}proxy-read-timeout"), timeout.to_string());
    a.insert(format!("{NGINX}proxy-send-timeout"), timeout.to_string());
    // nginx's 1m default is below the server's 10mb; files and images travel in the body.
    a.insert(format!("{NGINX}proxy-body-size"), body.to_string());
    a
}

fn is_nginx(class: Option<&str>) -> bool {
    // Without a class the cluster default decides; nginx is the common one and the
    // annotations are inert elsewhere.
    class.is_none_or(|c| c.contains("nginx"))
}

/// The annotations the operator sets on the Ingress of `spec` (none without an enabled
/// ingress). They follow spec fields (http.requestTimeout, http.maxRequestSize,
/// sessions.affinity), which is where to change them.
pub fn operator_annotations(spec: &ConverseServerSpec) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::new();
    let Some(ingress) = spec.ingress.as_ref().filter(|i| i.enabled) else {
        return annotations;
    };
    if is_nginx(ingress.class_name.as_deref()) {
        annotations.extend(nginx_annotations(spec));
    }
    let affinity = spec
        .sessions
        .as_ref()
        .and_then(|s| s.affinity)
        .unwrap_or_default();
    if affinity == SessionAffinity::SessionHeader {
        // Consistent hashing on the session header: every request of a legacy-mode session
        // reaches the pod that holds it.
        annotations.insert(
            format!("{NGINX}upstream-hash-by"),
            "$http_mcp_session_id".to_owned(),
        );
    }
    annotations
}

pub fn ingress(v: &ValidatedServer, object_labels: &BTreeMap<String, String>) -> Option<Ingress> {
    let spec = v.spec.ingress.as_ref().filter(|i| i.enabled)?;
    let host = spec.host.clone()?;

    // The user's annotations first, the operator's over them: a body limit below the server's,
    // buffering switched back on or a shorter timeout would break streaming and long calls
    // behind the spec's back (validate warns about each overridden key).
    let mut annotations = spec.annotations.clone();
    annotations.extend(operator_annotations(&v.spec));

    Some(Ingress {
        metadata: child_meta(v, v.name.clone(), object_labels, annotations),
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".to_owned()),
                        path_type: "Prefix".to_owned(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: v.name.clone(),
                                port: Some(ServiceBackendPort {
                                    name: Some(PORT_NAME.to_owned()),
                                    number: None,
                                }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            tls: spec.tls.as_ref().map(|tls| {
                vec![IngressTLS {
                    hosts: Some(vec![host.clone()]),
                    secret_name: Some(tls.secret_name.clone()),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    })
}
