//! Container images without a registry or a daemon: buildah builds a Dockerfile offline into a
//! docker-archive, and `ctr` imports it into the node's containerd.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::containerd;
use crate::error::{Error, IoContext, Result};
use crate::layout::Layout;

/// Directories buildah writes to whatever `--root`/`--runroot` say; removed after a build if
/// the build created them.
const BUILDAH_SIDE_DIRS: &[&str] = &[
    "/var/lib/containers",
    "/var/lib/containers/cache",
    "/run/containers",
];

/// Builds `context/Dockerfile` into a docker-archive at `archive` tagged `tag` (e.g.
/// `localhost/probe:1`). The build runs in a fresh network namespace (`unshare -n`), pulls
/// nothing (`--pull=never`; a `FROM scratch` Dockerfile needs no registry) and is reproducible
/// (`--timestamp 0`). buildah's storage lives in a temporary directory removed afterwards.
pub fn build_image(layout: &Layout, context: &Path, tag: &str, archive: &Path) -> Result<()> {
    let work = layout
        .cache_root
        .join(format!("buildah-{}", std::process::id()));
    let created_side: Vec<&str> = BUILDAH_SIDE_DIRS
        .iter()
        .copied()
        .filter(|d| !Path::new(d).exists())
        .collect();
    let result = build_in(&work, context, tag, archive);
    // Storage may hold files of other uids and overlay/vfs layers: remove as root.
    let _ = crate::host::unmount_all(std::slice::from_ref(&work));
    let _ = std::fs::remove_dir_all(&work);
    for d in created_side {
        let _ = std::fs::remove_dir_all(d);
    }
    result
}

fn build_in(work: &Path, context: &Path, tag: &str, archive: &Path) -> Result<()> {
    let root = work.join("root");
    let runroot = work.join("runroot");
    let tmp = work.join("tmp");
    for d in [&root, &runroot, &tmp] {
        std::fs::create_dir_all(d).ctx(|| format!("creating {}", d.display()))?;
    }
    let storage = [
        "--storage-driver".to_string(),
        "vfs".to_string(),
        "--root".to_string(),
        root.display().to_string(),
        "--runroot".to_string(),
        runroot.display().to_string(),
    ];
    let mut bud = Command::new("unshare");
    bud.arg("-n")
        .arg("buildah")
        .args(&storage)
        .args([
            "bud",
            "--pull=never",
            "--isolation",
            "chroot",
            "--timestamp",
            "0",
            "--layers=false",
            "-f",
        ])
        .arg(context.join("Dockerfile"))
        .args(["-t", tag])
        .arg(context)
        .env("TMPDIR", &tmp)
        .env("BUILDAH_ISOLATION", "chroot");
    cmd::run_cmd(&mut bud)?;
    if let Some(parent) = archive.parent() {
        std::fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
    }
    let _ = std::fs::remove_file(archive);
    let mut push = Command::new("unshare");
    push.arg("-n")
        .arg("buildah")
        .args(&storage)
        .arg("push")
        .arg(tag)
        .arg(format!("docker-archive:{}:{tag}", archive.display()))
        .env("TMPDIR", &tmp);
    cmd::run_cmd(&mut push)?;
    Ok(())
}

/// Imports an OCI or docker archive into the running node's containerd.
pub fn load_image(layout: &Layout, archive: &Path) -> Result<String> {
    if !containerd::ctr_ready(layout) {
        return Err(Error::NoCluster {
            reason: format!(
                "the node's containerd does not answer on {}",
                layout.containerd_socket().display()
            ),
        });
    }
    let archive = archive
        .canonicalize()
        .ctx(|| format!("reading {}", archive.display()))?;
    containerd::import_image(layout, &archive)
}

/// Builds `context` as `tag` and imports it into the node.
pub fn build_and_load(layout: &Layout, context: &Path, tag: &str) -> Result<PathBuf> {
    let safe: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let archive = layout.in_state(&format!("images/{safe}.tar"));
    build_image(layout, context, tag, &archive)?;
    load_image(layout, &archive)?;
    Ok(archive)
}
