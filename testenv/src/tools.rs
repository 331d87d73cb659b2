//! Command-line tools the offline tests run (helm, kubectl, lua5.1): found through an env var,
//! testenv's own build, or PATH. A test without its tool prints SKIPPED and passes, unless
//! `CONVERSE_TOOLS_REQUIRED`, `TESTENV_REQUIRED` or `CI` is set (`make test` sets the first):
//! then a missing tool fails the test, so CI cannot go green by skipping.

use std::io::Write;
use std::path::PathBuf;

use crate::cmd::{is_executable, on_path};
use crate::layout::Layout;

/// `name` from `$env_var`, else testenv's build directory, else PATH.
pub fn find(name: &str, env_var: &str) -> Option<PathBuf> {
    std::env::var_os(env_var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let built = Layout::from_env().bin_dir().join(name);
            is_executable(&built).then_some(built)
        })
        .or_else(|| on_path(name).then(|| PathBuf::from(name)))
}

/// Whether a missing tool must fail the test instead of skipping it.
pub fn required() -> bool {
    ["CONVERSE_TOOLS_REQUIRED", "TESTENV_REQUIRED", "CI"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// [`find`], or `None` after a visible SKIPPED line; panics when [`required`]. `install` says
/// how to get the tool.
pub fn find_or_skip(name: &str, env_var: &str, test: &str, install: &str) -> Option<PathBuf> {
    let found = find(name, env_var);
    if found.is_none() {
        let why = format!("no {name} (set {env_var}, {install}, or put {name} on PATH)");
        assert!(
            !required(),
            "{test}: {why}; a missing tool is a failure here"
        );
        // Straight to the stderr handle: the test harness captures eprintln!, and a skip must show.
        let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    }
    found
}
