"""Docker tier helpers: real dockerd, images built offline by `make images`; never skipped.

If Docker cannot run here, every test of the tier FAILS with the reason (a tier that vanishes
from CI silently would be worse than none). The lab is the host-tier lab (redis, OVS partner in
its own namespace, partner-side PDU recorder) whose DUT namespace is a holder container's, so the
teamd containers join it with `--network container:<holder>`, the shape of the compose lab.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

IMAGE_REPO = "teamd-hitless/teamd"
UPGRADE_VERSION = os.environ.get("TEAMD_HITLESS_UPGRADE_VERSION", "0.1.1.dev1")
LAGS, MEMBERS = 4, 2
TEAMD = "teamd"  # the container name SONiC uses


def run_step(argv: list[str], what: str, timeout: float) -> str:
    try:
        p = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"docker tier: {what} did not finish within {timeout:.0f} s", pytrace=False)
    if p.returncode != 0:
        pytest.fail(f"docker tier cannot run: {what} failed (exit {p.returncode}):\n"
                    f"{(p.stdout + p.stderr)[-3000:]}", pytrace=False)
    return p.stdout


def remove_quietly(client: Any, *names: str) -> None:
    import docker.errors

    for n in names:
        try:
            client.containers.get(n).remove(force=True)
        except docker.errors.NotFound:
            pass


class DockerLab:
    """The lab plus a holder container and the user's `teamd` container."""

    def __init__(self, client: Any, workdir: Path, prefix: str) -> None:
        from orchestrator.lab.lab import Lab

        self.client = client
        self.workdir = workdir
        self.prefix = prefix
        self.holder_name = f"{prefix}-holder"
        self.lab = Lab(workdir, prefix=prefix)
        self.holder: Any = None

    @property
    def rundir(self) -> Path:
        return self.workdir

    @property
    def redis_url(self) -> str:
        return self.lab.redis_url

    def up(self) -> DockerLab:
        for n in (TEAMD, TEAMD + "_bak"):
            try:
                self.client.containers.get(n)
                pytest.fail(f"a container named {n!r} exists on this engine; the docker tier "
                            "uses that name (as SONiC does): remove it first", pytrace=False)
            except Exception as e:
                if "NotFound" not in type(e).__name__:
                    raise
        remove_quietly(self.client, self.holder_name)
        # the holder only keeps the switch-side network namespace alive; never restarted
        self.holder = self.client.containers.run(
            f"{IMAGE_REPO}:latest", ["sleep", "infinity"], name=self.holder_name,
            network_mode="none", detach=True, labels={"teamd-hitless.test": self.prefix})
        self.holder.reload()
        pid = int(self.holder.attrs["State"]["Pid"])
        self.lab.up(LAGS, MEMBERS, shim_cmd=None, recorder=True, dut_netns_pid=pid)
        return self

    def run_teamd(self, image: str = f"{IMAGE_REPO}:latest") -> Any:
        """Exactly what a user types (issue 8 item 6): no --init, no --ctl-dir, RUNDIR only."""
        rd = str(self.rundir)
        p = subprocess.run(["docker", "run", "-d", "--name", TEAMD, "--network",
                            f"container:{self.holder_name}", "--cap-add", "NET_ADMIN",
                            "--cap-add", "NET_RAW", "-v", f"{rd}:{rd}", image, "teamd-shim",
                            "--redis", f"unix://{rd}/redis.sock"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return self.client.containers.get(TEAMD)

    def down(self) -> None:
        remove_quietly(self.client, TEAMD, TEAMD + "_bak")
        for c in self.client.containers.list(all=True,
                                             filters={"label": "teamd-hitless.test"}):
            if c.name != self.holder_name:
                c.remove(force=True)
        try:
            self.lab.down()
        finally:
            remove_quietly(self.client, self.holder_name)
            for img in self.client.images.list(name=IMAGE_REPO):
                for tag in img.tags:
                    if tag.startswith(f"{IMAGE_REPO}:test-"):  # built by the fault tests
                        self.client.images.remove(tag)


