#!/usr/bin/env bash
# `make deny` (and `make lint`, hence CI): license, ban and source checks of the dependency graph
# with cargo-deny, configured by deny.toml at the repository root.
#
#   scripts/cargo-deny.sh [extra arguments for `cargo deny check`]
#
# cargo-deny is installed once (pinned version, `cargo install --locked` from crates.io) into
# CONVERSE_TOOLS_DIR (/var/cache/converse-tools), a cache that outlives the CI runs on a machine
# like the project's other caches; later runs only run the check. It is built in a temporary
# target directory of its own that is removed afterwards, never in the project's target dirs.
#
# Only `licenses bans sources` are checked, never `advisories`: that check needs the RustSec
# advisory database, a git repository on github.com, which cannot be reached from here.
#
# Env: CARGO, CONVERSE_TOOLS_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
CARGO="${CARGO:-cargo}"
CARGO_DENY_VERSION=0.20.2
TOOLS_DIR="${CONVERSE_TOOLS_DIR:-/var/cache/converse-tools}"
DENY="$TOOLS_DIR/bin/cargo-deny"

die() {
  printf '\033[31mcargo-deny.sh: ERROR: %s\033[0m\n' "$*" >&2
  exit 1
}

installed_version() { "$DENY" --version 2>/dev/null | awk '{print $2}'; }

if [[ "$(installed_version)" != "$CARGO_DENY_VERSION" ]]; then
  mkdir -p "$TOOLS_DIR" 2>/dev/null && [[ -w "$TOOLS_DIR" ]] ||
    die "cannot write $TOOLS_DIR to install cargo-deny $CARGO_DENY_VERSION (run as root, or set CONVERSE_TOOLS_DIR to a writable directory)"
  # One install at a time on the machine; whoever waited finds it installed.
  exec 9>"$TOOLS_DIR/.cargo-deny.lock"
  flock 9
  if [[ "$(installed_version)" != "$CARGO_DENY_VERSION" ]]; then
    build_dir="$(mktemp -d /tmp/cargo-deny-build.XXXXXX)"
    trap 'rm -rf "$build_dir"' EXIT
    echo "cargo-deny.sh: installing cargo-deny $CARGO_DENY_VERSION into $TOOLS_DIR (once per machine; a few minutes on 2 cores)"
    started=$(date +%s)
    # Its own CARGO_TARGET_DIR (CI exports the project's), no incremental build, no parallel jobs
    # beyond cargo's default; the log is shown only when it fails.
    if ! CARGO_TARGET_DIR="$build_dir/target" CARGO_INCREMENTAL=0 \
      "$CARGO" install --locked --root "$TOOLS_DIR" "cargo-deny@$CARGO_DENY_VERSION" >"$build_dir/install.log" 2>&1; then
      tail -n 40 "$build_dir/install.log" >&2
      die "installing cargo-deny $CARGO_DENY_VERSION with '$CARGO install --locked' failed (its last lines are above; crates.io must be reachable)"
    fi
    [[ "$(installed_version)" == "$CARGO_DENY_VERSION" ]] ||
      die "cargo-deny was installed but '$DENY --version' does not report $CARGO_DENY_VERSION"
    echo "cargo-deny.sh: installed cargo-deny $CARGO_DENY_VERSION in $(($(date +%s) - started))s"
    rm -rf "$build_dir"
    trap - EXIT
  fi
  exec 9>&-
fi

# cargo-deny reads the graph with `cargo metadata`; --locked: against Cargo.lock as committed.
# `cargo-deny` is called directly, so the cache need not be on PATH. The warnings (duplicate
# versions) are listed without their inclusion graphs, which would print some 1500 lines; when the
# check fails, the errors alone are shown again with the path that brings each crate in.
deny() { CARGO="$CARGO" "$DENY" --locked "$@"; }
if ! deny check --hide-inclusion-graph licenses bans sources "$@"; then
  echo "cargo-deny.sh: the errors again, each with the dependencies that bring its crate in:" >&2
  deny --log-level error check licenses bans sources "$@" || true
  die "cargo deny check licenses bans sources failed: fix the dependency or, if acceptable, deny.toml"
fi
