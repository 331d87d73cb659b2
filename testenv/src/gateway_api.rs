//! The Gateway API CRDs (standard channel) for the operator's cluster test of `spec.gateway`,
//! from the Go module `sigs.k8s.io/gateway-api` (its `config/crd/standard/*.yaml`). Downloaded
//! through the Go module proxy into the module cache and copied into testenv's cache by
//! `testenv build`; [`crd_files`] does the same on demand. They are YAML, not binaries, so they
//! stay out of [`versions_hash`](crate::versions::versions_hash): changing this version never
//! rebuilds Kubernetes. Nothing installs them into a cluster but the test that needs them.

use std::path::{Path, PathBuf};

use crate::build::{find_go, go_command};
use crate::cmd;
use crate::error::{Error, IoContext, Result};
use crate::layout::Layout;

pub const MODULE: &str = "sigs.k8s.io/gateway-api";
/// v1.7.0 needs a newer Go than the project's toolchain.
pub const VERSION: &str = "v1.6.3";

/// Where the CRD files of [`VERSION`] are kept.
pub fn crd_dir(layout: &Layout) -> PathBuf {
    layout.cache_root.join("gateway-api").join(VERSION)
}

/// The CRD YAML files (sorted), downloaded and copied first when not cached.
pub fn crd_files(layout: &Layout) -> Result<Vec<PathBuf>> {
    let dir = crd_dir(layout);
    let done = dir.join(".complete");
    if !done.exists() {
        fetch(layout, &dir)?;
        std::fs::write(&done, "").ctx(|| format!("writing {}", done.display()))?;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ctx(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Invalid(format!("no CRD files in {}", dir.display())));
    }
    Ok(files)
}

fn fetch(layout: &Layout, dir: &Path) -> Result<()> {
    let go = find_go()?;
    std::fs::create_dir_all(&layout.cache_root)
        .ctx(|| format!("creating {}", layout.cache_root.display()))?;
    let mut download = go_command(layout, &go, &layout.cache_root);
    download.args(["mod", "download", "-json", &format!("{MODULE}@{VERSION}")]);
    let out = cmd::run_cmd(&mut download)?;
    let info: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| Error::Invalid(format!("go mod download -json: {e}: {out}")))?;
    let module_dir = info["Dir"]
        .as_str()
        .ok_or_else(|| Error::Invalid(format!("go mod download -json gave no Dir: {out}")))?;
    let standard = Path::new(module_dir).join("config/crd/standard");
    std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    for entry in std::fs::read_dir(&standard).ctx(|| format!("reading {}", standard.display()))? {
        let path = entry
            .ctx(|| format!("reading {}", standard.display()))?
            .path();
        if path.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).ctx(|| format!("reading {}", path.display()))?;
        // Only the CRDs (the directory also holds a ValidatingAdmissionPolicy for upgrades).
        if !text.contains("kind: CustomResourceDefinition") {
            continue;
        }
        let Some(name) = path.file_name() else {
            continue;
        };
        let target = dir.join(name);
        std::fs::write(&target, text).ctx(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}
