# The index of the project's tasks. `make help` lists them.

CARGO ?= cargo

.PHONY: help run build test test-interop lint fmt check-docs bench

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

run: ## run converse-server over HTTP on 127.0.0.1:3157/mcp (set a provider key first)
	$(CARGO) run --release -p converse-server

build: ## build every crate (release)
	$(CARGO) build --release --workspace

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint ## the whole test suite (what CI runs)
	$(CARGO) test --workspace
	$(MAKE) test-interop

test-interop: ## official TypeScript MCP clients + conformance suite against the server (installs them with npm ci)
	CARGO="$(CARGO)" ./interop/run.sh

bench: ## load benchmark vs the Node.js converse-mcp-server on a fake provider (a few minutes; docs/PERFORMANCE.md)
	CARGO="$(CARGO)" ./bench/run.sh

fmt: ## format the code
	$(CARGO) fmt --all
