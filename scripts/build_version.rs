//! Stamps the git commit into `--version` when the build sets CONVERSE_GIT_COMMIT (`make images` does);
//! without it the version is just the package version, as before.
//!
//! The build script of both converse-server and converse-operator (`build = ...` in their
//! Cargo.toml): one copy, so the two binaries cannot drift apart in how they stamp their version.

fn main() {
    println!("cargo:rerun-if-env-changed=CONVERSE_GIT_COMMIT");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let version = match std::env::var("CONVERSE_GIT_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => format!("{version} ({})", commit.trim()),
        _ => version,
    };
    println!("cargo:rustc-env=CONVERSE_VERSION={version}");
}
