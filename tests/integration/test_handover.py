"""Hitless warm restart against an independent partner: 30 runs of `warm-restart teamd` on
8 LAGs x 2 members must be invisible to Open vSwitch; a cold restart in the same harness must
not be (so the harness is known to be able to fail).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.keyspace_recorder import KeyspaceRecorder
from helpers.lab_helpers import all_negotiated, counters, max_gaps, wait_for

from teamd_lab.lab import Lab
from teamd_lab.shim import shim_command

pytestmark = pytest.mark.integration

LAGS, MEMBERS, RUNS = 8, 2, 30
WATCHED_FIELDS = (
    "oper_status",
    "admin_status",
    "status",
    "runner.selected",
    "runner.state",
    "runner.aggregator.selected",
)
WARM_RESTART = str(Path(sys.executable).parent / "warm-restart")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    workdir = Path(tmp_path_factory.mktemp("ho"))
    lab = Lab(workdir, prefix="ho")
    lab.up(LAGS, MEMBERS, shim_cmd=None, recorder=True)
    lab.record = workdir / "dataplane.jsonl"
    lab.start_shim(shim_command(lab, extra=["--record", str(lab.record)]))
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "all bonds negotiated")
    time.sleep(1.5)
    yield lab
    lab.down()


def warm_restart(lab: Lab) -> dict:
    p = subprocess.run(
        [WARM_RESTART, "--redis", lab.redis_url, "teamd", "--yes", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    return json.loads(p.stdout)


def test_30_hitless_restarts_are_invisible_to_the_partner(lab: Lab) -> None:
    before = counters(lab)
    offset = lab.ovs.log_offset()
    ks = KeyspaceRecorder(
        str(lab.redis_socket),
        {
            0: ["LAG_TABLE:*", "LAG_MEMBER_TABLE:*", "_LAG_TABLE:*", "_LAG_MEMBER_TABLE:*"],
            6: ["LAG_TABLE|*", "LAG_MEMBER_TABLE|*"],
        },
        WATCHED_FIELDS,
    ).start()
    start = time.monotonic()
    pids = set()
    outcomes = []
    try:
        for _ in range(RUNS):
            out = warm_restart(lab)
            assert out["result"] == "completed", out
            outcomes.append(out)
            pids.add(out["new"])
        time.sleep(1.5)
    finally:
        ks.stop()
    end = time.monotonic()
    assert len(pids) == RUNS  # every run really handed over to a new instance
    assert counters(lab) == before
    assert lab.ovs.member_events(offset) == []
    gaps = max_gaps(lab, start, end)
    assert len(gaps) == LAGS * MEMBERS
    worst = max(gaps.values())
    print(
        f"\n{RUNS} hitless restarts: largest PDU inter-arrival at the partner {worst:.3f} s; "
        f"largest gap reported by the orchestrator "
        f"{max(v['max_gap_s'] for o in outcomes for v in o['lags'].values()):.3f} s"
    )
    assert worst <= 1.1, gaps
    assert ks.events > 0 or ks.history  # the recorder saw the keys
    assert len(ks.history) >= LAGS * (1 + MEMBERS) * 2
    assert ks.changed() == {}
    assert all_negotiated(lab.ovs.bond_show())


def test_no_two_instances_ever_wrote_the_dataplane(lab: Lab) -> None:
    writes = [json.loads(x) for x in lab.record.read_text().splitlines() if x.strip()]
    assert writes, "the recording backend saw no dataplane write at all"
    writes.sort(key=lambda w: w["t"])
    owner_of: dict[int, int] = {}
    last_epoch = -1
    for w in writes:
        assert w["epoch"] is not None, w
        assert w["epoch"] >= last_epoch, ("a stale owner wrote after a newer one", w)
        last_epoch = w["epoch"]
        assert owner_of.setdefault(w["epoch"], w["pid"]) == w["pid"], ("two writers", w)


def cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WARM_RESTART, "--redis", lab.redis_url, *args], capture_output=True, text=True, timeout=60
    )


def test_exec_path_upgrade_runs_the_new_executable(lab: Lab, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    new = tmp_path / "teamd-shim-v2"
    new.write_text(
        f'#!/bin/sh\necho "$@" > {marker}\nexec {Path(sys.executable).parent / "teamd-shim"} "$@"\n'
    )
    new.chmod(0o755)
    before = counters(lab)
    offset = lab.ovs.log_offset()
    p = cli(lab, "teamd", "--yes", "--exec", str(new))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "--role standby" in marker.read_text()
    run_id = lab.redis(6).hget("TEAMD_HITLESS_LAST_RUN|teamd", "last_run")
    assert lab.redis(6).hget(f"WARM_RESTART_RUN|{run_id}", "exec") == str(new)
    time.sleep(1.0)
    assert counters(lab) == before and lab.ovs.member_events(offset) == []


def test_exec_path_that_is_not_executable_is_refused_before_anything_changes(
    lab: Lab, tmp_path: Path
) -> None:
    owner = lab.redis(6).hgetall("TEAMD_OWNER_TABLE|teamd")
    p = cli(lab, "teamd", "--yes", "--exec", str(tmp_path / "missing"))
    assert p.returncode == 2, p.stdout + p.stderr
    assert "not an executable" in p.stdout and "nothing was changed" in p.stdout
    assert lab.redis(6).hgetall("TEAMD_OWNER_TABLE|teamd") == owner
    assert not lab.redis(6).exists("WARM_RESTART_LOCK|teamd")


def test_a_planted_argv_in_the_owner_record_is_refused_and_never_run(
    lab: Lab, tmp_path: Path
) -> None:
    """Any container can write STATE_DB. Seen on main before the fix: the standby was started
    from the record's argv, as root (the marker appeared); now the command line comes from the
    owner's verified /proc/<pid>/cmdline and a record that disagrees is refused."""
    marker = tmp_path / "planted-marker"
    r = lab.redis(6)
    owner = r.hgetall("TEAMD_OWNER_TABLE|teamd")
    key = f"TEAMD_SHIM_INSTANCE|{owner['owner']}"
    real = r.hget(key, "argv")
    r.hset(key, "argv", json.dumps(["/bin/sh", "-c", f"touch {marker}", "--redis", "x"]))
    try:
        p = cli(lab, "teamd", "--yes")
    finally:
        r.hset(key, "argv", real)
    time.sleep(0.5)
    assert not marker.exists()
    assert p.returncode == 2, p.stdout + p.stderr
    assert "field argv" in p.stdout and "nothing was changed" in p.stdout, p.stdout
    assert r.hgetall("TEAMD_OWNER_TABLE|teamd") == owner
    assert not r.exists("WARM_RESTART_LOCK|teamd")
    # with a start time no process has, the record cannot be checked at all: still never run
    # (on this host the liveness check already refused it before: pid and start time; the
    # standby start re-verifies for a record alive only by its heartbeat)
    real_start = r.hget(key, "starttime")
    r.hset(
        key, mapping={"argv": json.dumps(["/bin/sh", "-c", f"touch {marker}"]), "starttime": "1"}
    )
    try:
        p = cli(lab, "teamd", "--yes")
    finally:
        r.hset(key, mapping={"argv": real, "starttime": real_start})
    time.sleep(0.5)
    assert not marker.exists() and p.returncode == 2, p.stdout + p.stderr
    assert r.hgetall("TEAMD_OWNER_TABLE|teamd") == owner
    assert cli(lab, "teamd", "--yes").returncode == 0  # the record put back: all is well


