"""Fault injection into `warm-restart teamd`: kills, stops, Redis outages, link and partner
changes at chosen stages of a real handover, judged by an independent partner (Open vSwitch).

One lab (4 LAGs x 2 members) for the module; the tests run in file order and each leaves the
lab as it found it: every LAG up on both sides, the partner's Link Expired / Link Defaulted
counters unchanged, no `member X: enabled|disabled` line in the vswitchd log (except for a member
the scenario downs on purpose), exactly one live shim instance and it is active, no lock.

A fault lands at a stage by watching the run's STATE_DB record (`WARM_RESTART_RUN|<id>`
`stage`, polled every 2 ms) while `warm-restart teamd --json` runs as a subprocess. Where the
window between the old owner's final snapshot and the standby's takeover must be hit for sure,
the standby is paused (SIGSTOP) at `restored` and continued once the fault is in place.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers.lab_helpers import all_negotiated, lab_processes, max_gaps, wait_for

from swsscommon.swsscommon import ConsumerStateTable, DBConnector
from teamd_lab.lab import Lab
from teamd_lab.record_analysis import load_records
from teamd_lab.shim import shim_command
from teamd_shim.control.transport import request
from teamd_shim.db.ownership import instance_alive
from teamd_shim.io.identity import proc_starttime

pytestmark = pytest.mark.integration

LAGS, MEMBERS = 4, 2
WARM_RESTART = str(Path(sys.executable).parent / "warm-restart")
STAGES = ("initialized", "standby_started", "restored", "yielded", "replayed")
LOCK_KEY = "WARM_RESTART_LOCK|teamd"
LAST_RUN_KEY = "TEAMD_HITLESS_LAST_RUN|teamd"
TEAMSYNCD_KEY = "WARM_RESTART_TABLE|teamsyncd"
RUN_PREFIX = "WARM_RESTART_RUN|"
ABORT_BUDGET_S = 1.5  # hld §8: the abort path keeps every inter-arrival within 1.5 s
POLL_S = 0.002


# ---- the lab ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = Path(tmp_path_factory.mktemp("hf"))
    lab = Lab(workdir, prefix="hf")
    lab.up(LAGS, MEMBERS, shim_cmd=None, recorder=True)
    try:
        lab.start_shim(shim_command(lab, extra=["--record", str(workdir / "dataplane.jsonl")]))
        wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 15.0, "all bonds negotiated")
        time.sleep(1.5)
        yield lab
    finally:
        for log in sorted(workdir.glob("shim-*.log")) + sorted((workdir / "ctl").glob("*.log")):
            print(f"==== {log.name}\n{log.read_text()[-3000:]}")
        strays = lab_processes(workdir)  # a failed scenario may leave one Redis does not know
        lab.down()
        for pid in strays:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def dataplane_log(lab: Lab) -> Path:
    return lab.workdir / "dataplane.jsonl"


def state_db(lab: Lab, key: str) -> dict[str, str]:
    return lab.redis(6).hgetall(key)


def appl_db(lab: Lab) -> dict[str, dict[str, str]]:
    """Consume the producer tables as orchagent would, then read the resulting hashes."""
    db = DBConnector.from_url("APPL_DB", lab.redis_url)
    for t in ("LAG_TABLE", "LAG_MEMBER_TABLE"):
        ConsumerStateTable(db, t).pops()
    r = lab.redis(0)
    return {k: r.hgetall(k) for k in r.keys("LAG_*TABLE:*")}


def stats_snapshot(lab: Lab) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (bond, m): (s["link_expired"], s["link_defaulted"])
        for bond, members in lab.ovs.lacp_stats().items()
        for m, s in members.items()
    }


def partner_port(lab: Lab, dut_port: str) -> str:
    return next(p for _, d, p in lab.members() if d == dut_port)


def gone(pid: int) -> bool:
    """The process has exited (a zombie counts as gone; reap it if it is our child)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return proc_starttime(pid) is None


@dataclass(frozen=True)
class Active:
    name: str
    pid: int
    epoch: int
    ctl: str


def live_instances(lab: Lab) -> dict[str, dict[str, str]]:
    r = lab.redis(6)
    out = {}
    for key in r.keys("TEAMD_SHIM_INSTANCE|*"):
        rec = r.hgetall(key)
        if instance_alive(rec):
            out[key.split("|", 1)[1]] = rec
    return out


