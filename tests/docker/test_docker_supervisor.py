"""The supervisor with the docker runtime (hld §14): `docker kill teamd` and `docker pause teamd`
are taken over by the hot standby container, judged by Open vSwitch; afterwards the container
that owns the LAGs is the one named `teamd` again and the dead one is kept as `teamd_dead`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_lab import TEAMD, HolderLab, remove_quietly
from lab_helpers import all_negotiated, counters, max_gaps, wait_for
from teamd_shim.ownership import instance_alive

pytestmark = pytest.mark.docker

WARM_RESTART = str(Path(sys.executable).parent / "warm-restart")
STANDBY, DEAD = TEAMD + "_standby", TEAMD + "_dead"
KILL_BUDGET_S, HANG_BUDGET_S = 1.2, 1.5


@pytest.fixture(scope="module")
def sup(dlab: HolderLab) -> Iterator[subprocess.Popen[bytes]]:
    log = open(dlab.workdir / "supervisor.log", "wb")  # noqa: SIM115
    p = subprocess.Popen([WARM_RESTART, "--redis", f"unix://{dlab.rundir}/redis.sock",
                          "supervise", "--runtime", "docker"], stdout=log,
                         stderr=subprocess.STDOUT)
    try:
        yield p
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(15)
        log.close()
        print((dlab.workdir / "supervisor.log").read_text()[-4000:])
        for name in (STANDBY, DEAD):
            try:
                print(f"==== {name}\n" + dlab.client.containers.get(name).logs(
                    tail=60).decode(errors="replace"))
            except Exception:
                pass
        remove_quietly(dlab.client, STANDBY, DEAD)


def pidns(client: Any, name: str) -> str:
    ctr = client.containers.get(name)
    pid = int(ctr.attrs["State"].get("Pid") or 0)
    return os.readlink(f"/proc/{pid}/ns/pid") if pid and ctr.attrs["State"]["Running"] else ""


def pair(d: HolderLab) -> dict[str, Any] | None:
    """The owner runs in the container named teamd, a READY hot standby in teamd_standby."""
    r = d.lab.redis(6)
    owner = r.hget("TEAMD_OWNER_TABLE|teamd", "owner")
    live = {}
    for key in r.keys("TEAMD_SHIM_INSTANCE|*"):
        rec = r.hgetall(key)
        if instance_alive(rec) and rec.get("role"):
            live[key.split("|", 1)[1]] = rec
    try:
        ns_teamd, ns_sb = pidns(d.client, TEAMD), pidns(d.client, STANDBY)
    except Exception:
        return None
    act = [n for n, x in live.items() if x["role"] == "active" and x["pidns"] == ns_teamd]
    sb = [n for n, x in live.items() if x["role"] == "standby" and x.get("ready") == "true"
          and x.get("hot") == "true" and x["pidns"] == ns_sb]
    if len(act) != 1 or len(sb) != 1 or owner != act[0]:
        return None
    return {"active": act[0], "standby": sb[0],
            "teamd": d.client.containers.get(TEAMD).id,
            "standby_id": d.client.containers.get(STANDBY).id}


def whole(d: HolderLab) -> dict[str, Any]:
    return wait_for(lambda: pair(d), 40.0, "teamd active and a READY teamd_standby",
                    interval=0.1)


class Judge:
    def __init__(self, d: HolderLab) -> None:
        self.d = d
        self.before = counters(d.lab)
        self.offset = d.lab.ovs.log_offset()
        self.t0 = time.monotonic()

    def assert_invisible(self, budget: float) -> float:
        lab = self.d.lab
        gaps = max_gaps(lab, self.t0, time.monotonic())
        assert counters(lab) == self.before, "partner Link Expired/Defaulted moved"
        assert lab.ovs.member_events(self.offset) == []
        assert len(gaps) == 8 and max(gaps.values()) <= budget, gaps
        assert all_negotiated(lab.ovs.bond_show())
        return max(gaps.values())


def took_over(d: HolderLab, before: dict[str, Any]) -> bool:
    """The standby owns the LAGs, its container is named teamd, the old one teamd_dead."""
    r = d.lab.redis(6)
    if r.hget("TEAMD_OWNER_TABLE|teamd", "owner") != before["standby"]:
        return False
    names = {c.id: c.name for c in d.client.containers.list(all=True)}
    return names.get(before["standby_id"]) == TEAMD and names.get(before["teamd"]) == DEAD


def test_five_docker_kills_of_teamd_are_invisible(dlab: HolderLab, sup: Any,
                                                  summary: list[str]) -> None:
    whole(dlab)
    judge = Judge(dlab)
    for _ in range(5):
        p = whole(dlab)
        time.sleep(0.3 + (time.monotonic() % 0.7))
        dlab.client.api.kill(TEAMD, signal="SIGKILL")
        wait_for(lambda p=p: took_over(dlab, p), 15.0, "the standby container took over and "
                 "was renamed teamd")
    whole(dlab)
    worst = judge.assert_invisible(KILL_BUDGET_S)
    logs = dlab.client.containers.get(DEAD).logs(tail=5)  # kept for post-mortem
    assert logs is not None
    summary.append(f"supervised, docker: 5 x `docker kill teamd`: largest PDU gap {worst:.3f} s,"
                   " 0 member flaps; teamd renamed back each time")


def test_docker_pause_of_teamd_is_fenced_and_invisible(dlab: HolderLab, sup: Any,
                                                       summary: list[str]) -> None:
    p = whole(dlab)
    judge = Judge(dlab)
    time.sleep(0.5)
    dlab.client.api.pause(TEAMD)
    wait_for(lambda: took_over(dlab, p), 15.0, "the standby took over from the paused teamd")
    # unpaused by the supervisor, the fenced shim exits by itself, writing nothing
    wait_for(lambda: not dlab.client.containers.get(DEAD).attrs["State"]["Running"], 10.0,
             "the fenced container exited")
    assert b"FENCED" in dlab.client.containers.get(DEAD).logs()
    whole(dlab)
    worst = judge.assert_invisible(HANG_BUDGET_S)
    summary.append(f"supervised, docker: 1 x `docker pause teamd` (fenced by the epoch, exited "
                   f"when woken): largest PDU gap {worst:.3f} s, 0 member flaps")
