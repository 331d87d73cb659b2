# The index of the project's tasks. `make help` lists them.

CARGO ?= cargo

.PHONY: help deps run build test test-interop lint fmt check-docs testenv-build testenv-up testenv-down test-cluster bench

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# Debian packages the tests use; installed when missing (needs root, as in CI).
DEB_DEPS := redis-server openssl

deps: ## install the system packages the tests need (redis-server, openssl) when missing
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

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: deps lint ## the whole test suite (what CI runs)
	$(CARGO) test --workspace
	$(MAKE) test-interop
	$(MAKE) test-cluster

test-interop: ## official TypeScript MCP clients (incl. auth against oidc-provider) + conformance suite (installs them with npm ci)
	CARGO="$(CARGO)" ./interop/run.sh

bench: ## load benchmark vs the Node.js converse-mcp-server on a fake provider (a few minutes; docs/PERFORMANCE.md)
	CARGO="$(CARGO)" ./bench/run.sh

fmt: ## format the code
	$(CARGO) fmt --all

# The local Kubernetes cluster (see docs/TESTENV.md). The node needs root.
TESTENV ?= $(CARGO) run -q -p testenv --

testenv-build: ## build the pinned Kubernetes/etcd/helm binaries from Go modules (cached; cold: 15-40 min)
	$(TESTENV) build

testenv-up: testenv-build ## start the single-node cluster; prints export KUBECONFIG=...
	$(TESTENV) up

testenv-down: ## stop the cluster and undo every host change
	$(TESTENV) down

test-cluster: testenv-build ## cluster tests on a real local cluster: up, tests, then down + verify-clean (always)
	@status=0; \
	$(TESTENV) up || status=$$?; \
	if [ $$status -eq 0 ]; then \
	  TESTENV_KUBECONFIG="$$($(TESTENV) kubeconfig)" TESTENV_REQUIRED=1 \
	    $(CARGO) test -p testenv --test cluster -p converse-operator --test controller --test crd_validation || status=$$?; \
	fi; \
	$(TESTENV) down || status=$$?; \
	$(TESTENV) verify-clean || status=$$?; \
	exit $$status
