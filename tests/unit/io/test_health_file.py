"""The health file and the image's healthcheck one-liner that reads it (no Python per check)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from teamd_shim.io import health_file
from teamd_shim.io.health_file import HealthFile, state_of, status_line, write_atomically

DOCKERFILE = Path(__file__).resolve().parents[3] / "containers" / "teamd" / "Dockerfile"


def test_the_line_says_active_or_ready_standby_and_when() -> None:
    assert status_line("teamd-shim", "active", False, 1700000000.1234) == (
        "active teamd-shim 1700000000123\n"
    )
    assert state_of("standby", True) == "ready-standby"
    assert state_of("standby", False) == "standby"
    assert state_of("yielded", True) == "yielded" and state_of("retired", False) == "retired"


def test_the_file_is_replaced_atomically_and_created_with_its_dir(tmp_path: Path) -> None:
    path = tmp_path / "h" / "status"
    write_atomically(str(path), "active a 1\n")
    ino = path.stat().st_ino
    write_atomically(str(path), "active a 2\n")
    assert path.read_text() == "active a 2\n"
    assert path.stat().st_ino != ino  # a new file renamed over it, never rewritten in place
    assert os.listdir(path.parent) == ["status"]  # no temporary left
    assert (path.parent.stat().st_mode & 0o777) == 0o700


def test_no_env_no_file_and_a_failing_write_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def status() -> tuple[str, str, bool]:
        return ("t", "active", False)

    assert HealthFile.from_env(status, env={}) is None
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    h = HealthFile.from_env(status, env={health_file.ENV: str(ro / "x" / "status")})
    assert h is not None
    if os.geteuid() == 0:  # root writes anywhere: point it at a file instead of a directory
        (tmp_path / "f").write_text("")
        h.path = str(tmp_path / "f" / "status")
    with caplog.at_level(logging.WARNING):
        h.write()
        h.write()
    assert len([r for r in caplog.records if "health file" in r.message]) == 1


def test_the_tick_rewrites_it_every_second_and_stop_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "status"
    state = {"role": "standby", "ready": False}
    h = HealthFile(str(path), lambda: ("n", state["role"], bool(state["ready"])), clock=lambda: 5.0)

    async def go() -> None:
        h.start(asyncio.get_running_loop())
        assert path.read_text() == "standby n 5000\n"
        state["ready"] = True
        await asyncio.sleep(health_file.EVERY_S + 0.2)
        assert path.read_text() == "ready-standby n 5000\n"
        h.stop()

    asyncio.run(go())
    assert not path.exists()


def _healthcheck() -> str:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    m = re.search(r"^HEALTHCHECK .*?\bCMD (.*)$", text, re.M)
    assert m, "no HEALTHCHECK ... CMD in containers/teamd/Dockerfile"
    return m.group(1)


@pytest.mark.parametrize(
    "line,age_s,healthy",
    [
        ("active teamd-shim", 0.2, True),
        ("ready-standby teamd-shim~2", 1.0, True),
        ("standby teamd-shim~2", 0.2, False),  # not READY
        ("yielded teamd-shim", 0.2, False),
        ("active teamd-shim", 3.5, False),  # stale: the loop stopped writing
        (None, 0, False),  # no file
    ],
)
def test_the_images_healthcheck_reads_the_file_with_sh_and_date(
    tmp_path: Path, line: str | None, age_s: float, healthy: bool
) -> None:
    path = tmp_path / "status"
    if line is not None:
        path.write_text(f"{line} {int((time.time() - age_s) * 1000)}\n")
    p = subprocess.run(
        ["/bin/sh", "-c", _healthcheck()],
        env={"PATH": "/usr/bin:/bin", health_file.ENV: str(path)},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert (p.returncode == 0) is healthy, (p.returncode, p.stdout, p.stderr)
    if line is not None:
        assert p.stdout.startswith(line + " (written "), p.stdout
