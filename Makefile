# The index of the project's tasks. `make help` lists them.

CARGO ?= cargo
# The static target of the images and of the operator benchmark's binary.
MUSL_TARGET := x86_64-unknown-linux-musl

.PHONY: help deps demo demo-down run build test test-interop lint deny fmt testenv-build testenv-up testenv-down test-cluster test-e2e bench bench-operator images

help: ## list the tasks
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Debian packages the tests use; installed when missing (needs root, as in CI): redis-server for the
# Redis store tests (and the e2e test's Redis image), openssl, lua5.1 for the Argo CD health check.
DEB_DEPS := redis-server openssl lua5.1

demo: deps ## the whole product on a local cluster: testenv, images, Helm chart, a ConverseServer, a real MCP client (first run 20-50 min, then ~1 min)
	CARGO="$(CARGO)" ./scripts/demo.sh up

demo-down: ## stop the demo: the port-forward, the cluster, every host change
	CARGO="$(CARGO)" ./scripts/demo.sh down

deps: ## install the system packages the tests need (redis-server, openssl, lua5.1) when missing
	@missing=""; for p in $(DEB_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: please install:$$missing (apt-get install$$missing)"; exit 1; fi; \
	  echo "make deps: installing$$missing"; \
	  (apt-get install -y --no-install-recommends $$missing || (apt-get update && apt-get install -y --no-install-recommends $$missing)) >/dev/null; \
	fi

run: ## run converse-server over HTTP on 127.0.0.1:3157/mcp (set a provider key first)
	$(CARGO) run --release -p converse-server

build: ## build every crate (release)
	$(CARGO) build --release --workspace

lint: ## rustfmt and clippy (warnings are errors), then cargo-deny (make deny)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	CARGO="$(CARGO)" ./scripts/cargo-deny.sh

# deny.toml says what is allowed; cargo-deny is installed once into /var/cache/converse-tools (a
# few minutes), later runs take seconds. No advisories check: its database is not reachable here.
deny: ## license, ban and source checks of the dependency graph (cargo-deny)
	CARGO="$(CARGO)" ./scripts/cargo-deny.sh

# The chart, GitOps and Argo CD tests in `cargo test` use testenv's helm and kubectl (built first)
# and lua5.1 (deps); CONVERSE_TOOLS_REQUIRED makes them fail instead of skip when a tool is missing.
test: deps lint testenv-build ## the whole test suite (what CI runs)
	CONVERSE_TOOLS_REQUIRED=1 $(CARGO) test --workspace
	$(MAKE) test-interop
	$(MAKE) test-cluster

test-interop: ## official TypeScript MCP clients (incl. auth against oidc-provider) + conformance suite (installs them with npm ci)
	CARGO="$(CARGO)" ./interop/run.sh

test-e2e: ## only the end-to-end test (scripts/e2e.sh) on the running testenv cluster (starts one if none)
	CARGO="$(CARGO)" ./scripts/e2e.sh

bench-operator: testenv-build ## operator benchmark on a local cluster (100 CRs latency, 500 CRs, steady-state writes, RSS/CPU), then down
	rustup target add $(MUSL_TARGET) >/dev/null
	$(CARGO) build --release --locked --target $(MUSL_TARGET) -p converse-operator
	@status=0; \
	$(TESTENV) up >/dev/null || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  TESTENV_KUBECONFIG="$$($(TESTENV) kubeconfig)" TESTENV_REQUIRED=1 \
	  CONVERSE_OPERATOR_BIN="$$($(CARGO) metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/$(MUSL_TARGET)/release/converse-operator" \
	    $(CARGO) bench -p converse-operator --bench reconcile || status=$$?; \
	fi; \
	$(TESTENV) down >/dev/null || status=$$?; \
	$(TESTENV) verify-clean || status=$$?; \
	exit $$status

bench: ## load benchmark vs the Node.js converse-mcp-server on a fake provider (a few minutes; docs/PERFORMANCE.md)
	CARGO="$(CARGO)" ./bench/run.sh

fmt: ## format the code
	$(CARGO) fmt --all

# Container images (docs/IMAGES.md): static musl binaries on FROM scratch, built by buildah without
# network, saved as docker-archives in target/images.
images: ## static musl binaries + FROM-scratch images (server, operator, fake-llm) in target/images
	CARGO="$(CARGO)" ./scripts/images.sh

# The local Kubernetes cluster (see docs/TESTENV.md). The node needs root.
TESTENV ?= $(CARGO) run -q -p testenv --

testenv-build: ## build the pinned Kubernetes/etcd/helm binaries from Go modules (cached; cold: 15-40 min)
	$(TESTENV) build

testenv-up: testenv-build ## start the single-node cluster; prints export KUBECONFIG=...
	$(TESTENV) up

testenv-down: ## stop the cluster and undo every host change
	$(TESTENV) down

test-cluster: testenv-build ## cluster tests on a real local cluster: up, Rust cluster tests, e2e (images, chart, MCP), then down + verify-clean (always)
	@status=0; \
	$(TESTENV) up || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  TESTENV_KUBECONFIG="$$($(TESTENV) kubeconfig)" TESTENV_REQUIRED=1 \
	    $(CARGO) test -p testenv --test cluster -p converse-operator --test controller --test crd_validation || status=$$?; \
	fi; \
	if [ $$status -eq 0 ]; then CARGO="$(CARGO)" ./scripts/e2e.sh || status=$$?; fi; \
	$(TESTENV) down || status=$$?; \
	$(TESTENV) verify-clean || status=$$?; \
	exit $$status
