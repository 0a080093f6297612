# Set-up and checks. `make demo` and `make test` each build .venv from scratch when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

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

## test: lint, then the whole test suite
test: lint
	$(BIN)/python -m pytest -q

## bench: benchmark suite against PyTorch, scikit-learn and other CLIs (see benchmarks/)
bench: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
