"""SONiC's service shape (containers/sonic/, hld §11.7), judged by Open vSwitch.

`teamd.service` runs `teamd.sh start`, then `teamd.sh wait` as its main process: SONiC's
`container wait teamd` is a `docker wait` bound to the container that was started, so if a
handover replaced that container the wait would return, systemd would run `teamd.sh stop`, and
FEATURE auto_restart would bring teamd back cold. Here the long-lived `teamd` runs the supervisor
and the shim moves between `teamd-lacp` containers. One lab boot (the docker tier's holder lab,
its namespace as "the host network"): `teamd.sh start` as the unit runs it, a `docker wait` on
the id of the container named `teamd` (what `container wait teamd` does) and `teamd.sh wait` in
the background, then hitless restarts and an upgrade run the SONiC way (`docker exec teamd
warm-restart ...`; the switch has no warm-restart of its own), then `teamd.sh stop`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.docker_lab import (
    IMAGE_REPO,
    LAGS,
    MEMBERS,
    REPO,
    UPGRADE_VERSION,
    HolderLab,
    Judge,
    remove_quietly,
)
from helpers.lab_helpers import all_negotiated, wait_for

from teamd_lab.holder import host_ctl_dir
from teamd_shim.db.ownership import instance_alive

pytestmark = pytest.mark.docker

TEAMD_SH = str(REPO / "containers" / "sonic" / "teamd.sh")
SUP, LACP = "teamd", "teamd-lacp"  # the long-lived container; the shim containers' base name
STANDBY = LACP + "_standby"
ALL = (SUP, LACP, LACP + "_bak", STANDBY, LACP + "_dead")
NS = 1_000_000_000
# what the operator's docker create set beyond the image (SONiC: docker_image_run_opt): a
# handover must carry it to the next container, with -t (SONiC's own) that teamd.sh passes
RUN_OPTS = "--health-interval 2s --stop-timeout 42 --label teamd-hitless.test=so"


@dataclass
class Service:
    d: HolderLab
    env: dict[str, str]

    def sh(self, verb: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TEAMD_SH, verb], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def exec_json(self, *argv: str) -> dict[str, Any]:
        """`docker exec teamd warm-restart ...`: where a SONiC operator runs it."""
        p = subprocess.run(
            ["docker", "exec", SUP, "warm-restart", *argv, "--yes", "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        try:
            out: dict[str, Any] = json.loads(p.stdout)
        except ValueError:
            raise AssertionError((p.returncode, p.stdout[-2000:], p.stderr[-2000:])) from None
        assert p.returncode == 0 and out["result"] == "completed", out
        return out

    def attrs(self, name: str) -> dict[str, Any]:
        return dict(self.d.client.api.inspect_container(name))


def db_cli(workdir: Path, sock: str) -> str:
    """The `sonic-db-cli` teamd.sh calls, over the lab's redis (STATE_DB is db 6)."""
    path = workdir / "sonic-db-cli"
    path.write_text(
        "#!/bin/sh\n"
        'case "$1" in APPL_DB) n=0;; CONFIG_DB) n=4;; STATE_DB) n=6;; '
        '*) echo "sonic-db-cli stub: unknown db $1" >&2; exit 2;; esac\n'
        f'shift; exec redis-cli -s {sock} -n "$n" --raw "$@"\n'
    )
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def svc(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    workdir = Path(tmp_path_factory.mktemp("so"))
    remove_quietly(engine, *ALL)
    d = HolderLab(engine, workdir, prefix="so")
    try:
        d.up(LAGS, MEMBERS)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TEAMD_HITLESS_ENV_FILE": "/nonexistent",
            "TEAMD_HITLESS_NET": f"container:{d.holder_name}",
            "TEAMD_HITLESS_REDIS_DIR": str(workdir),
            "TEAMD_HITLESS_REDIS_SOCK": str(d.lab.redis_socket),
            "TEAMD_HITLESS_CTL_DIR": str(host_ctl_dir(workdir)),
            "TEAMD_HITLESS_WARMBOOT": str(workdir / "warmboot"),
            "TEAMD_HITLESS_RUN_OPTS": RUN_OPTS,
            "TEAMD_HITLESS_DEBUG_LOG": str(workdir / "teamd-debug.log"),
            "SONIC_DB_CLI": db_cli(workdir, str(d.lab.redis_socket)),
        }
        s = Service(d, env)
        p = s.sh("start")
        assert p.returncode == 0, p.stdout + p.stderr
        wait_for(lambda: all_negotiated(d.lab.ovs.bond_show()), 30.0, "all bonds negotiated")
        time.sleep(1.5)
        yield s
    finally:
        for name in ALL:
            try:
                print(f"==== {name}\n" + engine.containers.get(name).logs(tail=40).decode())
            except Exception:
                pass
        remove_quietly(engine, *ALL)
        d.down()


