#!/usr/bin/env bash
# Cross-SDK interop tests and the official MCP conformance suite against the real
# converse-server binary (`make test-interop`; part of `make test`).
#
# 1. installs interop/node_modules with `npm ci` when it is missing or was made
#    from another package-lock.json (the npm registry only; it brings Node 22,
#    the official TypeScript clients and the conformance suite, all pinned);
# 2. builds converse-server and fake-llm (debug; CARGO_TARGET_DIR is honoured);
# 3. runs the conformance suite for 2025-11-25 and 2026-07-28 against
#    interop/conformance-baseline.yml (conformance.mjs);
# 4. runs the client tests (clients.test.mjs) and the authentication tests
#    (auth.test.mjs) in one run of Node's test runner, so one TAP stream with
#    one set of totals covers both files.
# Exits non-zero when any step fails; every step runs even if an earlier test
# step failed, and a summary closes the output.
set -uo pipefail

INTEROP="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$INTEROP/.." && pwd)"
CARGO="${CARGO:-cargo}"
NODE="$INTEROP/node_modules/node/bin/node"

say() { printf '\n==> %s\n' "$*"; }

# --- 1. npm ci, only when needed ---------------------------------------------
"$INTEROP/install.sh" >/dev/null || exit 1

# --- 2. the binaries -------------------------------------------------------------
say "cargo build -p converse-server -p converse-fake-llm"
if ! (cd "$ROOT" && "$CARGO" build -p converse-server -p converse-fake-llm); then
  echo "interop: cargo build failed" >&2
  exit 1
fi

# --- 3. conformance suite --------------------------------------------------------
say "MCP conformance suite (@modelcontextprotocol/conformance), requirements 2025-11-25 and 2026-07-28"
(cd "$INTEROP" && "$NODE" conformance.mjs)
conformance_rc=$?

# --- 4. client and authentication interop tests -------------------------------------
TEST_FILES=(clients.test.mjs auth.test.mjs sessions.test.mjs)
say "client and auth interop tests (@modelcontextprotocol/sdk 1.32.2, @modelcontextprotocol/client 2.4.0, oidc-provider 9.13.3): ${TEST_FILES[*]}"
(cd "$INTEROP" && "$NODE" --test --test-reporter=tap --test-timeout=120000 "${TEST_FILES[@]}")
clients_rc=$?

# --- summary -----------------------------------------------------------------------
verdict() { if [[ $1 -eq 0 ]]; then echo "ok"; else echo "FAILED (exit $1)"; fi; }
say "interop summary"
echo "  conformance (2025-11-25, 2026-07-28): $(verdict $conformance_rc)  [details: interop/results/conformance/]"
echo "  client + auth tests:                  $(verdict $clients_rc)  [${TEST_FILES[*]}]"
if [[ $conformance_rc -ne 0 || $clients_rc -ne 0 ]]; then
  echo "interop: FAILED"
  exit 1
fi
echo "interop: all green"
