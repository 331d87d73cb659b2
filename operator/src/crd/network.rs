//! How the server is reached and what it lets through: CORS, rate limit, Host/Origin checks,
//! sessions, HTTP limits, Ingress, Service, NetworkPolicy.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{NetworkPolicyEgressRule, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;
use super::schema::{self, DURATION_PATTERN};

/// CORS for browser-based MCP clients.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[schemars(transform = rules::cors)]
#[serde(rename_all = "camelCase")]
pub struct Cors {
    /// Answer CORS requests (`HTTP_ENABLE_CORS`). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Origins whose web pages may call the server, such as https://app.example.com
    /// (`HTTP_CORS_ORIGINS`); '*' only with an auth strategy other than none. When unset, a
    /// request carrying another site's Origin is refused (403); clients that send no Origin are
    /// unaffected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 512)))]
    pub origins: Option<Vec<String>>,
    /// Allowed methods (`HTTP_CORS_METHODS`). Default GET, POST, DELETE, OPTIONS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16), inner(length(min = 1, max = 32)))]
    pub methods: Option<Vec<String>>,
    /// Allowed request headers (`HTTP_CORS_HEADERS`). Default: the headers MCP clients send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 128)))]
    pub headers: Option<Vec<String>>,
    /// Send `Access-Control-Allow-Credentials: true` (`HTTP_CORS_CREDENTIALS`). Needs explicit
    /// origins. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<bool>,
}

/// Request rate limit per principal (or per client IP when unauthenticated); excess gets 429.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Enable the limit (`HTTP_RATE_LIMIT_ENABLED`). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Window, e.g. 15m (`HTTP_RATE_LIMIT_WINDOW`). Default 15m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub window: Option<String>,
    /// Requests allowed per window (`HTTP_RATE_LIMIT_MAX_REQUESTS`). Default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4_294_967_295_i64))]
    pub max_requests: Option<i64>,
}

/// Host and Origin checks, and whose forwarded headers are believed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Reject requests whose Host header is not an allowed host
    /// (`HTTP_DNS_REBINDING_PROTECTION`). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_rebinding_protection: Option<bool>,
    /// Host names accepted in the Host header (`HTTP_ALLOWED_HOSTS`). Default: the ingress
    /// host, the Service's DNS names (<name>, <name>.<namespace>, <name>.<namespace>.svc,
    /// <name>.<namespace>.svc.<cluster domain>) and localhost, 127.0.0.1, ::1, so
    /// `kubectl port-forward` works. Setting this list replaces the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 253)))]
    pub allowed_hosts: Option<Vec<String>>,
    /// When set, requests whose Origin header is not listed get 403 (`HTTP_ALLOWED_ORIGINS`).
    /// Entries: scheme://host[:port], scheme://host:* or null.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 512)))]
    pub allowed_origins: Vec<String>,
    /// CIDRs (or single addresses) whose X-Forwarded-For header is believed, e.g. the ingress
    /// controller's pods (`HTTP_TRUSTED_PROXIES`). Default: none, so rate limits see the proxy's
    /// address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 64)))]
    pub trusted_proxies: Vec<String>,
}

/// MCP session limits and routing.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Sessions {
    /// A session idle this long is closed, e.g. 30m (`HTTP_SESSION_TIMEOUT`). Default 30m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// How often closed sessions are forgotten (`HTTP_SESSION_CLEANUP_INTERVAL`). Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub cleanup_interval: Option<String>,
    /// Session cap per pod, 1-10000 (`HTTP_MAX_CONCURRENT_SESSIONS`). Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_concurrent: Option<i32>,
    /// None: any pod answers any request (the stateless protocol mode needs nothing more).
    /// SessionHeader: the ingress routes all requests of a session (header `Mcp-Session-Id`)
    /// to the same pod, which the legacy session mode needs with several replicas. Default None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<SessionAffinity>,
}

/// How requests of one MCP session reach the pods.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SessionAffinity {
    /// No affinity.
    #[default]
    None,
    /// Hash on the `Mcp-Session-Id` header at the ingress.
    SessionHeader,
}

/// HTTP request limits.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    /// Time limit for one request, e.g. 5m (`HTTP_REQUEST_TIMEOUT`). Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub request_timeout: Option<String>,
    /// Largest accepted request body, e.g. 10Mi (`HTTP_MAX_REQUEST_SIZE`); binary suffixes
    /// (Ki, Mi, Gi) or plain bytes. Default 10Mi. With an nginx ingress the operator raises the
    /// ingress body limit to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_size: Option<Quantity>,
    /// Requests to /mcp in flight at once per pod, open streams included, 1-100000
    /// (`HTTP_MAX_CONCURRENT_REQUESTS`); beyond it 503 with Retry-After. Bounds the memory
    /// request bodies can take, next to the session cap (sessions.maxConcurrent). Default 512.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub max_concurrent_requests: Option<i32>,
}

