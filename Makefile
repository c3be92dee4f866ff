# QR Pro. `make local` runs the local stack, `make test` runs every test;
# each installs what it needs on first use (.venv/ and node_modules/):
# `make local` only the local stack's packages (pyproject extra `local`, npm
# `dependencies`), `make test` everything (extra `dev`, npm devDependencies,
# Debian's chromium for the browser test).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCAL_STAMP := $(VENV)/.stamp-local
DEV_STAMP := $(VENV)/.stamp-dev
NODE_LOCAL_STAMP := node_modules/.stamp-local
NODE_STAMP := node_modules/.stamp-dev
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=
# Node.js 24 from node_modules (package.json, optionalDependencies) comes first on PATH: the CDK CLI
# and jsii (which every synth spawns) run on it; the machine's Node 20 is end of life.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# checkov pins boto3 1.35 (the functions' lock pins 1.44): it gets a venv of its own (tests/infra/test_checkov.py).
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(VENV)/checkov/.stamp-$(CHECKOV_VERSION)

.PHONY: install install-local local test lint unit integration e2e bench fuzz openapi clean

install: $(DEV_STAMP) $(NODE_STAMP) $(CHROMIUM) $(CHECKOV_STAMP)

install-local: $(LOCAL_STAMP) $(NODE_LOCAL_STAMP)

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)

# The runtime dependencies at the versions of requirements-lambda.lock (what Lambda runs):
# the tests and the local stack exercise the code with the same libraries
# (tests/infra/test_infra_bundling.py).
PINS := $(VENV)/lambda-pins.txt
$(PINS): requirements-lambda.lock | $(VENV)/bin/python
	sed -n 's/^\([A-Za-z0-9][A-Za-z0-9._-]*==[^ ]*\).*/\1/p' requirements-lambda.lock > $@

# The dev install includes the local one: skip it when a fresh dev install is there.
$(LOCAL_STAMP): pyproject.toml $(PINS)
	[ $(DEV_STAMP) -nt pyproject.toml ] && [ $(DEV_STAMP) -nt $(PINS) ] || \
	  $(BIN)/pip install --quiet --disable-pip-version-check -e '.[local]' -c $(PINS)
	touch $@

$(DEV_STAMP): pyproject.toml $(PINS)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' -c $(PINS)
	touch $@ $(LOCAL_STAMP)

$(NODE_LOCAL_STAMP): package.json package-lock.json
	[ $(NODE_STAMP) -nt package-lock.json ] || npm ci --omit=dev --no-audit --no-fund --loglevel=error
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@ $(NODE_LOCAL_STAMP)

$(CHECKOV_STAMP): | $(VENV)/bin/python
	test -x $(VENV)/checkov/bin/pip || $(PY) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet --disable-pip-version-check 'checkov==$(CHECKOV_VERSION)'
	touch $@

# Debian's chromium for the browser test of GET /docs (needs root, as CI has; ~20 s).
$(CHROMIUM):
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

local: install-local
	$(BIN)/qrpro local $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# pytest exits 5 when it collects no test: make treats that as the failure it is.
test: install lint
	$(BIN)/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: install
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

e2e: install
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# A longer contract-fuzzing pass than the one in `make test` (~4 minutes).
fuzz: install
	QRPRO_FUZZ_EXAMPLES=60 $(BIN)/pytest tests/e2e/test_fuzz.py $(PYTEST_ARGS)

# Regenerate docs/openapi.json from the code (tests/unit/test_openapi.py fails while they differ).
openapi: install-local
	$(BIN)/python -m lambdas.api.docs > docs/openapi.json

clean:
	rm -rf build cdk.out .mypy_cache .ruff_cache .pytest_cache .hypothesis

-include infra/infra.mk