def test_a_planted_control_socket_in_the_owner_record_is_refused_and_never_asked(
    lab: Lab, tmp_path: Path
) -> None:
    """The record's ctl names a fake socket that answers "active" to anything, in a directory
    the standby's log would go to. Seen on main before the fix: warm-restart asked the fake
    socket and opened the standby's log beside it, as root."""
    import socket
    import threading

    fake_dir = tmp_path / "elsewhere"
    fake_dir.mkdir()
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fake.bind(str(fake_dir / "fake.sock"))
    fake.listen(8)
    asked: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = fake.accept()
            except OSError:
                return
            with conn:
                asked.append(conn.recv(4096))
                conn.sendall(b'{"ok": true, "result": {"role": "active", "name": "x"}}\n')

    threading.Thread(target=serve, daemon=True).start()
    r = lab.redis(6)
    owner = r.hgetall("TEAMD_OWNER_TABLE|teamd")
    key = f"TEAMD_SHIM_INSTANCE|{owner['owner']}"
    real = r.hget(key, "ctl")
    r.hset(key, "ctl", str(fake_dir / "fake.sock"))
    try:
        p = cli(lab, "teamd", "--yes")
    finally:
        r.hset(key, "ctl", real)
        fake.close()
    assert p.returncode == 2, p.stdout + p.stderr
    assert "field ctl" in p.stdout and "nothing was changed" in p.stdout, p.stdout
    assert asked == [] and sorted(f.name for f in fake_dir.iterdir()) == ["fake.sock"]
    assert r.hgetall("TEAMD_OWNER_TABLE|teamd") == owner
    assert cli(lab, "teamd", "--yes").returncode == 0  # the record put back: all is well


