//! Phase 5, update status (client): what the reconcile found becomes `status` — conditions
//! (kstatus-compatible Ready/Reconciling/Stalled plus Accepted, SecretsResolved, FilesResolved,
//! Available),
//! `observedGeneration`, `url`, replicas, `authStrategy`, `configHash`. Computing the status is
//! pure ([`desired_status`]); it is written (server-side apply on the status subresource, the
//! operator's one field manager) only when it differs from what is stored, so a steady-state
//! reconcile writes nothing. A condition's `lastTransitionTime` changes only when its status
//! flips.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};

use crate::apply::FIELD_MANAGER;
use crate::crd::status::condition;
use crate::crd::{ConverseServer, ConverseServerStatus};
use crate::desired::DesiredObjects;
use crate::validate::{FilesCheck, ValidatedServer, ValidationError};

/// How the reconcile ended, as far as status is concerned.
pub enum Outcome<'a> {
    /// The spec or its Secrets need the user's attention; nothing was applied.
    Stalled(&'a ValidationError),
    /// The spec is valid and its Secrets resolve, but the API server refused or failed an apply
    /// (e.g. no Service IP left, an admission webhook); the reconcile retries with backoff.
    ApplyFailed {
        validated: &'a ValidatedServer,
        error: &'a str,
    },
    /// An object with a child's name exists and is not this ConverseServer's: nothing more is
    /// applied until it is gone (re-checked periodically).
    NameConflict {
        validated: &'a ValidatedServer,
        message: &'a str,
    },
    /// Every child but the HTTPRoute was applied: spec.gateway needs the Gateway API CRDs,
    /// which the cluster does not serve (re-checked periodically).
    GatewayApiMissing {
        validated: &'a ValidatedServer,
        desired: &'a DesiredObjects,
        deployment: &'a Deployment,
    },
    /// The children were applied.
    Applied {
        validated: &'a ValidatedServer,
        desired: &'a DesiredObjects,
        deployment: &'a Deployment,
    },
}

/// Replica counts of a Deployment and whether it is available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub desired: i32,
    pub ready: i32,
    pub available: bool,
    pub message: String,
}

impl Rollout {
    pub fn of(d: &Deployment) -> Rollout {
        let status = d.status.clone().unwrap_or_default();
        let desired = d.spec.replicas.or(status.replicas).unwrap_or(0);
        let ready = status.ready_replicas.unwrap_or(0);
        let updated = status.updated_replicas.unwrap_or(0);
        let available_replicas = status.available_replicas.unwrap_or(0);
        let observed =
            status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
        let available = observed && updated >= desired && available_replicas >= desired;
        let message = if !observed {
            "the Deployment controller has not observed the latest Deployment yet".to_owned()
        } else {
            format!(
                "{available_replicas}/{desired} replicas available, {updated}/{desired} updated"
            )
        };
        Rollout {
            desired,
            ready,
            available,
            message,
        }
    }
}

/// The status the reconcile should leave, given the stored one (`previous`) and `now`.
pub fn desired_status(
    generation: Option<i64>,
    previous: Option<&ConverseServerStatus>,
    outcome: &Outcome<'_>,
    now: Timestamp,
) -> ConverseServerStatus {
    let previous = previous.cloned().unwrap_or_default();
    let mut conditions = Conditions {
        previous: &previous.conditions,
        out: Vec::new(),
        generation,
        now: Time(Timestamp::from_second(now.as_second()).unwrap_or(now)),
    };
    let mut status = ConverseServerStatus {
        observed_generation: generation,
        ..previous.clone()
    };
    match outcome {
        Outcome::Stalled(err) => stalled_conditions(&mut conditions, err),
        Outcome::ApplyFailed { validated, error } => {
            apply_failed_status(&mut status, &mut conditions, validated, error)
        }
        Outcome::NameConflict { validated, message } => {
            status.auth_strategy = Some(validated.auth_strategy);
            name_conflict_conditions(&mut conditions, validated, message);
        }
        Outcome::Applied {
            validated,
            desired,
            deployment,
        } => applied_status(&mut status, &mut conditions, validated, desired, deployment),
        Outcome::GatewayApiMissing {
            validated,
            desired,
            deployment,
        } => {
            gateway_api_missing_status(&mut status, &mut conditions, validated, desired, deployment)
        }
    }
    status.conditions = conditions.out;
    status
}

