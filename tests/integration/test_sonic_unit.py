"""containers/sonic/: the systemd unit passes `systemd-analyze verify`, the scripts parse.

`systemd-analyze verify` (Debian's `systemd` package, which `make setup` installs) loads the
unit as systemd would: it resolves every Exec path and every unit named in After=/Requires=/
BindsTo=, and warns about unknown keys and bad values. Missing units and executables are
errors (exit 1), unknown keys only warnings (exit 0 with a line on stderr), so the test wants
exit 0 *and* nothing said. Found by trying here:
- `--root=DIR` is no help: verify then looks for everything under DIR, sysinit.target and
  basic.target included, so the root needs half of a system;
- so the unit is verified as a copy whose Exec paths (/usr/local/bin/teamd.sh) point at the
  repository's script, in a unit directory put before the default search path with
  `SYSTEMD_UNIT_PATH=DIR:` (the trailing colon keeps the default path after it, so
  sysinit.target & co. come from the machine), next to stand-ins for SONiC's own units
  (sonic.target, swss.service, config-setup.service) and featured's auto_restart drop-in;
- `User=admin` is not resolved by verify (no such user here; SONiC has it).
Nothing is skipped: without systemd-analyze the test fails and says how to get it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SONIC = REPO / "containers" / "sonic"


def _verify(tmp_path: Path, unit_text: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail(
            "systemd-analyze is not installed: `make setup` installs Debian's systemd "
            "package (scripts/setup.sh), or apt-get install systemd",
            pytrace=False,
        )
    units = tmp_path / "units"
    units.mkdir()
    (units / "teamd.service").write_text(
        unit_text.replace("/usr/local/bin/teamd.sh", str(SONIC / "teamd.sh"))
    )
    # SONiC's units the unit names, as stand-ins (their content is SONiC's business)
    (units / "sonic.target").write_text("[Unit]\nDescription=stand-in for SONiC's\n")
    for name in ("swss", "config-setup"):
        (units / f"{name}.service").write_text(
            "[Unit]\nDescription=stand-in for SONiC's\n[Service]\nExecStart=/bin/true\n"
        )
    # what featured writes for FEATURE|teamd auto_restart=enabled (sonic-host-services)
    (units / "teamd.service.d").mkdir()
    (units / "teamd.service.d" / "auto_restart.conf").write_text("[Service]\nRestart=always\n")
    return subprocess.run(
        [exe, "verify", str(units / "teamd.service")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"SYSTEMD_UNIT_PATH": f"{units}:", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = (SONIC / "teamd.service").read_text()
    assert "ExecStart=/usr/local/bin/teamd.sh wait" in unit  # the main process: the wait
    p = _verify(tmp_path, unit)
    assert p.returncode == 0 and p.stdout + p.stderr == "", p.stdout + p.stderr


def test_verify_sees_what_would_be_wrong(tmp_path: Path) -> None:
    """The check itself can fail: a misspelt key and a missing script are reported."""
    unit = (SONIC / "teamd.service").read_text()
    bad = _verify(tmp_path, unit.replace("RestartSec=", "RestartSek="))
    assert "Unknown key" in bad.stderr, bad.stderr
    (tmp_path / "units").rename(tmp_path / "first")
    gone = _verify(tmp_path, unit.replace("teamd.sh wait", "teamd-nope.sh wait"))
    assert gone.returncode != 0 and "teamd-nope.sh" in gone.stderr, gone.stderr


@pytest.mark.parametrize("script", ["teamd.sh", "teamdctl"])
def test_the_scripts_parse_and_say_their_usage(script: str) -> None:
    path = SONIC / script
    assert path.stat().st_mode & 0o111, f"{path} is not executable"
    p = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    if script == "teamd.sh":
        u = subprocess.run([str(path), "bogus"], capture_output=True, text=True, timeout=10)
        assert u.returncode == 1 and "Usage:" in u.stdout and "start|wait|stop" in u.stdout
