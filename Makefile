# Set-up and checks. `make demo` and `make test` each build .venv from scratch when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# the tests run across the machine's cores (pytest-xdist), each test file on one
# worker: a module's shared fixtures (an MLflow server, trained runs) are made once
WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile

.PHONY: demo check test lint browser docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml constraints/test.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints/test.txt -e '.[test,torch]'
	touch $@ $(VENV)/.demo-installed

## demo: install mlx, train the quickstart experiment, then evaluate it on its test split
demo: $(VENV)/.demo-installed
	$(BIN)/mlx run-experiment --config examples/quickstart.yaml --json > $(VENV)/demo-run.json
	$(BIN)/mlx eval $$($(BIN)/python -c 'import json, sys; print(json.load(sys.stdin)["run_id"])' < $(VENV)/demo-run.json)

## lint: ruff and mypy
lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## browser: Debian's chromium for the report's browser test (as root with apt-get; else
## skipped quietly, and the test says why it skips)
browser:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		command -v chromium >/dev/null 2>&1 || \
		(apt-get update && apt-get install -y chromium); \
	fi

## check: lint, then the tests not marked slow (the fast tier, to run often)
check: lint
	$(PYTEST) -m "not slow"

## test: lint, then the whole test suite (what CI runs)
test: lint browser
	$(PYTEST)

## bench: benchmark suite against PyTorch, scikit-learn and other CLIs (see benchmarks/)
bench: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks

## docs: write the generated reference pages (docs/configuration-reference.md,
## docs/cli-reference.md) and redraw docs/learning-curves.png from a fresh run of the
## quickstart example
docs: $(VENV)/.test-installed
	$(BIN)/python docs/generate.py
	rm -rf outputs/docs-quickstart
	$(BIN)/mlx run-experiment --quiet --config examples/quickstart.yaml \
		--set output.directory=outputs/docs-quickstart
	$(BIN)/mlx plot outputs/docs-quickstart/quickstart-* -o docs/learning-curves.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
