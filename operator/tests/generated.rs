//! Generated artefacts are committed and must match the Rust types:
//! `crds/converseservers.converse.dev.yaml` and the Helm chart's copy
//! `charts/converse-operator/files/converseservers.converse.dev.yaml` (regenerate with
//! `UPDATE_CRDS=1`) and `docs/CRD.md` (regenerate with `UPDATE_DOCS=1`), as
//! `UPDATE_CRDS=1 UPDATE_DOCS=1 cargo test -p converse-operator --test generated`.

use std::path::{Path, PathBuf};

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Compare `relative` with `want`; rewrite it when `update_var` is set.
fn check(relative: &str, want: &str, update_var: &str) {
    let path = repo_file(relative);
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have == want {
        return;
    }
    if std::env::var_os(update_var).is_some() {
        std::fs::write(&path, want).unwrap_or_else(|e| panic!("write {relative}: {e}"));
        return;
    }
    panic!(
        "{relative} is out of date with the Rust types; run \
         `{update_var}=1 cargo test -p converse-operator --test generated` and commit the result"
    );
}

#[test]
fn crd_yaml_is_current() {
    let yaml = converse_operator::crd::crd_yaml().expect("CRD renders");
    check(
        "crds/converseservers.converse.dev.yaml",
        &yaml,
        "UPDATE_CRDS",
    );
}

/// The chart renders its CRD from this copy (Helm cannot read files outside the chart).
#[test]
fn chart_crd_is_current() {
    let yaml = converse_operator::crd::crd_yaml().expect("CRD renders");
    check(
        "charts/converse-operator/files/converseservers.converse.dev.yaml",
        &yaml,
        "UPDATE_CRDS",
    );
}

#[test]
fn crd_reference_is_current() {
    let md = converse_operator::docs::crd_reference_markdown();
    check("docs/CRD.md", &md, "UPDATE_DOCS");
}
