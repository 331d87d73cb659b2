//! The state file: everything `up` started or changed, written *before* each change so that
//! `down` can undo a half-finished `up` after a crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub control_plane_only: bool,
    /// Started processes in start order; `down` stops them newest first.
    pub processes: Vec<ProcessRecord>,
    /// Host sysctls as they were before `up` (the kubelet and the CNI bridge plugin rewrite
    /// some of them).
    pub sysctls: BTreeMap<String, String>,
    /// Host changes that were made, by kind: "bridge", "forward-guard", ...
    pub changes: Vec<String>,
    /// Directories outside the state dir that did not exist before `up` and are to be removed.
    pub created_dirs: Vec<PathBuf>,
    pub api_server: String,
    pub etcd_client_port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub name: String,
    pub pid: i32,
    /// Start time in clock ticks since boot (/proc/PID/stat field 22): guards against stopping
    /// an unrelated process that reused the pid.
    pub start_ticks: u64,
    pub log: PathBuf,
}

impl State {
    pub fn load(path: &Path) -> Result<Option<State>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(crate::error::Error::io(
                format!("reading {}", path.display()),
                e,
            )),
        }
    }

    /// Written atomically (temp file + rename): a crash never leaves a torn state file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .ctx(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).ctx(|| format!("renaming to {}", path.display()))
    }

    pub fn has_change(&self, change: &str) -> bool {
        self.changes.iter().any(|c| c == change)
    }
}
