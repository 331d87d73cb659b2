//! The pods and their lifecycle: autoscaling, disruption budget, scheduling, conversation
//! store, telemetry.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, Toleration, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;
use super::rules;
use super::schema::{self, DURATION_PATTERN, MAX_URL};

/// A HorizontalPodAutoscaler (autoscaling/v2) on CPU utilisation.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[schemars(transform = rules::autoscaling)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    /// Fewest pods. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: Option<i32>,
    /// Most pods.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Average CPU utilisation (percent of the CPU request) to aim for. Default 70.
    #[serde(
        default,
        rename = "targetCPUUtilizationPercentage",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: Option<i32>,
}

/// A PodDisruptionBudget: exactly one of minAvailable and maxUnavailable.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[schemars(transform = rules::pdb)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSpec {
    /// Pods (number or percentage) that must stay available during voluntary disruptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Pods (number or percentage) that may be unavailable during voluntary disruptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// Where conversation history (for `continuation_id`) is kept, and how much of it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[schemars(transform = rules::conversations)]
#[serde(rename_all = "camelCase")]
pub struct Conversations {
    /// Memory: per pod, lost on restart. Redis: shared by every replica (use it with more than
    /// one replica). Default Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<ConversationStore>,
    /// The Redis server, for store Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisStore>,
    /// A conversation unused this long is forgotten, e.g. 24h (`CONVERSATION_TTL`). Default 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), pattern(DURATION_PATTERN))]
    pub ttl: Option<String>,
    /// Conversations kept per store (`CONVERSATION_MAX_COUNT`). Default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4_294_967_295_i64))]
    pub max_count: Option<i64>,
    /// Messages kept per conversation (`CONVERSATION_MAX_MESSAGES`). Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4_294_967_295_i64))]
    pub max_messages: Option<i64>,
    /// Bytes kept per conversation, e.g. 4Mi (`CONVERSATION_MAX_BYTES`). Default 4Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<Quantity>,
}

/// Conversation store.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConversationStore {
    /// In each pod's memory.
    #[default]
    Memory,
    /// In Redis, shared by all replicas.
    Redis,
}

/// Redis connection.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RedisStore {
    /// Secret key holding the redis:// or rediss:// URL (`REDIS_URL`; a Secret because it may
    /// carry a password).
    pub url_secret_ref: SecretKeyRef,
}

/// OpenTelemetry trace export.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Telemetry {
    /// OTLP/HTTP (protobuf) endpoint for traces, e.g. http://otel-collector.observability:4318;
    /// spans go to `<endpoint>/v1/traces` (`OTEL_EXPORTER_OTLP_ENDPOINT`). Unset: no export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_URL))]
    pub otlp_endpoint: Option<String>,
    /// Service name in traces (`OTEL_SERVICE_NAME`). Default converse-server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_name: Option<String>,
}

/// Scheduling and metadata of the pods.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PodOptions {
    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::string_map")]
    pub annotations: BTreeMap<String, String>,
    /// Extra pod labels. The selector labels (app.kubernetes.io/name, instance, managed-by)
    /// belong to the operator.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::string_map", transform = rules::pod_labels)]
    pub labels: BTreeMap<String, String>,
    /// Node labels the pods must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::string_map")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub tolerations: Vec<Toleration>,
    /// Node and pod affinity rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// How the pods spread across zones or nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,
}
