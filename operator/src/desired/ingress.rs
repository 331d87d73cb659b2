//! The optional Ingress: only the paths MCP clients need (`/mcp`, the RFC 9728 metadata under
//! `/.well-known/oauth-protected-resource`, and `/oauth/*` for the oauth2 login flow) of the host
//! to the Service's `http` port, TLS when asked, and for ingress-nginx the settings an MCP server
//! needs: answers unbuffered, timeouts no shorter than the server's longest call, the server's
//! body size, and session affinity on `Mcp-Session-Id`.
//!
//! Not `/`: the probes, `/info` and `/metrics` answer without credentials and are for the
//! cluster (kubelet, Prometheus), not for the internet.

use std::collections::BTreeMap;
use std::time::Duration;

use converse_config::{HttpConfig, ProvidersConfig};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::child_meta;
use super::deployment::PORT_NAME;
use crate::crd::{AuthStrategy, ConverseServerSpec, SessionAffinity};
use crate::validate::ValidatedServer;

const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// The MCP endpoint (Streamable HTTP: POST, GET for the event stream, DELETE).
pub const MCP_PATH: &str = "/mcp";
/// RFC 9728 protected-resource metadata. A prefix: the server serves the root form, the form
/// for `/mcp`, and the one derived from the public URL's path (oidc's `metadata_path`).
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// The oauth2 login flow: `/oauth/authorize` and `/oauth/callback` (only that strategy serves
/// them).
pub const OAUTH_PATH: &str = "/oauth";

/// The paths the Ingress routes for `spec`, each a `Prefix` (which matches whole path elements:
/// `/mcp` and `/mcp/…`, never `/mcpx`).
pub fn routed_paths(spec: &ConverseServerSpec) -> Vec<&'static str> {
    let mut paths = vec![MCP_PATH, METADATA_PATH];
    let strategy = spec.auth.as_ref().map(|a| a.strategy).unwrap_or_default();
    if strategy == AuthStrategy::OAuth2 {
        paths.push(OAUTH_PATH);
    }
    paths
}

/// Sequential provider calls in the longest tool call: `consensus` asks every model at once,
/// then (by default) runs the refinement round, again at once (server/src/tools/consensus.rs).
const SEQUENTIAL_PROVIDER_CALLS: u32 = 2;
/// Longest wait between two attempts of one provider call: a provider's `Retry-After` is capped
/// at 30 s, the server's own backoff at 8 s (server/src/providers/client.rs).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// The longest a tool call can take before the server answers it, from the spec's provider
/// settings: each of the sequential calls makes up to `1 + providers.maxRetries` attempts of at
/// most `providers.timeout` each (`PROVIDER_TIMEOUT` bounds a whole attempt, body included),
/// with a retry delay between attempts. A stateless request (protocol 2026-07-28) is answered
/// with one JSON body when the call is done, so until then the connection is silent.
fn longest_tool_call(spec: &ConverseServerSpec) -> Duration {
    let defaults = ProvidersConfig::default();
    let p = &spec.providers;
    // Values were checked by validate with the same parsers; fall back to the defaults anyway.
    let timeout = p
        .timeout
        .as_deref()
        .and_then(|t| converse_config::parse::duration(t).ok())
        .unwrap_or(defaults.timeout);
    let retries = p
        .max_retries
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(defaults.max_retries);
    let one_call = timeout
        .saturating_mul(retries.saturating_add(1))
        .saturating_add(MAX_RETRY_DELAY.saturating_mul(retries));
    one_call.saturating_mul(SEQUENTIAL_PROVIDER_CALLS)
}

/// `proxy-read-timeout` and `proxy-send-timeout` in seconds.
///
/// Read (how long nginx waits for the next byte of the answer): no shorter than the server's
/// longest call, [`longest_tool_call`], nor than `http.requestTimeout`
/// (`HTTP_REQUEST_TIMEOUT`). Shorter, nginx would answer 504 to a call the server would still
/// complete, and what the providers were paid for that call is lost; longer costs nothing, since
/// the server bounds every call itself. With the defaults (10m, 2 retries) that is 3720 s.
///
/// Send (how long nginx waits to pass the request on): `http.requestTimeout`, the time the
/// server gives a client to deliver a request body.
pub(crate) fn route_timeouts(spec: &ConverseServerSpec) -> (u64, u64) {
    let request = spec
        .http
        .as_ref()
        .and_then(|h| h.request_timeout.as_deref())
        .and_then(|t| converse_config::parse::duration(t).ok())
        .unwrap_or(HttpConfig::default().request_timeout);
    let read = request.max(longest_tool_call(spec));
    (read.as_secs().max(1), request.as_secs().max(1))
}

/// Annotations for ingress-nginx. Other controllers ignore them.
fn nginx_annotations(spec: &ConverseServerSpec) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let (read, send) = route_timeouts(spec);
    let body = spec
        .http
        .as_ref()
        .and_then(|h| h.max_request_size.as_ref())
        .and_then(|q| converse_config::parse::size(&q.0).ok())
        .unwrap_or(HttpConfig::default().max_request_size);
    // Streamable HTTP streams server-sent events (a session's GET stream, answers that carry
    // notifications); buffering would hold them back.
    a.insert(format!("{NGINX}proxy-buffering"), "off".to_owned());
    // nginx's 60 s defaults would cut off a consensus call the server still allows.
    a.insert(format!("{NGINX}proxy-read-timeout"), read.to_string());
    a.insert(format!("{NGINX}proxy-send-timeout"), send.to_string());
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
/// ingress). They follow spec fields (http.requestTimeout, providers.timeout,
/// providers.maxRetries, http.maxRequestSize, sessions.affinity), which is where to change them.
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
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: v.name.clone(),
            port: Some(ServiceBackendPort {
                name: Some(PORT_NAME.to_owned()),
                number: None,
            }),
        }),
        resource: None,
    };

    Some(Ingress {
        metadata: child_meta(v, v.name.clone(), object_labels, annotations),
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: routed_paths(&v.spec)
                        .into_iter()
                        .map(|path| HTTPIngressPath {
                            path: Some(path.to_owned()),
                            path_type: "Prefix".to_owned(),
                            backend: backend.clone(),
                        })
                        .collect(),
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
