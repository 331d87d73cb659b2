# Shared by scripts/demo.sh (`make demo`) and scripts/e2e.sh (the end-to-end test): the steps that
# take this repository to a running ConverseServer on testenv's cluster. Source it; it sets
# ROOT, CARGO, STATE and the functions below. Every step prints what it does.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO="${CARGO:-cargo}"
# Where the demo keeps its API key, the port-forward's pid and logs (gitignored, under target/).
STATE="${CONVERSE_DEMO_STATE:-$ROOT/target/demo}"
IMAGE_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"
OPERATOR_NAMESPACE=converse-system
OPERATOR_RELEASE=converse-operator
DEMO_NAMESPACE=converse-demo

STEP=0
started_at=$(date +%s)
step() {
  STEP=$((STEP + 1))
  printf '\n\033[1m==> [%s +%ss] %s. %s\033[0m\n' "$(date +%H:%M:%S)" "$(($(date +%s) - started_at))" "$STEP" "$*"
}
info() { printf '    %s\n' "$*"; }
die() {
  printf '\033[31mERROR: %s\033[0m\n' "$*" >&2
  exit 1
}

testenv() { (cd "$ROOT" && "$CARGO" run -q -p testenv -- "$@"); }

# Builds (cached) the Kubernetes binaries and starts the cluster unless it already answers; puts
# testenv's kubectl and helm first on PATH and exports KUBECONFIG.
ensure_cluster() {
  step "testenv: Kubernetes v1.37 binaries built from source (cached after the first build, which takes 15-40 min)"
  testenv build || die "testenv build failed"
  PATH="$(testenv bin-dir):$PATH"
  export PATH
  KUBECONFIG="$(testenv kubeconfig)"
  export KUBECONFIG
  if [[ -f "$KUBECONFIG" ]] && kubectl get --raw /readyz >/dev/null 2>&1; then
    step "testenv: the cluster is already running"
  else
    step "testenv up: etcd, API server, controller manager, scheduler, containerd, kubelet, kube-proxy, CoreDNS"
    testenv up || die "testenv up failed (logs: docs/TESTENV.md, Troubleshooting)"
  fi
  kubectl get nodes -o wide | sed 's/^/    /'
}

# Builds the images (only what changed) and imports them into the node's containerd.
load_images() {
  step "images: static musl binaries on FROM scratch (buildah, no registry) -> the node's containerd: $*"
  CARGO="$CARGO" "$ROOT/scripts/images.sh" "$@" || die "building the images failed"
  local p archive
  for p in "$@"; do
    case "$p" in
      fake-llm) archive=converse-fake-llm ;;
      redis) archive=converse-test-redis ;;
      *) archive="converse-$p" ;;
    esac
    testenv load-image "$ROOT/target/images/$archive.tar" >/dev/null || die "loading $archive into the node failed"
    info "loaded $archive"
  done
}

# helm upgrade --install of charts/converse-operator; extra arguments go to helm.
install_operator() {
  step "helm upgrade --install $OPERATOR_RELEASE charts/converse-operator -n $OPERATOR_NAMESPACE $*"
  # A CRD installed before with `kubectl apply -f crds/` (the Rust cluster tests do that) has no
  # Helm ownership metadata, and helm refuses to take it over. Helm adopts an object that carries
  # it; docs/OPERATIONS.md documents the same two commands for users.
  local crd=converseservers.converse.dev
  if kubectl get crd "$crd" >/dev/null 2>&1 &&
    [[ -z "$(kubectl get crd "$crd" -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}')" ]]; then
    info "adopting the existing CRD $crd into the release"
    kubectl label crd "$crd" app.kubernetes.io/managed-by=Helm --overwrite >/dev/null
    kubectl annotate crd "$crd" "meta.helm.sh/release-name=$OPERATOR_RELEASE" \
      "meta.helm.sh/release-namespace=$OPERATOR_NAMESPACE" --overwrite >/dev/null
  fi
  helm upgrade --install "$OPERATOR_RELEASE" "$ROOT/charts/converse-operator" \
    --namespace "$OPERATOR_NAMESPACE" --create-namespace --wait --timeout 5m "$@" ||
    die "helm install failed: kubectl -n $OPERATOR_NAMESPACE describe pods"
  kubectl -n "$OPERATOR_NAMESPACE" get pods -o wide | sed 's/^/    /'
}

