//! The `ConverseServer` custom resource (`converse.dev/v1alpha1`): the user-facing API.
//!
//! Field names are the contract (docs/OPERATOR.md): add fields freely, rename none without a new
//! version. Doc comments become `kubectl explain` text and docs/CRD.md. Cross-field rules are CEL
//! rules (see [`rules`]) so that `kubectl apply` rejects a bad spec before the operator sees it;
//! what only the operator can check is in [`crate::validate`].

pub mod auth;
pub mod files;
pub mod network;
pub mod providers;
pub mod rules;
pub mod schema;
pub mod status;
pub mod workload;

use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar, LocalObjectReference, ResourceRequirements,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use auth::{
    ApiKeyAuth, Auth, AuthSecretKey, AuthStrategy, BearerAuth, OAuth2Auth, OidcAuth, SessionAuth,
};
pub use files::{Files, FilesClaim, FilesConfigMap, FilesItem, FilesSource};
pub use network::{
    Cors, Gateway, GatewayParentRef, Http, Ingress, IngressTls, Network, NetworkPolicyEgress,
    NetworkPolicySpec, RateLimit, ServiceSpec, ServiceType, SessionAffinity, Sessions,
};
pub use providers::{BuiltinProvider, CustomProvider, OpenRouterProvider, Providers};
pub use status::ConverseServerStatus;
pub use workload::{
    Autoscaling, ConversationStore, Conversations, PodDisruptionBudgetSpec, PodOptions, RedisStore,
    Telemetry,
};

/// API group of the resource.
pub const GROUP: &str = "converse.dev";
/// API version of the resource.
pub const VERSION: &str = "v1alpha1";

