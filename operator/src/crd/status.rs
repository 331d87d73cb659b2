//! `status`: what the operator observed and did. Written only by the operator (status
//! subresource), kstatus-compatible (observedGeneration, Ready, Reconciling, Stalled).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuthStrategy;

/// Condition types the operator sets.
pub mod condition {
    /// True only when the spec is accepted, its Secrets and files resolve and the Deployment is
    /// available.
    pub const READY: &str = "Ready";
    /// True while the operator converges the children (kstatus).
    pub const RECONCILING: &str = "Reconciling";
    /// True when user action is needed; the reason says what (kstatus).
    pub const STALLED: &str = "Stalled";
    /// Whether the spec is valid.
    pub const ACCEPTED: &str = "Accepted";
    /// Whether every referenced Secret and key exists.
    pub const SECRETS_RESOLVED: &str = "SecretsResolved";
    /// Whether the ConfigMap or PersistentVolumeClaim of spec.files exists (True without
    /// spec.files).
    pub const FILES_RESOLVED: &str = "FilesResolved";
    /// Whether the Deployment has its desired ready replicas.
    pub const AVAILABLE: &str = "Available";
}

/// Observed state of a ConverseServer.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConverseServerStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// URL of the MCP endpoint: https://<ingress.host>/mcp, or the Service's in-cluster URL
    /// without an ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Pods of the Deployment (desired count when autoscaling decides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pods that are ready (not terminating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// "<ready>/<desired>", for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_summary: Option<String>,
    /// The authentication strategy in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_strategy: Option<AuthStrategy>,
    /// SHA-256 of everything that shapes the pods, referenced Secret data included; also the
    /// pod-template annotation converse.dev/config-hash, so a change rolls the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// Ready, Reconciling, Stalled, Accepted, SecretsResolved, FilesResolved, Available.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
