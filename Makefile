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
PYTEST_ARGS ?=

export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test test-unit test-integration test-system lint protos bench clean help

help:
	@echo "make run    - install what is missing, then start the whole stack (Ctrl-C stops it)"
	@echo "make test   - install what is missing, then run the whole test suite"
	@echo "make lint   - buf lint + buf breaking, import-linter, ruff, mypy"
	@echo "make protos - regenerate Python code and .pyi stubs from protos/"
	@echo "make bench  - run every benchmark (BENCH=<name> runs one), one JSON line per metric"

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Crucible needs Python 3.11 or newer as $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(STATE)/tools
	$(STATE)/tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard */pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)
	$(UV) sync --frozen --python $(PYTHON) --quiet
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

install: $(VENV)/.synced $(PROTO_STAMP)

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

bench: install
	$(PY) -m tests.bench $(BENCH)

clean:
	rm -rf $(VENV) $(STATE)/tools $(PROTO_STAMP)
	find protos/crucible -name '*_pb2*.py*' -delete
