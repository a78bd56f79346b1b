"""Container handovers judged by Open vSwitch (issue 8): the teamd container a user started by
hand is replaced, upgraded and rolled back by image, and the partner sees nothing; the faults
of hld §11.5 roll back or recover to a single `teamd`; `docker restart teamd` (what SONiC does
today) is the contrast row, measured in the same harness. Last, on the same lab, the supervisor
(hld §14): `docker kill teamd` and `docker pause teamd` taken over by its hot standby container.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from helpers.docker_lab import (
    IMAGE_REPO,
    REPO,
    TEAMD,
    UPGRADE_VERSION,
    HolderLab,
    Judge,
    remove_quietly,
    teamd_containers,
)
from helpers.lab_helpers import all_negotiated, counters, max_gaps, wait_for

from teamd_shim.db.ownership import instance_alive

pytestmark = pytest.mark.docker

WARM_RESTART = str(Path(sys.executable).parent / "warm-restart")
RUNS = 10
RESULTS: dict[str, Any] = {}


def cli(d: HolderLab, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WARM_RESTART, "--redis", f"unix://{d.rundir}/redis.sock", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_json(d: HolderLab, *args: str, yes: bool = True) -> tuple[int, dict[str, Any]]:
    p = cli(d, *args, *(["--yes"] if yes else []), "--json")
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        raise AssertionError((p.returncode, p.stdout[-2000:], p.stderr[-2000:])) from None


def test_10_container_handovers_are_invisible_to_the_partner(dlab: HolderLab) -> None:
    judge = Judge(dlab)
    ids = {teamd_containers(dlab)[TEAMD]}
    walls = []
    for i in range(RUNS):
        rc, out = cli_json(dlab, "teamd")  # no --runtime: it finds the container itself
        assert rc == 0 and out["result"] == "completed", (i, out)
        names = teamd_containers(dlab)
        assert set(names) == {TEAMD}, names  # no teamd_bak left behind
        ids.add(names[TEAMD])
        walls.append(out["wall_s"])
    v = judge.assert_invisible()
    assert len(ids) == RUNS + 1  # a new container each time
    RESULTS["hitless"] = {
        "runs": RUNS,
        "max_gap_s": round(v["max_gap"], 3),
        "flaps": 0,
        "median_wall_s": round(sorted(walls)[RUNS // 2], 2),
    }
    print(
        f"\n{RUNS} container handovers: largest PDU inter-arrival {v['max_gap']:.3f} s, "
        f"median command {RESULTS['hitless']['median_wall_s']} s"
    )


def status_json(d: HolderLab) -> dict[str, Any]:
    p = cli(d, "status", "--json")
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)
    return st["instances"][st["owner"]["owner"]]


def test_teamd_runs_with_net_admin_and_net_raw_only_and_no_new_privileges(
    dlab: HolderLab,
) -> None:
    """After 10 handovers the container named teamd is one the docker runtime created from the
    first one's HostConfig: its effective capabilities are exactly CAP_NET_ADMIN (12) and
    CAP_NET_RAW (13), and it cannot gain more (no_new_privs)."""
    ctr = dlab.client.containers.get(TEAMD)
    hc = ctr.attrs["HostConfig"]
    caps = sorted(c.removeprefix("CAP_") for c in hc["CapAdd"])  # the engine may add CAP_
    assert [c.removeprefix("CAP_") for c in hc["CapDrop"]] == ["ALL"], hc["CapDrop"]
    assert caps == ["NET_ADMIN", "NET_RAW"], hc["CapAdd"]
    assert "no-new-privileges:true" in (hc.get("SecurityOpt") or [])
    assert hc["ReadonlyRootfs"] is True and "/run/teamd-health" in (hc.get("Tmpfs") or {}), hc
    binds = hc.get("Binds") or []
    assert f"{dlab.rundir}/teamd-shim:/run/teamd-shim" in binds, binds
    # the shim (PID 2 under tini) and tini itself: the bounding set is what counts for both
    for pid in ("1", "$(pgrep -P 1 | head -n1)"):
        status = ctr.exec_run(["sh", "-c", f"cat /proc/{pid}/status"]).output.decode()
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        assert int(fields["CapEff"], 16) == (1 << 12) | (1 << 13), (pid, fields["CapEff"])
        assert int(fields["CapBnd"], 16) == (1 << 12) | (1 << 13), (pid, fields["CapBnd"])
        assert fields["NoNewPrivs"].strip() == "1"
    # healthy by the image's healthcheck (the health file, no Python), in a container the
    # runtime created: it inherited the healthcheck with the image and the tmpfs with the
    # HostConfig
    hcheck = ctr.attrs["Config"].get("Healthcheck") or {}
    assert hcheck.get("Test", [""])[0] == "CMD-SHELL" and "teamd-shim" not in str(hcheck), hcheck

    def healthy() -> dict[str, Any] | None:
        h = dlab.client.api.inspect_container(ctr.id)["State"].get("Health") or {}
        return h if h.get("Status") == "healthy" else None

    health = wait_for(healthy, 15.0, "the teamd container healthy")
    assert health["Log"][-1]["Output"].startswith("active "), health["Log"][-1]
    out = ctr.exec_run(["cat", "/run/teamd-health/status"])
    assert out.output.decode().startswith("active "), out.output


class FakeShimSocket:
    """A control socket that answers `info` with what the real owner answers (so it looks like
    the active shim) and refuses every other request: the `ctl` a planted record names."""

    def __init__(self, path: str, real: str) -> None:
        from teamd_shim.control.transport import request

        self.info = request(real, {"cmd": "info"})
        self.requests: list[str] = []
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(8)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError, ValueError):
                for line in conn.makefile("r"):
                    req = json.loads(line)
                    self.requests.append(str(req.get("cmd")))
                    reply = (
                        {"ok": True, "result": self.info}
                        if req.get("cmd") == "info"
                        else {"ok": False, "error": "fake socket"}
                    )
                    conn.sendall((json.dumps(reply) + "\n").encode())

    def close(self) -> None:
        self.srv.close()


EXEC_EVENTS = ("exec_create", "exec_start", "exec_die", "health_status")


def plant_while(r: Any, key: str, fields: dict[str, str], stop: threading.Event) -> None:
    """The shim rewrites its record every second: keep the planted fields in it."""
    while not stop.is_set():
        r.hset(key, mapping=fields)
        stop.wait(0.02)


def test_a_record_pointing_at_a_foreign_container_is_refused_and_it_is_left_alone(
    dlab: HolderLab,
) -> None:
    """STATE_DB is writable by every container that mounts the Redis socket. A record naming a
    foreign container (a plain `sleep` one, from an image that is not the teamd product, and
    one from the product image that runs no shim in the owner's pid namespace) and a fake
    control socket is refused: nothing is done to that container (no rename, no signal, no
    removal: no Docker event for it) and the real teamd keeps the LAGs invisibly."""
    r = dlab.lab.redis(6)
    owner = r.hget("TEAMD_OWNER_TABLE|teamd", "owner")
    key = f"TEAMD_SHIM_INSTANCE|{owner}"
    real_ctl = dlab.rundir / "teamd-shim" / f"{owner}.sock"
    teamd_before = teamd_containers(dlab)
    # the shim's publisher rewrites only what it changed itself: a planted field stays until
    # it is put back (seen: every later test was refused after a failure here)
    real = {k: r.hget(key, k) or "" for k in ("container", "ctl")}
    judge = Judge(dlab)
    fakedir = tempfile.mkdtemp(prefix="fk", dir="/tmp")
    fake = FakeShimSocket(f"{fakedir}/{owner}.sock", str(real_ctl))
    try:
        for i, image in enumerate(("teamd-hitless/partner:latest", f"{IMAGE_REPO}:latest")):
            foreign = dlab.client.containers.run(
                image,
                ["sleep", "infinity"],
                name=f"dk-foreign-{i}",
                network_mode="none",
                volumes={fakedir: {"bind": fakedir, "mode": "rw"}},
                labels={"teamd-hitless.test": "foreign"},
                detach=True,
            )
            foreign.reload()
            stop = threading.Event()
            planted = {"container": foreign.id, "ctl": f"{fakedir}/{owner}.sock"}
            t = threading.Thread(target=plant_while, args=(r, key, planted, stop), daemon=True)
            t.start()
            try:
                time.sleep(0.2)
                t0 = time.time()
                p = cli(dlab, "teamd", "--runtime", "docker", "--yes")
            finally:
                stop.set()
                t.join()
                r.hset(key, mapping=real)
            out = p.stdout + p.stderr
            assert p.returncode != 0, out
            assert f"{key} field " in out and "refused" in out, out
            if i == 0:
                assert f"field container is {foreign.id}" in out, out
                assert "not a teamd-hitless teamd container" in out, out
            time.sleep(1.5)  # anything the run did to the container shows as an event by now
            events = [
                e
                for e in dlab.client.events(
                    since=int(t0),
                    until=int(time.time()) + 1,
                    filters={"container": foreign.id},
                    decode=True,
                )
                if e.get("timeNano", 0) >= t0 * 1e9
                # the teamd image's own healthcheck execs in it (and finds no shim): not ours
                and e.get("Action", "").split(":")[0] not in EXEC_EVENTS
            ]
            assert events == [], events
            foreign.reload()
            assert foreign.name == f"dk-foreign-{i}" and foreign.status == "running"
            assert foreign.attrs["RestartCount"] == 0
            assert fake.requests == [], fake.requests  # refused before asking it anything
            foreign.remove(force=True)
        assert teamd_containers(dlab) == teamd_before
        assert {k: r.hget(key, k) for k in real} == real
        assert r.hget("TEAMD_OWNER_TABLE|teamd", "owner") == owner
        assert not r.exists("WARM_RESTART_LOCK|teamd")
        judge.assert_invisible()
    finally:
        r.hset(key, mapping=real)
        for i in range(2):
            with contextlib.suppress(docker.errors.NotFound):
                dlab.client.containers.get(f"dk-foreign-{i}").remove(force=True)
        fake.close()
        with contextlib.suppress(OSError):
            os.unlink(f"{fakedir}/{owner}.sock")
            os.rmdir(fakedir)


def test_upgrade_docker_and_rollback_docker_are_invisible(dlab: HolderLab) -> None:
    before = status_json(dlab)
    assert before["image_version"] == "0.1.0" and before["container_name"] == TEAMD, before
    judge = Judge(dlab)
    rc, out = cli_json(dlab, "upgrade-docker", "teamd", f"{IMAGE_REPO}:{UPGRADE_VERSION}")
    assert rc == 0, out
    up = status_json(dlab)
    assert up["image_version"] == UPGRADE_VERSION and up["version"] == UPGRADE_VERSION, up
    rc, out = cli_json(dlab, "rollback-docker", "teamd")
    assert rc == 0, out
    back = status_json(dlab)
    assert back["image_version"] == "0.1.0" and back["version"] == "0.1.0", back
    text = cli(dlab, "status").stdout
    assert "image version 0.1.0" in text, text
    judge.assert_invisible()


def test_upgrade_from_a_tarball_and_to_an_image_with_the_same_version(
    dlab: HolderLab, tmp_path: Path
) -> None:
    tar = tmp_path / "teamd-upgrade.tar"
    with open(tar, "wb") as f:
        for chunk in dlab.client.images.get(f"{IMAGE_REPO}:{UPGRADE_VERSION}").save():
            f.write(chunk)
    judge = Judge(dlab)
    rc, out = cli_json(dlab, "upgrade-docker", "teamd", str(tar), "--tag", "test-from-tarball")
    assert rc == 0, out
    assert status_json(dlab)["image_version"] == UPGRADE_VERSION
    assert (
        dlab.client.images.get(f"{IMAGE_REPO}:test-from-tarball").id
        == dlab.client.images.get(f"{IMAGE_REPO}:{UPGRADE_VERSION}").id
    )
    # the image that runs already: refused, nothing changed
    rc, out = cli_json(dlab, "upgrade-docker", "teamd", f"{IMAGE_REPO}:{UPGRADE_VERSION}")
    assert rc == 2 and "already runs" in out["reason"], out
    # same version label, another image id (a rebuild): accepted
    same = build_derived(dlab, tmp_path, "LABEL teamd-hitless.rebuild=1", "rebuild")
    rc, out = cli_json(dlab, "upgrade-docker", "teamd", same)
    assert rc == 0, out
    st = status_json(dlab)
    assert st["image"] == same and st["image_version"] == "0.1.0", st
    judge.assert_invisible()


def build_derived(d: HolderLab, tmp: Path, line: str, tag: str) -> str:
    ctx = tmp / f"ctx-{tag}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {IMAGE_REPO}:latest\n{line}\n")
    ref = f"{IMAGE_REPO}:test-{tag}"
    p = subprocess.run(
        ["docker", "build", "--network", "none", "-q", "-t", ref, str(ctx)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"},
    )
    assert p.returncode == 0, p.stderr
    return ref


def test_new_image_that_exits_at_once_rolls_back(dlab: HolderLab, tmp_path: Path) -> None:
    bad = build_derived(dlab, tmp_path, 'ENTRYPOINT ["/bin/false"]', "exits")
    old = teamd_containers(dlab)[TEAMD]
    judge = Judge(dlab)
    rc, out = cli_json(dlab, "teamd", "--image", bad)
    assert rc == 1 and out["result"] == "rolled_back", out
    assert teamd_containers(dlab) == {TEAMD: old}  # the old container is `teamd` again
    judge.assert_invisible()


def test_new_container_that_hangs_before_ready_rolls_back(dlab: HolderLab) -> None:
    old = teamd_containers(dlab)[TEAMD]
    paused: list[str] = []

    def pause_the_new_one() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not paused:
            now = teamd_containers(dlab)
            if now.get(TEAMD) not in (None, old):
                try:
                    dlab.client.api.pause(now[TEAMD])
                except docker.errors.APIError:  # created, not started yet (409): once it runs
                    time.sleep(0.02)
                    continue
                paused.append(now[TEAMD])
            time.sleep(0.02)

    t = threading.Thread(target=pause_the_new_one, daemon=True)
    t.start()
    judge = Judge(dlab)
    rc, out = cli_json(dlab, "teamd", "--timeout", "5")
    t.join()
    assert paused, "the new container was never seen"
    assert rc == 1 and out["result"] == "rolled_back" and "READY" in out["reason"], out
    assert teamd_containers(dlab) == {TEAMD: old}
    judge.assert_invisible()


def test_orchestrator_killed_after_the_rename_then_recover(dlab: HolderLab) -> None:
    old = teamd_containers(dlab)[TEAMD]
    judge = Judge(dlab)
    p = subprocess.Popen(
        [WARM_RESTART, "--redis", f"unix://{dlab.rundir}/redis.sock", "teamd", "--yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: TEAMD + "_bak" in teamd_containers(dlab), 20, "the rename to teamd_bak")
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    rc, out = cli_json(dlab, "recover", yes=False)
    assert out["result"] in ("completed", "rolled_back"), out
    names = teamd_containers(dlab)
    assert set(names) == {TEAMD}, names
    if out["result"] == "rolled_back":
        assert names[TEAMD] == old
    rc, out = cli_json(dlab, "teamd")  # and the next run works
    assert rc == 0, out
    judge.assert_invisible()


def test_dockerd_restarted_with_live_restore_keeps_the_lags(dlab: HolderLab) -> None:
    judge = Judge(dlab)
    old = teamd_containers(dlab)[TEAMD]
    pid = int(Path("/var/run/docker.pid").read_text())  # the engine on the default socket
    subprocess.run(["kill", "-TERM", str(pid)], check=True)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 20, "dockerd to exit")
    p = subprocess.run(
        ["bash", "scripts/docker_engine.sh"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert teamd_containers(dlab) == {TEAMD: old}
    rc, out = cli_json(dlab, "teamd")
    assert rc == 0, out
    judge.assert_invisible()


def test_docker_restart_teamd_is_the_visible_contrast(dlab: HolderLab) -> None:
    """What SONiC does today: `docker restart teamd`. Measured, not assumed, in this harness."""
    judge = Judge(dlab)
    t = time.monotonic()
    subprocess.run(["docker", "restart", TEAMD], check=True, capture_output=True, timeout=60)
    wall = time.monotonic() - t
    time.sleep(4.0)  # past the partner's 3 s timeout: members that expired show by now
    wait_for(lambda: all_negotiated(dlab.lab.ovs.bond_show()), 30.0, "renegotiated")
    v = judge.finish()
    # the restarted container (its command line still says --role standby, from the handover
    # that created it) must come back as the active one and keep the LAGs up
    time.sleep(3.5)
    assert all_negotiated(dlab.lab.ovs.bond_show()), dlab.lab.ovs.bond_show()
    assert status_json(dlab)["role"] == "active"
    flaps = len(v["member_events"])
    RESULTS["docker_restart"] = {
        "max_gap_s": round(v["max_gap"], 3),
        "flaps": flaps,
        "wall_s": round(wall, 2),
    }
    print(
        f"\n`docker restart teamd`: largest PDU inter-arrival {v['max_gap']:.3f} s, "
        f"{flaps} member flap lines, command {wall:.2f} s"
    )
    if "hitless" in RESULTS:
        h = RESULTS["hitless"]
        print(
            f"{'restart':34} {'largest PDU gap s':>18} {'member flaps':>12}\n"
            f"{'hitless container handover x' + str(h['runs']):34} {h['max_gap_s']:>18} "
            f"{h['flaps']:>12}\n{'docker restart teamd':34} "
            f"{RESULTS['docker_restart']['max_gap_s']:>18} {flaps:>12}"
        )
    assert flaps > 0 or v["moved"], v  # the harness can see a restart


# ---- the supervisor (hld §14): on this module's lab, after the contrast row, to share its
# set-up; `docker kill teamd` and `docker pause teamd` are taken over by the hot standby
# container, and the container that owns the LAGs is the one named `teamd` again
STANDBY, DEAD = TEAMD + "_standby", TEAMD + "_dead"
KILL_BUDGET_S, HANG_BUDGET_S = 1.2, 1.5


@pytest.fixture(scope="module")
def sup(dlab: HolderLab) -> Iterator[subprocess.Popen[bytes]]:
    log = open(dlab.workdir / "supervisor.log", "wb")
    p = subprocess.Popen(
        [
            WARM_RESTART,
            "--redis",
            f"unix://{dlab.rundir}/redis.sock",
            "supervise",
            "--runtime",
            "docker",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield p
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(15)
        log.close()
        print((dlab.workdir / "supervisor.log").read_text()[-4000:])
        for name in (STANDBY, DEAD):
            try:
                print(
                    f"==== {name}\n"
                    + dlab.client.containers.get(name).logs(tail=60).decode(errors="replace")
                )
            except Exception:
                pass
        remove_quietly(dlab.client, STANDBY, DEAD)


def pidns(client: Any, name: str) -> str:
    ctr = client.containers.get(name)
    pid = int(ctr.attrs["State"].get("Pid") or 0)
    return os.readlink(f"/proc/{pid}/ns/pid") if pid and ctr.attrs["State"]["Running"] else ""


def sup_pair(d: HolderLab) -> dict[str, Any] | None:
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
    sb = [
        n
        for n, x in live.items()
        if x["role"] == "standby"
        and x.get("ready") == "true"
        and x.get("hot") == "true"
        and x["pidns"] == ns_sb
    ]
    if len(act) != 1 or len(sb) != 1 or owner != act[0]:
        return None
    return {
        "active": act[0],
        "standby": sb[0],
        "teamd": d.client.containers.get(TEAMD).id,
        "standby_id": d.client.containers.get(STANDBY).id,
    }


def whole(d: HolderLab) -> dict[str, Any]:
    return wait_for(
        lambda: sup_pair(d), 40.0, "teamd active and a READY teamd_standby", interval=0.1
    )


class SupJudge:
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


def test_five_docker_kills_of_teamd_are_invisible(
    dlab: HolderLab, sup: Any, summary: list[str]
) -> None:
    whole(dlab)
    judge = SupJudge(dlab)
    for _ in range(5):
        p = whole(dlab)
        time.sleep(0.3 + (time.monotonic() % 0.7))
        dlab.client.api.kill(TEAMD, signal="SIGKILL")
        wait_for(
            lambda p=p: took_over(dlab, p),
            15.0,
            "the standby container took over and was renamed teamd",
        )
    whole(dlab)
    worst = judge.assert_invisible(KILL_BUDGET_S)
    logs = dlab.client.containers.get(DEAD).logs(tail=5)  # kept for post-mortem
    assert logs is not None
    summary.append(
        f"supervised, docker: 5 x `docker kill teamd`: largest PDU gap {worst:.3f} s,"
        " 0 member flaps; teamd renamed back each time"
    )


def test_docker_pause_of_teamd_is_fenced_and_invisible(
    dlab: HolderLab, sup: Any, summary: list[str]
) -> None:
    p = whole(dlab)
    judge = SupJudge(dlab)
    time.sleep(0.5)
    dlab.client.api.pause(TEAMD)
    wait_for(lambda: took_over(dlab, p), 15.0, "the standby took over from the paused teamd")
    # unpaused by the supervisor, the fenced shim exits by itself, writing nothing
    wait_for(
        lambda: not dlab.client.containers.get(DEAD).attrs["State"]["Running"],
        10.0,
        "the fenced container exited",
    )
    assert b"FENCED" in dlab.client.containers.get(DEAD).logs()
    whole(dlab)
    worst = judge.assert_invisible(HANG_BUDGET_S)
    summary.append(
        f"supervised, docker: 1 x `docker pause teamd` (fenced by the epoch, exited "
        f"when woken): largest PDU gap {worst:.3f} s, 0 member flaps"
    )


@pytest.fixture(autouse=True)
def _one_teamd_after_each_test(dlab: HolderLab):
    yield
    names = teamd_containers(dlab)
    assert set(names) == {TEAMD}, f"left behind: {names}"
