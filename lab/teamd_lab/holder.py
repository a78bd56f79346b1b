"""The host-tier lab with teamd in a container (docker tier, bench/container_handover.py).

The lab (redis, OVS partner in its own namespace, partner-side PDU recorder) gets its DUT
namespace from a *holder* container (`network_mode: none`, never restarted), so teamd
containers join it with `--network container:<holder>`: the compose lab's shape, with the
judging instruments of the host tier. `run_teamd` starts the shim exactly as a user would by
hand (no --init, no --ctl-dir): the run dir (the Redis socket's) and a dedicated control-socket
dir `RUNDIR/teamd-shim` (0750, root) mounted on the shim's default `/run/teamd-shim`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from teamd_lab.lab import Lab, LabError

IMAGE_REPO = "teamd-hitless/teamd"
TEAMD = "teamd"  # the container name SONiC uses
CTL_DIR_IN_CONTAINER = "/run/teamd-shim"  # the shim's default --ctl-dir, in a container too


def host_ctl_dir(rundir: Path) -> Path:
    """The host directory mounted on the teamd containers' /run/teamd-shim: root only (0750),
    never the Redis socket's directory itself (hld §11.2)."""
    d = Path(rundir) / "teamd-shim"
    d.mkdir(mode=0o750, exist_ok=True)
    os.chmod(d, 0o750)
    return d


def remove_quietly(client: Any, *names: str) -> None:
    import docker.errors

    for n in names:
        try:
            client.containers.get(n).remove(force=True)
        except docker.errors.NotFound:
            pass


class HolderLab:
    """The lab plus a holder container and the user's `teamd` container."""

    def __init__(self, client: Any, workdir: Path, prefix: str) -> None:
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

    def up(self, lags: int = 4, members: int = 2) -> HolderLab:
        import docker.errors

        for n in (TEAMD, TEAMD + "_bak"):
            try:
                self.client.containers.get(n)
            except docker.errors.NotFound:
                continue
            raise LabError(
                f"a container named {n!r} exists on this engine; this lab uses that "
                "name (as SONiC does): remove it first"
            )
        remove_quietly(self.client, self.holder_name)
        # the holder only keeps the switch-side network namespace alive; never restarted
        self.holder = self.client.containers.run(
            f"{IMAGE_REPO}:latest",
            ["sleep", "infinity"],
            name=self.holder_name,
            network_mode="none",
            detach=True,
            labels={"teamd-hitless.test": self.prefix},
        )
        self.holder.reload()
        pid = int(self.holder.attrs["State"]["Pid"])
        self.lab.up(lags, members, shim_cmd=None, recorder=True, dut_netns_pid=pid)
        return self

    def run_teamd(self, image: str = f"{IMAGE_REPO}:latest") -> Any:
        """Exactly what a user types (issue 8 item 6): no --init, no --ctl-dir; RUNDIR for the
        Redis socket and RUNDIR/teamd-shim on /run/teamd-shim for the control sockets."""
        rd = str(self.rundir)
        ctl = str(host_ctl_dir(self.rundir))
        p = subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                TEAMD,
                "--network",
                f"container:{self.holder_name}",
                # least privilege (README): nothing but what LACP on raw sockets and the team
                # netlink family need, and no way to gain more
                "--cap-drop",
                "ALL",
                "--cap-add",
                "NET_ADMIN",
                "--cap-add",
                "NET_RAW",
                "--security-opt",
                "no-new-privileges:true",
                # nothing to write but the health file (the image's healthcheck reads it)
                "--read-only",
                "--tmpfs",
                "/run/teamd-health:size=64k,mode=0700",
                "-v",
                f"{rd}:{rd}",
                "-v",
                f"{ctl}:{CTL_DIR_IN_CONTAINER}",
                image,
                "teamd-shim",
                "--redis",
                f"unix://{rd}/redis.sock",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if p.returncode != 0:
            raise LabError(f"docker run teamd failed: {p.stderr.strip()}")
        return self.client.containers.get(TEAMD)

    def down(self) -> None:
        remove_quietly(self.client, TEAMD, TEAMD + "_bak")
        for c in self.client.containers.list(all=True, filters={"label": "teamd-hitless.test"}):
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
