//! The node's container runtime: Debian's containerd 1.6 + runc with a configuration and
//! directories of our own (it never touches /var/lib/containerd or /run/containerd), the CNI
//! bridge network, and crictl/ctr helpers.

use std::path::{Path, PathBuf};

use crate::cmd;
use crate::error::{IoContext, Result};
use crate::layout::{BRIDGE, BRIDGE_IP, Layout, PAUSE_IMAGE, POD_CIDR, SERVICE_CIDR};

/// Environment for every node component that could reach for a registry: HTTP(S) to anything
/// but this machine's own addresses goes to a closed port on loopback, so a missing image fails
/// at once instead of resolving and contacting a registry on the internet. The pod, Service and
/// loopback ranges are exempt: that is where the API server is.
pub fn offline_env() -> Vec<(&'static str, String)> {
    let nowhere = "http://127.0.0.1:9".to_string();
    let local = format!("127.0.0.1,localhost,{POD_CIDR},{SERVICE_CIDR},.svc,.cluster.local");
    vec![
        ("HTTP_PROXY", nowhere.clone()),
        ("HTTPS_PROXY", nowhere.clone()),
        ("http_proxy", nowhere.clone()),
        ("https_proxy", nowhere),
        ("NO_PROXY", local.clone()),
        ("no_proxy", local),
    ]
}

pub fn config_path(layout: &Layout) -> PathBuf {
    layout.in_state("containerd.toml")
}

/// containerd 1.6 configuration (schema version 2).
pub fn write_config(layout: &Layout) -> Result<PathBuf> {
    let root = layout.containerd_root();
    let state = layout.run_dir.join("containerd");
    let text = format!(
        r#"version = 2
root = "{root}/root"
state = "{state}"
# No CAP_SYS_RESOURCE for root on this machine kind: never lower oom_score_adj.
oom_score = 0
# The `opt` plugin would create /opt/containerd; the other snapshotters are unused.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{state}/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # runc would otherwise write a negative oom_score_adj and fail every sandbox here.
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  max_concurrent_downloads = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # containerd 1.6 lacks the RuntimeConfig CRI call: the driver must match the kubelet's
        # (cgroupfs) explicitly.
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
"#,
        root = root.display(),
        state = state.display(),
        socket = layout.containerd_socket().display(),
        pause = PAUSE_IMAGE,
        cni_conf = layout.cni_conf_dir().display(),
    );
    let path = config_path(layout);
    std::fs::create_dir_all(&root).ctx(|| format!("creating {}", root.display()))?;
    std::fs::create_dir_all(&state).ctx(|| format!("creating {}", state.display()))?;
    std::fs::write(&path, text).ctx(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The CNI network: a bridge whose gateway is the node, host-local IPAM in the pod subnet with a
/// route to the Service range only — pods get NO default route, so nothing in a pod can address
/// anything beyond this machine.
pub fn write_cni_config(layout: &Layout) -> Result<()> {
    let dir = layout.cni_conf_dir();
    std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "converse-testenv",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": true,
            "isDefaultGateway": false,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "dataDir": layout.in_state("cni/ipam"),
                "ranges": [[{"subnet": POD_CIDR, "gateway": BRIDGE_IP}]],
                "routes": [{"dst": SERVICE_CIDR}]
            }
        }]
    });
    let path = dir.join("10-converse-testenv.conflist");
    std::fs::write(&path, serde_json::to_vec_pretty(&conf)?)
        .ctx(|| format!("writing {}", path.display()))
}

fn address(layout: &Layout) -> String {
    layout.containerd_socket().display().to_string()
}

/// `ctr -n k8s.io images import` into the node's containerd (the namespace the CRI uses).
pub fn import_image(layout: &Layout, archive: &Path) -> Result<String> {
    cmd::run(
        "ctr",
        [
            "--address".as_ref(),
            address(layout).as_ref(),
            "-n".as_ref(),
            "k8s.io".as_ref(),
            "images".as_ref(),
            "import".as_ref(),
            archive.as_os_str(),
        ],
    )
}

pub fn ctr_ready(layout: &Layout) -> bool {
    cmd::run("ctr", ["--address", &address(layout), "version"]).is_ok()
}

pub fn crictl(layout: &Layout, args: &[&str]) -> Result<String> {
    let endpoint = format!("unix://{}", address(layout));
    let mut all = vec![
        "--runtime-endpoint",
        &endpoint,
        "--image-endpoint",
        &endpoint,
        "--timeout",
        "30s",
    ];
    all.extend_from_slice(args);
    cmd::run(layout.bin("crictl"), all)
}

/// Stops and removes every pod sandbox (and so every container and its shim, network
/// namespace and mounts) while containerd still runs.
pub fn remove_all_pods(layout: &Layout) -> Result<()> {
    let _ = crictl(layout, &["stopp", "-a"]);
    crictl(layout, &["rmp", "-fa"]).map(|_| ())
}
