#!/usr/bin/env bash
# Load benchmark: converse-server against the Node.js converse-mcp-server from
# the npm registry, both on the same fake provider (`make bench`;
# docs/PERFORMANCE.md explains what is measured).
#
# 1. installs bench/node/node_modules with `npm ci` when it is missing or was
#    made from another package-lock.json (converse-mcp-server 3.6.0 and the
#    Node.js 24 it needs, both pinned; the npm registry only);
# 2. installs wrk (Debian package) when it is missing and the wrk stage runs:
#    it drives the keep-alive HTTP/1.1 stage; needs root, as `make deps`;
# 3. builds converse-server (release; CARGO_TARGET_DIR is honoured);
# 4. runs `cargo bench -p converse-server --bench load`, which prints the
#    tables and writes them to $BENCH_REPORT (default
#    <target dir>/bench/load-report.md).
# Settings: BENCH_STAGES (startup,load,wrk,sessions,fanout: which stages run),
# BENCH_CONCURRENCY, BENCH_WRK_CONNECTIONS (keep-alive connections per wrk
# level, default 1,16), BENCH_SESSIONS (sessions at once in the sessions stage,
# default 256; each server's HTTP_MAX_CONCURRENT_SESSIONS is raised to it), BENCH_WRK_LATENCY_MS (the wrk stage's own fake
# provider latency, default 0: a slower provider hides the delayed-ACK stall
# the stage looks for), BENCH_WARMUP_SECS, BENCH_DURATION_SECS,
# BENCH_LATENCY_MS, BENCH_MODES, BENCH_SERVERS, BENCH_STARTUP_RUNS,
# BENCH_FANOUT_MODELS / _LATENCY_MS / _CONCURRENCY / _ROUNDS (the fanout stage:
# a 5-model consensus against a 200 ms fake, alone and 64 at once; converse-server
# only) (see server/benches/load.rs). Everything runs on 127.0.0.1 and stops by itself.
# Example, only the keep-alive stage on converse-server, short:
#   BENCH_SERVERS=rust BENCH_STAGES=wrk BENCH_WARMUP_SECS=1 BENCH_DURATION_SECS=3 ./bench/run.sh
# Only the consensus fan-out stage (converse-server; needs no Node):
#   BENCH_SERVERS=rust BENCH_STAGES=fanout ./bench/run.sh
# Only the 256-session stage, both servers, short:
#   BENCH_STAGES=sessions BENCH_WARMUP_SECS=2 BENCH_DURATION_SECS=10 ./bench/run.sh
set -euo pipefail

BENCH="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
CARGO="${CARGO:-cargo}"
NODE_DIR="$BENCH/node"
NODE="$NODE_DIR/node_modules/node/bin/node"
STAMP="$NODE_DIR/node_modules/.converse-bench-lock.sha256"

say() { printf '\n==> %s\n' "$*" >&2; }

# --- 1. npm ci, only when needed ---------------------------------------------
if [[ "${BENCH_SERVERS:-rust,node}" == *node* ]]; then
  lock_hash="$(cat "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [[ -x "$NODE" && -f "$STAMP" && "$(cat "$STAMP")" == "$lock_hash" ]]; then
    install_status="up to date"
  else
    say "npm ci in bench/node (missing or stale)"
    if ! command -v npm >/dev/null 2>&1; then
      echo "bench: npm is not installed (it comes with Node.js; any Node >= 18 works to bootstrap)" >&2
      exit 1
    fi
    rm -rf "$NODE_DIR/node_modules"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund)
    if ! [[ -x "$NODE" ]] || ! "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 24 ? 0 : 1)'; then
      echo "bench: $NODE is missing or older than Node 24 after npm ci" >&2
      exit 1
    fi
    echo "$lock_hash" > "$STAMP"
    install_status="installed"
  fi
  echo "bench: node $("$NODE" --version), converse-mcp-server $("$NODE" -p 'require(process.argv[1]).version' "$NODE_DIR/node_modules/converse-mcp-server/package.json" 2>/dev/null || echo '?') ($install_status)" >&2
fi

# --- 2. wrk, only when needed ----------------------------------------------------
if [[ "${BENCH_STAGES:-startup,load,wrk,sessions,fanout}" == *wrk* ]] && ! command -v wrk >/dev/null 2>&1; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "bench: wrk is not installed: apt-get install wrk (as root), or run without it: BENCH_STAGES=startup,load" >&2
    exit 1
  fi
  say "apt-get install wrk"
  (apt-get install -y --no-install-recommends wrk || (apt-get update && apt-get install -y --no-install-recommends wrk)) >/dev/null
fi

# --- 3. the release build --------------------------------------------------------
say "cargo build --release -p converse-server"
(cd "$ROOT" && "$CARGO" build --release -p converse-server)

# --- 4. the benchmark ------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-target}"
[[ "$target_dir" = /* ]] || target_dir="$ROOT/$target_dir"
mkdir -p "$target_dir/bench"
export BENCH_REPORT="${BENCH_REPORT:-$target_dir/bench/load-report.md}"
say "cargo bench -p converse-server --bench load"
(cd "$ROOT" && "$CARGO" bench -p converse-server --bench load)
echo "bench: report written to $BENCH_REPORT" >&2