# The demo's API key: generated once and reused, also by the e2e test (a new key in the Secret
# would roll the running demo's pods).
DEMO_KEY_FILE="$ROOT/target/demo/api-key"
demo_api_key() {
  mkdir -p "$(dirname "$DEMO_KEY_FILE")"
  [[ -s "$DEMO_KEY_FILE" ]] || (umask 077 && openssl rand -hex 32 >"$DEMO_KEY_FILE")
  cat "$DEMO_KEY_FILE"
}

# kubectl apply of a Secret built from literals (idempotent): secret_apply NS NAME k=v...
secret_apply() {
  local ns="$1" name="$2"
  shift 2
  local args=() kv
  for kv in "$@"; do args+=(--from-literal="$kv"); done
  kubectl -n "$ns" create secret generic "$name" "${args[@]}" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
}

deploy_demo() {
  step "the FAKE LLM provider (converse-fake-llm: imitates OpenAI/Anthropic/Gemini; NOT a model) in $DEMO_NAMESPACE"
  kubectl apply -f "$ROOT/examples/demo/fake-llm.yaml" | sed 's/^/    /'
  kubectl -n "$DEMO_NAMESPACE" rollout status deploy/fake-llm --timeout=180s | sed 's/^/    /' ||
    die "the fake LLM did not start: kubectl -n $DEMO_NAMESPACE describe pods -l app.kubernetes.io/name=fake-llm"

  step "Secrets the ConverseServer references: llm-keys (provider keys), mcp-keys (the MCP clients' API key)"
  secret_apply "$DEMO_NAMESPACE" llm-keys openai=demo-fake-provider-key anthropic=demo-fake-provider-key google=demo-fake-provider-key
  secret_apply "$DEMO_NAMESPACE" mcp-keys keys="$(demo_api_key)"
  info "secret/llm-keys and secret/mcp-keys applied (the API key is in $DEMO_KEY_FILE)"

  step "kubectl apply -f examples/demo/converseserver.yaml, then wait for Ready"
  kubectl apply -f "$ROOT/examples/demo/converseserver.yaml" | sed 's/^/    /'
  if ! kubectl -n "$DEMO_NAMESPACE" wait --for=condition=Ready converseserver/demo --timeout=300s >/dev/null; then
    kubectl -n "$DEMO_NAMESPACE" get converseserver demo -o yaml >&2
    die "converseserver/demo did not become Ready"
  fi
  kubectl -n "$DEMO_NAMESPACE" get converseservers,deployments,services,pods | sed 's/^/    /'
}

# port_forward NAMESPACE SERVICE LOCAL_PORT: kubectl port-forward in the background (its pid in
# $STATE/port-forward.pid; it outlives this script), until /healthz answers through it.
port_forward() {
  local ns="$1" svc="$2" port="$3"
  stop_port_forward
  mkdir -p "$STATE"
  step "kubectl -n $ns port-forward svc/$svc $port:80 (in the background)"
  setsid kubectl -n "$ns" port-forward "svc/$svc" "$port:80" >"$STATE/port-forward.log" 2>&1 </dev/null &
  echo $! >"$STATE/port-forward.pid"
  local i
  for i in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      info "http://127.0.0.1:$port/mcp reaches the Service"
      return 0
    fi
    sleep 0.5
  done
  cat "$STATE/port-forward.log" >&2
  die "the port-forward to svc/$svc did not answer on 127.0.0.1:$port"
}

stop_port_forward() {
  if [[ -f "$STATE/port-forward.pid" ]]; then
    kill "$(cat "$STATE/port-forward.pid")" 2>/dev/null || true
    rm -f "$STATE/port-forward.pid"
  fi
}

# A free local TCP port, starting from $1.
free_port() {
  local p="$1"
  while ss -Hltn "sport = :$p" | grep -q .; do p=$((p + 1)); done
  echo "$p"
}

# The official TypeScript MCP SDK (interop/node_modules, installed by npm ci when missing).
node_bin() {
  "$ROOT/interop/install.sh" | tail -n1
}
