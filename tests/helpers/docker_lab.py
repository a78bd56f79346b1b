"""Docker tier helpers: real dockerd, images built offline by `make images`; never skipped.

If Docker cannot run here, every test of the tier FAILS with the reason (a tier that vanishes
from CI silently would be worse than none). The lab is the host-tier lab (redis, OVS partner in
its own namespace, partner-side PDU recorder) whose DUT namespace is a holder container's, so the
teamd containers join it with `--network container:<holder>`, the shape of the compose lab.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from teamd_lab.holder import IMAGE_REPO, TEAMD, HolderLab, remove_quietly

REPO = Path(__file__).resolve().parents[2]

__all__ = ["IMAGE_REPO", "TEAMD", "HolderLab", "remove_quietly"]
UPGRADE_VERSION = os.environ.get("TEAMD_HITLESS_UPGRADE_VERSION", "0.1.1.dev1")
LAGS, MEMBERS = 4, 2


def run_step(argv: list[str], what: str, timeout: float) -> str:
    try:
        p = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"docker tier: {what} did not finish within {timeout:.0f} s", pytrace=False)
    if p.returncode != 0:
        pytest.fail(
            f"docker tier cannot run: {what} failed (exit {p.returncode}):\n"
            f"{(p.stdout + p.stderr)[-3000:]}",
            pytrace=False,
        )
    return p.stdout