/// One deployment of converse-server, an MCP server that lets AI assistants consult other LLMs.
/// The operator turns it into a Deployment, Service, ServiceAccount, Secret, and optionally an
/// Ingress or HTTPRoute, PodDisruptionBudget, HorizontalPodAutoscaler and NetworkPolicy, and
/// reports what it did in status.
// Several `printcolumn(type_ = "string", ...)` read as duplicated attributes to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "converse.dev",
    version = "v1alpha1",
    kind = "ConverseServer",
    plural = "converseservers",
    shortname = "cvs",
    category = "converse",
    category = "mcp",
    namespaced,
    status = "ConverseServerStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "A ConverseServer: one deployment of converse-server, an MCP server that lets AI assistants consult other LLMs.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the server is configured and available"
    ),
    printcolumn(
        name = "Auth",
        type_ = "string",
        json_path = ".status.authStrategy",
        description = "Authentication strategy in force"
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        description = "URL of the MCP endpoint"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "string",
        json_path = ".status.replicaSummary",
        description = "Ready / desired replicas"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[schemars(transform = rules::spec)]
#[serde(rename_all = "camelCase")]
pub struct ConverseServerSpec {
    /// Container image of converse-server. Default: the image the operator was started with
    /// (`--server-image`), which matches the operator's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// When the kubelet pulls the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Secrets holding registry credentials for pulling the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Number of pods. Default 1. Not allowed together with `autoscaling`, which then owns the
    /// replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,

    /// Scale the pods with a HorizontalPodAutoscaler on CPU utilisation. Not allowed together
    /// with `replicas`. With more than one replica, use `conversations.store: Redis` so every
    /// replica can continue every conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,

    /// CPU and memory of the server container. Default: requests cpu 50m, memory 64Mi; limits
    /// memory 256Mi (no CPU limit, so latency does not suffer from throttling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Log verbosity (`LOG_LEVEL`). Default info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::log_level")]
    pub log_level: Option<converse_config::LogLevel>,

    /// Log line format (`LOG_FORMAT`): text or json. Default json, which log collectors parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::log_format")]
    pub log_format: Option<converse_config::LogFormat>,

    /// Cap on the size of a tool answer, in tokens (`MAX_MCP_OUTPUT_TOKENS`). Default 25000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4_294_967_295_i64))]
    pub max_output_tokens: Option<i64>,

    /// The LLM providers the server may call, each with its API key in a Secret. At least one is
    /// required.
    pub providers: Providers,

    /// How MCP clients authenticate. Default: strategy none (anyone who can reach the server can
    /// use the configured provider keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,

    /// CORS for browser-based MCP clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,

    /// Per-principal (or per-client-IP) request rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,

    /// Host and Origin checks and trusted proxies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,

    /// MCP session limits and routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Sessions>,

    /// HTTP request limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,

    /// Where conversation history is kept, and how much of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversations: Option<Conversations>,

    /// Local files the tools may read: the `files` and `images` arguments of the tools may
    /// name paths in this directory (relative paths are resolved against it, absolute ones must
    /// lie in it). The operator mounts the volume read-only at /var/lib/converse/files and sets
    /// `CONVERSE_FILES_ROOT` to that path. Exactly one of configMap and persistentVolumeClaim.
    ///
    /// A file named in a tool call is sent to the LLM providers with the request: put nothing
    /// here the providers may not see. Default: none (`CONVERSE_FILES_ROOT` empty), so clients
    /// send content inline or as data: URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Files>,

    /// Expose the server through an Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,

    /// Expose the server through the Gateway API: an HTTPRoute attached to the given
    /// Gateways. Exclusive with ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,

    /// The Service in front of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,

    /// Create a PodDisruptionBudget for the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetSpec>,

    /// Create a NetworkPolicy that admits traffic to the server only from the given peers, and
    /// lets the pods connect only to what the server calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySpec>,

    /// OpenTelemetry trace export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Telemetry>,

    /// Extra environment variables for the server container. Variables the operator manages
    /// (every variable converse-server reads, and any CUSTOM_*) are refused: set the matching
    /// spec field instead. A Secret or ConfigMap key read through valueFrom is digested into the
    /// pod template, so changing it rolls the pods; without optional: true it must exist (else
    /// the ConverseServer is stalled, SecretsResolved=False).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::env_list")]
    #[schemars(transform = rules::env)]
    pub env: Vec<EnvVar>,

    /// Extra environment sources for the server container. They cannot set a variable the
    /// operator manages (every variable converse-server reads, and the custom providers'
    /// CUSTOM_*): the operator writes each of those in the container's env, empty when the spec
    /// leaves it unset, and env takes precedence over envFrom. Every key of a Secret or
    /// ConfigMap named here is digested into the pod template, so changing, adding or removing
    /// one rolls the pods; without optional: true it must exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::env_from_list")]
    pub env_from: Vec<EnvFromSource>,

    /// Scheduling and metadata of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodOptions>,
}

/// When the kubelet pulls the image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// A key of a Secret in the ConverseServer's namespace. Secrets are always referenced, never
/// inlined, so ExternalSecrets, SOPS or sealed-secrets can supply them per environment.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret (same namespace as the ConverseServer).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

impl SecretKeyRef {
    pub fn new(name: impl Into<String>, key: impl Into<String>) -> Self {
        SecretKeyRef {
            name: name.into(),
            key: key.into(),
        }
    }
}

/// Why the CRD could not be rendered (a bug: the types always serialise).
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("CRD as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("CRD as YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
}

/// The CustomResourceDefinition, with descriptions reflowed: doc comments wrap at 100 columns,
/// and `kubectl explain` would show those line breaks mid-sentence. Paragraph breaks stay.
pub fn crd() -> Result<CustomResourceDefinition, CrdError> {
    let mut value = serde_json::to_value(ConverseServer::crd())?;
    reflow_descriptions(&mut value);
    Ok(serde_json::from_value(value)?)
}

fn reflow_descriptions(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(text) if key == "description" => {
                        let paragraphs: Vec<String> = text
                            .split("\n\n")
                            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                            .collect();
                        *text = paragraphs.join("\n\n");
                    }
                    _ => reflow_descriptions(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(reflow_descriptions),
        _ => {}
    }
}

/// The CRD as YAML, as `converse-operator crd` prints it and `crds/` holds it.
pub fn crd_yaml() -> Result<String, CrdError> {
    let yaml = serde_norway::to_string(&crd()?)?;
    Ok(format!("---\n{yaml}"))
}
