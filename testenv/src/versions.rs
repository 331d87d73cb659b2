//! Every pinned version testenv uses, in one place. The build cache directory is keyed on a hash of
//! this table, so changing anything here (and only that) triggers a rebuild.

use sha2::{Digest, Sha256};

/// Control plane, kube-proxy and kubectl.
pub const KUBERNETES: &str = "v1.37.2";

/// The kubelet is older on purpose: Kubernetes 1.35 is the last release whose kubelet supports
/// containerd 1.x, and Debian bookworm ships containerd 1.6. A kubelet two minors behind the API
/// server is within Kubernetes' supported version skew (the kubelet may be up to three minors
/// older than kube-apiserver).
pub const KUBELET: &str = "v1.35.4";

/// etcd's server module; its module root is the `main` package.
pub const ETCD: &str = "v3.6.16";

pub const HELM: &str = "v3.22.0";

/// crictl only talks CRI v1, which containerd 1.6 serves.
pub const CRI_TOOLS: &str = "v1.34.0";

/// Cluster DNS, run as a host process bound to the pod bridge address.
pub const COREDNS: &str = "v1.15.0";

/// Bumped whenever the build recipe itself changes in a way that changes the binaries.
const RECIPE_REVISION: u32 = 1;

/// How one binary is built from the Go module proxy.
#[derive(Debug, Clone, Copy)]
pub struct GoBinary {
    /// File name in the cache's bin directory.
    pub name: &'static str,
    /// Go module whose version is pinned.
    pub module: &'static str,
    pub version: &'static str,
    /// Package (import path) holding `main`.
    pub package: &'static str,
    /// Which Go module workspace it is built in: binaries sharing a group share one go.mod
    /// (their dependency graphs agree); the others get one each because theirs don't.
    pub group: BuildGroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildGroup {
    /// k8s.io/kubernetes at [`KUBERNETES`] with its staging modules replaced.
    Kubernetes,
    /// k8s.io/kubernetes at [`KUBELET`].
    Kubelet,
    /// A module of its own, named after the binary.
    Own,
}

pub const BINARIES: &[GoBinary] = &[
    k8s("kube-apiserver"),
    k8s("kube-controller-manager"),
    k8s("kube-scheduler"),
    k8s("kube-proxy"),
    k8s("kubectl"),
    GoBinary {
        name: "kubelet",
        module: "k8s.io/kubernetes",
        version: KUBELET,
        package: "k8s.io/kubernetes/cmd/kubelet",
        group: BuildGroup::Kubelet,
    },
    GoBinary {
        name: "etcd",
        module: "go.etcd.io/etcd/server/v3",
        version: ETCD,
        package: "go.etcd.io/etcd/server/v3",
        group: BuildGroup::Own,
    },
    GoBinary {
        name: "helm",
        module: "helm.sh/helm/v3",
        version: HELM,
        package: "helm.sh/helm/v3/cmd/helm",
        group: BuildGroup::Own,
    },
    GoBinary {
        name: "crictl",
        module: "sigs.k8s.io/cri-tools",
        version: CRI_TOOLS,
        package: "sigs.k8s.io/cri-tools/cmd/crictl",
        group: BuildGroup::Own,
    },
    GoBinary {
        name: "coredns",
        module: "github.com/coredns/coredns",
        version: COREDNS,
        package: "github.com/coredns/coredns",
        group: BuildGroup::Own,
    },
];

const fn k8s(name: &'static str) -> GoBinary {
    // `package` must be a literal for a const fn; the match keeps the table readable.
    let package = match name.as_bytes() {
        b"kube-apiserver" => "k8s.io/kubernetes/cmd/kube-apiserver",
        b"kube-controller-manager" => "k8s.io/kubernetes/cmd/kube-controller-manager",
        b"kube-scheduler" => "k8s.io/kubernetes/cmd/kube-scheduler",
        b"kube-proxy" => "k8s.io/kubernetes/cmd/kube-proxy",
        _ => "k8s.io/kubernetes/cmd/kubectl",
    };
    GoBinary {
        name,
        module: "k8s.io/kubernetes",
        version: KUBERNETES,
        package,
        group: BuildGroup::Kubernetes,
    }
}

impl GoBinary {
    /// Linker flags stamping the true version: without them Kubernetes binaries report v0.0.0 and
    /// helm/crictl report a placeholder.
    pub fn ldflags(&self) -> String {
        let mut flags = String::from("-s -w");
        match self.group {
            BuildGroup::Kubernetes | BuildGroup::Kubelet => {
                let minor = minor_of(self.version);
                flags.push_str(&format!(
                    " -X k8s.io/component-base/version.gitVersion={v} \
                     -X k8s.io/component-base/version.gitMajor=1 \
                     -X k8s.io/component-base/version.gitMinor={minor} \
                     -X k8s.io/component-base/version.gitTreeState=clean \
                     -X k8s.io/client-go/pkg/version.gitVersion={v}",
                    v = self.version
                ));
            }
            BuildGroup::Own => match self.name {
                "helm" => flags.push_str(&format!(
                    " -X helm.sh/helm/v3/internal/version.version={}",
                    self.version
                )),
                "crictl" => flags.push_str(&format!(
                    " -X sigs.k8s.io/cri-tools/pkg/version.Version={}",
                    self.version
                )),
                // etcd and CoreDNS carry their version as a constant in the source.
                _ => {}
            },
        }
        flags
    }
}

/// "v1.37.2" → "37".
pub fn minor_of(version: &str) -> &str {
    version.split('.').nth(1).unwrap_or("0")
}

/// "v1.37.2" → "v0.37.2": the version of the staging modules (k8s.io/api, …) that go with a
/// Kubernetes release.
pub fn staging_version(version: &str) -> String {
    let rest = version.strip_prefix("v1.").unwrap_or(version);
    format!("v0.{rest}")
}

/// A short stable hash of the whole table, naming the cache directory.
pub fn versions_hash() -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("recipe={RECIPE_REVISION}\n"));
    for b in BINARIES {
        hasher.update(format!(
            "{} {} {} {} {}\n",
            b.name,
            b.module,
            b.version,
            b.package,
            b.ldflags()
        ));
    }
    let digest = hasher.finalize();
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_is_within_supported_skew_and_on_containerd_1x_release() {
        let api: u32 = minor_of(KUBERNETES).parse().unwrap_or(0);
        let kubelet: u32 = minor_of(KUBELET).parse().unwrap_or(0);
        assert!(api >= kubelet && api - kubelet <= 3, "kubelet skew");
        assert!(kubelet <= 35, "kubelet > 1.35 drops containerd 1.x");
    }

    #[test]
    fn kubernetes_ldflags_stamp_the_version() {
        let apiserver = BINARIES.iter().find(|b| b.name == "kube-apiserver");
        let flags = apiserver.map(|b| b.ldflags()).unwrap_or_default();
        assert!(flags.contains("version.gitVersion=v1.37.2"), "{flags}");
        assert!(flags.contains("gitMinor=37"), "{flags}");
        assert_eq!(staging_version("v1.37.2"), "v0.37.2");
        assert_eq!(versions_hash().len(), 16);
    }
}