/// Expose the server through an Ingress. Only what MCP clients need of `host` goes to the
/// Service: /mcp, /.well-known/oauth-protected-resource (and below it), and /oauth/ with auth
/// strategy oauth2. The probes, /info and /metrics stay inside the cluster.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[schemars(transform = rules::ingress)]
#[serde(rename_all = "camelCase")]
pub struct Ingress {
    /// Create the Ingress. Default true when this block is present.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// IngressClass, e.g. nginx. Default: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,
    /// Public host name, e.g. mcp.example.com. Required when enabled. status.url becomes
    /// https://<host>/mcp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(
            pattern = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
        )
    )]
    pub host: Option<String>,
    /// Terminate TLS at the ingress with a certificate Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IngressTls>,
    /// Extra annotations on the Ingress. The operator's own win over them: for ingress-nginx
    /// proxy-buffering off; proxy-read-timeout no shorter than the server's longest call (two
    /// sequential provider calls of 1 + providers.maxRetries attempts of providers.timeout each,
    /// at least http.requestTimeout); proxy-send-timeout from http.requestTimeout;
    /// proxy-body-size from http.maxRequestSize; and upstream-hash-by for sessions.affinity
    /// SessionHeader. Change those through the spec fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::string_map")]
    pub annotations: BTreeMap<String, String>,
}

fn default_true() -> bool {
    true
}

impl Default for Ingress {
    fn default() -> Self {
        Ingress {
            enabled: true,
            class_name: None,
            host: None,
            tls: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// Expose the server through the Gateway API: an HTTPRoute (gateway.networking.k8s.io/v1)
/// named after the ConverseServer, attached to parentRefs, for hostnames. Like the Ingress it
/// routes only what MCP clients need to the Service's http port: /mcp,
/// /.well-known/oauth-protected-resource (and below it), and /oauth/ with auth strategy oauth2;
/// the probes, /info and /metrics stay inside the cluster. The route's request timeout is no
/// shorter than the server's longest call (two sequential provider calls of 1 +
/// providers.maxRetries attempts of providers.timeout each, at least http.requestTimeout).
/// TLS is the Gateway listener's business. Exclusive with spec.ingress. Needs the Gateway API
/// CRDs in the cluster; without them the ConverseServer reports Stalled with reason
/// GatewayAPIMissing (the other children are still applied).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// The Gateways (or listeners of them) the HTTPRoute attaches to.
    #[schemars(length(min = 1, max = 32))]
    pub parent_refs: Vec<GatewayParentRef>,
    /// Public host names of the route, e.g. mcp.example.com (no wildcards). The first is the
    /// public one: status.url becomes https://<hostnames[0]>/mcp, and the default oauth2
    /// callback https://<hostnames[0]>/oauth/callback. All of them are allowed hosts by
    /// default (network.allowedHosts).
    #[schemars(
        length(min = 1, max = 16),
        inner(
            length(min = 1, max = 253),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
        )
    )]
    pub hostnames: Vec<String>,
}

/// A Gateway the HTTPRoute attaches to (a Gateway API ParentReference of kind Gateway).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GatewayParentRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Gateway. Default: the ConverseServer's namespace. A Gateway elsewhere
    /// must allow routes from this namespace (its listeners' allowedRoutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
    /// Name of one listener of the Gateway. Default: every listener that accepts the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub section_name: Option<String>,
    /// Port of the Gateway's listeners to attach to. Default: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// TLS at the ingress.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    /// Secret of type kubernetes.io/tls holding the certificate for ingress.host (for example
    /// issued by cert-manager).
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// The Service in front of the pods. Its port is named http and leads to the container's port
/// 3157.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type. Default ClusterIP.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ServiceType>,
    /// Service port. Default 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Extra annotations on the Service (for example for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::string_map")]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes Service type.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceType {
    /// Reachable inside the cluster only.
    #[default]
    ClusterIP,
    /// Also on a port of every node.
    NodePort,
    /// Also through a cloud load balancer.
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// A NetworkPolicy for the pods: only the listed peers may connect to the server port, and the
/// pods may connect only to what the server calls (see egress).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Create the NetworkPolicy. Default true when this block is present.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Who may connect. Empty: pods of the ConverseServer's namespace only. Add the ingress
    /// controller's namespace here when using an Ingress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub ingress_from: Vec<NetworkPolicyPeer>,
    /// Where the pods may connect. Default: DNS (port 53, UDP and TCP); the built-in providers'
    /// public APIs (TCP 443, public addresses only); and the ports of every other URL the server
    /// calls, to any address (a provider's baseUrl, custom providers, auth.oidc issuer and
    /// jwksUrl, auth.oauth2 tokenUrl and userinfoUrl, telemetry.otlpEndpoint, the Redis URL of
    /// conversations.redis). Nothing else: a compromised pod cannot reach the cluster's other
    /// services. Most network plugins match the port the destination pod listens on, so for a
    /// URL through a Service whose targetPort differs from its port, add that port in extraRules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<NetworkPolicyEgress>,
}

/// Egress of the pods under the NetworkPolicy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[schemars(transform = rules::network_policy_egress)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicyEgress {
    /// Do not restrict egress: the pods may connect anywhere, and the NetworkPolicy restricts
    /// only who may connect to them. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_all: Option<bool>,
    /// Where DNS queries (port 53, UDP and TCP) may go. Default: any address, which works with
    /// CoreDNS, NodeLocal DNSCache (a node-local address no selector matches) and any other
    /// resolver. To allow only the cluster's DNS pods, e.g. [{namespaceSelector: {matchLabels:
    /// {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app:
    /// kube-dns}}}].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub dns_to: Vec<NetworkPolicyPeer>,
    /// Further egress rules (to, ports), allowed in addition to the defaults: a proxy, a JWKS on
    /// another host and port than the issuer, the pod port behind a Service URL.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub extra_rules: Vec<NetworkPolicyEgressRule>,
}
