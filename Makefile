# lstm-bridge: `make demo` runs the demo, `make test` runs the tests. Each creates .venv by itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo bench golden test-live clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

# `make test` = the lint gate (ruff lint + format check, mypy), then the test suite.
test: venv lint
	$(PY) -m pytest -q -p no:cacheprovider

# ruff and mypy, configured in pyproject.toml (`ruff format` rewrites what `--check` refuses).
lint: venv
	$(VENV)/bin/ruff check src tests tools benchmarks
	$(VENV)/bin/ruff format --check src tests tools benchmarks
	$(VENV)/bin/mypy

demo: venv
	$(VENV)/bin/lstm-bridge demo

bench: venv
	$(VENV)/bin/lstm-bridge bench

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache

# Fixture regeneration from the real frameworks (optional; never part of `make test`).
-include tools/golden.mk
