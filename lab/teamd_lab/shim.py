"""The command line the lab uses to start a teamd-shim inside the DUT namespace."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from teamd_lab.lab import Lab


def shim_executable() -> str:
    """The teamd-shim next to this interpreter (the venv), else the one on PATH."""
    here = Path(sys.executable).parent / "teamd-shim"
    if here.exists():
        return str(here)
    found = shutil.which("teamd-shim")
    if found is None:
        raise FileNotFoundError("teamd-shim is not installed: run `make setup`")
    return found


def shim_command(lab: Lab, *, name: str = "teamd", extra: list[str] | None = None) -> list[str]:
    """`{...}` tokens are expanded by Lab.shim_argv when the shim is started."""
    del lab  # the tokens below are lab-relative; kept as a parameter for symmetry with callers
    return [
        shim_executable(),
        "--redis",
        "{redis_url}",
        "--ctl-dir",
        "{workdir}/ctl",
        "--name",
        name,
        *(extra or []),
    ]
