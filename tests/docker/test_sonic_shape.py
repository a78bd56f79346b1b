"""SONiC's own shape: teamd with `--net=host`, where "host" is the switch namespace.

A second dockerd is entered into the lab's DUT namespace (`nsenter --net=... dockerd`), so
`network_mode: host` of its containers means that namespace, as on a switch whose teamd
container uses the host network. One container handover there must be invisible to the partner
like every other; the orchestrator reaches that engine through DOCKER_HOST.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.docker_lab import IMAGE_REPO, remove_quietly
from helpers.lab_helpers import all_negotiated, counters, max_gaps, wait_for

from teamd_lab.holder import CTL_DIR_IN_CONTAINER, host_ctl_dir

pytestmark = pytest.mark.docker

ROOT = Path("/run/teamd-hitless-sonic-docker")  # exec root, socket, pid file
DATA = Path("/var/lib/teamd-hitless-sonic-docker")
SOCK = f"unix://{ROOT}/docker.sock"
WARM_RESTART = str(Path(sys.executable).parent / "warm-restart")


@pytest.fixture(scope="module")
def sonic(engine: Any, tmp_path_factory: pytest.TempPathFactory):
    import docker

    from teamd_lab.lab import Lab

    workdir = Path(tmp_path_factory.mktemp("sn"))
    lab = Lab(workdir, prefix="sn")
    lab.up(2, 2, shim_cmd=None, recorder=True)
    ROOT.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "dockerd-sonic.log", "wb")
    dockerd = subprocess.Popen(
        [
            "nsenter",
            f"--net=/run/netns/{lab.dut_ns}",
            "--",
            "dockerd",
            "--host",
            SOCK,
            "--data-root",
            str(DATA),
            "--exec-root",
            str(ROOT / "exec"),
            "--pidfile",
            str(ROOT / "dockerd.pid"),
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--live-restore",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client: Any = None
    try:

        def answers() -> bool:
            if dockerd.poll() is not None:
                raise AssertionError(
                    f"dockerd in {lab.dut_ns} exited: "
                    f"{(workdir / 'dockerd-sonic.log').read_text()[-2000:]}"
                )
            return docker.DockerClient(base_url=SOCK).ping()

        wait_for(answers, 30, f"a dockerd in {lab.dut_ns}")
        client = docker.DockerClient(base_url=SOCK, timeout=60)
        image = f"{IMAGE_REPO}:latest"
        if (
            not client.images.list(name=image)
            or client.images.get(image).id != engine.images.get(image).id
        ):
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            p = subprocess.run(
                ["docker", "-H", SOCK, "load", "-q"],
                stdin=save.stdout,
                capture_output=True,
                text=True,
                timeout=300,
            )
            save.wait(60)
            assert p.returncode == 0, p.stderr
        remove_quietly(client, "teamd", "teamd_bak")
        rd = str(workdir)
        client.containers.run(
            image,
            ["teamd-shim", "--redis", f"unix://{rd}/redis.sock"],
            name="teamd",
            network_mode="host",
            cap_add=["NET_ADMIN", "NET_RAW"],
            volumes={
                rd: {"bind": rd, "mode": "rw"},
                str(host_ctl_dir(workdir)): {"bind": CTL_DIR_IN_CONTAINER, "mode": "rw"},
            },
            detach=True,
        )
        wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 30, "negotiated")
        time.sleep(1.5)
        yield lab, client
    finally:
        if client is not None:
            remove_quietly(client, "teamd", "teamd_bak")
        dockerd.send_signal(signal.SIGTERM)
        try:
            dockerd.wait(30)
        except subprocess.TimeoutExpired:
            dockerd.kill()
        log.close()
        lab.down()
        shutil.rmtree(DATA, ignore_errors=True)  # one image (~180 MB); loaded again next time


def test_handover_with_host_network_of_the_switch_namespace(sonic: tuple[Any, Any]) -> None:
    lab, client = sonic
    old = client.containers.get("teamd")
    assert old.attrs["HostConfig"]["NetworkMode"] == "host"
    before, offset, start = counters(lab), lab.ovs.log_offset(), time.monotonic()
    p = subprocess.run(
        [WARM_RESTART, "--redis", lab.redis_url, "teamd", "--yes", "--json"],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "DOCKER_HOST": SOCK},
    )
    out = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {"raw": p.stderr}
    assert p.returncode == 0 and out["result"] == "completed", out
    time.sleep(1.5)
    new = client.containers.get("teamd")
    assert new.id != old.id and new.attrs["HostConfig"]["NetworkMode"] == "host"
    assert [c.name for c in client.containers.list(all=True)] == ["teamd"]
    gaps = max_gaps(lab, start, time.monotonic())
    assert len(gaps) == 4 and max(gaps.values()) <= 1.1, gaps
    assert counters(lab) == before and lab.ovs.member_events(offset) == []
    print(
        f"\nSONiC shape (host network = switch namespace): largest PDU gap "
        f"{max(gaps.values()):.3f} s, {out['wall_s']:.2f} s"
    )
