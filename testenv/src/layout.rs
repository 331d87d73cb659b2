//! Where testenv keeps things: the build cache (outside the source tree, persisting between CI
//! runs) and the per-cluster state (wiped by `down`).

use std::path::{Path, PathBuf};

use crate::versions;

/// The pod bridge; the API server binds here so that pods reach it through the `kubernetes`
/// Service.
pub const BRIDGE: &str = "cni-node0";
pub const BRIDGE_IP: &str = "10.244.0.1";
pub const POD_CIDR: &str = "10.244.0.0/24";
pub const SERVICE_CIDR: &str = "10.0.0.0/16";
/// First address of the Service range: the `kubernetes` Service.
pub const KUBERNETES_SERVICE_IP: &str = "10.0.0.1";
pub const API_PORT: u16 = 6443;
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// The sandbox image containerd uses; built from a static C program by `testenv build`.
pub const PAUSE_IMAGE: &str = "localhost/converse-testenv/pause:1";
/// The node's name: the API server reaches the kubelet by this Hostname address.
pub const NODE_NAME: &str = "localhost";

#[derive(Debug, Clone)]
pub struct Layout {
    pub cache_root: PathBuf,
    pub state_dir: PathBuf,
    /// Short paths for sockets and containerd's runtime state (unix socket paths are limited to
    /// 108 bytes).
    pub run_dir: PathBuf,
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl Layout {
    /// Defaults: /var/cache/converse-testenv and /var/lib/converse-testenv for root; under $HOME
    /// otherwise (control-plane-only mode). TESTENV_CACHE_DIR / TESTENV_STATE_DIR override.
    pub fn from_env() -> Layout {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let system_cache = PathBuf::from("/var/cache/converse-testenv");
        let cache_root = std::env::var_os("TESTENV_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                // A non-root user reuses root's build when it exists (binaries are world-readable).
                if is_root() || system_cache.join(versions::versions_hash()).exists() {
                    system_cache
                } else {
                    home.join(".cache/converse-testenv")
                }
            });
        let state_dir = std::env::var_os("TESTENV_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                if is_root() {
                    PathBuf::from("/var/lib/converse-testenv")
                } else {
                    home.join(".local/state/converse-testenv")
                }
            });
        let run_dir = if is_root() && std::env::var_os("TESTENV_STATE_DIR").is_none() {
            PathBuf::from("/run/converse-testenv")
        } else {
            state_dir.join("run")
        };
        Layout {
            cache_root,
            state_dir,
            run_dir,
        }
    }

    pub fn build_dir(&self) -> PathBuf {
        self.cache_root.join(versions::versions_hash())
    }
    pub fn bin_dir(&self) -> PathBuf {
        self.build_dir().join("bin")
    }
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir().join(name)
    }
    pub fn go_src_dir(&self) -> PathBuf {
        self.build_dir().join("src")
    }
    /// Shared by every version table: module downloads and compiled packages stay valid.
    pub fn gomodcache(&self) -> PathBuf {
        self.cache_root.join("go/mod")
    }
    pub fn gocache(&self) -> PathBuf {
        self.cache_root.join("go/build")
    }
    pub fn pause_archive(&self) -> PathBuf {
        self.bin_dir().join("pause-image.tar")
    }
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("state.json")
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.state_dir.join("kubeconfig")
    }
    pub fn pki(&self) -> PathBuf {
        self.state_dir.join("pki")
    }
    pub fn logs(&self) -> PathBuf {
        self.state_dir.join("logs")
    }
    pub fn log(&self, component: &str) -> PathBuf {
        self.logs().join(format!("{component}.log"))
    }
    pub fn containerd_socket(&self) -> PathBuf {
        self.run_dir.join("containerd/containerd.sock")
    }
    pub fn containerd_root(&self) -> PathBuf {
        self.state_dir.join("containerd")
    }
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.state_dir.join("cni/net.d")
    }
    pub fn kubelet_root(&self) -> PathBuf {
        self.state_dir.join("kubelet")
    }
    pub fn in_state(&self, rel: &str) -> PathBuf {
        self.state_dir.join(rel)
    }
    /// Paths whose appearance in a process's command line or a mount point marks it as ours.
    pub fn owned_prefixes(&self) -> Vec<PathBuf> {
        vec![self.state_dir.clone(), self.run_dir.clone(), self.bin_dir()]
    }
}

/// True when `path` is `prefix` or below it.
pub fn is_under(path: &Path, prefix: &Path) -> bool {
    path.starts_with(prefix)
}