/// Stalled: Accepted or SecretsResolved says which input is wrong; the other fields keep what
/// the last successful reconcile stored (the children still run as then).
fn stalled_conditions(conditions: &mut Conditions<'_>, err: &ValidationError) {
    let reason = err.reason();
    let message = err.to_string();
    match err {
        ValidationError::InvalidSpec(_) => {
            conditions.set(condition::ACCEPTED, "False", reason, &message);
            conditions.set(
                condition::SECRETS_RESOLVED,
                "Unknown",
                "SpecInvalid",
                "Secret references are checked once the spec is valid",
            );
            conditions.set(
                condition::FILES_RESOLVED,
                "Unknown",
                "SpecInvalid",
                "spec.files is checked once the spec is valid",
            );
        }
        ValidationError::UnresolvedSecrets(_) => {
            conditions.set(condition::ACCEPTED, "True", "Valid", "the spec is valid");
            conditions.set(condition::SECRETS_RESOLVED, "False", reason, &message);
            conditions.set(
                condition::FILES_RESOLVED,
                "Unknown",
                "SecretsUnresolved",
                "spec.files is checked once the Secret references resolve",
            );
        }
        ValidationError::UnresolvedFiles(_) => {
            conditions.set(condition::ACCEPTED, "True", "Valid", "the spec is valid");
            secrets_resolved_condition(conditions);
            conditions.set(condition::FILES_RESOLVED, "False", reason, &message);
        }
    }
    conditions.set(
        condition::AVAILABLE,
        "Unknown",
        "Stalled",
        "the children are not updated while the ConverseServer is stalled",
    );
    conditions.set(condition::RECONCILING, "False", "Stalled", &message);
    conditions.set(condition::STALLED, "True", reason, &message);
    conditions.set(condition::READY, "False", reason, &message);
}

/// The apply failed: the inputs are fine, the API server is not (yet); reconciling, not stalled.
fn apply_failed_status(
    status: &mut ConverseServerStatus,
    conditions: &mut Conditions<'_>,
    validated: &ValidatedServer,
    error: &str,
) {
    let message = format!("applying the children failed, retrying with backoff: {error}");
    status.auth_strategy = Some(validated.auth_strategy);
    accepted_and_resolved_conditions(conditions, validated);
    conditions.set(condition::AVAILABLE, "Unknown", "ApplyFailed", &message);
    // Not stalled: the cause is usually outside the spec and transient, and it is retried.
    conditions.set(condition::STALLED, "False", "ApplyFailed", "");
    conditions.set(condition::RECONCILING, "True", "ApplyFailed", &message);
    conditions.set(condition::READY, "False", "ApplyFailed", &message);
}

/// A child's name is taken by someone else's object: stalled until that is resolved by a person.
fn name_conflict_conditions(
    conditions: &mut Conditions<'_>,
    validated: &ValidatedServer,
    message: &str,
) {
    const REASON: &str = "NameConflict";
    accepted_and_resolved_conditions(conditions, validated);
    conditions.set(condition::AVAILABLE, "Unknown", REASON, message);
    conditions.set(condition::RECONCILING, "False", REASON, message);
    conditions.set(condition::STALLED, "True", REASON, message);
    conditions.set(condition::READY, "False", REASON, message);
}

/// Reason (Stalled, Ready, Reconciling) when spec.gateway cannot be served.
pub const GATEWAY_API_MISSING: &str = "GatewayAPIMissing";

/// Message of [`GATEWAY_API_MISSING`].
pub const GATEWAY_API_MISSING_MESSAGE: &str = "spec.gateway needs an HTTPRoute, but the cluster \
    does not serve httproutes.gateway.networking.k8s.io/v1: install the Gateway API CRDs \
    (standard channel), or use spec.ingress. Every other child is applied; the operator looks \
    again every minute.";

