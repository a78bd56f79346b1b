# The README's two commands are `make demo` and `make test`; both start with `make setup`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup venv gate demo demo-docker test test-host test-kernel test-docker lint unit integration bench clean images

setup:
	@bash scripts/setup.sh

# the venv alone (no root, no apt): enough for lint and unit
venv:
	@bash scripts/setup.sh --venv-only

demo: setup
	$(VENV)/bin/teamd-lab demo

# the docker-compose lab: 5 hitless container restarts (an upgrade and a rollback by image among
# them) and `docker restart teamd` for contrast
demo-docker: images
	$(VENV)/bin/teamd-lab demo --runtime docker

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# the fast gate: lint and the pure unit tests, no root, under a minute; `make test` stops here
# when it fails
gate: lint unit

# the fast gate first (stops here on failure), then the host tiers (integration with
# redis-server + netns + OVS, docker: dockerd started and images built if needed), then the
# kernel tier (qemu, ~2.5-5 min); the tiers both run even if the first fails, and the exit
# status is non-zero if either failed
test: setup gate
	@rc=0; $(PY) -m pytest -q -rs tests/integration tests/docker || rc=1; \
	$(PY) tests/kernel/run_tier.py || rc=1; exit $$rc

test-host: setup
	$(PY) -m pytest -q -rs

# one qemu boot: the kernel pytest subset (tests/kernel) with the real team driver; the last
# line is `kernel tier: N passed, N failed`
test-kernel: setup
	$(PY) tests/kernel/run_tier.py

unit: venv
	$(PY) -m pytest -q tests/unit

test-docker: setup
	$(PY) -m pytest -q -rs tests/docker

integration: setup
	$(PY) -m pytest -q -rs tests/integration

bench: setup
	$(PY) bench/steady_state.py

# container images, offline (containers/README.md): Docker engine (started if none answers),
# base from Debian packages, teamd:<version> + :latest, partner:<version>, the upgrade-test tag
images: setup
	@bash scripts/docker_engine.sh
	@bash scripts/build_images.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
