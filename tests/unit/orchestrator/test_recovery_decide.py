"""`recover`'s decision, every case it distinguishes, from facts alone (no Redis, no shims).

The journal states: no run, a finished run (completed, rolled_back), a run left `running` at
each stage it journals (initialized, standby_started, restored, yielded, replayed); the lock:
free, held by a live orchestrator, held by a dead one; the instances: whether the successor
took over (owner record, or its own answer when Redis lost the epoch CAS).
"""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.recovery import (
    NOTHING,
    Action,
    InstanceFacts,
    JournalFacts,
    RecoveryFacts,
    decide,
    interrupted,
    owner_handle,
    recorded_owner,
    standby_handle,
    took_over,
)
from orchestrator.runtime.base import Instance

RUN_ID = "20250101T000000-4000"
HOLDER = {
    "run_id": RUN_ID,
    "pid": "4000",
    "starttime": "77",
    "host": "dut",
    "since": "2025-01-01T00:00:00",
}
OLD = Instance("teamd", 100, "", "", [], "", "", "active", "/run/teamd.sock", handle="100")


def run_record(result: str = "running", stage: str = "initialized", **extra: str) -> dict[str, str]:
    return {
        "old": "teamd",
        "old_pid": "100",
        "old_handle": "100",
        "runtime": "process",
        "new": "teamd~2",
        "new_ctl": "/run/teamd~2.sock",
        "result": result,
        "stage": stage,
        **extra,
    }


def journal(
    holder: dict[str, str] | None = None,
    holder_alive: bool = False,
    run: dict[str, str] | None = None,
    run_id: str = RUN_ID,
) -> JournalFacts:
    return JournalFacts(
        holder=holder or {},
        holder_alive=holder_alive,
        run_id=run_id if run is not None else "",
        run=run or {},
    )


def instances(**kw: object) -> InstanceFacts:
    base = InstanceFacts(
        old=OLD,
        old_recorded=True,
        old_alive=True,
        new_handle="4242",
        new_ctl="/run/teamd~2.sock",
        new_alive=True,
        owner="teamd",
        new_role="standby",
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


# ---- nothing to recover, or not ours to recover ---------------------------------------------
@pytest.mark.parametrize(
    ("facts", "only_if_stale"),
    [
        pytest.param(journal(), False, id="no run ever"),
        pytest.param(journal(run=run_record("completed", "replayed")), False, id="last completed"),
        pytest.param(
            journal(run=run_record("rolled_back", "yielded")), False, id="last rolled back"
        ),
        pytest.param(journal(HOLDER, True, run_record()), True, id="live holder, precheck asks"),
        pytest.param(
            journal(HOLDER, True, run_record("running", "yielded")),
            True,
            id="live holder mid-run, precheck asks",
        ),
    ],
)
def test_nothing_to_do(facts: JournalFacts, only_if_stale: bool) -> None:
    plan = decide(RecoveryFacts(facts), only_if_stale)
    assert plan == NOTHING
    assert plan.action is Action.NOTHING_TO_DO and plan.result == "nothing"
    assert plan.reason == "no interrupted run"
    assert not interrupted(facts)


@pytest.mark.parametrize(
    "stage", ["initialized", "standby_started", "restored", "yielded", "replayed"]
)
def test_a_live_holder_is_refused_whatever_its_run_says(stage: str) -> None:
    facts = journal(HOLDER, True, run_record("running", stage))
    plan = decide(RecoveryFacts(facts, instances()))
    assert plan.action is Action.REFUSE and plan.result == "refused"
    assert plan.reason == (
        f"another warm restart is running: run {RUN_ID} by pid 4000 on dut "
        "since 2025-01-01T00:00:00"
    )
    assert plan.break_lock is None and not plan.finish_run


# ---- an interrupted run: complete or roll back ----------------------------------------------
@pytest.mark.parametrize(
    ("stage", "inst", "action"),
    [
        pytest.param(
            "initialized",
            instances(new_handle="", new_alive=False, new_role=None),
            Action.ROLL_BACK,
            id="initialized: no standby yet",
        ),
        pytest.param(
            "initialized",
            instances(new_handle="4242", new_role=None),
            Action.ROLL_BACK,
            id="initialized: standby found by its record",
        ),
        pytest.param(
            "standby_started",
            instances(new_alive=False, new_role=None),
            Action.ROLL_BACK,
            id="standby_started: standby died",
        ),
        pytest.param(
            "standby_started", instances(), Action.ROLL_BACK, id="standby_started: standby alive"
        ),
        pytest.param("restored", instances(), Action.ROLL_BACK, id="restored: READY standby"),
        pytest.param(
            "yielded",
            instances(new_role="standby"),
            Action.ROLL_BACK,
            id="yielded: no SIGRTMIN yet",
        ),
        pytest.param(
            "yielded",
            instances(owner="teamd~2", new_role=None),
            Action.COMPLETE,
            id="yielded: took over before the journal said so",
        ),
        pytest.param(
            "replayed",
            instances(owner="teamd~2", new_role=None),
            Action.COMPLETE,
            id="replayed: owner record names the new one",
        ),
        pytest.param(
            "replayed",
            instances(owner="teamd", new_role="active"),
            Action.COMPLETE,
            id="replayed: redis lost the CAS, the new one says active",
        ),
        pytest.param(
            "replayed",
            instances(owner=None, new_role="active"),
            Action.COMPLETE,
            id="replayed: no owner record, the new one says active",
        ),
        pytest.param(
            "replayed",
            instances(owner="teamd~2", new_alive=False, new_role=None),
            Action.ROLL_BACK,
            id="replayed: owner record names a dead new one",
        ),
        pytest.param(
            "replayed",
            instances(new_ctl="", new_role="active"),
            Action.ROLL_BACK,
            id="replayed: no control socket to ask",
        ),
        pytest.param(
            "replayed",
            instances(owner="teamd", new_role=None),
            Action.ROLL_BACK,
            id="replayed: the new one did not answer",
        ),
    ],
)
def test_an_interrupted_run_goes_by_the_successor_not_by_the_stage(
    stage: str, inst: InstanceFacts, action: Action
) -> None:
    facts = RecoveryFacts(journal(run=run_record("running", stage)), inst)
    plan = decide(facts)
    assert plan.action is action
    assert (plan.run_id, plan.old_name, plan.new_name) == (RUN_ID, "teamd", "teamd~2")
    assert plan.old == OLD and plan.new_handle == inst.new_handle
    assert plan.new_ctl == inst.new_ctl and plan.run == facts.journal.run
    assert plan.old_alive == inst.old_alive and plan.forget_old == inst.old_recorded
    if action is Action.COMPLETE:
        assert plan.result == "completed"
        assert plan.reason == "teamd~2 had taken over; teamd retired"
    else:
        assert plan.result == "rolled_back"
        assert plan.reason == "teamd kept the LAGs; standby removed"
    # the precheck's question changes nothing about a run with no live holder
    assert decide(facts, only_if_stale=True) == plan


@pytest.mark.parametrize(
    ("holder", "result", "finish_run", "break_lock"),
    [
        pytest.param({}, "running", True, None, id="lock released, record running"),
        pytest.param(HOLDER, "running", True, RUN_ID, id="dead holder, record running"),
        pytest.param(
            HOLDER, "completed", False, RUN_ID, id="dead holder after its finish: only the lock"
        ),
        pytest.param(
            HOLDER, "rolled_back", False, RUN_ID, id="dead holder after its rollback: only the lock"
        ),
    ],
)
def test_the_journal_writes_follow_the_lock_and_the_record(
    holder: dict[str, str], result: str, finish_run: bool, break_lock: str | None
) -> None:
    facts = journal(holder, False, run_record(result, "replayed"))
    assert interrupted(facts)
    plan = decide(RecoveryFacts(facts, instances(owner="teamd~2")))
    assert plan.action is Action.COMPLETE
    assert plan.finish_run is finish_run and plan.break_lock == break_lock


def test_a_dead_holder_without_a_run_still_has_its_lock_broken() -> None:
    facts = journal({"pid": "4000", "host": "dut"}, False)
    inst = instances(
        old=recorded_owner("", {}, {}),
        old_recorded=False,
        old_alive=False,
        new_handle="",
        new_ctl="",
        new_alive=False,
        owner=None,
        new_role=None,
    )
    plan = decide(RecoveryFacts(facts, inst))
    assert plan.action is Action.ROLL_BACK
    assert plan.reason == " kept the LAGs; standby removed"
    assert plan.run_id == "" and not plan.finish_run and plan.break_lock == ""


def test_an_interrupted_run_without_its_instances_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="instances"):
        decide(RecoveryFacts(journal(HOLDER, False, run_record())))


