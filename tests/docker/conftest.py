"""Docker tier fixtures (see docker_lab.py): real dockerd, never skipped."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from helpers.docker_lab import LAGS, MEMBERS, UPGRADE_VERSION, HolderLab, run_step


@pytest.fixture(scope="session")
def engine() -> Any:
    """dockerd answering on the default socket, both image tags built (idempotent)."""
    run_step(["bash", "scripts/docker_engine.sh"], "starting the Docker engine", 300)
    # base, teamd:<version> + :latest, partner, and the upgrade tag UPGRADE_VERSION
    run_step(
        ["bash", "scripts/build_images.sh", "--upgrade-version", UPGRADE_VERSION],
        "building the images",
        900,
    )
    import docker

    client = docker.from_env(timeout=60)
    client.ping()
    return client


@pytest.fixture(scope="module")
def dlab(engine: Any, tmp_path_factory: pytest.TempPathFactory):
    from helpers.lab_helpers import all_negotiated, wait_for

    # unix socket paths are limited to 107 bytes: keep the run dir short
    workdir = Path(tmp_path_factory.mktemp("dk"))
    d = HolderLab(engine, workdir, prefix="dk")
    try:
        d.up(LAGS, MEMBERS)
        d.run_teamd()
        wait_for(lambda: all_negotiated(d.lab.ovs.bond_show()), 30.0, "all bonds negotiated")
        time.sleep(1.5)
        yield d
    finally:
        d.down()
