//! The Deployment running converse-server, hardened to the restricted Pod Security Standard.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::env::{CONTAINER_PORT, ServerEnv};
use super::{child_meta, files, labels};
use crate::crd::{ConverseServerSpec, PodOptions};
use crate::validate::ValidatedServer;

/// Name of the server container.
pub const CONTAINER_NAME: &str = "server";
/// Name of the container port (and the Service's target port).
pub const PORT_NAME: &str = "http";
/// UID and GID the server runs as (the "nonroot" user of distroless images).
pub const RUN_AS: i64 = 65532;

fn quantity(s: &str) -> Quantity {
    Quantity(s.to_owned())
}

/// Requests small enough for a dev cluster, a memory limit against runaway growth, no CPU
/// limit (throttling hurts latency and buys nothing on a shared node).
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), quantity("50m")),
            ("memory".to_owned(), quantity("64Mi")),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), quantity("256Mi"))])),
        ..ResourceRequirements::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

/// The pod template, without the config-hash annotation (added by `build` once the hash over
/// this template is known).
pub fn pod_template(
    v: &ValidatedServer,
    image: &str,
    object_labels: &BTreeMap<String, String>,
    server_env: &ServerEnv,
) -> PodTemplateSpec {
    let pod = v.spec.pod.clone().unwrap_or_default();

    // User labels first, so ours win (CEL also forbids the selector keys).
    let mut pod_labels = pod.labels.clone();
    pod_labels.extend(object_labels.clone());

    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: (!pod.annotations.is_empty()).then(|| pod.annotations.clone()),
            ..ObjectMeta::default()
        }),
        spec: Some(pod_spec(
            v,
            &pod,
            server_container(&v.spec, image, server_env),
        )),
    }
}

/// The converse-server container: the managed environment, probes, restricted security.
fn server_container(spec: &ConverseServerSpec, image: &str, server_env: &ServerEnv) -> Container {
    // Managed variables first; user `env` after (CEL forbids overlaps, validate re-checks).
    let mut env = server_env.to_env_vars();
    env.extend(spec.env.iter().cloned());

    Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_owned()),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.to_owned()),
            container_port: i32::from(CONTAINER_PORT),
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env: Some(env),
        env_from: (!spec.env_from.is_empty()).then(|| spec.env_from.clone()),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        // Generous start-up allowance (a Redis store must answer first), then a quick liveness
        // check; readiness follows the server's own view (store reachable).
        startup_probe: Some(http_probe("/healthz", 2, 30)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        readiness_probe: Some(http_probe("/readyz", 5, 2)),
        security_context: Some(restricted_container_security()),
        volume_mounts: Some(volume_mounts(spec)),
        ..Container::default()
    }
}

/// The root filesystem is read-only: temporary files go to an emptyDir at `/tmp`; the files
/// directory of `spec.files`, when set, is mounted read-only.
fn volume_mounts(spec: &ConverseServerSpec) -> Vec<VolumeMount> {
    let mut mounts = vec![VolumeMount {
        name: "tmp".to_owned(),
        mount_path: "/tmp".to_owned(),
        ..VolumeMount::default()
    }];
    // Exactly when there is a volume to mount (validate guarantees one source).
    if spec.files.as_ref().and_then(files::volume).is_some() {
        mounts.push(files::mount());
    }
    mounts
}

/// The pod's volumes: the `/tmp` emptyDir, and the files directory of `spec.files`.
fn volumes(spec: &ConverseServerSpec) -> Vec<Volume> {
    let mut volumes = vec![Volume {
        name: "tmp".to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(quantity("64Mi")),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }];
    volumes.extend(spec.files.as_ref().and_then(files::volume));
    volumes
}

/// The container's part of the restricted Pod Security Standard: non-root, no privilege
/// escalation, no capabilities, the runtime's seccomp profile, a read-only root filesystem.
fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

/// The pod around `container`: its ServiceAccount without a token, the pod-level security
/// context, the volumes, and the user's scheduling settings.
fn pod_spec(v: &ValidatedServer, pod: &PodOptions, container: Container) -> PodSpec {
    let spec = &v.spec;
    PodSpec {
        service_account_name: Some(v.name.clone()),
        // The server never talks to the Kubernetes API.
        automount_service_account_token: Some(false),
        // Service links inject `<SERVICE>_PORT`-style variables; a Service named `http`
        // would set HTTP_PORT to `tcp://...`. The server finds nothing through them.
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            fs_group: Some(RUN_AS),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: Some(volumes(spec)),
        image_pull_secrets: (!spec.image_pull_secrets.is_empty())
            .then(|| spec.image_pull_secrets.clone()),
        node_selector: (!pod.node_selector.is_empty()).then(|| pod.node_selector.clone()),
        tolerations: (!pod.tolerations.is_empty()).then(|| pod.tolerations.clone()),
        affinity: pod.affinity.clone(),
        topology_spread_constraints: (!pod.topology_spread_constraints.is_empty())
            .then(|| pod.topology_spread_constraints.clone()),
        priority_class_name: pod.priority_class_name.clone(),
        ..PodSpec::default()
    }
}

/// The Deployment. With autoscaling, `replicas` is left out so the HorizontalPodAutoscaler owns
/// it and server-side apply never resets what the autoscaler chose.
pub fn deployment(
    v: &ValidatedServer,
    object_labels: &BTreeMap<String, String>,
    template: PodTemplateSpec,
) -> Deployment {
    let replicas = if v.spec.autoscaling.is_some() {
        None
    } else {
        Some(v.spec.replicas.unwrap_or(1))
    };
    Deployment {
        metadata: child_meta(v, v.name.clone(), object_labels, BTreeMap::new()),
        spec: DeploymentSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(labels::selector(&v.name)),
                match_expressions: None,
            },
            // Bring a new pod up before taking an old one down: no gap with one replica.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template,
            ..DeploymentSpec::default()
        },
        status: None,
    }
}