/// Everything but the HTTPRoute was applied: the pods serve inside the cluster (Available says
/// how they are doing), but the ConverseServer is not reachable as asked until someone installs
/// the Gateway API.
fn gateway_api_missing_status(
    status: &mut ConverseServerStatus,
    conditions: &mut Conditions<'_>,
    validated: &ValidatedServer,
    desired: &DesiredObjects,
    deployment: &Deployment,
) {
    let rollout = observed_status(status, validated, desired, deployment);
    accepted_and_resolved_conditions(conditions, validated);
    let message = GATEWAY_API_MISSING_MESSAGE;
    let available = if rollout.available { "True" } else { "False" };
    let reason = if rollout.available {
        "MinimumReplicasAvailable"
    } else {
        "ReplicasNotReady"
    };
    conditions.set(condition::AVAILABLE, available, reason, &rollout.message);
    conditions.set(
        condition::RECONCILING,
        "False",
        GATEWAY_API_MISSING,
        message,
    );
    conditions.set(condition::STALLED, "True", GATEWAY_API_MISSING, message);
    conditions.set(condition::READY, "False", GATEWAY_API_MISSING, message);
}

/// The children were applied: the observed state comes from them, readiness from the rollout.
fn applied_status(
    status: &mut ConverseServerStatus,
    conditions: &mut Conditions<'_>,
    validated: &ValidatedServer,
    desired: &DesiredObjects,
    deployment: &Deployment,
) {
    let rollout = observed_status(status, validated, desired, deployment);
    accepted_and_resolved_conditions(conditions, validated);
    conditions.set(condition::STALLED, "False", "Reconciled", "");
    rollout_conditions(conditions, &rollout);
}

/// The observed fields after an apply (url, replicas, auth strategy, config hash).
fn observed_status(
    status: &mut ConverseServerStatus,
    validated: &ValidatedServer,
    desired: &DesiredObjects,
    deployment: &Deployment,
) -> Rollout {
    let rollout = Rollout::of(deployment);
    status.url = Some(desired.url.clone());
    status.replicas = Some(rollout.desired);
    status.ready_replicas = Some(rollout.ready);
    status.replica_summary = Some(format!("{}/{}", rollout.ready, rollout.desired));
    status.auth_strategy = Some(validated.auth_strategy);
    status.config_hash = Some(desired.config_hash.clone());
    rollout
}

/// Accepted=True, SecretsResolved=True and FilesResolved: validate passed.
fn accepted_and_resolved_conditions(conditions: &mut Conditions<'_>, validated: &ValidatedServer) {
    conditions.set(condition::ACCEPTED, "True", "Valid", "the spec is valid");
    secrets_resolved_condition(conditions);
    files_resolved_condition(conditions, &validated.files);
}

fn secrets_resolved_condition(conditions: &mut Conditions<'_>) {
    conditions.set(
        condition::SECRETS_RESOLVED,
        "True",
        "Resolved",
        "every referenced Secret and key exists",
    );
}

/// FilesResolved once validate passed: True, or Unknown when the operator may not look.
fn files_resolved_condition(conditions: &mut Conditions<'_>, files: &FilesCheck) {
    match files {
        FilesCheck::NotSet => conditions.set(
            condition::FILES_RESOLVED,
            "True",
            "NoFiles",
            "spec.files is not set: no local files",
        ),
        FilesCheck::Found(source) => conditions.set(
            condition::FILES_RESOLVED,
            "True",
            "Resolved",
            &format!("{source} exists"),
        ),
        FilesCheck::NotChecked { source, message } => conditions.set(
            condition::FILES_RESOLVED,
            "Unknown",
            "NotChecked",
            &format!(
                "the operator may not read {source}, so it is not checked (the pods' events \
                 report a missing volume): {message}"
            ),
        ),
    }
}

/// Available, Reconciling and Ready after an apply: Ready once the Deployment is available.
fn rollout_conditions(conditions: &mut Conditions<'_>, rollout: &Rollout) {
    if rollout.available {
        conditions.set(
            condition::AVAILABLE,
            "True",
            "MinimumReplicasAvailable",
            &rollout.message,
        );
        conditions.set(condition::RECONCILING, "False", "Reconciled", "");
        conditions.set(
            condition::READY,
            "True",
            "Ready",
            "the ConverseServer is serving",
        );
    } else {
        conditions.set(
            condition::AVAILABLE,
            "False",
            "ReplicasNotReady",
            &rollout.message,
        );
        conditions.set(
            condition::RECONCILING,
            "True",
            "RolloutInProgress",
            &rollout.message,
        );
        conditions.set(
            condition::READY,
            "False",
            "ReplicasNotReady",
            &rollout.message,
        );
    }
}

