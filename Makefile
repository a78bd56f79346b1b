# The README's two commands are `make demo` and `make test`; both start with `make setup`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-host test-kernel lint unit integration bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/warm-restart demo

lint: setup
	$(VENV)/bin/ruff check .

# the host tiers (unit, integration with redis-server + netns + OVS). The kernel tier
# (`make test-kernel`) joins `make test` once it passes: see README "Kernel tier" (work in progress)
test: setup lint
	$(PY) -m pytest -q -rs

test-host: setup
	$(PY) -m pytest -q -rs

# one qemu boot: the kernel pytest subset (tests/kernel) with the real team driver; the last
# line is `kernel tier: N passed, N failed`
test-kernel: setup
	$(PY) tests/kernel/run_tier.py

unit: setup
	$(PY) -m pytest -q tests/unit

integration: setup
	$(PY) -m pytest -q -rs tests/integration

bench: setup
	$(PY) bench/steady_state.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
