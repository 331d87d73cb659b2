#!/usr/bin/env bash
# Installs interop/node_modules with `npm ci` when it is missing or was made from another
# package-lock.json: Node 22 (the npm package `node`), the official MCP TypeScript SDKs, the
# conformance suite and oidc-provider, all pinned. Used by run.sh (the interop tests) and the demo.
# Prints the Node binary to use on its last line.
set -uo pipefail

INTEROP="$(cd "$(dirname "$0")" && pwd)"
NODE="$INTEROP/node_modules/node/bin/node"
STAMP="$INTEROP/node_modules/.converse-interop-lock.sha256"

say() { printf '\n==> %s\n' "$*" >&2; }

lock_hash="$(cat "$INTEROP/package.json" "$INTEROP/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -x "$NODE" && -f "$STAMP" && "$(cat "$STAMP")" == "$lock_hash" ]]; then
  install_status="up to date"
else
  say "npm ci (interop/node_modules missing or stale)"
  if ! command -v npm >/dev/null 2>&1; then
    echo "interop: npm is not installed (it comes with Node.js; any Node >= 18 works to bootstrap)" >&2
    exit 1
  fi
  rm -rf "$INTEROP/node_modules"
  if ! (cd "$INTEROP" && npm ci --no-audit --no-fund >&2); then
    echo "interop: npm ci failed" >&2
    exit 1
  fi
  if ! [[ -x "$NODE" ]] || ! "$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)'; then
    echo "interop: $NODE is missing or older than Node 22 after npm ci" >&2
    exit 1
  fi
  echo "$lock_hash" > "$STAMP"
  install_status="installed"
fi
echo "interop: node $("$NODE" --version) from interop/node_modules ($install_status)" >&2
echo "$NODE"

