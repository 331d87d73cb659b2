#!/usr/bin/env bash
# The end-to-end test (`make test-cluster` runs it after the Rust cluster tests, on the same
# testenv cluster): the demo's steps with assertions, then what a platform team does next.
#
#  1. images built from the Dockerfiles, loaded into the node;
#  2. the chart rendered for several value sets passes `kubectl apply --dry-run=server`;
#  3. `helm install` runs the operator in its own pod (in-cluster config, its ServiceAccount's RBAC);
#  4. the demo ConverseServer (apiKey) becomes Ready with a real converse-server pod; through
#     `kubectl port-forward` of its Service a real MCP client lists tools, calls chat and consensus
#     (answered by the fake provider in the cluster), and a wrong key is refused with 401;
#  5. GitOps: every overlay renders and passes server-side dry-run; staging is applied for real
#     (with a test Redis) and becomes Ready;
#  6. `helm upgrade` with a changed CRD updates the CRD in the cluster;
#  7. namespace-scoped mode: the operator cannot read other namespaces and leaves their
#     ConverseServers alone, while it still reconciles its own;
#  8. `helm uninstall` keeps the CRD and the ConverseServers (helm.sh/resource-policy: keep).
#
# Needs a running testenv cluster or starts one (it does not stop it: the caller does).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
STATE="$ROOT/target/e2e"

CHART="$ROOT/charts/converse-operator"
OPERATOR_SA="system:serviceaccount:$OPERATOR_NAMESPACE:$OPERATOR_RELEASE"
CHECKS=0
ok() {
  CHECKS=$((CHECKS + 1))
  printf '    \033[32mok\033[0m %s\n' "$*"
}

on_exit() {
  local rc=$?
  stop_port_forward
  if [[ $rc -ne 0 ]]; then
    printf '\n\033[31me2e: FAILED at step %s (%s checks passed). Diagnostics:\033[0m\n' "$STEP" "$CHECKS" >&2
    kubectl get converseservers,deployments,pods -A -o wide >&2 || true
    kubectl -n "$OPERATOR_NAMESPACE" logs "deploy/$OPERATOR_RELEASE" --tail=40 >&2 || true
  fi
}
trap on_exit EXIT

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND once a second.
wait_until() {
  local timeout="$1" what="$2"
  shift 2
  local deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    [[ $(date +%s) -lt $deadline ]] || die "timed out after ${timeout}s waiting for: $what"
    sleep 1
  done
}

observed_generation() { kubectl -n "$1" get converseserver "$2" -o jsonpath='{.status.observedGeneration}'; }
generation() { kubectl -n "$1" get converseserver "$2" -o jsonpath='{.metadata.generation}'; }
reconciled() { [[ "$(observed_generation "$1" "$2")" == "$(generation "$1" "$2")" ]]; }

mkdir -p "$STATE"
ensure_cluster
load_images server operator fake-llm redis

step "chart: rendered manifests pass kubectl apply --dry-run=server"
kubectl get namespace "$OPERATOR_NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$OPERATOR_NAMESPACE" >/dev/null
# helm template does not ask the cluster its version (and testenv's helm defaults to an old one).
kube_version="$(kubectl version -o json | sed -n 's/.*"gitVersion": *"\(v[0-9.]*\).*/\1/p' | tail -n1)"
for values in "" "--set rbac.scope=namespace --set watchNamespaces={default,kube-public}" \
  "--set replicaCount=2 --set networkPolicy.enabled=true"; do
  # shellcheck disable=SC2086 # word splitting of the value flags is intended
  helm template "$OPERATOR_RELEASE" "$CHART" -n "$OPERATOR_NAMESPACE" --kube-version "$kube_version" $values |
    kubectl apply --dry-run=server -f - >/dev/null 2>"$STATE/dry-run.err" ||
    die "server-side dry-run failed for: ${values:-defaults}: $(cat "$STATE/dry-run.err")"
  ok "dry-run=server: ${values:-defaults}"