def the_active(lab: Lab) -> Active:
    """Exactly one live instance, it answers `info` as active and holds the owner record."""
    live = live_instances(lab)
    assert len(live) == 1, {n: (r.get("pid"), r.get("role")) for n, r in live.items()}
    name, rec = next(iter(live.items()))
    info = request(rec["ctl"], {"cmd": "info"}, timeout=2.0)
    assert info["role"] == "active", info
    owner = state_db(lab, "TEAMD_OWNER_TABLE|teamd")
    assert owner["owner"] == name and int(owner["epoch"]) == info["epoch"], (owner, info)
    return Active(name, int(rec["pid"]), int(info["epoch"]), rec["ctl"])


def settled_active(lab: Lab, timeout: float = 4.0) -> Active:
    """Wait until the lab has exactly one live, active instance (retirees take a moment)."""
    return wait_for(lambda: the_active(lab), timeout, "exactly one live instance, active")


# ---- a run of warm-restart and its progress ---------------------------------------------------
class Orchestrator:
    """`warm-restart ... <args>` as a subprocess, watched through its STATE_DB run record."""

    def __init__(self, lab: Lab, *args: str) -> None:
        self.lab = lab
        self.r = lab.redis(6)
        try:
            self.before = self.r.hget(LAST_RUN_KEY, "last_run")
        except redis.exceptions.ConnectionError:  # a scenario with Redis down
            self.before = None
        self.p = subprocess.Popen(
            [WARM_RESTART, "--redis", lab.redis_url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.run_id = ""
        self.out = self.err = ""

    def wait_run_id(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while not self.run_id:
            rid = self.r.hget(LAST_RUN_KEY, "last_run")
            if rid and rid != self.before:
                self.run_id = rid
            elif time.monotonic() > deadline or self.p.poll() is not None:
                raise AssertionError(f"no run started: {self.finish()}")
            else:
                time.sleep(POLL_S)
        return self.run_id

    def record(self) -> dict[str, str]:
        return self.r.hgetall(RUN_PREFIX + self.wait_run_id())

    def wait_stage(self, stage: str, timeout: float = 25.0) -> dict[str, str]:
        """Return the run record the moment its stage is `stage`; fail if it went past it."""
        key = RUN_PREFIX + self.wait_run_id()
        want = STAGES.index(stage)
        deadline = time.monotonic() + timeout
        while True:
            cur, result = self.r.hmget(key, "stage", "result")
            if cur == stage and result == "running":
                return self.r.hgetall(key)
            if cur in STAGES and STAGES.index(cur) > want or result not in (None, "running"):
                raise AssertionError(f"missed stage {stage}: run is at {cur}/{result}")
            if time.monotonic() > deadline:
                raise AssertionError(f"stage {stage} not reached in {timeout}s (at {cur})")
            time.sleep(POLL_S)

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        try:
            self.out, self.err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.out, self.err = self.p.communicate()
            raise AssertionError(
                f"warm-restart hung: {self.out[-2000:]} {self.err[-2000:]}"
            ) from None
        return self.p.returncode, self.out, self.err

    def outcome(self, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
        code, out, err = self.finish(timeout)
        try:
            return code, json.loads(out)
        except json.JSONDecodeError:
            raise AssertionError(
                f"no JSON outcome (exit {code}): {out[-2000:]} {err[-2000:]}"
            ) from None

    def kill(self) -> None:
        self.p.kill()
        self.p.wait()


def warm_restart(lab: Lab) -> Orchestrator:
    return Orchestrator(lab, "teamd", "--yes", "--json")


def recover(lab: Lab) -> tuple[int, str]:
    p = subprocess.run(
        [WARM_RESTART, "--redis", lab.redis_url, "recover"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return p.returncode, p.stdout + p.stderr


# ---- what every scenario must leave behind ----------------------------------------------------
@dataclass
class Baseline:
    t0: float
    offset: int
    stats: dict[tuple[str, str], tuple[int, int]]
    active: Active


def baseline(lab: Lab) -> Baseline:
    assert not lab.redis(6).exists(LOCK_KEY)
    return Baseline(
        time.monotonic(), lab.ovs.log_offset(), stats_snapshot(lab), settled_active(lab)
    )


def assert_transmitting(lab: Lab, since: float) -> None:
    """Every partner port receives our PDUs after `since`."""
    ports = set(lab.state["recorder"]["ifaces"])

    def all_ports() -> bool:
        frames = [
            f for f in load_records(lab.state["recorder"]["out"]) if f.t > since and f.subtype == 1
        ]
        return {f.iface for f in frames} >= ports

    wait_for(all_ports, 3.0, f"PDUs on every port after t={since:.3f}", interval=0.05)


def assert_intact(
    lab: Lab,
    base: Baseline,
    *,
    flapped: frozenset[str] = frozenset(),
    gap_limit: float | None = ABORT_BUDGET_S,
) -> Active:
    """The end state every scenario must reach; returns the active instance."""
    lock = lab.redis(6).hgetall(LOCK_KEY)
    assert not lock, f"lock left behind: {lock}"
    wait_for(lambda: all_negotiated(lab.ovs.bond_show()), 6.0, "every bond negotiated")
    wait_for(
        lambda: all(
            state_db(lab, f"LAG_TABLE|{lag}").get("oper_status") == "up" for lag in lab.lags()
        ),
        5.0,
        "STATE_DB LAG_TABLE oper_status up",
    )
    active = settled_active(lab)
    end = time.monotonic()
    assert_transmitting(lab, end)
    if gap_limit is not None:
        gaps = {
            p: g for p, g in max_gaps(lab, base.t0, time.monotonic()).items() if p not in flapped
        }
        assert len(gaps) == LAGS * MEMBERS - len(flapped), gaps
        assert max(gaps.values()) <= gap_limit, gaps

    # a member the scenario took down on purpose may be expired or defaulted at the partner
    # (whether OVS defaults it depends on how long the link stayed down): that is its flap
    def kept(stats: dict[tuple[str, str], tuple[int, int]]) -> dict:
        return {k: v for k, v in stats.items() if k[1] not in flapped}

    assert kept(stats_snapshot(lab)) == kept(base.stats)
    events = lab.ovs.member_events(base.offset)
    assert [e.line for e in events if e.member not in flapped] == [], events
    return active


def pause_standby_between_snapshot_and_takeover(orch: Orchestrator) -> tuple[int, float]:
    """SIGSTOP the standby once it is READY; return (its pid, the instant the old owner's
    yield was journaled). The orchestrator's SIGRTMIN then waits, pending, until SIGCONT."""
    pid = int(orch.wait_stage("restored")["new_pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        orch.wait_stage("yielded")
    except BaseException:
        os.kill(pid, signal.SIGCONT)
        raise
    return pid, time.monotonic()


# ---- the scenarios --------------------------------------------------------------------------
def test_plain_handover_completes(lab: Lab) -> None:
    """Reference run: the harness sees a clean handover as clean."""
    base = baseline(lab)
    code, out = warm_restart(lab).outcome()
    assert code == 0 and out["result"] == "completed", out
    after = assert_intact(lab, base, gap_limit=1.1)
    assert after.name == out["new"] and after.epoch == base.active.epoch + 1


def test_standby_killed_before_ready_rolls_back(lab: Lab) -> None:
    base = baseline(lab)
    orch = warm_restart(lab)
    pid = int(orch.wait_stage("standby_started")["new_pid"])
    os.kill(pid, signal.SIGKILL)
    code, out = orch.outcome()
    assert code == 1 and out["result"] == "rolled_back", out
    assert "exited before READY" in out["reason"], out
    rec = orch.record()
    assert rec["stage"] == "standby_started" and rec["result"] == "rolled_back", rec
    assert gone(pid)
    after = assert_intact(lab, base)
    assert after == base.active  # never yielded: same process, same epoch
    assert not state_db(lab, f"TEAMD_SHIM_INSTANCE|{out['new']}"), "record of the killed standby"


def test_standby_killed_after_takeover_command_rolls_back(lab: Lab) -> None:
    base = baseline(lab)
    orch = warm_restart(lab)
    rec = orch.wait_stage("yielded")
    pid = int(rec["new_pid"])
    os.kill(pid, signal.SIGKILL)  # SIGRTMIN is sent right after `yielded` is journaled
    t_kill = time.monotonic()
    code, out = orch.outcome()
    assert code == 1 and out["result"] == "rolled_back", out
    rec = orch.record()
    assert rec["result"] == "rolled_back" and "t_yielded" in rec and "t_replayed" not in rec, rec
    assert gone(pid)
    after = assert_intact(lab, base)
    assert after.pid == base.active.pid and after.epoch > base.active.epoch
    gaps = max_gaps(lab, t_kill - 1.0, t_kill + 3.0)
    assert len(gaps) == LAGS * MEMBERS and max(gaps.values()) <= ABORT_BUDGET_S, gaps


def test_standby_stopped_after_takeover_command_rolls_back(lab: Lab) -> None:
    base = baseline(lab)
    orch = warm_restart(lab)
    rec = orch.wait_stage("yielded")
    pid = int(rec["new_pid"])
    os.kill(pid, signal.SIGSTOP)
    t_stop = time.monotonic()
    try:
        code, out = orch.outcome()
    finally:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    assert code == 1 and out["result"] == "rolled_back", out
    rec = orch.record()
    assert rec["result"] == "rolled_back" and "t_yielded" in rec and "t_replayed" not in rec, rec
    assert gone(pid), "the orchestrator must remove the stopped standby"
    after = assert_intact(lab, base)
    assert after.pid == base.active.pid
    gaps = max_gaps(lab, t_stop - 1.0, t_stop + 3.0)
    assert len(gaps) == LAGS * MEMBERS and max(gaps.values()) <= ABORT_BUDGET_S, gaps


def test_old_active_killed_after_yield_new_one_completes(lab: Lab) -> None:
    base = baseline(lab)
    orch = warm_restart(lab)
    orch.wait_stage("yielded")
    os.kill(base.active.pid, signal.SIGKILL)
    code, out = orch.outcome()
    assert code == 0 and out["result"] == "completed", out
    assert gone(base.active.pid)
    after = assert_intact(lab, base)
    assert after.name == out["new"] and after.pid == int(orch.record()["new_pid"])
    assert after.epoch == base.active.epoch + 1


@pytest.mark.parametrize("stage", ["standby_started", "restored", "yielded", "replayed"])
def test_orchestrator_killed_then_recovered(lab: Lab, stage: str) -> None:
    base = baseline(lab)
    orch = warm_restart(lab)
    rec = orch.wait_stage(stage)
    orch.kill()
    new_pid = int(rec["new_pid"])
    assert orch.record()["stage"] == stage and orch.record()["result"] == "running"
    assert lab.redis(6).exists(LOCK_KEY), "a killed orchestrator leaves its lock"
    if stage == "replayed":
        # the next `warm-restart teamd` recovers the interrupted run first, then runs its own
        nxt = Orchestrator(lab, "teamd", "--yes")
        code, text, err = nxt.finish()
        assert code == 0, (text, err)
        assert "recovered an interrupted run first: completed" in text, text
        assert re.search(r"^DONE: ", text, re.M), text
        result = "completed"
    else:
        code, text = recover(lab)
        m = re.search(r"^(DONE|ROLLED BACK): ", text, re.M)
        assert m, text
        result = {"DONE": "completed", "ROLLED BACK": "rolled_back"}[m.group(1)]
        assert code == (0 if result == "completed" else 1), (code, text)
        assert orch.run_id in text, text
    run = orch.record()
    assert run["result"] == result and "recovered" in run["reason"], run
    after = assert_intact(lab, base, gap_limit=ABORT_BUDGET_S)
    if stage in ("standby_started", "restored"):
        assert result == "rolled_back"
        assert gone(new_pid)
        if stage == "standby_started":
            assert after == base.active  # never yielded: same process, same epoch
        else:  # SIGUSR1 follows `restored` at once: the old owner may have yielded, resumed
            assert (after.name, after.pid) == (base.active.name, base.active.pid)
    elif stage == "yielded":  # either way is right, as long as the state matches the word
        if result == "completed":
            assert after.pid == new_pid
        else:
            assert after.pid == base.active.pid and gone(new_pid)
    else:
        assert result == "completed"
        assert gone(base.active.pid)
        assert after.pid != base.active.pid and after.epoch > base.active.epoch


def test_redis_down_before_a_run_refuses_and_changes_nothing(lab: Lab) -> None:
    base = baseline(lab)
    table = state_db(lab, TEAMSYNCD_KEY)
    lab.stop_redis()
    try:
        code, out = warm_restart(lab).outcome()
    finally:
        lab.start_redis()
    assert code == 2 and out["result"] == "refused" and "redis unreachable" in out["reason"], out
    after = assert_intact(lab, base)
    assert after == base.active
    assert state_db(lab, TEAMSYNCD_KEY) == table


@pytest.mark.parametrize(
    ("stage", "down_for"), [("restored", 1.0), ("yielded", 1.0), ("replayed", 5.0)]
)
def test_redis_killed_mid_run_ends_completed_or_rolled_back(
    lab: Lab, stage: str, down_for: float
) -> None:
    """Before the new owner confirmed, either end is right; after it, only completion is:
    the new owner holds the epoch and transmits, so a rollback would leave nobody."""
    base = baseline(lab)
    orch = warm_restart(lab)
    orch.wait_stage(stage)
    redis_pid = lab.state["redis"]["proc"]["pid"]
    os.kill(redis_pid, signal.SIGKILL)
    t_kill = time.monotonic()
    lab.stop_redis()  # only forgets (and reaps) the killed server
    time.sleep(max(0.0, t_kill + down_for - time.monotonic()))
    lab.start_redis()
    code, out = orch.outcome()
    print(f"redis killed at {stage}: {out['result']}: {out['reason']}")
    assert code in (0, 1) and out["result"] in ("completed", "rolled_back"), out
    assert gone(redis_pid)
    if stage == "replayed":
        assert out["result"] == "completed", out
    if lab.redis(6).exists(LOCK_KEY):  # redis was still down when the run ended
        assert "recover" in out["reason"], out
        code, text = recover(lab)
        word = {"completed": "DONE", "rolled_back": "ROLLED BACK"}[out["result"]]
        assert re.search(rf"^{word}: ", text, re.M), text
    after = assert_intact(lab, base, gap_limit=None)
    if out["result"] == "completed":
        assert after.name == out["new"]
    else:
        assert after.pid == base.active.pid
    gaps = max_gaps(lab, t_kill - 1.0, time.monotonic())
    print(f"redis killed at {stage}: largest gap {max(gaps.values()):.3f} s")
    assert len(gaps) == LAGS * MEMBERS and max(gaps.values()) < 2.5, gaps


def test_member_link_down_mid_handover(lab: Lab) -> None:
    lag, port, pport = lab.members()[2]
    bond = lab.state["lags"][lag]["bond"]
    base = baseline(lab)
    orch = warm_restart(lab)
    pid, _ = pause_standby_between_snapshot_and_takeover(orch)
    try:
        lab.set_member_link(port, False)
        t_down = time.monotonic()
        time.sleep(0.05)  # the link event is queued at both instances before the takeover
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        code, out = orch.outcome()
        assert code == 0 and out["result"] == "completed", out
        # our side must see it at once, not 3 s later through the receive timeout
        wait_for(
            lambda: (
                state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{port}").get("runner.selected") == "false"
            ),
            max(0.1, t_down + 1.5 - time.monotonic()),
            "our side deselects",
            interval=0.02,
        )
        wait_for(
            lambda: not lab.ovs.bond_show()[bond]["members"][pport],
            3.0,
            "partner disables the member",
        )
        assert appl_db(lab)[f"LAG_MEMBER_TABLE:{lag}:{port}"] == {"status": "disabled"}
        assert state_db(lab, f"LAG_TABLE|{lag}")["oper_status"] == "up"
        writes = [json.loads(line) for line in dataplane_log(lab).read_text().splitlines()]
        disabled_by = {
            (w["pid"], w["epoch"])
            for w in writes
            if w["t"] > t_down
            and w.get("port") == port
            and w["op"] == "enabled"
            and w["value"] is False
        }
        assert disabled_by == {(pid, base.active.epoch + 1)}, disabled_by
    finally:
        lab.set_member_link(port, True)
    wait_for(lambda: lab.ovs.bond_show()[bond]["members"][pport], 6.0, "partner re-enables")
    wait_for(
        lambda: state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{port}").get("runner.selected") == "true",
        3.0,
        "our side reselects",
    )
    wait_for(
        lambda: appl_db(lab)[f"LAG_MEMBER_TABLE:{lag}:{port}"] == {"status": "enabled"},
        3.0,
        "APPL_DB member enabled",
    )
    after = assert_intact(lab, base, flapped=frozenset({pport}))
    assert after.pid == pid
    info = request(after.ctl, {"cmd": "info"})
    assert info["takeover_at"] > t_down, "the link went down before the takeover, by design"
    assert {e.member for e in lab.ovs.member_events(base.offset)} == {pport}


def test_link_change_while_yielded_then_rollback_is_written_by_the_resumed_owner(lab: Lab) -> None:
    """A member link goes down while the old owner is yielded (it decides, writes nothing),
    then the standby dies before the takeover: the run rolls back, and the resumed owner
    publishes what it decided meanwhile at once (before the fix in LagRunner.sync_dataplane,
    APPL_DB kept the member `enabled` until some later event)."""
    lag, port, pport = lab.members()[1]
    bond = lab.state["lags"][lag]["bond"]
    base = baseline(lab)
    orch = warm_restart(lab)
    pid, _ = pause_standby_between_snapshot_and_takeover(orch)
    try:
        lab.set_member_link(port, False)
        time.sleep(0.1)  # decided by the yielded owner, which writes nothing
    finally:
        os.kill(pid, signal.SIGKILL)  # the standby never takes over
    try:
        code, out = orch.outcome()
        assert code == 1 and out["result"] == "rolled_back", out
        wait_for(
            lambda: appl_db(lab).get(f"LAG_MEMBER_TABLE:{lag}:{port}") == {"status": "disabled"},
            1.0,
            "APPL_DB member disabled after the rollback",
            interval=0.02,
        )
        assert state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{port}").get("runner.selected") == "false"
        wait_for(
            lambda: not lab.ovs.bond_show()[bond]["members"][pport],
            3.0,
            "partner disables the member",
        )
        writes = [json.loads(line) for line in dataplane_log(lab).read_text().splitlines()]
        by_standby = [w for w in writes if w["pid"] == pid]
        assert all(w["op"] != "enabled" for w in by_standby), by_standby
    finally:
        lab.set_member_link(port, True)
    wait_for(lambda: lab.ovs.bond_show()[bond]["members"][pport], 6.0, "partner re-enables")
    wait_for(
        lambda: appl_db(lab)[f"LAG_MEMBER_TABLE:{lag}:{port}"] == {"status": "enabled"},
        3.0,
        "APPL_DB member enabled",
    )
    after = assert_intact(lab, base, flapped=frozenset({pport}))
    assert after.pid == base.active.pid and after.epoch > base.active.epoch


def test_member_link_down_while_the_standby_gets_ready_still_completes(lab: Lab) -> None:
    """A member whose link goes down before READY sends nothing, now or after the takeover,
    so READY does not wait for its last PDU to match (before: not READY until the link came
    back; the run rolled back after --timeout, 60 s in the kernel tier)."""
    lag, port, pport = lab.members()[3]
    bond = lab.state["lags"][lag]["bond"]
    base = baseline(lab)
    orch = warm_restart(lab)
    orch.wait_stage("standby_started")
    lab.set_member_link(port, False)
    try:
        code, out = orch.outcome()
        assert code == 0 and out["result"] == "completed", out
        wait_for(
            lambda: not lab.ovs.bond_show()[bond]["members"][pport],
            3.5,
            "partner disables the member",
        )
    finally:
        lab.set_member_link(port, True)
    wait_for(lambda: lab.ovs.bond_show()[bond]["members"][pport], 6.0, "partner re-enables")
    wait_for(
        lambda: appl_db(lab)[f"LAG_MEMBER_TABLE:{lag}:{port}"] == {"status": "enabled"},
        3.0,
        "APPL_DB member enabled",
    )
    assert_intact(lab, base, flapped=frozenset({pport}))


def test_partner_changes_its_info_mid_handover(lab: Lab) -> None:
    lag = lab.lags()[1]
    bond = lab.state["lags"][lag]["bond"]
    ports = [p for lg, p, _ in lab.members() if lg == lag]
    base = baseline(lab)

    def partner_prio(ctl: str) -> set[int]:
        dump = request(ctl, {"cmd": "state_dump", "lag": lag})
        return {dump["ports"][p]["runner"]["partner_lacpdu_info"]["system_priority"] for p in ports}

    old_prio = partner_prio(base.active.ctl)
    assert len(old_prio) == 1 and 1000 not in old_prio
    orch = warm_restart(lab)
    pid, _ = pause_standby_between_snapshot_and_takeover(orch)
    try:
        lab.ovs.vsctl("set", "port", bond, "other_config:lacp-system-priority=1000")
        t_change = time.monotonic()
        time.sleep(0.05)  # its PDU with the new priority is queued at both instances
    finally:
        os.kill(pid, signal.SIGCONT)
    try:
        code, out = orch.outcome()
        assert code == 0 and out["result"] == "completed", out
        after = assert_intact(lab, base, gap_limit=1.1)
        assert after.pid == pid
        assert request(after.ctl, {"cmd": "info"})["takeover_at"] > t_change
        assert partner_prio(after.ctl) == {1000}
        for p in ports:
            m = state_db(lab, f"LAG_MEMBER_TABLE|{lag}|{p}")
            assert m["runner.selected"] == "true" and m["runner.state"] == "current", m
    finally:
        lab.ovs.vsctl("remove", "port", bond, "other_config", "lacp-system-priority")
    now = settled_active(lab)
    wait_for(lambda: partner_prio(now.ctl) == old_prio, 3.0, "partner priority back")


def test_two_concurrent_runs_one_is_refused_naming_the_holder(lab: Lab) -> None:
    base = baseline(lab)
    first = warm_restart(lab)
    first.wait_stage("standby_started")
    holder = lab.redis(6).hgetall(LOCK_KEY)
    assert holder["run_id"] == first.run_id and holder["pid"] == str(first.p.pid), holder
    second = subprocess.run(
        [WARM_RESTART, "--redis", lab.redis_url, "teamd", "--yes"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert first.p.poll() is None, "the first run must still hold the lock"
    text = second.stdout + second.stderr
    assert second.returncode == 2, text
    assert first.run_id in text and f"pid {first.p.pid}" in text, text
    code, out = first.outcome()
    assert code == 0 and out["result"] == "completed" and out["run_id"] == first.run_id, out
    assert_intact(lab, base, gap_limit=1.1)


def dataplane_ops(lab: Lab, since: float, lag: str) -> list[dict[str, Any]]:
    return [
        w
        for w in (json.loads(line) for line in dataplane_log(lab).read_text().splitlines())
        if w["t"] >= since and w.get("lag") == lag
    ]


def test_config_changed_during_a_handover_is_applied_by_the_new_owner(lab: Lab) -> None:
    """A LAG added, and later one removed, between the final snapshot and the takeover: only an
    owner writes the kernel, and the old one has yielded, so the new owner must create (or
    remove) it after taking over; nobody without the epoch may write it meanwhile (the
    module's last test checks every write carries an epoch). Before: a LAG added after the
    yield was never created, and a standby released ports / deleted the team netdev itself."""
    base = baseline(lab)
    t0 = time.monotonic()  # the dataplane journal's clock
    orch = warm_restart(lab)
    pid, _ = pause_standby_between_snapshot_and_takeover(orch)
    try:
        added = lab.add_lag(2)
    finally:
        os.kill(pid, signal.SIGCONT)
    code, out = orch.outcome()
    assert code == 0 and out["result"] == "completed", out
    ops = dataplane_ops(lab, t0, added)
    new_epoch = settled_active(lab).epoch
    assert [w["op"] for w in ops][:3] == ["lag_added", "member_added", "member_added"], ops
    assert {w["epoch"] for w in ops} == {new_epoch}, ops
    bond = lab.state["lags"][added]["bond"]
    wait_for(lambda: all_negotiated(lab.ovs.bond_show(bond)), 10.0, f"{added} negotiated")
    wait_for(
        lambda: state_db(lab, f"LAG_TABLE|{added}").get("oper_status") == "up",
        5.0,
        f"STATE_DB {added} up",
    )
    # and a LAG removed from CONFIG_DB mid-handover is removed by the next owner
    t1 = time.monotonic()
    orch = warm_restart(lab)
    pid, _ = pause_standby_between_snapshot_and_takeover(orch)
    try:
        r = lab.redis()
        for lg, port, _ in lab.members():
            if lg == added:
                r.delete(f"PORTCHANNEL_MEMBER|{lg}|{port}")
        r.delete(f"PORTCHANNEL|{added}")
    finally:
        os.kill(pid, signal.SIGCONT)
    code, out = orch.outcome()
    assert code == 0 and out["result"] == "completed", out
    ops = dataplane_ops(lab, t1, added)
    assert [w["op"] for w in ops].count("lag_removed") == 1, ops
    active = settled_active(lab)
    assert {w["epoch"] for w in ops} == {active.epoch}, ops
    wait_for(lambda: not state_db(lab, f"LAG_TABLE|{added}"), 5.0, f"STATE_DB {added} gone")
    flapped = frozenset(pp for lg, _, pp in lab.members() if lg == added)
    lab.remove_lag(added)
    assert_intact(lab, base, flapped=flapped, gap_limit=None)


def test_no_two_instances_ever_write_the_dataplane(lab: Lab) -> None:
    """Over the whole module: writes sorted by time never go back in epoch, and each epoch's
    writes come from one process."""
    writes = sorted(
        (json.loads(line) for line in dataplane_log(lab).read_text().splitlines()),
        key=lambda w: w["t"],
    )
    assert writes, "no dataplane writes recorded"
    assert all(w["epoch"] is not None for w in writes), [w for w in writes if w["epoch"] is None]
    pids_of: dict[int, set[int]] = {}
    for w in writes:
        pids_of.setdefault(w["epoch"], set()).add(w["pid"])
    assert all(len(p) == 1 for p in pids_of.values()), pids_of
    back = [(a, b) for a, b in zip(writes, writes[1:], strict=False) if b["epoch"] < a["epoch"]]
    assert not back, back[:3]
    # the module wrote from more than one owner (start-up, and the link test's new owner)
    assert len(pids_of) >= 2 and len(set().union(*pids_of.values())) >= 2, pids_of


# ---- Redis stalls: PDU liveness never waits for Redis (issue 10, hld §9) ----------------------
STALL_S = 4.0  # longer than the partner's 3 s timeout: a handover that waits for Redis flaps


@pytest.mark.parametrize("at", ["yield", "takeover", "confirmation"])
def test_redis_stalled_mid_handover_never_silences_the_pdus(lab: Lab, at: str) -> None:
    """redis-server SIGSTOPped for 4 s at the yield, at the takeover, or right after the new
    owner's compare-and-set (during the confirmation): fencing is for dataplane writes, and
    byte-identical LACPDUs from two instances are harmless, so some instance must keep every
    port's PDUs within the period whatever Redis does."""
    base = baseline(lab)
    redis_pid = int(lab.state["redis"]["proc"]["pid"])
    orch = warm_restart(lab)
    if at == "yield":
        orch.wait_stage("restored")  # the SIGUSR1 and its final snapshot write come next
    elif at == "takeover":
        orch.wait_stage("yielded")  # the SIGRTMIN and the standby's reads and CAS come next
    else:
        r6 = lab.redis(6)
        wait_for(
            lambda: int(r6.hget("TEAMD_OWNER_TABLE|teamd", "epoch") or 0) > base.active.epoch,
            10.0,
            "the new owner's compare-and-set",
            interval=POLL_S,
        )
    os.kill(redis_pid, signal.SIGSTOP)
    t_stop = time.monotonic()
    try:
        time.sleep(STALL_S)
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    code, out = orch.outcome(timeout=60.0)
    print(f"\nredis stalled {STALL_S} s at the {at}: {out.get('result')} ({out.get('reason')})")
    assert code in (0, 1) and out["result"] in ("completed", "rolled_back"), out
    gaps = max_gaps(lab, t_stop - 1.0, t_stop + STALL_S + 1.0)
    print(f"largest PDU gap at the partner around the stall: {max(gaps.values()):.3f} s")
    assert_intact(lab, base)  # counters, member lines, gap <= 1.5 s, one active, no lock