struct Conditions<'a> {
    previous: &'a [Condition],
    out: Vec<Condition>,
    generation: Option<i64>,
    now: Time,
}

impl Conditions<'_> {
    fn set(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        let last_transition_time = self
            .previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| self.now.clone());
        self.out.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: self.generation,
            last_transition_time,
        });
    }
}

/// A condition whose status differs between `before` and `after` (for Events).
pub fn transitions<'a>(
    before: Option<&ConverseServerStatus>,
    after: &'a ConverseServerStatus,
) -> Vec<&'a Condition> {
    after
        .conditions
        .iter()
        .filter(|c| {
            before
                .and_then(|b| b.conditions.iter().find(|p| p.type_ == c.type_))
                .is_none_or(|p| p.status != c.status)
        })
        .collect()
}

/// Something worth an Event: a transition of the summary, not of every condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// The Events a status change deserves: Stalled turning True (its reason and message name
/// the field, Secret and key) or back to False, Ready turning True, Ready falling back to False
/// while not stalled, and the spec's warnings when it is accepted. Nothing when nothing flipped.
pub fn notices(
    before: Option<&ConverseServerStatus>,
    after: &ConverseServerStatus,
    warnings: &[String],
) -> Vec<Notice> {
    let find = |s: Option<&ConverseServerStatus>, t: &str| {
        s.and_then(|s| s.conditions.iter().find(|c| c.type_ == t).cloned())
    };
    let was = |t: &str, status: &str| find(before, t).is_some_and(|c| c.status == status);
    let mut out = Vec::new();
    // The first line of a rollout's story (then ReplicasNotReady → Ready): what rolls the pods.
    if let (Some(old), Some(new)) = (
        before.and_then(|b| b.config_hash.as_deref()),
        after.config_hash.as_deref(),
    ) && old != new
    {
        out.push(Notice {
            warning: false,
            reason: "ConfigChanged".to_owned(),
            note: format!(
                "the pods' configuration changed (the spec, or a Secret or ConfigMap the pods \
                 read): rolling the pods to config-hash {}",
                new.get(..12).unwrap_or(new)
            ),
        });
    }
    let stalled = find(Some(after), condition::STALLED);
    let is_stalled = stalled.as_ref().is_some_and(|c| c.status == "True");
    if let Some(c) = &stalled {
        if is_stalled && !was(condition::STALLED, "True") {
            out.push(Notice {
                warning: true,
                reason: c.reason.clone(),
                note: c.message.clone(),
            });
        } else if !is_stalled && was(condition::STALLED, "True") {
            out.push(Notice {
                warning: false,
                reason: "Recovered".to_owned(),
                note: "no longer stalled: the spec is valid and what it references exists"
                    .to_owned(),
            });
        }
    }
    if let Some(c) = find(Some(after), condition::ACCEPTED)
        && c.status == "True"
        && !was(condition::ACCEPTED, "True")
        && !warnings.is_empty()
    {
        out.push(Notice {
            warning: true,
            reason: "SpecWarnings".to_owned(),
            note: warnings.join("; "),
        });
    }
    if let Some(c) = find(Some(after), condition::READY) {
        if c.status == "True" && !was(condition::READY, "True") {
            out.push(Notice {
                warning: false,
                reason: c.reason.clone(),
                note: c.message.clone(),
            });
        } else if c.status != "True" && was(condition::READY, "True") && !is_stalled {
            out.push(Notice {
                warning: true,
                reason: c.reason.clone(),
                note: c.message.clone(),
            });
        }
    }
    out
}