def test_took_over_needs_a_live_successor() -> None:
    assert took_over(instances(owner="teamd~2"), "teamd~2")
    assert not took_over(instances(owner="teamd~2", new_alive=False), "teamd~2")
    assert not took_over(instances(owner=None, new_role=None), "")


# ---- the pure parts of loading --------------------------------------------------------------
@pytest.mark.parametrize(
    ("run", "rec", "runtime", "handle"),
    [
        ({"new_handle": "c0ffee", "new_pid": "4242"}, {"pid": "4343"}, "docker", "c0ffee"),
        ({"new_pid": "4242"}, {"pid": "4343"}, "process", "4242"),
        ({}, {"pid": "4343"}, "process", "4343"),
        ({}, {"pid": "4343"}, "docker", ""),
        ({}, {}, "process", ""),
    ],
)
def test_standby_handle(
    run: dict[str, str], rec: dict[str, str], runtime: str, handle: str
) -> None:
    assert standby_handle(run, rec, runtime) == handle


def test_owner_handle_and_the_recorded_owner() -> None:
    assert owner_handle({"old_handle": "abc", "old_pid": "100"}) == "abc"
    assert owner_handle({"old_pid": "100"}) == "100"
    assert owner_handle({}) == ""
    run = {"old_pid": "100", "old_handle": "ctr1", "old_container_name": "teamd"}
    gone = recorded_owner("teamd", run, {})
    assert (gone.name, gone.pid, gone.handle, gone.container_name, gone.ctl) == (
        "teamd",
        100,
        "ctr1",
        "teamd",
        "",
    )
    there = recorded_owner("teamd", run, {"pid": "7", "ctl": "/run/teamd.sock", "role": "yielded"})
    assert (there.pid, there.ctl, there.role, there.handle) == (
        7,
        "/run/teamd.sock",
        "yielded",
        "ctr1",
    )