def test_start_refuses_a_teamd_that_is_not_ours(engine: Any, tmp_path: Path) -> None:
    """Installing over SONiC's stock container: `teamd.sh start` must not start SONiC's `teamd`
    (or anything else of that name) as the supervisor; it says what to do and changes nothing."""
    remove_quietly(engine, *ALL)
    foreign = engine.containers.create(
        "teamd-hitless/partner:latest", ["sleep", "infinity"], name=SUP, network_mode="none"
    )
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SONIC_DB_CLI": "true"}
        env["TEAMD_HITLESS_ENV_FILE"] = "/nonexistent"
        env["TEAMD_HITLESS_CTL_DIR"] = str(tmp_path / "ctl")
        env["TEAMD_HITLESS_DEBUG_LOG"] = str(tmp_path / "debug.log")
        p = subprocess.run([TEAMD_SH, "start"], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 5, p.stdout + p.stderr
        assert "not teamd-hitless's" in p.stdout and "docker rm -f teamd" in p.stdout, p.stdout
        foreign.reload()
        assert foreign.status == "created"  # not started
        names = {c.name for c in engine.containers.list(all=True)}
        assert LACP not in names, names
    finally:
        foreign.remove(force=True)


def pair(s: Service) -> dict[str, str] | None:
    """The owner's shim runs in `teamd-lacp`, a READY hot standby in `teamd-lacp_standby`."""
    r = s.d.lab.redis(6)
    owner = r.hget("TEAMD_OWNER_TABLE|teamd", "owner")
    ids = {}
    for name in (LACP, STANDBY):
        try:
            a = s.attrs(name)
        except Exception:
            return None
        if not a["State"]["Running"]:
            return None
        ids[name] = a["Id"]
    recs = {k.split("|", 1)[1]: r.hgetall(k) for k in r.keys("TEAMD_SHIM_INSTANCE|*")}
    live = {n: x for n, x in recs.items() if instance_alive(x)}
    own = live.get(owner or "")
    hot = [n for n, x in live.items() if x.get("hot") == "true" and x.get("ready") == "true"]
    if own is None or own.get("container") != ids[LACP] or len(hot) != 1:
        return None
    if live[hot[0]].get("container") != ids[STANDBY]:
        return None
    return {"owner": str(owner), "standby": hot[0], LACP: ids[LACP]}


def whole(s: Service) -> dict[str, str]:
    return wait_for(lambda: pair(s), 60.0, "the owner in teamd-lacp, a READY teamd-lacp_standby")


def test_a_handover_keeps_what_the_container_set_and_leaves_no_standby_role(svc: Service) -> None:
    """The new `teamd-lacp` keeps the healthcheck, tty, stop timeout and labels the old one was
    created with (not only HostConfig/Env/Labels), and its command line says `--role auto`:
    restarted later with nobody handing over, it starts as the active whatever Redis does."""
    old = svc.attrs(LACP)
    img = svc.d.client.api.inspect_image(old["Image"])["Config"]
    assert old["Config"]["Healthcheck"]["Interval"] == 2 * NS != img["Healthcheck"]["Interval"]
    assert old["Config"]["Tty"] is True and old["Config"]["StopTimeout"] == 42
    whole(svc)
    out = svc.exec_json("teamd")
    new = svc.attrs(LACP)
    assert new["Id"] != old["Id"], out
    cfg = new["Config"]
    assert cfg["Healthcheck"] == old["Config"]["Healthcheck"], cfg["Healthcheck"]
    assert cfg["Tty"] is True and cfg["StopTimeout"] == 42, cfg
    assert cfg["Labels"].get("teamd-hitless.test") == "so", cfg["Labels"]
    assert new["HostConfig"]["NetworkMode"] == old["HostConfig"]["NetworkMode"]  # the holder's
    cmd = cfg["Cmd"]
    assert "standby" not in cmd and cmd[cmd.index("--role") + 1] == "auto", cmd
    assert cmd[cmd.index("--name") + 1] == out["new"], (cmd, out)

    def healthy() -> bool:
        h = svc.attrs(LACP)["State"].get("Health") or {}
        return h.get("Status") == "healthy" and h["Log"][-1]["Output"].startswith("active ")

    wait_for(healthy, 20.0, "the new teamd-lacp healthy by the carried healthcheck")


def test_the_sonic_service_sequence_never_ends_the_wait_and_stops_cleanly(svc: Service) -> None:
    d = svc.d
    sup_id = svc.attrs(SUP)["Id"]
    waits = [
        subprocess.Popen(["docker", "wait", sup_id], stdout=subprocess.PIPE, text=True),
        subprocess.Popen([TEAMD_SH, "wait"], env=svc.env, stdout=subprocess.PIPE, text=True),
    ]
    try:
        whole(svc)
        judge = Judge(d)
        shims = {svc.attrs(LACP)["Id"]}
        for i in range(3):
            before = whole(svc)
            out = svc.exec_json("teamd")
            assert out["old"] == before["owner"], (i, out)
            assert [w.poll() for w in waits] == [None, None], f"the wait returned at run {i}"
            shims.add(svc.attrs(LACP)["Id"])
        whole(svc)
        out = svc.exec_json("upgrade-docker", "teamd", f"{IMAGE_REPO}:{UPGRADE_VERSION}")
        p = subprocess.run(
            ["docker", "exec", SUP, "warm-restart", "status", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        st = json.loads(p.stdout)
        inst = st["instances"][st["owner"]["owner"]]
        assert inst["image_version"] == UPGRADE_VERSION == inst["version"], inst
        shims.add(svc.attrs(LACP)["Id"])
        owner = whole(svc)["owner"]
        # teamdctl's question, asked as SONiC's host wrapper asks it (`docker exec -i teamd
        # teamdctl ...`): it reaches the owner through the control-socket alias, four handovers on
        lag = sorted(d.lab.redis(4).keys("PORTCHANNEL|*"))[0].split("|", 1)[1]
        p = subprocess.run(
            ["docker", "exec", "-i", SUP, "teamdctl", lag, "state", "dump"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert p.returncode == 0, p.stderr
        dump = json.loads(p.stdout)
        assert dump["runner"]["active"] is True, p.stdout[:500]
        assert dump["ports"] and all(pd["runner"]["selected"] for pd in dump["ports"].values()), (
            p.stdout[:500]
        )
        judge.assert_invisible()
        assert len(shims) == 5  # a new shim container each time, one `teamd` throughout
        # four handovers on, the shim container is still what teamd.sh created (SONiC's -t)
        # and its command line names no role it would keep on a restart
        cfg = svc.attrs(LACP)["Config"]
        assert cfg["Tty"] is True and "standby" not in cfg["Cmd"], cfg
        assert svc.attrs(SUP)["Id"] == sup_id and svc.attrs(SUP)["State"]["Running"]
        assert [w.poll() for w in waits] == [None, None], "the wait returned"

        # `teamd.sh stop` with warm restart enabled (SONiC: `config warm_restart enable teamd`)
        d.lab.redis(6).hset("WARM_RESTART_ENABLE_TABLE|teamd", "enable", "true")

        def lag_keys() -> list[str]:
            """STATE_DB LAG_TABLE (what intfmgrd & co. read as "LAG ready") and APPL_DB's
            (written through a ProducerStateTable: pending under _LAG_TABLE here, where no
            orchagent consumes it)."""
            return sorted(d.lab.redis(6).keys("LAG_TABLE|*") + d.lab.redis(0).keys("*LAG_TABLE:*"))

        kept = lag_keys()
        assert len(kept) >= 2 * LAGS, kept
        p = svc.sh("stop")
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"{owner} yielded (final snapshot written" in p.stdout, p.stdout
        for w in waits:
            w.wait(30)  # the unit's main process ends with the stop, not before
        assert waits[0].stdout is not None and waits[0].stdout.read().strip() == "0"
        for name in (SUP, LACP):
            assert svc.attrs(name)["State"]["Running"] is False, name
        names = {c.name for c in d.client.containers.list(all=True)}
        assert STANDBY not in names and LACP + "_bak" not in names, names
        # warm: the PortChannels are kept (nothing removed them: SIGUSR1, then SIGKILL)
        assert lag_keys() == kept
    finally:
        for w in waits:
            if w.poll() is None:
                w.kill()
