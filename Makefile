# The two commands of the quick start: `make demo` and `make test`.
# Everything else here is set-up they share.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
UI_DIR := src/watchkeeper/web/ui
UI_STAMP := $(UI_DIR)/dist/.built
PYTEST_FLAGS ?= --run-slow --run-integration

.PHONY: setup ui demo test check lint typecheck pytest bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=25.1"
	$(PY) -m pip install -q -e . --group test --group lint
	touch $@

# The web UI's front-end libraries come from npm at build time; nothing minified is in git.
ui: $(UI_STAMP)

$(UI_STAMP): $(shell find $(UI_DIR)/src $(UI_DIR)/package.json $(UI_DIR)/build.mjs -type f 2>/dev/null)
	@if [ -f $(UI_DIR)/package.json ]; then \
	  if command -v npm >/dev/null 2>&1; then \
	    cd $(UI_DIR) && npm install --no-audit --no-fund --loglevel=error && npm run build; \
	  else echo "npm not found: the web UI is not built (the API still works)"; fi; \
	fi
	@mkdir -p $(UI_DIR)/dist && touch $@

demo: setup ui
	$(BIN)/watchkeeper demo

check: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# The examples in docstrings, then the test suite (its summary is the last line CI reads).
# src/ holds cli/test_rules.py, which is not a test module: python_files is narrowed so
# only doctests are collected there.
pytest: setup ui
	$(BIN)/python -m pytest --doctest-modules src -q -p no:cacheprovider \
	  -o python_files=__doctests_only__.py
	$(BIN)/python -m pytest $(PYTEST_FLAGS) -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

test: check pytest

# Every benchmark, side by side with the reference where it has one; BENCH_FLAGS=--quick
# for a short run. Figures go in benchmarks/README.md by hand.
BENCH_FLAGS ?=
bench: setup ui
	@for script in tsdb tsdb_head scrape exposition promql promql_engine api rules; do \
	  echo "== benchmarks/$$script.py"; \
	  $(BIN)/python benchmarks/$$script.py $(if $(filter --quick,$(BENCH_FLAGS)),$$( \
	    grep -q -- --quick benchmarks/$$script.py && echo --quick),) || exit 1; \
	done

clean:
	rm -rf $(VENV) $(UI_DIR)/node_modules $(UI_DIR)/dist .mypy_cache .ruff_cache
