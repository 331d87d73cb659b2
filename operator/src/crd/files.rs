//! `spec.files`: the directory of local files the tools may read, from a ConfigMap or a
//! PersistentVolumeClaim. The operator mounts it read-only at a path it owns
//! ([`crate::desired::files::FILES_MOUNT_PATH`]) and points `CONVERSE_FILES_ROOT` there; the
//! user only says where the files come from.
//!
//! No Secret source on purpose: whatever a tool call names is sent to the LLM providers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules;

/// Most entries of `files.configMap.items` (a bound the CEL rule over each item needs).
pub const MAX_FILES_ITEMS: u32 = 128;

/// Longest `files.configMap.items[].path` (same reason).
pub const MAX_FILES_ITEM_PATH: u32 = 1024;

/// The files directory: exactly one source. (Its description in the CRD is the one of
/// `ConverseServerSpec::files`.)
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[schemars(transform = rules::files)]
#[serde(rename_all = "camelCase")]
pub struct Files {
    /// A ConfigMap in the ConverseServer's namespace: each key becomes a file. Edits reach the
    /// running pods without a restart once the kubelet refreshes the volume (typically within
    /// a minute or two); naming another ConfigMap rolls the pods. A ConfigMap holds at most
    /// 1 MiB in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<FilesConfigMap>,
    /// A PersistentVolumeClaim in the ConverseServer's namespace, mounted read-only. With more
    /// than one replica on different nodes it needs access mode ReadOnlyMany or ReadWriteMany.
    /// Its files must be readable by user or group 65532 (the server's), or by everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<FilesClaim>,
}

/// Where `spec.files` comes from, once validated to be exactly one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FilesSource<'a> {
    ConfigMap(&'a FilesConfigMap),
    Claim(&'a FilesClaim),
}

impl Files {
    /// The one source, or `None` when the spec names both or neither (CEL refuses that; validate
    /// re-checks).
    pub fn source(&self) -> Option<FilesSource<'_>> {
        match (&self.config_map, &self.persistent_volume_claim) {
            (Some(c), None) => Some(FilesSource::ConfigMap(c)),
            (None, Some(p)) => Some(FilesSource::Claim(p)),
            _ => None,
        }
    }
}

/// A ConfigMap as the files directory.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FilesConfigMap {
    /// Name of the ConfigMap (same namespace as the ConverseServer).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Which keys become files, and where. Default: every key, as a file named after it. Each
    /// listed key must exist in the ConfigMap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_FILES_ITEMS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["path"]))]
    pub items: Vec<FilesItem>,
}

/// One key of the ConfigMap as one file.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[schemars(transform = rules::files_item)]
#[serde(rename_all = "camelCase")]
pub struct FilesItem {
    /// Key in the ConfigMap's data or binaryData.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
    /// Path of the file inside the files directory, e.g. docs/design.md: relative, without a
    /// `..` element.
    #[schemars(length(min = 1, max = MAX_FILES_ITEM_PATH))]
    pub path: String,
}

impl FilesItem {
    /// Whether the kubelet accepts `path` for a projected key: relative, no `..` element, not
    /// starting with `..` (Kubernetes' own rule; `..data` and friends are the volume's
    /// bookkeeping). The CEL rule says the same.
    pub fn path_is_valid(&self) -> bool {
        let p = &self.path;
        !p.is_empty()
            && !p.starts_with('/')
            && !p.starts_with("..")
            && !p.split('/').any(|element| element == "..")
    }
}

/// A PersistentVolumeClaim as the files directory.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FilesClaim {
    /// Name of the PersistentVolumeClaim (same namespace as the ConverseServer).
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub claim_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: &str) -> FilesItem {
        FilesItem {
            key: "k".to_owned(),
            path: path.to_owned(),
        }
    }

    #[test]
    fn item_paths_follow_the_kubelets_rule() {
        for ok in ["a.md", "docs/design.md", "a..b", "x/.hidden", "x/..y"] {
            assert!(item(ok).path_is_valid(), "{ok}");
        }
        for bad in ["", "/etc/passwd", "..", "../x", "..data", "x/../y", "x/.."] {
            assert!(!item(bad).path_is_valid(), "{bad}");
        }
    }

    #[test]
    fn exactly_one_source() {
        let cm = FilesConfigMap {
            name: "docs".to_owned(),
            items: Vec::new(),
        };
        let pvc = FilesClaim {
            claim_name: "docs".to_owned(),
        };
        let both = Files {
            config_map: Some(cm.clone()),
            persistent_volume_claim: Some(pvc.clone()),
        };
        assert_eq!(both.source(), None);
        assert_eq!(Files::default().source(), None);
        let one = Files {
            config_map: Some(cm.clone()),
            persistent_volume_claim: None,
        };
        assert_eq!(one.source(), Some(FilesSource::ConfigMap(&cm)));
    }
}
