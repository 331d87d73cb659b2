# The index of the project's tasks. `make help` lists them.

CARGO ?= cargo

.PHONY: help deps run build test test-interop lint fmt check-docs testenv-build testenv-up testenv-down test-cluster bench images

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

# Container images (docs/IMAGES.md): static musl binaries on FROM scratch, built by buildah without
# network from the prebuilt binaries (the Dockerfiles' `image-prebuilt` stage), saved as docker-archives.
MUSL_TARGET := x86_64-unknown-linux-musl
IMAGES_DIR := target/images
IMAGE_REPO ?= ghcr.io/converse-on-kubernetes
IMAGE_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
GIT_COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

images: ## static musl binaries + FROM-scratch images (buildah, no network) as docker-archives in target/images
	@missing=""; command -v x86_64-linux-musl-gcc >/dev/null || missing="$$missing musl-tools"; \
	command -v buildah >/dev/null || missing="$$missing buildah"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make images: please install:$$missing (apt-get install$$missing)"; exit 1; fi; \
	  echo "make images: installing$$missing"; \
	  (apt-get install -y --no-install-recommends $$missing || (apt-get update && apt-get install -y --no-install-recommends $$missing)) >/dev/null; \
	fi
	rustup target add $(MUSL_TARGET)
	CONVERSE_GIT_COMMIT=$(GIT_COMMIT) $(CARGO) build --release --locked --target $(MUSL_TARGET) -p converse-server -p converse-operator
	@mkdir -p $(IMAGES_DIR) && cp /etc/ssl/certs/ca-certificates.crt $(IMAGES_DIR)/ca-certificates.crt
	@set -e; \
	work=$$(mktemp -d "$(CURDIR)/$(IMAGES_DIR)/.buildah.XXXXXX"); side=""; \
	for d in /var/lib/containers /run/containers; do [ -e $$d ] || side="$$side $$d"; done; \
	trap 'rm -rf "$$work" $$side' EXIT; \
	st="--storage-driver vfs --root $$work/root --runroot $$work/runroot"; \
	for p in server operator; do \
	  tag=$(IMAGE_REPO)/converse-$$p:$(IMAGE_VERSION); archive=$(IMAGES_DIR)/converse-$$p.tar; \
	  echo "==> $$tag"; \
	  TMPDIR=$$work BUILDAH_ISOLATION=chroot unshare -n buildah $$st bud --pull=never --isolation chroot \
	    --timestamp 0 --layers=false --target image-prebuilt \
	    --build-arg VERSION=$(IMAGE_VERSION) --build-arg GIT_COMMIT=$(GIT_COMMIT) \
	    -f $$p/Dockerfile -t $$tag . >$$work/bud-$$p.log 2>&1 || { cat $$work/bud-$$p.log; exit 1; }; \
	  rm -f $$archive; \
	  TMPDIR=$$work unshare -n buildah $$st push --quiet $$tag docker-archive:$$archive:$$tag; \
	  tar -tvf $$archive | awk -v a=$$archive '$$NF ~ /\.tar$$/ { s += $$3 } \
	    END { printf "    %s: %d bytes uncompressed (%.1f MB) in its layers\n", a, s, s / 1e6 }'; \
	done

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
