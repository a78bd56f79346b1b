"""The product wheel holds the product only; the lab's wheel holds the lab only.

Built from a copy of the tree (setuptools writes build/ and *.egg-info next to its input), with
the venv's setuptools and no index: what `pip wheel .` would ship.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")


def build_wheel(src: Path, out: Path) -> list[str]:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


def tops(names: list[str]) -> set[str]:
    return {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}


def test_the_product_wheel_holds_no_lab_code(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / f, src / f)
    for d in ("teamd-shim", "orchestrator", "lab"):
        shutil.copytree(REPO / d, src / d, ignore=IGNORE)
    names = build_wheel(src, tmp_path / "out")
    assert tops(names) == {"teamd_shim", "orchestrator"}
    assert not [n for n in names if "teamd_lab" in n or n.endswith(("slowproto.py", "demo.py"))]
    assert "teamd_shim/lacp/pdu.py" in names and "orchestrator/handover.py" in names
    # the commands it installs: SONiC's callers run `teamdctl` (the image links /usr/bin/ to it)
    (wheel,) = (tmp_path / "out").glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        (ep,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        scripts = z.read(ep).decode()
    for line in ("teamd-shim = teamd_shim.cli:main", "teamdctl = teamd_shim.cli:teamdctl_main"):
        assert line in scripts, scripts


def test_the_lab_wheel_holds_the_lab_only(tmp_path: Path) -> None:
    src = tmp_path / "lab"
    shutil.copytree(REPO / "lab", src, ignore=IGNORE)
    names = build_wheel(src, tmp_path / "out")
    assert tops(names) == {"teamd_lab"}
    assert "teamd_lab/recorder.py" in names
