"""`warm-restart recover` as a decision over facts: what to do about a run whose orchestrator
died is a pure function of the journal and the instances' liveness, so every case can be tested
without Redis, shims or a runtime.

The controller (handover.py) loads the facts (`RecoveryFacts`: the journal record and the lock
holder, then, only for an interrupted run, the instances), asks `decide`, and acts on the
`RecoveryPlan`. The journal's `stage` field is deliberately not a fact: after a crash the only
trustworthy question is whether the successor took over, and the owner record and the successor
itself answer it (a Redis restored from an older dump may have lost the takeover's epoch CAS
while the new owner already transmits).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field

from orchestrator.journal import LockHeld
from orchestrator.runtime.base import Instance


@dataclass(frozen=True)
class JournalFacts:
    """The lock and the run it names (or the last run, when nobody holds the lock)."""

    holder: dict[str, str]  # WARM_RESTART_LOCK|teamd, {} when free
    holder_alive: bool  # its orchestrator still runs (another host's is assumed to)
    run_id: str
    run: dict[str, str]  # WARM_RESTART_RUN|<run_id>, {} when there is none


@dataclass(frozen=True)
class InstanceFacts:
    """What the instances say now; loaded only for an interrupted run (it costs control
    requests and runtime calls that a precheck with nothing to recover must not pay)."""

    old: Instance  # the old owner; handle from the journal, located when its record is there
    old_recorded: bool  # its TEAMD_SHIM_INSTANCE record is still there
    old_alive: bool
    new_handle: str  # '' when the journal and the records do not know one
    new_ctl: str
    new_alive: bool
    owner: str | None  # whom TEAMD_OWNER_TABLE|teamd names
    new_role: str | None  # what the successor answered; None when not asked or no answer


@dataclass(frozen=True)
class RecoveryFacts:
    journal: JournalFacts
    instances: InstanceFacts | None = None


class Action(enum.Enum):
    NOTHING_TO_DO = "nothing"  # no interrupted run (or a live run's precheck asks)
    REFUSE = "refused"  # a live orchestrator holds the lock: not ours to touch
    COMPLETE = "completed"  # the successor took over: retire the old owner, record it
    ROLL_BACK = "rolled_back"  # it did not: remove the standby, the old owner keeps the LAGs


@dataclass(frozen=True)
class RecoveryPlan:
    action: Action
    reason: str  # the outcome's reason (REFUSE: why; NOTHING_TO_DO: "no interrupted run")
    run_id: str = ""
    old_name: str = ""
    new_name: str = ""
    run: dict[str, str] = field(default_factory=dict)  # what the runtime needs to undo
    old: Instance | None = None
    new_handle: str = ""
    new_ctl: str = ""
    old_alive: bool = False  # COMPLETE: retire it; ROLL_BACK: resume it if yielded
    forget_old: bool = False  # COMPLETE: drop the old owner's record
    finish_run: bool = False  # the run's record still says `running`: write its result
    break_lock: str | None = None  # the dead holder's run id, when there is a lock to break

    @property
    def result(self) -> str:
        return self.action.value


NOTHING = RecoveryPlan(Action.NOTHING_TO_DO, "no interrupted run")


def interrupted(journal: JournalFacts) -> bool:
    """A run needs recovering when its lock outlived its orchestrator, or when, with the lock
    gone, its record still says `running` (a rollback that stopped half-way leaves it so)."""
    if journal.holder and journal.holder_alive:
        return False
    return bool(journal.holder) or journal.run.get("result") == "running"


def owner_handle(run: dict[str, str]) -> str:
    """The runtime's handle of the old owner, as the precheck journaled it (older records
    have only the pid)."""
    return run.get("old_handle") or run.get("old_pid") or ""


def standby_handle(run: dict[str, str], new_rec: dict[str, str], runtime_name: str) -> str:
    """The successor's handle: journaled at standby_started; a process standby that
    registered before the journal got its pid is found by its own record."""
    handle = run.get("new_handle") or run.get("new_pid") or ""
    if not handle and new_rec.get("pid") and runtime_name == "process":
        handle = new_rec["pid"]
    return handle


def recorded_owner(name: str, run: dict[str, str], rec: dict[str, str]) -> Instance:
    """The old owner from its record, or from the journal alone when the record is gone
    (it still has to be retired or resumed by handle)."""
    return dataclasses.replace(
        Instance.from_record(name, rec or {"pid": run.get("old_pid", "0")}),
        handle=owner_handle(run),
        container_name=run.get("old_container_name", ""),
    )


def took_over(inst: InstanceFacts, new_name: str) -> bool:
    """A live successor that the owner record names, or that says it is active."""
    if not inst.new_alive:
        return False
    return inst.owner == new_name or (bool(inst.new_ctl) and inst.new_role == "active")


def decide(facts: RecoveryFacts, only_if_stale: bool = False) -> RecoveryPlan:
    """What `recover` does, from the facts alone. `only_if_stale` is the precheck's question
    (a live holder is then not an error: its own acquire will refuse)."""
    j = facts.journal
    if j.holder and j.holder_alive:
        if only_if_stale:
            return NOTHING
        return RecoveryPlan(Action.REFUSE, str(LockHeld(j.holder)))
    if not interrupted(j):
        return NOTHING
    inst = facts.instances
    if inst is None:
        raise ValueError(f"run {j.run_id!r} was interrupted: its instances' facts are needed")
    old_name, new_name = j.run.get("old", ""), j.run.get("new", "")
    if took_over(inst, new_name):
        action, reason = Action.COMPLETE, f"{new_name} had taken over; {old_name} retired"
    else:
        action, reason = Action.ROLL_BACK, f"{old_name} kept the LAGs; standby removed"
    return RecoveryPlan(
        action,
        reason,
        run_id=j.run_id,
        old_name=old_name,
        new_name=new_name,
        run=j.run,
        old=inst.old,
        new_handle=inst.new_handle,
        new_ctl=inst.new_ctl,
        old_alive=inst.old_alive,
        forget_old=inst.old_recorded,
        finish_run=bool(j.run_id) and j.run.get("result") == "running",
        break_lock=j.holder.get("run_id", "") if j.holder else None,
    )
