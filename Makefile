# The README's two commands are `make demo` and `make test`; both start with `make setup`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint unit integration bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/warm-restart demo

lint: setup
	$(VENV)/bin/ruff check .

test: setup lint
	$(PY) -m pytest -q -rs

unit: setup
	$(PY) -m pytest -q tests/unit

integration: setup
	$(PY) -m pytest -q -rs tests/integration

bench: setup
	$(PY) bench/steady_state.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