done

install_operator
sa="$(kubectl -n "$OPERATOR_NAMESPACE" get pods -l app.kubernetes.io/name=converse-operator -o jsonpath='{.items[0].spec.serviceAccountName}')"
[[ "$sa" == "$OPERATOR_RELEASE" ]] || die "the operator pod runs as ServiceAccount '$sa'"
ok "the operator runs in its own pod as ServiceAccount $sa"
[[ "$(kubectl auth can-i list pods -n kube-system --as="$OPERATOR_SA")" == no ]] || die "the operator may list pods"
[[ "$(kubectl auth can-i delete deployments -n default --as="$OPERATOR_SA")" == no ]] || die "the operator may delete Deployments"
ok "least privilege: no pods, no deleting Deployments"

deploy_demo
image="$(kubectl -n "$DEMO_NAMESPACE" get deploy demo -o jsonpath='{.spec.template.spec.containers[0].image}')"
[[ "$image" == "ghcr.io/converse-on-kubernetes/converse-server:$IMAGE_VERSION" ]] || die "the server runs image $image"
ok "converseserver/demo Ready, its pod runs $image"

port="$(free_port 18080)"
port_forward "$DEMO_NAMESPACE" demo "$port"
step "a real MCP client through the port-forward: tools/list, chat, consensus; a wrong key is refused"
node="$(node_bin)"
"$node" "$ROOT/interop/demo-client.mjs" "http://127.0.0.1:$port/mcp" "$(demo_api_key)" \
  --expect-refused "not-the-key-$(openssl rand -hex 16)" | sed 's/^/    /'
[[ ${PIPESTATUS[0]} -eq 0 ]] || die "the MCP client checks failed"
ok "MCP over the Service: right key answered by the fake provider, wrong key 401"
# A DNS-rebinding page reaches the port-forward with its own host name: refused.
status="$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: attacker.example' -H "X-API-Key: $(demo_api_key)" \
  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  --data '{"jsonrpc":"2.0","id":1,"method":"ping"}' "http://127.0.0.1:$port/mcp")"
[[ "$status" == 403 ]] || die "a foreign Host header got HTTP $status, not 403"
ok "a foreign Host header is refused (403)"
stop_port_forward

step "GitOps overlays: kubectl kustomize | kubectl apply --dry-run=server; staging for real"
for env in dev staging prod; do
  # The Namespace objects are created for real: a dry-run cannot place objects in a namespace
  # that does not exist yet.
  kubectl apply -f "$ROOT/examples/gitops/overlays/$env/namespace.yaml" >/dev/null
  kubectl kustomize "$ROOT/examples/gitops/overlays/$env" | kubectl apply --dry-run=server -f - >/dev/null 2>"$STATE/dry-run.err" ||
    die "overlay $env fails server-side dry-run: $(cat "$STATE/dry-run.err")"
  ok "overlay $env renders and passes server-side dry-run"
done
kubectl -n converse-staging apply -k "$ROOT/examples/gitops/dev-secrets" >/dev/null
kubectl -n converse-staging apply -f "$ROOT/scripts/e2e/redis.yaml" >/dev/null
kubectl -n converse-staging rollout status deploy/redis --timeout=120s >/dev/null || die "the test Redis did not start"
kubectl apply -k "$ROOT/examples/gitops/overlays/staging" | sed 's/^/    /'
kubectl -n converse-staging wait --for=condition=Ready converseserver/converse --timeout=300s >/dev/null ||
  die "the staging ConverseServer did not become Ready"
ready="$(kubectl -n converse-staging get deploy converse -o jsonpath='{.status.readyReplicas}')"
[[ "$ready" == 2 ]] || die "staging has $ready ready replicas, not 2"
ok "staging overlay applied: Ready with 2 replicas on Redis"

