//! Mounts and cgroups the node leaves on the host, found and removed on teardown.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, umount2};

/// Mount points under any of `prefixes` (the state dirs: kubelet volumes, containerd's
/// snapshots and shm) or CNI network namespaces, deepest first.
pub fn our_mounts(prefixes: &[PathBuf]) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| {
            prefixes.iter().any(|pre| p.starts_with(pre))
                || p.to_string_lossy().starts_with("/run/netns/cni-")
        })
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Unmounts everything of ours; a busy mount is detached lazily. Returns what was unmounted.
pub fn unmount_all(prefixes: &[PathBuf]) -> Vec<String> {
    let mut done = Vec::new();
    // Stacked mounts show up once per layer: repeat until nothing of ours is left.
    for _ in 0..5 {
        let mounts = our_mounts(prefixes);
        if mounts.is_empty() {
            break;
        }
        for m in mounts {
            if umount2(&m, MntFlags::empty()).is_ok() || umount2(&m, MntFlags::MNT_DETACH).is_ok() {
                done.push(m.display().to_string());
            }
        }
    }
    done
}

/// The kubelet's cgroup subtree (`kubepods`) in every hierarchy: cgroup v1 controllers and the
/// unified (v2) mount of a hybrid host.
pub fn kubepods_cgroups() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    if root.join("kubepods").exists() {
        found.push(root.join("kubepods"));
    }
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let p = e.path().join("kubepods");
            if p.is_dir() {
                found.push(p);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Removes a cgroup directory tree bottom-up (cgroup directories go with rmdir; the files in
/// them are virtual). Fails quietly for cgroups that still hold processes.
pub fn remove_cgroup_tree(dir: &Path) -> bool {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    std::fs::remove_dir(dir).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_octal_is_unescaped() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
