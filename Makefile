# QR Pro. `make local` runs the local stack, `make test` runs every test;
# both install what they need on first use (.venv/ and node_modules/).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.stamp-installed
NODE_STAMP := node_modules/.stamp-installed
PYTEST_ARGS ?=

.PHONY: install local test lint unit integration e2e bench fuzz clean

install: $(PY_STAMP) $(NODE_STAMP)

# The runtime dependencies at the versions of requirements-lambda.lock (what Lambda runs):
# the tests exercise the code with the same libraries (tests/infra/test_infra_bundling.py).
$(PY_STAMP): pyproject.toml requirements-lambda.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	sed -n 's/^\([A-Za-z0-9][A-Za-z0-9._-]*==[^ ]*\).*/\1/p' requirements-lambda.lock > $(VENV)/lambda-pins.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' -c $(VENV)/lambda-pins.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

local: install
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

clean:
	rm -rf build cdk.out .mypy_cache .ruff_cache .pytest_cache .hypothesis

-include infra/infra.mk