step "helm upgrade with a changed CRD updates the CRD"
marker="e2e-upgrade-$RANDOM"
changed="$(mktemp -d)"
cp -r "$CHART/." "$changed/"
sed -i "0,/description: /s//description: $marker /" "$changed/files/converseservers.converse.dev.yaml"
helm upgrade "$OPERATOR_RELEASE" "$changed" -n "$OPERATOR_NAMESPACE" --reuse-values --wait --timeout 5m >/dev/null
# (grep -q on a pipe would end kubectl early with SIGPIPE, a failure under pipefail)
crd_has() { [[ "$(kubectl get crd converseservers.converse.dev -o yaml)" == *"$1"* ]]; }
crd_has "$marker" || die "helm upgrade did not update the CRD"
ok "helm upgrade applied the changed CRD"
helm upgrade "$OPERATOR_RELEASE" "$CHART" -n "$OPERATOR_NAMESPACE" --reuse-values --wait --timeout 5m >/dev/null
crd_has "$marker" && die "the CRD was not restored"
rm -rf "$changed"
ok "helm upgrade back to the chart's CRD"

step "namespace-scoped mode: watch $DEMO_NAMESPACE only"
helm upgrade "$OPERATOR_RELEASE" "$CHART" -n "$OPERATOR_NAMESPACE" --reuse-values \
  --set rbac.scope=namespace --set "watchNamespaces={$DEMO_NAMESPACE}" --wait --timeout 5m >/dev/null
kubectl -n "$OPERATOR_NAMESPACE" rollout status "deploy/$OPERATOR_RELEASE" --timeout=120s >/dev/null
[[ "$(kubectl auth can-i list converseservers.converse.dev -n converse-staging --as="$OPERATOR_SA")" == no ]] ||
  die "the namespace-scoped operator may list ConverseServers in converse-staging"
[[ "$(kubectl auth can-i get secrets -n converse-staging --as="$OPERATOR_SA")" == no ]] ||
  die "the namespace-scoped operator may read Secrets in converse-staging"
[[ "$(kubectl auth can-i list converseservers.converse.dev -n "$DEMO_NAMESPACE" --as="$OPERATOR_SA")" == yes ]] ||
  die "the namespace-scoped operator may not list ConverseServers in $DEMO_NAMESPACE"
ok "RBAC: $DEMO_NAMESPACE yes; converse-staging no (ConverseServers, Secrets)"
kubectl -n "$DEMO_NAMESPACE" patch converseserver demo --type merge -p '{"spec":{"rateLimit":{"maxRequests":601}}}' >/dev/null
kubectl -n converse-staging patch converseserver converse --type merge -p '{"spec":{"rateLimit":{"maxRequests":1001}}}' >/dev/null
wait_until 60 "the operator reconciles generation $(generation "$DEMO_NAMESPACE" demo) of $DEMO_NAMESPACE/demo" \
  reconciled "$DEMO_NAMESPACE" demo
ok "$DEMO_NAMESPACE/demo reconciled after a change"
sleep 5
reconciled converse-staging converse && die "the namespace-scoped operator reconciled converse-staging/converse"
ok "converse-staging/converse left alone (observedGeneration $(observed_generation converse-staging converse) < generation $(generation converse-staging converse))"

step "helm uninstall keeps the CRD and the ConverseServers"
helm uninstall "$OPERATOR_RELEASE" -n "$OPERATOR_NAMESPACE" --wait >/dev/null
kubectl get crd converseservers.converse.dev >/dev/null || die "helm uninstall removed the CRD"
kubectl -n "$DEMO_NAMESPACE" get converseserver demo >/dev/null || die "helm uninstall removed converseserver/demo"
kubectl -n "$OPERATOR_NAMESPACE" get deploy "$OPERATOR_RELEASE" >/dev/null 2>&1 && die "the operator Deployment is still there"
ok "after helm uninstall: CRD and ConverseServers kept, operator gone"

printf '\n\033[32me2e: all %s checks passed\033[0m\n' "$CHECKS"
