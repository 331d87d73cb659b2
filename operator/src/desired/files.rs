//! The files directory of `spec.files`: its pod volume and the container's mount. The mount
//! path is the operator's, not the user's, so `CONVERSE_FILES_ROOT` (written by `env`) and the
//! mount cannot disagree.

use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, KeyToPath, PersistentVolumeClaimVolumeSource, Volume, VolumeMount,
};

use crate::crd::{Files, FilesSource};

/// Where the files directory is mounted, and the value of `CONVERSE_FILES_ROOT`. Under
/// /var/lib, not /tmp: the `/tmp` emptyDir is the server's scratch space.
pub const FILES_MOUNT_PATH: &str = "/var/lib/converse/files";

/// Name of the pod volume.
pub const FILES_VOLUME: &str = "files";

/// The pod volume for `files`; `None` when it names no single source (validate refuses that
/// before the build).
pub fn volume(files: &Files) -> Option<Volume> {
    let volume = match files.source()? {
        FilesSource::ConfigMap(c) => Volume {
            name: FILES_VOLUME.to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: c.name.clone(),
                items: (!c.items.is_empty()).then(|| {
                    c.items
                        .iter()
                        .map(|i| KeyToPath {
                            key: i.key.clone(),
                            path: i.path.clone(),
                            ..KeyToPath::default()
                        })
                        .collect()
                }),
                // A missing ConfigMap (or key) is reported by the operator
                // (FilesResolved=False); an empty directory instead would hide the problem.
                optional: Some(false),
                // defaultMode stays unset: the default 0644 lets the server's user read every
                // file.
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        FilesSource::Claim(p) => Volume {
            name: FILES_VOLUME.to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: p.claim_name.clone(),
                // The server only reads; read-only also lets several pods share the claim.
                read_only: Some(true),
            }),
            ..Volume::default()
        },
    };
    Some(volume)
}

/// The container's mount of the files volume: read-only, and the whole volume, never a
/// `subPath` (the kubelet does not refresh subPath mounts, so ConfigMap edits would not reach
/// the pods).
pub fn mount() -> VolumeMount {
    VolumeMount {
        name: FILES_VOLUME.to_owned(),
        mount_path: FILES_MOUNT_PATH.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{FilesClaim, FilesConfigMap, FilesItem};

    #[test]
    fn config_map_volume_projects_the_listed_keys_and_requires_the_config_map() {
        let files = Files {
            config_map: Some(FilesConfigMap {
                name: "docs".to_owned(),
                items: vec![FilesItem {
                    key: "design.md".to_owned(),
                    path: "docs/design.md".to_owned(),
                }],
            }),
            persistent_volume_claim: None,
        };
        let v = volume(&files).unwrap();
        assert_eq!(v.name, FILES_VOLUME);
        let cm = v.config_map.unwrap();
        assert_eq!(cm.name, "docs");
        assert_eq!(cm.optional, Some(false));
        let items = cm.items.unwrap();
        assert_eq!(
            (items[0].key.as_str(), items[0].path.as_str()),
            ("design.md", "docs/design.md")
        );
        assert!(v.persistent_volume_claim.is_none() && v.host_path.is_none());

        // Without items: every key, which the volume says by listing none.
        let all = Files {
            config_map: Some(FilesConfigMap {
                name: "docs".to_owned(),
                items: Vec::new(),
            }),
            persistent_volume_claim: None,
        };
        assert_eq!(volume(&all).unwrap().config_map.unwrap().items, None);
    }

    #[test]
    fn claim_volume_is_read_only() {
        let files = Files {
            config_map: None,
            persistent_volume_claim: Some(FilesClaim {
                claim_name: "shared-docs".to_owned(),
            }),
        };
        let v = volume(&files).unwrap();
        let pvc = v.persistent_volume_claim.unwrap();
        assert_eq!(pvc.claim_name, "shared-docs");
        assert_eq!(pvc.read_only, Some(true));
        assert!(v.config_map.is_none());
    }

    #[test]
    fn no_volume_without_exactly_one_source() {
        assert_eq!(volume(&Files::default()), None);
    }

    #[test]
    fn mount_is_read_only_whole_and_at_the_operators_path() {
        let m = mount();
        assert_eq!(m.name, FILES_VOLUME);
        assert_eq!(m.mount_path, FILES_MOUNT_PATH);
        assert_eq!(m.read_only, Some(true));
        assert_eq!(m.sub_path, None);
        assert_eq!(m.sub_path_expr, None);
    }

    /// The CRD tells users where the files are; it must be where they are mounted.
    #[test]
    fn the_crd_names_the_mount_path() {
        let crd = serde_json::to_string(&crate::crd::crd().unwrap()).unwrap();
        assert!(crd.contains(FILES_MOUNT_PATH));
    }
}