/// Writes `status` unless it equals what `server` already has; whether it wrote.
pub async fn write_status(
    api: &Api<ConverseServer>,
    server: &ConverseServer,
    status: &ConverseServerStatus,
) -> Result<bool, kube::Error> {
    if server.status.as_ref() == Some(status) {
        return Ok(false);
    }
    let name = server.metadata.name.clone().unwrap_or_default();
    let body = serde_json::json!({
        "apiVersion": ConverseServer::api_version(&()),
        "kind": ConverseServer::kind(&()),
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{FieldError, FilesProblem, SecretProblem};

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn get<'a>(s: &'a ConverseServerStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    /// A minimal valid ConverseServer (one provider), validated against its Secret.
    fn minimal() -> ValidatedServer {
        let server: ConverseServer = serde_norway::from_str(
            "apiVersion: converse.dev/v1alpha1\nkind: ConverseServer\n\
             metadata: {name: minimal, namespace: dev}\n\
             spec: {providers: {openai: {apiKeySecretRef: {name: llm-keys, key: openai}}}}\n",
        )
        .unwrap();
        let found = crate::Dereferenced::default().with_secret("llm-keys", [("openai", "sk")]);
        crate::validate(&server, &found).unwrap()
    }

    #[test]
    fn a_gateway_without_the_gateway_api_stalls_but_reports_the_rest() {
        let v = minimal();
        let desired = crate::desired::build(
            &v,
            &crate::desired::BuildContext {
                default_image: "converse-server:1".into(),
                default_version: "1".into(),
                cluster_domain: "cluster.local".into(),
                generated_jwt_secret: None,
            },
        )
        .unwrap();
        let deployment = Deployment::default();
        let outcome = Outcome::GatewayApiMissing {
            validated: &v,
            desired: &desired,
            deployment: &deployment,
        };
        let s = desired_status(Some(2), None, &outcome, at(100));
        for t in [condition::STALLED, condition::READY] {
            assert_eq!(get(&s, t).reason, GATEWAY_API_MISSING, "{t}");
        }
        assert_eq!(get(&s, condition::STALLED).status, "True");
        assert_eq!(get(&s, condition::READY).status, "False");
        assert_eq!(get(&s, condition::RECONCILING).status, "False");
        assert_eq!(get(&s, condition::ACCEPTED).status, "True");
        assert!(
            get(&s, condition::STALLED)
                .message
                .contains("httproutes.gateway.networking.k8s.io")
        );
        // The other children were applied: the observed state is reported.
        assert_eq!(s.url.as_deref(), Some(desired.url.as_str()));
        assert_eq!(s.config_hash.as_deref(), Some(desired.config_hash.as_str()));
    }

    #[test]
    fn missing_secret_stalls_with_its_name_and_keeps_transition_times() {
        let err = ValidationError::UnresolvedSecrets(vec![SecretProblem::SecretNotFound {
            field: "auth.apiKey.secretRef".into(),
            secret: "mcp-keys".into(),
        }]);
        let first = desired_status(Some(1), None, &Outcome::Stalled(&err), at(100));
        let stalled = get(&first, condition::STALLED);
        assert_eq!(stalled.status, "True");
        assert_eq!(stalled.reason, "SecretNotFound");
        assert!(
            stalled.message.contains("\"mcp-keys\""),
            "{}",
            stalled.message
        );
        assert_eq!(get(&first, condition::SECRETS_RESOLVED).status, "False");
        assert_eq!(get(&first, condition::ACCEPTED).status, "True");
        assert_eq!(get(&first, condition::READY).status, "False");
        assert_eq!(first.observed_generation, Some(1));

        // One Event for the stall, naming the Secret.
        let n = notices(None, &first, &[]);
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(n[0].warning && n[0].reason == "SecretNotFound" && n[0].note.contains("mcp-keys"));

        // Same outcome later: identical status, so nothing would be written or announced.
        let again = desired_status(Some(1), Some(&first), &Outcome::Stalled(&err), at(200));
        assert_eq!(again, first);
        assert!(transitions(Some(&first), &again).is_empty());
        assert!(notices(Some(&first), &again, &[]).is_empty());
    }

    #[test]
    fn missing_files_source_stalls_on_files_resolved_with_secrets_resolved() {
        let err = ValidationError::UnresolvedFiles(vec![FilesProblem::ConfigMapNotFound {
            name: "team-docs".into(),
        }]);
        let s = desired_status(Some(1), None, &Outcome::Stalled(&err), at(100));
        let files = get(&s, condition::FILES_RESOLVED);
        assert_eq!(
            (files.status.as_str(), files.reason.as_str()),
            ("False", "ConfigMapNotFound")
        );
        assert!(files.message.contains("\"team-docs\""), "{}", files.message);
        assert_eq!(get(&s, condition::SECRETS_RESOLVED).status, "True");
        assert_eq!(get(&s, condition::ACCEPTED).status, "True");
        let stalled = get(&s, condition::STALLED);
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "ConfigMapNotFound")
        );
        assert_eq!(get(&s, condition::READY).status, "False");
        let n = notices(None, &s, &[]);
        assert!(n[0].warning && n[0].reason == "ConfigMapNotFound", "{n:?}");

        // Before the files are looked at, FilesResolved is Unknown.
        let secrets = ValidationError::UnresolvedSecrets(vec![SecretProblem::SecretNotFound {
            field: "providers.openai.apiKeySecretRef".into(),
            secret: "llm-keys".into(),
        }]);
        let s = desired_status(Some(1), None, &Outcome::Stalled(&secrets), at(100));
        assert_eq!(get(&s, condition::FILES_RESOLVED).status, "Unknown");
    }

    #[test]
    fn files_resolved_after_validation_says_what_was_found() {
        let deployment = Deployment::default();
        let mut v = minimal();
        let desired = crate::desired::build(
            &v,
            &crate::desired::BuildContext {
                default_image: "converse-server:1".into(),
                default_version: "1".into(),
                cluster_domain: "cluster.local".into(),
                generated_jwt_secret: None,
            },
        )
        .unwrap();
        let files_condition = |v: &ValidatedServer| {
            let outcome = Outcome::Applied {
                validated: v,
                desired: &desired,
                deployment: &deployment,
            };
            let s = desired_status(Some(1), None, &outcome, at(100));
            let c = get(&s, condition::FILES_RESOLVED).clone();
            (c.status, c.reason, c.message)
        };
        let (status, reason, _) = files_condition(&v);
        assert_eq!((status.as_str(), reason.as_str()), ("True", "NoFiles"));

        v.files = FilesCheck::Found("ConfigMap \"team-docs\"".into());
        let (status, reason, message) = files_condition(&v);
        assert_eq!((status.as_str(), reason.as_str()), ("True", "Resolved"));
        assert_eq!(message, "ConfigMap \"team-docs\" exists");

        v.files = FilesCheck::NotChecked {
            source: "ConfigMap \"team-docs\"".into(),
            message: "forbidden".into(),
        };
        let (status, reason, message) = files_condition(&v);
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("Unknown", "NotChecked")
        );
        assert!(
            message.contains("may not read ConfigMap \"team-docs\""),
            "{message}"
        );
    }

    #[test]
    fn a_flip_moves_only_the_flipped_conditions_transition_time() {
        let invalid = ValidationError::InvalidSpec(vec![FieldError {
            field: "replicas".into(),
            message: "no".into(),
        }]);
        let missing = ValidationError::UnresolvedSecrets(vec![SecretProblem::KeyNotFound {
            field: "auth.apiKey.secretRef".into(),
            secret: "mcp-keys".into(),
            key: "keys".into(),
        }]);
        let a = desired_status(Some(1), None, &Outcome::Stalled(&invalid), at(100));
        assert_eq!(get(&a, condition::ACCEPTED).status, "False");
        assert_eq!(get(&a, condition::SECRETS_RESOLVED).status, "Unknown");
        let b = desired_status(Some(2), Some(&a), &Outcome::Stalled(&missing), at(200));
        assert_eq!(
            get(&b, condition::ACCEPTED).last_transition_time,
            Time(at(200))
        );
        assert_eq!(
            get(&b, condition::STALLED).last_transition_time,
            Time(at(100))
        );
        assert_eq!(get(&b, condition::STALLED).reason, "SecretKeyNotFound");
        let flipped: Vec<_> = transitions(Some(&a), &b)
            .iter()
            .map(|c| c.type_.clone())
            .collect();
        assert_eq!(flipped, vec!["Accepted", "SecretsResolved"]);
    }

    #[test]
    fn applied_status_is_ready_only_when_the_deployment_is_available() {
        let validated = minimal();
        let desired = crate::build(
            &validated,
            &crate::BuildContext {
                default_image: "converse-server:1.0".into(),
                default_version: "1.0".into(),
                cluster_domain: "cluster.local".into(),
                generated_jwt_secret: None,
            },
        )
        .unwrap();
        let mut deployment = desired.deployment.clone();
        deployment.metadata.generation = Some(1);
        deployment.status = serde_json::from_value(serde_json::json!({
            "observedGeneration": 1, "replicas": 1, "readyReplicas": 0,
            "updatedReplicas": 1, "availableReplicas": 0
        }))
        .unwrap();
        let rolling = desired_status(
            Some(4),
            None,
            &Outcome::Applied {
                validated: &validated,
                desired: &desired,
                deployment: &deployment,
            },
            at(100),
        );
        assert_eq!(get(&rolling, condition::AVAILABLE).status, "False");
        assert_eq!(get(&rolling, condition::RECONCILING).status, "True");
        assert_eq!(get(&rolling, condition::READY).status, "False");
        assert_eq!(get(&rolling, condition::STALLED).status, "False");
        assert_eq!(rolling.replica_summary.as_deref(), Some("0/1"));
        assert_eq!(rolling.config_hash.as_ref(), Some(&desired.config_hash));
        assert_eq!(rolling.url.as_deref(), Some("http://minimal.dev.svc/mcp"));
        assert_eq!(rolling.observed_generation, Some(4));

        let status = deployment.status.as_mut().unwrap();
        status.ready_replicas = Some(1);
        status.available_replicas = Some(1);
        let ready = desired_status(
            Some(4),
            Some(&rolling),
            &Outcome::Applied {
                validated: &validated,
                desired: &desired,
                deployment: &deployment,
            },
            at(200),
        );
        assert_eq!(get(&ready, condition::READY).status, "True");
        assert_eq!(get(&ready, condition::AVAILABLE).status, "True");
        assert_eq!(get(&ready, condition::RECONCILING).status, "False");
        assert_eq!(
            get(&ready, condition::READY).last_transition_time,
            Time(at(200))
        );
        assert_eq!(
            get(&ready, condition::ACCEPTED).last_transition_time,
            Time(at(100))
        );
        assert_eq!(ready.replica_summary.as_deref(), Some("1/1"));
        // Creation announces nothing but warnings; becoming Ready is announced once.
        assert!(notices(None, &rolling, &[]).is_empty());
        let n = notices(None, &rolling, &["w".to_owned()]);
        assert_eq!(n[0].reason, "SpecWarnings");
        let n = notices(Some(&rolling), &ready, &[]);
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].warning, n[0].reason.as_str()), (false, "Ready"));
        assert!(notices(Some(&ready), &ready, &[]).is_empty());
        // Falling back (a pod lost) is a Warning.
        let n = notices(Some(&ready), &rolling, &[]);
        assert_eq!(
            (n[0].warning, n[0].reason.as_str()),
            (true, "ReplicasNotReady")
        );
        // A rotated key: the new config hash is announced first, then the rollout's conditions.
        let mut rotated = rolling.clone();
        rotated.config_hash = Some("0123456789abcdef0123".into());
        let n = notices(Some(&ready), &rotated, &[]);
        let reasons: Vec<&str> = n.iter().map(|n| n.reason.as_str()).collect();
        assert_eq!(reasons, ["ConfigChanged", "ReplicasNotReady"]);
        assert!(
            !n[0].warning && n[0].note.ends_with("config-hash 0123456789ab"),
            "{}",
            n[0].note
        );
    }

    #[test]
    fn a_failed_apply_is_reconciling_not_stalled_and_says_why() {
        let validated = minimal();
        let error = "failed to allocate a serviceIP for Service \"minimal\": range is full";
        let status = desired_status(
            Some(2),
            None,
            &Outcome::ApplyFailed {
                validated: &validated,
                error,
            },
            at(100),
        );
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(get(&status, "Stalled").status, "False");
        for t in ["Ready", "Reconciling"] {
            let c = get(&status, t);
            assert_eq!(c.reason, "ApplyFailed", "{t}");
            assert!(c.message.contains("range is full"), "{t}: {}", c.message);
        }
        assert_eq!(get(&status, "Ready").status, "False");
        assert_eq!(get(&status, "Reconciling").status, "True");
        assert_eq!(get(&status, "Accepted").status, "True");
    }

    #[test]
    fn rollout_needs_observed_updated_and_available_replicas() {
        let mut d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "readyReplicas": 2,
                       "updatedReplicas": 2, "availableReplicas": 2}
        }))
        .unwrap();
        assert!(Rollout::of(&d).available);
        d.metadata.generation = Some(3);
        assert!(!Rollout::of(&d).available);
        d.metadata.generation = Some(2);
        d.status.as_mut().unwrap().available_replicas = Some(1);
        let r = Rollout::of(&d);
        assert!(!r.available);
        assert_eq!(r.message, "1/2 replicas available, 2/2 updated");
    }
}
