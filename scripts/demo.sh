#!/usr/bin/env bash
# `make demo`: from this checkout to a ConverseServer answering a real MCP client on a real local
# Kubernetes cluster, printing each step; `make demo-down` (this script's `down`) removes it all.
#
#   scripts/demo.sh [up|down]
#
# up: builds testenv's Kubernetes binaries (cached), starts the cluster unless it runs, builds and
# loads the images, helm-installs the operator chart, starts the FAKE LLM provider in the cluster
# (no paid API is reachable here), applies examples/demo/converseserver.yaml (API-key auth), waits
# for Ready, port-forwards its Service to 127.0.0.1:$DEMO_PORT (default 8080) and calls
# tools/list, chat and consensus through the official TypeScript MCP client. The cluster and the
# port-forward keep running for your own client; the script prints how to connect it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

down() {
  step "demo down: the port-forward, the cluster, every host change"
  stop_port_forward
  testenv down
  testenv verify-clean
  rm -rf "$STATE" "$(dirname "$DEMO_KEY_FILE")"
}

up() {
  ensure_cluster
  load_images server operator fake-llm
  install_operator
  deploy_demo

  local port key node url
  port="$(free_port "${DEMO_PORT:-8080}")"
  port_forward "$DEMO_NAMESPACE" demo "$port"
  url="http://127.0.0.1:$port/mcp"
  key="$(demo_api_key)"

  step "a real MCP client (@modelcontextprotocol/sdk): tools/list, chat, consensus with the API key"
  node="$(node_bin)"
  "$node" "$ROOT/interop/demo-client.mjs" "$url" "$key" | sed 's/^/    /'
  [[ ${PIPESTATUS[0]} -eq 0 ]] || die "the MCP client failed"

  step "done — connect your own MCP client (the port-forward runs in the background)"
  cat <<EOF
    Claude Code:
      claude mcp add --transport http converse $url --header "X-API-Key: $key"

    Claude Code, shared with a project (.mcp.json) — VS Code (.vscode/mcp.json) is the same with "servers":
      {
        "mcpServers": {
          "converse": {
            "type": "http",
            "url": "$url",
            "headers": { "X-API-Key": "$key" }
          }
        }
      }

    Claude Desktop (claude_desktop_config.json; it reaches HTTP servers through the mcp-remote bridge):
      {
        "mcpServers": {
          "converse": {
            "command": "npx",
            "args": ["-y", "mcp-remote", "$url", "--header", "X-API-Key:$key"]
          }
        }
      }

    MCP Inspector:
      npx @modelcontextprotocol/inspector   # Transport: Streamable HTTP, URL: $url,
                                            # Authentication: Bearer token $key

    The answers come from the FAKE provider. For real models, put real keys into secret/llm-keys
    and remove the baseUrl lines of examples/demo/converseserver.yaml.

    The cluster keeps running:
      export KUBECONFIG=$KUBECONFIG
      export PATH=$(dirname "$(command -v kubectl)"):\$PATH     # testenv's kubectl and helm
      kubectl -n $DEMO_NAMESPACE get converseservers
    Remove everything: make demo-down
EOF
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *)
    echo "usage: $0 [up|down]" >&2
    exit 2
    ;;
esac