def test_status_and_config(lab: Lab) -> None:
    st = cli(lab, "status")
    assert st.returncode == 0, st.stderr
    assert "active: " in st.stdout and "alive" in st.stdout
    assert "PortChannel0001" in st.stdout and "current" in st.stdout
    assert "last run" in st.stdout
    js = json.loads(cli(lab, "status", "--json").stdout)
    assert js["owner"]["owner"] in js["instances"]
    assert cli(lab, "config", "enable", "teamd").returncode == 0
    assert lab.redis(6).hget("WARM_RESTART_ENABLE_TABLE|teamd", "enable") == "true"
    # a run keeps an enable flag that was already set, and restores one it had to set
    assert cli(lab, "teamd", "--yes").returncode == 0
    assert lab.redis(6).hget("WARM_RESTART_ENABLE_TABLE|teamd", "enable") == "true"
    assert cli(lab, "config", "disable", "teamd").returncode == 0
    assert lab.redis(6).hget("WARM_RESTART_ENABLE_TABLE|teamd", "enable") == "false"
    assert cli(lab, "teamd", "--yes").returncode == 0
    assert lab.redis(6).hget("WARM_RESTART_ENABLE_TABLE|teamd", "enable") == "false"
    # SONiC's rows of the teamd container's processes, as `show warm_restart state` lists
    # them; no row of the product's own name
    r = lab.redis(6)
    wr = r.hgetall("WARM_RESTART_TABLE|teamsyncd")
    assert wr["state"] == "reconciled" and int(wr["restore_count"]) >= 2
    assert int(r.hget("WARM_RESTART_TABLE|teammgrd", "restore_count")) >= 2
    assert sorted(r.keys("WARM_RESTART_TABLE|*")) == [
        "WARM_RESTART_TABLE|teammgrd",
        "WARM_RESTART_TABLE|teamsyncd",
    ]


def test_cold_restart_moves_the_partner_counters(lab: Lab) -> None:
    """The same harness, a plain restart: it must see what the hitless runs did not."""
    before = counters(lab)
    offset = lab.ovs.log_offset()
    start = time.monotonic()
    for ref in lab.registered_shims().values():
        ref.stop(5.0)
    time.sleep(1.0)  # far faster than any container restart; still not invisible
    lab.start_shim(shim_command(lab, extra=["--record", str(lab.record)]), role="cold")
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "renegotiated after cold")
    time.sleep(3.5)
    end = time.monotonic()
    after = counters(lab)
    flaps = lab.ovs.member_events(offset)
    moved = {k for k in before if after[k] != before[k]}
    gaps = max_gaps(lab, start, end)
    print(
        f"\ncold restart: {len(flaps)} member enable/disable lines, {len(moved)} members with "
        f"moved counters, largest PDU inter-arrival {max(gaps.values()):.3f} s"
    )
    assert flaps, "a cold restart should make the partner disable members"
    assert max(gaps.values()) > 1.1
