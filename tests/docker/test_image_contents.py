"""The product image holds the product and nothing of the lab (CONTRIBUTING.md "Layers").

The lab (lab/teamd_lab) is its own distribution: the compose lab's wiring step runs it from the
`teamd-hitless/lab` image, built on top of the product image. Listed from the image itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

LIST = (
    "import importlib.metadata as m, sys; "
    "print('\\n'.join(sorted(d.metadata['Name'] for d in m.distributions()))); "
    "print('--'); print('\\n'.join(sorted({f.parts[0] for d in m.distributions() "
    "for f in (d.files or []) if f.suffix == '.py'})))"
)


def run_in(image: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, *cmd],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_product_image_holds_no_lab_code(engine: Any) -> None:
    out = run_in("teamd-hitless/teamd:latest", "python", "-c", LIST)
    assert out.returncode == 0, out.stderr
    dists, _, tops = out.stdout.partition("--\n")
    assert "teamd-hitless" in dists.split() and "teamd-hitless-lab" not in dists.split()
    assert {"teamd_shim", "orchestrator", "swsscommon"} <= set(tops.split())
    assert "teamd_lab" not in tops.split()
    # and no module of the lab hides in the product's packages under its own file name
    repo = Path(__file__).resolve().parents[2]
    product = {
        f.name for d in ("teamd-shim/teamd_shim", "orchestrator") for f in (repo / d).rglob("*.py")
    }
    lab_only = {f.name for f in (repo / "lab/teamd_lab").glob("*.py")} - product
    listed = run_in(
        "teamd-hitless/teamd:latest",
        "sh",
        "-c",
        "find / -xdev -name teamd_lab 2>/dev/null; "
        "find /opt/teamd-hitless -path '*site-packages/teamd_shim/*' -name '*.py' "
        "-o -path '*site-packages/orchestrator/*' -name '*.py'",
    )
    assert listed.returncode == 0, listed.stderr
    files = listed.stdout.split()
    assert files and not [f for f in files if f.endswith("/teamd_lab")]
    assert not [f for f in files if f.rsplit("/", 1)[-1] in lab_only], lab_only
    imp = run_in("teamd-hitless/teamd:latest", "python", "-c", "import teamd_lab")
    assert imp.returncode != 0 and "No module named 'teamd_lab'" in imp.stderr


def test_the_lab_image_runs_the_wiring_step(engine: Any) -> None:
    out = run_in("teamd-hitless/lab:latest", "python", "-m", "teamd_lab.cli", "wire", "--help")
    assert out.returncode == 0, out.stderr
    assert "--peer-pid" in out.stdout


def test_the_product_image_holds_no_redis_server_and_no_open_vswitch(engine: Any) -> None:
    """The teamd container runs the shim and warm-restart: Redis and Open vSwitch are the
    compose lab's (the partner image), never the product's."""
    found = run_in(
        "teamd-hitless/teamd:latest",
        "sh",
        "-c",
        "for b in redis-server redis-cli ovs-vswitchd ovsdb-server ovs-vsctl ovs-appctl; do "
        "command -v $b; done; "
        "find / -xdev \\( -name 'redis-server*' -o -name 'ovs-*' -o -name 'ovsdb-*' \\) "
        "\\( -type f -o -type l \\) 2>/dev/null; "
        "dpkg-query -W -f '${Package}\\n' 2>/dev/null | grep -E '^(redis|openvswitch)' || true",
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [], found.stdout
    # and the partner image, which the compose lab's redis and partner run, still has them
    lab = run_in(
        "teamd-hitless/partner:latest",
        "sh",
        "-c",
        "for b in redis-server ovs-vsctl; do command -v $b; done",
    )
    assert lab.returncode == 0 and len(lab.stdout.split()) == 2, lab.stdout + lab.stderr


def test_the_product_image_has_sonics_teamdctl_at_its_path(engine: Any) -> None:
    """SONiC's host wrapper runs `docker exec -i teamd teamdctl ...`, and its scripts call
    `/usr/bin/teamdctl` by path: the image answers there, and without a shim running it says
    so instead of hanging (exit 1, the alias named)."""
    helped = run_in("teamd-hitless/teamd:latest", "/usr/bin/teamdctl", "-h")
    assert helped.returncode == 0 and "state" in helped.stdout + helped.stderr, helped
    asked = run_in("teamd-hitless/teamd:latest", "/usr/bin/teamdctl", "PortChannel0001", "state")
    assert asked.returncode == 1, asked
    assert "/run/teamd-shim/owner" in asked.stderr, asked.stderr


def test_the_product_image_has_a_critical_processes_file_that_lists_nothing(engine: Any) -> None:
    """SONiC reads `/etc/supervisor/critical_processes` from a feature's container (system-health
    and the exit listener); ours runs no supervisord, so it lists no program, only why."""
    got = run_in("teamd-hitless/teamd:latest", "cat", "/etc/supervisor/critical_processes")
    assert got.returncode == 0, got.stderr
    lines = [ln for ln in got.stdout.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("#") for ln in lines), got.stdout
