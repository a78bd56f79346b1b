"""The stages of the hitless restart (hld §7), each a small unit over an explicit context.

A stage sees a `StageContext` (the journal, the owner store, the progress lines and the few
controller operations that choose the runtime) and the `Run` it advances; nothing else. The
controller in handover.py runs them in order and owns refusal and rollback; the stages only say
what they did or raise.

The operations shared with the controller's rollback and recovery live here too, once each:
`retire` (ask the old owner to exit, kill it after RETIRE_DEADLINE_S), `forget` (drop a dead
shim's record) and `journal_best_effort` (a write after the takeover that must not undo it).
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis

from orchestrator.journal import Journal
from orchestrator.outcome import Outcome, Refused, Rollback
from orchestrator.ready_wait import ReadyWait
from orchestrator.runtime import Instance, Runtime, RuntimeFailure
from orchestrator.shimctl import ctl, info, poll_until
from teamd_shim.control.transport import ControlError
from teamd_shim.db.ownership import OwnerStore, instance_alive
from teamd_shim.model.contract import InstanceInfo

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
YIELD_DEADLINE_S = 0.5
CONFIRM_AFTER_YIELD_S = 1.25  # the new owner's first PDUs are due 1.0 s after the yield
RETIRE_DEADLINE_S = 3.0
GAP_BUDGET_S = 1.1  # hld §8: largest PDU inter-arrival at the partner through a handover


@dataclass
class Run:
    """One restart as it goes from stage to stage: what the later stages and a rollback need."""

    exec_path: str | None
    image: str | None
    timeout: float
    out: Outcome
    active: Instance | None = None
    run_id: str = ""
    locked: bool = False  # from here on a failure rolls back instead of refusing
    new: str = ""
    new_ctl: str = ""
    new_pid: str | None = None  # the runtime's handle of the standby
    hot: bool = False  # the new instance is the supervisor's hot standby, already READY
    yielded: bool = False
    yielded_at: float = 0.0
    warm_before: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # what the runtime needs to undo
    new_info: InstanceInfo | None = None
    unjournaled: str = ""  # why a best-effort journal write after the takeover failed

    @property
    def old(self) -> Instance:
        assert self.active is not None, "precheck did not run"
        return self.active

    @property
    def target(self) -> str | None:
        return self.exec_path or self.image


# ---- operations the stages share with rollback and recovery ---------------------------------
def journal_best_effort(
    say: Callable[[str], None], fn: Callable[..., Any], *args: Any, **kw: Any
) -> str:
    """A journal write that must not undo anything: '' if written, else why not."""
    try:
        fn(*args, **kw)
    except REDIS_ERRORS as e:
        say(f"      warning: journal not written: redis unreachable: {e}")
        return f"redis unreachable: {e}"
    return ""


def forget(store: OwnerStore, say: Callable[[str], None], name: str) -> None:
    """Drop the instance record of a shim we killed or found dead (it cannot itself)."""
    try:
        store.drop_instance(name)
    except REDIS_ERRORS as e:
        say(f"      warning: could not remove the record of {name}: {e}")


def retire(runtime: Runtime, old: Instance, *, wait_if_unanswered: bool = True) -> None:
    """Ask the old owner to exit on its own, and kill it if it has not within
    RETIRE_DEADLINE_S: a retired shim exits without touching anything, so a kill cannot hurt.

    `wait_if_unanswered=False` (the recovery's way) kills at once when the retire request
    itself fails; the restart's Retire stage still gives a shim that did not answer in time
    the deadline to exit on its own.
    """
    try:
        ctl(old.ctl, "retire")
    except ControlError:
        if not wait_if_unanswered:
            if runtime.alive(old.handle):
                runtime.kill(old.handle)
            return
    deadline = time.monotonic() + RETIRE_DEADLINE_S
    while runtime.alive(old.handle) and time.monotonic() < deadline:
        time.sleep(0.01)
    if runtime.alive(old.handle):
        runtime.kill(old.handle)


def find_hot_standby(store: OwnerStore, active: Instance) -> tuple[str, dict[str, str]] | None:
    """A READY hot standby of the supervisor, shadowing `active` (hld §14.5): a planned
    restart hands over to it instead of starting one (the ready stage drops out)."""
    for name, rec in store.instances().items():
        if (
            name != active.name
            and rec.get("role") == "standby"
            and rec.get("hot") == "true"
            and rec.get("ready") == "true"
            and rec.get("netns") == active.netns
            and rec.get("ctl")
            and instance_alive(rec)
        ):
            return name, rec
    return None


# ---- the context ---------------------------------------------------------------------------
class StageHost(Protocol):
    """What only the controller can do for a stage: both operations (re)choose the runtime
    for this run (`recover` the interrupted run's, `active` the owner's), so later stages read
    `runtime` after the precheck, never a copy taken before it."""

    @property
    def runtime(self) -> Runtime: ...

    def recover(self, only_if_stale: bool = False) -> Outcome: ...

    def active(self) -> Instance: ...


@dataclass(frozen=True)
class StageContext:
    """Everything a stage may touch besides its Run: one per restart, built by the
    controller, so a stage's dependencies are its fields, not the controller's internals."""

    journal: Journal
    store: OwnerStore
    say: Callable[[str], None]
    host: StageHost

    @property
    def runtime(self) -> Runtime:
        return self.host.runtime

    def recover_interrupted(self) -> Outcome:
        return self.host.recover(only_if_stale=True)

    def locate_owner(self) -> Instance:
        return self.host.active()

    def hot_standby(self, active: Instance) -> tuple[str, dict[str, str]] | None:
        return find_hot_standby(self.store, active)

    def journal_best_effort(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> str:
        return journal_best_effort(self.say, fn, *args, **kw)

    def forget(self, name: str) -> None:
        forget(self.store, self.say, name)


class Stage(Protocol):
    """One step of `Controller.restart`; `run` returns the note shown after "ok"."""

    name: str

    def title(self, ctx: StageContext, run: Run) -> str: ...

    def run(self, ctx: StageContext, run: Run) -> str: ...


# ---- the stages ----------------------------------------------------------------------------
class Precheck:
    name = "precheck"

    def title(self, ctx: StageContext, run: Run) -> str:
        return "precheck: redis, lock, active instance"

    def run(self, ctx: StageContext, run: Run) -> str:
        ctx.journal.ping()
        recovered = ctx.recover_interrupted()
        if recovered.result not in ("nothing",):
            ctx.say(
                f"      recovered an interrupted run first: {recovered.result} ({recovered.reason})"
            )
        active = ctx.locate_owner()
        rt = ctx.runtime  # as locate_owner chose it
        if run.exec_path is not None and rt.name != "process":
            raise Refused(
                f"--exec is for the process runtime; {active.name} runs in a "
                "container: use --image IMAGE (or `upgrade-docker`)"
            )
        if run.image is not None and rt.name != "docker":
            raise Refused(
                f"--image needs the docker runtime; {active.name} is a process "
                "on this host: use --exec PATH"
            )
        try:
            rt.check_target(run.target)
        except RuntimeFailure as e:
            raise Refused(str(e)) from None
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        ctx.journal.acquire(run_id)
        run.active, run.run_id, run.locked = active, run_id, True
        out = run.out
        out.run_id, out.old = run_id, active.name
        self._name_the_successor(ctx, run, active)
        run.warm_before = ctx.journal.warm_enabled()
        if run.warm_before != "true":
            ctx.journal.set_warm_enabled("true")
        run.fields = rt.journal_fields(active)
        ctx.journal.start_run(
            run_id,
            {
                "old": active.name,
                "old_pid": str(active.pid),
                "old_handle": active.handle,
                "runtime": rt.name,
                "new": run.new,
                "new_ctl": run.new_ctl,
                "exec": run.exec_path or "",
                "image": run.image or "",
                "orchestrator_pid": str(os.getpid()),
                **run.fields,
            },
        )
        return f"active {active.name} {rt.describe(active.handle)} epoch {active.epoch}"

    @staticmethod
    def _name_the_successor(ctx: StageContext, run: Run, active: Instance) -> None:
        """The supervisor's READY hot standby when a plain restart may reuse it, else the
        next epoch's name and a control socket beside the active's."""
        hot = (
            ctx.hot_standby(active)
            if run.target is None and ctx.runtime.name == "process"
            else None
        )
        if hot is not None:
            run.hot = True
            run.new = run.out.new = hot[0]
            run.new_ctl, run.new_pid = hot[1]["ctl"], hot[1]["pid"]
        else:
            run.new = run.out.new = f"{active.name.split('~')[0]}~{int(active.epoch or 0) + 1}"
            run.new_ctl = os.path.join(os.path.dirname(active.ctl), f"{run.new}.sock")


class StartStandby:
    name = "standby"

    def title(self, ctx: StageContext, run: Run) -> str:
        old = run.old
        if run.hot:
            return f"hot standby {run.new}: already running and READY (started by the supervisor)"
        if ctx.runtime.name == "docker":
            how = f"image {run.image}" if run.image else "same image"
            return (
                f"start standby {run.new} ({how}): container {old.container_name} -> "
                f"{old.container_name}_bak, new {old.container_name}"
            )
        how = f"--exec {run.exec_path}" if run.exec_path else "same executable"
        return f"start standby {run.new} ({how}) in the active's network namespace"

    def run(self, ctx: StageContext, run: Run) -> str:
        ctl(run.old.ctl, "shadow", seconds=run.timeout + 30.0)
        if run.hot:
            assert run.new_pid is not None
            ctx.journal.stage(
                run.run_id, "standby_started", new_pid=run.new_pid, new_handle=run.new_pid
            )
            return f"{ctx.runtime.describe(run.new_pid)}, reused"
        run.new_pid = ctx.runtime.start_standby(run.old, run.new, run.target)
        ctx.journal.stage(
            run.run_id, "standby_started", new_pid=run.new_pid, new_handle=run.new_pid
        )
        return ctx.runtime.describe(run.new_pid)


class WaitReady:
    name = "ready"

    def title(self, ctx: StageContext, run: Run) -> str:
        return (
            "wait until the standby is READY (byte-identical PDUs; given up after "
            f"{run.timeout:.0f} s without progress)"
        )

    def run(self, ctx: StageContext, run: Run) -> str:
        new_pid = run.new_pid
        assert new_pid is not None

        wait = ReadyWait(time.monotonic(), stall_s=run.timeout)
        detail = ""

        def ready(_left: float) -> bool:
            nonlocal detail
            if not ctx.runtime.alive(new_pid):
                raise Rollback(
                    f"standby {run.new} exited before READY (see its log next to {run.new_ctl})"
                )
            now = time.monotonic()
            try:
                got = info(run.new_ctl)
            except ControlError:
                wait.starting(now, ctx.runtime.cpu_seconds(new_pid))
                got = None
            if got is not None:
                if got.ready:
                    return True
                detail = got.ready_detail
                wait.answer(now, got.ready_detail, len(got.lags))
            why = wait.expired(now)
            if why is not None:
                raise Rollback(f"standby not READY: {why}{': ' + detail if detail else ''}")
            return False

        # seconds-long and off the partner-visible path: poll gently, so the orchestrator
        # does not take CPU from the standby that is starting up; the limit is ReadyWait's
        poll_until("standby READY", math.inf, ready, every=0.1)
        took = time.monotonic() - wait.started
        ctx.journal.stage(run.run_id, "restored", sonic_state="restored")
        return f"READY {took:.1f} s after its start"


class Yield:
    name = "yield"

    def title(self, ctx: StageContext, run: Run) -> str:
        return f"SIGUSR1 to {run.old.name}: refresh every port, stop, final snapshot"

    def run(self, ctx: StageContext, run: Run) -> str:
        ctx.runtime.signal(run.old.handle, signal.SIGUSR1)
        run.yielded = True

        def yielded(left: float) -> InstanceInfo | None:
            i = info(run.old.ctl, timeout=min(0.5, left))
            return i if i.role == "yielded" and i.final_written else None

        old_info: InstanceInfo = poll_until("yield", time.monotonic() + YIELD_DEADLINE_S, yielded)
        assert old_info.yielded_at is not None
        run.yielded_at = old_info.yielded_at
        ctx.journal.stage(run.run_id, "yielded")
        return ""


class Takeover:
    name = "takeover"

    def title(self, ctx: StageContext, run: Run) -> str:
        return f"SIGRTMIN to {run.new}: take over, first PDU one period after the last"

    def run(self, ctx: StageContext, run: Run) -> str:
        assert run.new_pid is not None
        ctx.runtime.signal(run.new_pid, signal.SIGRTMIN)

        def confirmed(left: float) -> InstanceInfo | None:
            i = info(run.new_ctl, timeout=min(0.5, left))
            if i.takeover_error:
                raise Rollback(f"standby refused the takeover: {i.takeover_error}")
            return i if i.confirmed else None

        new_info: InstanceInfo = poll_until(
            "first PDUs from the new owner", run.yielded_at + CONFIRM_AFTER_YIELD_S, confirmed
        )
        # The new owner holds the epoch and transmits: from here on the only way is forward.
        # A rollback now would kill it while the old one is already retiring, so journal
        # writes become best effort (`warm-restart recover` completes the record).
        run.unjournaled = ctx.journal_best_effort(
            ctx.journal.stage,
            run.run_id,
            "replayed",
            sonic_state="replayed",
            epoch=str(new_info.epoch),
        )
        out = run.out
        out.lags = gaps(new_info)
        worst = max(
            (v["max_gap_s"] for v in out.lags.values() if v["max_gap_s"] is not None), default=0.0
        )
        if worst > GAP_BUDGET_S:
            # no flap (that needs 3 s), but the promise is "not one late PDU": say so
            out.warnings.append(
                f"largest PDU gap {worst:.3f} s exceeds the {GAP_BUDGET_S} s "
                "budget (machine overloaded?)"
            )
            ctx.say(f"      WARNING: {out.warnings[-1]}")
        return f"epoch {new_info.epoch}"


class Retire:
    name = "retire"

    def title(self, ctx: StageContext, run: Run) -> str:
        return f"retire {run.old.name} (exits without touching anything)"

    def run(self, ctx: StageContext, run: Run) -> str:
        old = run.old
        retire(ctx.runtime, old)
        if not ctx.runtime.alive(old.handle):
            ctx.forget(old.name)  # if it was killed, its record would stay behind
            assert run.new_pid is not None
            ctx.runtime.committed(old, run.new_pid)
        return ""


class Commit:
    name = "commit"

    def title(self, ctx: StageContext, run: Run) -> str:
        return "commit"

    def run(self, ctx: StageContext, run: Run) -> str:
        out = run.out
        run.unjournaled = run.unjournaled or ctx.journal_best_effort(
            ctx.journal.finish,
            run.run_id,
            "completed",
            summary={"lags": out.lags, "stages": out.stages},
        )
        return ""


# the hitless restart, in order (hld §7); `warm-restart teamd` prints [n/len(STAGES)]
STAGES: tuple[Stage, ...] = (
    Precheck(),
    StartStandby(),
    WaitReady(),
    Yield(),
    Takeover(),
    Retire(),
    Commit(),
)


def gaps(new_info: InstanceInfo) -> dict[str, dict[str, Any]]:
    """Per LAG: the largest gap between the old owner's last PDU and the new one's first.

    Both are CLOCK_MONOTONIC send instants on this host; the partner sees the same gap plus
    wire jitter.
    """
    last = new_info.handed_from.last_tx if new_info.handed_from else {}
    first = new_info.first_tx
    per_lag: dict[str, dict[str, Any]] = {}
    for lag, ports in new_info.ports_by_lag.items():
        gs: dict[str, float] = {}
        for p in ports:
            was = last.get(p)
            if p in first and was is not None:
                gs[p] = first[p] - was
        per_lag[lag] = {"max_gap_s": max(gs.values()) if gs else None, "ports": gs}
    return per_lag
