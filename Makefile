# The README's two commands are `make demo` and `make test`; both start with `make setup`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo demo-docker test test-host test-kernel test-docker lint unit integration bench clean images

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/teamd-lab demo

# the docker-compose lab: 5 hitless container restarts (an upgrade and a rollback by image among
# them) and `docker restart teamd` for contrast
demo-docker: images
	$(VENV)/bin/teamd-lab demo --runtime docker

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy teamd-shim/teamd_shim orchestrator swsscommon-stub/swsscommon

# host tiers first (unit, integration with redis-server + netns + OVS, docker: dockerd started
# and images built if needed), then the kernel tier (qemu, ~2.5-5 min); both run even if the
# first fails, and the exit status is non-zero if either failed
test: setup lint
	@rc=0; $(PY) -m pytest -q -rs || rc=1; \
	$(PY) tests/kernel/run_tier.py || rc=1; exit $$rc

test-host: setup
	$(PY) -m pytest -q -rs

# one qemu boot: the kernel pytest subset (tests/kernel) with the real team driver; the last
# line is `kernel tier: N passed, N failed`
test-kernel: setup
	$(PY) tests/kernel/run_tier.py

unit: setup
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
