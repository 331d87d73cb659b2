//! The kubelet's configuration: what a normal node would not need is explained next to it.

use std::path::PathBuf;

use crate::error::{IoContext, Result};
use crate::layout::{BRIDGE_IP, CLUSTER_DOMAIN, Layout, POD_CIDR};

pub fn resolv_conf_path(layout: &Layout) -> PathBuf {
    layout.in_state("resolv.conf")
}

/// Writes the kubelet config and the resolv.conf pods get with dnsPolicy Default (and host
/// network pods): its only nameserver is the node's CoreDNS, which answers cluster names and
/// NXDOMAIN for everything else, so no pod ever queries a real resolver.
pub fn write_config(layout: &Layout, ca: &std::path::Path) -> Result<PathBuf> {
    let resolv = resolv_conf_path(layout);
    std::fs::write(
        &resolv,
        format!("nameserver {BRIDGE_IP}\nsearch {CLUSTER_DOMAIN}\noptions ndots:1\n"),
    )
    .ctx(|| format!("writing {}", resolv.display()))?;
    let root = layout.kubelet_root();
    std::fs::create_dir_all(&root).ctx(|| format!("creating {}", root.display()))?;
    let text = format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Listen on loopback only; the API server reaches the kubelet by its Hostname address
# (localhost).
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# Test-only: anyone on this machine may use the kubelet API.
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
  x509:
    clientCAFile: {ca}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://{socket}
# The host is cgroup v1 (hybrid): kubelet >= 1.35 refuses it unless told otherwise, and
# containerd 1.6 cannot report its cgroup driver, so both are set to cgroupfs explicitly.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: true
failSwapOn: false
# No CAP_SYS_RESOURCE for root here: a negative oom_score_adj cannot be written.
oomScoreAdj: 0
# Don't refuse to start because the kubelet would like other kernel defaults; the sysctls it
# changes are recorded before `up` and restored by `down`.
protectKernelDefaults: false
podCIDR: {pod_cidr}
clusterDNS:
- {dns}
clusterDomain: {domain}
resolvConf: {resolv}
podLogsDir: {logs}
volumePluginDir: {plugins}
staticPodPath: ""
registerNode: true
rotateCertificates: false
serverTLSBootstrap: false
serializeImagePulls: false
# Small disks: evict only when really full, and never garbage-collect images (they cannot be
# pulled again: there is no registry).
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 87600h
maxPods: 50
"#,
        ca = ca.display(),
        socket = layout.containerd_socket().display(),
        pod_cidr = POD_CIDR,
        dns = BRIDGE_IP,
        domain = CLUSTER_DOMAIN,
        resolv = resolv.display(),
        logs = layout.in_state("pod-logs").display(),
        plugins = layout.in_state("kubelet-plugins").display(),
    );
    let path = layout.in_state("kubelet.yaml");
    std::fs::write(&path, text).ctx(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// CoreDNS configuration: cluster names from the API server, NXDOMAIN for everything else —
/// there is deliberately no `forward` plugin, so CoreDNS never sends a query off the machine.
pub fn corefile(kubeconfig: &std::path::Path) -> String {
    format!(
        r#"{domain}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {ip}
    errors
    kubernetes {domain} in-addr.arpa ip6.arpa {{
        kubeconfig {kc}
        pods insecure
        ttl 5
    }}
    cache 5
}}
.:53 {{
    bind {ip}
    errors
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"#,
        domain = CLUSTER_DOMAIN,
        ip = BRIDGE_IP,
        kc = kubeconfig.display(),
    )
}
